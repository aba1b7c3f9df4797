// `orchard ddm` against a real server (in-process CLI, real HTTP), and the
// bulk assignment route it uses: by ids (100,000 of them), by platform, bad
// bodies refused with nothing written.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { runWith } from "../src/cli/client-commands.ts";
import { cliContext, type CapturedCli } from "./support/cli.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { eventually, identity, RawDevice } from "./support/mdm.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

let server: TestServer;
let fleet: TestFleet;
let mac: RawDevice;
let iphone: RawDevice;
let tmp: string;
const USER = { UserID: "CLI-DDM-USER", UserShortName: "dana", UserLongName: "Dana" };
let userChannel: string;

const TEST_DECL = {
  Type: "com.apple.configuration.management.test",
  Identifier: "com.example.cli.test",
  Payload: { Echo: "hello" },
};
const ACTIVATION = {
  Type: "com.apple.activation.simple",
  Identifier: "com.example.cli.activation",
  Payload: { StandardConfigurations: ["com.example.cli.test"] },
};

function file(name: string, value: unknown): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, typeof value === "string" ? value : JSON.stringify(value, null, 2));
  return name;
}

async function ddm(...args: string[]): Promise<CapturedCli & { code: number }> {
  const ctx = cliContext(server.url, { cwd: tmp });
  const code = await runWith(ctx, "ddm", args);
  return Object.assign(ctx, { code });
}

before(async () => {
  server = await startTestServer();
  fleet = await testFleet(server.url);
  mac = new RawDevice(fleet.transport, await identity(fleet), `CLI-DDM-MAC-${randomUUID().slice(0, 8)}`);
  await mac.enroll({ ProductName: "Mac14,2" });
  assert.equal((await mac.tokenUpdate(USER)).status, 200);
  userChannel = `${mac.udid}:${USER.UserID}`;
  iphone = new RawDevice(fleet.transport, await identity(fleet), `CLI-DDM-IPHONE-${randomUUID().slice(0, 8)}`);
  await iphone.enroll({ ProductName: "iPhone15,4" });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-cli-ddm-"));
});
after(async () => {
  fleet?.close();
  await server?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test("ddm put: created, unchanged, changed; a refused declaration prints the server's reason and exits 1", async () => {
  const first = await ddm("put", file("test.json", TEST_DECL), file("activation.json", ACTIVATION));
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout, "created com.example.cli.test (test.json)\ncreated com.example.cli.activation (activation.json)\n");
  assert.equal(first.stderr, "");
  const again = await ddm("put", "test.json");
  assert.equal(again.stdout, "unchanged com.example.cli.test (test.json)\n");
  const changed = await ddm("put", file("test.json", { ...TEST_DECL, Payload: { Echo: "hello again" } }), "--json");
  assert.equal(changed.code, 0, changed.stderr);
  assert.deepEqual(JSON.parse(changed.stdout), [
    { file: "test.json", identifier: "com.example.cli.test", outcome: "changed", warnings: [] },
  ]);

  const bad = {
    Type: "com.apple.configuration.passcode.settings",
    Identifier: "com.example.cli.passcode",
    Payload: { MinimumLength: "six" },
  };
  const refused = await ddm("put", file("bad.json", bad), "test.json");
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    /^orchard: bad\.json: refused: declaration "com\.example\.cli\.passcode" is not valid: Payload\.MinimumLength/m,
  );
  assert.equal(refused.stdout, "unchanged com.example.cli.test (test.json)\n", "the other files are still put");
  assert.equal((await server.api("GET", "/v1/declarations/com.example.cli.passcode")).status, 404, "nothing stored");

  // Checked before it is sent: the file, and where in it (the server would say "the body").
  const notJson = await ddm(
    "put",
    file("broken.json", '{"Type": "com.apple.configuration.management.test",\n "Identifier": "x",\n}'),
    "test.json",
  );
  assert.equal(notJson.code, 1);
  assert.equal(
    notJson.stderr,
    "orchard: broken.json: refused: the file is not valid JSON: expected double-quoted property name at line 3, column 1\n",
  );
  assert.equal(notJson.stdout, "unchanged com.example.cli.test (test.json)\n", "the other files are still put");
  const withBom = await ddm("put", file("bom.json", `\uFEFF${JSON.stringify({ ...TEST_DECL, Identifier: "com.example.cli.bom" })}`));
  assert.equal(withBom.code, 0, withBom.stderr);
  const missing = await ddm("put", "no-such-file.json");
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read no-such-file\.json/);
  const none = await ddm("put");
  assert.equal(none.code, 2);
});

