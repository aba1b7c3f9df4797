// Input the operator API used to take without a word: a JSON key given twice,
// a short name that cannot sit in a Digest string; and the enqueue log line.
import os from "node:os";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { buildCommandPlist } from "../src/cli/enqueue.ts";
import { UsageError } from "../src/cli/command.ts";
import { usersCommand } from "../src/cli/users.ts";
import { parsePlistDict } from "../src/plist/index.ts";
import { cliContext } from "./support/cli.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist, identity, RawDevice } from "./support/mdm.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

let server: TestServer;
let fleet: TestFleet;
let devices: RawDevice[];

before(async () => {
  server = await startTestServer();
  fleet = await testFleet(server.url);
  devices = [];
  for (let i = 0; i < 3; i++) {
    const d = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await d.enroll();
    devices.push(d);
  }
});
after(async () => {
  fleet.close();
  await server.stop();
});

/** The log lines written since `from`, parsed. */
function logsSince(from: number): Array<Record<string, any>> {
  return server.logs.slice(from).map((l) => JSON.parse(l));
}

async function refusedWithLog(method: string, urlPath: string, body: string, reason: RegExp): Promise<void> {
  const from = server.logs.length;
  const r = await server.api(method, urlPath, body);
  assert.equal(r.status, 400, `${urlPath} ${body}: ${r.text}`);
  assert.match(r.json.error, reason);
  assert.ok(
    logsSince(from).some((l) => l.msg === "request refused" && l.status === 400 && reason.test(l.reason)),
    `a log line for ${body}`,
  );
}

test("a JSON body with a key given twice, at any depth, is 400 and changes nothing", async () => {
  const bodies: Array<[string, string]> = [
    ['{"state":"managed","state":"declined"}', "state"],
    ['{"full_name":"A","password":"x","full_name":"B"}', "full_name"],
    ['{"state":"managed","st\\u0061te":"declined"}', "state"],
    ['{"guid":"G","x":{"a":1,"b":[{"c":1,"c":2}]}}', "c"],
    ['{"a":{"k":1,"k":1}}', "k"],
  ];
  for (const [body, key] of bodies) {
    await refusedWithLog("PUT", "/v1/users/dup-user", body, new RegExp(`^the body has a duplicate key "${key}"$`));
  }
  assert.equal((await server.api("GET", "/v1/users/dup-user")).status, 404, "no user was written");
  await refusedWithLog("POST", "/v1/scep/challenges", '{"ttl":"10m","ttl":"30d"}', /^the body has a duplicate key "ttl"$/);
  // Equal keys in different objects, and strings that look like keys, are fine.
  const ok = await server.api("PUT", "/v1/users/dup-user", '{"full_name":"{\\"state\\":1,\\"state\\":2}","state":"managed"}');
  assert.equal(ok.status, 201, ok.text);
  assert.equal(ok.json.full_name, '{"state":1,"state":2}');
});

test("a body that is not JSON is 400 saying so, and where, never with its text (it may hold a password)", async () => {
  const bodies: Array<[string, RegExp]> = [
    ['{"password":"hunter2",', /^the body is not valid JSON: expected double-quoted property name at line 1, column 23$/],
    [
      '{"full_name":"A",\n "password":"hunter2",\n}',
      /^the body is not valid JSON: expected double-quoted property name at line 3, column 1$/,
    ],
    ['{"password":"hunter2"', /^the body is not valid JSON: expected ',' or '}' after property value at line 1, column 22$/],
    ['{"password":"hunter2', /^the body is not valid JSON: unterminated string at line 1, column 21$/],
    ['{"password":"hunter2","a":[1,', /^the body is not valid JSON: it ends before the JSON is complete$/],
    // V8's message quotes the text here: only that it is not JSON is said.
    ['{"password":hunter2}', /^the body is not valid JSON$/],
    ["  ", /^the body is empty: it must be a JSON object$/],
  ];
  for (const [body, reason] of bodies) {
    const from = server.logs.length;
    await refusedWithLog("PUT", "/v1/users/json-user", body, reason);
    const r = await server.api("PUT", "/v1/users/json-user", body);
    assert.equal(r.json.code, "invalid_json");
    assert.ok(!r.text.includes("hunter2"), r.text);
    assert.ok(!server.logs.slice(from).some((l) => l.includes("hunter2")), "never in the log");
  }
  await refusedWithLog(
    "POST",
    "/v1/scep/challenges",
    '{"ttl":"10m",}',
    /^the body is not valid JSON \(expected double-quoted property name at line 1, column 14\)/,
  );
  // Valid JSON that is not an object is still said so.
  await refusedWithLog("PUT", "/v1/users/json-user", "[]", /^the body must be a JSON object$/);
});

