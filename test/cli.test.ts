// The client side of the `orchard` command, run as a child process against a real server.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import type { QueuedCommandJson } from "../src/http/wire.ts";
import { buildCommandPlist, DEFAULT_DEVICE_QUERIES, paramValue } from "../src/cli/enqueue.ts";
import { clientUsage } from "../src/cli/registry.ts";
import { formatTable, formatTime, printable } from "../src/cli/table.ts";
import { parsePlistDict, serializePlist } from "../src/plist/index.ts";
import type { SimDevice } from "../src/sim/device.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { runOrchard, type CliRun } from "./support/cli.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

let server: TestServer;
let fleet: TestFleet;
let device: SimDevice;
let tmp: string;
/** The DeviceInformation command queued by `enqueue --type`. */
let infoUuid = "";

/** `orchard <args>` with the test server's URL and key unless env overrides them. */
function orchard(args: string[], o: { env?: Record<string, string | undefined>; input?: string; cwd?: string } = {}): Promise<CliRun> {
  return runOrchard(args, { ...o, env: { ORCHARD_URL: server.url, ORCHARD_API_KEY: "test-api-key-0123456789abcdef", ...o.env } });
}

async function queueOf(id: string): Promise<QueuedCommandJson[]> {
  const res = await server.api("GET", "/v1/queue/" + encodeURIComponent(id));
  assert.equal(res.status, 200, res.text);
  return res.json.commands;
}

before(async () => {
  server = await startTestServer();
  fleet = await testFleet(server.url);
  device = await fleet.device();
  await device.enroll();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-cli-"));
});