test("ddm put: a Type newer than Apple's schema is stored with the server's warning", async () => {
  const newer = { Type: "com.apple.configuration.shiny-new", Identifier: "com.example.cli.newer", Payload: { A: 1 } };
  const r = await ddm("put", file("newer.json", newer));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "created com.example.cli.newer (newer.json)\n");
  assert.match(
    r.stderr,
    /^orchard: warning: com\.example\.cli\.newer: Type "com\.apple\.configuration\.shiny-new": type not in the schema/m,
  );
  const json = await ddm("put", "newer.json", "--json");
  const [out] = JSON.parse(json.stdout);
  assert.equal(out.outcome, "unchanged");
  assert.equal(out.warnings.length, 1);
  assert.match(out.warnings[0], /not in the schema/);
});

test("ddm declarations, show, touch, rm", async () => {
  const list = await ddm("declarations");
  assert.equal(list.code, 0, list.stderr);
  assert.ok(list.stdout.split("\n").includes("com.example.cli.test"), list.stdout);
  const shown = await ddm("show", "com.example.cli.test");
  assert.equal(shown.code, 0);
  const d = JSON.parse(shown.stdout);
  assert.equal(d.Identifier, "com.example.cli.test");
  assert.deepEqual(d.Payload, { Echo: "hello again" });
  const touched = await ddm("touch", "com.example.cli.test", "--nonotify");
  assert.equal(touched.stdout, "touched com.example.cli.test: it has a new ServerToken\n");
  assert.notEqual(JSON.parse((await ddm("show", "com.example.cli.test")).stdout).ServerToken, d.ServerToken);
  assert.equal((await ddm("touch", "com.example.none")).code, 1);
  assert.match((await ddm("show", "com.example.none")).stderr, /^orchard: no declaration com\.example\.none$/m);

  const removed = await ddm("rm", "com.example.cli.newer");
  assert.equal(removed.stdout, "deleted com.example.cli.newer\n");
  const gone = await ddm("rm", "com.example.cli.newer");
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /no declaration com\.example\.cli\.newer/);
});

test("ddm sets, set add/remove, and rm of a declaration a set holds", async () => {
  const add = await ddm("set", "cli-set", "add", "com.example.cli.test", "com.example.cli.activation");
  assert.equal(add.code, 0, add.stderr);
  assert.equal(add.stdout, "added com.example.cli.test to cli-set\nadded com.example.cli.activation to cli-set\n");
  assert.equal((await ddm("set", "cli-set", "add", "com.example.cli.test")).stdout, "com.example.cli.test was in cli-set already\n");
  const noSuch = await ddm("set", "cli-set", "add", "com.example.none");
  assert.equal(noSuch.code, 1);
  assert.match(noSuch.stderr, /no declaration "com\.example\.none": put it first/);
  assert.equal((await ddm("set", "cli-set")).stdout, "com.example.cli.activation\ncom.example.cli.test\n");
  assert.ok((await ddm("sets")).stdout.split("\n").includes("cli-set"));
  const inUse = await ddm("rm", "com.example.cli.test");
  assert.equal(inUse.code, 1);
  assert.match(inUse.stderr, /is in sets \(cli-set\): remove it from them first/);

  await ddm("put", file("spare.json", { ...TEST_DECL, Identifier: "com.example.cli.spare" }));
  await ddm("set", "cli-set", "add", "com.example.cli.spare");
  assert.equal((await ddm("set", "cli-set", "remove", "com.example.cli.spare")).stdout, "removed com.example.cli.spare from cli-set\n");
  assert.equal((await ddm("set", "cli-set", "remove", "com.example.cli.spare")).stdout, "com.example.cli.spare was not in cli-set\n");
  assert.equal((await ddm("set", "cli-set", "rename")).code, 2);
  assert.equal((await ddm("set", "cli-set", "add")).code, 2);
});

