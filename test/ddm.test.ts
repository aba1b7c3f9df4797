// Declarative Device Management served natively, end to end on both stores:
// the KMFDDM-compatible API, the DeclarativeManagement command a change
// queues, a device (and a user channel) that syncs as Apple documents it, its
// status reports (real ones, test/fixtures/ddm/), and bad input.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parsePlistDict } from "../src/plist/index.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { eventually, identity, plist, RawDevice, rawPut, type RawReply } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const FIXTURES = fileURLToPath(new URL("./fixtures/ddm/", import.meta.url));
const report = (name: string) => fs.readFileSync(path.join(FIXTURES, name));

const CONFIG = {
  Type: "com.apple.configuration.management.test",
  Identifier: "com.example.test",
  Payload: { Echo: "hello", ReturnStatus: "Installed" },
};
const ACTIVATION = {
  Type: "com.apple.activation.simple",
  Identifier: "com.example.activation",
  Payload: { StandardConfigurations: ["com.example.test"] },
};
const USER_CONFIG = {
  Type: "com.apple.configuration.management.test",
  Identifier: "com.example.user-test",
  Payload: { Echo: "user" },
};
const USER = { UserID: "DDM-USER-GUID", UserShortName: "dana", UserLongName: "Dana" };

await forEachBackend("DDM natively", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  let dev: RawDevice;
  let userId: string;

  before(async () => {
    server = await startTestServer([], backend);
    fleet = await testFleet(server.url);
    dev = new RawDevice(fleet.transport, await identity(fleet), `DDM-${backend.toUpperCase()}-1`);
    await dev.enroll();
    assert.equal((await dev.tokenUpdate(USER)).status, 200);
    userId = `${dev.udid}:${USER.UserID}`;
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  const ddm = (endpoint: string, o: { data?: Buffer; user?: boolean } = {}): Promise<RawReply> =>
    dev.checkin("DeclarativeManagement", { Endpoint: endpoint, ...(o.data ? { Data: o.data } : {}), ...(o.user ? USER : {}) });
  const json = (r: RawReply) => {
    assert.equal(r.status, 200, r.text);
    assert.match(String(r.headers["content-type"]), /^application\/json/);
    return JSON.parse(r.text);
  };
  /** The channel's queued DeclarativeManagement commands, once every due sync is swept. */
  async function syncCommands(id: string): Promise<string[]> {
    await eventually(async () => ((await server.store.ddm.dueCount()) === 0 ? true : undefined), 15_000, "the DDM sync sweep");
    const q = await server.api("GET", `/v1/queue/${encodeURIComponent(id)}`);
    if (q.status === 404) return []; // no such enrollment (yet): nothing queued
    return q.json.commands
      .filter((c: { request_type: string }) => c.request_type === "DeclarativeManagement")
      .map((c: { command_uuid: string }) => c.command_uuid);
  }
  /** Answers every queued command (so the next sync's command is alone in the queue) and returns the DeclarativeManagement ones' Data. */
  async function drain(extra: Record<string, string> = {}): Promise<unknown[]> {
    const datas: unknown[] = [];
    let r = await dev.report("Idle", extra);
    while (r.status === 200 && r.body.length > 0) {
      const cmd = parsePlistDict(r.body);
      const command = cmd.Command as { RequestType: string; Data?: Buffer };
      if (command.RequestType === "DeclarativeManagement") datas.push(JSON.parse(command.Data!.toString("utf8")));
      r = await dev.report("Acknowledged", { CommandUUID: cmd.CommandUUID as string, ...extra });
    }
    return datas;
  }

  test("declarations and sets through KMFDDM's API: 204 for a change, 304 for none", async () => {
    assert.equal((await server.api("PUT", "/v1/declarations", CONFIG)).status, 204);
    assert.equal((await server.api("PUT", "/v1/declarations", CONFIG)).status, 304, "the same content again");
    // Key order and a ServerToken given are not content.
    const reordered = {
      ServerToken: "mine",
      Payload: { ReturnStatus: "Installed", Echo: "hello" },
      Identifier: CONFIG.Identifier,
      Type: CONFIG.Type,
    };
    assert.equal((await server.api("PUT", "/v1/declarations", reordered)).status, 304);
    assert.equal((await server.api("PUT", "/v1/declarations", ACTIVATION)).status, 204);
    assert.deepEqual((await server.api("GET", "/v1/declarations")).json, ["com.example.activation", "com.example.test"]);
    const got = await server.api("GET", "/v1/declarations/com.example.test");
    assert.equal(got.status, 200);
    assert.deepEqual({ ...got.json, ServerToken: undefined }, { ...CONFIG, ServerToken: undefined });
    assert.match(got.json.ServerToken, /^[0-9a-f]{32}$/);
    assert.notEqual(got.json.ServerToken, "mine");

    assert.equal((await server.api("PUT", "/v1/set-declarations/default?declaration=com.example.test")).status, 204);
    assert.equal((await server.api("PUT", "/v1/set-declarations/default?declaration=com.example.test")).status, 304);
    assert.equal((await server.api("PUT", "/v1/set-declarations/default?declaration=com.example.activation")).status, 204);
    assert.equal((await server.api("PUT", "/v1/set-declarations/default?declaration=com.example.nothing")).json.code, "invalid_parameter");
    assert.deepEqual((await server.api("GET", "/v1/sets")).json, ["default"]);
    assert.deepEqual((await server.api("GET", "/v1/set-declarations/default")).json, ["com.example.activation", "com.example.test"]);
    assert.deepEqual((await server.api("GET", "/v1/declaration-sets/com.example.test")).json, ["default"]);
    const inUse = await server.api("DELETE", "/v1/declarations/com.example.test");
    assert.equal(inUse.status, 409);
    assert.equal(inUse.json.code, "declaration_in_use");
    assert.equal((await server.api("DELETE", "/v1/declarations/com.example.never")).status, 304);
    // Nobody holds the set yet: no sync is owed.
    assert.equal(await server.store.ddm.dueCount(), 0);
  });

  test("assigning a set and changing it quickly queues ONE DeclarativeManagement command, its tokens in Data", async () => {
    assert.equal((await server.api("PUT", `/v1/enrollment-sets/${dev.udid}?set=default`)).status, 204);
    assert.equal((await server.api("PUT", `/v1/enrollment-sets/${dev.udid}?set=default`)).status, 304);
    assert.deepEqual((await server.api("GET", `/v1/enrollment-sets/${dev.udid}`)).json, ["default"]);
    assert.equal((await server.api("POST", "/v1/declarations/com.example.activation/touch")).status, 204);
    assert.equal((await server.api("PUT", "/v1/declarations", { ...CONFIG, Payload: { Echo: "hello again" } })).status, 204);
    assert.equal((await server.api("PUT", "/v1/declarations", CONFIG)).status, 204);
    assert.equal((await syncCommands(dev.udid)).length, 1);
    const [data] = await drain();
    const tokens = json(await ddm("tokens"));
    assert.deepEqual(data, tokens);
    assert.match(tokens.SyncTokens.Timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.match(tokens.SyncTokens.DeclarationsToken, /^[0-9a-f]{32}$/);
  });

  test("the device's full sync: tokens, declaration-items, each declaration", async () => {
    const tokens = json(await ddm("tokens"));
    const items = json(await ddm("declaration-items"));
    assert.equal(items.DeclarationsToken, tokens.SyncTokens.DeclarationsToken);
    const config = (await server.api("GET", "/v1/declarations/com.example.test")).json;
    const activation = (await server.api("GET", "/v1/declarations/com.example.activation")).json;
    assert.deepEqual(items.Declarations, {
      Activations: [{ Identifier: "com.example.activation", ServerToken: activation.ServerToken }],
      Configurations: [{ Identifier: "com.example.test", ServerToken: config.ServerToken }],
      Assets: [],
      Management: [],
    });
    assert.deepEqual(json(await ddm("declaration/configuration/com.example.test")), config);
    assert.deepEqual(json(await ddm("declaration/activation/com.example.activation")), activation);
    // The folder must be the declaration's kind; one not assigned is 404.
    assert.equal((await ddm("declaration/activation/com.example.test")).status, 404);
    assert.equal((await ddm("declaration/configuration/com.example.nothing")).status, 404);
  });

  test("a change makes a new ServerToken and DeclarationsToken; an unchanged PUT changes neither", async () => {
    const before = json(await ddm("tokens")).SyncTokens.DeclarationsToken;
    const token = (await server.api("GET", "/v1/declarations/com.example.test")).json.ServerToken;
    // declaration-items answers are kept by DeclarationsToken: each change shows at once, and going back gives the first answer.
    const configItem = async () => {
      const items = json(await ddm("declaration-items"));
      return [items.DeclarationsToken, items.Declarations.Configurations[0].ServerToken];
    };
    assert.deepEqual(await configItem(), [before, token]);
    assert.equal((await server.api("PUT", "/v1/declarations?nonotify=1", CONFIG)).status, 304);
    assert.equal(json(await ddm("tokens")).SyncTokens.DeclarationsToken, before);
    assert.equal((await server.api("GET", "/v1/declarations/com.example.test")).json.ServerToken, token);

    assert.equal((await server.api("PUT", "/v1/declarations?nonotify=1", { ...CONFIG, Payload: { Echo: "changed" } })).status, 204);
    const changed = (await server.api("GET", "/v1/declarations/com.example.test")).json.ServerToken;
    assert.notEqual(changed, token);
    const changedTokens = json(await ddm("tokens")).SyncTokens.DeclarationsToken;
    assert.notEqual(changedTokens, before);
    assert.deepEqual(await configItem(), [changedTokens, changed]);
    assert.deepEqual(await syncCommands(dev.udid), [], "nonotify: nothing queued");
    // Back to the first content: the first tokens again.
    assert.equal((await server.api("PUT", "/v1/declarations?nonotify=1", CONFIG)).status, 204);
    assert.equal((await server.api("GET", "/v1/declarations/com.example.test")).json.ServerToken, token);
    assert.equal(json(await ddm("tokens")).SyncTokens.DeclarationsToken, before);
    assert.deepEqual(await configItem(), [before, token]);
  });

  test("status reports (real ones): stored, merged, replaced by a FullReport, seen through the API and events", async () => {
    // Only declarations in the channel's sets keep a status: the ones these real reports name, but the last,
    // which Orchard stores for no set of this device.
    const reported = [
      "49F6F16A-70EB-4A89-B092-465FAEC5E550",
      "0FCD2F56-D5BC-48EA-B98D-E0CCC0C6F9E0",
      "4D6F8451-C089-4E65-A615-7C6EFF154F72",
      "85B5130A-4D0D-462B-AA0D-0C3B6630E5AA",
      "AF0E633E-7ADB-4B2A-A48C-1B20AA271D08",
      "B7B9C4D0-5A0B-4B8E-9E4F-3C1D2E6F7A80",
    ];
    for (const identifier of reported) {
      assert.equal((await server.api("PUT", "/v1/declarations?nonotify=1", { ...CONFIG, Identifier: identifier })).status, 204);
    }
    for (const identifier of reported.slice(0, 5)) {
      assert.equal((await server.api("PUT", `/v1/set-declarations/real-reports?declaration=${identifier}&nonotify=1`)).status, 204);
    }
    assert.equal((await server.api("PUT", `/v1/enrollment-sets/${dev.udid}?set=real-reports&nonotify=1`)).status, 204);
    assert.equal((await ddm("status", { data: report("status.1st.json") })).status, 200);
    const values = (await server.api("GET", `/v1/status-values/${dev.udid}?prefix=.StatusItems.device.operating-system.`)).json[dev.udid];
    assert.deepEqual(
      values.map((v: { path: string; value: string }) => [v.path, v.value]),
      [
        [".StatusItems.device.operating-system.build-version", "22E261"],
        [".StatusItems.device.operating-system.family", "macOS"],
        [".StatusItems.device.operating-system.supplemental.extra-version", "(a)"],
        [".StatusItems.device.operating-system.version", "13.3.1"],
      ],
    );
    // The same report also names the sixth, as a management declaration: dropped, whatever kind the device says.
    const withForeign = JSON.parse(report("status.ios16-errors.json").toString());
    withForeign.StatusItems.management.declarations.management.push({
      identifier: reported[5],
      active: true,
      valid: "valid",
      "server-token": "forged",
    });
    assert.equal((await ddm("status", { data: Buffer.from(JSON.stringify(withForeign)) })).status, 200);
    assert.ok(server.logs.some((l) => l.includes("DDM status report stored") && l.includes('"unknownDeclarations":1')));
    const status = (await server.api("GET", `/v1/declaration-status/${dev.udid}`)).json[dev.udid];
    assert.equal(status.length, 5);
    assert.ok(!status.some((s: { identifier: string }) => s.identifier === reported[5]));
    const invalid = status.filter((s: { valid: string }) => s.valid === "invalid");
    assert.deepEqual(
      invalid.map((s: { identifier: string; active: boolean; current: boolean }) => [s.identifier, s.active, s.current]),
      [
        ["0FCD2F56-D5BC-48EA-B98D-E0CCC0C6F9E0", true, false],
        ["4D6F8451-C089-4E65-A615-7C6EFF154F72", true, false],
      ],
    );
    assert.equal(invalid[0].reasons[0].code, "Error.ConfigurationCannotBeApplied");
    const errors = (await server.api("GET", `/v1/status-errors/${dev.udid}`)).json[dev.udid];
    assert.equal(errors.length, 2);
    assert.equal(errors[0].path, ".StatusItems.management.declarations.configurations");
    // Merged: the first report's values are still there.
    const merged = (await server.api("GET", `/v1/status-values/${dev.udid}?prefix=.StatusItems.device.model.%25`)).json[dev.udid];
    assert.deepEqual(
      merged.map((v: { path: string }) => v.path),
      [".StatusItems.device.model.family", ".StatusItems.device.model.identifier", ".StatusItems.device.model.marketing-name"],
    );
    const raw = await server.api("GET", `/v1/status-report/${dev.udid}?index=0`);
    assert.deepEqual(raw.json, withForeign, "the raw report is kept as sent");
    assert.equal((await server.api("GET", `/v1/status-report/${dev.udid}?index=1`)).json.StatusItems.device.model.family, "Mac");
    assert.equal((await server.api("GET", `/v1/status-report/${dev.udid}?index=9`)).status, 404);

    // Orchard's declaration reported active and valid with its current token, as a FullReport.
    const token = (await server.api("GET", "/v1/declarations/com.example.test")).json.ServerToken;
    const full = {
      StatusItems: {
        management: {
          declarations: {
            activations: [],
            configurations: [{ identifier: "com.example.test", active: true, valid: "valid", "server-token": token }],
            assets: [],
            management: [],
          },
        },
        device: { "operating-system": { version: "14.6" } },
      },
      Errors: [{ StatusItem: "test.error-value", Reasons: [{ Code: "Error.Test", Description: "a test error" }] }],
      FullReport: true,
    };
    assert.equal((await ddm("status", { data: Buffer.from(JSON.stringify(full)) })).status, 200);
    const replaced = (await server.api("GET", `/v1/declaration-status/${dev.udid}`)).json[dev.udid];
    assert.deepEqual(
      replaced.map((s: { identifier: string; current: boolean; valid: string }) => [s.identifier, s.valid, s.current]),
      [["com.example.test", "valid", true]],
    );
    const after = (await server.api("GET", `/v1/status-values/${dev.udid}`)).json[dev.udid];
    assert.deepEqual(
      after.map((v: { path: string; value: string }) => [v.path, v.value]),
      [[".StatusItems.device.operating-system.version", "14.6"]],
    );

    const compliance = await server.api("GET", "/v1/set-compliance/default");
    assert.equal(compliance.status, 200);
    assert.deepEqual(compliance.json, {
      set: "default",
      enrollments: 1,
      declarations: [
        {
          identifier: "com.example.activation",
          server_token: compliance.json.declarations[0].server_token,
          compliant: 0,
          failing: 0,
          pending: 1,
        },
        { identifier: "com.example.test", server_token: token, compliant: 1, failing: 0, pending: 0 },
      ],
    });

    const events = (await server.api("GET", `/v1/events?enrollment=${dev.udid}&type=ddm.declaration_status_changed`)).json.events;
    const ours = events.filter((e: { detail: { identifier: string } }) => e.detail.identifier === "com.example.test");
    assert.equal(ours.length, 1);
    assert.deepEqual(
      { ...ours[0].detail, status_id: undefined },
      {
        identifier: "com.example.test",
        kind: "configuration",
        server_token: token,
        active: true,
        valid: "valid",
        previous_active: null,
        previous_valid: null,
        reason_codes: [],
        status_id: undefined,
      },
    );
    const invalidEvent = events.find(
      (e: { detail: { identifier: string } }) => e.detail.identifier === "4D6F8451-C089-4E65-A615-7C6EFF154F72",
    );
    assert.deepEqual(invalidEvent.detail.reason_codes, ["Error.ConfigurationCannotBeApplied"]);
    const errorEvents = (await server.api("GET", `/v1/events?enrollment=${dev.udid}&type=ddm.status_errors`)).json.events;
    assert.deepEqual(
      errorEvents.map((e: { detail: { count: number; status_items: string[] } }) => [e.detail.count, e.detail.status_items]),
      [[1, ["test.error-value"]]],
    );
    // The same report again changes no declaration's state: no new event.
    assert.equal((await ddm("status", { data: Buffer.from(JSON.stringify(full)) })).status, 200);
    const again = (await server.api("GET", `/v1/events?enrollment=${dev.udid}&type=ddm.declaration_status_changed`)).json.events;
    assert.equal(again.length, events.length);
    assert.equal((await server.api("DELETE", `/v1/enrollment-sets/${dev.udid}?set=real-reports&nonotify=1`)).status, 204);
  });

  test("a user channel has its own sets, tokens, declarations and status", async () => {
    assert.equal((await server.api("PUT", "/v1/declarations", USER_CONFIG)).status, 204);
    assert.equal((await server.api("PUT", "/v1/set-declarations/users?declaration=com.example.user-test")).status, 204);
    await drain();
    assert.equal((await server.api("PUT", `/v1/enrollment-sets/${encodeURIComponent(userId)}?set=users`)).status, 204);
    assert.equal((await syncCommands(userId)).length, 1);
    assert.deepEqual(await syncCommands(dev.udid), [], "the device channel's declarations did not change");

    const userTokens = json(await ddm("tokens", { user: true }));
    assert.notEqual(userTokens.SyncTokens.DeclarationsToken, json(await ddm("tokens")).SyncTokens.DeclarationsToken);
    const items = json(await ddm("declaration-items", { user: true }));
    assert.deepEqual(
      items.Declarations.Configurations.map((i: { Identifier: string }) => i.Identifier),
      ["com.example.user-test"],
    );
    assert.deepEqual(items.Declarations.Activations, []);
    assert.equal(json(await ddm("declaration/configuration/com.example.user-test", { user: true })).Payload.Echo, "user");
    assert.equal((await ddm("declaration/configuration/com.example.user-test")).status, 404, "not the device channel's");
    assert.equal((await ddm("declaration/configuration/com.example.test", { user: true })).status, 404, "not the user channel's");

    // A report naming the device channel's declaration (com.example.test) keeps nothing on the user channel; its own is kept.
    assert.equal((await ddm("status", { user: true, data: report("status.D0.error.json") })).status, 200);
    const own = Buffer.from(report("status.D0.error.json").toString().replaceAll("com.example.test", "com.example.user-test"));
    assert.equal((await ddm("status", { user: true, data: own })).status, 200);
    const both = (await server.api("GET", `/v1/declaration-status/${dev.udid},${encodeURIComponent(userId)}`)).json;
    assert.deepEqual(Object.keys(both), [dev.udid, userId]);
    assert.deepEqual(
      both[userId].map((s: { identifier: string; active: boolean }) => [s.identifier, s.active]),
      [["com.example.user-test", false]],
    );
    assert.equal(both[dev.udid].length, 1);

    // Removing every set of the channel syncs it to an empty set.
    assert.equal((await server.api("DELETE", `/v1/enrollment-sets-all/${encodeURIComponent(userId)}`)).status, 204);
    assert.equal((await server.api("DELETE", `/v1/enrollment-sets-all/${encodeURIComponent(userId)}`)).status, 304);
    assert.equal((await syncCommands(userId)).length, 1, "the newer sync replaced the one waiting");
    const empty = json(await ddm("declaration-items", { user: true }));
    assert.deepEqual(empty.Declarations, { Activations: [], Configurations: [], Assets: [], Management: [] });
  });

  test("a status report on a user channel that never enrolled is refused (403) and nothing of it is stored", async () => {
    const phantom = { UserID: `PHANTOM-${randomUUID()}`, UserShortName: "ghost" };
    const id = `${dev.udid}:${phantom.UserID}`;
    const data = Buffer.from(
      JSON.stringify({ StatusItems: { device: { "operating-system": { version: "99.0" } } }, Errors: [], FullReport: true }),
    );
    const r = await dev.checkin("DeclarativeManagement", { Endpoint: "status", Data: data, ...phantom });
    assert.equal(r.status, 403, r.text);
    assert.match(r.text, /not enrolled/);
    for (const table of ["ddm_status_values", "ddm_status_declarations", "ddm_status_report_ring"]) {
      assert.equal(await server.store.db.get(`SELECT 1 AS x FROM ${table} WHERE enrollment_id = ?`, [id]), undefined, table);
    }
    // Reading is harmless and stays open: an unknown channel holds no sets.
    const tokens = await dev.checkin("DeclarativeManagement", { Endpoint: "declaration-items", ...phantom });
    assert.deepEqual(json(tokens).Declarations, { Activations: [], Configurations: [], Assets: [], Management: [] });
  });

  test("notify and touch queue a sync; a set change reaches every channel holding it", async () => {
    await drain();
    await drain(USER);
    assert.equal((await server.api("POST", `/v1/notify?id=${dev.udid}&id=NO-SUCH-ENROLLMENT`)).status, 204);
    const first = await syncCommands(dev.udid);
    assert.equal(first.length, 1);
    // Another sync while the first waits unsent: the newer replaces it.
    assert.equal((await server.api("POST", `/v1/notify?set=default`)).status, 204);
    const second = await syncCommands(dev.udid);
    assert.equal(second.length, 1);
    assert.notEqual(second[0], first[0]);
    await drain();
    assert.equal((await server.api("POST", "/v1/declarations/com.example.test/touch")).status, 204);
    assert.equal((await server.api("POST", "/v1/declarations/com.example.nothing/touch")).status, 404);
    assert.equal((await syncCommands(dev.udid)).length, 1);
    await drain();
    assert.equal((await server.api("DELETE", "/v1/set-declarations/default?declaration=com.example.activation")).status, 204);
    assert.equal((await server.api("DELETE", "/v1/set-declarations/default?declaration=com.example.activation")).status, 304);
    assert.equal((await syncCommands(dev.udid)).length, 1);
    assert.equal(json(await ddm("declaration-items")).Declarations.Activations.length, 0);
  });

  test("a set assigned to an id before it enrolls: its first TokenUpdate makes it due", async () => {
    const later = new RawDevice(fleet.transport, await identity(fleet), `DDM-${backend.toUpperCase()}-LATER`);
    assert.equal((await server.api("PUT", `/v1/enrollment-sets/${later.udid}?set=default`)).status, 204);
    assert.deepEqual(await syncCommands(later.udid), [], "not enrolled: nothing to queue");
    await later.enroll();
    assert.equal((await syncCommands(later.udid)).length, 1);
    const r = await later.report("Idle");
    const command = parsePlistDict(r.body).Command as { RequestType: string; Data: Buffer };
    assert.equal(command.RequestType, "DeclarativeManagement");
    const tokens = JSON.parse(command.Data.toString("utf8"));
    assert.equal(
      tokens.SyncTokens.DeclarationsToken,
      json(await ddm("tokens")).SyncTokens.DeclarationsToken,
      "the same sets as the first device",
    );
  });

  test("a status report whose dotted key and nested path collide: the last one is kept", async () => {
    const r = await ddm("status", {
      data: Buffer.from('{"StatusItems":{"collide":{"a.b":1,"a":{"b":2}},"collide2":{"c":{"d":3},"c.d":4}}}'),
    });
    assert.equal(r.status, 200, r.text);
    const values = (await server.api("GET", `/v1/status-values/${dev.udid}?prefix=.StatusItems.collide`)).json[dev.udid];
    assert.deepEqual(
      values.map((v: { path: string; value: string }) => [v.path, v.value]),
      [
        [".StatusItems.collide.a.b", "2"],
        [".StatusItems.collide2.c.d", "4"],
      ],
    );
  });

  test("status-values: a prefix of many % is matched without backtracking, with LIKE's answers", async () => {
    const key = `many-a-${"a".repeat(300)}`;
    assert.equal((await ddm("status", { data: Buffer.from(JSON.stringify({ StatusItems: { [key]: "v" } })) })).status, 200);
    const values = async (prefix: string) =>
      (await server.api("GET", `/v1/status-values/${dev.udid}?prefix=${encodeURIComponent(prefix)}`)).json[dev.udid].map(
        (v: { path: string }) => v.path,
      );
    // A backtracking regular expression (^.*a.*a...b) would not answer this one within the test's life.
    assert.deepEqual(await values(`.StatusItems.many-${"%a".repeat(30)}%b`), []);
    assert.deepEqual(await values(`.StatusItems.many-${"%a".repeat(30)}`), [`.StatusItems.${key}`]);
    assert.deepEqual(await values(`%%%.many_a-a%%`), [`.StatusItems.${key}`]);
  });

  test("one report cannot write thousands of rows: declarations Orchard does not store are not kept", async () => {
    const madeUp = Array.from({ length: 999 }, (_, i) => ({
      identifier: `made-up-${i}`,
      active: false,
      valid: "invalid",
      "server-token": "",
    }));
    const known = { identifier: "com.example.test", active: true, valid: "valid", "server-token": "amplify" };
    const errors = Array.from({ length: 100 }, (_, i) => ({ StatusItem: `x${i}` }));
    const count = async (table: string) =>
      Number((await server.store.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} WHERE enrollment_id = ?`, [dev.udid]))!.n);
    const [declarationsBefore, errorsBefore, eventsBefore] = [
      await count("ddm_status_declarations"),
      await count("ddm_status_errors"),
      await count("events"),
    ];
    const data = { StatusItems: { management: { declarations: { configurations: [...madeUp, known] } } }, Errors: errors };
    const r = await ddm("status", { data: Buffer.from(JSON.stringify(data)) });
    assert.equal(r.status, 200, r.text);
    assert.ok((await count("ddm_status_declarations")) - declarationsBefore <= 1, "only com.example.test");
    assert.equal((await count("ddm_status_errors")) - errorsBefore, 100, "the report's errors, none for made-up declarations");
    assert.ok((await count("events")) - eventsBefore <= 3, "no event per made-up declaration");
    const status = (await server.api("GET", `/v1/declaration-status/${dev.udid}`)).json[dev.udid];
    assert.ok(!status.some((s: { identifier: string }) => s.identifier.startsWith("made-up-")));
    assert.ok(server.logs.some((l) => l.includes("DDM status report stored") && l.includes('"unknownDeclarations":999')));
  });

  test("bad declarations from the operator: 400 invalid_declaration, nothing stored", async () => {
    const before = await server.api("GET", "/v1/declarations");
    const cases: Array<[string, string | object, RegExp]> = [
      ["NUL in Type", { Type: "com.apple.configuration.zz\u0000", Identifier: "bad.nul", Payload: {} }, /NUL/],
      ["NUL in a Payload key", { Type: CONFIG.Type, Identifier: "bad.nul-key", Payload: { "a\u0000": 1 } }, /NUL/],
      [
        "a lone surrogate in a Payload string",
        { Type: CONFIG.Type, Identifier: "bad.surrogate", Payload: { Echo: "\ud800" } },
        /lone surrogate/,
      ],
      [
        "a Type of 300 characters",
        { Type: `com.apple.configuration.${"z".repeat(300)}`, Identifier: "bad.long", Payload: {} },
        /Type is longer than 256/,
      ],
      [
        "a Payload nesting 200,000 arrays",
        `{"Type":"com.apple.configuration.zz.deep","Identifier":"bad.deep","Payload":{"a":${"[".repeat(200_000)}${"]".repeat(200_000)}}}`,
        /deeper than 32 levels/,
      ],
      [
        "a Payload nesting 40 objects",
        `{"Type":"com.apple.configuration.zz.deep","Identifier":"bad.deep2","Payload":${'{"a":'.repeat(40)}1${"}".repeat(40)}}`,
        /deeper than 32 levels/,
      ],
    ];
    for (const [what, body, reason] of cases) {
      const r = await server.api("PUT", "/v1/declarations", body);
      assert.equal(r.status, 400, `${what}: ${r.text.slice(0, 300)}`);
      assert.equal(r.json.code, "invalid_declaration", what);
      assert.match(r.json.error, reason, what);
    }
    assert.deepEqual((await server.api("GET", "/v1/declarations")).json, before.json);
  });

  test("bad input from the device: a 4xx with the reason, a log line, nothing stored", async () => {
    await drain();
    const snapshot = async () => {
      const out: Record<string, unknown> = {};
      for (const t of [
        "ddm_status_declarations",
        "ddm_status_values",
        "ddm_status_errors",
        "ddm_status_report_ring",
        "ddm_status_channels",
        "ddm_sync_due",
        "events",
        "command_queue",
      ]) {
        out[t] = await server.store.db.all(`SELECT * FROM ${t} ORDER BY 1, 2`);
      }
      return out;
    };
    const before = await snapshot();
    const logged = server.logs.length;
    const cases: Array<[string, () => Promise<RawReply>, number, RegExp]> = [
      ["unknown endpoint", () => ddm("configurations"), 400, /unknown DeclarativeManagement Endpoint/],
      ["../ in a declaration path", () => ddm("declaration/configuration/../../tokens"), 400, /not a valid path/],
      ["an unknown declaration folder", () => ddm("declaration/profile/com.example.test"), 400, /no declaration kind/],
      ["status without Data", () => ddm("status"), 400, /without Data/],
      ["invalid JSON", () => ddm("status", { data: Buffer.from("{not json") }), 400, /not JSON/],
      ["not UTF-8", () => ddm("status", { data: Buffer.from([0x7b, 0xff, 0x7d]) }), 400, /not JSON/],
      ["JSON without StatusItems", () => ddm("status", { data: Buffer.from("[]") }), 400, /not a JSON object/],
      [
        "a declaration status without its token",
        () =>
          ddm("status", {
            data: Buffer.from(
              '{"StatusItems":{"management":{"declarations":{"configurations":[{"identifier":"x","active":true,"valid":"valid"}]}}},"Errors":[]}',
            ),
          }),
        400,
        /server-token/,
      ],
      ["a huge Data", () => ddm("status", { data: Buffer.alloc(600 * 1024, 0x20) }), 413, /larger than/],
      [
        "1,001 declarations",
        () => {
          const d = Array.from({ length: 1001 }, (_, i) => ({ identifier: `d${i}`, active: false, valid: "unknown", "server-token": "" }));
          return ddm("status", {
            data: Buffer.from(JSON.stringify({ StatusItems: { management: { declarations: { configurations: d } } } })),
          });
        },
        400,
        /more than 1000 declarations/,
      ],
      [
        "101 Errors",
        () =>
          ddm("status", {
            data: Buffer.from(JSON.stringify({ StatusItems: {}, Errors: Array.from({ length: 101 }, () => ({ StatusItem: "x" })) })),
          }),
        400,
        /more than 100 Errors/,
      ],
      [
        "a value nesting 200,000 arrays",
        () => ddm("status", { data: Buffer.from(`{"StatusItems":{"x":${"[".repeat(200_000)}${"]".repeat(200_000)}}}`) }),
        400,
        /deeper than 32 levels/,
      ],
      [
        "reasons nesting 40 objects",
        () =>
          ddm("status", {
            data: Buffer.from(
              `{"StatusItems":{"management":{"declarations":{"configurations":[{"identifier":"x","active":true,"valid":"invalid","server-token":"t","reasons":[${'{"a":'.repeat(40)}1${"}".repeat(40)}]}]}}}}`,
            ),
          }),
        400,
        /deeper than 32 levels/,
      ],
      ["NUL in a key", () => ddm("status", { data: Buffer.from('{"StatusItems":{"x\\u0000y":1}}') }), 400, /NUL/],
      [
        "NUL in a declaration identifier",
        () =>
          ddm("status", {
            data: Buffer.from(
              '{"StatusItems":{"management":{"declarations":{"configurations":[{"identifier":"a\\u0000","active":true,"valid":"valid","server-token":"x"}]}}}}',
            ),
          }),
        400,
        /NUL/,
      ],
      [
        "NUL in an error's StatusItem",
        () => ddm("status", { data: Buffer.from('{"StatusItems":{},"Errors":[{"StatusItem":"a\\u0000"}]}') }),
        400,
        /NUL/,
      ],
      ["a lone surrogate in a value", () => ddm("status", { data: Buffer.from('{"StatusItems":{"x":"\\ud800"}}') }), 400, /lone surrogate/],
      [
        "bad base64 in Data",
        () =>
          rawPut(
            fleet.transport,
            "/checkin",
            Buffer.from(
              plist({ MessageType: "DeclarativeManagement", UDID: dev.udid, Endpoint: "status", Data: Buffer.from("x") })
                .toString()
                .replace(/<data>[^<]*<\/data>/, "<data>!!not base64!!</data>"),
            ),
            { auth: { kind: "header", identity: dev.identity } },
          ),
        400,
        /base64|plist/i,
      ],
    ];
    for (const [what, send, status, reason] of cases) {
      const r = await send();
      assert.equal(r.status, status, `${what}: ${r.text}`);
      assert.match(r.text, reason, what);
    }
    assert.deepEqual(await snapshot(), before);
    const refusals = server.logs.slice(logged).filter((l) => /device request refused/.test(l));
    assert.equal(refusals.length, cases.length);
  });
});
