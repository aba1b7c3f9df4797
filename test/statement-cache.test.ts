// Prepared statements stay bounded however many list lengths the store sees
// (src/store/statement-cache.ts), on both backends.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { openStore, type Store } from "../src/store/index.ts";
import { PostgresDatabase } from "../src/store/postgres.ts";
import { SqliteDatabase } from "../src/store/sqlite.ts";
import { LIST_PLACEHOLDERS, LIST_STATEMENTS_KEPT, placeholders, StatementCache } from "../src/store/statement-cache.ts";
import { createTestDatabase, forEachBackend } from "./support/postgres.ts";

const inList = (n: number) => `SELECT id FROM enrollments WHERE id IN (${Array(n).fill("?").join(", ")})`;

describe("StatementCache", () => {
  it("counts placeholders", () => {
    assert.equal(placeholders("SELECT 1"), 0);
    assert.equal(placeholders(inList(3)), 3);
  });

  it("keeps every fixed statement and the last few list statements", () => {
    const prepared: string[] = [];
    const cache = new StatementCache((sql) => (prepared.push(sql), { sql }));
    const fixed = cache.get("SELECT ? FROM t WHERE a = ?");
    for (let n = 1; n <= 300; n++) cache.get(inList(n));
    assert.equal(cache.get("SELECT ? FROM t WHERE a = ?"), fixed, "a fixed statement is prepared once");
    assert.deepEqual(cache.size, { fixed: LIST_PLACEHOLDERS + 1, lists: LIST_STATEMENTS_KEPT });
    const before = prepared.length;
    cache.get(inList(300)); // among the last kept
    assert.equal(prepared.length, before);
    cache.get(inList(LIST_PLACEHOLDERS + 1)); // dropped long ago: prepared again
    assert.equal(prepared.length, before + 1);
    assert.equal(cache.size.lists, LIST_STATEMENTS_KEPT);
  });
});

await forEachBackend("prepared statements of list queries", (backend) => {
  let store: Store;
  let drop: (() => Promise<void>) | undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-stmt-"));

  before(async () => {
    if (backend === "sqlite") store = await openStore(undefined, dir);
    else {
      const database = await createTestDatabase();
      drop = database.drop;
      // One connection, so that pg_prepared_statements is that of every query.
      store = await openStore(database.url, dir, 1);
    }
  });
  after(async () => {
    await store.close();
    await drop?.();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("answers lists of every length and keeps a bounded number of their statements", async () => {
    const db = store.db;
    for (let n = 1; n <= 200; n++) {
      const ids = Array.from({ length: n }, (_, i) => `missing-${i}`);
      assert.deepEqual(await db.all(inList(n), ids), []);
    }
    if (db instanceof SqliteDatabase) {
      assert.equal(db.statements.size.lists, LIST_STATEMENTS_KEPT);
      assert.ok(db.statements.size.fixed < 400, `fixed statements: ${db.statements.size.fixed}`);
    } else {
      assert.ok(db instanceof PostgresDatabase);
      assert.equal(db.queries.size.lists, LIST_STATEMENTS_KEPT);
      // Lists run unnamed: the connection keeps the lengths up to LIST_PLACEHOLDERS only.
      const [row] = await db.all<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement LIKE 'SELECT id FROM enrollments WHERE id IN (%'",
      );
      assert.equal(row!.n, LIST_PLACEHOLDERS);
    }
  });
});
