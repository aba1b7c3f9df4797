// The device inventory end to end on both stores: each source (Authenticate,
// a DeviceInformation result, a SecurityInfo result, a DDM status report)
// moves its fields and records where and when; a message repeating what is
// known writes nothing; the list's filters and paging; bad filters are 400s;
// the built-in status subscription, assigned per platform now and at
// enrollment, and taken away again.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { openStore } from "../src/store/index.ts";
import { forDialect, migrations } from "../src/store/migrations/index.ts";
import { parsePlistDict, type PlistDict } from "../src/plist/index.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist, eventually, identity, RawDevice } from "./support/mdm.ts";
import { createTestDatabase, forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const MAC = {
  SerialNumber: "C02MAC00001",
  ProductName: "Mac14,2",
  ModelName: "MacBook Air",
  Model: "Mac14,2",
  OSVersion: "14.6",
  BuildVersion: "23G80",
  DeviceName: "Ada's Mac",
};
const MAC2 = {
  SerialNumber: "C02MAC00002",
  ProductName: "Mac15,3",
  ModelName: "MacBook Pro",
  OSVersion: "15.1",
  BuildVersion: "24B83",
  DeviceName: "Lab Mac",
};
const PHONE = {
  SerialNumber: "F2LPHONE0001",
  ProductName: "iPhone15,4",
  ModelName: "iPhone",
  OSVersion: "9.3.2",
  BuildVersion: "13F69",
  DeviceName: "Phone",
};
const USER = { UserID: "INV-USER-GUID", UserShortName: "dana", UserLongName: "Dana Scully" };

await forEachBackend("inventory", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  let mac: RawDevice;
  let mac2: RawDevice;
  let phone: RawDevice;
  const tag = backend.toUpperCase();

  before(async () => {
    server = await startTestServer([], backend);
    fleet = await testFleet(server.url);
    mac = new RawDevice(fleet.transport, await identity(fleet), `INV-${tag}-A-MAC`);
    mac2 = new RawDevice(fleet.transport, await identity(fleet), `INV-${tag}-B-MAC`);
    phone = new RawDevice(fleet.transport, await identity(fleet), `INV-${tag}-C-PHONE`);
    await mac.enroll(MAC);
    await mac2.enroll(MAC2);
    await phone.enroll(PHONE);
    assert.equal((await mac.tokenUpdate(USER)).status, 200);
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  const record = async (d: RawDevice) => {
    const r = await server.api("GET", `/v1/inventory/${d.udid}`);
    assert.equal(r.status, 200, r.text);
    return r.json;
  };
  const list = async (query: string): Promise<string[]> => {
    const r = await server.api("GET", `/v1/inventory?${query}`);
    assert.equal(r.status, 200, r.text);
    return r.json.devices.map((d: { device_id: string }) => d.device_id);
  };
  /** Queues a command for the device and answers it with these fields; returns the command's UUID. */
  async function answer(d: RawDevice, requestType: string, fields: PlistDict): Promise<void> {
    const q = await server.api("PUT", `/v1/enqueue/${d.udid}?nopush=1`, commandPlist(requestType));
    assert.equal(q.status, 200, q.text);
    const polled = await d.report("Idle");
    assert.equal(polled.status, 200);
    const cmd = parsePlistDict(polled.body);
    assert.equal((cmd.Command as PlistDict).RequestType, requestType);
    const r = await d.report("Acknowledged", { CommandUUID: cmd.CommandUUID as string, ...fields });
    assert.equal(r.status, 200, r.text);
  }
  const status = (d: RawDevice, report: object, user = false) =>
    d.checkin("DeclarativeManagement", {
      Endpoint: "status",
      Data: Buffer.from(JSON.stringify(report)),
      ...(user ? USER : {}),
    });

  test("a store made before the inventory gets a record per device from its Authenticate facts", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-inventory-migration-"));
    const database = backend === "postgres" ? await createTestDatabase() : undefined;
    const url = database?.url ?? `sqlite:${path.join(dir, "orchard.db")}`;
    try {
      // The schema as it was before migration 17, with a device in it.
      const before = await openStore(url, dir);
      await before.db.exec(
        forDialect(
          "DROP TABLE inventory; DROP TABLE inventory_subscriptions; DROP INDEX enrollments_user_short_name; DROP INDEX enrollments_user_id;",
          before.db.dialect,
        ),
      );
      // And before the migrations that add inventory columns.
      await before.db.run("DELETE FROM schema_migrations WHERE version IN (17, 21)");
      await before.db.run(
        `INSERT INTO devices (id, serial_number, product_name, platform, model_name, os_version, build_version, cert_fingerprint,
           authenticated_at, created_at) VALUES ('OLD-MAC', 'C02OLD', 'Mac14,2', 'macOS', 'MacBook Air', '13.6.1', '22G313', 'fp', 1700000000000, 1700000000000)`,
      );
      await before.close();
      assert.ok(migrations.some((m) => m.version === 17));
      const after = await openStore(url, dir);
      try {
        const r = await after.inventory.get("OLD-MAC");
        assert.ok(r);
        assert.deepEqual(r.values, {
          serial_number: "C02OLD",
          platform: "macOS",
          product_name: "Mac14,2",
          model_name: "MacBook Air",
          os_version: "13.6.1",
          build_version: "22G313",
        });
        assert.deepEqual(r.learned.os_version, { source: "authenticate", at: 1700000000000 });
        // The version key was filled when the store opened: the device is found below 14.
        assert.deepEqual(
          (await after.inventory.list({ osVersionBelow: "14", limit: 10 })).map((d) => d.deviceId),
          ["OLD-MAC"],
        );
      } finally {
        await after.close();
      }
    } finally {
      await database?.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("Authenticate fills the record: each field from authenticate, at the time it came", async () => {
    const r = await record(mac);
    assert.deepEqual(r.fields.os_version.value, "14.6");
    assert.equal(r.fields.os_version.source, "authenticate");
    assert.equal(r.fields.platform.value, "macOS");
    assert.equal(r.fields.product_name.value, "Mac14,2");
    assert.equal(r.fields.serial_number.value, "C02MAC00001");
    assert.ok(Date.parse(r.fields.os_version.learned_at) <= Date.now());
    assert.equal(r.fields.update_install_state, undefined, "nothing said yet");
    assert.deepEqual(r.users, [
      { enrollment_id: `${mac.udid}:${USER.UserID}`, user_id: USER.UserID, user_short_name: "dana", user_long_name: "Dana Scully" },
    ]);
    assert.equal((await server.api("GET", "/v1/inventory/NO-SUCH-DEVICE")).status, 404);
  });

  test("a DeviceInformation result moves the fields it changes; the ones it repeats keep their source", async () => {
    const before = await record(mac);
    await answer(mac, "DeviceInformation", {
      QueryResponses: {
        OSVersion: "14.7",
        BuildVersion: "23H124",
        DeviceName: "Ada's Mac",
        IsSupervised: true,
        AvailableDeviceCapacity: 120.5,
        SoftwareUpdateDeviceID: "J413AP",
      },
    });
    const r = await record(mac);
    // The id Apple's software lookup feed lists Macs by (a board id, not Mac14,2).
    assert.deepEqual([r.fields.update_device_id?.value, r.fields.update_device_id?.source], ["J413AP", "device-information"]);
    assert.equal(r.fields.os_version.value, "14.7");
    assert.equal(r.fields.os_version.source, "device-information");
    assert.equal(r.fields.build_version.source, "device-information");
    assert.equal(r.fields.is_supervised.value, true);
    assert.equal(r.fields.available_device_capacity.value, 120.5);
    assert.deepEqual(r.fields.device_name, before.fields.device_name, "the same name: not learned again");
  });

  test("an iPhone's TimeZone is learned as time_zone; a name no zone has is left out", async () => {
    await answer(phone, "DeviceInformation", { QueryResponses: { TimeZone: "Europe/Paris" } });
    let r = await record(phone);
    assert.deepEqual([r.fields.time_zone?.value, r.fields.time_zone?.source], ["Europe/Paris", "device-information"]);
    await answer(phone, "DeviceInformation", { QueryResponses: { TimeZone: "Europe/Atlantis", DeviceName: "Travelling phone" } });
    r = await record(phone);
    assert.equal(r.fields.time_zone.value, "Europe/Paris", "kept");
    assert.equal(r.fields.device_name.value, "Travelling phone", "the rest of the answer is learned");
    const listed = (await server.api("GET", `/v1/inventory?platform=iOS`)).json.devices;
    assert.equal(listed.find((d: { device_id: string }) => d.device_id === phone.udid).time_zone, "Europe/Paris");
    assert.equal((await record(mac)).fields.time_zone, undefined, "a Mac never reported one");
  });

  test("a SecurityInfo result moves its fields; a result of another command with the same keys does not", async () => {
    await answer(mac, "SecurityInfo", {
      SecurityInfo: { FDE_Enabled: true, FirewallSettings: { FirewallEnabled: false }, ManagementStatus: { EnrolledViaDEP: true } },
    });
    let r = await record(mac);
    assert.deepEqual(
      [r.fields.filevault_enabled, r.fields.firewall_enabled, r.fields.enrolled_via_dep].map((f) => [f.value, f.source]),
      [
        [true, "security-info"],
        [false, "security-info"],
        [true, "security-info"],
      ],
    );
    await answer(mac, "ProfileList", { QueryResponses: { OSVersion: "99.0" }, ProfileList: [] });
    r = await record(mac);
    assert.equal(r.fields.os_version.value, "14.7");
  });

  test("a DDM status report fills the record; a later one clears what the device says is gone; a repeat writes nothing", async () => {
    const report = {
      StatusItems: {
        device: { "operating-system": { version: "15.0", "build-version": "24A335", family: "macOS" }, model: { family: "Mac" } },
        softwareupdate: {
          "install-state": "downloading",
          "pending-version": { "os-version": "15.1", "build-version": "24B83" },
          "failure-reason": { count: 1, reason: "not enough space", timestamp: "2026-12-01T10:00:00Z" },
        },
        diskmanagement: { filevault: { enabled: false } },
        management: { "client-capabilities": { "supported-versions": ["1.0.0"], "supported-features": {} } },
      },
      Errors: [],
      FullReport: false,
    };
    assert.equal((await status(mac, report)).status, 200);
    let r = await record(mac);
    for (const [field, value] of [
      ["os_version", "15.0"],
      ["build_version", "24A335"],
      ["model_family", "Mac"],
      ["update_install_state", "downloading"],
      ["update_pending_version", "15.1"],
      ["update_failure_count", 1],
      ["update_failure_reason", "not enough space"],
      ["filevault_enabled", false],
    ] as const) {
      assert.deepEqual([field, r.fields[field]?.value, r.fields[field]?.source], [field, value, "ddm-status"]);
    }
    assert.deepEqual(r.fields.client_capabilities.value, { "supported-features": {}, "supported-versions": ["1.0.0"] });
    assert.equal(r.fields.platform.source, "authenticate", "the same platform: not learned again");

    const updatedAt = r.updated_at;
    assert.equal((await status(mac, report)).status, 200);
    assert.equal((await record(mac)).updated_at, updatedAt, "a repeated report writes nothing");

    const done = {
      StatusItems: { softwareupdate: { "install-state": "none", "failure-reason": { count: 0 } } },
      Errors: [],
      FullReport: false,
    };
    assert.equal((await status(mac, done)).status, 200);
    r = await record(mac);
    assert.equal(r.fields.update_install_state.value, "none");
    assert.equal(r.fields.update_failure_count.value, 0);
    assert.equal(r.fields.update_failure_reason, undefined, "no reason once the count is 0");
    assert.equal(r.fields.update_pending_version.value, "15.1", "pending-version was not in that report");
  });

  test("a status value its column cannot hold is left out, the report stored (never a 500)", async () => {
    for (const count of [1.5, 1e12, -1e12]) {
      const report = { StatusItems: { softwareupdate: { "failure-reason": { count, reason: "odd" } } }, Errors: [], FullReport: false };
      const r = await status(mac2, report);
      assert.equal(r.status, 200, `count ${count}: ${r.text}`);
      const rec = await record(mac2);
      assert.equal(rec.fields.update_failure_count, undefined, `count ${count} is not a count`);
      assert.equal(rec.fields.update_failure_reason.value, "odd");
    }
  });

  test("a user channel's status report does not move the device's fields", async () => {
    const report = { StatusItems: { device: { "operating-system": { version: "1.0" } } }, Errors: [], FullReport: false };
    assert.equal((await status(mac, report, true)).status, 200);
    assert.equal((await record(mac)).fields.os_version.value, "15.0");
  });

  test("the list filters by platform, model, OS version (exact and below), serial, user, last seen and update state", async () => {
    const all = [mac.udid, mac2.udid, phone.udid];
    assert.deepEqual(await list(""), all);
    assert.deepEqual(await list("platform=macOS"), [mac.udid, mac2.udid]);
    assert.deepEqual(await list("platform=iOS"), [phone.udid]);
    assert.deepEqual(await list("model=Mac15,3"), [mac2.udid]);
    assert.deepEqual(await list(`model=${encodeURIComponent("MacBook Air")}`), [mac.udid]);
    assert.deepEqual(await list("os_version=15.1"), [mac2.udid]);
    // The Fleet page counts a version as this list finds it: mac enrolled on 14.6 and has reported 15.0 since.
    assert.deepEqual(await list("os_version=15.0&platform=macOS"), [mac.udid]);
    const counts = await server.store.stats.osVersions(50);
    const macsOn = (v: string) => counts.find((c) => c.platform === "macOS" && c.osVersion === v)?.count ?? 0;
    assert.deepEqual([macsOn("14.6"), macsOn("15.0")], [0, 1]);
    // 9.3.2 is below 15 (compared number by number, not as text); 15.0 is not below 15.
    assert.deepEqual(await list("os_version_below=15"), [phone.udid]);
    assert.deepEqual(await list("os_version_below=15.1"), [mac.udid, phone.udid]);
    assert.deepEqual(await list("os_version_below=15.1&platform=macOS"), [mac.udid]);
    assert.deepEqual(await list("os_version_below=15.0.1"), [mac.udid, phone.udid], "15.0 is below 15.0.1");
    assert.deepEqual(await list("os_version_below=15.0"), [phone.udid], "15.0 is not below 15.0");
    assert.deepEqual(await list("serial=F2LPHONE0001"), [phone.udid]);
    assert.deepEqual(await list("user=dana"), [mac.udid]);
    assert.deepEqual(await list(`user=${USER.UserID}`), [mac.udid]);
    assert.deepEqual(await list("user=nobody"), []);
    assert.deepEqual(await list("update_state=none"), [mac.udid]);
    assert.deepEqual(await list("update_state=failed"), []);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    assert.deepEqual(await list(`last_seen_before=${future}`), all);
    assert.deepEqual(await list(`last_seen_after=${future}`), []);
    assert.deepEqual(await list("last_seen_after=2020-01-01T00:00:00Z"), all);

    const first = await server.api("GET", "/v1/inventory?limit=2");
    assert.deepEqual(
      first.json.devices.map((d: { device_id: string }) => d.device_id),
      [mac.udid, mac2.udid],
    );
    assert.equal(first.json.next_cursor, mac2.udid);
    const second = await server.api("GET", `/v1/inventory?limit=2&cursor=${first.json.next_cursor}`);
    assert.deepEqual(
      second.json.devices.map((d: { device_id: string }) => d.device_id),
      [phone.udid],
    );
    assert.equal(second.json.next_cursor, null);
    const row = first.json.devices[0];
    assert.equal(row.os_version, "15.0");
    assert.equal(row.imei, null);
    assert.equal(row.users[0].user_short_name, "dana");
  });

  test("bad filters are 400s that say what is wrong", async () => {
    for (const [query, message] of [
      ["platform=Linux", /platform must be one of/],
      ["os_version_below=fifteen", /os_version_below must be a version/],
      ["os_version=15.2.1.1.1", /os_version must be a version/],
      ["update_state=bogus", /update_state must be one of none, waiting/],
      ["last_seen_before=yesterday", /last_seen_before must be an RFC 3339 time/],
      ["last_seen_after=2026-13-45T99:00:00Z", /last_seen_after must be an RFC 3339 time/],
      ["last_seen_after=2026-02-30T00:00:00Z", /last_seen_after must be an RFC 3339 time .*names a day or time that does not exist/],
      ["os_versions=15", /unknown parameter "os_versions"/],
      ["limit=0", /limit must be/],
      [`serial=${"x".repeat(300)}`, /serial must be 1 to 256 characters/],
    ] as const) {
      const r = await server.api("GET", `/v1/inventory?${query}`);
      assert.equal(r.status, 400, `${query}: ${r.text}`);
      assert.equal(r.json.code, "invalid_parameter", query);
      assert.match(r.json.error, message, query);
    }
    assert.equal((await server.api("GET", "/v1/inventory?user=a%00b")).status, 400);
    assert.equal((await server.api("PUT", "/v1/inventory-subscriptions/Linux")).status, 400);
  });

  test("subscribing a platform assigns the built-in set to its devices now and as they enroll; unsubscribing takes it away", async () => {
    const sets = async (id: string) => (await server.api("GET", `/v1/enrollment-sets/${encodeURIComponent(id)}`)).json as string[];
    const put = await server.api("PUT", "/v1/inventory-subscriptions/macOS");
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.json, { platform: "macOS", set: "orchard.inventory.macOS", changed: true, enrollments: 2, assigned: 2 });
    assert.deepEqual(await sets(mac.udid), ["orchard.inventory.macOS"]);
    assert.deepEqual(await sets(mac2.udid), ["orchard.inventory.macOS"]);
    assert.deepEqual(await sets(phone.udid), []);
    assert.deepEqual(await sets(`${mac.udid}:${USER.UserID}`), [], "device channels only");

    const declaration = (await server.api("GET", "/v1/declarations/com.orchard.inventory.macOS.status-subscriptions")).json;
    assert.equal(declaration.Type, "com.apple.configuration.management.status-subscriptions");
    const items = declaration.Payload.StatusItems.map((i: { Name: string }) => i.Name);
    assert.ok(items.includes("softwareupdate.install-state") && items.includes("diskmanagement.filevault.enabled"), items.join());
    assert.ok(!items.includes("passcode.is-compliant"), "not a macOS status item");
    const listed = (await server.api("GET", "/v1/inventory-subscriptions")).json.subscriptions;
    assert.deepEqual(
      listed.map((s: { platform: string; set: string }) => [s.platform, s.set]),
      [["macOS", "orchard.inventory.macOS"]],
    );

    // Again: nothing new.
    const again = await server.api("PUT", "/v1/inventory-subscriptions/macOS");
    assert.deepEqual(again.json, { platform: "macOS", set: "orchard.inventory.macOS", changed: false, enrollments: 2, assigned: 0 });

    // A Mac that enrolls later gets the set with its first TokenUpdate, and is due for a sync.
    const late = new RawDevice(fleet.transport, await identity(fleet), `INV-${tag}-D-MAC`);
    await late.enroll({ ProductName: "Mac16,1", ModelName: "MacBook Pro", OSVersion: "15.2" });
    assert.deepEqual(await sets(late.udid), ["orchard.inventory.macOS"]);
    await eventually(async () => {
      const q = await server.api("GET", `/v1/queue/${late.udid}`);
      return q.json.commands.some((c: { request_type: string }) => c.request_type === "DeclarativeManagement") ? true : undefined;
    });
    const lateIphone = new RawDevice(fleet.transport, await identity(fleet), `INV-${tag}-E-PHONE`);
    await lateIphone.enroll({ ProductName: "iPhone16,1", OSVersion: "18.1" });
    assert.deepEqual(await sets(lateIphone.udid), []);

    const del = await server.api("DELETE", "/v1/inventory-subscriptions/macOS");
    assert.equal(del.status, 200, del.text);
    assert.deepEqual(del.json, { platform: "macOS", set: "orchard.inventory.macOS", changed: true, enrollments: 3, assigned: 3 });
    for (const d of [mac, mac2, late]) assert.deepEqual(await sets(d.udid), []);
    assert.deepEqual((await server.api("GET", "/v1/inventory-subscriptions")).json.subscriptions, []);
    const after = new RawDevice(fleet.transport, await identity(fleet), `INV-${tag}-F-MAC`);
    await after.enroll({ ProductName: "Mac16,1", OSVersion: "15.2" });
    assert.deepEqual(await sets(after.udid), []);
  });

  test("a device enrolled again (wiped, given to someone else) lists only the users enrolled since", async () => {
    assert.deepEqual(await list("user=dana"), [mac.udid]);
    await mac.enroll(MAC);
    assert.deepEqual((await record(mac)).users, [], "dana's channel ended with the old enrollment");
    assert.deepEqual(await list("user=dana"), []);
    assert.deepEqual(await list(`user=${USER.UserID}`), []);
    const eve = { UserID: "INV-USER-EVE", UserShortName: "eve", UserLongName: "Eve" };
    assert.equal((await mac.tokenUpdate(eve)).status, 200);
    assert.deepEqual(
      (await record(mac)).users.map((u: { user_short_name: string }) => u.user_short_name),
      ["eve"],
    );
    assert.deepEqual(await list("user=eve"), [mac.udid]);
    // dana logs in again: her channel is enrolled again, and she is a user once more.
    assert.equal((await mac.tokenUpdate(USER)).status, 200);
    assert.deepEqual(await list("user=dana"), [mac.udid]);
  });
});
