// ADE sync at scale: the first full fetch of N ABM devices (pages of --page)
// from the Apple API stand-in into the inventory, on each store; then the same
// with a default profile (every device assigned, 1,000 serials per call); then
// a sync of 1% changes. The stand-in runs in this process: its CPU (JSON of
// each page, the cursors) is counted with Orchard's.
//   node --import tsx bench/ade-sync.ts [--devices 100000] [--page 1000] [--backends sqlite,postgres]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { AdeService } from "../src/ade/service.ts";
import { SecretBox } from "../src/push/secret-box.ts";
import { openStore, type Store } from "../src/store/index.ts";
import { AdeStandin } from "../test/support/ade-standin.ts";
import { createBenchDatabase, DEFAULT_POSTGRES_URL } from "./postgres.ts";

const { values } = parseArgs({
  options: {
    devices: { type: "string", default: "100000" },
    page: { type: "string", default: "1000" },
    backends: { type: "string", default: "sqlite,postgres" },
    out: { type: "string" },
  },
});
const N = Number(values.devices);
const PAGE = Number(values.page);
const quiet = { info() {}, warn() {}, error() {} };

async function measure<T>(fn: () => Promise<T>): Promise<{ result: T; seconds: number; cpuSeconds: number }> {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const result = await fn();
  const used = process.cpuUsage(cpu);
  return { result, seconds: (performance.now() - t0) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
}

async function run(backend: string, withProfile: boolean): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-ade-bench-"));
  const db = backend === "postgres" ? await createBenchDatabase(DEFAULT_POSTGRES_URL) : undefined;
  const store: Store = await openStore(db?.url ?? `sqlite:${path.join(dir, "orchard.db")}`, dir);
  const standin = await new AdeStandin().start();
  standin.maxPage = PAGE;
  try {
    const ade = new AdeService({ store, sealer: new SecretBox("bench-secret-0123456789"), log: quiet, url: standin.url, pageSize: PAGE });
    const added = await ade.addServer("bench");
    await ade.uploadToken("bench", standin.issueToken(added.certPem));
    const serials = standin.addDevices(N);
    if (withProfile) await ade.putProfile("bench", "default", { is_supervised: true, url: "https://mdm.example.org/ade/enroll" }, true);
    const fetch = await measure(() => ade.sync("bench", "bench"));
    const inventory = Number((await store.db.get<{ n: number | string }>("SELECT COUNT(*) AS n FROM ade_devices"))!.n);
    if (inventory !== N) throw new Error(`inventory ${inventory}, expected ${N}`);
    // 1% of the devices changed: half modified, half removed.
    for (let i = 0; i < N / 100; i++) {
      if (i % 2 === 0) standin.modify(serials[i * 100]!, { color: "silver" });
      else standin.remove(serials[i * 100]!);
    }
    const delta = await measure(() => ade.sync("bench", "bench"));
    const r = fetch.result;
    return {
      backend,
      default_profile: withProfile,
      devices: N,
      page: PAGE,
      fetch_pages: r.pages,
      fetch_seconds: +fetch.seconds.toFixed(2),
      fetch_cpu_seconds: +fetch.cpuSeconds.toFixed(2),
      devices_per_second: Math.round(N / fetch.seconds),
      assigned: r.assigned,
      delta_changes: N / 100,
      delta_pages: delta.result.pages,
      delta_seconds: +delta.seconds.toFixed(2),
    };
  } finally {
    await standin.stop();
    await store.close();
    await db?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const results: Array<Record<string, unknown>> = [];
for (const backend of values.backends.split(",")) {
  for (const withProfile of [false, true]) {
    const r = await run(backend, withProfile);
    results.push(r);
    process.stdout.write(JSON.stringify(r) + "\n");
  }
}
const summary = { started: new Date().toISOString(), cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, results };
if (values.out) fs.writeFileSync(values.out, JSON.stringify(summary, null, 2) + "\n");
