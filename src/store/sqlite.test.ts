import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import { SqliteDatabase } from "./sqlite.ts";

// The group commit of SqliteDatabase.transaction: the transactions asked for
// in one turn of the event loop share one BEGIN/COMMIT, each in a savepoint.

function open(t: { after(fn: () => void): void }): { db: SqliteDatabase; file: string; reader: BetterSqlite3.Database } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-sqlite-group-"));
  const file = path.join(dir, "test.db");
  const db = new SqliteDatabase(file);
  // Another connection: it sees only what is committed.
  const reader = new BetterSqlite3(file);
  t.after(() => {
    reader.close();
    void db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { db, file, reader };
}

const names = (reader: BetterSqlite3.Database) =>
  (reader.prepare("SELECT name FROM t ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);

test("transactions asked for together commit together, each answered only once its rows are committed", async (t) => {
  const { db, reader } = open(t);
  await db.exec("CREATE TABLE t (name TEXT PRIMARY KEY)");
  const seenAtAnswer: string[][] = [];
  const all = ["a", "b", "c", "d"].map((name) =>
    db
      .transaction(async (tx) => {
        await tx.run("INSERT INTO t (name) VALUES (?)", [name]);
        // Not committed while the group runs: the other connection sees nothing yet.
        assert.deepEqual(names(reader), []);
        return name.toUpperCase();
      })
      .then((result) => {
        seenAtAnswer.push(names(reader));
        return result;
      }),
  );
  assert.deepEqual(await Promise.all(all), ["A", "B", "C", "D"]);
  for (const seen of seenAtAnswer) assert.deepEqual(seen, ["a", "b", "c", "d"]);
});

test("a member that throws is rolled back alone; the members after it see what the ones before it wrote", async (t) => {
  const { db, reader } = open(t);
  await db.exec("CREATE TABLE t (name TEXT PRIMARY KEY)");
  const first = db.transaction(async (tx) => tx.run("INSERT INTO t (name) VALUES ('first')"));
  const failing = db.transaction(async (tx) => {
    await tx.run("INSERT INTO t (name) VALUES ('failing')");
    throw new Error("the handler refused");
  });
  const duplicate = db.transaction(async (tx) => tx.run("INSERT INTO t (name) VALUES ('first')"));
  const last = db.transaction(async (tx) => {
    const seen = await tx.all<{ name: string }>("SELECT name FROM t ORDER BY name");
    await tx.run("INSERT INTO t (name) VALUES ('last')");
    return seen.map((r) => r.name);
  });
  assert.equal(await first, 1);
  await assert.rejects(failing, /the handler refused/);
  await assert.rejects(duplicate, (err: { code?: string }) => err.code === "SQLITE_CONSTRAINT_PRIMARYKEY");
  assert.deepEqual(await last, ["first"]);
  assert.deepEqual(names(reader), ["first", "last"]);
});

test("when the whole transaction is lost under a member, the members before it fail too and the rest commit", async (t) => {
  const { db, reader } = open(t);
  await db.exec("CREATE TABLE t (name TEXT PRIMARY KEY)");
  const before = db.transaction(async (tx) => tx.run("INSERT INTO t (name) VALUES ('before')"));
  // As SQLite does on a full disk or an I/O error: the transaction is rolled back under the statement.
  const lost = db.transaction(async (tx) => {
    await tx.run("INSERT INTO t (name) VALUES ('lost')");
    await tx.exec("ROLLBACK");
    throw Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
  });
  const after = db.transaction(async (tx) => tx.run("INSERT INTO t (name) VALUES ('after')"));
  await assert.rejects(before, /disk is full/);
  await assert.rejects(lost, /disk is full/);
  assert.equal(await after, 1);
  assert.deepEqual(names(reader), ["after"]);
});

test("statements outside a transaction wait for the group; transactions asked for meanwhile form the next one", async (t) => {
  const { db, reader } = open(t);
  await db.exec("CREATE TABLE t (name TEXT PRIMARY KEY)");
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const slow = db.transaction(async (tx) => {
    await tx.run("INSERT INTO t (name) VALUES ('slow')");
    await gate;
  });
  await new Promise((r) => setImmediate(r));
  // The group is open: a plain read waits for its end, and sees its commit.
  const read = db.all<{ name: string }>("SELECT name FROM t");
  const next = db.transaction(async (tx) => tx.run("INSERT INTO t (name) VALUES ('next')"));
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(names(reader), []);
  release();
  await slow;
  assert.deepEqual(
    (await read).map((r) => r.name),
    ["slow"],
  );
  await next;
  assert.deepEqual(names(reader), ["next", "slow"]);
});

test("one transaction alone runs as before: its error is its own and nothing of it stays", async (t) => {
  const { db, reader } = open(t);
  await db.exec("CREATE TABLE t (name TEXT PRIMARY KEY)");
  await assert.rejects(
    db.transaction(async (tx) => {
      await tx.run("INSERT INTO t (name) VALUES ('x')");
      throw new Error("no");
    }),
    /no/,
  );
  assert.deepEqual(names(reader), []);
  assert.equal(await db.transaction(async (tx) => tx.run("INSERT INTO t (name) VALUES ('y')")), 1);
  assert.deepEqual(names(reader), ["y"]);
});

test("the store's files are the owner's alone: created 0600 whatever the umask, existing ones narrowed", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-sqlite-mode-"));
  const mode = (f: string) => fs.statSync(f).mode & 0o777;
  const before = process.umask(0o022);
  try {
    const file = path.join(dir, "new.db");
    const db = new SqliteDatabase(file);
    await db.exec("CREATE TABLE t (x INTEGER)");
    await db.run("INSERT INTO t (x) VALUES (1)");
    for (const f of [file, `${file}-wal`, `${file}-shm`]) assert.equal(mode(f), 0o600, f);
    await db.close();
    // One made world-readable by something else (a copy, a restore, another tool) is narrowed when opened.
    const old = path.join(dir, "old.db");
    fs.writeFileSync(old, "");
    fs.chmodSync(old, 0o644);
    const again = new SqliteDatabase(old);
    assert.equal(mode(old), 0o600);
    await again.close();
  } finally {
    process.umask(before);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
