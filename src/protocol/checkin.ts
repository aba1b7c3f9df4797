import type { PlistDict } from "../plist/index.ts";
import { BadRequest } from "../errors.ts";
import { resolveChannel, type Channel } from "./enrollment.ts";

type Kind = "string" | "data" | "boolean" | "dict";
interface KindTypes {
  string: string;
  data: Buffer;
  boolean: boolean;
  dict: PlistDict;
}

/** One key of a message: its name in the plist, its type, and whether the message must carry it. */
interface Field<K extends Kind = Kind, R extends boolean = boolean> {
  key: string;
  kind: K;
  required: R;
}
const required = <K extends Kind>(key: string, kind: K): Field<K, true> => ({ key, kind, required: true });
const optional = <K extends Kind>(key: string, kind: K): Field<K, false> => ({ key, kind, required: false });

/** The typed fields a message's keys decode to. */
type Fields<F extends Record<string, Field>> = {
  readonly [N in keyof F]: F[N] extends Field<infer K, infer R> ? (R extends true ? KindTypes[K] : KindTypes[K] | undefined) : never;
};

/**
 * Which channels may send a message (brief sections 4 and 5.5): any; the
 * device channel only; the device channel outside a User Enrollment (no
 * bootstrap token, no return to service there); a macOS user (UDID and UserID).
 */
type Channels = "any" | "device" | "device, not User Enrollment" | "macOS user";

interface MessageSpec<F extends Record<string, Field> = Record<string, Field>> {
  channels: Channels;
  fields: F;
  /** A rule beyond keys and types, on the decoded message. */
  check?: (msg: Fields<F>) => void;
}
const message = <F extends Record<string, Field>>(channels: Channels, fields: F, check?: (msg: Fields<F>) => void): MessageSpec<F> => ({
  channels,
  fields,
  check,
});

/**
 * An APNs device token is 32 bytes; Apple says not to assume its size, so
 * longer ones pass, but a shorter one is no token APNs ever issued.
 */
export const MIN_PUSH_TOKEN_BYTES = 32;

// Every check-in message: its channels and its keys. Apple labels many keys
// "required" that exist on one channel only (brief 9.13), so identity keys are
// checked by resolveChannel, not here. A new message type is one entry here
// and one handler in core/core.ts.
const MESSAGES = {
  Authenticate: message("device", {
    topic: required("Topic", "string"),
    serialNumber: optional("SerialNumber", "string"),
    productName: optional("ProductName", "string"),
    model: optional("Model", "string"),
    modelName: optional("ModelName", "string"),
    deviceName: optional("DeviceName", "string"),
    osVersion: optional("OSVersion", "string"),
    buildVersion: optional("BuildVersion", "string"),
    imei: optional("IMEI", "string"),
    meid: optional("MEID", "string"),
  }),
  TokenUpdate: message(
    "any",
    {
      topic: required("Topic", "string"),
      token: required("Token", "data"),
      pushMagic: required("PushMagic", "string"),
      unlockToken: optional("UnlockToken", "data"),
      awaitingConfiguration: optional("AwaitingConfiguration", "boolean"),
      userShortName: optional("UserShortName", "string"),
      userLongName: optional("UserLongName", "string"),
      notOnConsole: optional("NotOnConsole", "boolean"),
    },
    (msg) => {
      if (msg.token.length < MIN_PUSH_TOKEN_BYTES) {
        throw new BadRequest(`TokenUpdate Token is ${msg.token.length} bytes; an APNs device token has ${MIN_PUSH_TOKEN_BYTES}`);
      }
    },
  ),
  CheckOut: message("device", {}),
  UserAuthenticate: message("macOS user", {
    userId: required("UserID", "string"),
    digestResponse: optional("DigestResponse", "string"),
    userShortName: optional("UserShortName", "string"),
    userLongName: optional("UserLongName", "string"),
  }),
  GetBootstrapToken: message("device, not User Enrollment", {}),
  SetBootstrapToken: message("device, not User Enrollment", { bootstrapToken: optional("BootstrapToken", "data") }),
  GetToken: message("any", {
    tokenServiceType: required("TokenServiceType", "string"),
    tokenParameters: optional("TokenParameters", "dict"),
  }),
  DeclarativeManagement: message("any", { endpoint: required("Endpoint", "string"), data: optional("Data", "data") }),
  ReturnToService: message("device, not User Enrollment", {}),
};

/** Keys every check-in may carry. */
const COMMON = { authToken: optional("AuthToken", "string") };

type Messages = typeof MESSAGES;
export type CheckinMessageType = keyof Messages;
export const CHECKIN_MESSAGE_TYPES = Object.keys(MESSAGES) as readonly CheckinMessageType[];

