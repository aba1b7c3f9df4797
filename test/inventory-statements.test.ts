// The inventory's comparison read (InventoryStore.learn): which fields a
// message gives is the device's choice, so the statement texts it prepares
// must not grow with the combinations: at most one per field and source.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStore } from "../src/store/index.ts";
import type { InventoryField } from "../src/store/inventory.ts";
import { SqliteDatabase } from "../src/store/sqlite.ts";

const FIELDS: InventoryField[] = ["device_name", "os_version", "build_version", "model_name", "marketing_name", "wifi_mac", "time_zone"];

test("messages giving every combination of fields prepare at most one comparison read per field", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-inventory-statements-"));
  const store = await openStore(undefined, dir);
  try {
    assert.ok(store.db instanceof SqliteDatabase);
    await store.db.run(
      `INSERT INTO devices (id, serial_number, product_name, platform, model_name, os_version, build_version, cert_fingerprint,
         authenticated_at, created_at) VALUES ('MAC-1', 'C02X', 'Mac14,2', 'macOS', 'MacBook Air', '14.6', '23G80', 'fp', 1, 1)`,
    );
    // Every non-empty subset of the fields (127 of them), each a message of its own, with new values half the time.
    const before = store.db.statements.size.fixed;
    for (let mask = 1; mask < 1 << FIELDS.length; mask++) {
      const values = Object.fromEntries(FIELDS.filter((_, i) => mask & (1 << i)).map((f) => [f, `${f}-${mask % 2}`]));
      await store.transaction((tx) => tx.inventory.learn("MAC-1", values, "ddm-status", 1_000 + mask));
    }
    const prepared = store.db.statements.size.fixed - before;
    // The comparison reads (at most one per field), the first message's empty row, the full read and the write.
    assert.ok(prepared <= FIELDS.length + 3, `${prepared} statements prepared for ${(1 << FIELDS.length) - 1} combinations`);
    const r = await store.inventory.get("MAC-1");
    assert.equal(r?.values.time_zone, "time_zone-1");
    assert.equal(r?.learned.time_zone?.source, "ddm-status");
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