test("ddm assign and unassign: by id (device and user channels) and by platform; each channel syncs once", async () => {
  const queued = async (id: string) => {
    await eventually(async () => ((await server.store.ddm.dueCount()) === 0 ? true : undefined), 15_000, "the DDM sync sweep");
    const q = await server.api("GET", `/v1/queue/${encodeURIComponent(id)}`);
    return q.json.commands.filter((c: { request_type: string }) => c.request_type === "DeclarativeManagement").length;
  };
  const byId = await ddm("assign", "cli-set", mac.udid, userChannel);
  assert.equal(byId.code, 0, byId.stderr);
  assert.equal(byId.stdout, "assigned cli-set: 2 of 2 enrollment(s) changed\n");
  assert.equal(byId.stderr, "", "enrolled channels: no warning");
  const byPlatform = await ddm("assign", "cli-set", "--platform", "macOS");
  assert.equal(byPlatform.stdout, "assigned cli-set: 0 of 1 macOS device channel(s) enrolled now changed; 1 had it already\n");
  assert.equal(await queued(mac.udid), 1, "one DeclarativeManagement command for the Mac");
  assert.equal(await queued(userChannel), 1, "and one for the user's channel");
  assert.deepEqual((await server.api("GET", `/v1/enrollment-sets/${iphone.udid}`)).json, []);

  const phones = await ddm("assign", "cli-set", "--platform", "iOS", "--json");
  assert.deepEqual(JSON.parse(phones.stdout), { set: "cli-set", platform: "iOS", enrollments: 1, changed: 1 });
  assert.deepEqual((await server.api("GET", `/v1/enrollment-sets/${iphone.udid}`)).json, ["cli-set"]);
  const off = await ddm("unassign", "cli-set", "--platform", "iOS", "--nonotify");
  assert.equal(off.stdout, "unassigned cli-set: 1 of 1 iOS device channel(s) enrolled now changed\n");
  assert.deepEqual((await server.api("GET", `/v1/enrollment-sets/${iphone.udid}`)).json, []);
  const notThere = await ddm("unassign", "cli-set", "NO-SUCH-ENROLLMENT");
  assert.equal(notThere.stdout, "unassigned cli-set: 0 of 1 enrollment(s) changed; 1 did not have it\n");
  assert.equal(notThere.stderr, "", "taking a set away warns of nothing");

  // An id that is no enrollment is assigned (the device may enroll later) and said: it is as often a typo.
  const typo = await ddm("assign", "cli-set", "NOT-A-UDID", "--nonotify");
  assert.equal(typo.code, 0, typo.stderr);
  assert.equal(typo.stdout, "assigned cli-set: 1 of 1 enrollment(s) changed\n");
  assert.equal(
    typo.stderr,
    'orchard: warning: enrollment "NOT-A-UDID": no such enrollment (not enrolled yet, or mistyped): assigned all the same, it gets the set when it enrolls\n',
  );
  const many = await server.api("POST", "/v1/ddm/sets/cli-set/enrollments?nonotify=1", {
    ids: [mac.udid, "NOPE-1", "NOPE-2", "NOPE-3", "NOPE-4"],
  });
  assert.equal(many.status, 200, many.text);
  assert.equal(
    many.headers.get("orchard-warning"),
    'ids: 4 of 5 name no enrollment ("NOPE-1", "NOPE-2", "NOPE-3", ...): not enrolled yet, or mistyped; assigned all the same, each gets the set when it enrolls',
  );
  const one = await server.api("PUT", "/v1/enrollment-sets/NOPE-5?set=cli-set&nonotify=1");
  assert.equal(one.status, 204, "KMFDDM's status, no body");
  assert.equal(one.text, "");
  assert.match(one.headers.get("orchard-warning") ?? "", /^enrollment "NOPE-5": no such enrollment \(not enrolled yet, or mistyped\)/);
  assert.ok(server.logs.some((l) => l.includes("DDM set assigned to ids that are no enrollment") && l.includes('"notEnrolled":4')));
  // Both warnings at once, each its own line.
  const both = await ddm("assign", "cli-sett", "NOPE-6", "--nonotify");
  assert.deepEqual(both.stderr.split("\n"), [
    'orchard: warning: set "cli-sett": holds no declarations; a device gets nothing from it until it does',
    'orchard: warning: enrollment "NOPE-6": no such enrollment (not enrolled yet, or mistyped): assigned all the same, it gets the set when it enrolls',
    "",
  ]);
  for (const [set, id] of [
    ["cli-set", "NOT-A-UDID"],
    ["cli-set", "NOPE-1,NOPE-2,NOPE-3,NOPE-4,NOPE-5"],
    ["cli-sett", "NOPE-6"],
  ])
    await ddm("unassign", set!, ...id!.split(","), "--nonotify");

  // A set that holds nothing (a misspelt name, most often) is assigned, and said; through the API too.
  const misspelt = await ddm("assign", "cli-sett", "--platform", "iOS", "--nonotify");
  assert.equal(misspelt.code, 0, misspelt.stderr);
  assert.equal(misspelt.stderr, 'orchard: warning: set "cli-sett": holds no declarations; a device gets nothing from it until it does\n');
  assert.equal((await ddm("unassign", "cli-sett", "--platform", "iOS", "--nonotify")).stderr, "", "not when unassigned");
  const kmfddm = await server.api("PUT", `/v1/enrollment-sets/${iphone.udid}?set=cli-sett&nonotify=1`);
  assert.equal(kmfddm.status, 204);
  assert.match(kmfddm.headers.get("orchard-warning") ?? "", /^set "cli-sett": holds no declarations/);
  assert.equal((await server.api("PUT", `/v1/enrollment-sets/${iphone.udid}?set=cli-set&nonotify=1`)).headers.get("orchard-warning"), null);
  for (const set of ["cli-sett", "cli-set"]) await server.api("DELETE", `/v1/enrollment-sets/${iphone.udid}?set=${set}&nonotify=1`);

  for (const args of [["cli-set"], ["cli-set", mac.udid, "--platform", "macOS"], ["cli-set", "--platform", "Linux"], []]) {
    const r = await ddm("assign", ...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /^usage: orchard ddm /m);
  }
});

