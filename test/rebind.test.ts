// Issue #11 item 2: an enrolled device cannot be taken over by its UDID. Another
// certificate's Authenticate is held (403, an event, nothing changed) until the
// device checks out, its current identity has been silent long enough, or an
// operator approves the new certificate (API, CLI); --rebind any is the peers' way.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { runWith } from "../src/cli/client-commands.ts";
import { Transport } from "../src/sim/transport.ts";
import { pushArgs, pushPki, startApnsStandIn, type ApnsStandIn } from "./support/apns.ts";
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

  /** Moves the device's last contact back by `ms`, as if it had been silent (after the last-seen times are written). */
  async function silence(udid: string, ms: number): Promise<void> {
    await eventually(async () => ((await server.store.enrollments.get(udid))?.lastSeenAt != null ? true : undefined), 5000, "last-seen time written");
    await server.store.db.run("UPDATE devices SET authenticated_at = authenticated_at - ? WHERE id = ?", [ms, udid]);
    await server.store.db.run("UPDATE enrollments SET last_seen_at = last_seen_at - ? WHERE device_id = ?", [ms, udid]);
  }

  test("a takeover is held: 403, an event with both fingerprints, nothing changed, the real device keeps working", async () => {
    const { real, intruder, command } = await victim();
    const before = await dumpStore(server.store);
    const tables = (d: Record<string, unknown[]>) => ({ devices: d.devices, enrollments: d.enrollments, command_queue: d.command_queue, user_sessions: d.user_sessions });

    const r = await intruder.authenticate();
    assert.equal(r.status, 403);
    assert.match(r.text, /enrolled with another identity certificate.*held/);
    // Its other messages are refused too, and none of them is a 401.
    assert.equal((await intruder.checkin("GetBootstrapToken")).status, 403);
    assert.equal((await intruder.report("Idle")).status, 403);
    assert.equal((await intruder.authenticate()).status, 403);

    assert.deepEqual(tables(await dumpStore(server.store)), tables(before), "the enrollment is untouched");
    const held = await events(real.udid, "enrollment.rebind_held");
    assert.equal(held.length, 2);
    assert.equal(held[0].detail.old_fingerprint, real.identity.fingerprint);
    assert.equal(held[0].detail.new_fingerprint, intruder.identity.fingerprint);
    assert.ok(server.logs.some((l) => l.includes("re-binding held") && l.includes(intruder.identity.fingerprint)));

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
    assert.equal(await server.store.enrollments.certFingerprintOf(real.udid), successor.identity.fingerprint);
    assert.equal((await real.report("Idle")).status, 403);
    const rebound = await events(real.udid, "enrollment.rebound");
    assert.equal(rebound.length, 1);
    assert.equal(rebound[0].detail.reason, "not_enrolled");
  });

  test("a wiped device re-enrolls once its old identity has been silent for --rebind-after-silence", async () => {
    const { real, intruder: wiped } = await victim();
    assert.equal((await wiped.authenticate()).status, 403);
    // The old identity answers (it is alive): still held.
    await silence(real.udid, 2 * HOUR);
    assert.equal((await real.report("Idle")).status, 200);
    await eventually(async () => ((await server.store.enrollments.get(real.udid))!.lastSeenAt! > Date.now() - HOUR ? true : undefined), 5000, "contact recorded");
    assert.equal((await wiped.authenticate()).status, 403);

    await silence(real.udid, 2 * HOUR);
    await wiped.enroll();
    assert.equal(await server.store.enrollments.certFingerprintOf(real.udid), wiped.identity.fingerprint);
    assert.equal((await real.report("Idle")).status, 403);
    const rebound = await events(real.udid, "enrollment.rebound");
    assert.equal(rebound.at(-1).detail.reason, "silence");
    assert.equal(rebound.at(-1).detail.old_fingerprint, real.identity.fingerprint);
    assert.equal(rebound.at(-1).detail.new_fingerprint, wiped.identity.fingerprint);
    // The new enrollment starts clean: no old commands, no old bootstrap token.
    assert.equal((await wiped.report("Idle")).text, "");
    assert.deepEqual((await wiped.checkin("GetBootstrapToken")).plist, {});
  });

  test("an operator approves the held certificate through the API", async () => {
    const { real, intruder: replacement } = await victim();
    const none = await server.api("POST", `/v1/enrollments/${real.udid}/rebind`);
    assert.equal(none.status, 409, none.text);
    assert.equal((await server.api("POST", `/v1/enrollments/NO-SUCH-DEVICE/rebind`)).status, 404);
    assert.equal((await server.api("POST", `/v1/enrollments/${real.udid}/rebind`, { fingerprint: "xyz" })).status, 400);

    assert.equal((await replacement.authenticate()).status, 403);
    const shown = await server.api("GET", `/v1/enrollments/${real.udid}/rebind`);
    assert.equal(shown.json.held.cert_fingerprint, replacement.identity.fingerprint);
    assert.equal(shown.json.held.approved_at, null);
    const ok = await server.api("POST", `/v1/enrollments/${real.udid}/rebind`);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.approved.cert_fingerprint, replacement.identity.fingerprint);
    // Until the new certificate authenticates, the old one keeps working.
    assert.equal((await real.report("Idle")).status, 200);

    await replacement.enroll();
    assert.equal(await server.store.enrollments.certFingerprintOf(real.udid), replacement.identity.fingerprint);
    assert.equal((await real.report("Idle")).status, 403);
    assert.equal((await events(real.udid, "enrollment.rebind_approved")).length, 1);
    assert.equal((await events(real.udid, "enrollment.rebound")).at(-1).detail.reason, "approved");
    assert.equal((await server.api("GET", `/v1/enrollments/${real.udid}/rebind`)).json.held, null);
  });

  test("an operator approves a given certificate with `orchard enrollments rebind`; another one stays held", async () => {
    const { real, intruder: replacement } = await victim();
    const other = new RawDevice(fleet.transport, await identity(fleet), real.udid);
    const ctx = cliContext(server.url);
    assert.equal(await runWith(ctx, "enrollments", ["rebind", real.udid, "--fingerprint", replacement.identity.fingerprint.toUpperCase()]), 0, ctx.stderr);
    assert.match(ctx.stdout, /approved/);
    // A held attempt of another certificate does not replace the approval.
    assert.equal((await other.authenticate()).status, 403);
    const show = cliContext(server.url);
    assert.equal(await runWith(show, "enrollments", ["rebind", real.udid, "--show", "--json"]), 0, show.stderr);
    assert.equal(JSON.parse(show.stdout).held.cert_fingerprint, replacement.identity.fingerprint);

    await replacement.enroll();
    assert.equal(await server.store.enrollments.certFingerprintOf(real.udid), replacement.identity.fingerprint);
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
    const one = await startTestServer(["--storage", storage]);
    const two = await startTestServer(["--storage", storage]);
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
      assert.equal((await one.api("POST", `/v1/enrollments/${udid}/rebind`)).status, 200);
      await newcomer.enroll();
      assert.equal(await one.store.enrollments.certFingerprintOf(udid), newId.fingerprint);
      assert.equal((await new RawDevice(viaOne, newId, udid).report("Idle")).status, 200);
      // Process two re-bound the device itself: it refuses the old certificate at once; process one
      // once its few seconds of confirmed binding are over.
      assert.equal((await realOnTwo.report("Idle")).status, 403);
      await eventually(async () => ((await realOnOne.report("Idle")).status === 403 ? true : undefined), 15_000, "process one refuses the old certificate");
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
    assert.equal(await server.store.enrollments.certFingerprintOf(udid), other.identity.fingerprint);
    assert.equal((await real.report("Idle")).status, 403);
    const r = await server.api("GET", `/v1/events?enrollment=${udid}&type=enrollment.rebound`);
    assert.equal(r.json.events[0].detail.reason, "any");
    assert.ok(server.logs.some((l) => l.includes('"level":40') && l.includes("--rebind any")));
  });
});

