// /metrics: the counters move by what happened, with bounded labels, behind the API key.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist, identity, RawDevice } from "./support/mdm.ts";
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
