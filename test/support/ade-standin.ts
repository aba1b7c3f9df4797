// A stand-in for Apple's device assignment API (mdmenrollment.apple.com), for
// tests: no simulator of it can be installed (Apple's depsim is not public).
// Written from NanoDEP's godep client, its schema and its operations guide:
// OAuth1 HMAC-SHA1 on GET /session (verified here with code of its own, not
// Orchard's), session tokens that expire (401, or 403 FORBIDDEN as depsim
// answers), X-ADM-Auth-Session renewed in answers on demand, the device list
// fetched and synced with cursors (and EXHAUSTED_CURSOR, INVALID_CURSOR,
// EXPIRED_CURSOR), profiles defined, assigned and removed, and any status
// (401/403/429/500) injected on demand. It also issues a server token
// (.p7m) encrypted to the certificate an admin would upload to ABM, and plays
// Apple's device CA: device identities that sign the MachineInfo a Mac sends
// the enrollment URL during Setup Assistant.
import { createHmac, randomBytes, X509Certificate } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { buildEnvelopedData, buildSignedData } from "../../src/identity/cms.ts";
import { buildSmime, buildSmimeInner } from "../../src/identity/smime.ts";
import { createCa, generateKeyPair, issueDeviceIdentity, type KeyPair, type PkiIdentity } from "../../src/identity/testing/pki.ts";
import { serializePlist, type PlistDict } from "../../src/plist/index.ts";

/**
 * A test "Apple device CA" (Apple's is "Apple iPhone Device CA"): it issues
 * device identities, and a device signs its MachineInfo with its own (a CMS
 * SignedData with the plist inside, as Setup Assistant sends it).
 */
export class AppleDeviceCa {
  private constructor(
    readonly ca: PkiIdentity,
    private readonly key: KeyPair,
  ) {}

  static async create(commonName = "Test Apple iPhone Device CA"): Promise<AppleDeviceCa> {
    return new AppleDeviceCa(await createCa({ commonName }), await generateKeyPair());
  }

  /** A device identity (one shared key: RSA key generation is slow). */
  device(udid: string): Promise<PkiIdentity> {
    return issueDeviceIdentity(this.ca, { commonName: udid, keyPair: this.key, extendedKeyUsages: null });
  }

  /** MachineInfo as a device sends it: the plist, signed with the device's identity. */
  static sign(info: PlistDict, identity: PkiIdentity): Buffer {
    return buildSignedData({
      content: Buffer.from(serializePlist(info)),
      signerCert: identity.cert,
      signerKey: identity.key,
      digest: "sha256",
      attributes: [],
    });
  }
}

/** A Mac's MachineInfo keys (Apple's other/machineinfo.yaml). */
export function machineInfo(serial: string, udid: string, extra: PlistDict = {}): PlistDict {
  return { UDID: udid, SERIAL: serial, PRODUCT: "MacBookPro18,3", VERSION: "24A335", OS_VERSION: "15.0", LANGUAGE: "en", ...extra };
}

export interface StandinDevice {
  serial_number: string;
  model: string;
  description: string;
  color: string;
  os: string;
  device_family: string;
  profile_status: string;
  profile_uuid?: string;
  profile_assign_time?: string;
  device_assigned_by: string;
  device_assigned_date: string;
}

interface Op {
  seq: number;
  serial: string;
  opType: "added" | "modified" | "deleted";
  at: string;
}

interface Cursor {
  /** Fetch position in the device list (sorted by serial); -1 for a sync cursor. */
  offset: number;
  /** Ops up to this sequence are covered. */
  seq: number;
  issuedAt: number;
}

interface Failure {
  path: string;
  /** Calls to the path answered normally before this failure. */
  skip: number;
  status: number;
  body: string;
  headers: Record<string, string>;
}

export interface StandinRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export class AdeStandin {
  readonly consumerKey = `CK_${randomBytes(20).toString("hex")}`;
  readonly consumerSecret = `CS_${randomBytes(20).toString("hex")}`;
  readonly accessToken = `AT_O${randomBytes(20).toString("hex")}`;
  readonly accessSecret = `AS_${randomBytes(20).toString("hex")}`;
  readonly serverUuid = randomBytes(16).toString("hex").toUpperCase();
  url = "";
  /** Every request, in order (secrets included: a test asserts they never reach Orchard's logs). */
  readonly requests: StandinRequest[] = [];
  readonly sessionsIssued: string[] = [];
  /** Session lifetime; an expired session gets `expiredAnswer`. */
  sessionTtlMs = 60 * 60_000;
  expiredAnswer: 401 | 403 = 403;
  /** Renew the session token in an answer's X-ADM-Auth-Session every N authenticated calls (the old one stops working). */
  renewSessionEvery: number | undefined;
  /** The most devices one page holds, whatever the limit asked. */
  maxPage = 1000;
  cursorTtlMs = 7 * 86_400_000;
  /** What a profile assignment does to the device list: a modified op, as Apple records it. */
  assignmentMakesOp = true;
  /** The server token is past its access_token_expiry: GET /session is refused, as Apple refuses it. */
  tokenExpired = false;
  /** A fetch's last page says more_to_follow, and the call after it is answered EXHAUSTED_CURSOR (Apple has been seen to). */
  fetchEndsExhausted = false;

