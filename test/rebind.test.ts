// Issue #11 item 2: an enrolled device cannot be taken over by its UDID. Another
// certificate's Authenticate is held (403, an event, nothing changed) until the
// device checks out, its current identity has been silent long enough and then
// left a push unanswered, or an operator approves the new certificate by its
// fingerprint (API, CLI); --rebind any is the peers' way.
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { runWith } from "../src/cli/client-commands.ts";
import { Transport } from "../src/sim/transport.ts";
import { pushArgs, pushPki, startApnsStandIn, TEST_TOPIC, type ApnsStandIn } from "./support/apns.ts";
import { cliContext } from "./support/cli.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist, dumpStore, eventually, identity, RawDevice } from "./support/mdm.ts";
import { createTestDatabase, forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const HOUR = 3_600_000;

await forEachBackend("re-binding an enrolled device", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;

  before(async () => {
    server = await startTestServer(["--rebind-after-silence", "1h"], backend);
    fleet = await testFleet(server.url);
  });
  after(async () => {
    fleet.close();
    await server?.stop();
  });

  /** An enrolled device with a queued command and an escrowed bootstrap token, and a newcomer claiming its UDID. */
  async function victim(): Promise<{ real: RawDevice; intruder: RawDevice; command: string }> {
    const udid = randomUUID().toUpperCase();
    const real = new RawDevice(fleet.transport, await identity(fleet), udid);
    await real.enroll();
    assert.equal((await real.checkin("SetBootstrapToken", { BootstrapToken: Buffer.from("secret-bootstrap") })).status, 200);
    const q = await server.api("PUT", `/v1/enqueue/${udid}?nopush=1`, commandPlist("ProfileList"));
    assert.equal(q.status, 200, q.text);
    return { real, intruder: new RawDevice(fleet.transport, await identity(fleet), udid), command: q.json.command_uuid };
  }

  async function events(udid: string, type: string): Promise<any[]> {
    const r = await server.api("GET", `/v1/events?enrollment=${udid}&type=${type}`);
    assert.equal(r.status, 200, r.text);
    return r.json.events;
  }

  /** Moves the device's last contact back by `ms`, as if it had been silent (after every pending last-seen time is written). */
  async function silence(udid: string, ms: number): Promise<void> {
    await lastSeenWritten(server, fleet);
    await server.store.db.run("UPDATE devices SET authenticated_at = authenticated_at - ? WHERE id = ?", [ms, udid]);
    await server.store.db.run("UPDATE enrollments SET last_seen_at = last_seen_at - ? WHERE device_id = ?", [ms, udid]);
  }

  test("a takeover is held: 403, an event with both fingerprints, nothing changed, the real device keeps working", async () => {
    const { real, intruder, command } = await victim();
    // The victim's last-seen time is written in a batch a moment later: not while the two snapshots are taken.
    await lastSeenWritten(server, fleet);
    const before = await dumpStore(server.store);
    const tables = (d: Record<string, unknown[]>) => ({
      devices: d.devices,
      enrollments: d.enrollments,
      command_queue: d.command_queue,
      user_sessions: d.user_sessions,
    });

    const r = await intruder.authenticate();
    assert.equal(r.status, 403);
    assert.match(r.text, /enrolled with another identity certificate.*held/);
    // Its other messages are refused too, and none of them is a 401.
    assert.equal((await intruder.checkin("GetBootstrapToken")).status, 403);
    assert.equal((await intruder.report("Idle")).status, 403);
    assert.equal((await intruder.authenticate()).status, 403);

    assert.deepEqual(tables(await dumpStore(server.store)), tables(before), "the enrollment is untouched");
    // Two held Authenticates within the hour: one event and one warn line, the attempts counted in the hold.
    const held = await events(real.udid, "enrollment.rebind_held");
    assert.equal(held.length, 1);
    assert.equal(held[0].detail.old_fingerprint, real.identity.fingerprint);
    assert.equal(held[0].detail.new_fingerprint, intruder.identity.fingerprint);
    assert.equal(held[0].detail.attempts, 1);
    assert.equal(server.logs.filter((l) => l.includes("re-binding held") && l.includes(intruder.identity.fingerprint)).length, 1);
    const shown = await server.api("GET", `/v1/enrollments/${real.udid}/rebind`);
    assert.equal(shown.json.held.attempts, 2);
    assert.deepEqual(
      shown.json.held_certificates.map((c: any) => [c.cert_fingerprint, c.attempts]),
      [[intruder.identity.fingerprint, 2]],
    );

    // The real device still gets its command and its bootstrap token.
    const poll = await real.report("Idle");
    assert.equal(poll.status, 200);
    assert.equal(poll.plist?.CommandUUID, command);
    const token = await real.checkin("GetBootstrapToken");
    assert.equal(token.status, 200);
    assert.equal(Buffer.from(token.plist!.BootstrapToken as Uint8Array).toString(), "secret-bootstrap");
  });

  test("after CheckOut the device re-enrolls freely with a new certificate", async () => {
    const { real, intruder: successor } = await victim();
    assert.equal((await real.checkin("CheckOut")).status, 200);
    await successor.enroll();
    assert.equal((await server.store.enrollments.bindingOf(real.udid))?.fingerprint, successor.identity.fingerprint);
    assert.equal((await real.report("Idle")).status, 403);
    const rebound = await events(real.udid, "enrollment.rebound");
    assert.equal(rebound.length, 1);
    assert.equal(rebound[0].detail.reason, "not_enrolled");
  });

  test("silence alone never re-binds: without a push APNs accepted (no push certificate here), a silent device stays bound", async () => {
    const { real, intruder } = await victim();
    await silence(real.udid, 2 * HOUR);
    assert.equal((await intruder.authenticate()).status, 403);
    await silence(real.udid, 100 * HOUR);
    assert.equal((await intruder.authenticate()).status, 403);
    assert.equal((await server.store.enrollments.bindingOf(real.udid))?.fingerprint, real.identity.fingerprint);
    const shown = await server.api("GET", `/v1/enrollments/${real.udid}/rebind`);
    assert.equal(shown.json.silence.state, "push_due");
    assert.equal(shown.json.held.pushed_at, null);
    assert.equal((await events(real.udid, "enrollment.rebound")).length, 0);
    assert.equal((await real.report("Idle")).status, 200);
  });

  test("an operator approves a certificate by its fingerprint: never whatever is held when the request arrives", async () => {
    const { real, intruder: wiped } = await victim();
    const attacker = new RawDevice(fleet.transport, await identity(fleet), real.udid);
    const approve = (fingerprint?: unknown) =>
      server.api("POST", `/v1/enrollments/${real.udid}/rebind`, fingerprint === undefined ? undefined : { fingerprint });
    assert.equal((await approve("xyz")).status, 400);
    assert.equal(
      (await server.api("POST", `/v1/enrollments/NO-SUCH-DEVICE/rebind`, { fingerprint: wiped.identity.fingerprint })).status,
      404,
    );
    assert.equal((await approve(real.identity.fingerprint)).status, 409, "bound to it already");

    // The wiped device tries, the operator looks; then somebody else's certificate arrives and is the latest held.
    assert.equal((await wiped.authenticate()).status, 403);
    assert.equal((await attacker.authenticate()).status, 403);
    assert.equal((await attacker.authenticate()).status, 403);
    const shown = await server.api("GET", `/v1/enrollments/${real.udid}/rebind`);
    assert.equal(shown.json.held.cert_fingerprint, attacker.identity.fingerprint);
    assert.equal(shown.json.held.attempts, 3);
    assert.deepEqual(
      shown.json.held_certificates.map((c: any) => [c.cert_fingerprint, c.attempts]).sort(),
      [
        [attacker.identity.fingerprint, 2],
        [wiped.identity.fingerprint, 1],
      ].sort(),
    );
    // "Approve the held one" is no longer a request: it would approve the attacker's.
    const blind = await approve();
    assert.equal(blind.status, 400, blind.text);
    assert.match(blind.json.error ?? blind.text, /fingerprint/);
    assert.equal((await server.api("GET", `/v1/enrollments/${real.udid}/rebind`)).json.held.approved_at, null);

    const ok = await approve(wiped.identity.fingerprint);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.approved.cert_fingerprint, wiped.identity.fingerprint);
    assert.equal((await attacker.authenticate()).status, 403);
    // Until the new certificate authenticates, the old one keeps working.
    assert.equal((await real.report("Idle")).status, 200);

    await wiped.enroll();
    assert.equal((await server.store.enrollments.bindingOf(real.udid))?.fingerprint, wiped.identity.fingerprint);
    assert.equal((await real.report("Idle")).status, 403);
    const approved = await events(real.udid, "enrollment.rebind_approved");
    assert.equal(approved.length, 1);
    assert.equal(approved[0].detail.new_fingerprint, wiped.identity.fingerprint);
    assert.equal((await events(real.udid, "enrollment.rebound")).at(-1).detail.reason, "approved");
    const settled = await server.api("GET", `/v1/enrollments/${real.udid}/rebind`);
    assert.equal(settled.json.held, null);
    assert.deepEqual(settled.json.held_certificates, []);
  });

  test("`orchard enrollments rebind` shows every held certificate and approves only the one named with --fingerprint", async () => {
    const { real, intruder: replacement } = await victim();
    const other = new RawDevice(fleet.transport, await identity(fleet), real.udid);
    assert.equal((await replacement.authenticate()).status, 403);
    assert.equal((await other.authenticate()).status, 403);
    const look = cliContext(server.url);
    assert.equal(await runWith(look, "enrollments", ["rebind", real.udid]), 1, "nothing named, nothing approved");
    assert.ok(look.stdout.includes(replacement.identity.fingerprint) && look.stdout.includes(other.identity.fingerprint), look.stdout);
    assert.match(look.stderr, /--fingerprint/);
    assert.equal((await server.api("GET", `/v1/enrollments/${real.udid}/rebind`)).json.held.approved_at, null);

    const ctx = cliContext(server.url);
    assert.equal(
      await runWith(ctx, "enrollments", ["rebind", real.udid, "--fingerprint", replacement.identity.fingerprint.toUpperCase()]),
      0,
      ctx.stderr,
    );
    assert.match(ctx.stdout, /approved/);
    // A held attempt of another certificate does not replace the approval.
    assert.equal((await other.authenticate()).status, 403);
    const show = cliContext(server.url);
    assert.equal(await runWith(show, "enrollments", ["rebind", real.udid, "--show", "--json"]), 0, show.stderr);
    const state = JSON.parse(show.stdout);
    assert.equal(state.held.cert_fingerprint, replacement.identity.fingerprint);
    assert.equal(state.held_certificates.find((c: any) => c.cert_fingerprint === other.identity.fingerprint).attempts, 2);

    await replacement.enroll();
    assert.equal((await server.store.enrollments.bindingOf(real.udid))?.fingerprint, replacement.identity.fingerprint);
    assert.equal((await other.authenticate()).status, 403);
  });

  test("user channels follow the device channel's binding", async () => {
    const { real, intruder } = await victim();
    const user = { UserID: randomUUID().toUpperCase() };
    assert.equal((await intruder.authenticate()).status, 403);
    assert.equal((await intruder.report("Idle", user)).status, 403);
    assert.notEqual((await real.report("Idle", user)).status, 403);
  });

  test("two processes on one database: held in one, approved through the other, bound in both", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-rebind-shared-"));
    const database = backend === "postgres" ? await createTestDatabase() : undefined;
    const storage = database?.url ?? `sqlite:${path.join(dir, "shared.db")}`;
    const one = await startTestServer(["--storage", storage, "--secret-key", "test-secret-key-0123456789"]);
    const two = await startTestServer(["--storage", storage, "--secret-key", "test-secret-key-0123456789"]);
    const viaOne = new Transport(one.url);
    const viaTwo = new Transport(two.url);
    try {
      const udid = randomUUID().toUpperCase();
      const realId = await identity(fleet);
      const newId = await identity(fleet);
      const realOnOne = new RawDevice(viaOne, realId, udid);
      const realOnTwo = new RawDevice(viaTwo, realId, udid);
      await realOnOne.enroll();
      assert.equal((await realOnTwo.report("Idle")).status, 200, "process two confirms (and caches) the binding");
      const newcomer = new RawDevice(viaTwo, newId, udid);
      assert.equal((await newcomer.authenticate()).status, 403);
      assert.equal((await new RawDevice(viaOne, newId, udid).authenticate()).status, 403);
      assert.equal((await one.api("POST", `/v1/enrollments/${udid}/rebind`, { fingerprint: newId.fingerprint })).status, 200);
      await newcomer.enroll();
      assert.equal((await one.store.enrollments.bindingOf(udid))?.fingerprint, newId.fingerprint);
      assert.equal((await new RawDevice(viaOne, newId, udid).report("Idle")).status, 200);
      // Process two re-bound the device itself: it refuses the old certificate at once; process one
      // once its few seconds of confirmed binding are over.
      assert.equal((await realOnTwo.report("Idle")).status, 403);
      await eventually(
        async () => ((await realOnOne.report("Idle")).status === 403 ? true : undefined),
        15_000,
        "process one refuses the old certificate",
      );
    } finally {
      viaOne.close();
      viaTwo.close();
      await one.stop();
      await two.stop();
      await database?.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the same certificate re-authenticates as before", async () => {
    const { real } = await victim();
    assert.equal((await real.authenticate()).status, 200);
    assert.equal((await events(real.udid, "enrollment.rebind_held")).length, 0);
  });
});