/** A decoded check-in of one MessageType: its typed keys, its channel, and the exact bytes the device sent. */
export type CheckinMessageOf<T extends CheckinMessageType> = {
  readonly messageType: T;
  readonly channel: Channel;
  /** The exact bytes the device sent (events and webhooks carry them). */
  readonly raw: Buffer;
} & Fields<typeof COMMON> &
  (Messages[T] extends MessageSpec<infer F> ? Fields<F> : never);

/** Any decoded check-in; `messageType` tells which. */
export type CheckinMessage = { [T in CheckinMessageType]: CheckinMessageOf<T> }[CheckinMessageType];

export type AuthenticateMessage = CheckinMessageOf<"Authenticate">;
export type TokenUpdateMessage = CheckinMessageOf<"TokenUpdate">;
export type UserAuthenticateMessage = CheckinMessageOf<"UserAuthenticate">;
export type SetBootstrapTokenMessage = CheckinMessageOf<"SetBootstrapToken">;
export type GetTokenMessage = CheckinMessageOf<"GetToken">;
export type DeclarativeManagementMessage = CheckinMessageOf<"DeclarativeManagement">;

/** A message's spec, laid out once for the per-request loop. */
interface Decoder {
  type: CheckinMessageType;
  channels: Channels;
  fields: ReadonlyArray<readonly [name: string, field: Field]>;
  required: readonly Field[];
  check?: (msg: never) => void;
}

// Maps, not objects: a device's MessageType or key "constructor" or
// "__proto__" must not find Object.prototype's members here.
const DECODERS = new Map<string, Decoder>(
  Object.entries(MESSAGES).map(([type, spec]) => {
    const fields: Array<[string, Field]> = Object.entries({ ...COMMON, ...spec.fields });
    const decoder: Decoder = {
      type: type as CheckinMessageType,
      channels: spec.channels,
      fields,
      required: fields.map(([, f]) => f).filter((f) => f.required),
      check: spec.check as Decoder["check"],
    };
    return [type, decoder];
  }),
);

/** The type of every key Orchard reads, in any message: one type per key, checked wherever it appears. */
const KEY_KINDS = new Map<string, Kind>();
for (const { fields } of DECODERS.values()) {
  for (const [, f] of fields) {
    const had = KEY_KINDS.get(f.key);
    if (had !== undefined && had !== f.kind) throw new Error(`check-in key ${f.key} is declared as ${had} and as ${f.kind}`);
    KEY_KINDS.set(f.key, f.kind);
  }
}

export function decodeCheckin(body: PlistDict, raw: Buffer): CheckinMessage {
  const messageType = body.MessageType;
  if (typeof messageType !== "string") throw new BadRequest("check-in message has no MessageType");
  const decoder = DECODERS.get(messageType);
  if (decoder === undefined) throw new BadRequest(`unknown MessageType ${JSON.stringify(messageType.slice(0, 64))}`);
  const type = decoder.type;
  for (const f of decoder.required) {
    if (body[f.key] === undefined) throw new BadRequest(`${type} without ${f.key}`);
  }
  for (const [key, value] of Object.entries(body)) {
    const kind = KEY_KINDS.get(key);
    if (kind !== undefined && !isKind(value, kind)) throw new BadRequest(`${key} is not a ${kind}`);
  }
  const channel = resolveChannel(body);
  checkChannel(type, decoder.channels, channel);
  // A required string that is empty names nothing (an empty Topic or PushMagic
  // would be stored and every push to the channel would then fail).
  for (const f of decoder.required) {
    if (f.kind === "string" && body[f.key] === "") throw new BadRequest(`${type} with an empty ${f.key}`);
  }
  const msg: Record<string, unknown> = { messageType: type, channel, raw };
  for (const [name, f] of decoder.fields) msg[name] = body[f.key];
  decoder.check?.(msg as never);
  return msg as CheckinMessage;
}

function checkChannel(type: CheckinMessageType, channels: Channels, channel: Channel): void {
  if (channels === "macOS user") {
    if (channel.type !== "User") throw new BadRequest(`${type} must name a macOS user (UDID and UserID)`);
    return;
  }
  if (channels === "any") return;
  if (channel.isUserChannel) throw new BadRequest(`${type} is a device channel message but came on a user channel`);
  if (channels === "device, not User Enrollment" && channel.type === "UserEnrollmentDevice") {
    throw new BadRequest(`${type} is not available in a User Enrollment`);
  }
}

function isKind(value: unknown, kind: Kind): boolean {
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
