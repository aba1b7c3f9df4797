import type { PlistDict } from "../plist/index.ts";
import { BadRequest } from "../errors.ts";
import { resolveChannel, type Channel } from "./enrollment.ts";

export const CHECKIN_MESSAGE_TYPES = [
  "Authenticate",
  "TokenUpdate",
  "CheckOut",
  "UserAuthenticate",
  "GetBootstrapToken",
  "SetBootstrapToken",
  "GetToken",
  "DeclarativeManagement",
  "ReturnToService",
] as const;
export type CheckinMessageType = (typeof CHECKIN_MESSAGE_TYPES)[number];

type KeyKind = "string" | "data" | "boolean" | "dict";

// Keys each message must carry, and the type of every key Orchard reads.
// Apple labels many keys "required" that exist on one channel only (brief 9.13),
// so identity keys are checked by resolveChannel, not here.
const REQUIRED: Record<CheckinMessageType, Record<string, KeyKind>> = {
  Authenticate: { Topic: "string" },
  TokenUpdate: { Topic: "string", Token: "data", PushMagic: "string" },
  CheckOut: {},
  UserAuthenticate: { UserID: "string" },
  GetBootstrapToken: {},
  SetBootstrapToken: {},
  GetToken: { TokenServiceType: "string" },
  DeclarativeManagement: { Endpoint: "string" },
  ReturnToService: {},
};

// A Map, not an object: a device's key "constructor" or "toString" must not
// find Object.prototype's members here.
const TYPED = new Map<string, KeyKind>(Object.entries({
  Topic: "string",
  Token: "data",
  PushMagic: "string",
  UnlockToken: "data",
  AwaitingConfiguration: "boolean",
  NotOnConsole: "boolean",
  UserShortName: "string",
  UserLongName: "string",
  DigestResponse: "string",
  AuthToken: "string",
  BootstrapToken: "data",
  TokenServiceType: "string",
  TokenParameters: "dict",
  Endpoint: "string",
  Data: "data",
  SerialNumber: "string",
  ProductName: "string",
  OSVersion: "string",
  BuildVersion: "string",
  IMEI: "string",
  MEID: "string",
  DeviceName: "string",
  Model: "string",
  ModelName: "string",
} satisfies Record<string, KeyKind>));

/**
 * An APNs device token is 32 bytes; Apple says not to assume its size, so
 * longer ones pass, but a shorter one is no token APNs ever issued.
 */
export const MIN_PUSH_TOKEN_BYTES = 32;

/** Which channels may send each message (brief sections 4 and 5.5). */
const DEVICE_CHANNEL_ONLY = new Set<CheckinMessageType>([
  "Authenticate",
  "CheckOut",
  "GetBootstrapToken",
  "SetBootstrapToken",
  "ReturnToService",
]);

/** Not part of User Enrollment (brief 5.5): no bootstrap token, no return to service. */
const NOT_IN_USER_ENROLLMENT = new Set<CheckinMessageType>(["GetBootstrapToken", "SetBootstrapToken", "ReturnToService"]);

export interface CheckinMessage {
  messageType: CheckinMessageType;
  channel: Channel;
  /** The decoded plist; its keys have the types in TYPED. */
  body: PlistDict;
  /** The exact bytes the device sent. */
  raw: Buffer;
}

export function decodeCheckin(body: PlistDict, raw: Buffer): CheckinMessage {
  const messageType = body.MessageType;
  if (typeof messageType !== "string") throw new BadRequest("check-in message has no MessageType");
  if (!(CHECKIN_MESSAGE_TYPES as readonly string[]).includes(messageType)) {
    throw new BadRequest(`unknown MessageType ${JSON.stringify(messageType.slice(0, 64))}`);
  }
  const type = messageType as CheckinMessageType;
  for (const key of Object.keys(REQUIRED[type])) {
    if (body[key] === undefined) throw new BadRequest(`${type} without ${key}`);
  }
  for (const [key, value] of Object.entries(body)) {
    const kind = TYPED.get(key);
    if (kind !== undefined && !isKind(value, kind)) throw new BadRequest(`${key} is not a ${kind}`);
  }
  const channel = resolveChannel(body);
  if (DEVICE_CHANNEL_ONLY.has(type) && channel.isUserChannel) {
    throw new BadRequest(`${type} is a device channel message but came on a user channel`);
  }
  if (NOT_IN_USER_ENROLLMENT.has(type) && channel.type === "UserEnrollmentDevice") {
    throw new BadRequest(`${type} is not available in a User Enrollment`);
  }
  if (type === "UserAuthenticate" && channel.type !== "User") {
    throw new BadRequest("UserAuthenticate must name a macOS user (UDID and UserID)");
  }
  // A required string that is empty names nothing (an empty Topic or PushMagic
  // would be stored and every push to the channel would then fail).
  for (const [key, kind] of Object.entries(REQUIRED[type])) {
    if (kind === "string" && body[key] === "") throw new BadRequest(`${type} with an empty ${key}`);
  }
  if (type === "TokenUpdate" && (body.Token as Buffer).length < MIN_PUSH_TOKEN_BYTES) {
    throw new BadRequest(`TokenUpdate Token is ${(body.Token as Buffer).length} bytes; an APNs device token has ${MIN_PUSH_TOKEN_BYTES}`);
  }
  return { messageType: type, channel, body, raw };
}

function isKind(value: unknown, kind: KeyKind): boolean {
  switch (kind) {
    case "string":
      return typeof value === "string";
    case "data":
      return Buffer.isBuffer(value);
    case "boolean":
      return typeof value === "boolean";
    case "dict":
      return typeof value === "object" && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value) && !(value instanceof Date);
  }
}

/** Reads a key decodeCheckin has type-checked. */
export function str(msg: CheckinMessage, key: string): string | undefined {
  return msg.body[key] as string | undefined;
}
export function data(msg: CheckinMessage, key: string): Buffer | undefined {
  return msg.body[key] as Buffer | undefined;
}
export function bool(msg: CheckinMessage, key: string): boolean | undefined {
  return msg.body[key] as boolean | undefined;
}
