// A channel's raw DDM status reports: the last REPORTS_KEPT, newest first, as
// a ring of slots (migration 023), on both stores; and a store made before
// the ring keeps each channel's newest reports through the migration.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { decodeStatusReport } from "../src/protocol/ddm.ts";
import pg from "pg";
import { REPORTS_KEPT } from "../src/store/ddm-status.ts";
import { CHANNEL_TABLES } from "../src/store/enrollments.ts";
import { openStore, type Store } from "../src/store/index.ts";
import { forDialect } from "../src/store/migrations/index.ts";
import { sleep } from "./support/mdm.ts";
import { createTestDatabase, forEachBackend } from "./support/postgres.ts";

const raw = (n: number) => JSON.stringify({ StatusItems: { device: { model: { identifier: `Mac${n}` } } }, Errors: [], FullReport: false });

async function withStore(backend: "sqlite" | "postgres", fn: (url: string, dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-ddm-reports-"));
  const database = backend === "postgres" ? await createTestDatabase() : undefined;
  try {
    await fn(database?.url ?? `sqlite:${path.join(dir, "orchard.db")}`, dir);
  } finally {
    await database?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function record(store: Store, channel: string, n: number): Promise<void> {
  const text = raw(n);
  await store.transaction((tx) => tx.ddmStatus.record(channel, decodeStatusReport(Buffer.from(text)), text, `${channel}-${n}`, 1_000 + n));
}

/** The channel's stored reports by index, newest first, until the first index with none. */
async function stored(store: Store, channel: string): Promise<string[]> {
  const out: string[] = [];
  for (let index = 0; ; index++) {
    const r = await store.ddmStatus.report(channel, { index });
    if (!r) return out;
    assert.equal(r.index, index);
    assert.equal(r.report, raw(Number(r.statusId.split("-").pop())));
    out.push(r.statusId);
  }
}

test("the ring's size is the one migration 023 made its slots for", () => {
  // Changing REPORTS_KEPT needs a migration that moves the rows to their new slots (seq % REPORTS_KEPT).
  assert.equal(REPORTS_KEPT, 5);
});

await forEachBackend("DDM raw status reports", (backend) => {
  test("a channel keeps its newest reports, newest first; an older one is overwritten, the other channels' stay", async () => {
    await withStore(backend, async (url, dir) => {
      const store = await openStore(url, dir);
      try {
        for (let n = 1; n <= 3; n++) await record(store, "MAC-A", n);
        await record(store, "MAC-B", 1);
        assert.deepEqual(await stored(store, "MAC-A"), ["MAC-A-3", "MAC-A-2", "MAC-A-1"]);
        for (let n = 4; n <= REPORTS_KEPT + 3; n++) await record(store, "MAC-A", n);
        const newest = Array.from({ length: REPORTS_KEPT }, (_, i) => `MAC-A-${REPORTS_KEPT + 3 - i}`);
        assert.deepEqual(await stored(store, "MAC-A"), newest);
        assert.equal((await store.ddmStatus.report("MAC-A", { statusId: "MAC-A-4" }))?.index, REPORTS_KEPT - 1);
        assert.equal(await store.ddmStatus.report("MAC-A", { statusId: "MAC-A-3" }), undefined, "overwritten");
        assert.deepEqual(await stored(store, "MAC-B"), ["MAC-B-1"]);
      } finally {
        await store.close();
      }
    });
  });

  test("reports of one channel stored at once each get their own slot: none overwrites another", async () => {
    await withStore(backend, async (url, dir) => {
      const store = await openStore(url, dir);
      try {
        // Not full, each naming another status item: nothing else in the transactions makes them wait on each other.
        const reports = Array.from({ length: 12 }, (_, n) =>
          JSON.stringify({ StatusItems: { device: { model: { [`item-${n}`]: n } } }, Errors: [], FullReport: false }),
        );
        await Promise.all(
          reports.map((text, n) =>
            store.transaction((tx) => tx.ddmStatus.record("MAC-C", decodeStatusReport(Buffer.from(text)), text, `MAC-C-${n}`, 1_000 + n)),
          ),
        );
        const kept = [];
        for (let index = 0; index < REPORTS_KEPT + 1; index++) kept.push(await store.ddmStatus.report("MAC-C", { index }));
        assert.equal(kept[REPORTS_KEPT], undefined);
        const ids = kept.slice(0, REPORTS_KEPT).map((r) => r!.statusId);
        assert.equal(new Set(ids).size, REPORTS_KEPT, `five different reports: ${ids.join(" ")}`);
        // The ring went round once per report: the newest five of twelve are kept, the first seven overwritten.
        const overwritten = [];
        for (let n = 0; n < reports.length; n++)
          if (!(await store.ddmStatus.report("MAC-C", { statusId: `MAC-C-${n}` }))) overwritten.push(n);
        assert.equal(overwritten.length, reports.length - REPORTS_KEPT);
      } finally {
        await store.close();
      }
    });
  });

  test("a store made before the ring and the report counter keeps each channel's newest reports, in order, and its values", async () => {
    await withStore(backend, async (url, dir) => {
      const before = await openStore(url, dir);
      // The table as migration 011 made it, holding more than the ring keeps for one channel (and none of migration 024).
      await before.db.exec(
        forDialect(
          `DROP TABLE ddm_status_channels;
           ALTER TABLE ddm_status_declarations DROP COLUMN seq;
           ALTER TABLE ddm_status_values DROP COLUMN seq;
           DROP TABLE ddm_status_report_ring;
           CREATE TABLE ddm_status_reports (id {{serial}}, enrollment_id TEXT NOT NULL, status_id TEXT NOT NULL, report TEXT NOT NULL,
             at BIGINT NOT NULL);
           CREATE INDEX ddm_status_reports_enrollment ON ddm_status_reports (enrollment_id, id);`,
          before.db.dialect,
        ),
      );
      await before.db.run("DELETE FROM schema_migrations WHERE version IN (23, 24)");
      // Interleaved, as devices report: ids grow across channels.
      for (let n = 1; n <= REPORTS_KEPT + 2; n++) {
        for (const channel of n <= 2 ? ["MAC-A", "MAC-B"] : ["MAC-A"])
          await before.db.run("INSERT INTO ddm_status_reports (enrollment_id, status_id, report, at) VALUES (?, ?, ?, ?)", [
            channel,
            `${channel}-${n}`,
            raw(n),
            1_000 + n,
          ]);
      }
      // A status value as stored before migration 024 (no seq): it was written by each report that named it.
      await before.db.run("INSERT INTO ddm_status_values (enrollment_id, path, value, status_id, updated_at) VALUES (?, ?, ?, ?, ?)", [
        "MAC-A",
        "device.model.identifier",
        '"Mac7"',
        "MAC-A-7",
        1_007,
      ]);
      await before.close();
      const after = await openStore(url, dir);
      const seen = async () => (await after.ddmStatus.values("MAC-A")).map((v) => [v.path, v.value, v.statusId, v.updatedAt]);
      try {
        assert.deepEqual(await seen(), [["device.model.identifier", "Mac7", "MAC-A-7", 1_007]]);
        assert.deepEqual(
          await stored(after, "MAC-A"),
          Array.from({ length: REPORTS_KEPT }, (_, i) => `MAC-A-${REPORTS_KEPT + 2 - i}`),
        );
        assert.deepEqual(await stored(after, "MAC-B"), ["MAC-B-2", "MAC-B-1"]);
        // The ring goes on from the migrated reports.
        await record(after, "MAC-A", 100);
        assert.deepEqual((await stored(after, "MAC-A")).slice(0, 2), ["MAC-A-100", `MAC-A-${REPORTS_KEPT + 2}`]);
        assert.equal((await stored(after, "MAC-A")).length, REPORTS_KEPT);
        // The value reads as seen in the last report that wrote it, a full one once it names it.
        assert.deepEqual(await seen(), [["device.model.identifier", "Mac100", "MAC-A-100", 1_100]]);
        const full = JSON.stringify({ StatusItems: { device: { model: { identifier: "Mac100" } } }, Errors: [], FullReport: true });
        await after.transaction((tx) => tx.ddmStatus.record("MAC-A", decodeStatusReport(Buffer.from(full)), full, "MAC-A-full", 2_000));
        assert.deepEqual(await seen(), [["device.model.identifier", "Mac100", "MAC-A-full", 2_000]]);
      } finally {
        await after.close();
      }
    });
  });
});

await forEachBackend("DDM status reports and a channel's removal", (backend) => {
  // Only PostgreSQL runs the two at once (SQLite has one writer): a third connection holds a row lock so that
  // each interleaving happens for sure.
  test("a report under way and a removal of its channel: neither fails, and what the report wrote goes with the channel", {
    skip: backend === "sqlite" && "SQLite runs one write transaction at a time",
  }, async () => {
    await withStore(backend, async (url, dir) => {
      const store = await openStore(url, dir);
      const holder = new pg.Client(url);
      await holder.connect();
      const quiet = { now: 1, syncDueAt: null };
      const report = (full: boolean, identifiers: string[], active: boolean, value: number) => {
        const text = JSON.stringify({
          StatusItems: {
            management: {
              declarations: {
                configurations: identifiers.map((identifier) => ({ identifier, active, valid: "valid", "server-token": "t" })),
              },
            },
            device: { model: { identifier: `Mac${value}` } },
          },
          Errors: [],
          FullReport: full,
        });
        return decodeStatusReport(Buffer.from(text));
      };
      /** The removal's deletes, in its order (store/enrollments.ts). */
      const remove = (channel: string) =>
        store.transaction(async (tx) => {
          for (const t of CHANNEL_TABLES) await tx.db.run(`DELETE FROM ${t} WHERE enrollment_id = ?`, [channel]);
        });
      const left = async (channel: string) => {
        const out: string[] = [];
        for (const t of CHANNEL_TABLES)
          if (Number((await store.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${t} WHERE enrollment_id = ?`, [channel]))?.n))
            out.push(t);
        return out;
      };
      try {
        for (const id of ["com.example.d1", "com.example.d2"]) {
          await store.ddm.putDeclaration(
            { Type: "com.apple.configuration.management.test", Identifier: id, Payload: {}, kind: "configuration" },
            quiet,
          );
          await store.ddm.addToSet("s1", id, quiet);
        }
        for (const channel of ["MAC-R1", "MAC-R2"]) {
          await store.ddm.assign(channel, "s1", quiet);
          for (let n = 1; n <= 3; n++)
            await store.ddmStatus.record(channel, report(true, ["com.example.d1"], true, n), "{}", `${channel}-${n}`, n);
        }
        // The report first: it holds its channel's row, writes com.example.d2, then waits on the held value row;
        // the removal, begun meanwhile, waits for it and then removes what it wrote.
        await holder.query("BEGIN");
        await holder.query("SELECT 1 FROM ddm_status_values WHERE enrollment_id = $1 FOR UPDATE", ["MAC-R1"]);
        const first = store.ddmStatus.record("MAC-R1", report(true, ["com.example.d1", "com.example.d2"], true, 9), "{}", "MAC-R1-9", 9);
        await sleep(200);
        const removal = remove("MAC-R1");
        await sleep(200);
        await holder.query("COMMIT");
        await Promise.all([first, removal]);
        assert.deepEqual(await left("MAC-R1"), []);
        // The removal first, held at the status rows; the report, begun meanwhile, waits for it (no deadlock).
        await holder.query("BEGIN");
        await holder.query("SELECT 1 FROM ddm_status_declarations WHERE enrollment_id = $1 FOR UPDATE", ["MAC-R2"]);
        const second = remove("MAC-R2");
        await sleep(200);
        const late = store.ddmStatus.record("MAC-R2", report(false, ["com.example.d1"], false, 9), "{}", "MAC-R2-9", 9);
        await sleep(200);
        await holder.query("COMMIT");
        await Promise.all([second, late]);
      } finally {
        await holder.end();
        await store.close();
      }
    });
  });
});
