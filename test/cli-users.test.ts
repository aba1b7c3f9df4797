// `orchard users` and `orchard user-sessions`, run as child processes against a real server.
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import type { SimDevice, SimUser } from "../src/sim/device.ts";
import { challengeParams, digestResponse } from "./support/digest-client.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { runOrchard, type CliRun } from "./support/cli.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const REALM = "fusion.home";
const PASSWORD = "Pw-net1-7c1e9!";
const TIME = "\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d";

let server: TestServer;
let fleet: TestFleet;
let mac: SimDevice;
let tmp: string;
const net1: SimUser = { userId: randomUUID().toUpperCase(), shortName: "net1", longName: "Net One" };

/** `orchard <args>` against the test server; stdin is a pipe (never a terminal). */
function orchard(args: string[], input = ""): Promise<CliRun> {
  return runOrchard(args, { input, env: { ORCHARD_URL: server.url, ORCHARD_API_KEY: "test-api-key-0123456789abcdef" } });
}

const md5 = (s: string) => createHash("md5").update(s).digest("hex");

before(async () => {
  server = await startTestServer(["--digest-realm", REALM]);
  fleet = await testFleet(server.url);
  mac = await fleet.device();
  await mac.enroll();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-cli-users-"));
});

after(async () => {
  fleet?.close();
  await server?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test("users add --password-stdin stores an MD5 digest alone for the server's realm (no challenge offers SHA-256), never showing the password", async () => {
  const r = await orchard(["users", "add", "net1", "--password-stdin", "--guid", net1.userId, "--full-name", "Net One"], PASSWORD + "\n");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "created net1\n");
  const user = await server.api("GET", "/v1/users/net1");
  assert.equal(user.status, 200, user.text);
  assert.equal(user.json.guid, net1.userId);
  assert.equal(user.json.full_name, "Net One");
  assert.equal(user.json.state, "managed");
  // A second add of the name is refused before a password is read: it replaced the first's in silence.
  const again = await orchard(["users", "add", "net1", "--password-stdin", "--full-name", "Someone Else"], "another password\n");
  assert.equal(again.code, 1);
  assert.equal(again.stderr, "orchard: user net1 exists (orchard users set changes it)\n");
  assert.equal((await server.api("GET", "/v1/users/net1")).json.full_name, "Net One");
  assert.deepEqual(user.json.digests.map((d: { realm: string; algorithm: string }) => `${d.realm} ${d.algorithm}`).sort(), [
    `${REALM} MD5`,
  ]);
  assert.ok(!user.text.includes(PASSWORD));
  assert.ok(!(r.stdout + r.stderr).includes(PASSWORD));
  assert.ok(!server.logs.some((l) => l.includes(PASSWORD)), "the server logged the password");
});

test("users add without a password is refused (exit 2) unless --no-password", async () => {
  const [refused, both, declined] = await Promise.all([
    orchard(["users", "add", "net2"]),
    orchard(["users", "add", "net2", "--password-stdin", "--no-password"], "x\n"),
    orchard(["users", "add", "net3", "--no-password", "--state", "declined", "--json"]),
  ]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /^orchard: a password is needed: .*--password-stdin, or --no-password$/m);
  assert.match(refused.stderr, /^usage: orchard users add </m);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /^orchard: give --password-stdin or --no-password, not both$/m);
  assert.equal((await server.api("GET", "/v1/users/net2")).status, 404);

  assert.equal(declined.code, 0, declined.stderr);
  const answer = JSON.parse(declined.stdout);
  assert.equal(answer.short_name, "net3");
  assert.equal(answer.state, "declined");
  assert.deepEqual(answer.digests, []);
});

