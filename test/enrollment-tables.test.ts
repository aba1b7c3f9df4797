// What Orchard keeps of a device or channel hangs off its id (architecture.md):
// every table with a device or channel id column cascades from devices or
// enrollments, or is emptied by hand on removal (CHANNEL_TABLES), or is
// history named here. A new table that is none of these fails this test, so
// that removing a device cannot leave its rows behind unnoticed.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { CHANNEL_TABLES, DEVICE_TABLES } from "../src/store/enrollments.ts";
import { openStore } from "../src/store/index.ts";

const ID_COLUMNS = new Set(["enrollment_id", "device_id", "udid"]);
/** Kept after a removal on purpose: history, certificates issued, counts that age out on their own. */
const HISTORY: Record<string, string> = {
  events: "the fleet's history",
  webhook_outbox: "events on their way out",
  userauth_failures: "failure counts, pruned after the rate-limit window",
  scep_certificates: "certificates issued (renewal and revocation need them)",
  credential_certificates: "DDM credential certificates issued",
  credential_challenges: "one-time challenges, expiring on their own",
};

test("every table with a device or channel id cascades, is emptied by removal, or is named history", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-tables-"));
  const store = await openStore(undefined, dir);
  try {
    const tables = await store.db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    const unaccounted: string[] = [];
    let checked = 0;
    for (const { name } of tables) {
      const columns = (await store.db.all<{ name: string }>(`PRAGMA table_info(${name})`))
        .map((c) => c.name)
        .filter((c) => ID_COLUMNS.has(c));
      if (columns.length === 0) continue;
      checked++;
      const keys = await store.db.all<{ table: string; from: string; on_delete: string }>(`PRAGMA foreign_key_list(${name})`);
      const cascades = keys.some((k) => ["devices", "enrollments"].includes(k.table) && k.on_delete === "CASCADE");
      const byHand = (CHANNEL_TABLES as readonly string[]).includes(name) || DEVICE_TABLES.some((t) => t.table === name);
      if (cascades || byHand || name in HISTORY) continue;
      unaccounted.push(`${name} (${columns.join(", ")})`);
    }
    assert.deepEqual(
      unaccounted,
      [],
      "add each to CHANNEL_TABLES (store/enrollments.ts), give it a cascading key, or name it history here",
    );
    assert.ok(checked >= 15, `${checked} tables checked`);
    for (const t of [...CHANNEL_TABLES, ...DEVICE_TABLES.map((d) => d.table)])
      assert.ok(
        tables.some((x) => x.name === t),
        `${t} is named for removal but does not exist`,
      );
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
