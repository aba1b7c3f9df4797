// The webhook: NanoMDM's event format (its golden examples reproduced from
// the same device bytes), HMAC signatures, retries with the same event_id, a
// receiver that is down and comes back, the backlog limit, and no outbox at
// all without --webhook-url. Crash and multi-process delivery are in
// test/webhooks-durable.test.ts.
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { runWith } from "../src/cli/client-commands.ts";
import { cliContext } from "./support/cli.ts";
import { sample } from "./support/metrics.ts";
import { identity, RawDevice, rawPut, COMMAND_TYPE, waitFor } from "./support/mdm.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { startTestServer, type TestServer } from "./support/server.ts";
import { WebhookReceiver } from "./support/webhook-receiver.ts";

const FIXTURES = fileURLToPath(new URL("./fixtures/webhook/", import.meta.url));
const golden = (name: string) => fs.readFileSync(path.join(FIXTURES, name), "utf8").trim();
const GOLDEN_UDID = "66ADE930-5FDF-5EC4-8429-15640684C489";
const FAST = ["--webhook-backoff", "50ms", "--webhook-timeout", "2s"];

interface Setup {
  server: TestServer;
  fleet: TestFleet;
  receiver: WebhookReceiver;
  stop(): Promise<void>;
}

async function setup(args: string[], o: { down?: boolean; webhook?: boolean } = {}): Promise<Setup> {
  const receiver = await WebhookReceiver.start({ down: o.down });
  const server = await startTestServer(o.webhook === false ? args : ["--webhook-url", receiver.url, ...FAST, ...args]);
  const fleet = await testFleet(server.url);
  return {
    server,
    fleet,
    receiver,
    async stop() {
      fleet.close();
      await server.stop();
      await receiver.down();
    },
  };
}

async function newDevice(s: Setup, udid = randomUUID().toUpperCase()): Promise<RawDevice> {
  return new RawDevice(s.fleet.transport, await identity(s.fleet), udid);
}

/** The body with NanoMDM's test values for the two fields that differ per event. */
function asGolden(body: string): string {
  return body
    .replace(/"created_at":"[^"]*"/, '"created_at":"0001-01-01T00:00:00Z"')
    .replace(/"event_id":"[^"]*"/, '"event_id":"test_event_id"');
}

describe("webhook events in NanoMDM's format", () => {
  let s: Setup;
  after(() => s?.stop());

  test("Authenticate and a DeviceInformation report reproduce NanoMDM's golden events", async () => {
    s = await setup([]);
    const dev = await newDevice(s, GOLDEN_UDID);
    for (const [name, urlPath, contentType] of [
      ["Authenticate.2.json", "/checkin", undefined],
      ["DeviceInformation.1.json", "/mdm", COMMAND_TYPE],
    ] as const) {
      const want = golden(name);
      const wantJson = JSON.parse(want);
      const inner = wantJson.checkin_event ?? wantJson.acknowledge_event;
      // The exact bytes the device sent in NanoMDM's test.
      const bytes = Buffer.from(inner.raw_payload, "base64");
      const reply = await rawPut(dev.transport, urlPath, bytes, { auth: { kind: "header", identity: dev.identity }, contentType });
      assert.equal(reply.status, 200, reply.text);
      await waitFor(`the ${wantJson.topic} event`, () => s.receiver.received.some((r) => r.json.topic === wantJson.topic));
      const got = s.receiver.received.find((r) => r.json.topic === wantJson.topic)!;
      // Same keys, same order, same types, same base64: byte for byte once the per-event fields are NanoMDM's test values.
      assert.equal(asGolden(got.body), want);
      assert.match(got.json.event_id, /^[0-9a-f-]{36}$/);
      assert.ok(!Number.isNaN(Date.parse(got.json.created_at)) && /Z$/.test(got.json.created_at));
      assert.equal(got.headers["content-type"], "application/json");
      assert.equal(got.headers["x-hmac-signature"], undefined, "no signature without --webhook-hmac-key");
    }
    const ids = s.receiver.eventIds;
    assert.equal(new Set(ids).size, ids.length, "every event has its own event_id");
  });

  test("TokenUpdate carries token_update_tally; a user channel's ids carry parent_id; the URL's query is url_params", async () => {
    const dev = await newDevice(s);
    await dev.enroll();
    await dev.tokenUpdate();
    const userId = randomUUID().toUpperCase();
    const r = await rawPut(
      dev.transport,
      "/checkin?org=acme&site=1",
      Buffer.from(
        `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>MessageType</key><string>TokenUpdate</string>` +
          `<key>UDID</key><string>${dev.udid}</string><key>UserID</key><string>${userId}</string>` +
          `<key>Topic</key><string>com.apple.mgmt.External.test</string><key>Token</key><data>ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=</data>` +
          `<key>PushMagic</key><string>M</string></dict></plist>`,
      ),
      { auth: { kind: "header", identity: dev.identity } },
    );
    assert.equal(r.status, 200, r.text);
    const mine = () => s.receiver.received.filter((x) => x.json.checkin_event?.udid === dev.udid && x.json.topic === "mdm.TokenUpdate");
    await waitFor("three TokenUpdate events", () => mine().length === 3);
    const [first, second, user] = mine().sort((a, b) => a.json.created_at.localeCompare(b.json.created_at) || 0);
    const byId = mine();
    const device = byId.filter((x) => x.json.checkin_event.ids.id === dev.udid).map((x) => x.json.checkin_event.token_update_tally);
    assert.deepEqual(device.sort(), [1, 2]);
    const u = byId.find((x) => x.json.checkin_event.ids.type === "User")!.json.checkin_event;
    assert.deepEqual(u.ids, { id: `${dev.udid}:${userId}`, parent_id: dev.udid, type: "User" });
    assert.equal(u.token_update_tally, 1);
    assert.deepEqual(u.url_params, { org: "acme", site: "1" });
    assert.ok(first && second && user);
    // Orchard's own events are not sent by default: NanoMDM's consumers see only NanoMDM's topics.
    assert.ok(s.receiver.received.every((x) => x.json.topic.startsWith("mdm.")));
  });

  test("an unknown event type is a 400 that lists the catalogue; GET /v1/event-types lists it", async () => {
    const bad = await s.server.api("GET", "/v1/events?type=device.exploded");
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, "invalid_parameter");
    assert.match(bad.json.error, /device\.authenticated.*webhook\.dropped/);
    const types = await s.server.api("GET", "/v1/event-types");
    assert.equal(types.status, 200);
    assert.ok(types.json.event_types.some((t: { type: string }) => t.type === "push.failed"));
    assert.equal((await s.server.api("GET", "/v1/events?type=device.authenticated")).status, 200);
  });
});

