// End to end over real HTTP: commands queued through the API, fetched and
// answered by simulated devices with their own certificates.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { parsePlistDict, type PlistDict } from "../src/plist/index.ts";
import type { SimDevice } from "../src/sim/device.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist, plist } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

await forEachBackend("commands", (backend) => {
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

  async function enrolled(): Promise<SimDevice> {
    const d = await fleet.device();
    await d.enroll();
    return d;
  }

  function uuid(): string {
    return randomUUID().toUpperCase();
  }

  async function enqueue(ids: string, body: Buffer, query = "?nopush=1") {
    return server.api("PUT", `/v1/enqueue/${ids}${query}`, body);
  }

  describe("enqueue, fetch, acknowledge", () => {
    test("a command with a CommandUUID travels byte for byte and its result is stored", async () => {
      const d = await enrolled();
      const id = uuid();
      // Unusual but valid formatting: the device must get these exact bytes back.
      const body = Buffer.from(
        `<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n\t<key>CommandUUID</key>\n\t<string>${id}</string>\n` +
          `\t<key>Command</key>\n\t<dict><key>RequestType</key><string>DeviceInformation</string>` +
          `<key>Queries</key><array><string>SerialNumber</string></array></dict>\n</dict>\n</plist>\n`,
      );
      const q = await enqueue(d.udid, body);
      assert.equal(q.status, 200);
      assert.deepEqual(q.json, { command_uuid: id, request_type: "DeviceInformation", status: {}, no_push: true });

      const queued = await server.api("GET", `/v1/queue/${d.udid}`);
      assert.equal(queued.status, 200);
      assert.deepEqual(
        queued.json.commands.map((c: any) => [c.command_uuid, c.request_type, c.status, c.not_now_count]),
        [[id, "DeviceInformation", "Queued", 0]],
      );

      const idle = await d.report("Idle");
      assert.equal(idle.status, 200);
      assert.match(String(idle.headers["content-type"]), /^application\/xml/);
      assert.ok(idle.body.equals(body), "the command is sent exactly as queued");

      const ack = await d.report("Acknowledged", {
        CommandUUID: id,
        QueryResponses: { SerialNumber: d.serialNumber },
      });
      assert.equal(ack.status, 200);
      assert.equal(ack.body.length, 0, "no more commands: a zero-length body");

      const result = await server.api("GET", `/v1/commands/${id}`);
      assert.equal(result.status, 200);
      assert.equal(result.json.command_uuid, id);
      assert.equal(result.json.request_type, "DeviceInformation");
      assert.equal(result.json.results.length, 1);
      const r = result.json.results[0];
      assert.equal(r.enrollment_id, d.udid);
      assert.equal(r.status, "Acknowledged");
      assert.equal(r.active, false);
      assert.equal(r.not_now_count, 0);
      assert.deepEqual(r.result, {
        Status: "Acknowledged",
        UDID: d.udid,
        CommandUUID: id,
        QueryResponses: { SerialNumber: d.serialNumber },
      });

      const empty = await server.api("GET", `/v1/queue/${d.udid}`);
      assert.deepEqual(empty.json, { enrollment_id: d.udid, commands: [] });

      const again = await d.report("Idle");
      assert.equal(again.status, 200);
      assert.equal(again.body.length, 0);
    });

    test("a command without a CommandUUID gets one, and the device receives it inside the plist", async () => {
      const d = await enrolled();
      const q = await enqueue(d.udid, commandPlist("ProfileList"));
      assert.equal(q.status, 200);
      assert.equal(q.json.request_type, "ProfileList");
      assert.equal(q.json.no_push, true);
      assert.match(q.json.command_uuid, /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/);

      const idle = await d.report("Idle");
      assert.equal(idle.status, 200);
      assert.deepEqual(parsePlistDict(idle.body), { Command: { RequestType: "ProfileList" }, CommandUUID: q.json.command_uuid });
      const ack = await d.report("Acknowledged", { CommandUUID: q.json.command_uuid, ProfileList: [] });
      assert.equal(ack.status, 200);
      assert.equal(ack.body.length, 0);
      const result = await server.api("GET", `/v1/commands/${q.json.command_uuid}`);
      assert.equal(result.json.results[0].status, "Acknowledged");
    });

    test("without nopush the answer is NanoMDM-shaped with a push_error per id", async () => {
      const d = await enrolled();
      const id = uuid();
      const q = await server.api("PUT", `/v1/enqueue/${d.udid}`, commandPlist("DeviceInformation", id));
      assert.equal(q.status, 500, "every id failed to push");
      assert.deepEqual(q.json, {
        command_uuid: id,
        request_type: "DeviceInformation",
        status: { [d.udid]: { push_error: "no push certificate is configured" } },
      });
      // The command was queued all the same.
      const idle = await d.report("Idle");
      assert.equal(parsePlistDict(idle.body).CommandUUID, id);
    });

    test("commands come out in the order they were queued", async () => {
      const d = await enrolled();
      const ids = [uuid(), uuid(), uuid(), uuid()];
      const types = ["DeviceInformation", "ProfileList", "SecurityInfo", "CertificateList"];
      for (let i = 0; i < ids.length; i++) assert.equal((await enqueue(d.udid, commandPlist(types[i]!, ids[i]))).status, 200);

      const queue = await server.api("GET", `/v1/queue/${d.udid}`);
      assert.deepEqual(
        queue.json.commands.map((c: any) => c.command_uuid),
        ids,
      );

      const seen: string[] = [];
      let reply = await d.report("Idle");
      while (reply.body.length > 0) {
        const cmd = parsePlistDict(reply.body);
        seen.push(cmd.CommandUUID as string);
        assert.equal((cmd.Command as any).RequestType, types[seen.length - 1]);
        reply = await d.report("Acknowledged", { CommandUUID: cmd.CommandUUID! });
        assert.equal(reply.status, 200);
      }
      assert.deepEqual(seen, ids);
    });

    test("an unanswered command is offered again at the next Idle", async () => {
      const d = await enrolled();
      const id = uuid();
      await enqueue(d.udid, commandPlist("DeviceInformation", id));
      assert.equal(parsePlistDict((await d.report("Idle")).body).CommandUUID, id);
      // The device went away without answering: it comes back with Idle.
      assert.equal(parsePlistDict((await d.report("Idle")).body).CommandUUID, id);
    });

    test("Error stores the ErrorChain and ends the command; CommandFormatError too", async () => {
      const d = await enrolled();
      const a = uuid();
      const b = uuid();
      await enqueue(d.udid, commandPlist("InstallProfile", a, { Payload: Buffer.from("not a profile") }));
      await enqueue(d.udid, commandPlist("Bogus", b));
      const chain: PlistDict[] = [
        {
          ErrorCode: 4001,
          ErrorDomain: "MCProfileErrorDomain",
          LocalizedDescription: "Le profil est invalide.",
          USEnglishDescription: "The profile is invalid.",
        },
        { ErrorCode: 12021, ErrorDomain: "MCMDMErrorDomain", LocalizedDescription: "Underlying cause" },
      ];
      assert.equal(parsePlistDict((await d.report("Idle")).body).CommandUUID, a);
      const next = await d.report("Error", { CommandUUID: a, ErrorChain: chain });
      assert.equal(next.status, 200);
      assert.equal(parsePlistDict(next.body).CommandUUID, b, "after an Error the next command follows");
      const end = await d.report("CommandFormatError", { CommandUUID: b });
      assert.equal(end.status, 200);
      assert.equal(end.body.length, 0);

      const ra = await server.api("GET", `/v1/commands/${a}`);
      assert.equal(ra.json.results[0].status, "Error");
      assert.equal(ra.json.results[0].active, false);
      assert.deepEqual(ra.json.results[0].result.ErrorChain, chain);
      const rb = await server.api("GET", `/v1/commands/${b}`);
      assert.equal(rb.json.results[0].status, "CommandFormatError");
      assert.equal(rb.json.results[0].active, false);
      assert.deepEqual((await server.api("GET", `/v1/queue/${d.udid}`)).json.commands, []);
    });

    test("a repeated Acknowledged is idempotent: 200, the first result stays", async () => {
      const d = await enrolled();
      const a = uuid();
      const b = uuid();
      await enqueue(d.udid, commandPlist("DeviceInformation", a));
      await d.report("Idle");
      const first = await d.report("Acknowledged", { CommandUUID: a, QueryResponses: { DeviceName: "first" } });
      assert.equal(first.status, 200);
      assert.equal(first.body.length, 0);
      const before = await server.api("GET", `/v1/commands/${a}`);

      await enqueue(d.udid, commandPlist("ProfileList", b));
      // The device did not see the first 200 and reports again, with other content.
      const repeat = await d.report("Acknowledged", { CommandUUID: a, QueryResponses: { DeviceName: "second" } });
      assert.equal(repeat.status, 200);
      assert.equal(parsePlistDict(repeat.body).CommandUUID, b, "the answer to a repeat is the next command");
      // A late Error for the same command changes nothing either.
      const late = await d.report("Error", { CommandUUID: a, ErrorChain: [] });
      assert.equal(late.status, 200);

      const after = await server.api("GET", `/v1/commands/${a}`);
      assert.deepEqual(after.json, before.json);
      assert.equal(after.json.results[0].result.QueryResponses.DeviceName, "first");
      assert.equal(after.json.results[0].status, "Acknowledged");
    });

    test("a report for an unknown CommandUUID gets 200 and the next command", async () => {
      const d = await enrolled();
      const a = uuid();
      await enqueue(d.udid, commandPlist("DeviceInformation", a));
      const ghost = uuid();
      const r = await d.report("Acknowledged", { CommandUUID: ghost });
      assert.equal(r.status, 200);
      assert.equal(parsePlistDict(r.body).CommandUUID, a);
      assert.equal((await server.api("GET", `/v1/commands/${ghost}`)).status, 404, "nothing is stored for it");
      // A NotNow for an unknown command is not a NotNow of the queued one.
      const n = await d.report("NotNow", { CommandUUID: uuid() });
      assert.equal(n.status, 200);
      assert.equal(parsePlistDict(n.body).CommandUUID, a);
      const q = await server.api("GET", `/v1/queue/${d.udid}`);
      assert.deepEqual(
        q.json.commands.map((c: any) => [c.command_uuid, c.status, c.not_now_count]),
        [[a, "Queued", 0]],
      );
    });

    test("a report names a command of this channel only", async () => {
      const d1 = await enrolled();
      const d2 = await enrolled();
      const a = uuid();
      await enqueue(d1.udid, commandPlist("DeviceInformation", a));
      // Another device claims to have answered d1's command.
      const r = await d2.report("Acknowledged", { CommandUUID: a });
      assert.equal(r.status, 200);
      assert.equal(r.body.length, 0);
      const q = await server.api("GET", `/v1/queue/${d1.udid}`);
      assert.deepEqual(
        q.json.commands.map((c: any) => [c.command_uuid, c.status]),
        [[a, "Queued"]],
      );
    });

    test("one command for several ids: each channel has its own queue entry and result", async () => {
      const d1 = await enrolled();
      const d2 = await enrolled();
      const a = uuid();
      const q = await enqueue(`${d1.udid},${d2.udid}`, commandPlist("DeviceInformation", a));
      assert.equal(q.status, 200);
      await d1.report("Idle");
      await d1.report("Acknowledged", { CommandUUID: a });
      const r = await server.api("GET", `/v1/commands/${a}`);
      const byId = Object.fromEntries(r.json.results.map((x: any) => [x.enrollment_id, [x.status, x.active]]));
      assert.deepEqual(byId, { [d1.udid]: ["Acknowledged", false], [d2.udid]: ["Queued", true] });
      assert.equal(parsePlistDict((await d2.report("Idle")).body).CommandUUID, a);
    });

    test("a user channel's queue is separate from the device's", async () => {
      const d = await enrolled();
      const user = { userId: randomUUID().toUpperCase(), shortName: "jane", longName: "Jane Appleseed" };
      assert.equal((await d.userTokenUpdate(user)).status, 200);
      const userChannel = `${d.udid}:${user.userId}`;
      const a = uuid();
      assert.equal((await enqueue(userChannel, commandPlist("ProfileList", a))).status, 200);
      const deviceIdle = await d.report("Idle");
      assert.equal(deviceIdle.body.length, 0, "the device channel has nothing");
      const userIdle = await d.report("Idle", d.userKeys(user));
      assert.equal(parsePlistDict(userIdle.body).CommandUUID, a);
      const ack = await d.report("Acknowledged", { CommandUUID: a, ...d.userKeys(user) });
      assert.equal(ack.status, 200);
      const r = await server.api("GET", `/v1/commands/${a}`);
      assert.deepEqual(
        r.json.results.map((x: any) => [x.enrollment_id, x.status]),
        [[userChannel, "Acknowledged"]],
      );
    });

    test("DELETE /v1/queue removes what waits, results stay", async () => {
      const d = await enrolled();
      const a = uuid();
      const b = uuid();
      await enqueue(d.udid, commandPlist("DeviceInformation", a));
      await enqueue(d.udid, commandPlist("ProfileList", b));
      await d.report("Idle");
      await d.report("Acknowledged", { CommandUUID: a });
      const del = await server.api("DELETE", `/v1/queue/${d.udid}`);
      assert.equal(del.status, 200);
      assert.deepEqual(del.json, { removed: 1 });
      assert.equal((await d.report("Idle")).body.length, 0);
      assert.equal((await server.api("GET", `/v1/commands/${a}`)).json.results[0].status, "Acknowledged");
      assert.deepEqual((await server.api("GET", `/v1/commands/${b}`)).json.results, []);
    });
  });

  describe("NotNow", () => {
    test("NotNow offers the next never-tried command, never the same one in the session", async () => {
      const d = await enrolled();
      const a = uuid();
      const b = uuid();
      await enqueue(d.udid, commandPlist("InstallProfile", a, { Payload: Buffer.from("p") }));
      await enqueue(d.udid, commandPlist("DeviceInformation", b));

      assert.equal(parsePlistDict((await d.report("Idle")).body).CommandUUID, a);
      const afterNotNow = await d.report("NotNow", { CommandUUID: a });
      assert.equal(afterNotNow.status, 200);
      assert.equal(parsePlistDict(afterNotNow.body).CommandUUID, b, "B, never tried, not A");

      const q = await server.api("GET", `/v1/queue/${d.udid}`);
      assert.deepEqual(
        q.json.commands.map((c: any) => [c.command_uuid, c.status, c.not_now_count]),
        [
          [a, "NotNow", 1],
          [b, "Queued", 0],
        ],
      );

      // B acknowledged: the next command is the oldest active one (src/store/commands.ts
      // next(id, false)), as NanoMDM does after a non-NotNow report: A again.
      const afterAck = await d.report("Acknowledged", { CommandUUID: b });
      assert.equal(afterAck.status, 200);
      assert.equal(parsePlistDict(afterAck.body).CommandUUID, a);

      // A NotNow again, and only NotNow'd commands remain: the session ends.
      const end = await d.report("NotNow", { CommandUUID: a });
      assert.equal(end.status, 200);
      assert.equal(end.body.length, 0, "no NotNow loop: an empty answer");

      // The next Idle offers A again.
      const idle = await d.report("Idle");
      assert.equal(parsePlistDict(idle.body).CommandUUID, a);

      const r = await server.api("GET", `/v1/commands/${a}`);
      assert.equal(r.json.results[0].status, "NotNow");
      assert.equal(r.json.results[0].active, true);
      assert.equal(r.json.results[0].not_now_count, 2);
      assert.equal(r.json.results[0].result.Status, "NotNow");

      const ack = await d.report("Acknowledged", { CommandUUID: a });
      assert.equal(ack.body.length, 0);
      const done = await server.api("GET", `/v1/commands/${a}`);
      assert.equal(done.json.results[0].status, "Acknowledged");
      assert.equal(done.json.results[0].active, false);
      assert.equal(done.json.results[0].not_now_count, 2, "the tally survives the final result");
      assert.deepEqual((await server.api("GET", `/v1/queue/${d.udid}`)).json.commands, []);
    });

    test("a single NotNow'd command answers empty, then comes back at Idle", async () => {
      const d = await enrolled();
      const a = uuid();
      await enqueue(d.udid, commandPlist("DeviceInformation", a));
      await d.report("Idle");
      const r = await d.report("NotNow", { CommandUUID: a });
      assert.equal(r.status, 200);
      assert.equal(r.body.length, 0);
      const again = await d.report("Idle");
      assert.equal(parsePlistDict(again.body).CommandUUID, a);
    });
  });

  describe("enqueue body is read raw whatever the Content-Type", () => {
    test("application/json and text/plain content types still enqueue the plist", async () => {
      const d = await enrolled();
      for (const type of ["application/json", "text/plain", "application/x-www-form-urlencoded"]) {
        const id = uuid();
        const body = commandPlist("DeviceInformation", id);
        const res = await fetch(`${server.url}/v1/enqueue/${d.udid}?nopush=1`, {
          method: "PUT",
          headers: { authorization: "Basic " + Buffer.from("x:test-api-key-0123456789abcdef").toString("base64"), "content-type": type },
          body: new Uint8Array(body),
        });
        assert.equal(res.status, 200, type);
        assert.equal(((await res.json()) as any).command_uuid, id);
      }
      assert.equal((await server.api("GET", `/v1/queue/${d.udid}`)).json.commands.length, 3);
    });

    test("the raw command bytes are stored as sent (no re-serialization when CommandUUID is given)", async () => {
      const d = await enrolled();
      const id = uuid();
      const body = plist({
        CommandUUID: id,
        Command: { RequestType: "Settings", Settings: [{ Item: "DeviceName", DeviceName: "é ü <&>" }] },
      });
      await enqueue(d.udid, body);
      const row = await server.store.db.get<{ command: Buffer }>("SELECT command FROM commands WHERE command_uuid = ?", [id]);
      assert.ok(row!.command.equals(body));
    });
  });
});