  private readonly devices = new Map<string, StandinDevice>();
  /** The device list in serial order, kept until a device is added or removed (a fetch of 100,000 reads it 100 times). */
  private sorted: StandinDevice[] | undefined;
  private readonly ops: Op[] = [];
  private seq = 0;
  private readonly sessions = new Map<string, number>();
  private readonly cursors = new Map<string, Cursor>();
  private readonly profiles = new Map<string, Record<string, unknown>>();
  private readonly failures: Failure[] = [];
  private calls = 0;
  private server: http.Server | undefined;

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        const answer = this.handle(req, body);
        res.writeHead(answer.status, { "content-type": "application/json;charset=UTF8", ...answer.headers });
        res.end(answer.body);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** The server token ABM would give for this certificate: S/MIME, EnvelopedData to it, JSON inside. */
  issueToken(certPem: string, o: { expiry?: Date; consumerKey?: string } = {}): Buffer {
    const json = JSON.stringify({
      consumer_key: o.consumerKey ?? this.consumerKey,
      consumer_secret: this.consumerSecret,
      access_token: this.accessToken,
      access_secret: this.accessSecret,
      access_token_expiry: (o.expiry ?? new Date(Date.now() + 365 * 86_400_000)).toISOString().replace(/\.\d{3}Z$/, "Z"),
    });
    return buildSmime(buildEnvelopedData(buildSmimeInner(json), new X509Certificate(certPem), "aes-256-cbc"));
  }

  /** Adds n devices SERIAL<prefix>000001...; returns their serials. */
  addDevices(n: number, prefix = "C02"): string[] {
    const serials: string[] = [];
    for (let i = 0; i < n; i++) {
      const serial = `${prefix}${String(this.devices.size + 1).padStart(7, "0")}`;
      const at = new Date().toISOString();
      this.sorted = undefined;
      this.devices.set(serial, {
        serial_number: serial,
        model: "MacBook Pro 14-inch",
        description: "MBP 14 SPG",
        color: "space gray",
        os: "OSX",
        device_family: "Mac",
        profile_status: "empty",
        device_assigned_by: "admin@example.org",
        device_assigned_date: at,
      });
      this.op(serial, "added");
      serials.push(serial);
    }
    return serials;
  }

  modify(serial: string, changes: Partial<StandinDevice>): void {
    Object.assign(this.devices.get(serial)!, changes);
    this.op(serial, "modified");
  }

  /** The device leaves this MDM server (ABM: unassigned, or moved to another server). */
  remove(serial: string): void {
    this.devices.delete(serial);
    this.sorted = undefined;
    this.op(serial, "deleted");
  }

  device(serial: string): StandinDevice | undefined {
    return this.devices.get(serial);
  }

  profile(uuid: string): Record<string, unknown> | undefined {
    return this.profiles.get(uuid);
  }

  /** The next `times` calls to this path get this answer instead. */
  failNext(path: string, status: number, o: { body?: string; headers?: Record<string, string>; times?: number; skip?: number } = {}): void {
    for (let i = 0; i < (o.times ?? 1); i++)
      this.failures.push({ path, status, skip: i === 0 ? (o.skip ?? 0) : 0, body: o.body ?? "", headers: o.headers ?? {} });
  }

  /** Every session expires now. */
  expireSessions(): void {
    for (const token of this.sessions.keys()) this.sessions.set(token, 0);
  }

  /** Every cursor issued so far expires now (EXPIRED_CURSOR). */
  expireCursors(): void {
    for (const c of this.cursors.values()) c.issuedAt = 0;
  }

  private op(serial: string, opType: Op["opType"]): void {
    this.ops.push({ seq: ++this.seq, serial, opType, at: new Date().toISOString() });
  }

  private cursor(c: Omit<Cursor, "issuedAt">): string {
    const id = randomBytes(12).toString("hex").toUpperCase();
    this.cursors.set(id, { ...c, issuedAt: Date.now() });
    return id;
  }