describe("--rebind any: the peers' way", () => {
  let server: TestServer;
  let fleet: TestFleet;
  before(async () => {
    server = await startTestServer(["--rebind", "any"]);
    fleet = await testFleet(server.url);
  });
  after(async () => {
    fleet.close();
    await server?.stop();
  });

  test("any trusted certificate re-binds at Authenticate, said loudly at start and in an event", async () => {
    const udid = randomUUID().toUpperCase();
    const real = new RawDevice(fleet.transport, await identity(fleet), udid);
    await real.enroll();
    const other = new RawDevice(fleet.transport, await identity(fleet), udid);
    await other.enroll();
    assert.equal((await server.store.enrollments.bindingOf(udid))?.fingerprint, other.identity.fingerprint);
    assert.equal((await real.report("Idle")).status, 403);
    const r = await server.api("GET", `/v1/events?enrollment=${udid}&type=enrollment.rebound`);
    assert.equal(r.json.events[0].detail.reason, "any");
    assert.ok(server.logs.some((l) => l.includes('"level":40') && l.includes("--rebind any")));
  });
});

await forEachBackend("a held re-binding pushes the device's current identity", (backend) => {
  let apns: ApnsStandIn;
  let server: TestServer;
  let fleet: TestFleet;
  before(async () => {
    const pki = await pushPki();
    apns = await startApnsStandIn({ pushCa: pki.pushCa, serverCa: pki.serverCa, serverKey: pki.serverKey });
    server = await startTestServer(pushArgs(apns, ["--rebind-after-silence", "1h", "--rebind-push-grace", "1h"]), backend);
    fleet = await testFleet(server.url);
    assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem())).status, 200);
  });
  after(async () => {
    fleet.close();
    await server?.stop();
    await apns?.close();
  });

  /** An enrolled device on the push certificate's topic, with its own push token. */
  async function pushable(): Promise<{ real: RawDevice; token: string }> {
    const real = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    const token = randomBytes(32);
    assert.equal((await real.authenticate({ Topic: TEST_TOPIC })).status, 200);
    assert.equal((await real.tokenUpdate({ Topic: TEST_TOPIC, Token: token })).status, 200);
    return { real, token: token.toString("hex") };
  }

  const pushesTo = (token: string) => apns.seen.filter((p) => p.token === token).length;
  const rebindState = async (udid: string) => (await server.api("GET", `/v1/enrollments/${udid}/rebind`)).json;

  /** As if `ms` had passed for the device: its contacts, and what is held for it, move back (after pending last-seen times are written). */
  async function pass(udid: string, ms: number): Promise<void> {
    await lastSeenWritten(server, fleet);
    const db = server.store.db;
    await db.run("UPDATE devices SET authenticated_at = authenticated_at - ? WHERE id = ?", [ms, udid]);
    await db.run("UPDATE enrollments SET last_seen_at = last_seen_at - ? WHERE device_id = ?", [ms, udid]);
    await db.run(
      "UPDATE rebind_holds SET held_at = held_at - ?, pushed_at = pushed_at - ?, push_claimed_at = push_claimed_at - ?, noted_at = noted_at - ? WHERE device_id = ?",
      [ms, ms, ms, ms, udid],
    );
    await db.run("UPDATE rebind_held_certs SET first_held_at = first_held_at - ?, last_held_at = last_held_at - ? WHERE device_id = ?", [
      ms,
      ms,
      udid,
    ]);
  }

  async function pushRecorded(udid: string): Promise<number> {
    return eventually(async () => (await server.store.rebinds.get(udid))?.pushedAt ?? undefined, 5000, "the accepted push recorded");
  }

  test("a silent device is pushed first, and re-bound only once it has left that push unanswered for --rebind-push-grace", async () => {
    const { real, token } = await pushable();
    const wiped = new RawDevice(fleet.transport, await identity(fleet), real.udid);
    await pass(real.udid, 2 * HOUR); // idle past --rebind-after-silence, as a healthy device with nothing queued is
    assert.equal((await wiped.authenticate()).status, 403, "silence alone does not re-bind");
    await eventually(async () => (pushesTo(token) === 1 ? true : undefined), 5000, "the push to the current identity");
    await pushRecorded(real.udid);
    assert.equal((await rebindState(real.udid)).silence.state, "grace");
    assert.equal((await wiped.authenticate()).status, 403, "within the grace");
    assert.equal((await server.store.enrollments.bindingOf(real.udid))?.fingerprint, real.identity.fingerprint);

    await pass(real.udid, HOUR); // the push stays unanswered for the grace
    assert.equal((await rebindState(real.udid)).silence.state, "ready");
    await wiped.enroll();
    assert.equal((await server.store.enrollments.bindingOf(real.udid))?.fingerprint, wiped.identity.fingerprint);
    const rebound = await events(server, real.udid, "enrollment.rebound");
    assert.equal(rebound.at(-1).detail.reason, "silence");
    assert.equal(typeof rebound.at(-1).detail.unanswered_push_at, "number");
    assert.equal(pushesTo(token), 1, "no second push while the first was unanswered");
  });

  test("a device that answers the push keeps its binding", async () => {
    const { real } = await pushable();
    const intruder = new RawDevice(fleet.transport, await identity(fleet), real.udid);
    await pass(real.udid, 2 * HOUR);
    assert.equal((await intruder.authenticate()).status, 403);
    const pushedAt = await pushRecorded(real.udid);
    // The device wakes and polls.
    assert.equal((await real.report("Idle")).status, 200);
    await eventually(
      async () => ((await server.store.enrollments.get(real.udid))!.lastSeenAt! >= pushedAt ? true : undefined),
      5000,
      "the answer recorded",
    );
    assert.equal((await rebindState(real.udid)).silence.state, "live");
    await pass(real.udid, HOUR - 60_000); // the grace would be over had it not answered; it is idle again, not yet for an hour
    assert.equal((await intruder.authenticate()).status, 403);
    assert.equal((await server.store.enrollments.bindingOf(real.udid))?.fingerprint, real.identity.fingerprint);
    assert.equal((await events(server, real.udid, "enrollment.rebound")).length, 0);
    assert.equal((await real.report("Idle")).status, 200);
  });

  test("a push APNs did not accept does not count toward a re-binding", async () => {
    const { real, token } = await pushable();
    const intruder = new RawDevice(fleet.transport, await identity(fleet), real.udid);
    apns.answer = (p) => (p.token === token ? { status: 400, reason: "PayloadEmpty" } : { status: 200 });
    try {
      await pass(real.udid, 2 * HOUR);
      assert.equal((await intruder.authenticate()).status, 403);
      await eventually(
        async () => ((await events(server, real.udid, "push.failed")).length > 0 ? true : undefined),
        5000,
        "the refused push",
      );
      await eventually(
        async () => (server.logs.some((l) => l.includes("not sent") && l.includes(real.udid)) ? true : undefined),
        5000,
        "the refused push noticed",
      );
      assert.equal((await server.store.rebinds.get(real.udid))!.pushedAt, null);
      await pass(real.udid, 2 * HOUR);
      assert.equal((await rebindState(real.udid)).silence.state, "push_due");
    } finally {
      apns.answer = () => ({ status: 200 });
    }
    // The next held Authenticate (the hour is over) pushes again; this one is accepted and counts.
    assert.equal((await intruder.authenticate()).status, 403);
    await pushRecorded(real.udid);
    assert.equal((await server.store.enrollments.bindingOf(real.udid))?.fingerprint, real.identity.fingerprint);
  });

  test("alternating certificates: one push and one event per device per hour, every attempt counted", async () => {
    const { real, token } = await pushable();
    const b = new RawDevice(fleet.transport, await identity(fleet), real.udid);
    const c = new RawDevice(fleet.transport, await identity(fleet), real.udid);
    for (let i = 0; i < 10; i++) assert.equal((await (i % 2 ? b : c).authenticate()).status, 403);
    await pushRecorded(real.udid);
    assert.equal(pushesTo(token), 1);
    const held = await events(server, real.udid, "enrollment.rebind_held");
    assert.equal(held.length, 1);
    assert.equal(held[0].detail.attempts, 1);
    assert.equal(server.logs.filter((l) => l.includes("re-binding held") && l.includes(real.udid)).length, 1);
    const state = await rebindState(real.udid);
    assert.equal(state.held.attempts, 10);
    assert.deepEqual(
      state.held_certificates.map((x: any) => x.attempts),
      [5, 5],
    );

    await pass(real.udid, HOUR);
    assert.equal((await b.authenticate()).status, 403);
    await eventually(async () => (pushesTo(token) === 2 ? true : undefined), 5000, "the next hour's push");
    const later = await events(server, real.udid, "enrollment.rebind_held");
    assert.equal(later.length, 2);
    assert.equal(later.find((e: any) => e.detail.attempts !== 1).detail.attempts, 10, "the quiet attempts are counted in the next event");
  });
});

/**
 * Waits until every last-seen time marked so far is written (they are written
 * in batches, in order): after this, moving a device's contacts back sticks.
 */
async function lastSeenWritten(server: TestServer, fleet: TestFleet): Promise<void> {
  const sentinel = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
  await sentinel.enroll();
  const before = (await server.store.enrollments.get(sentinel.udid))!.lastSeenAt!;
  await server.store.db.run("UPDATE enrollments SET last_seen_at = ? WHERE id = ?", [before - 1000, sentinel.udid]);
  assert.equal((await sentinel.report("Idle")).status, 200);
  await eventually(
    async () => ((await server.store.enrollments.get(sentinel.udid))!.lastSeenAt! >= before ? true : undefined),
    10_000,
    "pending last-seen times written",
  );
}

async function events(server: TestServer, udid: string, type: string): Promise<any[]> {
  const r = await server.api("GET", `/v1/events?enrollment=${udid}&type=${type}`);
  assert.equal(r.status, 200, r.text);
  return r.json.events;
}
