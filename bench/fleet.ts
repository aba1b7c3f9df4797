// The bench's devices: one test CA, one shared RSA key, and per device the
// requests SimDevice sends, recorded once and encoded per server.
import { createCa, generateKeyPair, issueDeviceIdentity, type CaIdentity } from "../src/identity/testing/pki.ts";
import { serializePlist } from "../src/plist/index.ts";
import { SimDevice } from "../src/sim/device.ts";
import { prepare, RecordingTransport, RequestTemplate, type PreparedRequest } from "../src/sim/prebuilt.ts";
import { SplicedRequest } from "../src/sim/splice.ts";
import type { RequestOptions } from "../src/sim/transport.ts";
import { DigestAnswerer } from "../src/sim/userauth.ts";

export const CERT_HEADER = "x-client-cert";
export const API_KEY = "bench";
/** Replaced by a fresh CommandUUID (same length) in every round trip. */
export const UUID_PLACEHOLDER = "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX";
/** The realm of the bench servers' digest challenges (--digest-realm). */
export const DIGEST_REALM = "bench.realm";
/** Replaced by the DigestResponse (any length) in step 2 of a login. */
const DIGEST_PLACEHOLDER = "@@DIGEST-RESPONSE@@";
/** Replaced by the AuthToken (32 bytes in base64: always 44 characters) on the user's Idle. */
export const AUTH_TOKEN_PLACEHOLDER = "@@AUTH-TOKEN@@".padEnd(44, "@");

/** The network user that logs in on a device in the login scenario. */
export interface BenchUser {
  /** The user's GUID: UserID in the messages, guid in the directory. */
  userId: string;
  shortName: string;
  password: string;
}

/** What a device sends, independent of the server it is sent to. */
export interface RecordedDevice {
  udid: string;
  authenticate: RequestOptions;
  tokenUpdate: RequestOptions;
  idle: RequestOptions;
  /** Acknowledged report for UUID_PLACEHOLDER. */
  ack: RequestOptions;
  /** Operator API: enqueue a DeviceInformation command with UUID_PLACEHOLDER for this device. */
  enqueue: RequestOptions;
  user: BenchUser;
  /** Operator API: PUT /v1/users/{shortName} with the user's password and GUID. */
  createUser: RequestOptions;
  /** UserAuthenticate step 1: UDID and UserID. */
  userAuthenticate: RequestOptions;
  /** UserAuthenticate step 2, DigestResponse = DIGEST_PLACEHOLDER. */
  userAuthenticateResponse: RequestOptions;
  /** Idle on the user's channel (UserID, UserShortName), AuthToken = AUTH_TOKEN_PLACEHOLDER. */
  userIdle: RequestOptions;
}

/** What the login scenario sends for one device, encoded for one server. */
export interface BenchLogin {
  user: BenchUser;
  createUser: PreparedRequest;
  challenge: PreparedRequest;
  /** Step 2, for a DigestResponse (XML-escaped). */
  response: SplicedRequest;
  /** The user's Idle, for an AuthToken of 44 characters. */
  idle: RequestTemplate;
  answerer: DigestAnswerer;
}

/** A device's requests encoded for one server. */
export interface BenchDevice {
  udid: string;
  authenticate: PreparedRequest;
  tokenUpdate: PreparedRequest;
  idle: PreparedRequest;
  ack: RequestTemplate;
  enqueue: RequestTemplate;
  login: BenchLogin;
}

export interface Fleet {
  ca: CaIdentity;
  devices: RecordedDevice[];
}

/** Fixed UDIDs, so a persistent --storage sees the same devices run after run. */
export function benchUdid(i: number): string {
  return `BE4C0000-0000-4000-8000-${i.toString(16).toUpperCase().padStart(12, "0")}`;
}

/** Device i's network user, fixed for the same reason. */
export function benchUser(i: number): BenchUser {
  return { userId: `BE4C0001-0000-4000-8000-${i.toString(16).toUpperCase().padStart(12, "0")}`, shortName: `bench-user-${i}`, password: `bench-password-${i}` };
}

export async function recordFleet(count: number): Promise<Fleet> {
  const ca = await createCa({ commonName: "Orchard Bench Device CA" });
  const key = await generateKeyPair(); // shared: RSA key generation is slow
  const transport = new RecordingTransport();
  const auth = "Basic " + Buffer.from(`x:${API_KEY}`).toString("base64");
  const command = Buffer.from(
    serializePlist({
      CommandUUID: UUID_PLACEHOLDER,
      Command: { RequestType: "DeviceInformation", Queries: ["DeviceName", "OSVersion", "SerialNumber", "UDID"] },
    }),
  );
  const devices: RecordedDevice[] = [];
  for (let i = 0; i < count; i++) {
    const identity = await issueDeviceIdentity(ca, { commonName: `bench-device-${i}`, keyPair: key });
    const udid = benchUdid(i);
    const user = benchUser(i);
    const device = new SimDevice({ transport, identity, mode: { kind: "header", header: CERT_HEADER }, udid });
    devices.push({
      udid,
      authenticate: await transport.record(() => device.authenticate()),
      tokenUpdate: await transport.record(() => device.tokenUpdate()),
      idle: await transport.record(() => device.report("Idle")),
      ack: await transport.record(() => device.report("Acknowledged", { CommandUUID: UUID_PLACEHOLDER })),
      enqueue: {
        method: "PUT",
        path: `/v1/enqueue/${encodeURIComponent(udid)}?nopush=1`,
        headers: { authorization: auth, "content-type": "application/xml" },
        body: command,
      },
      user,
      createUser: {
        method: "PUT",
        path: `/v1/users/${encodeURIComponent(user.shortName)}`,
        headers: { authorization: auth, "content-type": "application/json" },
        body: Buffer.from(JSON.stringify({ password: user.password, guid: user.userId })),
      },
      userAuthenticate: await transport.record(() => device.checkin("UserAuthenticate", { UserID: user.userId })),
      userAuthenticateResponse: await transport.record(() =>
        device.checkin("UserAuthenticate", { UserID: user.userId, DigestResponse: DIGEST_PLACEHOLDER }),
      ),
      userIdle: await transport.record(() =>
        device.report("Idle", device.userKeys({ userId: user.userId, shortName: user.shortName, authToken: AUTH_TOKEN_PLACEHOLDER })),
      ),
    });
  }
  return { ca, devices };
}

export function forServer(url: string, d: RecordedDevice): BenchDevice {
  const host = new URL(url).host;
  return {
    udid: d.udid,
    authenticate: prepare(host, d.authenticate),
    tokenUpdate: prepare(host, d.tokenUpdate),
    idle: prepare(host, d.idle),
    ack: new RequestTemplate(prepare(host, d.ack), UUID_PLACEHOLDER),
    enqueue: new RequestTemplate(prepare(host, d.enqueue), UUID_PLACEHOLDER),
    login: {
      user: d.user,
      createUser: prepare(host, d.createUser),
      challenge: prepare(host, d.userAuthenticate),
      response: new SplicedRequest(prepare(host, d.userAuthenticateResponse), DIGEST_PLACEHOLDER),
      idle: new RequestTemplate(prepare(host, d.userIdle), AUTH_TOKEN_PLACEHOLDER),
      answerer: new DigestAnswerer({ username: d.user.shortName, password: d.user.password }),
    },
  };
}