  private handle(req: http.IncomingMessage, body: string): { status: number; body: string; headers?: Record<string, string> } {
    const url = new URL(req.url ?? "/", this.url);
    this.requests.push({ method: req.method ?? "", path: url.pathname, headers: req.headers, body });
    const failure = this.failures.findIndex((f) => f.path === url.pathname);
    if (failure >= 0 && this.failures[failure]!.skip > 0) this.failures[failure]!.skip--;
    else if (failure >= 0) {
      const f = this.failures.splice(failure, 1)[0]!;
      return { status: f.status, body: f.body, headers: f.headers };
    }
    if (req.headers["x-server-protocol-version"] === undefined) return { status: 400, body: '"MISSING_PROTOCOL_VERSION"' };
    if (url.pathname === "/session") return this.session(req, url);
    const token = req.headers["x-adm-auth-session"];
    const expires = typeof token === "string" ? this.sessions.get(token) : undefined;
    if (expires === undefined) return { status: 401, body: "UNAUTHORIZED" };
    if (expires <= Date.now())
      return this.expiredAnswer === 403 ? { status: 403, body: "FORBIDDEN" } : { status: 401, body: "UNAUTHORIZED" };
    let headers: Record<string, string> | undefined;
    this.calls++;
    if (this.renewSessionEvery !== undefined && this.calls % this.renewSessionEvery === 0) {
      this.sessions.delete(token as string);
      const renewed = this.newSession();
      headers = { "x-adm-auth-session": renewed };
    }
    let json: Record<string, unknown> = {};
    if (body !== "") {
      try {
        json = JSON.parse(body) as Record<string, unknown>;
      } catch {
        return { status: 400, body: '"MALFORMED_REQUEST_BODY"' };
      }
    }
    const answer = this.route(req.method ?? "GET", url, json);
    return { ...answer, headers };
  }

  private route(method: string, url: URL, json: Record<string, unknown>): { status: number; body: string } {
    const ok = (v: unknown) => ({ status: 200, body: JSON.stringify(v) });
    const key = `${method} ${url.pathname}`;
    switch (key) {
      case "GET /account":
        return ok({
          server_name: "Orchard Test MDM",
          server_uuid: this.serverUuid,
          admin_id: "admin@example.org",
          org_name: "Example Org",
          org_email: "it@example.org",
          org_phone: "+1 408 555 0100",
          org_address: "1 Example Way",
          org_type: "org",
          org_version: "v2",
        });
      case "POST /server/devices":
        return this.fetch(json);
      case "POST /devices/sync":
        return this.sync(json);
      case "POST /devices": {
        const devices: Record<string, unknown> = {};
        for (const s of (json.devices as string[]) ?? [])
          devices[s] = this.devices.get(s) ?? { serial_number: s, response_status: "NOT_ACCESSIBLE" };
        return ok({ devices });
      }
      case "POST /devices/disown": {
        const devices: Record<string, string> = {};
        for (const s of (json.devices as string[]) ?? []) {
          devices[s] = this.devices.has(s) ? "SUCCESS" : "NOT_ACCESSIBLE";
          if (this.devices.has(s)) this.remove(s);
        }
        return ok({ devices });
      }
      case "POST /profile": {
        if (typeof json.profile_name !== "string" || typeof json.url !== "string") return { status: 400, body: '"CONFIG_NAME_REQUIRED"' };
        const uuid = randomBytes(16).toString("hex").toUpperCase();
        const { devices: serials, ...profile } = json;
        this.profiles.set(uuid, profile);
        return ok({ profile_uuid: uuid, devices: this.assign(uuid, (serials as string[]) ?? []) });
      }
      case "GET /profile": {
        const p = this.profiles.get(url.searchParams.get("profile_uuid") ?? "");
        return p ? ok({ ...p, profile_uuid: url.searchParams.get("profile_uuid") }) : { status: 400, body: '"PROFILE_NOT_FOUND"' };
      }
      case "PUT /profile/devices":
      case "POST /profile/devices": {
        const uuid = json.profile_uuid as string;
        if (!this.profiles.has(uuid)) return { status: 400, body: '"PROFILE_NOT_FOUND"' };
        return ok({ profile_uuid: uuid, devices: this.assign(uuid, (json.devices as string[]) ?? []) });
      }
      case "DELETE /profile/devices": {
        const devices: Record<string, string> = {};
        for (const s of (json.devices as string[]) ?? []) {
          const d = this.devices.get(s);
          devices[s] = d ? "SUCCESS" : "NOT_ACCESSIBLE";
          if (d) this.modify(s, { profile_status: "removed", profile_uuid: undefined });
        }
        return ok({ devices });
      }
      default:
        return { status: 404, body: '"NOT_FOUND"' };
    }
  }

  private assign(uuid: string, serials: string[]): Record<string, string> {
    const devices: Record<string, string> = {};
    for (const s of serials) {
      const d = this.devices.get(s);
      devices[s] = d ? "SUCCESS" : "NOT_ACCESSIBLE";
      if (!d) continue;
      d.profile_uuid = uuid;
      d.profile_status = "assigned";
      d.profile_assign_time = new Date().toISOString();
      if (this.assignmentMakesOp) this.op(s, "modified");
    }
    return devices;
  }

