// End to end over real HTTP: check-in messages, from the real fixtures and from
// simulated devices, and what they leave in the store.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { parsePlistDict } from "../src/plist/index.ts";
import { Transport } from "../src/sim/transport.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { CHECKIN_TYPE, COMMAND_TYPE, commandPlist, eventually, fixture, identity, plist, rawPut, RawDevice, sleep } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

await forEachBackend("check-in messages", (backend) => {
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

  async function rawDevice(udid = randomUUID().toUpperCase()): Promise<RawDevice> {
    return new RawDevice(fleet.transport, await identity(fleet), udid);
  }

  async function enrollment(id: string) {
    const r = await server.api("GET", `/v1/enrollments/${encodeURIComponent(id)}`);
    assert.equal(r.status, 200, `enrollment ${id}: ${r.text}`);
    return r.json;
  }

  describe("the real fixtures, byte for byte", () => {
    test("macOS 10.12.2: Authenticate, device TokenUpdate, user TokenUpdate", async () => {
      const udid = "E3568F17-92ED-450A-8904-C3BF4CB7E9A5";
      const auth = { kind: "header" as const, identity: await identity(fleet) };
      const authenticate = fixture("authenticate-macos-10.12.2.plist");
      const a = await rawPut(fleet.transport, "/checkin", authenticate, { auth });
      assert.equal(a.status, 200, a.text);
      assert.equal(a.body.length, 0);
      const device = await server.store.db.get<any>("SELECT * FROM devices WHERE id = ?", [udid]);
      assert.ok(Buffer.from(device.authenticate_message).equals(authenticate), "the raw Authenticate is kept");
      assert.equal(device.cert_fingerprint, auth.identity.fingerprint);
      assert.equal(device.topic, "com.apple.mgmt.commandment.dev");

      const deviceTu = fixture("tokenupdate-macos-10.12.2-device.plist");
      const t = await rawPut(fleet.transport, "/checkin", deviceTu, { auth });
      assert.equal(t.status, 200, t.text);
      assert.equal(t.body.length, 0);

      const e = await enrollment(udid);
      assert.equal(e.id, udid);
      assert.equal(e.device_id, udid);
      assert.equal(e.type, "Device");
      assert.equal(e.enabled, true);
      assert.equal(e.serial_number, "000000000000");
      assert.equal(e.model, "iMac17,1");
      assert.equal(e.model_name, "iMac");
      assert.equal(e.product_name, "iMac17,1");
      assert.equal(e.device_name, "device-name");
      assert.equal(e.os_version, "10.12.2");
      assert.equal(e.build_version, "16C67");
      assert.equal(e.topic, "com.apple.mgmt.commandment.dev");
      assert.equal(e.push_magic, "B81B1FEC-09C6-4EC2-871C-E521EC971B38");
      assert.equal(e.push_token, Buffer.from("MDAyMDEwNTItQTJEMC00MDNELUI4NTctNzJGOTEzRjVCQ0NFCg==", "base64").toString("hex"));
      assert.equal(e.token_update_count, 1);
      assert.equal(e.awaiting_configuration, false);
      assert.equal(e.user_short_name, null);

      const userTu = fixture("tokenupdate-macos-10.12.2-user.plist");
      const u = await rawPut(fleet.transport, "/checkin", userTu, { auth });
      assert.equal(u.status, 200, u.text);
      const userId = `${udid}:A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883`;
      const ue = await enrollment(userId);
      assert.equal(ue.type, "User");
      assert.equal(ue.device_id, udid);
      assert.equal(ue.user_id, "A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883");
      assert.equal(ue.user_short_name, "cjoe");
      assert.equal(ue.user_long_name, "Commando Joe");
      assert.equal(ue.enabled, true);
      assert.equal(ue.token_update_count, 1);
      assert.equal(ue.push_token, Buffer.from("MDAyMDEwNTItQTJEMC00MDNELUI4NTctNzJGOTEzRjVCQ0NECg==", "base64").toString("hex"));
      assert.equal(ue.serial_number, "000000000000", "a user channel shows its device's facts");
      const row = await server.store.db.get<any>("SELECT token_update_message, not_on_console FROM enrollments WHERE id = ?", [userId]);
      assert.ok(Buffer.from(row.token_update_message).equals(userTu));
      assert.equal(row.not_on_console, 0);

      const list = await server.api("GET", `/v1/enrollments?device=${udid}`);
      assert.deepEqual(
        list.json.enrollments.map((x: any) => x.id),
        [udid, userId],
      );
    });

    test("macOS 10.11.6: Authenticate, then CheckOut disables the device and its user channels", async () => {
      const udid = "00000000-1111-2222-3333-444455556666";
      const dev = new RawDevice(fleet.transport, await identity(fleet), udid);
      const auth = { kind: "header" as const, identity: dev.identity };
      const a = await rawPut(fleet.transport, "/checkin", fixture("authenticate-macos-10.11.6.plist"), { auth });
      assert.equal(a.status, 200, a.text);
      assert.equal((await dev.tokenUpdate({ Topic: "com.apple.mgmt.test.00000000-1111-2222-3333-444455556666" })).status, 200);
      assert.equal((await dev.tokenUpdate({ UserID: "USER-1", UserShortName: "u1", UserLongName: "User One" })).status, 200);

      const e = await enrollment(udid);
      assert.equal(e.serial_number, "C00000000004");
      assert.equal(e.model, "iMac15,1");
      assert.equal(e.os_version, "10.11.6");
      assert.equal(e.build_version, "15G1004");
      assert.equal(e.enabled, true);
      assert.equal((await enrollment(`${udid}:USER-1`)).enabled, true);

      const c = await rawPut(fleet.transport, "/checkin", fixture("checkout-macos-10.11.plist"), { auth });
      assert.equal(c.status, 200, c.text);
      assert.equal(c.body.length, 0);
      assert.equal((await enrollment(udid)).enabled, false);
      assert.equal((await enrollment(`${udid}:USER-1`)).enabled, false);
      const disabled = await server.api("GET", `/v1/enrollments?device=${udid}&enabled=0`);
      assert.equal(disabled.json.enrollments.length, 2);
      const events = await server.api("GET", `/v1/events?enrollment=${udid}&type=device.checked_out`);
      assert.equal(events.json.events.length, 1);
    });

    test("iOS 9.3.2: Authenticate facts of an iPad", async () => {
      const udid = "1111111111111111111111111111111111111111";
      const dev = new RawDevice(fleet.transport, await identity(fleet), udid);
      const a = await rawPut(fleet.transport, "/checkin", fixture("authenticate-ios-9.3.2.plist"), {
        auth: { kind: "header", identity: dev.identity },
      });
      assert.equal(a.status, 200, a.text);
      // Authenticate alone does not make an enrollment (the profile may still fail to install).
      assert.equal((await server.api("GET", `/v1/enrollments/${udid}`)).status, 404);
      assert.equal((await dev.tokenUpdate()).status, 200);
      const e = await enrollment(udid);
      assert.equal(e.serial_number, "XXXXXXXXXXXX");
      assert.equal(e.product_name, "iPad4,1");
      assert.equal(e.os_version, "9.3.2");
      assert.equal(e.build_version, "13F69");
      assert.equal(e.model, null);
      assert.equal(e.model_name, null);
      assert.equal(e.device_name, null);
    });
  });

  describe("TokenUpdate", () => {
    test("counts, keeps the UnlockToken unless replaced, never stores one for a user channel", async () => {
      const d = await rawDevice();
      await d.enroll();
      const unlock1 = Buffer.from("unlock-one");
      const unlock2 = Buffer.from("unlock-two-longer");
      assert.equal((await d.tokenUpdate({ UnlockToken: unlock1 })).status, 200);
      assert.ok((await server.store.enrollments.unlockToken(d.udid))!.equals(unlock1));
      assert.equal((await d.tokenUpdate({ PushMagic: "NEW-MAGIC" })).status, 200);
      assert.ok((await server.store.enrollments.unlockToken(d.udid))!.equals(unlock1), "kept when absent");
      assert.equal((await d.tokenUpdate({ UnlockToken: unlock2 })).status, 200);
      assert.ok((await server.store.enrollments.unlockToken(d.udid))!.equals(unlock2), "replaced");
      const e = await enrollment(d.udid);
      assert.equal(e.token_update_count, 4);
      assert.equal(e.push_magic, "PUSH-MAGIC");

      const user = { UserID: "U-UNLOCK", UserShortName: "un", UserLongName: "Un Lock" };
      assert.equal((await d.tokenUpdate({ ...user, UnlockToken: Buffer.from("user-unlock") })).status, 200);
      assert.equal(await server.store.enrollments.unlockToken(`${d.udid}:U-UNLOCK`), undefined);
      assert.ok((await server.store.enrollments.unlockToken(d.udid))!.equals(unlock2), "the device's stays");
    });

    test("the first TokenUpdate of a channel logs enrollment.enrolled once", async () => {
      const d = await rawDevice();
      await d.enroll();
      await d.tokenUpdate();
      const ev = await server.api("GET", `/v1/events?enrollment=${d.udid}&type=enrollment.enrolled`);
      assert.equal(ev.json.events.length, 1);
      assert.deepEqual(ev.json.events[0].detail, { type: "Device" });
    });

    test("Shared iPad and User Enrollment channel ids", async () => {
      const d = await rawDevice();
      await d.enroll();
      assert.equal(
        (
          await d.tokenUpdate({
            UserID: "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
            UserShortName: "student@example.org",
            AwaitingConfiguration: true,
          })
        ).status,
        200,
      );
      const shared = await enrollment(`${d.udid}:student@example.org`);
      assert.equal(shared.type, "SharediPadUser");
      assert.equal(shared.user_id, "student@example.org");
      assert.equal(shared.awaiting_configuration, true);

      const enrollmentId = `UE-${randomUUID()}`;
      const ident = await identity(fleet);
      const ue = (msg: Record<string, any>) =>
        rawPut(fleet.transport, "/checkin", plist({ EnrollmentID: enrollmentId, Topic: "com.apple.mgmt.x", ...msg }), {
          auth: { kind: "header", identity: ident },
        });
      assert.equal((await ue({ MessageType: "Authenticate" })).status, 200);
      assert.equal((await ue({ MessageType: "TokenUpdate", Token: Buffer.alloc(32, "t"), PushMagic: "m" })).status, 200);
      assert.equal(
        (await ue({ MessageType: "TokenUpdate", Token: Buffer.alloc(32, "u"), PushMagic: "m", EnrollmentUserID: `EU-${enrollmentId}` }))
          .status,
        200,
      );
      assert.equal((await enrollment(enrollmentId)).type, "UserEnrollmentDevice");
      const user = await enrollment(`EU-${enrollmentId}`);
      assert.equal(user.type, "UserEnrollmentUser");
      assert.equal(user.device_id, enrollmentId);
    });
  });

  describe("User Enrollment: a user channel is its own device's alone", () => {
    test("another device naming its EnrollmentUserID is refused (DDM read and status, command poll, TokenUpdate): 403, nothing written", async () => {
      const topic = "com.apple.mgmt.External.test";
      const ueDevice = async () => {
        const ident = await identity(fleet);
        const enrollmentId = `UE-${randomUUID()}`;
        const send = (msg: Record<string, any>, path = "/checkin", contentType = CHECKIN_TYPE) =>
          rawPut(fleet.transport, path, plist({ EnrollmentID: enrollmentId, ...msg }), {
            auth: { kind: "header", identity: ident },
            contentType,
          });
        assert.equal((await send({ MessageType: "Authenticate", Topic: topic })).status, 200);
        assert.equal((await send({ MessageType: "TokenUpdate", Topic: topic, Token: Buffer.alloc(32, 1), PushMagic: "PM" })).status, 200);
        return { enrollmentId, send };
      };
      const victim = await ueDevice();
      const attacker = await ueDevice();
      const victimUser = `EU-${randomUUID()}`;
      const asVictimUser = { EnrollmentUserID: victimUser };
      assert.equal(
        (await victim.send({ MessageType: "TokenUpdate", Topic: topic, Token: Buffer.alloc(32, 2), PushMagic: "VICTIM", ...asVictimUser }))
          .status,
        200,
      );
      // The operator gives the victim's user channel a declaration and a command.
      const decl = `ue.secret.${randomUUID()}`;
      const set = `ue-victim-${randomUUID()}`;
      const declared = { Type: "com.apple.configuration.management.test", Identifier: decl, Payload: { Echo: "victim-only" } };
      assert.equal((await server.api("PUT", "/v1/declarations", declared)).status, 204);
      assert.equal((await server.api("PUT", `/v1/set-declarations/${set}?declaration=${decl}`)).status, 204);
      assert.equal((await server.api("PUT", `/v1/enrollment-sets/${victimUser}?set=${set}`)).status, 204);
      const uuid = `UE-CMD-${randomUUID()}`;
      const command = commandPlist("ProfileList", uuid).toString("utf8");
      assert.equal((await server.api("POST", "/v1/enqueue?nopush=1", { ids: [victimUser], command })).status, 200);
      const before = await enrollment(victimUser);

      const asAttacker = (msg: Record<string, any>, path?: string, type?: string) => attacker.send({ ...msg, ...asVictimUser }, path, type);
      const read = await asAttacker({ MessageType: "DeclarativeManagement", Endpoint: `declaration/configuration/${decl}` });
      assert.equal(read.status, 403, read.text);
      assert.doesNotMatch(read.text, /victim-only/);
      assert.equal((await asAttacker({ MessageType: "DeclarativeManagement", Endpoint: "tokens" })).status, 403);
      const forged = {
        StatusItems: {
          management: { declarations: { configurations: [{ identifier: decl, active: true, valid: "valid", "server-token": "forged" }] } },
        },
      };
      const write = await asAttacker({
        MessageType: "DeclarativeManagement",
        Endpoint: "status",
        Data: Buffer.from(JSON.stringify(forged)),
      });
      assert.equal(write.status, 403, write.text);
      const poll = await asAttacker({ Status: "Idle" }, "/mdm", COMMAND_TYPE);
      assert.equal(poll.status, 403, poll.text);
      const takeover = await asAttacker({ MessageType: "TokenUpdate", Topic: topic, Token: Buffer.alloc(32, 3), PushMagic: "ATTACKER" });
      assert.equal(takeover.status, 403, takeover.text);
      assert.ok(server.logs.some((l) => l.includes("request for a user channel of another device: refused") && l.includes(victimUser)));

      // Nothing of the victim's channel changed: its push token, its status, its queue.
      assert.deepEqual(await enrollment(victimUser), before);
      const status = await server.api("GET", `/v1/declaration-status/${victimUser}`);
      assert.doesNotMatch(status.text, /forged/);
      const own = await victim.send({ Status: "Idle", ...asVictimUser }, "/mdm", COMMAND_TYPE);
      assert.equal(own.status, 200, own.text);
      assert.equal(own.plist?.CommandUUID, uuid, "the command is still the victim's to fetch");
      const ownRead = await victim.send({
        MessageType: "DeclarativeManagement",
        Endpoint: `declaration/configuration/${decl}`,
        ...asVictimUser,
      });
      assert.equal(ownRead.status, 200, ownRead.text);
      // The attacker's own user channel works.
      const mine = await attacker.send({
        MessageType: "TokenUpdate",
        Topic: topic,
        Token: Buffer.alloc(32, 4),
        PushMagic: "M",
        EnrollmentUserID: `EU-${randomUUID()}`,
      });
      assert.equal(mine.status, 200, mine.text);
    });
    test("a device whose UDID is another device's EnrollmentUserID is refused: at Authenticate, and on every request if it was bound first", async () => {
      const topic = "com.apple.mgmt.External.test";
      const ueOwner = await identity(fleet);
      const enrollmentId = `UE-${randomUUID()}`;
      const owner = (msg: Record<string, any>, path = "/checkin", contentType = CHECKIN_TYPE) =>
        rawPut(fleet.transport, path, plist({ EnrollmentID: enrollmentId, ...msg }), {
          auth: { kind: "header", identity: ueOwner },
          contentType,
        });
      assert.equal((await owner({ MessageType: "Authenticate", Topic: topic })).status, 200);
      assert.equal((await owner({ MessageType: "TokenUpdate", Topic: topic, Token: Buffer.alloc(32, 1), PushMagic: "PM" })).status, 200);
      const asDevice = async (udid: string) => {
        const ident = await identity(fleet);
        return (msg: Record<string, any>, path = "/checkin", contentType = CHECKIN_TYPE) =>
          rawPut(fleet.transport, path, plist({ UDID: udid, ...msg }), { auth: { kind: "header", identity: ident }, contentType });
      };
      const userChannel = async (id: string, magic: string) =>
        (await owner({ MessageType: "TokenUpdate", Topic: topic, Token: Buffer.alloc(32, 2), PushMagic: magic, EnrollmentUserID: id }))
          .status;
      const queue = async (id: string) => {
        const uuid = `UE-CMD-${randomUUID()}`;
        const command = commandPlist("ProfileList", uuid).toString("utf8");
        assert.equal((await server.api("POST", "/v1/enqueue?nopush=1", { ids: [id], command })).status, 200);
        return uuid;
      };

      // The user channel first: a device naming its id is refused at Authenticate, and nothing of it is written.
      const first = `EU-${randomUUID()}`;
      assert.equal(await userChannel(first, "FIRST"), 200);
      const firstCommand = await queue(first);
      const impostor = await asDevice(first);
      const refused = await impostor({ MessageType: "Authenticate", Topic: topic });
      assert.equal(refused.status, 403, refused.text);
      assert.match(refused.text, /user channel of another device/);
      assert.equal(await server.store.db.get("SELECT id FROM devices WHERE id = ?", [first]), undefined);
      assert.equal((await impostor({ Status: "Idle" }, "/mdm", COMMAND_TYPE)).status, 403);

      // The device first (bound, no TokenUpdate yet), then a user channel takes the id: the device's requests are refused.
      const second = `EU-${randomUUID()}`;
      const early = await asDevice(second);
      assert.equal((await early({ MessageType: "Authenticate", Topic: topic })).status, 200);
      assert.equal(await userChannel(second, "SECOND"), 200);
      const secondCommand = await queue(second);
      const poll = await early({ Status: "Idle" }, "/mdm", COMMAND_TYPE);
      assert.equal(poll.status, 403, poll.text);
      const ddm = await early({ MessageType: "DeclarativeManagement", Endpoint: "tokens" });
      assert.equal(ddm.status, 403, ddm.text);
      assert.ok(server.logs.some((l) => l.includes("device id is a user channel of another device: refused") && l.includes(second)));

      // The channels' own device still gets its commands.
      for (const [id, uuid] of [
        [first, firstCommand],
        [second, secondCommand],
      ]) {
        const own = await owner({ Status: "Idle", EnrollmentUserID: id }, "/mdm", COMMAND_TYPE);
        assert.equal(own.status, 200, own.text);
        assert.equal(own.plist?.CommandUUID, uuid);
      }
    });
  });

  describe("bootstrap token", () => {
    test("set, get, clear with an empty or missing token, cleared by Authenticate", async () => {
      const d = await rawDevice();
      await d.enroll();
      const none = await d.checkin("GetBootstrapToken");
      assert.equal(none.status, 200);
      assert.deepEqual(none.plist, {}, "no token: an empty dict");

      const token = Buffer.from([0, 1, 2, 3, 250, 251, 252, 253, 254, 255, 10, 13]);
      const set = await d.checkin("SetBootstrapToken", { BootstrapToken: token, AwaitingConfiguration: false });
      assert.equal(set.status, 200);
      assert.equal(set.body.length, 0);
      const got = await d.checkin("GetBootstrapToken");
      assert.equal(got.status, 200);
      assert.match(String(got.headers["content-type"]), /^application\/xml/);
      assert.deepEqual(Object.keys(got.plist!), ["BootstrapToken"]);
      assert.ok((got.plist!.BootstrapToken as Buffer).equals(token));

      assert.equal((await d.checkin("SetBootstrapToken", { BootstrapToken: Buffer.alloc(0) })).status, 200);
      assert.deepEqual((await d.checkin("GetBootstrapToken")).plist, {});

      await d.checkin("SetBootstrapToken", { BootstrapToken: token });
      assert.equal((await d.checkin("SetBootstrapToken")).status, 200);
      assert.deepEqual((await d.checkin("GetBootstrapToken")).plist, {}, "a missing token clears it");

      await d.checkin("SetBootstrapToken", { BootstrapToken: token });
      assert.ok(((await d.checkin("GetBootstrapToken")).plist!.BootstrapToken as Buffer).equals(token));
      assert.equal((await d.authenticate()).status, 200);
      assert.deepEqual((await d.checkin("GetBootstrapToken")).plist, {}, "Authenticate clears it");

      // Events say what happened, never the token.
      const ev = await server.api("GET", `/v1/events?enrollment=${d.udid}`);
      const types = ev.json.events.map((x: any) => x.type);
      assert.ok(types.includes("bootstrap_token.escrowed") && types.includes("bootstrap_token.cleared"));
      assert.ok(!ev.text.includes(token.toString("base64")));
    });
  });

  describe("re-enrollment", () => {
    test("a new Authenticate clears the queues of the device and its users and disables them until TokenUpdate", async () => {
      const d = await rawDevice();
      await d.enroll();
      const unlock = Buffer.from("the-unlock-token");
      await d.tokenUpdate({ UnlockToken: unlock });
      const user = { UserID: "U-RE", UserShortName: "re", UserLongName: "Re Enrolled" };
      assert.equal((await d.tokenUpdate(user)).status, 200);
      const userId = `${d.udid}:U-RE`;

      const a = randomUUID().toUpperCase();
      const b = randomUUID().toUpperCase();
      const done = randomUUID().toUpperCase();
      assert.equal((await server.api("PUT", `/v1/enqueue/${d.udid}?nopush=1`, commandPlist("DeviceInformation", done))).status, 200);
      assert.equal(parsePlistDict((await d.report("Idle")).body).CommandUUID, done);
      assert.equal((await d.report("Acknowledged", { CommandUUID: done })).status, 200);
      assert.equal((await server.api("PUT", `/v1/enqueue/${d.udid}?nopush=1`, commandPlist("DeviceInformation", a))).status, 200);
      assert.equal((await server.api("PUT", `/v1/enqueue/${userId}?nopush=1`, commandPlist("ProfileList", b))).status, 200);

      const again = await d.authenticate({ SerialNumber: "NEWSERIAL" });
      assert.equal(again.status, 200);
      assert.deepEqual((await server.api("GET", `/v1/queue/${d.udid}`)).json.commands, []);
      assert.deepEqual((await server.api("GET", `/v1/queue/${userId}`)).json.commands, []);
      assert.equal((await enrollment(d.udid)).enabled, false);
      assert.equal((await enrollment(userId)).enabled, false);
      assert.equal((await enrollment(d.udid)).serial_number, "NEWSERIAL");
      // Results of finished commands stay; the queued ones end as Discarded, with an event.
      assert.equal((await server.api("GET", `/v1/commands/${done}`)).json.results[0].status, "Acknowledged");
      for (const [uuid, id] of [
        [a, d.udid],
        [b, userId],
      ] as const) {
        const results = (await server.api("GET", `/v1/commands/${uuid}`)).json.results;
        assert.deepEqual(
          results.map((r: { enrollment_id: string; status: string; active: boolean }) => [r.enrollment_id, r.status, r.active]),
          [[id, "Discarded", false]],
        );
      }
      const events = (await server.api("GET", `/v1/events?enrollment=${d.udid}&type=device.queue_discarded`)).json.events;
      assert.equal(events.length, 1);
      assert.equal(events[0].detail.count, 2);
      assert.deepEqual(events[0].detail.commands.map((c: { command_uuid: string }) => c.command_uuid).sort(), [a, b].sort());
      assert.ok(server.logs.some((l) => l.includes("re-enrollment discarded queued commands") && l.includes('"discarded":2')));
      assert.equal((await d.report("Idle")).body.length, 0);

      assert.equal((await d.tokenUpdate()).status, 200);
      const e = await enrollment(d.udid);
      assert.equal(e.enabled, true);
      assert.equal(e.token_update_count, 1, "re-enrollment restarts the tally: the enrollment is new again");
      assert.ok((await server.store.enrollments.unlockToken(d.udid))!.equals(unlock), "UnlockToken kept until replaced");
      assert.equal((await enrollment(userId)).enabled, false, "a user channel waits for its own TokenUpdate");
      assert.equal((await d.tokenUpdate(user)).status, 200);
      assert.equal((await enrollment(userId)).enabled, true);
    });

    test("re-enrollment after CheckOut may bind a new certificate; the old one is refused afterwards", async () => {
      // Without CheckOut the new certificate is held (test/rebind.test.ts).
      const d = await rawDevice();
      await d.enroll();
      assert.equal((await d.checkin("CheckOut")).status, 200);
      const renewed = new RawDevice(fleet.transport, await identity(fleet), d.udid);
      assert.equal((await renewed.authenticate()).status, 200);
      assert.equal((await renewed.tokenUpdate()).status, 200);
      const old = await d.report("Idle");
      assert.equal(old.status, 403);
      assert.match(old.text, /does not match/);
      assert.equal((await renewed.report("Idle")).status, 200);
      assert.equal((await server.store.enrollments.bindingOf(d.udid))?.fingerprint, renewed.identity.fingerprint);
    });
  });

  describe("shared URL", () => {
    test("check-ins on /mdm with the check-in content type (with parameters) work", async () => {
      const d = await rawDevice();
      assert.equal((await d.authenticate()).status, 200);
      const a = await d.checkin(
        "TokenUpdate",
        { Topic: "t", Token: Buffer.alloc(32, "tok"), PushMagic: "pm" },
        { path: "/mdm", contentType: `${CHECKIN_TYPE}; charset=UTF-8` },
      );
      assert.equal(a.status, 200, a.text);
      assert.equal((await enrollment(d.udid)).push_magic, "pm");
      const get = await d.checkin("GetBootstrapToken", {}, { path: "/mdm", contentType: "Application/X-Apple-Aspen-MDM-Checkin" });
      assert.equal(get.status, 200);
      assert.deepEqual(get.plist, {});
    });

    test("without a content type, the body decides: MessageType is a check-in, Status a report", async () => {
      const d = await rawDevice();
      const a = await d.authenticate();
      assert.equal(a.status, 200);
      const t = await d.checkin(
        "TokenUpdate",
        { Topic: "t", Token: Buffer.alloc(32, "tok"), PushMagic: "no-type" },
        { path: "/mdm", contentType: null },
      );
      assert.equal(t.status, 200, t.text);
      assert.equal((await enrollment(d.udid)).push_magic, "no-type");
      const id = randomUUID().toUpperCase();
      await server.api("PUT", `/v1/enqueue/${d.udid}?nopush=1`, commandPlist("DeviceInformation", id));
      const idle = await d.report("Idle", {}, { contentType: null });
      assert.equal(idle.status, 200);
      assert.equal(parsePlistDict(idle.body).CommandUUID, id);
      const other = await d.report("Acknowledged", { CommandUUID: id }, { contentType: "text/plain" });
      assert.equal(other.status, 200);
      assert.equal((await server.api("GET", `/v1/commands/${id}`)).json.results[0].status, "Acknowledged");
    });

    test("a check-in on /checkin with the command content type is still a check-in", async () => {
      const d = await rawDevice();
      assert.equal((await d.checkin("Authenticate", { Topic: "t" }, { contentType: COMMAND_TYPE })).status, 200);
      const t = await d.checkin(
        "TokenUpdate",
        { Topic: "t", Token: Buffer.alloc(32, "x"), PushMagic: "cmd-type" },
        { contentType: COMMAND_TYPE },
      );
      assert.equal(t.status, 200, t.text);
      assert.equal((await enrollment(d.udid)).push_magic, "cmd-type");
    });

    test("a report on /mdm with the check-in content type is read as a check-in and refused", async () => {
      const d = await rawDevice();
      await d.enroll();
      const r = await d.report("Idle", {}, { contentType: CHECKIN_TYPE });
      assert.equal(r.status, 400);
      assert.match(r.text, /MessageType/);
    });
  });

  describe("one URL for both (--checkin-path equal to --server-path)", () => {
    test("check-ins and reports on /mdm are told apart by content type, then by body", async () => {
      const one = await startTestServer(["--checkin-path", "/mdm"], backend);
      const transport = new Transport(one.url);
      try {
        const d = new RawDevice(transport, await identity(fleet), randomUUID().toUpperCase());
        assert.equal((await d.authenticate({}, "/mdm")).status, 200);
        assert.equal(
          (
            await d.checkin(
              "TokenUpdate",
              { Topic: "t", Token: Buffer.alloc(32, "x"), PushMagic: "one-url" },
              { path: "/mdm", contentType: null },
            )
          ).status,
          200,
        );
        assert.equal((await one.api("GET", `/v1/enrollments/${d.udid}`)).json.push_magic, "one-url");
        const id = randomUUID().toUpperCase();
        await one.api("PUT", `/v1/enqueue/${d.udid}?nopush=1`, commandPlist("DeviceInformation", id));
        const idle = await d.report("Idle");
        assert.equal(parsePlistDict(idle.body).CommandUUID, id);
        assert.equal(
          (await rawPut(transport, "/checkin", plist({ Status: "Idle", UDID: d.udid }), { auth: { kind: "header", identity: d.identity } }))
            .status,
          404,
        );
      } finally {
        transport.close();
        await one.stop();
      }
    });
  });

  describe("other check-ins", () => {
    test("ReturnToService answers Enabled=false", async () => {
      const d = await rawDevice();
      await d.enroll();
      const r = await d.checkin("ReturnToService");
      assert.equal(r.status, 200);
      assert.deepEqual(r.plist, { ReturnToService: { Enabled: false } });
    });
  });

  describe("last seen", () => {
    test("an Idle poll moves last_seen_at forward within about a second", async () => {
      const d = await rawDevice();
      await d.enroll();
      const before = Date.parse((await enrollment(d.udid)).last_seen_at);
      assert.ok(Number.isFinite(before), "an RFC 3339 time");
      await sleep(5);
      const t0 = Date.now();
      assert.equal((await d.report("Idle")).status, 200);
      const seen = await eventually(
        async () => {
          const at = Date.parse((await enrollment(d.udid)).last_seen_at);
          return at > before ? at : undefined;
        },
        3000,
        "last_seen_at to move",
      );
      assert.ok(seen >= t0 && seen <= Date.now(), `last_seen_at ${seen} is the poll's time`);
    });
  });
});
