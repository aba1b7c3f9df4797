// The webhook outbox across processes: `orchard serve` killed with SIGKILL
// while it delivers a backlog, restarted on the same data, delivers every
// event; two processes on one PostgreSQL deliver each event exactly once.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { createCa, generateKeyPair, issueDeviceIdentity } from "../src/identity/testing/pki.ts";
import { Transport } from "../src/sim/transport.ts";
import { RawDevice, sleep, waitFor } from "./support/mdm.ts";
import { createTestDatabase, postgresReachable } from "./support/postgres.ts";
import { spawnOrchard, type OrchardProcess } from "./support/process.ts";
import { WebhookReceiver } from "./support/webhook-receiver.ts";

const KEY = "webhook-durable-key-0123456789";
const AUTH = "Basic " + Buffer.from(`x:${KEY}`).toString("base64");

async function status(p: OrchardProcess): Promise<any> {
  const res = await fetch(p.url + "/v1/webhook", { headers: { authorization: AUTH } });
  return res.json();
}

/** Enrolls each device and sends `idles` Idle polls; resolves to how many requests were answered 200 (one event each). */
async function traffic(devices: RawDevice[], idles: number): Promise<number> {
  let answered = 0;
  await Promise.all(
    devices.map(async (dev) => {
      await dev.enroll();
      answered += 2;
      for (let i = 0; i < idles; i++) {
        const r = await dev.report("Idle");
        assert.equal(r.status, 200, r.text);
        answered++;
      }
    }),
  );
  return answered;
}

async function devices(transports: Transport[], n: number): Promise<RawDevice[]> {
  const key = await generateKeyPair();
  const ca = await createCa({ commonName: "Webhook Test CA", keyPair: key });
  const out: RawDevice[] = [];
  for (let i = 0; i < n; i++) {
    const id = await issueDeviceIdentity(ca, { commonName: `webhook-${i}`, keyPair: key });
    out.push(new RawDevice(transports[i % transports.length]!, id, randomUUID().toUpperCase()));
  }
  return out;
}

const baseArgs = (receiver: WebhookReceiver) => [
  "--api-key",
  KEY,
  "--cert-header",
  "x-client-cert",
  "--webhook-url",
  receiver.url,
  "--webhook-backoff",
  "50ms",
  "--log-level",
  "info",
];

test("kill -9 with a backlog, restart on the same data: every event is delivered", async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-webhook-crash-"));
  const receiver = await WebhookReceiver.start();
  // A slow receiver that fails a third of the time: the kill lands mid-delivery, with retries pending.
  receiver.answer = async (_r, i) => {
    await sleep(10);
    return i % 3 === 0 ? 500 : 200;
  };
  const args = ["--data-dir", dataDir, ...baseArgs(receiver), "--webhook-timeout", "500ms", "--webhook-concurrency", "2"];
  let proc = await spawnOrchard(args);
  let transport = new Transport(proc.url);
  try {
    const answered = await traffic(await devices([transport], 6), 15);
    await waitFor("some deliveries", () => receiver.received.length >= 10);
    const before = await status(proc);
    assert.ok(before.backlog > 0, "a backlog is left when the process is killed");
    await proc.stop("SIGKILL");
    transport.close();
    const deliveredBeforeKill = new Set(receiver.eventIds).size;
    assert.ok(deliveredBeforeKill < answered);

    proc = await spawnOrchard(args);
    transport = new Transport(proc.url);
    // Claimed events come back when their lease ends (ten times --webhook-timeout).
    await waitFor("every event after the restart", () => new Set(receiver.eventIds).size === answered, 60_000);
    await waitFor("an empty backlog", async () => (await status(proc)).backlog === 0, 30_000);
  } finally {
    transport.close();
    await proc.stop();
    await receiver.down();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

const pg = await postgresReachable();

describe("two processes on one PostgreSQL", { skip: pg ? false : "PostgreSQL not reachable (set ORCHARD_TEST_POSTGRES)" }, () => {
  test("each event is delivered exactly once, by one of them", async () => {
    const db = await createTestDatabase();
    const receiver = await WebhookReceiver.start();
    // A receiver slow enough that both processes claim batches at the same time.
    receiver.answer = async () => {
      await sleep(3);
      return 200;
    };
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-webhook-mp-"));
    const args = ["--storage", db.url, "--data-dir", dataDir, ...baseArgs(receiver), "--webhook-concurrency", "4"];
    const procs = await Promise.all([spawnOrchard(args), spawnOrchard(args)]);
    const transports = procs.map((p) => new Transport(p.url, undefined, 16));
    try {
      const answered = await traffic(await devices(transports, 20), 12);
      await waitFor("every event", () => new Set(receiver.eventIds).size === answered, 60_000);
      await waitFor("an empty backlog", async () => (await status(procs[0]!)).backlog === 0, 30_000);
      assert.equal(receiver.received.length, answered, "no event delivered twice");
      const s = await status(procs[1]!);
      assert.equal(s.delivered, answered);
    } finally {
      for (const t of transports) t.close();
      await Promise.all(procs.map((p) => p.stop()));
      await receiver.down();
      await db.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
