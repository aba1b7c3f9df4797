// Every malformed or refused device request gets its 4xx with a reason and
// leaves every table exactly as it was.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import {
  CHECKIN_TYPE,
  COMMAND_TYPE,
  commandPlist,
  dumpStore,
  identity,
  plist,
  rawPut,
  RawDevice,
  sleep,
  type Auth,
} from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

await forEachBackend("bad input", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  let dev: RawDevice;
  let auth: Auth;
  let baseline: Record<string, unknown[]>;
  const USER = { UserID: "USER-GUID-1", UserShortName: "jane", UserLongName: "Jane" };
  const statuses: number[] = [];

  before(async () => {
    server = await startTestServer([], backend);
    fleet = await testFleet(server.url);
    dev = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await dev.enroll();
    assert.equal((await dev.tokenUpdate(USER)).status, 200);
    // Straight into the store: a check-in here would leave a last-seen write pending.
    await server.store.enrollments.setBootstrapToken(dev.udid, Buffer.from("bootstrap"));
    assert.equal(
      (await server.api("PUT", `/v1/enqueue/${dev.udid}?nopush=1`, commandPlist("DeviceInformation", "BAD-INPUT-CMD"))).status,
      200,
    );
    auth = { kind: "header", identity: dev.identity };
    // The last-seen times of Authenticate and TokenUpdate equal what TokenUpdate
    // stored, so a pending flush cannot change this baseline.
    baseline = await dumpStore(server.store);
    assert.ok(baseline.devices!.length === 1 && baseline.enrollments!.length === 2 && baseline.command_queue!.length === 1);
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  interface Case {
    body: Buffer | string;
    path?: string;
    contentType?: string | null;
    status?: number;
    reason: RegExp;
    auth?: Auth;
  }

  async function refused(c: Case): Promise<void> {
    const body = typeof c.body === "string" ? Buffer.from(c.body) : c.body;
    const r = await rawPut(fleet.transport, c.path ?? "/checkin", body, {
      auth: c.auth ?? auth,
      contentType: c.contentType === undefined ? CHECKIN_TYPE : c.contentType,
    });
    statuses.push(r.status);
    assert.equal(r.status, c.status ?? 400, `${r.status} ${r.text}`);
    assert.match(r.text, c.reason);
    assert.deepEqual(await dumpStore(server.store), baseline, "the store is unchanged");
  }

  const checkin = (fields: Record<string, any>) => plist({ UDID: dev.udid, ...fields });
  const report = (fields: Record<string, any>) => plist({ UDID: dev.udid, ...fields });
  const xml = (inner: string) => `<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">${inner}</plist>\n`;

  describe("check-in messages", () => {
    test("unknown or missing MessageType", async () => {
      await refused({ body: checkin({ MessageType: "Bogus" }), reason: /^unknown MessageType "Bogus"\n$/ });
      await refused({ body: checkin({ MessageType: 7 }), reason: /no MessageType/ });
      await refused({ body: checkin({ Topic: "t" }), reason: /no MessageType/ });
    });

    test("missing required keys", async () => {
      const tu = { MessageType: "TokenUpdate", Topic: "t", Token: Buffer.alloc(32, 1), PushMagic: "m" };
      for (const key of ["Token", "PushMagic", "Topic"]) {
        const fields: Record<string, any> = { ...tu };
        delete fields[key];
        await refused({ body: checkin(fields), reason: new RegExp(`^TokenUpdate without ${key}\\n$`) });
      }
      await refused({ body: checkin({ MessageType: "Authenticate", SerialNumber: "S" }), reason: /^Authenticate without Topic/ });
      await refused({ body: checkin({ MessageType: "GetToken" }), reason: /^GetToken without TokenServiceType/ });
      await refused({ body: checkin({ MessageType: "DeclarativeManagement" }), reason: /^DeclarativeManagement without Endpoint/ });
    });

    test("a TokenUpdate with an empty Topic or PushMagic, or a Token shorter than an APNs token (32 bytes)", async () => {
      const tu = { MessageType: "TokenUpdate", Topic: "com.apple.mgmt.External.test", Token: Buffer.alloc(32, 1), PushMagic: "m" };
      await refused({ body: checkin({ ...tu, Topic: "" }), reason: /^TokenUpdate with an empty Topic\n$/ });
      await refused({ body: checkin({ ...tu, PushMagic: "" }), reason: /^TokenUpdate with an empty PushMagic\n$/ });
      for (const size of [0, 1, 16, 31]) {
        const reason = new RegExp(`^TokenUpdate Token is ${size} bytes; an APNs device token has 32\\n$`);
        await refused({ body: checkin({ ...tu, Token: Buffer.alloc(size, 2) }), reason });
        await refused({ body: checkin({ ...tu, ...USER, Token: Buffer.alloc(size, 2) }), reason: /^TokenUpdate Token is \d+ bytes/ });
      }
      await refused({ body: checkin({ ...tu, ...USER, PushMagic: "" }), reason: /^TokenUpdate with an empty PushMagic/ });
      const emptyTopic = checkin({ MessageType: "Authenticate", Topic: "", SerialNumber: "S" });
      await refused({ body: emptyTopic, reason: /^Authenticate with an empty Topic/ });
    });

    test("keys of the wrong type", async () => {
      const tu = { MessageType: "TokenUpdate", Topic: "t", Token: Buffer.alloc(32, 1), PushMagic: "m" };
      await refused({ body: checkin({ ...tu, Token: "abcd" }), reason: /^Token is not a data/ });
      await refused({ body: checkin({ ...tu, Topic: 12 }), reason: /^Topic is not a string/ });
      await refused({ body: checkin({ ...tu, PushMagic: Buffer.from("m") }), reason: /^PushMagic is not a string/ });
      await refused({ body: checkin({ ...tu, UnlockToken: "u" }), reason: /^UnlockToken is not a data/ });
      await refused({ body: checkin({ ...tu, AwaitingConfiguration: "true" }), reason: /^AwaitingConfiguration is not a boolean/ });
      await refused({ body: checkin({ ...tu, ...USER, UserLongName: ["x"] }), reason: /^UserLongName is not a string/ });
      await refused({
        body: checkin({ MessageType: "SetBootstrapToken", BootstrapToken: "text" }),
        reason: /^BootstrapToken is not a data/,
      });
      await refused({
        body: checkin({ MessageType: "Authenticate", Topic: "t", SerialNumber: 5 }),
        reason: /^SerialNumber is not a string/,
      });
      await refused({ body: plist({ MessageType: "Authenticate", Topic: "t", UDID: 42 }), reason: /^UDID is not a string/ });
      await refused({ body: checkin({ ...tu, UserID: true }), reason: /^UserID is not a string/ });
      await refused({
        body: checkin({ MessageType: "GetToken", TokenServiceType: "com.apple.maid", TokenParameters: "p" }),
        reason: /^TokenParameters is not a dict/,
      });
    });

    test("no UDID or EnrollmentID, both, or ids with forbidden characters", async () => {
      await refused({ body: plist({ MessageType: "Authenticate", Topic: "t" }), reason: /^message has neither UDID nor EnrollmentID/ });
      await refused({ body: plist({ MessageType: "Authenticate", Topic: "t", UDID: "" }), reason: /neither UDID nor EnrollmentID/ });
      await refused({
        body: checkin({ MessageType: "Authenticate", Topic: "t", EnrollmentID: "E1" }),
        reason: /^message carries both UDID and EnrollmentID/,
      });
      await refused({
        body: plist({ MessageType: "Authenticate", Topic: "t", UDID: "A:B" }),
        reason: /^UDID contains a character not allowed/,
      });
      await refused({
        body: plist({ MessageType: "Authenticate", Topic: "t", UDID: "A/B" }),
        reason: /^UDID contains a character not allowed/,
      });
      await refused({
        body: plist({ MessageType: "Authenticate", Topic: "t", UDID: "x".repeat(300) }),
        reason: /^UDID is longer than 256/,
      });
      const tu = { MessageType: "TokenUpdate", Topic: "t", Token: Buffer.alloc(32, 1), PushMagic: "m" };
      await refused({ body: checkin({ ...tu, UserID: "U,2" }), reason: /^UserID contains a character not allowed/ });
      await refused({
        body: checkin({ ...tu, UserID: "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF" }),
        reason: /^Shared iPad user channel without UserShortName/,
      });
    });

    test("device channel messages on a user channel", async () => {
      await refused({
        body: checkin({ MessageType: "Authenticate", Topic: "t", ...USER }),
        reason: /^Authenticate is a device channel message but came on a user channel/,
      });
      await refused({ body: checkin({ MessageType: "CheckOut", ...USER }), reason: /^CheckOut is a device channel message/ });
      await refused({
        body: checkin({ MessageType: "SetBootstrapToken", ...USER }),
        reason: /^SetBootstrapToken is a device channel message/,
      });
      await refused({
        body: checkin({ MessageType: "GetBootstrapToken", ...USER }),
        reason: /^GetBootstrapToken is a device channel message/,
      });
    });

    test("bootstrap token and return to service are not part of User Enrollment", async () => {
      for (const type of ["SetBootstrapToken", "GetBootstrapToken", "ReturnToService"]) {
        await refused({
          body: plist({ MessageType: type, EnrollmentID: "SOME-USER-ENROLLMENT" }),
          reason: new RegExp(`^${type} is not available in a User Enrollment`),
        });
      }
    });

    test("GetToken for a TokenServiceType the server does not serve", async () => {
      await refused({
        body: checkin({ MessageType: "GetToken", TokenServiceType: "com.apple.maid" }),
        reason: /^unsupported TokenServiceType "com.apple.maid"/,
      });
      await refused({
        body: checkin({ MessageType: "GetToken", TokenServiceType: "com.example.nope", ...USER }),
        reason: /^unsupported TokenServiceType/,
      });
    });

    test("DeclarativeManagement (served natively without --dm-url) with an unknown Endpoint", async () => {
      await refused({
        body: checkin({ MessageType: "DeclarativeManagement", Endpoint: "no-such-endpoint" }),
        reason: /^unknown DeclarativeManagement Endpoint "no-such-endpoint"/,
      });
    });
  });

  describe("bodies that are not plists", () => {
    test("bad plist, wrong top level, empty body", async () => {
      await refused({ body: "not xml at all", reason: /^malformed plist: / });
      await refused({ body: xml("<dict><key>MessageType</key><string>Authenticate</string>"), reason: /^malformed plist: / });
      await refused({
        body: xml("<array><string>Authenticate</string></array>"),
        reason: /^malformed plist: top-level value is not a dict/,
      });
      await refused({ body: "", reason: /^malformed plist: / });
      await refused({
        body: xml("<dict><key>MessageType</key><string>Authenticate</string><key>MessageType</key><string>TokenUpdate</string></dict>"),
        reason: /^malformed plist: /,
      });
      await refused({ path: "/mdm", contentType: COMMAND_TYPE, body: "<plist><dict><key>Status</key>", reason: /^malformed plist: / });
    });

    test("invalid UTF-8", async () => {
      const body = Buffer.concat([
        Buffer.from(
          xml(
            `<dict><key>MessageType</key><string>Authenticate</string><key>Topic</key><string>t</string><key>UDID</key><string>${dev.udid}</string><key>SerialNumber</key><string>`,
          ).replace("</plist>\n", ""),
        ),
        Buffer.from([0xc3, 0x28, 0xff]),
        Buffer.from("</string></dict></plist>"),
      ]);
      await refused({ body, reason: /^malformed plist: invalid UTF-8/ });
    });

    test("a DOCTYPE with entity declarations", async () => {
      const inner = `<dict><key>MessageType</key><string>Authenticate</string><key>Topic</key><string>t</string><key>UDID</key><string>&u;</string></dict>`;
      await refused({
        body: `<?xml version="1.0"?>\n<!DOCTYPE plist [<!ENTITY u "${dev.udid}">]>\n<plist version="1.0">${inner}</plist>`,
        reason: /^malformed plist: /,
      });
      const laughs = `<!DOCTYPE plist [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>`;
      await refused({
        body: `<?xml version="1.0"?>\n${laughs}<plist version="1.0"><dict><key>MessageType</key><string>&c;</string></dict></plist>`,
        reason: /^malformed plist: /,
      });
      // An entity used without any declaration is refused too.
      await refused({ body: `<?xml version="1.0"?>\n<plist version="1.0">${inner}</plist>`, reason: /^malformed plist: / });
    });

    test("absurd nesting", async () => {
      const deep = "<array>".repeat(5000) + "</array>".repeat(5000);
      await refused({
        body: xml(`<dict><key>MessageType</key><string>Authenticate</string><key>X</key>${deep}</dict>`),
        reason: /^malformed plist: /,
      });
    });

    test("a body over the check-in limit is 413", async () => {
      const big = checkin({ MessageType: "Authenticate", Topic: "t", Padding: "x".repeat(1024 * 1024 + 10) });
      await refused({ body: big, status: 413, reason: /too large/i });
    });
  });

  describe("command reports", () => {
    test("unknown Status, missing Status", async () => {
      await refused({ path: "/mdm", contentType: COMMAND_TYPE, body: report({ Status: "Maybe" }), reason: /^unknown Status "Maybe"/ });
      await refused({ path: "/mdm", contentType: COMMAND_TYPE, body: report({ Status: 1 }), reason: /^command report has no Status/ });
      await refused({ path: "/mdm", contentType: COMMAND_TYPE, body: report({}), reason: /^command report has no Status/ });
    });

    test("a non-Idle report without CommandUUID", async () => {
      for (const status of ["Acknowledged", "Error", "CommandFormatError", "NotNow"]) {
        await refused({
          path: "/mdm",
          contentType: COMMAND_TYPE,
          body: report({ Status: status }),
          reason: new RegExp(`^${status} report without CommandUUID`),
        });
      }
      await refused({
        path: "/mdm",
        contentType: COMMAND_TYPE,
        body: report({ Status: "Acknowledged", CommandUUID: "" }),
        reason: /without CommandUUID/,
      });
      await refused({
        path: "/mdm",
        contentType: COMMAND_TYPE,
        body: report({ Status: "Acknowledged", CommandUUID: 5 }),
        reason: /without CommandUUID/,
      });
      await refused({
        path: "/mdm",
        contentType: COMMAND_TYPE,
        body: report({ Status: "Acknowledged", CommandUUID: "X".repeat(129) }),
        reason: /longer than 128/,
      });
    });

    test("report identity keys are checked like check-ins", async () => {
      await refused({ path: "/mdm", contentType: COMMAND_TYPE, body: plist({ Status: "Idle" }), reason: /neither UDID nor EnrollmentID/ });
      await refused({
        path: "/mdm",
        contentType: COMMAND_TYPE,
        body: report({ Status: "Idle", EnrollmentID: "E" }),
        reason: /both UDID and EnrollmentID/,
      });
    });
  });

  describe("identity refusals change nothing either", () => {
    test("another certificate for this device, this certificate for another device, no identity", async () => {
      const other = await identity(fleet);
      await refused({
        auth: { kind: "header", identity: other },
        body: checkin({ MessageType: "TokenUpdate", Topic: "t", Token: Buffer.alloc(32, 1), PushMagic: "hijack" }),
        status: 403,
        reason: /does not match/,
      });
      await refused({
        auth: { kind: "header", identity: other },
        path: "/mdm",
        contentType: COMMAND_TYPE,
        body: report({ Status: "Acknowledged", CommandUUID: "BAD-INPUT-CMD" }),
        status: 403,
        reason: /does not match/,
      });
      await refused({
        body: plist({ MessageType: "Authenticate", Topic: "t", UDID: "SOMEONE-ELSE" }),
        status: 403,
        reason: /bound to another device/,
      });
      await refused({
        auth: { kind: "none" },
        body: checkin({ MessageType: "Authenticate", Topic: "t" }),
        reason: /^device identity: no client certificate/,
      });
      const body = checkin({ MessageType: "CheckOut" });
      await refused({
        auth: { kind: "signature", identity: dev.identity, signOver: Buffer.concat([body, Buffer.from(" ")]) },
        body,
        reason: /^device identity: /,
      });
    });
  });

  describe("afterwards", () => {
    test("nothing changed later either (no deferred last-seen write for a refused request)", async () => {
      await sleep(1300);
      assert.deepEqual(await dumpStore(server.store), baseline);
    });

    test("the device still works after all that, and no answer was 401", async () => {
      assert.ok(statuses.length > 50);
      assert.equal(statuses.filter((s) => s === 401).length, 0);
      const r = await dev.report("Idle");
      assert.equal(r.status, 200);
      assert.match(r.text, /BAD-INPUT-CMD/);
    });
  });
});
