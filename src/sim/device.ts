import { randomBytes, randomUUID } from "node:crypto";
import { parsePlistDict, serializePlist, type PlistDict } from "../plist/index.ts";
import { signMdmBody, escapedPemHeader, type DeviceIdentity } from "../identity/testing/pki.ts";
import type { Response, Sender } from "./transport.ts";

export type IdentityMode =
  /** The identity travels in a proxy header (--cert-header), as behind nginx. */
  | { kind: "header"; header: string }
  /** Every body is signed into an Mdm-Signature header (SignMessage=true). */
  | { kind: "signature" }
  /** The transport presents the certificate in TLS itself. */
  | { kind: "tls" };

export interface SimDeviceOptions {
  transport: Sender;
  identity: DeviceIdentity;
  mode: IdentityMode;
  udid?: string;
  serialNumber?: string;
  platform?: "macOS" | "iOS";
  topic?: string;
  checkinPath?: string;
  serverPath?: string;
  /** What Authenticate reports about the hardware and OS (Model, OSVersion, ...); a default per platform when absent. */
  facts?: PlistDict;
}

/** A reply from the server with its plist, when it sent one. */
export interface DeviceReply extends Response {
  plist?: PlistDict;
}

export interface SimUser {
  /** The user's GUID (UserID). */
  userId: string;
  shortName: string;
  longName?: string;
  /** The AuthToken from the latest UserAuthenticate, sent on every user-channel request. */
  authToken?: string;
}

/**
 * A simulated Mac or iPhone speaking the MDM check-in and command protocols:
 * the one device implementation shared by the tests, the bench and `orchard simulate`.
 */
export class SimDevice {
  readonly udid: string;
  readonly serialNumber: string;
  readonly platform: "macOS" | "iOS";
  readonly topic: string;
  readonly pushToken = randomBytes(32);
  readonly pushMagic = randomUUID().toUpperCase();
  private readonly checkinPath: string;
  private readonly serverPath: string;
  private readonly certHeaderValue: string;

  constructor(private readonly o: SimDeviceOptions) {
    this.udid = o.udid ?? randomUUID().toUpperCase();
    this.serialNumber = o.serialNumber ?? randomBytes(6).toString("hex").toUpperCase();
    this.platform = o.platform ?? "macOS";
    this.topic = o.topic ?? "com.apple.mgmt.External.orchard-sim";
    this.checkinPath = o.checkinPath ?? "/checkin";
    this.serverPath = o.serverPath ?? "/mdm";
    this.certHeaderValue = escapedPemHeader(o.identity.certPem);
  }

  /** Sends a check-in message (MessageType and UDID are added). */
  checkin(messageType: string, fields: PlistDict = {}): Promise<DeviceReply> {
    return this.put(this.checkinPath, "application/x-apple-aspen-mdm-checkin", { MessageType: messageType, UDID: this.udid, ...fields });
  }

  /** Sends a command report (Status and UDID are added). */
  report(status: string, fields: PlistDict = {}): Promise<DeviceReply> {
    return this.put(this.serverPath, "application/x-apple-aspen-mdm", { Status: status, UDID: this.udid, ...fields });
  }

  /** The hardware and OS facts Authenticate sends (and a DeviceInformation answer can reuse). */
  facts(): PlistDict {
    if (this.o.facts) return { ...this.o.facts };
    return this.platform === "macOS"
      ? {
          Model: "Mac14,2",
          ModelName: "MacBook Air",
          DeviceName: `Sim ${this.serialNumber}`,
          ProductName: "Mac14,2",
          OSVersion: "14.6",
          BuildVersion: "23G80",
        }
      : { ProductName: "iPhone15,2", OSVersion: "17.5", BuildVersion: "21F79" };
  }

  authenticate(): Promise<DeviceReply> {
    return this.checkin("Authenticate", { Topic: this.topic, SerialNumber: this.serialNumber, ...this.facts() });
  }

  tokenUpdate(extra: PlistDict = {}): Promise<DeviceReply> {
    return this.checkin("TokenUpdate", { Topic: this.topic, Token: this.pushToken, PushMagic: this.pushMagic, ...extra });
  }

  /** Authenticate then TokenUpdate: what a device does when its profile installs. */
  async enroll(): Promise<void> {
    for (const step of [() => this.authenticate(), () => this.tokenUpdate()]) {
      const r = await step();
      if (r.status !== 200) throw new Error(`enrollment step answered ${r.status}: ${r.body.toString().trim()}`);
    }
  }

  /** The keys that put a message on a user's channel. */
  userKeys(user: SimUser): PlistDict {
    const keys: PlistDict = { UserID: user.userId, UserShortName: user.shortName };
    if (user.longName) keys.UserLongName = user.longName;
    if (user.authToken) keys.AuthToken = user.authToken;
    return keys;
  }

  /**
   * One UserAuthenticate message: the first (no DigestResponse) asks for a
   * challenge, the second answers it and gets the AuthToken.
   */
  userAuthenticate(user: SimUser, digestResponse?: string): Promise<DeviceReply> {
    const fields: PlistDict = { UserID: user.userId };
    if (digestResponse !== undefined) fields.DigestResponse = digestResponse;
    return this.checkin("UserAuthenticate", fields);
  }

  userTokenUpdate(user: SimUser, token = randomBytes(32), pushMagic = randomUUID().toUpperCase()): Promise<DeviceReply> {
    return this.checkin("TokenUpdate", {
      Topic: this.topic,
      Token: token,
      PushMagic: pushMagic,
      NotOnConsole: false,
      ...this.userKeys(user),
    });
  }

  private async put(path: string, contentType: string, message: PlistDict): Promise<DeviceReply> {
    const body = Buffer.from(serializePlist(message));
    const headers: Record<string, string> = { "content-type": contentType };
    if (this.o.mode.kind === "header") headers[this.o.mode.header] = this.certHeaderValue;
    if (this.o.mode.kind === "signature") headers["mdm-signature"] = await signMdmBody(this.o.identity, body);
    const res = await this.o.transport.send({ method: "PUT", path, headers, body });
    const reply: DeviceReply = res;
    if (res.status === 200 && res.body.length > 0 && /xml|plist/.test(String(res.headers["content-type"]))) {
      reply.plist = parsePlistDict(res.body);
    }
    return reply;
  }
}