test("ddm status, compliance and values show what the device reported", async () => {
  const token = (await server.api("GET", "/v1/declarations/com.example.cli.test")).json.ServerToken;
  const activationToken = (await server.api("GET", "/v1/declarations/com.example.cli.activation")).json.ServerToken;
  const report = {
    StatusItems: {
      management: {
        declarations: {
          activations: [{ identifier: "com.example.cli.activation", active: true, valid: "valid", "server-token": activationToken }],
          configurations: [
            {
              identifier: "com.example.cli.test",
              active: false,
              valid: "invalid",
              "server-token": token,
              reasons: [{ code: "Error.ConfigurationCannotBeApplied", description: "no\u001b[2J" }],
            },
          ],
        },
      },
      device: { "operating-system": { version: "15.2", build: "24C101" }, model: { family: "Mac" } },
    },
    Errors: [{ StatusItem: "softwareupdate.install-state", Reasons: [{ code: "Error.Unsupported" }] }],
  };
  const sent = await mac.checkin("DeclarativeManagement", { Endpoint: "status", Data: Buffer.from(JSON.stringify(report)) });
  assert.equal(sent.status, 200, sent.text);

  const status = await ddm("status", mac.udid);
  assert.equal(status.code, 0, status.stderr);
  const lines = status.stdout.split("\n");
  assert.equal(lines[0], "sets: cli-set");
  assert.match(lines[2]!, /^DECLARATION\s+SETS\s+ACTIVE\s+VALID\s+CURRENT\s+REPORTED\s+REASONS$/);
  assert.match(status.stdout, /^com\.example\.cli\.activation\s+cli-set\s+yes\s+valid\s+yes\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+-$/m);
  assert.match(
    status.stdout,
    /^com\.example\.cli\.test\s+cli-set\s+no\s+invalid\s+yes\s+\S+ \S+\s+\[\{"code":"Error\.ConfigurationCannotBeApplied"/m,
  );
  assert.ok(!status.stdout.includes("\u001b"), "a device's text never reaches the terminal raw");
  assert.match(status.stdout, /^ERROR PATH\s+ERROR\s+AT$/m);
  assert.match(status.stdout, /^management\.declarations\.configurations\s+\{/m);

  const raw = JSON.parse((await ddm("status", mac.udid, "--json")).stdout);
  assert.deepEqual(raw.sets, { "cli-set": ["com.example.cli.activation", "com.example.cli.test"] });
  assert.equal(raw.declarations.length, 2);
  assert.ok(raw.errors.length >= 1);

  // The user's channel has the set but reported nothing.
  const user = await ddm("status", userChannel);
  assert.match(user.stdout, /^com\.example\.cli\.test\s+cli-set\s+not reported\s+-/m);

  const compliance = await ddm("compliance", "cli-set");
  assert.equal(compliance.code, 0, compliance.stderr);
  assert.match(compliance.stdout, /^set cli-set: 2 enrollment\(s\)$/m);
  assert.match(compliance.stdout, /^com\.example\.cli\.activation\s+1\s+0\s+1$/m);
  assert.match(compliance.stdout, /^com\.example\.cli\.test\s+0\s+1\s+1$/m);

  const values = await ddm("values", mac.udid, "--prefix", "device.operating-system.");
  assert.equal(values.code, 0, values.stderr);
  assert.match(values.stdout, /^PATH\s+VALUE\s+UPDATED$/m);
  assert.match(values.stdout, /^device\.operating-system\.build\s+24C101\s/m);
  assert.match(values.stdout, /^device\.operating-system\.version\s+15\.2\s/m);
  assert.ok(!values.stdout.includes("model.family"));
  const all = JSON.parse((await ddm("values", mac.udid, "--json")).stdout);
  assert.ok(all.some((v: { path: string }) => v.path === ".StatusItems.device.model.family"));
  assert.equal((await ddm("status", "a,b")).code, 2);
});

test("ddm status, values and compliance say when the id or set does not exist", async () => {
  // Nothing known of it: an error, as `orchard enrollment` gives.
  for (const args of [
    ["status", "NOT-A-UDID"],
    ["values", "NOT-A-UDID"],
    ["status", "NOT-A-UDID", "--json"],
  ]) {
    const r = await ddm(...args);
    assert.equal(r.code, 1, args.join(" "));
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, "orchard: no enrollment NOT-A-UDID (not enrolled yet, or mistyped)\n");
  }
  // A set assigned before the device enrolls: its sets shown, and said.
  await ddm("assign", "cli-set", "PRE-ENROLLED", "--nonotify");
  const pre = await ddm("status", "PRE-ENROLLED");
  assert.equal(pre.code, 0, pre.stderr);
  assert.match(pre.stdout, /^sets: cli-set$/m);
  assert.match(pre.stdout, /^com\.example\.cli\.test\s+cli-set\s+not reported/m);
  assert.equal(pre.stderr, "orchard: warning: PRE-ENROLLED: not enrolled (yet): its sets reach it when it enrolls\n");
  assert.equal(JSON.parse((await ddm("status", "PRE-ENROLLED", "--json")).stdout).enrolled, false);
  assert.equal(JSON.parse((await ddm("status", mac.udid, "--json")).stdout).enrolled, true);
  await ddm("unassign", "cli-set", "PRE-ENROLLED", "--nonotify");
  // An enrolled channel that reported nothing is no error.
  const quiet = await ddm("values", iphone.udid);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stdout, "no status values\n");

  const noSet = await ddm("compliance", "nosuchset");
  assert.equal(noSet.code, 1);
  assert.equal(noSet.stderr, "orchard: no set nosuchset: it holds no declarations and no enrollment has it\n");
});

test("bulk assignment: 100,000 ids in one request; bad bodies refused with nothing written", async () => {
  const ids = Array.from({ length: 100_000 }, (_, i) => `BULK-${String(i).padStart(6, "0")}-${randomUUID()}`);
  const count = async (set: string) =>
    Number((await server.store.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM ddm_enrollment_sets WHERE set_name = ?", [set]))!.n);
  const on = await server.api("POST", "/v1/ddm/sets/bulk-set/enrollments?nonotify=1", { ids: [...ids, ids[0]] });
  assert.equal(on.status, 200, on.text);
  assert.deepEqual(on.json, { set: "bulk-set", enrollments: 100_000, changed: 100_000 });
  // Counted, a few named: not 100,000 ids in a header.
  const warnings = on.headers.get("orchard-warning") ?? "";
  assert.match(
    warnings,
    /, ids: 100000 of 100000 name no enrollment \("BULK-000000-[^"]+", "BULK-000001-[^"]+", "BULK-000002-[^"]+", \.\.\.\)/,
  );
  assert.ok(warnings.length < 1000, `${warnings.length} characters`);
  assert.equal(await count("bulk-set"), 100_000);
  const off = await server.api("DELETE", "/v1/ddm/sets/bulk-set/enrollments?nonotify=1", { ids: ids.slice(0, 60_000) });
  assert.deepEqual(off.json, { set: "bulk-set", enrollments: 60_000, changed: 60_000 });
  assert.equal(await count("bulk-set"), 40_000);

  for (const [body, code] of [
    [{ ids: ["GOOD-1", 5] }, "invalid_parameter"],
    [{ ids: ["GOOD-1", "x".repeat(300)] }, "invalid_parameter"],
    [{ ids: ["GOOD-1"], platform: "macOS" }, "invalid_parameter"],
    [{}, "invalid_parameter"],
    [{ ids: [] }, "invalid_parameter"],
    [{ platform: "Linux" }, "invalid_parameter"],
    [{ ids: ["GOOD-1"], extra: 1 }, "unknown_field"],
    [{ ids: Array.from({ length: 100_001 }, (_, i) => `X${i}`) }, "too_many_ids"],
  ] as const) {
    const r = await server.api("POST", "/v1/ddm/sets/bulk-bad/enrollments", body);
    assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
    assert.equal(r.json.code, code, r.text);
  }
  assert.equal(await count("bulk-bad"), 0, "nothing written");
  assert.ok(
    server.logs.some((l) => l.includes("DDM set assigned in bulk") && l.includes('"changed":100000')),
    "the change is logged",
  );
});

test("ddm credential put, show, rm, ca and ddm credentials", async () => {
  const template = file("wifi-credential.json", {
    subject: [["CN", "{{serial_number}}"]],
    subject_alt_names: { dns_name: "{{udid}}.example.test" },
  });
  const put = await ddm("credential", "put", "wifi", template);
  assert.equal(put.code, 0, put.stderr);
  assert.equal(put.stdout, "created wifi: orchard:credential/scep/wifi\n");
  assert.equal((await ddm("credential", "put", "wifi", template)).stdout, "stored wifi: orchard:credential/scep/wifi\n");
  const broken = await ddm("credential", "put", "wifi", file("broken-credential.json", '{"subject": [["CN", "x"]],}'));
  assert.equal(broken.code, 1);
  assert.equal(
    broken.stderr,
    "orchard: broken-credential.json: the file is not valid JSON: expected double-quoted property name at line 1, column 27\n",
  );
  const bad = await ddm("credential", "put", "bad", file("bad.json", { subject: [["CN", "{{nope}}"]] }));
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /unknown variable \{\{nope\}\}/);

  const list = await ddm("credentials");
  assert.match(list.stdout, /^NAME +KIND +REFERENCE +UPDATED\nwifi +scep +orchard:credential\/scep\/wifi /);
  const shown = JSON.parse((await ddm("credential", "show", "wifi")).stdout);
  assert.deepEqual(shown.template.subject, [["CN", "{{serial_number}}"]]);
  assert.equal((await ddm("credential", "ca")).stdout, server.credentialCa.certPem);
  assert.equal((await ddm("credential", "rm", "wifi")).stdout, "removed wifi\n");
  const gone = await ddm("credential", "show", "wifi");
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /no credential wifi/);
});