test("a short name with CR, LF, quotes, backslashes or control characters is 400 on the API", async () => {
  const bad = ["a\rb", "a\nb", "line\r\nInjected: 1", 'quo"te', "back\\slash", "tab\tname", "del\u007f", "c1\u0085", "ls\u2028"];
  for (const name of bad) {
    await refusedWithLog(
      "PUT",
      `/v1/users/${encodeURIComponent(name)}`,
      '{"password":"pw"}',
      /^a short name is 1 to 256 characters without control characters, quotes, backslashes/,
    );
  }
  for (const name of ["jane.doe", "Jane Doe", "jörg", "o'brien", "user@example.com"]) {
    const r = await server.api("PUT", `/v1/users/${encodeURIComponent(name)}`, '{"password":"pw"}');
    assert.equal(r.status, 201, `${name}: ${r.text}`);
  }
});

test("htdigest import reports bad short names by line and imports the rest", async () => {
  const realm = os.hostname(); // --digest-realm, by default the host name
  const ha1 = "ab".repeat(16);
  const text = [`good1:${realm}:${ha1}`, `quo"te:${realm}:${ha1}`, `back\\slash:${realm}:${ha1}`, `good2:${realm}:${ha1}`].join("\n");
  const r = await server.api("POST", "/v1/users/import", text);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.created, 2);
  assert.deepEqual(r.json.errors, [
    { line: 2, reason: "bad-char" },
    { line: 3, reason: "bad-char" },
  ]);
  assert.equal((await server.api("GET", `/v1/users/${encodeURIComponent('quo"te')}`)).status, 404);
});

test("orchard users add refuses such a name before asking for a password", async () => {
  for (const name of ['quo"te', "back\\slash", "a\nb"]) {
    const ctx = cliContext(server.url, { stdin: "pw\n" });
    await assert.rejects(usersCommand.run(["add", name, "--password-stdin"], ctx), (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.match(err.message, /^a short name is 1 to 256 characters without control characters, quotes, backslashes/);
      return true;
    });
  }
  assert.equal((await server.api("GET", `/v1/users/${encodeURIComponent('quo"te')}`)).status, 404);
});

test("orchard enqueue --param takes constructor as a key and refuses __proto__", () => {
  const dict = parsePlistDict(Buffer.from(buildCommandPlist("Settings", ["constructor=a", "toString=b", "constructor=c"])));
  assert.deepEqual(dict.Command, { RequestType: "Settings", constructor: ["a", "c"], toString: "b" });
  assert.throws(() => buildCommandPlist("Settings", ["__proto__=x"]), UsageError);
});

test("the command enqueued log line counts the ids asked for", async () => {
  const ids = devices.map((d) => d.udid);
  for (const [query, list, expected] of [
    ["?nopush=1", ids, 3],
    ["", ids.slice(0, 2), 2],
    ["?nopush=1", [ids[0]!, "UNKNOWN-ID"], 2],
  ] as const) {
    const from = server.logs.length;
    const r = await server.api("PUT", `/v1/enqueue/${list.join(",")}${query}`, commandPlist("DeviceInformation"));
    assert.ok(r.status < 500 || query === "", r.text);
    const line = logsSince(from).find((l) => l.msg === "command enqueued");
    assert.ok(line, "a command enqueued line");
    assert.equal(line.ids, expected, JSON.stringify(line));
  }
});