after(async () => {
  fleet?.close();
  await server?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test("help lists every client command's usage next to serve", async () => {
  const r = await orchard(["help"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /orchard serve/);
  assert.ok(r.stdout.includes(clientUsage()), "main.ts USAGE is out of step with the command registry");
});

test("--type builds the command plist: typed params, repeated keys, default DeviceInformation queries", () => {
  assert.equal(paramValue("true"), true);
  assert.equal(paramValue("false"), false);
  assert.equal(paramValue("42"), 42);
  assert.equal(paramValue("-7"), -7);
  assert.equal(paramValue("007"), "007");
  assert.equal(paramValue("1.5"), "1.5");
  assert.equal(paramValue("99999999999999999999").toString(), "99999999999999999999");
  const dict = parsePlistDict(buildCommandPlist("Settings", ["Flag=true", "Count=3", "Name=a=b", "Item=x", "Item=y"]));
  assert.deepEqual(dict, { Command: { RequestType: "Settings", Flag: true, Count: 3, Name: "a=b", Item: ["x", "y"] } });
  const info = parsePlistDict(buildCommandPlist("DeviceInformation", []));
  assert.deepEqual(info, { Command: { RequestType: "DeviceInformation", Queries: DEFAULT_DEVICE_QUERIES } });
  assert.throws(() => buildCommandPlist("Settings", ["NoEquals"]), /Key=Value/);
});

test("tables align columns, show '-' for empty, escape control characters, format local times", () => {
  const t = formatTable(
    ["ID", "NAME", "N"],
    [
      ["a", null, 1],
      ["long-id", "x\x1b[2Jy", ""],
    ],
  );
  assert.equal(t, "ID       NAME       N\na        -          1\nlong-id  x\\x1b[2Jy  -\n");
  const d = new Date(2026, 10, 25, 12, 0, 3);
  assert.equal(formatTime(d.toISOString()), "2026-11-25 12:00:03");
  assert.equal(formatTime(null), "-");
  // Not an RFC 3339 time (an epoch number of an older server, a device's text): shown as it is.
  assert.equal(formatTime(String(d.getTime())), String(d.getTime()));
  assert.equal(formatTime("x\x1b[2J"), "x\\x1b[2J");
  assert.equal(printable("a\tb\nc"), "a b\\x0ac");
});

test("enqueue --type queues the command (exit 0) and prints its UUID and each id's outcome", async () => {
  const r = await orchard(["enqueue", device.udid, "--type", "DeviceInformation", "--nopush"]);
  assert.equal(r.code, 0, r.stderr);
  const m = /^command ([0-9A-F-]{36}) \(DeviceInformation\)$/m.exec(r.stdout);
  assert.ok(m, r.stdout);
  infoUuid = m[1]!;
  assert.match(r.stdout, new RegExp(`^${device.udid}\\s+queued, not pushed$`, "m"));
  const queue = await queueOf(device.udid);
  assert.deepEqual(
    queue.map((c) => [c.command_uuid, c.request_type]),
    [[infoUuid, "DeviceInformation"]],
  );
});

test("enqueue --file and --file - send the plist as written", async () => {
  const file = path.join(tmp, "cmd.plist");
  fs.writeFileSync(file, serializePlist({ CommandUUID: "cli-file-1", Command: { RequestType: "ProfileList" } }));
  const input = serializePlist({ CommandUUID: "cli-stdin-1", Command: { RequestType: "CertificateList" } });
  const [fromFile, fromStdin] = await Promise.all([
    orchard(["enqueue", device.udid, "--file", file, "--nopush"]),
    orchard(["enqueue", device.udid, "--file", "-", "--nopush", "--json"], { input }),
  ]);
  assert.equal(fromFile.code, 0, fromFile.stderr);
  assert.match(fromFile.stdout, /^command cli-file-1 \(ProfileList\)$/m);
  assert.equal(fromStdin.code, 0, fromStdin.stderr);
  const json = JSON.parse(fromStdin.stdout);
  assert.equal(json.command_uuid, "cli-stdin-1");
  assert.equal(json.request_type, "CertificateList");
  assert.equal(json.no_push, true);

  const queue = await queueOf(device.udid);
  assert.deepEqual(
    queue.map((c) => [c.command_uuid, c.request_type]).sort(),
    [
      [infoUuid, "DeviceInformation"],
      ["cli-file-1", "ProfileList"],
      ["cli-stdin-1", "CertificateList"],
    ].sort(),
  );
  assert.equal(queue[0]!.command_uuid, infoUuid);
});

test("enqueue to an unknown id fails with the reason; a partly unknown list exits 3", async () => {
  const [unknown, partial] = await Promise.all([
    orchard(["enqueue", "NO-SUCH-DEVICE", "--type", "ProfileList", "--nopush"]),
    orchard(["enqueue", device.udid, "NO-SUCH-DEVICE", "--type", "ProfileList", "--nopush"]),
  ]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stdout, /^NO-SUCH-DEVICE\s+not queued: unknown enrollment$/m);
  assert.match(unknown.stderr, /^orchard: no such enrollment: nothing was queued$/m);

  assert.equal(partial.code, 3, partial.stderr);
  assert.match(partial.stdout, new RegExp(`^${device.udid}\\s+queued, not pushed$`, "m"));
  assert.match(partial.stdout, /^NO-SUCH-DEVICE\s+not queued: unknown enrollment$/m);
  const uuid = /^command (\S+) /m.exec(partial.stdout)![1]!;
  assert.ok((await queueOf(device.udid)).some((c) => c.command_uuid === uuid && c.request_type === "ProfileList"));
});

test("enqueue without --type or --file is a usage error (exit 2)", async () => {
  const r = await orchard(["enqueue", device.udid]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^orchard: give either --file or --type$/m);
  assert.match(r.stderr, /^usage: orchard enqueue </m);
  assert.equal((await queueOf(device.udid)).length, 4);
});

test("enrollments shows the device in a table, and --json matches the API", async () => {
  const [table, json] = await Promise.all([orchard(["enrollments"]), orchard(["enrollments", "--json", "--type", "Device"])]);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^ID\s+TYPE\s+PLATFORM\s+ENABLED\s+SERIAL\s+MODEL\s+OS\s+USER\s+LAST SEEN\s+TOKEN UPDATES$/);
  const row = lines.find((l) => l.startsWith(device.udid + " "));
  assert.ok(row, table.stdout);
  assert.match(row, new RegExp(`^${device.udid}\\s+Device\\s+macOS\\s+yes\\s+${device.serialNumber}\\s+`));
  assert.match(row, /\s\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+1$/);

  assert.equal(json.code, 0, json.stderr);
  const answer = JSON.parse(json.stdout);
  const api = await server.api("GET", "/v1/enrollments?type=Device");
  assert.deepEqual(answer, api.json);
  assert.equal(answer.enrollments[0].id, device.udid);
  assert.equal(answer.enrollments[0].serial_number, device.serialNumber);
});

test("queue lists the enrollment's commands", async () => {
  const r = await orchard(["queue", device.udid]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^COMMAND UUID\s+REQUEST TYPE\s+STATUS\s+NOT NOW\s+QUEUED AT$/);
  assert.match(lines[1]!, new RegExp(`^${infoUuid}\\s+DeviceInformation\\s+Queued\\s+0\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d$`));
  assert.equal(lines.length, 5);
});

test("command <uuid> shows the device's Acknowledged result", async () => {
  const r = await device.report("Idle");
  assert.equal(r.plist?.CommandUUID, infoUuid);
  assert.deepEqual((r.plist!.Command as Record<string, unknown>).Queries, DEFAULT_DEVICE_QUERIES);
  const ack = await device.report("Acknowledged", { CommandUUID: infoUuid, QueryResponses: { DeviceName: "Sim" } });
  assert.equal(ack.status, 200);

  const c = await orchard(["command", infoUuid]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, new RegExp(`^command uuid: ${infoUuid}$`, "m"));
  assert.match(c.stdout, /^request type: DeviceInformation$/m);
  assert.match(c.stdout, new RegExp(`^${device.udid}\\s+Acknowledged\\s+0\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+-$`, "m"));
});

test("queue clear empties the queue", async () => {
  assert.equal((await queueOf(device.udid)).length, 3);
  const r = await orchard(["queue", "clear", device.udid]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "removed 3 queued commands\n");
  assert.deepEqual(await queueOf(device.udid), []);
});

test("queue of an id that names no enrollment says so (exit 1); queue clear warns of such ids and clears the others", async () => {
  const typo = await orchard(["queue", "TYPO-UDID"]);
  assert.deepEqual([typo.code, typo.stdout, typo.stderr], [1, "", "orchard: no such enrollment\n"]);
  const lower = await orchard(["queue", device.udid.toLowerCase()]);
  assert.deepEqual([lower.code, lower.stderr], [1, "orchard: no such enrollment\n"]);
  assert.equal((await orchard(["queue", "clear", "TYPO-UDID"])).stderr, "orchard: no such enrollment\n");
  const mixed = await orchard(["queue", "clear", device.udid, "TYPO-UDID"]);
  assert.equal(mixed.code, 0, mixed.stderr);
  assert.equal(mixed.stdout, "removed 0 queued commands\n");
  assert.equal(mixed.stderr, 'orchard: warning: enrollment "TYPO-UDID": no such enrollment\n');
});

test("enqueue of a RequestType Apple's schema does not know queues it and prints the server's warning (exit 0)", async () => {
  const r = await orchard(["enqueue", device.udid, "--type", "DeviceInfomation", "--nopush"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^${device.udid}\\s+queued, not pushed$`, "m"));
  assert.match(
    r.stderr,
    /^orchard: warning: RequestType "DeviceInfomation": not a command Apple's schema knows \(iOS [\d.]+\/macOS [\d.]+\); queued all the same/,
  );
  assert.equal(r.stderr.split("\n").length, 2, r.stderr);
  assert.deepEqual(
    (await queueOf(device.udid)).map((c) => c.request_type),
    ["DeviceInfomation"],
  );
  assert.equal((await orchard(["enqueue", device.udid, "--type", "ProfileList", "--nopush"])).stderr, "");
  await orchard(["queue", "clear", device.udid]);
});

test("events shows what happened to the enrollment", async () => {
  const r = await orchard(["events", "--enrollment", device.udid, "--type", "enrollment.enrolled"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^TIME\s+TYPE\s+ENROLLMENT\s+DETAIL$/);
  assert.match(
    lines[1]!,
    new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+enrollment\\.enrolled\\s+${device.udid}\\s+\\{"type":"Device"\\}$`),
  );
  assert.equal(lines.length, 2);
});

test("a wrong API key exits 1 with the server's reason and never echoes the key", async () => {
  const r = await orchard(["enrollments"], { env: { ORCHARD_API_KEY: "wrong-secret-key" } });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /^orchard: missing or wrong API key/);
  assert.ok(!(r.stdout + r.stderr).includes("wrong-secret-key"));
});

test("without --api-key or ORCHARD_API_KEY the key comes from ./data/api-key, else a clear error", async () => {
  const empty = path.join(tmp, "empty");
  const withKey = path.join(tmp, "with-key");
  fs.mkdirSync(empty);
  fs.mkdirSync(path.join(withKey, "data"), { recursive: true });
  fs.writeFileSync(path.join(withKey, "data", "api-key"), "test-api-key-0123456789abcdef\n");
  const [missing, fromFile] = await Promise.all([
    orchard(["enrollments"], { env: { ORCHARD_API_KEY: undefined }, cwd: empty }),
    orchard(["enrollments", "--json"], { env: { ORCHARD_API_KEY: undefined }, cwd: withKey }),
  ]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^orchard: no API key: give --api-key KEY or set ORCHARD_API_KEY .*data\/api-key/);
  assert.equal(fromFile.code, 0, fromFile.stderr);
  assert.equal(JSON.parse(fromFile.stdout).enrollments[0].id, device.udid);
});
