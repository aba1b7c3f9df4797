// /metrics: the counters move by what happened, with bounded labels, behind the API key.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist, eventually, identity, RawDevice } from "./support/mdm.ts";
import { sample } from "./support/metrics.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

await forEachBackend("metrics", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  before(async () => {
    server = await startTestServer([], backend);
    fleet = await testFleet(server.url);
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  async function scrape(): Promise<string> {
    const r = await server.api("GET", "/v1/metrics");
    assert.equal(r.status, 200, r.text);
    return r.text;
  }

  test("device requests, API requests, enrollments and the queue, by their labels", async () => {
    // The first scrape of a fresh server: every figure is what this test did
    // (a scrape before it would cache the store's figures for a few seconds).
    const udid = randomUUID().toUpperCase();
    const dev = new RawDevice(fleet.transport, await identity(fleet), udid);
    await dev.enroll({ ProductName: "iPhone15,4" });
    for (let i = 0; i < 3; i++) assert.equal((await dev.report("Idle")).status, 200);
    const cmd = randomUUID().toUpperCase();
    assert.equal((await server.api("PUT", `/v1/enqueue/${udid}?nopush=1`, commandPlist("ProfileList", cmd))).status, 200);
    assert.equal((await server.api("GET", `/v1/enrollments/${udid}`)).status, 200);
    assert.equal((await server.api("GET", `/v1/enrollments/NO-SUCH-${udid}`)).status, 404);
    assert.equal((await server.api("POST", `/v1/push/${udid}`)).status, 500, "no push certificate: every id failed");
    const bad = await dev.checkin("NoSuchMessage");
    assert.equal(bad.status, 400);

    const text = await scrape();
    const moved = (series: string) => sample(text, series);
    assert.equal(moved('orchard_device_requests_total{endpoint="checkin",type="Authenticate",status="200"}'), 1);
    assert.equal(moved('orchard_device_requests_total{endpoint="checkin",type="TokenUpdate",status="200"}'), 1);
    assert.equal(moved('orchard_device_requests_total{endpoint="server",type="Idle",status="200"}'), 3);
    assert.equal(moved('orchard_device_requests_total{endpoint="checkin",type="none",status="400"}'), 1);
    assert.equal(moved('orchard_device_request_duration_seconds_count{endpoint="server",type="Idle"}'), 3);
    assert.equal(moved('orchard_api_requests_total{route="/v1/enrollments/:id",status="200"}'), 1);
    assert.equal(moved('orchard_api_requests_total{route="/v1/enrollments/:id",status="404"}'), 1);
    assert.equal(moved('orchard_api_requests_total{route="/v1/enqueue/:ids",status="200"}'), 1);
    assert.equal(moved('orchard_push_failures_total{reason="no_certificate"}'), 1);
    assert.equal(sample(text, 'orchard_enrollments{type="Device",platform="iOS"}'), 1, text);
    assert.ok(sample(text, "orchard_queue_depth") >= 1);
    assert.ok(sample(text, "orchard_queue_oldest_age_seconds") >= 0);
    assert.match(text, /^orchard_process_cpu_seconds_total /m, "prom-client's default collectors");

    // Never a UDID, command UUID, or secret in the text.
    for (const secret of [udid, cmd, "test-api-key-0123456789abcdef", "PUSH-MAGIC"]) assert.ok(!text.includes(secret), secret);
  });

  test("DDM: sync commands queued, channels due, declaration states, requests by Endpoint; no identifiers", async () => {
    // A server of its own: its first scrape sees only what this test did.
    const own = await startTestServer([], backend);
    const ownFleet = await testFleet(own.url);
    try {
      const udid = `METRICS-DDM-${randomUUID().toUpperCase()}`;
      const dev = new RawDevice(ownFleet.transport, await identity(ownFleet), udid);
      await dev.enroll({ ProductName: "Mac14,2" });
      const decl = (id: string, echo: string) => ({
        Type: "com.apple.configuration.management.test",
        Identifier: id,
        Payload: { Echo: echo },
      });
      for (const id of ["com.example.m.good", "com.example.m.bad", "com.example.m.old"]) {
        assert.equal((await own.api("PUT", "/v1/declarations?nonotify=1", decl(id, "1"))).status, 204);
        assert.equal((await own.api("PUT", `/v1/set-declarations/mset?declaration=${id}&nonotify=1`)).status, 204);
      }
      assert.equal((await own.api("POST", "/v1/ddm/sets/mset/enrollments", { ids: [udid] })).json.changed, 1);
      await eventually(async () => ((await own.store.ddm.dueCount()) === 0 ? true : undefined), 15_000, "the DDM sync sweep");

      const ddm = (endpoint: string, data?: unknown) =>
        dev.checkin("DeclarativeManagement", { Endpoint: endpoint, ...(data ? { Data: Buffer.from(JSON.stringify(data)) } : {}) });
      assert.equal((await ddm("tokens")).status, 200);
      const items = JSON.parse((await ddm("declaration-items")).text);
      assert.equal((await ddm("declaration/configuration/com.example.m.good")).status, 200);
      const token = (id: string) =>
        items.Declarations.Configurations.find((i: { Identifier: string }) => i.Identifier === id).ServerToken as string;
      const state = (id: string, active: boolean, valid: string) => ({ identifier: id, active, valid, "server-token": token(id) });
      const report = {
        StatusItems: {
          management: {
            declarations: {
              configurations: [
                state("com.example.m.good", true, "valid"),
                state("com.example.m.bad", false, "invalid"),
                state("com.example.m.old", true, "valid"),
              ],
            },
          },
        },
        Errors: [],
      };
      assert.equal((await ddm("status", report)).status, 200);
      // A change the device has not applied yet: what it reported of "old" is pending.
      assert.equal((await own.api("PUT", "/v1/declarations?nonotify=1", decl("com.example.m.old", "2"))).status, 204);
      // A channel due an hour from now stays due.
      await own.store.ddm.scheduleSync({ ids: ["METRICS-DDM-LATER"] }, Date.now() + 3_600_000);

      const r = await own.api("GET", "/v1/metrics");
      assert.equal(r.status, 200, r.text);
      const text = r.text;
      assert.equal(sample(text, "orchard_ddm_sync_commands_total"), 1, text);
      assert.equal(sample(text, "orchard_ddm_sync_due"), 1);
      assert.equal(sample(text, 'orchard_ddm_declarations{state="active_valid"}'), 1);
      assert.equal(sample(text, 'orchard_ddm_declarations{state="failing"}'), 1);
      assert.equal(sample(text, 'orchard_ddm_declarations{state="pending"}'), 1);
      for (const endpoint of ["tokens", "declaration-items", "declaration", "status"]) {
        assert.equal(sample(text, `orchard_ddm_requests_total{endpoint="${endpoint}"}`), 1, endpoint);
      }
      for (const secret of [udid, "com.example.m", "mset", "METRICS-DDM-LATER"]) assert.ok(!text.includes(secret), secret);
    } finally {
      ownFleet.close();
      await own.stop();
    }
  });

  test("/v1/metrics needs the API key", async () => {
    const r = await fetch(`${server.url}/v1/metrics`);
    assert.equal(r.status, 401);
  });
});

test("--metrics-listen serves /metrics without the API key, and nothing else", async () => {
  const server = await startTestServer(["--metrics-listen", "127.0.0.1:0"]);
  try {
    assert.ok(server.metricsUrl, "the listener's URL");
    assert.ok(
      server.logs.some((l) => l.includes("metrics served WITHOUT the API key")),
      "logged at start",
    );
    const r = await fetch(server.metricsUrl!);
    assert.equal(r.status, 200);
    const text = await r.text();
    assert.match(text, /^# TYPE orchard_device_requests_total counter$/m);
    assert.match(text, /^orchard_certificate_expiry_days\{certificate="device_ca"\} \d/m, text);
    // The credential CA (what RADIUS servers and VPN gateways trust) is made for ten years: watched too.
    assert.match(text, /^orchard_certificate_expiry_days\{certificate="credential_ca"\} 36\d\d\./m, text);
    assert.equal((await fetch(server.metricsUrl!.replace("/metrics", "/v1/enrollments"))).status, 404);
    // The main listener still wants the key.
    assert.equal((await fetch(`${server.url}/v1/metrics`)).status, 401);
  } finally {
    await server.stop();
  }
});

test("without --metrics-listen there is no second listener", async () => {
  const server = await startTestServer();
  try {
    assert.equal(server.metricsUrl, undefined);
  } finally {
    await server.stop();
  }
});