test("users set changes an existing user (state, name, password) and refuses an unknown one", async () => {
  const [set, unknown] = await Promise.all([
    orchard(["users", "set", "net3", "--state", "managed", "--full-name", "Net Three", "--password-stdin"], "other-pw\n"),
    orchard(["users", "set", "nosuch", "--state", "managed"]),
  ]);
  assert.equal(set.code, 0, set.stderr);
  assert.equal(set.stdout, "updated net3\n");
  const net3 = await server.api("GET", "/v1/users/net3");
  assert.equal(net3.json.state, "managed");
  assert.equal(net3.json.full_name, "Net Three");
  assert.deepEqual(net3.json.digests, [{ realm: REALM, algorithm: "MD5" }], "the password's MD5 digest");

  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /^orchard: no such user nosuch /m);
  assert.equal((await server.api("GET", "/v1/users/nosuch")).status, 404);
});

test("users list and show print the users with their digests; --json matches the API", async () => {
  const [table, json, show] = await Promise.all([
    orchard(["users", "list"]),
    orchard(["users", "list", "--json", "--limit", "1", "--all"]),
    orchard(["users", "show", "net1"]),
  ]);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^SHORT NAME\s+GUID\s+FULL NAME\s+STATE\s+DIGESTS\s+UPDATED$/);
  assert.match(lines[1]!, new RegExp(`^net1\\s+${net1.userId}\\s+Net One\\s+managed\\s+fusion\\.home MD5\\s+${TIME}$`));
  assert.match(lines[2]!, new RegExp(`^net3\\s+-\\s+Net Three\\s+managed\\s+fusion\\.home MD5\\s+${TIME}$`));
  assert.equal(lines.length, 3);

  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), (await server.api("GET", "/v1/users")).json);

  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /^short name: net1$/m);
  assert.match(show.stdout, new RegExp(`^guid:\\s+${net1.userId}$`, "m"));
  assert.match(show.stdout, /^digests:\s+fusion\.home MD5$/m);
});

test("users import adds the realm's htdigest lines, lists other realms and bad lines; all bad exits 1", async () => {
  const file = path.join(tmp, "users.htdigest");
  fs.writeFileSync(
    file,
    [
      "# Orchard network users",
      `net4:${REALM}:${md5(`net4:${REALM}:pw4`)}`,
      `net5:other.realm:${md5("net5:other.realm:pw5")}`,
      "broken-line-without-fields",
      "",
    ].join("\n"),
  );
  const [good, bad] = await Promise.all([orchard(["users", "import", file]), orchard(["users", "import", "-", "--json"], "a:b\n")]);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /^realm fusion\.home: created 1, updated 0$/m);
  assert.match(good.stdout, /^ {2}net5 \(realm other\.realm\)$/m);
  assert.match(good.stdout, /^ {2}line 4: field-count$/m);
  const net4 = await server.api("GET", "/v1/users/net4");
  assert.equal(net4.status, 200);
  assert.deepEqual(net4.json.digests, [{ realm: REALM, algorithm: "MD5" }]);
  assert.equal((await server.api("GET", "/v1/users/net5")).status, 404);

  assert.equal(bad.code, 1);
  assert.deepEqual(JSON.parse(bad.stdout), {
    realm: REALM,
    server_realm: REALM,
    created: 0,
    updated: 0,
    sessions_ended: 0,
    file_realms: [],
    other_realms: [],
    errors: [{ line: 1, reason: "field-count" }],
  });
  assert.match(bad.stderr, /^orchard: nothing was imported$/m);
});

test("users import of a file for another realm imports nothing, names the file's realm, exits 1; --realm imports it", async () => {
  const lines = [`net6:lab.example:${md5("net6:lab.example:pw6")}`, `net7:lab.example:${md5("net7:lab.example:pw7")}`, ""].join("\n");
  const refused = await orchard(["users", "import", "-"], lines);
  assert.equal(refused.code, 1, refused.stdout);
  assert.match(refused.stdout, /^realm fusion\.home: created 0, updated 0$/m);
  assert.match(
    refused.stderr,
    /^orchard: nothing was imported: the file is for realm lab\.example \(2 lines\), the import was for fusion\.home$/m,
  );
  assert.match(refused.stderr, /give --realm lab\.example to import them/);
  assert.equal((await server.api("GET", "/v1/users/net6")).status, 404);

  const imported = await orchard(["users", "import", "-", "--realm", "lab.example"], lines);
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /^realm lab\.example: created 2, updated 0$/m);
  assert.match(imported.stdout, /log in once the server runs with --digest-realm lab\.example \(it is fusion\.home now\)/);
  const net6 = await server.api("GET", "/v1/users/net6");
  assert.deepEqual(net6.json.digests, [{ realm: "lab.example", algorithm: "MD5" }]);
});

