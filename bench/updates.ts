// The updates bench: computing OS update targets and re-syncing N
// enrollments after Apple's feed changes (src/updates/, docs/software-updates.md).
//
//   node --import tsx bench/updates.ts [--devices 100000] [--postgres]
//
// A fresh store (SQLite in a temp dir, or a new PostgreSQL database) gets N
// Mac device channels through the Store (test/support/apns.ts's
// seedEnrollments), of three models and two OS versions; one "latest + 7
// days" policy over all of them is applied from the fixture feed (the first
// targets: timed too). Then the feed gains a release every model but one
// can run, and the bench times:
//
//   retarget  POST-equivalent of a feed refresh: the new feed read, stored,
//             every device's target computed, devices moved between the
//             built-in sets (each that moved is due for a sync)
//   sync      the DDM sync sweep (core/ddm-sync.ts) queueing one
//             DeclarativeManagement command per due channel (pushes go to
//             core/push.ts's NoPusher: APNs is not measured here)
//
// Run by bench/run.ts when --scenarios names updates, or alone;
// this one measures the store-side work, in one process.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { DdmAdmin } from "../src/core/ddm-admin.ts";
import { DdmSync } from "../src/core/ddm-sync.ts";
import { NoPusher } from "../src/core/push.ts";
import { validateDeclaration } from "../src/declarations/index.ts";
import { openStore } from "../src/store/index.ts";
import { versionKey } from "../src/store/inventory.ts";
import { SoftwareUpdates } from "../src/updates/service.ts";
import { seedEnrollments } from "../test/support/apns.ts";
import { createBenchDatabase, DEFAULT_POSTGRES_URL } from "./postgres.ts";

const { values } = parseArgs({
  options: { devices: { type: "string", default: "100000" }, postgres: { type: "boolean", default: false } },
});
const n = Number(values.devices);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-bench-updates-"));
const database = values.postgres ? await createBenchDatabase(DEFAULT_POSTGRES_URL) : undefined;
const store = await openStore(database?.url, tmp);
const feedFile = path.join(tmp, "pmv.json");
const fixture = JSON.parse(fs.readFileSync(new URL("../test/fixtures/software-updates/pmv.json", import.meta.url), "utf8"));
fs.writeFileSync(feedFile, JSON.stringify(fixture));

const silent = { info() {}, warn() {} };
const pusher = new NoPusher();
const admin = new DdmAdmin(store, { validate: validateDeclaration, syncDelayMs: 0 });
const updates = new SoftwareUpdates({ store, admin, pusher, log: silent, options: { url: `file:${feedFile}`, refreshIntervalMs: 0 } });
const sync = new DdmSync(store, pusher, { ...silent, error() {}, debug() {} }, { batch: 5000 });

const seconds = (t: number) => Math.round((performance.now() - t) / 10) / 100;
console.log(`updates bench: ${n} Macs, ${values.postgres ? "PostgreSQL" : "SQLite"}`);

let t = performance.now();
const rows = await seedEnrollments(store, n, { prefix: "MAC" });
const models = ["Mac14,2", "Mac15,3", "MacBookPro14,1"];
// Each Mac's inventory record (updates read their facts there), as its Authenticate would have written it.
await store.db.transaction(async (tx) => {
  const now = Date.now();
  for (let i = 0; i < rows.length; i += 200) {
    const chunk = rows.slice(i, i + 200);
    await tx.run(
      `INSERT INTO inventory (device_id, platform, product_name, os_version, os_version_key, build_version, learned, updated_at)
       VALUES ${chunk.map(() => "(?, 'macOS', ?, ?, ?, ?, '{}', ?)").join(", ")}`,
      chunk.flatMap((r, j) => {
        const k = (i + j) % models.length;
        const os = k === 2 ? "13.6" : "15.1";
        return [r.id, models[k]!, os, versionKey(os)!, k === 2 ? "22G120" : "24B83", now];
      }),
    );
  }
});
console.log(`seeded in ${seconds(t)} s`);

t = performance.now();
const first = await updates.putPolicy("every-mac", { platform: "macOS", mode: "latest", deadline_days: 7 }, Date.now());
const firstTargetS = seconds(t);
t = performance.now();
const firstSynced = await drain();
console.log(
  `first targets: ${JSON.stringify(first.result)} in ${firstTargetS} s; ${firstSynced} DeclarativeManagement queued in ${seconds(t)} s`,
);

// Apple posts 15.3 for the two newer models.
fixture.PublicAssetSets.macOS.unshift({
  ProductVersion: "15.3",
  Build: "24D60",
  PostingDate: new Date().toISOString().slice(0, 10),
  SupportedDevices: ["Mac14,2", "Mac15,3"],
});
fs.writeFileSync(feedFile, JSON.stringify(fixture));
t = performance.now();
const refreshed = await updates.refresh(Date.now());
const retargetS = seconds(t);
t = performance.now();
const synced = await drain();
const syncS = seconds(t);
console.log(`after the feed change: ${JSON.stringify(refreshed.applied)}`);
console.log(
  `retarget ${retargetS} s, sync (${synced} DeclarativeManagement queued) ${syncS} s, total ${Math.round((retargetS + syncS) * 100) / 100} s`,
);

await store.close();
await database?.drop();
fs.rmSync(tmp, { recursive: true, force: true });

/** Runs the sync sweep until no channel is due; how many got a command. */
async function drain(): Promise<number> {
  let total = 0;
  for (;;) {
    const queued = await sync.runOnce(Date.now() + 60_000);
    total += queued;
    if (queued === 0 && !(await store.ddm.hasDue(Date.now() + 60_000))) return total;
  }
}