describe("webhook delivery", () => {
  test("X-Hmac-Signature is the base64 HMAC-SHA256 of the exact body", async () => {
    const key = "webhook-hmac-key-0123456789";
    const s = await setup(["--webhook-hmac-key", key]);
    try {
      const dev = await newDevice(s);
      await dev.enroll();
      await waitFor("two events", () => s.receiver.received.length >= 2);
      for (const r of s.receiver.received) {
        const want = createHmac("sha256", key).update(Buffer.from(r.body)).digest("base64");
        assert.equal(r.headers["x-hmac-signature"], want);
      }
      // The key never reaches a log line.
      assert.ok(!s.server.logs.some((l) => l.includes(key)));
    } finally {
      await s.stop();
    }
  });

  test("a receiver that answers 500 twice, then 200, gets the same event (same event_id, same body) three times", async () => {
    const s = await setup(["--webhook-topics", "mdm.Authenticate"]);
    try {
      s.receiver.answer = (_r, i) => (i < 2 ? 500 : 200);
      const dev = await newDevice(s);
      assert.equal((await dev.authenticate()).status, 200);
      await waitFor("three deliveries", () => s.receiver.received.length >= 3);
      const [a, b, c] = s.receiver.received;
      assert.equal(a!.json.event_id, b!.json.event_id);
      assert.equal(a!.json.event_id, c!.json.event_id);
      assert.equal(a!.body, c!.body);
      await waitFor("the status to show it delivered", async () => (await s.server.api("GET", "/v1/webhook")).json.backlog === 0);
      const status = (await s.server.api("GET", "/v1/webhook")).json;
      assert.equal(status.enabled, true);
      assert.equal(status.delivered, 1);
      assert.equal(status.failed, 2);
      assert.equal(status.last_failure.status, 500);
      assert.equal(status.last_failure.event_id, a!.json.event_id);
      assert.equal(s.receiver.received.length, 3, "nothing more after the 200");
      const metrics = (await s.server.api("GET", "/v1/metrics")).text;
      assert.equal(sample(metrics, 'orchard_webhook_deliveries_total{outcome="http_error"}'), 2);
      assert.equal(sample(metrics, 'orchard_webhook_deliveries_total{outcome="delivered"}'), 1);
      assert.equal(sample(metrics, "orchard_webhook_retries_total"), 1);
    } finally {
      await s.stop();
    }
  });

  test("a receiver down for a while, then up, gets every event, each once, in order per enrollment", async () => {
    const s = await setup([], { down: true });
    try {
      const devices = [await newDevice(s), await newDevice(s)];
      let answered = 0;
      for (const dev of devices) {
        await dev.enroll();
        answered += 2;
        for (let i = 0; i < 10; i++) {
          assert.equal((await dev.report("Idle")).status, 200);
          answered++;
        }
      }
      await waitFor("failed attempts", async () => (await s.server.api("GET", "/v1/webhook")).json.failed > 0);
      const down = (await s.server.api("GET", "/v1/webhook")).json;
      assert.equal(down.backlog, answered);
      assert.ok(down.last_failure.error.length > 0);
      assert.equal(down.last_failure.status, null);
      const cli = cliContext(s.server.url);
      assert.equal(await runWith(cli, "webhook", ["status"]), 0, cli.stderr);
      assert.match(cli.stdout, new RegExp(`backlog: +${answered} events`));
      assert.match(cli.stdout, /last failure: .*mdm\./);
      await s.receiver.up();
      // `orchard webhook retry` (POST /v1/webhook/retry) makes the backed-off events due at once.
      const retry = cliContext(s.server.url);
      assert.equal(await runWith(retry, "webhook", ["retry"]), 0, retry.stderr);
      assert.match(retry.stdout, /made due now/);
      await waitFor("every event", () => new Set(s.receiver.eventIds).size === answered, 30_000);
      assert.equal(s.receiver.received.length, answered, "no event twice");
      for (const dev of devices) {
        const topics = s.receiver.received.filter((r) => (r.json.checkin_event ?? r.json.acknowledge_event).udid === dev.udid);
        assert.deepEqual(
          topics.map((r) => r.json.topic),
          ["mdm.Authenticate", "mdm.TokenUpdate", ...Array(10).fill("mdm.Connect")],
        );
      }
      await waitFor("an empty backlog", async () => (await s.server.api("GET", "/v1/webhook")).json.backlog === 0);
    } finally {
      await s.stop();
    }
  });

  test("past --webhook-max-backlog the oldest events are dropped, with a webhook.dropped event, a log line and a metric", async () => {
    // webhook.dropped is itself a topic here: its event takes a place in the backlog, made for it by the drop.
    // (Each drop's event put the backlog over the limit again, and the next sweep dropped another, for ever: walkthrough.)
    const s = await setup(["--webhook-max-backlog", "5", "--webhook-topics", "mdm.*,webhook.dropped"], { down: true });
    try {
      const dev = await newDevice(s);
      await dev.enroll();
      for (let i = 0; i < 10; i++) assert.equal((await dev.report("Idle")).status, 200);
      // The drop's event is written after the drop commits: waited for, not the count.
      await waitFor("the drop's event", async () => (await s.server.api("GET", "/v1/events?type=webhook.dropped")).json.events.length > 0);
      const status = (await s.server.api("GET", "/v1/webhook")).json;
      assert.equal(status.backlog, 5);
      assert.equal(status.dropped + status.backlog, 13);
      const events = (await s.server.api("GET", "/v1/events?type=webhook.dropped")).json.events;
      assert.equal(events.length, 1);
      assert.equal(events[0].detail.reason, "backlog");
      assert.equal(events[0].detail.count, 8);
      assert.ok(s.server.logs.some((l) => l.includes("WEBHOOK EVENTS DROPPED")));
      const metrics = (await s.server.api("GET", "/v1/metrics")).text;
      assert.equal(sample(metrics, 'orchard_webhook_dropped_total{reason="backlog"}'), 8);
      // Sweeps go on (every 2 s; a retry wakes a delivery loop paused on failures): nothing more goes.
      for (let i = 0; i < 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 2_100));
        await s.server.api("POST", "/v1/webhook/retry");
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(await s.server.api("GET", "/v1/webhook").then((r) => [r.json.dropped, r.json.backlog]), [8, 5]);
      // The newest were kept, the drop's own event among them: the receiver, back, gets those, and nothing more was dropped.
      await s.receiver.up();
      await s.server.api("POST", "/v1/webhook/retry");
      await waitFor("the kept events", () => new Set(s.receiver.eventIds).size === status.backlog, 30_000);
      assert.ok(s.receiver.received.some((r) => r.json.topic === "webhook.dropped"));
      assert.equal((await s.server.api("GET", "/v1/webhook")).json.dropped, 8);
    } finally {
      await s.stop();
    }
  });

  test("Orchard's own events are extra topics, sent only when asked for", async () => {
    const s = await setup(["--webhook-topics", "mdm.TokenUpdate,enrollment.*"]);
    try {
      const dev = await newDevice(s);
      await dev.enroll();
      await waitFor("two events", () => s.receiver.received.length >= 2);
      const topics = s.receiver.received.map((r) => r.json.topic).sort();
      assert.deepEqual(topics, ["enrollment.enrolled", "mdm.TokenUpdate"]);
      const orchard = s.receiver.received.find((r) => r.json.topic === "enrollment.enrolled")!.json;
      assert.deepEqual(orchard.orchard_event.detail, { type: "Device" });
      assert.equal(orchard.orchard_event.enrollment_id, dev.udid);
    } finally {
      await s.stop();
    }
  });

  test("without --webhook-url nothing is written to the outbox", async () => {
    const s = await setup([], { webhook: false });
    try {
      const dev = await newDevice(s);
      await dev.enroll();
      for (let i = 0; i < 5; i++) await dev.report("Idle");
      await dev.checkin("CheckOut");
      const row = await s.server.store.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM webhook_outbox");
      assert.equal(Number(row!.n), 0);
      const status = (await s.server.api("GET", "/v1/webhook")).json;
      assert.equal(status.enabled, false);
      assert.equal(s.receiver.received.length, 0);
    } finally {
      await s.stop();
    }
  });
});