test("user-sessions shows a Mac's login of a network user; --json parses", async () => {
  // The Mac logs net1 in with the password given on stdin above.
  const first = await mac.checkin("UserAuthenticate", { UserID: net1.userId });
  const { nonce } = challengeParams(first.plist!.DigestChallenge as string);
  const second = await mac.checkin("UserAuthenticate", {
    UserID: net1.userId,
    DigestResponse: digestResponse({ username: "net1", password: PASSWORD, realm: REALM, nonce: nonce! }),
  });
  assert.equal(typeof second.plist?.AuthToken, "string", "the password the CLI set does not log in");

  const [table, json] = await Promise.all([orchard(["user-sessions"]), orchard(["user-sessions", "--json", "--device", mac.udid])]);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^ENROLLMENT\s+SHORT NAME\s+STATE\s+TOKEN ISSUED\s+TOKEN LAST USED\s+UPDATED$/);
  assert.match(lines[1]!, new RegExp(`^${mac.udid}\\S*\\s+net1\\s+authenticated\\s+${TIME}\\s+-\\s+${TIME}$`));
  assert.equal(lines.length, 2);

  assert.equal(json.code, 0, json.stderr);
  const answer = JSON.parse(json.stdout);
  assert.deepEqual(answer, (await server.api("GET", `/v1/user-sessions?device=${mac.udid}`)).json);
  assert.equal(answer.sessions.length, 1);
  assert.equal(answer.sessions[0].state, "authenticated");
  // None, said in words as the other lists do.
  const none = await orchard(["user-sessions", "--device", "NO-SUCH-MAC"]);
  assert.equal(none.stdout, "no network-user sessions on NO-SUCH-MAC\n");
});

test("users remove deletes the user and says how many sessions were revoked", async () => {
  const r = await orchard(["users", "remove", "net1"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "removed net1; revoked 1 session\n");
  assert.equal((await server.api("GET", "/v1/users/net1")).status, 404);
  const sessions = await server.api("GET", `/v1/user-sessions?device=${mac.udid}`);
  assert.equal(sessions.json.sessions[0].state, "revoked");
});

test("users import gives a user added with a password its new password only", async () => {
  const net8: SimUser = { userId: randomUUID().toUpperCase(), shortName: "net8" };
  const added = await orchard(["users", "add", "net8", "--guid", net8.userId, "--password-stdin"], "old-pw-8\n");
  assert.equal(added.code, 0, added.stderr);
  const file = path.join(tmp, "net8.htdigest");
  fs.writeFileSync(file, `net8:${REALM}:${md5(`net8:${REALM}:new-pw-8`)}\n`);
  const imported = await orchard(["users", "import", file]);
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /^realm fusion\.home: created 0, updated 1$/m);

  const list = await orchard(["users", "list"]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`^net8\\s+${net8.userId}\\s+-\\s+managed\\s+fusion\\.home MD5\\s+${TIME}$`, "m"));

  const mac2 = await fleet.device();
  await mac2.enroll();
  const login = async (password: string, algorithm: "MD5") => {
    const first = await mac2.checkin("UserAuthenticate", { UserID: net8.userId });
    const { nonce } = challengeParams(first.plist!.DigestChallenge as string);
    const response = digestResponse({ username: "net8", password, realm: REALM, nonce: nonce!, algorithm });
    return (await mac2.checkin("UserAuthenticate", { UserID: net8.userId, DigestResponse: response })).plist!.AuthToken;
  };
  // The old password's digest is gone (the list above); the old password fails, the imported one logs in.
  assert.equal(await login("old-pw-8", "MD5"), "", "the old password still logs in");
  assert.notEqual(await login("new-pw-8", "MD5"), "", "the imported password does not log in");
});
