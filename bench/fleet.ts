// The bench's devices: one test CA, one shared RSA key, and per device the
// requests SimDevice sends, recorded once and encoded per server.
import { fork } from "node:child_process";
import { X509Certificate } from "node:crypto";
import os from "node:os";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import {
  createCa,
  generateKeyPair,
  issueDeviceIdentity,
  type CaIdentity,
  type DeviceIdentity,
  type KeyPair,
} from "../src/identity/testing/pki.ts";
import { certFingerprint } from "../src/identity/fingerprint.ts";
import { serializePlist } from "../src/plist/index.ts";
import { SimDevice } from "../src/sim/device.ts";
import { prepare, RecordingTransport, RequestTemplate, type PreparedRequest } from "../src/sim/prebuilt.ts";
import { SplicedRequest } from "../src/sim/splice.ts";
import type { RequestOptions } from "../src/sim/transport.ts";
import { DigestAnswerer } from "../src/sim/userauth.ts";
import { issueCertificates, type IssueDone, type IssueJob } from "./issue-worker.ts";

const ISSUE_WORKER = fileURLToPath(new URL("./issue-worker.ts", import.meta.url));

export const CERT_HEADER = "x-client-cert";
export const API_KEY = "bench-api-key-0123456789abcdef";
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
  /** The key every device certificate shares. */
  key: KeyPair;
  devices: RecordedDevice[];
}

/** A device of the enroll scenario: enrolls once, with its own UDID and certificate. */
export interface RecordedEnrollee {
  udid: string;
  authenticate: RequestOptions;
  tokenUpdate: RequestOptions;
}

/** A RecordedEnrollee encoded for one server. */
export interface BenchEnrollee {
  udid: string;
  authenticate: PreparedRequest;
  tokenUpdate: PreparedRequest;
}

/** Fixed UDIDs, so a persistent --storage sees the same devices run after run. */
export function benchUdid(i: number): string {
  return `BE4C0000-0000-4000-8000-${i.toString(16).toUpperCase().padStart(12, "0")}`;
}

/** Device i's network user, fixed for the same reason. */
export function benchUser(i: number): BenchUser {
  return {
    userId: `BE4C0001-0000-4000-8000-${i.toString(16).toUpperCase().padStart(12, "0")}`,
    shortName: `bench-user-${i}`,
    password: `bench-password-${i}`,
  };
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
  return { ca, key, devices };
}

/**
 * Enroll-scenario UDIDs: `tag` (4 hex digits, random per bench run) keeps
 * them new even to a persistent --storage that saw an earlier run.
 */
export function enrolleeUdid(tag: string, i: number): string {
  return `BE4C0002-${tag}-4000-8000-${i.toString(16).toUpperCase().padStart(12, "0")}`;
}

/**
 * `count` new devices for the enroll scenario, each with its own certificate
 * from the fleet's CA (on the fleet's shared key: the server binds a
 * certificate to one device, so none can be reused), and the Authenticate
 * and TokenUpdate that SimDevice sends for it, recorded as recordFleet does.
 * Issuing costs 2.5 to 4 ms of CPU per certificate (mostly @peculiar/x509's
 * encoding), so from 1,000 on it is shared among one child process per core
 * (bench/issue-worker.ts), 16 at a time in each.
 */
export async function recordEnrollees(
  fleet: Fleet,
  count: number,
  tag: string,
): Promise<{ enrollees: RecordedEnrollee[]; issueS: number; recordS: number; processes: number }> {
  const t0 = performance.now();
  const names = Array.from({ length: count }, (_, i) => `bench-enrollee-${tag}-${i}`);
  const job: Omit<IssueJob, "commonNames"> = {
    caCertPem: fleet.ca.certPem,
    caKeyPem: fleet.ca.keyPem,
    keyPem: fleet.key.privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    concurrency: 16,
  };
  const processes = count >= 1000 ? Math.max(1, Math.min(4, os.availableParallelism())) : 1;
  let certPems: string[];
  if (processes === 1) {
    certPems = await issueCertificates({ ...job, commonNames: names });
  } else {
    const share = Math.ceil(count / processes);
    const parts = await Promise.all(
      Array.from({ length: processes }, (_, p) => issueInChild({ ...job, commonNames: names.slice(p * share, (p + 1) * share) })),
    );
    certPems = parts.flat();
  }
  const t1 = performance.now();
  const transport = new RecordingTransport();
  const keyPem = job.keyPem;
  const enrollees: RecordedEnrollee[] = [];
  for (let i = 0; i < count; i++) {
    const udid = enrolleeUdid(tag, i);
    const cert = new X509Certificate(certPems[i]!);
    const identity: DeviceIdentity = {
      commonName: names[i]!,
      certPem: certPems[i]!,
      certDer: cert.raw,
      keyPem,
      cert,
      key: fleet.key.privateKey,
      publicKey: fleet.key.publicKey,
      fingerprint: certFingerprint(cert),
    };
    const device = new SimDevice({ transport, identity, mode: { kind: "header", header: CERT_HEADER }, udid });
    enrollees.push({
      udid,
      authenticate: await transport.record(() => device.authenticate()),
      tokenUpdate: await transport.record(() => device.tokenUpdate()),
    });
  }
  return { enrollees, issueS: (t1 - t0) / 1000, recordS: (performance.now() - t1) / 1000, processes };
}

/** Runs bench/issue-worker.ts in a child process for one share of the certificates. */
function issueInChild(job: IssueJob): Promise<string[]> {
  const child = fork(ISSUE_WORKER, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    let answered = false;
    child.once("message", (m: IssueDone) => {
      answered = true;
      if ("error" in m) reject(new Error(`issuing certificates: ${m.error}`));
      else resolve(m.certPems);
    });
    child.once("error", reject);
    child.once("exit", (code) => {
      if (!answered) reject(new Error(`the certificate-issuing process exited with ${code}`));
    });
    child.send(job);
  });
}

/**
 * Rewrites a recorded request for a server other than Orchard (the NanoMDM
 * baseline: its paths and API credentials); the identity function for Orchard.
 */
export type RequestMap = (o: RequestOptions) => RequestOptions;

export function enrolleeForServer(url: string, d: RecordedEnrollee, map: RequestMap = (o) => o): BenchEnrollee {
  const host = new URL(url).host;
  return { udid: d.udid, authenticate: prepare(host, map(d.authenticate)), tokenUpdate: prepare(host, map(d.tokenUpdate)) };
}

export function forServer(url: string, d: RecordedDevice, map: RequestMap = (o) => o): BenchDevice {
  const host = new URL(url).host;
  const p = (o: RequestOptions) => prepare(host, map(o));
  return {
    udid: d.udid,
    authenticate: p(d.authenticate),
    tokenUpdate: p(d.tokenUpdate),
    idle: p(d.idle),
    ack: new RequestTemplate(p(d.ack), UUID_PLACEHOLDER),
    enqueue: new RequestTemplate(p(d.enqueue), UUID_PLACEHOLDER),
    login: {
      user: d.user,
      createUser: p(d.createUser),
      challenge: p(d.userAuthenticate),
      response: new SplicedRequest(p(d.userAuthenticateResponse), DIGEST_PLACEHOLDER),
      idle: new RequestTemplate(p(d.userIdle), AUTH_TOKEN_PLACEHOLDER),
      answerer: new DigestAnswerer({ username: d.user.shortName, password: d.user.password }),
    },
  };
}
