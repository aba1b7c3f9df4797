// Automated Device Enrollment, phase 1, against the Apple device assignment
// API stand-in (test/support/ade-standin.ts), on both stores: the token
// exchange, the device list fetched and synced in pages, the default profile,
// and every way Apple's API fails that Orchard must ride out.
import { parseTopics } from "../src/webhook/options.ts";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, afterEach, before, beforeEach, test } from "node:test";
import { ASSIGN_BATCH, AdeService } from "../src/ade/service.ts";
import { OrchardError } from "../src/errors.ts";
import { SecretBox } from "../src/push/secret-box.ts";
import { openStore, type Store } from "../src/store/index.ts";
import { AdeStandin } from "./support/ade-standin.ts";
import { createTestDatabase, forEachBackend, type Backend } from "./support/postgres.ts";

const SECRET = "ade-test-secret-key-0123456789";

interface Fixture {
  store: Store;
  /** Another connection to the same database (a second process). */
  second(): Promise<Store>;
  close(): Promise<void>;
}

async function openFixture(backend: Backend): Promise<Fixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-ade-"));
  const db = backend === "postgres" ? await createTestDatabase() : undefined;
  const url = db?.url ?? `sqlite:${path.join(dir, "orchard.db")}`;
  const store = await openStore(url, dir);
  const others: Store[] = [];
  return {
    store,
    async second() {
      const s = await openStore(url, dir);
      others.push(s);
      return s;
    },
    async close() {
      for (const s of others) await s.close();
      await store.close();
      await db?.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Logged {
  level: string;
  obj: object;
  msg?: string;
}

function service(store: Store, standin: AdeStandin, logs: Logged[], o: { sleep?: (ms: number) => Promise<void>; pageSize?: number } = {}) {
  const log = {
    info: (obj: object, msg?: string) => void logs.push({ level: "info", obj, msg }),
    warn: (obj: object, msg?: string) => void logs.push({ level: "warn", obj, msg }),
    error: (obj: object, msg?: string) => void logs.push({ level: "error", obj, msg }),
  };
  return new AdeService({
    store,
    sealer: new SecretBox(SECRET),
    log,
    url: standin.url,
    publicUrl: "https://mdm.example.org",
    pageSize: o.pageSize,
    sleep: o.sleep,
  });
}

async function inventory(store: Store, server = "main") {
  return store.ade.devices({ server, limit: 100_000 });
}

async function events(store: Store, type: string) {
  return (await store.events.list({ type, limit: 1000 })).map((e) => e.detail as Record<string, unknown>);
}

const code = (c: string) => (err: unknown) => err instanceof OrchardError && err.code === c;

await forEachBackend("ADE against the Apple API stand-in", (backend) => {
  let f: Fixture;
  let standin: AdeStandin;
  let logs: Logged[];
  let ade: AdeService;

  /** A server "main" with its token uploaded. */
  async function withToken(svc = ade): Promise<void> {
    const added = await svc.addServer("main");
    await svc.uploadToken("main", standin.issueToken(added.certPem));
  }

  beforeEach(async () => {
    f = await openFixture(backend);
    standin = await new AdeStandin().start();
    logs = [];
    ade = service(f.store, standin, logs);
  });
  afterEach(async () => {
    // Secrets of the token and Apple's session tokens never reach a log line or an event.
    const text = JSON.stringify(logs) + JSON.stringify(await f.store.events.list({ limit: 10_000 }));
    for (const secret of [standin.consumerSecret, standin.accessSecret, standin.accessToken, ...standin.sessionsIssued]) {
      assert.ok(!text.includes(secret), "a secret reached a log line or an event");
    }
    await standin.stop();
    await f.close();
  });

  test("token exchange: the certificate Orchard made, the .p7m ABM returns for it, the credentials sealed", async () => {
    const added = await ade.addServer("main", { commonName: "Orchard at Example" });
    assert.match(added.certPem, /^-----BEGIN CERTIFICATE-----/);
    assert.equal(added.tokenExpiry, null);
    const expiry = new Date(Date.now() + 200 * 86_400_000);
    const info = await ade.uploadToken("main", standin.issueToken(added.certPem, { expiry }));
    assert.equal(info.tokenExpiry, Math.floor(expiry.getTime() / 1000) * 1000);
    assert.equal(info.consumerKey, standin.consumerKey);
    assert.equal(info.serverUuid, standin.serverUuid, "Apple's account details are read with the new token");
    assert.equal(info.orgName, "Example Org");
    // The session request was OAuth1-signed (the stand-in checks the signature) with the protocol version header.
    const session = standin.requests.find((r) => r.path === "/session")!;
    assert.match(String(session.headers.authorization), /^OAuth .*oauth_signature_method="HMAC-SHA1"/);
    assert.equal(standin.requests.find((r) => r.path === "/account")!.headers["x-server-protocol-version"], "7");
    // Nothing secret in clear in the store: the key and the token are sealed.
    const row = await f.store.db.get<Record<string, unknown>>("SELECT * FROM ade_servers WHERE name = ?", ["main"]);
    const raw = JSON.stringify(row, (_k, v) => (v?.type === "Buffer" ? Buffer.from(v.data).toString("latin1") : v));
    for (const secret of [standin.consumerSecret, standin.accessSecret, "PRIVATE KEY"]) assert.ok(!raw.includes(secret), secret);
    // A token for another ABM MDM server is refused unless forced; the same name twice is a conflict.
    await assert.rejects(ade.uploadToken("main", standin.issueToken(added.certPem, { consumerKey: "CK_other" })), code("ade_token_change"));
    assert.equal(
      (await ade.uploadToken("main", standin.issueToken(added.certPem, { consumerKey: "CK_other" }), true)).consumerKey,
      "CK_other",
    );
    await assert.rejects(ade.addServer("main"), code("conflict"));
    await assert.rejects(ade.addServer("bad/name"), code("invalid_parameter"));
    // Another server's token does not open with this server's key.
    const other = await ade.addServer("other");
    await assert.rejects(ade.uploadToken("other", standin.issueToken(added.certPem)), code("invalid_ade_token"));
    assert.equal(other.tokenExpiry, null);
  });

  test("the first sync fetches 5,000 devices in pages of 1,000; the cursor is stored and the next run syncs", async () => {
    await withToken();
    standin.addDevices(5000);
    const r = await ade.sync("main");
    assert.deepEqual({ pages: r.pages, fetched: r.fetched, phase: r.phase }, { pages: 5, fetched: 5000, phase: "sync" });
    const fetches = standin.requests.filter((r) => r.path === "/server/devices");
    assert.equal(fetches.length, 5);
    assert.equal(JSON.parse(fetches[0]!.body).cursor, undefined);
    assert.equal(JSON.parse(fetches[0]!.body).limit, 1000);
    assert.ok(fetches.slice(1).every((r) => typeof JSON.parse(r.body).cursor === "string"));
    const devices = await inventory(f.store);
    assert.equal(devices.length, 5000);
    const d = devices[0]!;
    assert.deepEqual(
      {
        model: d.model,
        color: d.color,
        os: d.os,
        family: d.deviceFamily,
        status: d.profileStatus,
        by: d.deviceAssignedBy,
        enrolled: d.enrolled,
      },
      {
        model: "MacBook Pro 14-inch",
        color: "space gray",
        os: "OSX",
        family: "Mac",
        status: "empty",
        by: "admin@example.org",
        enrolled: false,
      },
    );
    const server = (await f.store.ade.server("main"))!;
    assert.equal(server.phase, "sync");
    assert.ok(server.cursor);
    assert.equal(standin.sessionsIssued.length, 1, "one session for the whole run");
    const again = await ade.sync("main");
    assert.deepEqual({ pages: again.pages, fetched: again.fetched, added: again.added }, { pages: 1, fetched: 0, added: 0 });
    assert.equal(standin.requests.filter((r) => r.path === "/devices/sync").length, 1);
    const synced = await events(f.store, "ade.sync");
    assert.equal(synced[0]!.fetched, 5000);
  });

  test("sync deltas: added, modified and deleted devices change the inventory", async () => {
    await withToken();
    const [a, b, c] = standin.addDevices(3);
    await ade.sync("main");
    const [d] = standin.addDevices(1);
    standin.modify(a!, { color: "silver", description: "renamed" });
    standin.remove(b!);
    const r = await ade.sync("main");
    assert.deepEqual({ added: r.added, modified: r.modified, deleted: r.deleted }, { added: 1, modified: 1, deleted: 1 });
    const bySerial = new Map((await inventory(f.store)).map((x) => [x.serialNumber, x]));
    assert.equal(bySerial.get(a!)!.color, "silver");
    assert.equal(bySerial.get(a!)!.opType, "modified");
    assert.equal(bySerial.get(b!)!.removed, true);
    assert.equal(bySerial.get(b!)!.model, "MacBook Pro 14-inch", "a deleted device keeps what was known of it");
    assert.equal(bySerial.get(c!)!.removed, false);
    assert.equal(bySerial.get(d!)!.opType, "added");
    assert.deepEqual(
      (await f.store.ade.devices({ server: "main", removed: true, limit: 10 })).map((x) => x.serialNumber),
      [b],
    );
    const detail = (await events(f.store, "ade.sync")).at(-1)!;
    assert.deepEqual({ added: detail.added, modified: detail.modified, deleted: detail.deleted }, { added: 1, modified: 1, deleted: 1 });
  });

  test("an enrolled device shows as enrolled (joined by serial number)", async () => {
    await withToken();
    const [a] = standin.addDevices(2);
    await ade.sync("main");
    await f.store.db.run(
      "INSERT INTO devices (id, serial_number, cert_fingerprint, authenticated_at, created_at) VALUES ('UDID-ADE-1', ?, 'ff', 1, 1)",
      [a!],
    );
    const enrolled = await f.store.ade.devices({ server: "main", enrolled: true, limit: 10 });
    assert.deepEqual(
      enrolled.map((x) => x.serialNumber),
      [a],
    );
    assert.equal((await f.store.ade.devices({ server: "main", enrolled: false, limit: 10 })).length, 1);
    assert.equal((await ade.info("main")).enrolled, 1);
  });

  test("the default profile is defined at Apple once and assigned to new devices after a sync", async () => {
    await withToken();
    const first = standin.addDevices(3);
    await ade.putProfile("main", "lab", { is_supervised: true, is_mdm_removable: false, skip_setup_items: ["AppleID", "Siri"] }, true);
    const r = await ade.sync("main");
    assert.equal(r.assigned, 3);
    const uuid = (await f.store.ade.profile("main", "lab"))!.profileUuid!;
    assert.ok(uuid);
    assert.deepEqual(standin.profile(uuid), {
      is_supervised: true,
      is_mdm_removable: false,
      skip_setup_items: ["AppleID", "Siri"],
      profile_name: "lab",
      url: "https://mdm.example.org/ade/enroll",
    });
    for (const s of first) assert.equal(standin.device(s)!.profile_uuid, uuid);
    const inv = await inventory(f.store);
    assert.ok(inv.every((x) => x.profileUuid === uuid && x.profileStatus === "assigned"));
    // New devices next time; those assigned already are left alone; the profile is not defined again.
    const [late] = standin.addDevices(1);
    const r2 = await ade.sync("main");
    assert.equal(r2.assigned, 1);
    assert.equal(standin.device(late!)!.profile_uuid, uuid);
    assert.equal(standin.requests.filter((q) => q.path === "/profile" && q.method === "POST").length, 1);
    // The operator assigns another profile to some devices.
    await ade.putProfile("main", "kiosk", { is_supervised: true, await_device_configured: true, url: "https://other.example.org/enroll" });
    const assigned = await ade.assign("main", "kiosk", [first[0]!, "NO-SUCH-SERIAL"]);
    assert.deepEqual(assigned.devices, { [first[0]!]: "SUCCESS", "NO-SUCH-SERIAL": "NOT_ACCESSIBLE" });
    assert.equal(standin.device(first[0]!)!.profile_uuid, assigned.profileUuid);
    assert.notEqual(assigned.profileUuid, uuid);
    // Profiles are checked before they reach Apple.
    await assert.rejects(ade.putProfile("main", "bad", { skip_setup_items: ["NotAKey"] }), code("invalid_ade_profile"));
    await assert.rejects(ade.putProfile("main", "bad", { devices: ["X"] }), code("invalid_ade_profile"));
    await assert.rejects(ade.putProfile("main", "bad", { is_supervised: "yes" }), code("invalid_ade_profile"));
  });

  test("more new devices than one assignment takes: the default profile is defined once, and every batch assigned to that UUID", async () => {
    await withToken();
    const serials = standin.addDevices(ASSIGN_BATCH * 2 + 500);
    await ade.putProfile("main", "lab", { is_supervised: true }, true);
    const r = await ade.sync("main");
    assert.deepEqual({ assigned: r.assigned, failed: r.assignFailed }, { assigned: serials.length, failed: 0 });
    assert.equal(standin.requests.filter((q) => q.path === "/profile" && q.method === "POST").length, 1, "one POST /profile");
    const uuid = (await f.store.ade.profile("main", "lab"))!.profileUuid!;
    const assignments = standin.requests.filter((q) => q.path === "/profile/devices");
    assert.equal(assignments.length, 3);
    assert.deepEqual(new Set(assignments.map((q) => JSON.parse(q.body).profile_uuid)), new Set([uuid]));
    assert.deepEqual(new Set(serials.map((s) => standin.device(s)!.profile_uuid)), new Set([uuid]));
    assert.ok((await inventory(f.store)).every((d) => d.profileUuid === uuid && d.profileStatus === "assigned"));
  });

  test("a 500 in the middle of the first fetch keeps the cursor of the pages stored, and the next sync resumes after them", async () => {
    await withToken();
    standin.addDevices(3000);
    standin.failNext("/server/devices", 500, { skip: 1, body: "Internal Server Error" });
    await assert.rejects(
      ade.sync("main"),
      (err: unknown) => err instanceof OrchardError && err.status === 502 && /HTTP 500/.test(err.message),
    );
    const server = (await f.store.ade.server("main"))!;
    assert.equal(server.phase, "fetch");
    assert.ok(server.cursor, "the first page's cursor is kept");
    assert.match(server.lastSyncError!, /HTTP 500/);
    assert.equal((await inventory(f.store)).length, 1000);
    const r = await ade.sync("main");
    assert.equal(r.fetched, 2000, "only the pages not stored yet");
    assert.equal((await inventory(f.store)).length, 3000);
    const fetches = standin.requests.filter((q) => q.path === "/server/devices");
    assert.equal(JSON.parse(fetches.at(-2)!.body).cursor, server.cursor);
    assert.equal((await f.store.ade.server("main"))!.lastSyncError, null);
    assert.equal((await events(f.store, "ade.sync_failed")).length, 1);
  });

  for (const answer of [401, 403] as const) {
    test(`an expired session (${answer === 403 ? "403 FORBIDDEN" : "401"}) is renewed through GET /session and the call made again`, async () => {
      standin.expiredAnswer = answer;
      await withToken();
      standin.addDevices(10);
      await ade.sync("main");
      standin.expireSessions();
      standin.addDevices(2);
      const r = await ade.sync("main");
      assert.equal(r.added, 2);
      assert.equal(standin.sessionsIssued.length, 2);
    });
  }

  test("a session token Apple renews in an answer's X-ADM-Auth-Session is used from then on", async () => {
    await withToken();
    standin.addDevices(50);
    standin.maxPage = 10;
    standin.renewSessionEvery = 1;
    const r = await ade.sync("main");
    assert.equal(r.pages, 5);
    assert.equal(standin.requests.filter((q) => q.path === "/session").length, 1, "no new session was needed");
  });

  test("429 with Retry-After: the call waits that long (the wait injected) and is made again", async () => {
    const waits: number[] = [];
    ade = service(f.store, standin, logs, { sleep: async (ms) => void waits.push(ms) });
    await withToken();
    standin.addDevices(5);
    standin.failNext("/server/devices", 429, { headers: { "retry-after": "7" } });
    const r = await ade.sync("main");
    assert.deepEqual(waits, [7000]);
    assert.equal(r.fetched, 5);
    // A Retry-After longer than Orchard waits fails the run (the next one tries again).
    standin.failNext("/devices/sync", 429, { headers: { "retry-after": "3600" } });
    await assert.rejects(ade.sync("main"), code("ade_upstream"));
    assert.deepEqual(waits, [7000]);
  });

  test("cursor errors: EXPIRED_CURSOR and INVALID_CURSOR start over with a full fetch, EXHAUSTED_CURSOR moves on to sync", async () => {
    await withToken();
    standin.addDevices(30);
    standin.maxPage = 10;
    await ade.sync("main");
    standin.expireCursors();
    const expired = await ade.sync("main");
    assert.deepEqual(
      { reset: expired.cursorReset, fetched: expired.fetched, phase: expired.phase },
      { reset: "EXPIRED_CURSOR", fetched: 30, phase: "sync" },
    );
    await f.store.db.run("UPDATE ade_servers SET cursor = 'NOT-A-CURSOR' WHERE name = 'main'");
    const invalid = await ade.sync("main");
    assert.deepEqual({ reset: invalid.cursorReset, fetched: invalid.fetched }, { reset: "INVALID_CURSOR", fetched: 30 });
    // A fetch cursor at the end of the list, stored as if the fetch had not finished: Apple says EXHAUSTED_CURSOR.
    const fetchesBefore = standin.requests.filter((q) => q.path === "/server/devices").length;
    const syncsBefore = standin.requests.filter((q) => q.path === "/devices/sync").length;
    await f.store.db.run("UPDATE ade_servers SET phase = 'fetch' WHERE name = 'main'");
    const exhausted = await ade.sync("main");
    assert.deepEqual(
      { reset: exhausted.cursorReset, fetched: exhausted.fetched, phase: exhausted.phase },
      { reset: undefined, fetched: 0, phase: "sync" },
    );
    assert.equal(standin.requests.filter((q) => q.path === "/server/devices").length, fetchesBefore + 1);
    assert.equal(standin.requests.filter((q) => q.path === "/devices/sync").length, syncsBefore + 1);
    // The same cursor error twice in one run is not looped on.
    standin.failNext("/devices/sync", 400, { body: '"INVALID_CURSOR"', times: 1 });
    standin.failNext("/server/devices", 400, { body: '"INVALID_CURSOR"', times: 1 });
    await assert.rejects(ade.sync("main"), code("ade_upstream"));
  });

  test("a full fetch keeps the op and op date a sync stored (Apple's fetch answer has none), unless the op said the device was deleted", async () => {
    await withToken();
    const [a, b, c] = standin.addDevices(3);
    await ade.sync("main");
    standin.modify(a!, { color: "silver" });
    await ade.sync("main");
    const modified = (await f.store.ade.devices({ server: "main", serial: a!, limit: 1 }))[0]!;
    assert.equal(modified.opType, "modified");
    standin.expireCursors();
    assert.equal((await ade.sync("main")).fetched, 3);
    const bySerial = new Map((await inventory(f.store)).map((x) => [x.serialNumber, x]));
    assert.deepEqual(
      [bySerial.get(a!)!.opType, bySerial.get(a!)!.opDate, bySerial.get(a!)!.color],
      ["modified", modified.opDate, "silver"],
    );
    assert.deepEqual([bySerial.get(b!)!.opType, bySerial.get(b!)!.opDate], [undefined, undefined]);
    // A deleted device listed again by a fetch (ABM assigns it back): not removed, and its deleted op no longer stands.
    standin.remove(c!);
    await ade.sync("main");
    assert.equal((await f.store.ade.devices({ server: "main", serial: c!, limit: 1 }))[0]!.opType, "deleted");
    assert.ok(await f.store.ade.acquireSync("main", "test", Date.now(), 60_000));
    await f.store.ade.applyPage("main", "test", { devices: [{ serialNumber: c!, model: "Mac" }], cursor: "X", phase: "fetch" }, Date.now());
    const back = (await f.store.ade.devices({ server: "main", serial: c!, limit: 1 }))[0]!;
    assert.deepEqual([back.removed, back.opType, back.opDate, back.model], [false, undefined, undefined, "Mac"]);
  });

  /** The serials of the server's devices marked removed. */
  async function removedSerials(store = f.store) {
    return (await store.ade.devices({ server: "main", removed: true, limit: 100_000 })).map((d) => d.serialNumber);
  }

  test("a full fetch after an expired cursor marks the devices ABM no longer lists removed, as a deleted op does; the ops stored are kept", async () => {
    await withToken();
    const serials = standin.addDevices(30);
    standin.maxPage = 10;
    await ade.sync("main");
    // The device leaves this MDM server while the cursor expires: no sync tells Orchard, the full fetch does not list it.
    const gone = serials[14]!;
    standin.remove(gone);
    standin.expireCursors();
    const hooked = service(f.store.withWebhookTopics(parseTopics("ade.sync_devices")), standin, logs, { pageSize: 10 });
    const r = await hooked.sync("main");
    assert.deepEqual(
      { reset: r.cursorReset, fetched: r.fetched, deleted: r.deleted, phase: r.phase },
      { reset: "EXPIRED_CURSOR", fetched: 29, deleted: 1, phase: "sync" },
    );
    assert.deepEqual(await removedSerials(), [gone]);
    const bySerial = new Map((await inventory(f.store)).map((x) => [x.serialNumber, x]));
    const removed = bySerial.get(gone)!;
    assert.equal(removed.opType, "deleted");
    assert.ok(removed.opDate! >= removed.firstSeenAt);
    assert.equal(removed.model, "MacBook Pro 14-inch", "a removed device keeps what was known of it");
    assert.equal((await ade.info("main")).devices, 29);
    const detail = (await events(f.store, "ade.sync")).at(-1)!;
    assert.deepEqual({ fetched: detail.fetched, deleted: detail.deleted }, { fetched: 29, deleted: 1 });
    // The webhook hears of it as of a deleted op, after the fetch's pages.
    const pages = (await events(f.store, "ade.sync_devices")).map((e) => e as { phase: string; more_to_follow: boolean; devices: any[] });
    assert.equal(pages.length, 4);
    assert.deepEqual(
      pages.at(-1)!.devices.map((d) => [d.serial_number, d.op_type, Date.parse(d.op_date)]),
      [[gone, "deleted", removed.opDate]],
    );
    assert.deepEqual([pages.at(-1)!.phase, pages.at(-1)!.more_to_follow], ["fetch", false]);
    // The next run syncs from the fetch's cursor; the device stays removed.
    const next = await ade.sync("main");
    assert.deepEqual({ pages: next.pages, deleted: next.deleted }, { pages: 1, deleted: 0 });
    assert.deepEqual(await removedSerials(), [gone]);
  });

  test("a full fetch that fails half-way marks nothing; resumed to its end, it marks the devices it did not list", async () => {
    await withToken();
    const serials = standin.addDevices(30);
    standin.maxPage = 10;
    await ade.sync("main");
    const gone = [serials[4]!, serials[29]!]; // in the first page and in the last
    for (const s of gone) standin.remove(s);
    standin.expireCursors();
    standin.failNext("/server/devices", 500, { skip: 1 });
    await assert.rejects(ade.sync("main"), code("ade_upstream"));
    assert.deepEqual(await removedSerials(), []);
    const failed = (await events(f.store, "ade.sync_failed")).at(-1)!;
    assert.deepEqual({ fetched: failed.fetched, deleted: failed.deleted }, { fetched: 10, deleted: 0 });
    assert.equal((await ade.info("main")).devices, 30);
    const r = await ade.sync("main");
    assert.deepEqual({ fetched: r.fetched, deleted: r.deleted, phase: r.phase }, { fetched: 18, deleted: 2, phase: "sync" });
    assert.deepEqual(await removedSerials(), gone);
  });

  test("a full fetch that ends in EXHAUSTED_CURSOR rather than a last page marks what it did not list", async () => {
    await withToken();
    const serials = standin.addDevices(20);
    standin.maxPage = 10;
    await ade.sync("main");
    standin.remove(serials[3]!);
    standin.expireCursors();
    standin.fetchEndsExhausted = true;
    const r = await ade.sync("main");
    assert.deepEqual({ fetched: r.fetched, deleted: r.deleted, phase: r.phase }, { fetched: 19, deleted: 1, phase: "sync" });
    assert.deepEqual(await removedSerials(), [serials[3]]);
    assert.equal(standin.requests.at(-1)!.path, "/devices/sync", "on to the changes after EXHAUSTED_CURSOR");
  });

  test("a full fetch begun before migration 25 and finished after it marks nothing: what its first pages listed is not known", async () => {
    await withToken();
    standin.addDevices(30);
    standin.maxPage = 10;
    standin.failNext("/server/devices", 500, { skip: 1 });
    await assert.rejects(ade.sync("main"), code("ade_upstream"));
    // The store as it was before migration 25, in the middle of the fetch.
    await f.store.db.exec("ALTER TABLE ade_devices DROP COLUMN fetch_id; ALTER TABLE ade_servers DROP COLUMN fetch_id;");
    await f.store.db.run("DELETE FROM schema_migrations WHERE version = 25");
    const after = await f.second();
    const r = await service(after, standin, logs).sync("main");
    assert.deepEqual({ fetched: r.fetched, deleted: r.deleted, phase: r.phase }, { fetched: 20, deleted: 0, phase: "sync" });
    assert.deepEqual(await removedSerials(after), []);
    assert.equal((await after.ade.serverInfo("main"))!.devices, 30);
    // The next full fetch has an id of its own: it marks what it does not list.
    standin.remove("C020000007");
    standin.expireCursors();
    assert.equal((await service(after, standin, logs).sync("main")).deleted, 1);
    assert.deepEqual(await removedSerials(after), ["C020000007"]);
  });

  test("one sync of a server at a time across processes: the lease in the store", async () => {
    await withToken();
    const other = await f.second();
    const now = Date.now();
    assert.equal(await f.store.ade.acquireSync("main", "process-a", now, 60_000), true);
    assert.equal(await other.ade.acquireSync("main", "process-b", now, 60_000), false);
    assert.equal(await f.store.ade.acquireSync("main", "process-a", now + 1000, 60_000), true, "the holder renews");
    assert.equal(await other.ade.acquireSync("main", "process-b", now + 61_001, 60_000), true, "an expired lease is taken over");
    assert.equal((await f.store.ade.applyPage("main", "process-a", { devices: [], cursor: "X", phase: "sync" }, now)).applied, false);
    await other.ade.releaseSync("main", "process-b");
    // Two services (two processes) syncing the same server at once: one runs, the other is told.
    standin.addDevices(200);
    standin.maxPage = 20;
    const second = service(other, standin, logs);
    const results = await Promise.allSettled([ade.sync("main"), second.sync("main")]);
    const ok = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter((r) => r.status === "rejected" && code("ade_sync_running")(r.reason));
    assert.equal(ok.length, 1, JSON.stringify(results.map((r) => r.status)));
    assert.equal(refused.length, 1);
    assert.equal((await inventory(f.store)).length, 200);
  });

  test("token expiry: one ade.token_expiring event per token, however many processes check", async () => {
    const added = await ade.addServer("main");
    await ade.uploadToken("main", standin.issueToken(added.certPem, { expiry: new Date(Date.now() + 10 * 86_400_000) }));
    const second = service(await f.second(), standin, logs);
    await ade.checkTokenExpiry();
    await second.checkTokenExpiry();
    const expiring = await events(f.store, "ade.token_expiring");
    assert.equal(expiring.length, 1);
    assert.equal(expiring[0]!.server, "main");
    assert.equal(expiring[0]!.days_left, 9);
    assert.ok(logs.some((l) => l.level === "warn" && /ABM server token expires in 9 days/.test(l.msg ?? "")));
    // A new token clears the notice.
    await ade.uploadToken("main", standin.issueToken(added.certPem, { expiry: new Date(Date.now() + 5 * 86_400_000) }));
    await ade.checkTokenExpiry();
    assert.equal((await events(f.store, "ade.token_expiring")).length, 2);
    // The event goes through the event store, so a webhook asked for the topic gets it too.
    await ade.uploadToken("main", standin.issueToken(added.certPem, { expiry: new Date(Date.now() + 3 * 86_400_000) }));
    await service(f.store.withWebhookTopics(parseTopics("ade.token_expiring")), standin, logs).checkTokenExpiry();
    const outbox = await f.store.db.all<{ topic: string; body: string }>("SELECT topic, body FROM webhook_outbox");
    assert.deepEqual(
      outbox.map((r) => r.topic),
      ["ade.token_expiring"],
    );
    assert.equal(JSON.parse(outbox[0]!.body).orchard_event.detail.days_left, 2);
  });

  test("an expired server token: Apple refuses the session, the sync fails with Apple's reason, the expiry is reported", async () => {
    const added = await ade.addServer("main");
    await ade.uploadToken("main", standin.issueToken(added.certPem, { expiry: new Date(Date.now() - 86_400_000) }));
    standin.addDevices(10);
    standin.tokenExpired = true;
    standin.expireSessions();
    await assert.rejects(
      ade.sync("main"),
      (err: unknown) => err instanceof OrchardError && err.code === "ade_upstream" && /401/.test(err.message),
    );
    const failed = await events(f.store, "ade.sync_failed");
    assert.equal(failed.length, 1);
    assert.match(String(failed[0]!.error), /401/);
    assert.equal((await inventory(f.store)).length, 0);
    await ade.checkTokenExpiry();
    assert.equal((await events(f.store, "ade.token_expiring"))[0]!.expired, true);
    assert.ok(logs.some((l) => /ABM SERVER TOKEN EXPIRED/.test(l.msg ?? "")));
    // A new token from ABM: the sync goes through.
    standin.tokenExpired = false;
    await ade.uploadToken("main", standin.issueToken(added.certPem));
    assert.equal((await ade.sync("main")).fetched, 10);
  });

  test("ade.sync_devices: each page's devices for the webhook, as NanoDEP's dep.SyncDevices (only when subscribed)", async () => {
    await withToken();
    standin.addDevices(25);
    const hooked = service(f.store.withWebhookTopics(parseTopics("ade.sync_devices")), standin, logs, { pageSize: 10 });
    await hooked.sync("main");
    const outbox = await f.store.db.all<{ topic: string; body: string }>("SELECT topic, body FROM webhook_outbox ORDER BY id");
    assert.deepEqual(
      outbox.map((r) => r.topic),
      ["ade.sync_devices", "ade.sync_devices", "ade.sync_devices"],
    );
    const pages = outbox.map((r) => JSON.parse(r.body).orchard_event.detail);
    assert.deepEqual(
      pages.map((p) => [p.phase, p.devices.length, p.more_to_follow]),
      [
        ["fetch", 10, true],
        ["fetch", 10, true],
        ["fetch", 5, false],
      ],
    );
    assert.equal(pages[0].server, "main");
    assert.equal(pages[0].devices[0].serial_number, "C020000001");
    assert.equal(pages[0].devices[0].model, "MacBook Pro 14-inch");
    // Without the subscription nothing is recorded (a full fetch would otherwise fill the events table).
    standin.addDevices(3);
    await ade.sync("main");
    assert.equal((await events(f.store, "ade.sync_devices")).length, 3);
  });

  test("sync needs a token; an unknown server is 404", async () => {
    await ade.addServer("main");
    await assert.rejects(ade.sync("main"), code("ade_no_token"));
    await assert.rejects(ade.sync("nope"), code("not_found"));
  });
});

// Unused imports guard (before/after kept for symmetry with other suites).
void before;
void after;
