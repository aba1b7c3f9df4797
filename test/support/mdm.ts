// Raw device requests and store snapshots for the end-to-end tests.
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { escapedPemHeader, issueDeviceIdentity, rfc9440Header, signMdmBody, type DeviceIdentity } from "../../src/identity/testing/pki.ts";
import { parsePlistDict, serializePlist, type PlistDict } from "../../src/plist/index.ts";
import { FIXTURES_DIR } from "../../src/plist/testing.ts";
import type { Response, Transport } from "../../src/sim/transport.ts";
import type { Store } from "../../src/store/index.ts";
import { testFleet, type TestFleet } from "./fleet.ts";
import { startTestServer, type TestServer } from "./server.ts";

export const CHECKIN_TYPE = "application/x-apple-aspen-mdm-checkin";
export const COMMAND_TYPE = "application/x-apple-aspen-mdm";
export const FIXTURES = FIXTURES_DIR;

export function fixture(name: string): Buffer {
  return fs.readFileSync(path.join(FIXTURES, name));
}

export function plist(dict: PlistDict): Buffer {
  return Buffer.from(serializePlist(dict));
}

/** A device identity from the fleet's CA with the fleet's shared key. */
let n = 0;
export function identity(fleet: TestFleet, name = `raw-device-${++n}`): Promise<DeviceIdentity> {
  return issueDeviceIdentity(fleet.ca, { commonName: name, keyPair: fleet.key });
}

export type Auth =
  | { kind: "header"; identity: DeviceIdentity; form?: "nginx" | "rfc9440" }
  | { kind: "signature"; identity: DeviceIdentity /** sign these bytes instead of the body */; signOver?: Buffer }
  | { kind: "none" };

export interface RawReply extends Response {
  text: string;
  plist?: PlistDict;
}

/** Sends exactly these bytes with exactly these headers (plus the identity). */
export async function rawPut(
  transport: Transport,
  urlPath: string,
  body: Buffer,
  o: { auth: Auth; contentType?: string | null; headers?: Record<string, string> },
): Promise<RawReply> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.contentType !== null) headers["content-type"] = o.contentType ?? CHECKIN_TYPE;
  if (o.auth.kind === "header") {
    headers["x-client-cert"] =
      o.auth.form === "rfc9440" ? rfc9440Header(o.auth.identity.certDer) : escapedPemHeader(o.auth.identity.certPem);
  } else if (o.auth.kind === "signature") {
    headers["mdm-signature"] = await signMdmBody(o.auth.identity, o.auth.signOver ?? body);
  }
  const res = await transport.send({ method: "PUT", path: urlPath, headers, body });
  const reply: RawReply = { ...res, text: res.body.toString("utf8") };
  if (res.status === 200 && res.body.length > 0 && /xml/.test(String(res.headers["content-type"]))) {
    reply.plist = parsePlistDict(res.body);
  }
  return reply;
}

/** A small device speaking through raw requests with a header identity. */
export class RawDevice {
  constructor(
    readonly transport: Transport,
    readonly identity: DeviceIdentity,
    readonly udid: string,
  ) {}

  checkin(messageType: string, fields: PlistDict = {}, o: { path?: string; contentType?: string | null } = {}): Promise<RawReply> {
    return rawPut(this.transport, o.path ?? "/checkin", plist({ MessageType: messageType, UDID: this.udid, ...fields }), {
      auth: { kind: "header", identity: this.identity },
      contentType: o.contentType === undefined ? CHECKIN_TYPE : o.contentType,
    });
  }

  report(status: string, fields: PlistDict = {}, o: { path?: string; contentType?: string | null } = {}): Promise<RawReply> {
    return rawPut(this.transport, o.path ?? "/mdm", plist({ Status: status, UDID: this.udid, ...fields }), {
      auth: { kind: "header", identity: this.identity },
      contentType: o.contentType === undefined ? COMMAND_TYPE : o.contentType,
    });
  }

  authenticate(extra: PlistDict = {}, path?: string): Promise<RawReply> {
    return this.checkin(
      "Authenticate",
      { Topic: "com.apple.mgmt.External.test", SerialNumber: `SN${this.udid.slice(0, 8)}`, ...extra },
      { path },
    );
  }

  tokenUpdate(extra: PlistDict = {}): Promise<RawReply> {
    return this.checkin("TokenUpdate", {
      Topic: "com.apple.mgmt.External.test",
      Token: Buffer.from("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", "hex"),
      PushMagic: "PUSH-MAGIC",
      ...extra,
    });
  }

  /** Authenticate (with `facts`, e.g. a ProductName) then TokenUpdate. */
  async enroll(facts: PlistDict = {}): Promise<void> {
    const a = await this.authenticate(facts);
    if (a.status !== 200) throw new Error(`Authenticate answered ${a.status}: ${a.text}`);
    const t = await this.tokenUpdate();
    if (t.status !== 200) throw new Error(`TokenUpdate answered ${t.status}: ${t.text}`);
  }
}

/** The core tables; dumpStore reads these and any table a later migration adds. */
export const TABLES = ["devices", "enrollments", "commands", "command_queue", "settings", "events"] as const;

/** The audit log records refused API requests too, by design (docs/operators.md): "nothing changed" leaves it out. */
export const AUDIT_TABLES: readonly string[] = ["audit_log", "audit_objects"];

/** Every row of every table Orchard writes (SQLite), in a stable order; the audit log left out. */
export async function dumpStore(store: Store): Promise<Record<string, unknown[]>> {
  const tablesSql =
    store.db.dialect === "sqlite"
      ? "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
      : "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name";
  const names = (await store.db.all<{ name: string }>(tablesSql)).map((r) => r.name).filter((t) => !AUDIT_TABLES.includes(t));
  for (const t of TABLES) if (!names.includes(t)) throw new Error(`table ${t} is missing`);
  const out: Record<string, unknown[]> = {};
  for (const t of names) out[t] = await store.db.all(`SELECT * FROM ${t} ORDER BY 1`);
  return out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns a value other than undefined, within timeoutMs. */
export async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs = 15_000, what = "condition"): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A command plist for the API. */
export function commandPlist(requestType: string, commandUuid?: string, extra: PlistDict = {}): Buffer {
  const dict: PlistDict = { Command: { RequestType: requestType, ...extra } };
  if (commandUuid !== undefined) dict.CommandUUID = commandUuid;
  return plist(dict);
}

/** A test server (SQLite) with its fleet and one enrolled raw device; stop() ends all three. */
export async function serverWithDevice(
  args: string[] = [],
): Promise<{ server: TestServer; fleet: TestFleet; dev: RawDevice; stop(): Promise<void> }> {
  const server = await startTestServer(args);
  const fleet = await testFleet(server.url);
  const dev = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
  await dev.enroll();
  return {
    server,
    fleet,
    dev,
    async stop() {
      fleet.close();
      await server.stop();
    },
  };
}

/** Waits until check() is true (polling), or fails after timeoutMs: a condition, never a duration. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
