// Bulk pushes: 10,000 channels in one request complete with a result per id
// and never more streams open at once than the cap (--apns-max-streams) or
// the server's SETTINGS_MAX_CONCURRENT_STREAMS, whichever is lower.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { pushArgs, pushPki, seedEnrollments, startApnsStandIn, type ApnsStandIn } from "./support/apns.ts";
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
