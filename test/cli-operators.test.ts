// `orchard operators`, `orchard tokens` and `orchard audit` against a real
// server: the first admin added with the API key, a password never taken
// from argv, a personal token used in place of the API key, the CLI's
// changes in the audit log.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { runWith } from "../src/cli/client-commands.ts";
import { cliContext } from "./support/cli.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const PASSWORD = "cli operator password";
let server: TestServer;

before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

async function orchard(args: string[], o: { stdin?: string; apiKey?: string } = {}) {
  const ctx = cliContext(server.url, { stdin: o.stdin });
  if (o.apiKey) ctx.env.ORCHARD_API_KEY = o.apiKey;
  const code = await runWith(ctx, args[0]!, args.slice(1));
  return { code, stdout: ctx.stdout, stderr: ctx.stderr };
}

test("operators add takes the password from stdin (or a terminal), never from argv", async () => {
  const noPassword = await orchard(["operators", "add", "ada", "--role", "admin"]);
  assert.equal(noPassword.code, 2, "no terminal and no --password-stdin");
  assert.match(noPassword.stderr, /--password-stdin/);
  const added = await orchard(["operators", "add", "ada", "--role", "admin", "--password-stdin"], { stdin: PASSWORD + "\n" });
  assert.equal(added.code, 0, added.stderr);
  assert.equal(added.stdout, "added ada (admin)\n");
  assert.equal((await orchard(["operators", "add", "bo", "--role", "auditor", "--password-stdin"], { stdin: PASSWORD })).code, 0);
  const list = await orchard(["operators", "list"]);
  assert.match(list.stdout, /^NAME\s+ROLE\s+DISABLED\s+PASSWORD CHANGED\nada\s+admin\s+.*\nbo\s+auditor\s/);
  assert.equal((await orchard(["operators", "set-role", "bo", "operator"])).stdout, "bo is now operator\n");
  assert.equal((await orchard(["operators", "disable", "bo"])).stdout, "disabled bo\n");
  assert.equal((await orchard(["operators", "enable", "bo"])).stdout, "enabled bo\n");
  const pw = await orchard(["operators", "password", "bo", "--password-stdin"], { stdin: "another long password\n" });
  assert.equal(pw.code, 0, pw.stderr);
  const bad = await orchard(["operators", "set-role", "bo", "root"]);
  assert.equal(bad.code, 2);
});

test("tokens create prints the token once; it then works as the CLI's API key, with its role", async () => {
  const made = await orchard(["tokens", "create", "--label", "laptop", "--operator", "bo", "--role", "auditor", "--expires", "7d"]);
  assert.equal(made.code, 0, made.stderr);
  const token = made.stdout.trim();
  assert.match(token, /^orchard_pat_/);
  assert.match(made.stderr, /for bo \(auditor\)/);
  const list = await orchard(["tokens", "list", "--operator", "bo"]);
  assert.ok(!list.stdout.includes(token) && list.stdout.includes("laptop"));
  // A token made at its owner's role shows the lower one once the owner is demoted.
  assert.equal((await orchard(["tokens", "create", "--label", "desk", "--operator", "bo"])).code, 0);
  assert.equal((await orchard(["operators", "set-role", "bo", "auditor"])).code, 0);
  assert.match((await orchard(["tokens", "list", "--operator", "bo"])).stdout, /bo\s+desk\s+auditor \(made operator\)\s/);
  assert.match((await orchard(["tokens", "list", "--operator", "bo"])).stdout, /bo\s+laptop\s+auditor\s/);
  assert.equal((await orchard(["operators", "set-role", "bo", "operator"])).code, 0);
  // An auditor token reads but changes nothing.
  assert.equal((await orchard(["operators", "list"], { apiKey: token })).code, 1, "accounts are the admin's");
  const own = await orchard(["tokens", "list"], { apiKey: token });
  assert.equal(own.code, 0, own.stderr);
  assert.match(own.stdout, /laptop/);
  const id = /^(\S+)\s+bo\s+laptop/m.exec(own.stdout)![1]!;
  const revoked = await orchard(["tokens", "revoke", id], { apiKey: token });
  assert.equal(revoked.stdout, `revoked token ${id} of bo\n`);
  const after = await orchard(["tokens", "list"], { apiKey: token });
  assert.equal(after.code, 1);
  assert.match(after.stderr, /401|API key/);
});

test("audit lists the CLI's changes, newest first, with filters", async () => {
  const all = await orchard(["audit", "--json"]);
  assert.equal(all.code, 0, all.stderr);
  const entries = JSON.parse(all.stdout).entries as Array<{ actor: string; action: string; objects: string[] }>;
  const actions = entries.map((e) => e.action);
  assert.equal(actions.at(-1), "operator.add");
  assert.ok(actions.includes("token.create") && actions.includes("token.revoke") && actions.includes("operator.change"));
  assert.ok(!all.stdout.includes(PASSWORD) && !all.stdout.includes("another long password"));
  const revokes = await orchard(["audit", "--action", "token.revoke"]);
  assert.match(revokes.stdout, /bo\s+token:\S+\s+token\.revoke/);
  const byObject = await orchard(["audit", "--object", "ada", "--json"]);
  assert.deepEqual(
    JSON.parse(byObject.stdout).entries.map((e: { action: string }) => e.action),
    ["operator.add"],
  );
});
