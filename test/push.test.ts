// APNs pushes end to end: Orchard pushes to a local HTTP/2 TLS stand-in for
// APNs (test/support/apns.ts) that checks the client certificate, the path,
// the headers and the body, and answers what each test asks for.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import type { SimDevice } from "../src/sim/device.ts";
import { pushArgs, pushPki, seedEnrollments, startApnsStandIn, TEST_TOPIC, type ApnsStandIn } from "./support/apns.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist, waitFor } from "./support/mdm.ts";
import { createTestDatabase, forEachBackend } from "./support/postgres.ts";
import { sample } from "./support/metrics.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const pki = await pushPki();
const DAY_S = 86_400;

const uuid = () => randomUUID().toUpperCase();
const hex = (d: SimDevice) => d.pushToken.toString("hex");

await forEachBackend("push", (backend) => {
  let apns: ApnsStandIn;
  let server: TestServer;
  let fleet: TestFleet;

  before(async () => {
    apns = await startApnsStandIn({ pushCa: pki.pushCa, serverCa: pki.serverCa, serverKey: pki.serverKey });
    server = await startTestServer(pushArgs(apns, ["--notnow-push-delay", "150ms"]), backend);
    fleet = await testFleet(server.url);
    const up = await server.api("PUT", "/v1/pushcert", pki.pem());
    assert.equal(up.status, 200, up.text);
  });
  after(async () => {
    fleet.close();
    await server.stop();
    await apns.close();
  });
  beforeEach(() => apns.reset());

  async function enrolled(): Promise<SimDevice> {
    const d = await fleet.device();
    await d.enroll();
    return d;
  }
  const push = (ids: string) => server.api("POST", `/v1/push/${ids}`);
  const events = async (id: string, type: string) =>
    (await server.api("GET", `/v1/events?enrollment=${encodeURIComponent(id)}&type=${type}`)).json.events;

  test("PUT /v1/pushcert answers topic and not_after; GET lists it without the key", async () => {
    const up = await server.api("PUT", "/v1/pushcert", pki.pem());
    assert.deepEqual(up.json, { topic: TEST_TOPIC, not_after: new Date(pki.cert.cert.validTo).toISOString() });
    const list = await server.api("GET", "/v1/pushcert");
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.json.push_certs.map((c: any) => [c.topic, c.fingerprint]),
      [[TEST_TOPIC, pki.cert.fingerprint]],
    );
    assert.ok(!/PRIVATE KEY|key/i.test(JSON.stringify(Object.keys(list.json.push_certs[0]))), "no key field");
    assert.ok(!list.text.includes(pki.cert.keyPem.split("\n")[1]!), "no key material");
  });

  test('a push goes out as an MDM push: the push certificate, /3/device/<hex token>, headers, {"mdm": PushMagic}', async () => {
    const d = await enrolled();
    const sentBefore = sample((await server.api("GET", "/v1/metrics")).text, "orchard_pushes_sent_total");
    const r = await push(d.udid);
    assert.equal(r.status, 200, r.text);
    const metrics = (await server.api("GET", "/v1/metrics")).text;
    assert.equal(sample(metrics, "orchard_pushes_sent_total") - sentBefore, 1, "counted in /metrics");
    assert.match(
      metrics,
      new RegExp(`^orchard_certificate_expiry_days\\{certificate="push",topic="${TEST_TOPIC.replaceAll(".", "\\.")}"\\} \\d`, "m"),
    );
    assert.equal(apns.seen.length, 1);
    const seen = apns.seen[0]!;
    assert.deepEqual(r.json, { status: { [d.udid]: { push_result: seen.apnsId } } });
    assert.equal(seen.token, hex(d));
    assert.equal(seen.pushMagic, d.pushMagic);
    assert.equal(seen.topic, TEST_TOPIC);
    assert.equal(seen.certFingerprint, pki.cert.fingerprint);
    const expected = Math.floor(Date.now() / 1000) + DAY_S;
    assert.ok(Math.abs(seen.expiration - expected) < 60, `apns-expiration ${seen.expiration} is about now + 24 h`);
    assert.deepEqual(apns.violations, []);
    const sent = await events(d.udid, "push.sent");
    assert.equal(sent.length, 1);
    assert.equal(sent[0].detail.apns_id, seen.apnsId);
    assert.equal(sent[0].detail.trigger, "api");
    // GET works too (NanoMDM's API), and unknown ids get a push_error of their own.
    const g = await server.api("GET", `/v1/push/${d.udid},NO-SUCH-ID`);
    assert.equal(g.status, 207);
    assert.ok(g.json.status[d.udid].push_result);
    assert.equal(g.json.status["NO-SUCH-ID"].push_error, "unknown enrollment");
  });

  test("enqueue now pushes (and ?nopush=1 does not)", async () => {
    const d = await enrolled();
    const id = uuid();
    const q = await server.api("PUT", `/v1/enqueue/${d.udid}`, commandPlist("DeviceInformation", id));
    assert.equal(q.status, 200, q.text);
    assert.equal(apns.seen.length, 1);
    assert.deepEqual(q.json, {
      command_uuid: id,
      request_type: "DeviceInformation",
      status: { [d.udid]: { push_result: apns.seen[0]!.apnsId } },
    });
    assert.equal((await events(d.udid, "push.sent"))[0].detail.trigger, "enqueue");
    assert.equal((await server.api("PUT", `/v1/enqueue/${d.udid}?nopush=1`, commandPlist("ProfileList", uuid()))).status, 200);
    assert.equal(apns.seen.length, 1);
  });

  test("410 Unregistered: no more pushes to that token until the device sends a TokenUpdate", async () => {
    const d = await enrolled();
    const other = await enrolled();
    apns.answer = (p) => (p.token === hex(d) ? { status: 410, reason: "Unregistered", timestamp: Date.now() } : { status: 200 });
    const first = await push(`${d.udid},${other.udid}`);
    assert.equal(first.status, 207);
    assert.match(first.json.status[d.udid].push_error, /^APNs 410 Unregistered: the push token is no longer valid/);
    assert.ok(first.json.status[other.udid].push_result);
    apns.answer = () => ({ status: 200 });

    const again = await push(d.udid);
    assert.equal(again.status, 500);
    assert.match(
      again.json.status[d.udid].push_error,
      /APNs refused this push token \(410 Unregistered\).*no pushes until the device sends a TokenUpdate/,
    );
    const viaEnqueue = await server.api("PUT", `/v1/enqueue/${d.udid}`, commandPlist("ProfileList", uuid()));
    assert.match(viaEnqueue.json.status[d.udid].push_error, /refused this push token/);
    assert.equal(apns.seen.filter((p) => p.token === hex(d)).length, 1, "nothing more was sent to the dead token");
    const failed = await events(d.udid, "push.failed");
    assert.equal(failed[0].detail.status, 410);
    assert.equal(failed[0].detail.token_dead, true);

    assert.equal((await d.tokenUpdate()).status, 200);
    const revived = await push(d.udid);
    assert.equal(revived.status, 200, revived.text);
    assert.equal(apns.seen.filter((p) => p.token === hex(d)).length, 2);
  });

  test("400 BadDeviceToken marks the token dead; a 410 older than the last TokenUpdate and other 400s do not", async () => {
    const bad = await enrolled();
    const stale = await enrolled();
    const wrongTopic = await enrolled();
    apns.answer = (p) =>
      p.token === hex(bad)
        ? { status: 400, reason: "BadDeviceToken" }
        : p.token === hex(stale)
          ? { status: 410, reason: "Unregistered", timestamp: Date.now() - 3_600_000 }
          : { status: 400, reason: "DeviceTokenNotForTopic" };
    const r = await push([bad.udid, stale.udid, wrongTopic.udid].join(","));
    assert.equal(r.status, 500);
    assert.match(r.json.status[bad.udid].push_error, /^APNs 400 BadDeviceToken/);
    assert.match(r.json.status[wrongTopic.udid].push_error, /^APNs 400 DeviceTokenNotForTopic$/);
    apns.answer = () => ({ status: 200 });
    const again = await push([bad.udid, stale.udid, wrongTopic.udid].join(","));
    assert.match(again.json.status[bad.udid].push_error, /refused this push token \(400 BadDeviceToken\)/);
    assert.ok(again.json.status[stale.udid].push_result, "the 410 predates the channel's TokenUpdate: the token stays alive");
    assert.ok(again.json.status[wrongTopic.udid].push_result);
    assert.equal(apns.seen.length, 5);
  });

  test("429 is retried after a backoff, with the same apns-id", async () => {
    const d = await enrolled();
    apns.answer = (_p, n) => (n === 1 ? { status: 429, reason: "TooManyRequests" } : { status: 200 });
    const r = await push(d.udid);
    assert.equal(r.status, 200, r.text);
    assert.equal(apns.seen.length, 2);
    assert.equal(apns.seen[0]!.apnsId, apns.seen[1]!.apnsId);
    assert.ok(apns.seen[1]!.at - apns.seen[0]!.at >= 4, "waited before retrying");
    assert.equal((await events(d.udid, "push.sent"))[0].detail.attempts, 2);
  });

  test("500 is retried a bounded number of times, then given up; 503 retries on a new connection", async () => {
    const d = await enrolled();
    apns.answer = () => ({ status: 500, reason: "InternalServerError" });
    const r = await push(d.udid);
    assert.equal(r.status, 500);
    assert.equal(r.json.status[d.udid].push_error, "APNs 500 InternalServerError (after 4 attempts)");
    assert.equal(apns.seen.length, 4, "one try and --apns-retries (3) more");
    assert.equal((await events(d.udid, "push.failed")).at(-1).detail.attempts, 4);

    apns.reset();
    const sessions = apns.sessions;
    apns.answer = (_p, n) => (n === 1 ? { status: 503, reason: "ServiceUnavailable" } : { status: 200 });
    const ok = await push(d.udid);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(apns.seen.length, 2);
    assert.ok(apns.sessions > sessions, "a 503 closes the connection; the retry opens a new one");
  });

  test("GOAWAY in the middle of a batch: the refused streams go out again on a new connection", async () => {
    const rows = await seedEnrollments(server.store, 300, { prefix: `GOAWAY-${backend}` });
    const sessions = apns.sessions;
    apns.answer = (_p, n) => (n === 100 ? { goaway: "Shutdown" } : { status: 200, delayMs: 2 });
    const r = await push(rows.map((x) => x.id).join(","));
    assert.equal(r.status, 200, JSON.stringify(Object.values(r.json.status).find((s: any) => !s.push_result)));
    assert.equal(Object.keys(r.json.status).length, 300);
    assert.ok(apns.sessions > sessions, "reconnected after GOAWAY");
    const delivered = new Set(apns.seen.map((p) => p.token));
    for (const row of rows) assert.ok(delivered.has(row.token), `token of ${row.id} reached APNs`);
    assert.deepEqual(apns.violations, []);
    // Refused streams were never processed by APNs: resent at once, not counted as failed attempts.
    const attempts = await server.store.db.all<{ detail: string }>(
      "SELECT detail FROM events WHERE type = 'push.sent' AND enrollment_id LIKE ?",
      [`GOAWAY-${backend}-%`],
    );
    assert.equal(attempts.length, 300);
    assert.deepEqual([...new Set(attempts.map((e) => JSON.parse(e.detail).attempts))], [1]);
  });

  test("403 BadCertificate: every id fails, reported once, nothing more sent on the topic until a new certificate", async () => {
    const ds = [await enrolled(), await enrolled(), await enrolled()];
    const ids = ds.map((d) => d.udid).join(",");
    apns.answer = () => ({ status: 403, reason: "BadCertificate" });
    const before = server.logs.length;
    const r = await push(ids);
    assert.equal(r.status, 500);
    for (const d of ds) assert.match(r.json.status[d.udid].push_error, /APNs refused the push certificate of .* \(403 BadCertificate\)/);
    const sentFirst = apns.seen.length;
    assert.ok(sentFirst >= 1 && sentFirst <= 3);
    const r2 = await push(ids);
    for (const d of ds) assert.match(r2.json.status[d.udid].push_error, /403 BadCertificate/);
    assert.equal(apns.seen.length, sentFirst, "the topic is not tried again with the refused certificate");
    const loud = server.logs.slice(before).filter((l) => l.includes("PUSH CERTIFICATE REFUSED"));
    assert.equal(loud.length, 1, "logged once per topic, not per device");
    assert.equal(JSON.parse(loud[0]!).level, 50);
    const refused = (await server.api("GET", "/v1/events?type=pushcert.refused")).json.events;
    assert.equal(refused.length, 1);

    // A new certificate lifts the block at once.
    apns.answer = () => ({ status: 200 });
    assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem(pki.rotated))).status, 200);
    const r3 = await push(ids);
    assert.equal(r3.status, 200, r3.text);
    assert.equal(apns.seen.at(-1)!.certFingerprint, pki.rotated.fingerprint);
    assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem())).status, 200);
  });

  test("no certificate for the channel's topic: push_error, nothing sent", async () => {
    const [row] = await seedEnrollments(server.store, 1, { prefix: `OTHER-TOPIC-${backend}`, topic: "com.apple.mgmt.External.nobody" });
    const r = await push(row!.id);
    assert.equal(r.status, 500);
    assert.equal(r.json.status[row!.id].push_error, "no push certificate for topic com.apple.mgmt.External.nobody");
    assert.equal(apns.seen.length, 0);
  });

  test("NotNow followed by another command's status: a push follows later; a session ending on NotNow gets none", async () => {
    const d = await enrolled();
    const quiet = await enrolled();
    const [a, b, c] = [uuid(), uuid(), uuid()];
    for (const [id, cmd] of [
      [d.udid, a],
      [d.udid, b],
      [quiet.udid, c],
    ] as const) {
      assert.equal((await server.api("PUT", `/v1/enqueue/${id}?nopush=1`, commandPlist("ProfileList", cmd))).status, 200);
    }
    // d: A NotNow, then B Acknowledged: the device will not come back by itself (brief 6.6).
    assert.equal((await d.report("Idle")).plist?.CommandUUID, a);
    assert.equal((await d.report("NotNow", { CommandUUID: a })).plist?.CommandUUID, b);
    await d.report("Acknowledged", { CommandUUID: b });
    // quiet: its session ends with NotNow; it polls again by itself.
    assert.equal((await quiet.report("Idle")).plist?.CommandUUID, c);
    assert.equal((await quiet.report("NotNow", { CommandUUID: c })).body.length, 0);

    await waitFor("the push after NotNow", () => apns.seen.some((p) => p.token === hex(d)));
    // Its event is written once the batch is done, just after APNs answered.
    await waitFor("the push.sent event", async () => (await events(d.udid, "push.sent")).length > 0);
    assert.equal((await events(d.udid, "push.sent")).at(-1).detail.trigger, "notnow");
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(apns.seen.filter((p) => p.token === hex(quiet)).length, 0);
    assert.equal(apns.seen.filter((p) => p.token === hex(d)).length, 1, "pushed once");
  });

  test("the sweep pushes channels with commands queued that have been silent too long", async () => {
    const sweeper = await startTestServer(pushArgs(apns, ["--push-sweep-interval", "150ms", "--push-sweep-silence", "300ms"]), backend);
    const f = await testFleet(sweeper.url);
    try {
      assert.equal((await sweeper.api("PUT", "/v1/pushcert", pki.pem())).status, 200);
      const waiting = await f.device();
      await waiting.enroll();
      const idle = await f.device();
      await idle.enroll();
      assert.equal((await sweeper.api("PUT", `/v1/enqueue/${waiting.udid}?nopush=1`, commandPlist("ProfileList", uuid()))).status, 200);
      await waitFor("the sweep's push", () => apns.seen.some((p) => p.token === hex(waiting)));
      const sent = async () => (await sweeper.api("GET", `/v1/events?enrollment=${waiting.udid}&type=push.sent`)).json.events;
      await waitFor("the push.sent event", async () => (await sent()).length > 0);
      assert.equal((await sent())[0].detail.trigger, "sweep");
      assert.ok(!apns.seen.some((p) => p.token === hex(idle)), "nothing queued: not pushed");
    } finally {
      f.close();
      await sweeper.stop();
    }
  });

  test("a certificate rotated through one process is used by another without a restart", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-push-shared-"));
    const database = backend === "postgres" ? await createTestDatabase() : undefined;
    const storage = database?.url ?? `sqlite:${path.join(dir, "shared.db")}`;
    const args = pushArgs(apns, ["--storage", storage, "--pushcert-refresh", "100ms"]);
    const one = await startTestServer(args);
    const two = await startTestServer(args);
    const f = await testFleet(two.url);
    try {
      assert.equal((await one.api("PUT", "/v1/pushcert", pki.pem())).status, 200);
      const d = await f.device();
      await d.enroll();
      assert.equal((await two.api("POST", `/v1/push/${d.udid}`)).status, 200);
      assert.equal(apns.seen.at(-1)!.certFingerprint, pki.cert.fingerprint);

      assert.equal((await one.api("PUT", "/v1/pushcert", pki.pem(pki.rotated))).status, 200);
      // Within --pushcert-refresh (100 ms) on a quiet machine; waited for, not timed.
      await waitFor("the second process pushes with the new certificate", async () => {
        const r = await two.api("POST", `/v1/push/${d.udid}`);
        assert.equal(r.status, 200, r.text);
        return apns.seen.at(-1)!.certFingerprint === pki.rotated.fingerprint;
      });
      assert.equal((await two.api("GET", "/v1/pushcert")).json.push_certs[0].fingerprint, pki.rotated.fingerprint);

      // A process with another secret key cannot open what the store keeps sealed (the credential CA first):
      // it does not start, and says why.
      await assert.rejects(
        startTestServer(pushArgs(apns, ["--storage", storage], "another-secret-key-987654")),
        /does not open with this server's secret key/,
      );
    } finally {
      f.close();
      await Promise.all([one.stop(), two.stop()]);
      await database?.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("APNs unreachable: retried, then a push_error that says so", async () => {
    const lonely = await startTestServer(
      ["--apns-url", "https://127.0.0.1:1", "--apns-backoff", "5ms", "--secret-key", "test-secret-key-0123456789"],
      backend,
    );
    const f = await testFleet(lonely.url);
    try {
      assert.equal((await lonely.api("PUT", "/v1/pushcert", pki.pem())).status, 200);
      const d = await f.device();
      await d.enroll();
      const r = await lonely.api("POST", `/v1/push/${d.udid}`);
      assert.equal(r.status, 500);
      assert.match(r.json.status[d.udid].push_error, /^APNs did not answer: cannot connect to APNs at https:\/\/127\.0\.0\.1:1: /);
      const failed = (await lonely.api("GET", `/v1/events?enrollment=${d.udid}&type=push.failed`)).json.events;
      assert.equal(failed[0].detail.attempts, 4);
      assert.equal(lonely.logs.filter((l) => l.includes("APNs connection failed")).length, 4);
    } finally {
      f.close();
      await lonely.stop();
    }
  });

  describe("without a push certificate", () => {
    test("pushes fail with NoPusher's words and enqueue still queues", async () => {
      const bare = await startTestServer(pushArgs(apns), backend);
      const f = await testFleet(bare.url);
      try {
        const d = await f.device();
        await d.enroll();
        const r = await bare.api("POST", `/v1/push/${d.udid}`);
        assert.equal(r.status, 500);
        assert.deepEqual(r.json, { status: { [d.udid]: { push_error: "no push certificate is configured" } } });
        assert.equal(apns.seen.length, 0);
      } finally {
        f.close();
        await bare.stop();
      }
    });
  });
});
