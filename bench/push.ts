// The push scenario: bulk pushes from an Orchard server (its own process) to a
// local APNs stand-in (HTTP/2 + TLS + client certificate, in this process).
//
//   node --import tsx bench/push.ts [--sizes 10000,100000] [--max-streams 1000]
//        [--in-flight 2] [--storage postgres://user@host:port/db] [--profile]
//
// Per size: N enrollments are written straight into a fresh store, Orchard
// starts with --apns-url pointing at the stand-in, a push certificate is
// uploaded, 1,000 pushes warm up the connection and the JIT, then every
// enrollment is pushed through POST /v1/push/<ids> in requests of 10,000 ids
// (the API's limit), `--in-flight` requests at once. Reported: pushes/s, the
// peak number of streams open at the stand-in, the server's peak RSS and its
// CPU time per 1,000 pushes. Every push must come back with an apns-id.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { openStore } from "../src/store/index.ts";
import { pushArgs, pushPki, seedEnrollments, startApnsStandIn } from "../test/support/apns.ts";
import { createBenchDatabase, redactUrl, type BenchDatabase } from "./postgres.ts";
import { ServerHandle } from "./servers.ts";

const API_KEY = "bench";
const IDS_PER_REQUEST = 10_000;
const WARMUP = 1000;

export interface PushBenchResult {
  size: number;
  backend: "sqlite" | "postgres";
  maxStreams: number;
  seconds: number;
  pushesPerSec: number;
  peakStreams: number;
  connections: number;
  peakRssMb: number;
  cpuSecPer1k: number;
  /** CPU of this process (the APNs stand-in and the API calls) per 1,000 pushes. */
  standInCpuSecPer1k: number;
  failed: number;
}