describe("a held re-binding pushes the device's current identity", () => {
  let apns: ApnsStandIn;
  let server: TestServer;
  let fleet: TestFleet;
  before(async () => {
    const pki = await pushPki();
    apns = await startApnsStandIn({ pushCa: pki.pushCa, serverCa: pki.serverCa, serverKey: pki.serverKey });
    server = await startTestServer(pushArgs(apns));
    fleet = await testFleet(server.url);
    assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem())).status, 200);
  });
  after(async () => {
    fleet.close();
    await server?.stop();
    await apns?.close();
  });

  test("once per hour at most, so that a live device shows it is alive", async () => {
    const real = await fleet.device();
    await real.enroll();
    const token = real.pushToken.toString("hex");
    const intruder = new RawDevice(fleet.transport, await identity(fleet), real.udid);
    assert.equal((await intruder.authenticate()).status, 403);
    await eventually(async () => (apns.seen.some((p) => p.token === token) ? true : undefined), 5000, "the push to the current identity");
    assert.equal((await intruder.authenticate()).status, 403);
    assert.equal((await events(server, real.udid, "enrollment.rebind_held")).length, 2);
    assert.equal(apns.seen.filter((p) => p.token === token).length, 1);
  });
});

async function events(server: TestServer, udid: string, type: string): Promise<any[]> {
  const r = await server.api("GET", `/v1/events?enrollment=${udid}&type=${type}`);
  assert.equal(r.status, 200, r.text);
  return r.json.events;
}