  private limit(json: Record<string, unknown>): number {
    const asked = typeof json.limit === "number" && json.limit > 0 ? json.limit : 100;
    return Math.min(asked, this.maxPage);
  }

  /** The cursor named, or the cursor error Apple would answer. */
  private lookup(cursor: unknown): Cursor | { status: number; body: string } {
    const c = typeof cursor === "string" ? this.cursors.get(cursor) : undefined;
    if (!c) return { status: 400, body: '"INVALID_CURSOR"' };
    if (Date.now() - c.issuedAt > this.cursorTtlMs) return { status: 400, body: '"EXPIRED_CURSOR"' };
    return c;
  }

  private fetch(json: Record<string, unknown>): { status: number; body: string } {
    let start: Cursor;
    if (json.cursor === undefined) start = { offset: 0, seq: this.seq, issuedAt: Date.now() };
    else {
      const c = this.lookup(json.cursor);
      if ("status" in c) return c;
      start = c;
    }
    this.sorted ??= [...this.devices.values()].sort((a, b) => (a.serial_number < b.serial_number ? -1 : 1));
    const list = this.sorted;
    if (start.offset < 0 || (json.cursor !== undefined && start.offset >= list.length)) return { status: 400, body: '"EXHAUSTED_CURSOR"' };
    const page = list.slice(start.offset, start.offset + this.limit(json));
    const end = start.offset + page.length;
    return {
      status: 200,
      body: JSON.stringify({
        cursor: this.cursor({ offset: end, seq: start.seq }),
        devices: page,
        fetched_until: new Date().toISOString(),
        more_to_follow: end < list.length || this.fetchEndsExhausted,
      }),
    };
  }

  private sync(json: Record<string, unknown>): { status: number; body: string } {
    const c = this.lookup(json.cursor);
    if ("status" in c) return c;
    const pending = this.ops.filter((o) => o.seq > c.seq);
    const page = pending.slice(0, this.limit(json));
    const devices = page.map((o) => {
      const d = this.devices.get(o.serial);
      return o.opType === "deleted" || !d
        ? { serial_number: o.serial, op_type: "deleted", op_date: o.at }
        : { ...d, op_type: o.opType, op_date: o.at };
    });
    const seq = page.length ? page[page.length - 1]!.seq : c.seq;
    return {
      status: 200,
      body: JSON.stringify({
        cursor: this.cursor({ offset: -1, seq }),
        devices,
        fetched_until: new Date().toISOString(),
        more_to_follow: pending.length > page.length,
      }),
    };
  }

  private newSession(): string {
    const token = `1413212917${randomBytes(24).toString("hex")}`;
    this.sessions.set(token, Date.now() + this.sessionTtlMs);
    this.sessionsIssued.push(token);
    return token;
  }

  /** GET /session: the OAuth1 signature checked (HMAC-SHA1 over RFC 5849's base string) with the token's secrets. */
  private session(req: http.IncomingMessage, url: URL): { status: number; body: string } {
    if (req.method !== "GET") return { status: 405, body: "" };
    if (req.headers["content-type"] !== "application/json;charset=UTF8") return { status: 400, body: '"BAD_CONTENT_TYPE"' };
    const header = req.headers.authorization ?? "";
    if (!header.startsWith("OAuth ")) return { status: 401, body: '"UNAUTHORIZED"' };
    const params = new Map<string, string>();
    for (const m of header.slice(6).matchAll(/([a-z_]+)="([^"]*)"/g)) params.set(m[1]!, decodeURIComponent(m[2]!));
    if (this.tokenExpired) return { status: 401, body: '"UNAUTHORIZED"' };
    if (params.get("oauth_consumer_key") !== this.consumerKey || params.get("oauth_token") !== this.accessToken) {
      return { status: 401, body: '"UNAUTHORIZED"' };
    }
    if (params.get("oauth_signature_method") !== "HMAC-SHA1" || !params.get("oauth_nonce") || !params.get("oauth_timestamp")) {
      return { status: 400, body: '"OAUTH_PARAMETERS"' };
    }
    const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
    const pairs = [...params.entries()].filter(([k]) => k !== "oauth_signature").map(([k, v]) => `${enc(k)}=${enc(v)}`);
    pairs.sort();
    const base = `GET&${enc(`${url.protocol}//${url.host}${url.pathname}`)}&${enc(pairs.join("&"))}`;
    const expected = createHmac("sha1", `${enc(this.consumerSecret)}&${enc(this.accessSecret)}`)
      .update(base)
      .digest("base64");
    if (params.get("oauth_signature") !== expected) return { status: 401, body: '"SIGNATURE_INVALID"' };
    return { status: 200, body: JSON.stringify({ auth_session_token: this.newSession() }) };
  }
}
