// The API reads the console added (docs/console.md), on both stores: search
// (with LIKE's own characters taken literally), not seen since, several types,
// a channel's command history by cursor, one channel's answer, the overview.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist, identity, RawDevice } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

await forEachBackend("the console's reads", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  const named: RawDevice[] = [];

  before(async () => {
    server = await startTestServer([], backend);
    fleet = await testFleet(server.url);
    for (const name of ["Finance 50% Mac", "Finance_Mac", "Lab iMac"]) {
      const d = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
      await d.enroll({ DeviceName: name, ProductName: "Mac14,2" });
      named.push(d);
    }
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  const ids = async (query: string): Promise<string[]> => {
    const r = await server.api("GET", `/v1/enrollments?${query}`);
    assert.equal(r.status, 200, r.text);
    return r.json.enrollments.map((e: { id: string }) => e.id).sort();
  };

  test("q finds any part of a name, serial or id, in any case; % and _ are themselves", async () => {
    assert.deepEqual(await ids("q=finance"), [named[0]!.udid, named[1]!.udid].sort());
    assert.deepEqual(await ids(`q=${encodeURIComponent("50%")}`), [named[0]!.udid]);
    assert.deepEqual(await ids("q=e_m"), [named[1]!.udid]);
    assert.deepEqual(await ids(`q=${named[2]!.udid.slice(4, 12).toLowerCase()}`), [named[2]!.udid]);
    assert.deepEqual(await ids(`q=sn${named[2]!.udid.slice(0, 8).toLowerCase()}`), [named[2]!.udid]);
    assert.equal((await server.api("GET", `/v1/enrollments?q=${"x".repeat(201)}`)).status, 400);
  });

  test("several types, and not seen since", async () => {
    assert.equal((await ids("type=Device,UserEnrollmentDevice")).length, 3);
    assert.deepEqual(await ids("type=User,UserEnrollmentUser"), []);
    assert.equal((await server.api("GET", "/v1/enrollments?type=Device,Nope")).status, 400);
    assert.deepEqual(await ids(`seen_before=${new Date(Date.now() - 3_600_000).toISOString()}`), []);
    assert.equal((await ids(`seen_before=${new Date(Date.now() + 3_600_000).toISOString()}`)).length, 3);
    const fleetAnswer = (await server.api("GET", "/v1/fleet")).json;
    assert.deepEqual(
      fleetAnswer.enrollments.filter((e: { type: string }) => e.type === "Device"),
      [{ type: "Device", platform: "macOS", count: 3 }],
    );
    assert.deepEqual(
      fleetAnswer.not_seen.map((n: { count: number }) => n.count),
      [0, 0, 0],
    );
  });

  test("a channel's commands, newest first, by cursor; one channel's answer", async () => {
    const d = named[0]!;
    const uuids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const uuid = randomUUID();
      uuids.push(uuid);
      assert.equal(
        (await server.api("PUT", `/v1/enqueue/${d.udid},${named[1]!.udid}?nopush=1`, commandPlist("ProfileList", uuid))).status,
        200,
      );
    }
    assert.equal((await d.report("Acknowledged", { CommandUUID: uuids[0]!, ProfileList: [] })).status, 200);
    const first = await server.api("GET", `/v1/enrollments/${d.udid}/commands?limit=3`);
    assert.deepEqual(
      first.json.commands.map((c: { command_uuid: string }) => c.command_uuid),
      uuids.slice(2).reverse(),
    );
    const rest = await server.api("GET", `/v1/enrollments/${d.udid}/commands?limit=3&cursor=${first.json.next_cursor}`);
    assert.deepEqual(
      rest.json.commands.map((c: { command_uuid: string; status: string; active: boolean }) => [c.command_uuid, c.status, c.active]),
      [
        [uuids[1], "Queued", true],
        [uuids[0], "Acknowledged", false],
      ],
    );
    assert.equal(rest.json.next_cursor, null);
    assert.equal((await server.api("GET", `/v1/enrollments/${d.udid}/commands?cursor=x`)).status, 400);
    const one = await server.api("GET", `/v1/commands/${uuids[0]}?enrollment=${d.udid}`);
    assert.deepEqual(
      one.json.results.map((r: { enrollment_id: string; status: string }) => [r.enrollment_id, r.status]),
      [[d.udid, "Acknowledged"]],
    );
    assert.equal((await server.api("GET", `/v1/commands/${uuids[0]}`)).json.results.length, 2);
  });

  test("a declaration checked without being stored", async () => {
    const decl = { Type: "com.apple.configuration.passcode.settings", Identifier: "com.example.check", Payload: { MinimumLength: "six" } };
    const bad = await server.api("POST", "/v1/declarations/validate", decl);
    assert.equal(bad.status, 200);
    assert.equal(bad.json.valid, false);
    assert.ok(
      bad.json.errors.some((e: { path: string }) => e.path.includes("MinimumLength")),
      bad.text,
    );
    const odd = await server.api("POST", "/v1/declarations/validate", { Identifier: "x" });
    assert.equal(odd.json.valid, false);
    const good = await server.api("POST", "/v1/declarations/validate", { ...decl, Payload: { MinimumLength: 6 } });
    assert.deepEqual(good.json, { valid: true, errors: [], warnings: [] });
    // A body past 1 MB is 413 at once (any operator may call this, unaudited: 16 MB ones stalled the server).
    const huge = await server.api("POST", "/v1/declarations/validate", { ...decl, Payload: { Pad: "x".repeat(1024 * 1024) } });
    assert.equal(huge.status, 413, huge.text);
    assert.deepEqual((await server.api("GET", "/v1/declarations")).json, []);
  });
});
