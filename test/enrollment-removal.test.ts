// An operator removes a device (with its channels) or one user channel:
// DELETE /v1/enrollments/{id}. Everything Orchard keeps by those ids goes in
// one transaction, the event records what was still queued, and the device
// comes back only by enrolling again. Both stores.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { runOrchard } from "./support/cli.ts";
import { challengeParams, digestResponse } from "./support/digest-client.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist, identity, RawDevice } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const CONFIG = {
  Type: "com.apple.configuration.management.test",
  Identifier: "com.example.removal",
  Payload: { Echo: "hello" },
};
const USER = { UserID: "REMOVAL-USER-GUID", UserShortName: "rita", UserLongName: "Rita" };
const STATUS = {
  StatusItems: { device: { "operating-system": { version: "15.2" } } },
  Errors: [],
};

await forEachBackend("removing an enrollment", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  before(async () => {
    server = await startTestServer([], backend);
    fleet = await testFleet(server.url);
    assert.equal((await server.api("PUT", "/v1/declarations", CONFIG)).status, 204);
    assert.equal((await server.api("PUT", `/v1/set-declarations/removal?declaration=${CONFIG.Identifier}`)).status, 204);
  });
  after(async () => {
    fleet?.close();
    await server?.stop();
  });

  async function enrolledMac(name: string) {
    const dev = new RawDevice(
      fleet.transport,
      await identity(fleet),
      `REMOVAL-${backend.toUpperCase()}-${name}-${randomUUID().slice(0, 8)}`,
    );
    await dev.enroll();
    assert.equal((await dev.tokenUpdate(USER)).status, 200);
    return { dev, userChannel: `${dev.udid}:${USER.UserID}` };
  }
  /** How many rows the store holds for an id in tables removal must empty. */
  async function rowsFor(id: string): Promise<Record<string, number>> {
    const rows: Record<string, number> = {};
    for (const table of [
      "enrollments",
      "command_queue",
      "ddm_enrollment_sets",
      "ddm_status_values",
      "ddm_status_report_ring",
      "ddm_status_channels",
      "user_sessions",
    ]) {
      const column = table === "enrollments" ? "id" : "enrollment_id";
      const r = await server.store.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} WHERE ${column} = ?`, [id]);
      rows[table] = Number(r!.n);
    }
    return rows;
  }

  test("a device goes with its channels, queue, DDM and status; the event lists the queued commands; it must enroll again", async () => {
    const { dev, userChannel } = await enrolledMac("device");
    for (const id of [dev.udid, userChannel]) {
      assert.equal((await server.api("PUT", `/v1/enrollment-sets/${encodeURIComponent(id)}?set=removal&nonotify=1`)).status, 204);
    }
    const status = await dev.checkin("DeclarativeManagement", { Endpoint: "status", Data: Buffer.from(JSON.stringify(STATUS)) });
    assert.equal(status.status, 200, status.text);
    const uuid = randomUUID().toUpperCase();
    const queued = await server.api("PUT", `/v1/enqueue/${dev.udid}?nopush=1`, commandPlist("DeviceInformation", uuid));
    assert.equal(queued.status, 200, queued.text);
    const before = await rowsFor(dev.udid);
    assert.ok(
      before.enrollments === 1 &&
        before.command_queue > 0 &&
        before.ddm_enrollment_sets === 1 &&
        before.ddm_status_values > 0 &&
        before.ddm_status_channels === 1,
      JSON.stringify(before),
    );

    const removed = await server.api("DELETE", `/v1/enrollments/${dev.udid}`);
    assert.equal(removed.status, 200, removed.text);
    assert.equal(removed.json.device, true);
    assert.deepEqual(removed.json.channels, [dev.udid, userChannel].sort());
    assert.ok(removed.json.discarded_commands.some((d: { command_uuid: string }) => d.command_uuid === uuid));

    for (const id of [dev.udid, userChannel]) {
      assert.deepEqual(Object.values(await rowsFor(id)), [0, 0, 0, 0, 0, 0, 0], id);
      assert.equal((await server.api("GET", `/v1/enrollments/${encodeURIComponent(id)}`)).status, 404);
      // Its queue and command history are gone with it: 404, not empty lists (the console's page of it says so).
      assert.equal((await server.api("GET", `/v1/queue/${encodeURIComponent(id)}`)).status, 404);
      assert.equal((await server.api("GET", `/v1/enrollments/${encodeURIComponent(id)}/commands`)).status, 404);
    }
    assert.equal(await server.store.db.get("SELECT id FROM devices WHERE id = ?", [dev.udid]), undefined);
    const events = await server.api("GET", `/v1/events?type=enrollment.removed&enrollment=${dev.udid}`);
    assert.equal(events.json.events.length, 1);
    assert.equal(events.json.events[0].detail.discarded_count, removed.json.discarded_commands.length);
    assert.equal(
      (await server.api("GET", `/v1/events?type=enrollment.enrolled&enrollment=${dev.udid}`)).json.events.length,
      1,
      "history stays",
    );

    // At once, on this process: refused, nothing recreated.
    assert.equal((await dev.report("Idle")).status, 403);
    assert.equal((await dev.tokenUpdate()).status, 403);
    assert.equal((await rowsFor(dev.udid)).enrollments, 0);
    // Enrolling again brings it back, with nothing of before.
    await dev.enroll();
    assert.equal((await dev.report("Idle")).status, 200);
    assert.deepEqual((await server.api("GET", `/v1/enrollment-sets/${dev.udid}`)).json, []);
    assert.equal((await server.api("DELETE", `/v1/enrollments/${dev.udid}`)).status, 200);
    assert.equal((await server.api("DELETE", `/v1/enrollments/${dev.udid}`)).status, 404);
  });

  test("a device that only authenticated goes with the sets assigned to its id beforehand", async () => {
    const dev = new RawDevice(fleet.transport, await identity(fleet), `REMOVAL-${backend.toUpperCase()}-EARLY-${randomUUID().slice(0, 8)}`);
    assert.equal((await dev.authenticate()).status, 200);
    assert.equal((await server.api("PUT", `/v1/enrollment-sets/${dev.udid}?set=removal&nonotify=1`)).status, 204);
    const removed = await server.api("DELETE", `/v1/enrollments/${dev.udid}`);
    assert.deepEqual([removed.status, removed.json.device, removed.json.channels], [200, true, []]);
    assert.deepEqual(Object.values(await rowsFor(dev.udid)), [0, 0, 0, 0, 0, 0, 0]);
  });

  test("one user channel goes alone; the device stays", async () => {
    const { dev, userChannel } = await enrolledMac("user");
    const removed = await server.api("DELETE", `/v1/enrollments/${encodeURIComponent(userChannel)}`);
    assert.equal(removed.status, 200, removed.text);
    assert.deepEqual({ device: removed.json.device, channels: removed.json.channels }, { device: false, channels: [userChannel] });
    assert.equal((await server.api("GET", `/v1/enrollments/${encodeURIComponent(userChannel)}`)).status, 404);
    assert.equal((await server.api("GET", `/v1/enrollments/${dev.udid}`)).status, 200);
    assert.equal((await dev.report("Idle")).status, 200);
  });

  test("a removed network user's channel still needs a new login: its session is revoked, not forgotten", async () => {
    const { dev } = await enrolledMac("netuser");
    const guid = randomUUID().toUpperCase();
    const name = `n${randomUUID().slice(0, 8)}`;
    assert.equal((await server.api("PUT", `/v1/users/${name}`, { password: "a password", guid })).status, 201);
    const user = { UserID: guid, UserShortName: name };
    const first = await dev.checkin("UserAuthenticate", user);
    const nonce = challengeParams(first.plist!.DigestChallenge as string).nonce!;
    const realm = challengeParams(first.plist!.DigestChallenge as string).realm!;
    const second = await dev.checkin("UserAuthenticate", {
      ...user,
      DigestResponse: digestResponse({ username: name, password: "a password", realm, nonce }),
    });
    const token = second.plist!.AuthToken as string;
    assert.ok(token);
    assert.equal((await dev.tokenUpdate({ ...user, AuthToken: token })).status, 200);
    const channel = `${dev.udid}:${guid}`;
    assert.equal((await server.api("DELETE", `/v1/enrollments/${encodeURIComponent(channel)}`)).status, 200);
    // Neither the old token nor none opens the channel again.
    assert.equal((await dev.tokenUpdate({ ...user, AuthToken: token })).status, 403);
    assert.equal((await dev.tokenUpdate(user)).status, 403);
    assert.equal((await server.api("GET", `/v1/enrollments/${encodeURIComponent(channel)}`)).status, 404);
  });

  test("a write of a device removed behind this process's back (another process's removal) is 403, not 500", async () => {
    const { dev } = await enrolledMac("race");
    assert.equal((await dev.report("Idle")).status, 200, "the binding is now remembered for a few seconds");
    assert.ok(await server.store.enrollments.remove(dev.udid, Date.now()));
    // A first login step writes a session row, which names the device: refused too, not a 500.
    assert.equal((await dev.checkin("UserAuthenticate", { UserID: randomUUID().toUpperCase() })).status, 403);
    assert.equal((await dev.tokenUpdate()).status, 403);
    assert.equal((await rowsFor(dev.udid)).enrollments, 0);
  });

  test("orchard enrollments remove: says what went; an unknown id is exit 1", async () => {
    const { dev } = await enrolledMac("cli");
    const env = { ORCHARD_URL: server.url, ORCHARD_API_KEY: "test-api-key-0123456789abcdef" };
    const r = await runOrchard(["enrollments", "remove", dev.udid], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `removed device ${dev.udid}: 2 channels, 0 queued commands discarded\n`);
    const again = await runOrchard(["enrollments", "remove", dev.udid], { env });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no device or channel/);
  });

  test("an unknown id is 404 (who may remove: test/roles.test.ts)", async () => {
    assert.equal((await server.api("DELETE", "/v1/enrollments/NO-SUCH-DEVICE")).status, 404);
  });
});
