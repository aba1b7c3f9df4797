import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { SqliteDatabase } from "./sqlite.ts";
import { isStoreUnavailable, StoreUnavailable, storeError } from "./unavailable.ts";

const coded = (code: string, message = "x") => Object.assign(new Error(message), { code });

test("connection-level PostgreSQL errors are an outage", () => {
  for (const code of ["08000", "08003", "08006", "08001", "08004", "57P01", "57P02", "57P03", "53300", "53100"]) {
    assert.ok(isStoreUnavailable(coded(code)), code);
  }
  for (const code of ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"]) {
    assert.ok(isStoreUnavailable(coded(code)), code);
  }
  for (const message of [
    "Connection terminated unexpectedly",
    "Connection terminated",
    "Connection terminated due to connection timeout",
    "timeout exceeded when trying to connect",
    "Client has encountered a connection error and is not queryable",
  ]) {
    assert.ok(isStoreUnavailable(new Error(message)), message);
  }
  // Passing conditions the same request gets past when sent again: a deadlock, a
  // serialization failure, a statement timeout, no file descriptor left.
  for (const code of ["40P01", "40001", "57014", "EMFILE", "ENFILE"]) assert.ok(isStoreUnavailable(coded(code)), code);
  // Node's connect to "localhost": one error per address tried.
  assert.ok(isStoreUnavailable(new AggregateError([coded("ECONNREFUSED"), coded("ECONNREFUSED")], "")));
  assert.ok(isStoreUnavailable(new Error("wrapped", { cause: coded("57P01") })));
  // At connect: a password or pg_hba.conf changed, the database dropped or closed to connections (walkthrough: a 500).
  for (const code of ["28P01", "28000", "3D000"]) assert.ok(isStoreUnavailable(coded(code)), code);
  assert.ok(isStoreUnavailable(coded("55000", 'database "orchard" is not currently accepting connections')));
});

test("errors that mean a bug, bad data or a conflict stay what they are", () => {
  // unique_violation, syntax_error, invalid_text_representation, undefined_table, an internal error
  for (const code of ["23505", "42601", "22P02", "42P01", "XX000", "22021", "55P03"]) {
    assert.equal(isStoreUnavailable(coded(code)), false, code);
  }
  for (const code of ["SQLITE_CONSTRAINT_UNIQUE", "SQLITE_ERROR", "SQLITE_MISMATCH", "ENOENT", "ERR_INVALID_ARG_TYPE"]) {
    assert.equal(isStoreUnavailable(coded(code)), false, code);
  }
  const others = [new TypeError("Cannot read properties of undefined"), new Error("Connection string invalid"), "text", null, undefined, 5];
  for (const err of others) {
    assert.equal(isStoreUnavailable(err), false, String(err));
  }
  // A message that only looks like pg's is not believed when the error has a SQLSTATE.
  assert.equal(isStoreUnavailable(coded("23505", "Connection terminated")), false);
  // object_not_in_prerequisite_state from a query (currval before nextval): a bug, not an outage.
  assert.equal(isStoreUnavailable(coded("55000", 'currval of sequence "s" is not yet defined in this session')), false);
  assert.equal(isStoreUnavailable(new AggregateError([coded("ECONNREFUSED"), new TypeError("bug")], "")), false);
  const bug = new Error("bug");
  assert.equal(storeError(bug), bug);
});

test("a real refused PostgreSQL connection is classified", async () => {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const client = new pg.Client({ connectionString: `postgres://root@127.0.0.1:${port}/none` });
  const err = await client.connect().then(
    () => assert.fail("connected"),
    (e: unknown) => e,
  );
  assert.ok(isStoreUnavailable(err), String(err));
});

test("SQLite: the write lock held by another process past busy_timeout is StoreUnavailable; a constraint is not", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-unavailable-"));
  const file = path.join(dir, "db.sqlite");
  const db = new SqliteDatabase(file);
  const other = new BetterSqlite3(file);
  try {
    await db.exec("CREATE TABLE t (k TEXT PRIMARY KEY)");
    await db.run("INSERT INTO t (k) VALUES (?)", ["a"]);
    const duplicate = db.run("INSERT INTO t (k) VALUES (?)", ["a"]);
    await assert.rejects(duplicate, (err: unknown) => !(err instanceof StoreUnavailable) && /UNIQUE/.test(String(err)));
    other.exec("BEGIN IMMEDIATE"); // another process writing (waits out Orchard's 5 s busy timeout)
    await assert.rejects(db.run("INSERT INTO t (k) VALUES (?)", ["b"]), (err: unknown) => {
      assert.ok(err instanceof StoreUnavailable, String(err));
      assert.match(String((err.cause as { code?: string }).code), /^SQLITE_BUSY/);
      return true;
    });
    await assert.rejects(
      db.transaction(async (tx) => tx.run("INSERT INTO t (k) VALUES (?)", ["c"])),
      StoreUnavailable,
    );
    other.exec("ROLLBACK");
    assert.equal(await db.run("INSERT INTO t (k) VALUES (?)", ["b"]), 1, "works again once the lock is gone");
  } finally {
    other.close();
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