export async function runPushBench(o: { sizes: number[]; maxStreams: number; inFlight: number; postgres?: string; profileDir?: string }): Promise<PushBenchResult[]> {
  const pki = await pushPki();
  const apns = await startApnsStandIn({ pushCa: pki.pushCa, serverCa: pki.serverCa, serverKey: pki.serverKey });
  const auth = "Basic " + Buffer.from(`x:${API_KEY}`).toString("base64");
  const results: PushBenchResult[] = [];
  try {
    for (const size of o.sizes) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-bench-push-"));
      let database: BenchDatabase | undefined;
      let server: ServerHandle | undefined;
      try {
        if (o.postgres) database = await createBenchDatabase(o.postgres);
        const storage = database?.url ?? `sqlite:${path.join(dir, "orchard.db")}`;
        const seedStart = Date.now();
        const store = await openStore(storage, dir);
        const ids = (await seedEnrollments(store, size + WARMUP, { prefix: "BENCH" })).map((r) => r.id);
        await store.close();
        log(`${size}: seeded ${size + WARMUP} enrollments in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`);

        server = await ServerHandle.start(
          "orchard",
          ["--listen", "127.0.0.1:0", "--data-dir", dir, "--storage", storage, "--api-key", API_KEY, "--log-level", "warn",
            "--push-sweep-interval", "0", ...pushArgs(apns, ["--apns-max-streams", String(o.maxStreams)])],
        );
        const call = async (method: string, url: string, body?: string) => {
          const res = await fetch(server!.url + url, { method, headers: { authorization: auth }, body });
          return { status: res.status, json: (await res.json()) as { status?: Record<string, { push_result?: string; push_error?: string }> } };
        };
        const up = await call("PUT", "/v1/pushcert", pki.pem());
        if (up.status !== 200) throw new Error(`pushcert upload: HTTP ${up.status} ${JSON.stringify(up.json)}`);

        const failures = (r: { json: { status?: Record<string, { push_result?: string }> } }) =>
          Object.values(r.json.status ?? {}).filter((s) => !s.push_result).length;
        const warm = await call("POST", `/v1/push/${ids.slice(0, WARMUP).join(",")}`);
        if (failures(warm) > 0) throw new Error(`warm-up: ${failures(warm)} pushes failed: ${JSON.stringify(Object.values(warm.json.status ?? {}).find((s) => !s.push_result))}`);

        const measured = ids.slice(WARMUP);
        const requests: string[][] = [];
        for (let i = 0; i < measured.length; i += IDS_PER_REQUEST) requests.push(measured.slice(i, i + IDS_PER_REQUEST));
        apns.maxOpen = apns.open;
        const sessionsBefore = apns.sessions;
        server.resetPeak();
        if (o.profileDir) server.startProfile();
        const cpuBefore = (await server.stats()).cpu;
        const ownBefore = process.cpuUsage();
        const started = process.hrtime.bigint();
        let failed = 0;
        let next = 0;
        await Promise.all(
          Array.from({ length: Math.min(o.inFlight, requests.length) }, async () => {
            while (next < requests.length) {
              const chunk = requests[next++]!;
              const r = await call("POST", `/v1/push/${chunk.join(",")}`);
              failed += failures(r);
            }
          }),
        );
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const own = process.cpuUsage(ownBefore);
        if (o.profileDir) await server.stopProfile(path.join(o.profileDir, `push-${size}.cpuprofile`));
        const stats = await server.stats();
        const cpuSec = (stats.cpu.user + stats.cpu.system - cpuBefore.user - cpuBefore.system) / 1e6;
        const r: PushBenchResult = {
          size,
          backend: database ? "postgres" : "sqlite",
          maxStreams: o.maxStreams,
          seconds,
          pushesPerSec: size / seconds,
          peakStreams: apns.maxOpen,
          connections: apns.sessions - sessionsBefore + 1,
          peakRssMb: stats.peakRss / 1024 / 1024,
          cpuSecPer1k: (cpuSec / size) * 1000,
          standInCpuSecPer1k: ((own.user + own.system) / 1e6 / size) * 1000,
          failed,
        };
        results.push(r);
        log(`${size}: ${Math.round(r.pushesPerSec)} pushes/s, peak ${r.peakStreams} streams, peak RSS ${r.peakRssMb.toFixed(0)} MB, ${failed} failed`);
      } finally {
        await server?.stop();
        await database?.drop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await apns.close();
  }
  return results;
}

export function pushTable(results: PushBenchResult[]): string {
  const rows = [
    ["enrollments", "backend", "pushes/s", "seconds", "peak streams", "cap", "connections", "peak RSS MB", "CPU s/1k", "stand-in CPU s/1k", "failed"],
    ...results.map((r) => [
      r.size.toLocaleString("en-US"),
      r.backend,
      Math.round(r.pushesPerSec).toLocaleString("en-US"),
      r.seconds.toFixed(2),
      String(r.peakStreams),
      String(r.maxStreams),
      String(r.connections),
      r.peakRssMb.toFixed(0),
      r.cpuSecPer1k.toFixed(3),
      r.standInCpuSecPer1k.toFixed(3),
      String(r.failed),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")).join("\n") + "\n";
}

function log(line: string): void {
  process.stderr.write(`push bench: ${line}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: "string", default: "10000,100000" },
      "max-streams": { type: "string", default: "1000" },
      "in-flight": { type: "string", default: "2" },
      storage: { type: "string" },
      profile: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write("usage: node --import tsx bench/push.ts [--sizes 10000,100000] [--max-streams 1000] [--in-flight 2] [--storage postgres://...] [--profile]\n");
    return;
  }
  const sizes = values.sizes!.split(",").map((s) => Number(s.trim()));
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error("--sizes: whole numbers >= 1");
  const postgres = values.storage;
  if (postgres !== undefined && !/^postgres(ql)?:\/\//.test(postgres)) throw new Error("--storage: a postgres:// URL (SQLite is the default)");
  const profileDir = values.profile ? fs.mkdtempSync(path.join(os.tmpdir(), "orchard-push-profile-")) : undefined;
  const results = await runPushBench({
    sizes,
    maxStreams: Number(values["max-streams"]),
    inFlight: Number(values["in-flight"]),
    postgres,
    profileDir,
  });
  process.stdout.write(`\npush scenario (${os.cpus().length} cores${postgres ? `, PostgreSQL ${redactUrl(postgres)}` : ", SQLite"})\n`);
  process.stdout.write(pushTable(results));
  if (profileDir) process.stdout.write(`server CPU profiles in ${profileDir} (node --import tsx bench/profile-top.ts FILE)\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  main().catch((err: unknown) => {
    process.stderr.write(`push bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
