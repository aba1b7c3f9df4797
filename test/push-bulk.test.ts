// Bulk pushes: 10,000 channels in one request complete with a result per id
// and never more streams open at once than the cap (--apns-max-streams) or
// the server's SETTINGS_MAX_CONCURRENT_STREAMS, whichever is lower.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { pushArgs, pushPki, seedEnrollments, startApnsStandIn, type ApnsStandIn } from "./support/apns.ts";
import { StoreUnavailable } from "../src/store/unavailable.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const pki = await pushPki();
const servers: TestServer[] = [];
const standIns: ApnsStandIn[] = [];

async function pair(o: { serverMax: number; cap: number; delayMs: number }): Promise<{ apns: ApnsStandIn; server: TestServer }> {
  const apns = await startApnsStandIn({
    pushCa: pki.pushCa,
    serverCa: pki.serverCa,
    serverKey: pki.serverKey,
    maxConcurrentStreams: o.serverMax,
    delayMs: o.delayMs,
  });
  standIns.push(apns);
  const server = await startTestServer(pushArgs(apns, ["--apns-max-streams", String(o.cap), "--log-level", "info"]));
  servers.push(server);
  assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem())).status, 200);
  return { apns, server };
}

after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all(standIns.map((a) => a.close()));
});

test("10,000 channels in one push: every id answered, at most --apns-max-streams streams open, events batched", async () => {
  const { apns, server } = await pair({ serverMax: 1000, cap: 40, delayMs: 1 });
  const rows = await seedEnrollments(server.store, 10_000, { prefix: "BULK" });
  // 10,000 ids do not fit in a path under the 64 KB header cap: the body form.
  const r = await server.api("POST", "/v1/push", { ids: rows.map((x) => x.id) });
  assert.equal(r.status, 200, JSON.stringify(Object.entries(r.json.status).find(([, s]: any) => !s.push_result)));
  assert.equal(Object.keys(r.json.status).length, 10_000);
  const ids = new Set(apns.seen.map((p) => p.apnsId));
  for (const row of rows) assert.ok(ids.has(r.json.status[row.id].push_result), `${row.id} has its own apns-id`);
  assert.equal(new Set(apns.seen.map((p) => p.token)).size, 10_000);
  assert.ok(apns.maxOpen <= 40, `at most 40 streams open at once, saw ${apns.maxOpen}`);
  assert.ok(apns.maxOpen >= 20, `streams do run concurrently (saw ${apns.maxOpen})`);
  assert.equal(apns.sessions, 1, "one long-lived connection");
  assert.deepEqual(apns.violations, []);
  const events = await server.store.db.get<{ n: number }>(
    "SELECT COUNT(*) AS n FROM events WHERE type = 'push.sent' AND enrollment_id LIKE 'BULK-%'",
  );
  assert.equal(Number(events!.n), 10_000);
});

test("the server's SETTINGS_MAX_CONCURRENT_STREAMS bounds the streams below our cap", async () => {
  const { apns, server } = await pair({ serverMax: 8, cap: 1000, delayMs: 2 });
  const rows = await seedEnrollments(server.store, 1000, { prefix: "LIMITED" });
  const r = await server.api("POST", `/v1/push/${rows.map((x) => x.id).join(",")}`);
  assert.equal(r.status, 200);
  assert.ok(apns.maxOpen <= 8, `at most the server's 8 streams, saw ${apns.maxOpen}`);
  assert.ok(apns.maxOpen >= 4, `streams do run concurrently (saw ${apns.maxOpen})`);
  assert.equal(apns.seen.length, 1000);
  // Orchard's own count: it never even hands nghttp2 more streams than the server allows.
  const summary = server.logs
    .map((l) => JSON.parse(l))
    .filter((l) => l.msg === "push")
    .at(-1);
  assert.ok(summary.peakStreams <= 8 && summary.peakStreams >= 4, `Orchard opened at most 8 streams at once, saw ${summary.peakStreams}`);
});

test('a push to all ({"all": true}) reaches every enabled channel across pages, with counts and only the failures listed', async () => {
  const { apns, server } = await pair({ serverMax: 1000, cap: 20, delayMs: 0 });
  // 2,500: the store is read 1,000 channels a page, so three pages.
  const rows = await seedEnrollments(server.store, 2500, { prefix: "ALL" });
  await server.store.db.run("UPDATE enrollments SET enabled = 0 WHERE id = ?", ["ALL-000007"]);
  const refused = new Set([rows[1500]!.token, rows[2499]!.token]);
  apns.answer = (p) => (refused.has(p.token) ? { status: 410, reason: "Unregistered", timestamp: Date.now() } : { status: 200 });
  const r = await server.api("POST", "/v1/push", { all: true });
  assert.equal(r.status, 207, JSON.stringify(r.json));
  assert.equal(r.json.pushed, 2497);
  assert.equal(r.json.failed, 2);
  assert.equal(r.json.truncated, false);
  assert.deepEqual(Object.keys(r.json.status).sort(), [rows[1500]!.id, rows[2499]!.id]);
  assert.match(r.json.status[rows[1500]!.id].push_error, /410 Unregistered/);
  assert.equal(apns.seen.length, 2499, "the disabled channel is not pushed");
  assert.equal(new Set(apns.seen.map((p) => p.token)).size, 2499, "each channel once");
  assert.ok(apns.maxOpen <= 20, `at most 20 streams open at once, saw ${apns.maxOpen}`);
  const events = await server.store.db.get<{ sent: number; failed: number }>(
    `SELECT SUM(CASE WHEN type = 'push.sent' THEN 1 ELSE 0 END) AS sent, SUM(CASE WHEN type = 'push.failed' THEN 1 ELSE 0 END) AS failed
     FROM events WHERE enrollment_id LIKE 'ALL-%'`,
  );
  assert.deepEqual([Number(events!.sent), Number(events!.failed)], [2497, 2]);
  // The dead tokens are marked: the next push to all skips them without sending.
  apns.reset();
  const again = await server.api("POST", "/v1/push", { all: true });
  assert.equal(again.status, 207);
  assert.equal(apns.seen.length, 2497);
  assert.match(again.json.status[rows[2499]!.id].push_error, /APNs refused this push token/);
});

test('"all" must be true and comes without "ids"', async () => {
  const { server } = await pair({ serverMax: 1000, cap: 20, delayMs: 0 });
  for (const body of [{ all: false }, { all: "yes" }, { all: true, ids: ["X"] }]) {
    const r = await server.api("POST", "/v1/push", body);
    assert.equal(r.status, 400, JSON.stringify(body));
  }
});

test("a push to all that loses the store part way still records the pushes it sent, and answers 503", async () => {
  const { apns, server } = await pair({ serverMax: 1000, cap: 20, delayMs: 2 });
  await seedEnrollments(server.store, 1500, { prefix: "LOST" });
  // The second page read fails as an outage does: the first 1,000 channels were pushed.
  const push = server.store.push;
  const read = push.enabledTargets.bind(push);
  let pages = 0;
  push.enabledTargets = async (after, limit) => {
    if (++pages === 2) throw new StoreUnavailable(new Error("the disk went away"));
    return read(after, limit);
  };
  const r = await server.api("POST", "/v1/push", { all: true });
  push.enabledTargets = read;
  assert.equal(r.status, 503, JSON.stringify(r.json));
  assert.equal(apns.seen.length, 1000);
  const events = await server.store.db.get<{ n: number }>(
    "SELECT COUNT(*) AS n FROM events WHERE type = 'push.sent' AND enrollment_id LIKE 'LOST-%'",
  );
  assert.equal(Number(events!.n), 1000, "every push that went out has its event");
});
