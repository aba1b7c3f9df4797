import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { createCa, generateKeyPair, issueDeviceIdentity } from "../src/identity/testing/pki.ts";
import { SimDevice } from "../src/sim/device.ts";
import { RoundRobin, Transport } from "../src/sim/transport.ts";
import { challengeParams, digestResponse } from "./support/digest-client.ts";
import { createTestDatabase, postgresReachable } from "./support/postgres.ts";
import { spawnOrchard, type OrchardProcess } from "./support/process.ts";

const DEVICES = 500;
const COMMANDS = 10;
const KEY = "mp-key-0123456789abcdef012345";
const auth = "Basic " + Buffer.from(`x:${KEY}`).toString("base64");
const available = await postgresReachable();

describe("three orchard processes on one PostgreSQL", {
  skip: available ? false : "PostgreSQL not reachable (set ORCHARD_TEST_POSTGRES)",
}, () => {
  let db: { url: string; drop(): Promise<void> };
  let procs: OrchardProcess[] = [];
  let transports: Transport[] = [];
  let balancer: RoundRobin;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-mp-"));

  before(async () => {
    db = await createTestDatabase();
    const args = [
      "--storage",
      db.url,
      "--data-dir",
      dataDir,
      "--api-key",
      KEY,
      "--cert-header",
      "x-client-cert",
      "--digest-realm",
      "mp.test",
      "--log-level",
      "info",
    ];
    // All three start at once against the empty database: migrations must run once.
    procs = await Promise.all([spawnOrchard(args), spawnOrchard(args), spawnOrchard(args)]);
    transports = procs.map((p) => new Transport(p.url, undefined, 16));
    balancer = new RoundRobin(transports);
  });

  after(async () => {
    for (const t of transports) t.close();
    await Promise.all(procs.map((p) => p.stop()));
    await db?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const api = async (i: number, method: string, url: string, body?: string | object) => {
    const res = await fetch(procs[i % procs.length]!.url + url, {
      method,
      headers: { authorization: auth },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as any };
  };

  test("processes started together all came up and applied each migration once", async () => {
    const client = new pg.Client(db.url);
    await client.connect();
    try {
      const { rows } = await client.query("SELECT version, COUNT(*)::int AS n FROM schema_migrations GROUP BY version ORDER BY version");
      assert.ok(rows.length >= 2);
      for (const r of rows) assert.equal(r.n, 1);
    } finally {
      await client.end();
    }
    for (const p of procs) assert.equal((await fetch(p.url + "/healthz")).status, 200);
  });

  test("a UserAuthenticate handshake spans processes; replay and old tokens fail on all", async () => {
    const ca = await createCa({ commonName: "MP CA" });
    const identity = await issueDeviceIdentity(ca, { commonName: "mp-mac" });
    // Each request goes to the next process: step 1 and step 2 land on different ones.
    const mac = new SimDevice({ transport: balancer, identity, mode: { kind: "header", header: "x-client-cert" } });
    await mac.enroll();
    const guid = randomUUID().toUpperCase();
    assert.equal((await api(0, "PUT", "/v1/users/mpuser", { password: "pw", guid })).status, 201);
    const loginOnce = async () => {
      const first = await mac.checkin("UserAuthenticate", { UserID: guid });
      const { nonce } = challengeParams(first.plist!.DigestChallenge as string);
      const response = digestResponse({ username: "mpuser", password: "pw", realm: "mp.test", nonce: nonce! });
      const second = await mac.checkin("UserAuthenticate", { UserID: guid, DigestResponse: response });
      return { response, token: second.plist!.AuthToken as string };
    };
    const { response, token } = await loginOnce();
    assert.notEqual(token, "");
    // The replay goes to the next process in turn.
    const replay = await mac.checkin("UserAuthenticate", { UserID: guid, DigestResponse: response });
    assert.equal(replay.plist!.AuthToken, "");
    const user = { userId: guid, shortName: "mpuser", authToken: token };
    for (let i = 0; i < 3; i++) assert.equal((await mac.report("Idle", mac.userKeys(user))).status, 200);
    const next = await loginOnce();
    assert.notEqual(next.token, "");
    for (let i = 0; i < 3; i++) assert.equal((await mac.report("Idle", mac.userKeys(user))).status, 403, `process ${i}`);
    for (let i = 0; i < 3; i++) assert.equal((await mac.report("Idle", mac.userKeys({ ...user, authToken: next.token }))).status, 200);
  });

  test(`${DEVICES} devices x ${COMMANDS} commands: each delivered and acknowledged exactly once`, async () => {
    const ca = await createCa({ commonName: "MP fleet CA" });
    const key = await generateKeyPair();
    const devices: SimDevice[] = [];
    for (let i = 0; i < DEVICES; i++) {
      const identity = await issueDeviceIdentity(ca, { commonName: `mp-${i}`, keyPair: key });
      devices.push(new SimDevice({ transport: balancer, identity, mode: { kind: "header", header: "x-client-cert" } }));
    }
    await pool(devices, 32, (d) => d.enroll());

    // Each command goes to all devices, each enqueue through the next process.
    const uuids: string[] = [];
    for (let c = 0; c < COMMANDS; c++) {
      const plist = `<plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict></dict></plist>`;
      const r = await api(c, "PUT", `/v1/enqueue/${devices.map((d) => d.udid).join(",")}?nopush=1`, plist);
      assert.equal(r.status, 200);
      uuids.push(r.json.command_uuid);
    }

    const received = new Map<string, string[]>();
    await pool(devices, 32, async (d) => {
      const got: string[] = [];
      let reply = await d.report("Idle");
      while (reply.status === 200 && reply.body.length > 0) {
        const uuid = reply.plist!.CommandUUID as string;
        got.push(uuid);
        reply = await d.report("Acknowledged", { CommandUUID: uuid });
      }
      assert.equal(reply.status, 200);
      received.set(d.udid, got);
    });
    for (const d of devices) assert.deepEqual(received.get(d.udid), uuids, `device ${d.udid}`);

    const client = new pg.Client(db.url);
    await client.connect();
    try {
      const { rows } = await client.query(
        "SELECT COUNT(*)::int AS total, COUNT(*) FILTER (WHERE active = 1)::int AS active, COUNT(*) FILTER (WHERE status = 'Acknowledged' AND result IS NOT NULL)::int AS acked FROM command_queue",
      );
      assert.deepEqual(rows[0], { total: DEVICES * COMMANDS, active: 0, acked: DEVICES * COMMANDS });
    } finally {
      await client.end();
    }
  });
});

/** Runs fn over items with at most `width` at once. */
async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}
