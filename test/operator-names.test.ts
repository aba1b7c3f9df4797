// Operator names unique ignoring case in the store (migration 28, a unique
// index on lower(name)), and a store written before the rule that holds two
// names differing only in case: the index is held back, the server starts and
// says which names and what to do, and the index is made at the first start
// after one of each pair is removed. On both stores.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test, type TestContext } from "node:test";
import { runWith } from "../src/cli/client-commands.ts";
import { openStore, type Store } from "../src/store/index.ts";
import { cliContext } from "./support/cli.ts";
import { createTestDatabase, forEachBackend } from "./support/postgres.ts";
import { startTestServer } from "./support/server.ts";

/** A data dir of the test's own, removed after it. */
function tempDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-operator-names-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An operator written straight into the table, as a store of before the rule could hold. */
function insertOperator(store: Store, name: string) {
  return store.db.run(
    `INSERT INTO operators (name, role, password_hash, disabled, created_at, updated_at, password_changed_at)
     VALUES (?, 'admin', 'x', 0, 0, 0, 0)`,
    [name],
  );
}

/** The store as an Orchard before migration 28 left it, with these operators. */
async function storeBeforeTheRule(url: string, dir: string, names: string[]): Promise<void> {
  const store = await openStore(url, dir);
  try {
    await store.db.exec("DROP INDEX operators_name_folded");
    await store.db.run("DELETE FROM schema_migrations WHERE version = 28");
    for (const name of names) await insertOperator(store, name);
  } finally {
    await store.close();
  }
}

await forEachBackend("operator names ignoring case in the store", (backend) => {
  let url: string;
  let drop: (() => Promise<void>) | undefined;
  after(() => drop?.());

  test("a store holding names that differ only in case: the index is held back and said, then made once they are gone", async (t) => {
    const dir = tempDir(t);
    if (backend === "postgres") {
      const database = await createTestDatabase();
      url = database.url;
      drop = database.drop;
    } else url = `sqlite:${path.join(dir, "names.db")}`;
    const fresh = await openStore(url, dir);
    assert.ok(fresh.migrated.includes(28));
    assert.deepEqual(fresh.heldMigrations, []);
    await fresh.close();

    await storeBeforeTheRule(url, dir, ["Alice", "alice", "BOB", "bob", "Bob", "carol"]);
    const held = await openStore(url, dir);
    try {
      assert.deepEqual(held.migrated, []);
      assert.equal(held.heldMigrations.length, 1);
      const [h] = held.heldMigrations;
      assert.deepEqual([h!.version, h!.name], [28, "operator-names-folded"]);
      assert.match(h!.reason, /^operator names that differ only in letter case: "Alice" and "alice"; "BOB" and "Bob" and "bob"\. /);
      assert.match(h!.reason, /remove all but one of each \(orchard operators remove NAME, or DELETE \/v1\/operators\/NAME\)/);
      // The store works meanwhile, and add's own check still keeps a new case variant out.
      assert.equal(await held.operators.add({ name: "CAROL", role: "auditor", passwordHash: "x" }, 1), "carol");
      assert.equal((await held.operators.get("alice"))?.name, "alice", "each old account still signs in by its name");
      // Not recorded as applied: tried again at the next start, and held again.
      assert.equal(await held.db.get("SELECT version FROM schema_migrations WHERE version = 28"), undefined);
      for (const name of ["alice", "BOB", "bob"]) assert.equal(await held.operators.remove(name), true);
    } finally {
      await held.close();
    }
    const mended = await openStore(url, dir);
    try {
      assert.deepEqual([mended.migrated, mended.heldMigrations], [[28], []]);
      await assert.rejects(insertOperator(mended, "ALICE"), /unique|UNIQUE/);
    } finally {
      await mended.close();
    }
  });
});

test("orchard serve on such a store: starts, says the names and the fix in a warning, refuses a new case variant with 409", async (t) => {
  const dir = tempDir(t);
  const url = `sqlite:${path.join(dir, "served.db")}`;
  await openStore(url, dir).then((s) => s.close());
  await storeBeforeTheRule(url, dir, ["Dana", "dana"]);
  // One secret key for both starts: the credential CA the first makes in the store is sealed with it.
  const args = ["--storage", url, "--secret-key", "operator names test secret key, long enough"];
  const server = await startTestServer(args);
  try {
    const line = server.logs.find((l) => l.includes("STORE MIGRATION 28 (operator-names-folded) HELD BACK"));
    assert.ok(line, server.logs.join("\n"));
    const logged = JSON.parse(line) as { level: number; msg: string; migration: number };
    assert.equal(logged.level, 40, "a warning");
    assert.equal(logged.migration, 28);
    assert.match(logged.msg, /"Dana" and "dana"/);
    const dup = await server.api("POST", "/v1/operators", { name: "DANA", role: "auditor", password: "a long passphrase here" });
    assert.deepEqual(
      [dup.status, dup.json.code, dup.json.error],
      [409, "conflict", "an operator has this name in other letter case: Dana"],
    );
    // orchard operators add: the same 409, said.
    const ctx = cliContext(server.url, { stdin: "a long passphrase here\n" });
    assert.equal(await runWith(ctx, "operators", ["add", "dANA", "--role", "auditor", "--password-stdin"]), 1);
    assert.equal(ctx.stderr, "orchard: an operator has this name in other letter case: Dana\n");
    assert.equal((await server.api("DELETE", "/v1/operators/dana")).status, 200);
  } finally {
    await server.stop();
  }
  const again = await startTestServer(args);
  try {
    assert.equal(
      again.logs.some((l) => l.includes("HELD BACK")),
      false,
    );
    assert.ok(
      again.logs.some((l) => l.includes("store schema migrated") && l.includes("28")),
      again.logs.join("\n"),
    );
  } finally {
    await again.stop();
  }
});
