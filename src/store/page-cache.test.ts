import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { openStore, type Store } from "./index.ts";
import { PAGE_CACHE_MAX_KIB, PAGE_CACHE_MIN_KIB, pageCacheKib, SqliteDatabase } from "./sqlite.ts";

// SQLite's page cache follows the fleet: small for a small store, as large as
// better-sqlite3's 16 MB default from about 100,000 enrollment channels.

test("the page cache grows with the channels, between 4 MB and 16 MB", () => {
  assert.equal(pageCacheKib(0), PAGE_CACHE_MIN_KIB);
  assert.equal(pageCacheKib(20_000), PAGE_CACHE_MIN_KIB);
  assert.equal(pageCacheKib(50_000), 8000);
  assert.equal(pageCacheKib(100_000), PAGE_CACHE_MAX_KIB);
  assert.equal(pageCacheKib(1_000_000), PAGE_CACHE_MAX_KIB);
  for (let n = 0; n < 120_000; n += 1000) assert.ok(pageCacheKib(n + 1000) >= pageCacheKib(n));
});

test("a SQLite store sizes its page cache from its enrollments when opened, and again when asked", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-page-cache-"));
  const open: Array<{ close(): Promise<void> }> = [];
  // Closed before the directory goes (after hooks run in the order they were added).
  t.after(async () => {
    for (const s of open) await s.close().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  });
  // SQLite answers a cache size in KiB as a negative number.
  const cacheOf = async (store: Store) => -Number((await store.db.get<{ cache_size: number }>("PRAGMA cache_size"))?.cache_size);

  const store = await openStore(undefined, dir);
  open.push(store);
  assert.ok(store.db instanceof SqliteDatabase);
  assert.equal(await cacheOf(store), PAGE_CACHE_MIN_KIB);

  // 60,000 device channels, written in SQL: a 9.6 MB cache.
  await store.db.exec(`
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 59999)
    INSERT INTO devices (id, topic, cert_fingerprint, authenticated_at, created_at) SELECT 'D' || i, 'topic', 'fp' || i, 1, 1 FROM n;
    INSERT INTO enrollments (id, device_id, type, enabled, topic, push_token, push_magic, token_update_count, created_at, updated_at)
      SELECT id, id, 'Device', 1, 'topic', 'token', 'magic', 1, 1, 1 FROM devices;`);
  assert.equal(await store.enrollments.channelCount(), 60_000);
  assert.equal(await cacheOf(store), PAGE_CACHE_MIN_KIB, "not resized until asked");
  await store.fitCacheToFleet();
  assert.equal(await cacheOf(store), 9600);
  await store.close();
  open.pop();

  const reopened = await openStore(undefined, dir);
  open.push(reopened);
  assert.equal(await cacheOf(reopened), pageCacheKib(60_000));
});
