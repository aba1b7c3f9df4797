// npm run bench [-- --quick | --devices N --runs R --duration S --concurrency C --scenarios a,b ...]
//
// Measures Orchard's device hot paths against a bare node:http "floor", each
// server in its own child process; see bench/README.md.
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { API_KEY, CERT_HEADER, forServer, recordFleet, type BenchDevice } from "./fleet.ts";
import { ConnPool, drive, forEachDevice, quantiles, type Check, type ClientKind, type DriveResult, type Unit } from "./load.ts";
import { profileTable, summarizeProfile } from "./profile-top.ts";
import { REPO_ROOT, ServerHandle } from "./servers.ts";

const SCENARIOS = ["floor", "idle", "tokenupdate", "roundtrip"] as const;
type ScenarioName = (typeof SCENARIOS)[number];

/** The issue's targets on a 2-core machine, client included (requests/s). */
const TARGETS: Partial<Record<ScenarioName, number>> = { idle: 12_000, tokenupdate: 4_000, roundtrip: 6_000 };

const USAGE = `usage: npm run bench -- [options]

  --scenarios LIST   comma-separated: ${SCENARIOS.join(",")} (floor always runs: it is the baseline)
  --devices N        simulated devices (default 200)
  --runs R           measured runs per scenario, interleaved across scenarios (default 5)
  --duration S       seconds per run (default 5; "500ms" also works)
  --warmup S         unmeasured seconds per scenario before the runs (default 1)
  --concurrency C    requests in flight = connections (default 32)
  --storage URL      passed to orchard serve --storage (default: SQLite in a temp dir)
  --client KIND      raw (default: pre-encoded requests over raw sockets) or node (src/sim Transport)
  --profile          run the Orchard servers under --cpu-prof and print their top functions
  --quick            smoke run: 1 run, 1 s, 20 devices, 0.5 s warmup; results not saved unless --save
  --save / --no-save write bench/results/<date>.json (default: save unless --quick)
  --out FILE         write the results there instead
`;

interface Options {
  scenarios: ScenarioName[];
  devices: number;
  runs: number;
  durationMs: number;
  warmupMs: number;
  concurrency: number;
  storage?: string;
  client: ClientKind;
  profile: boolean;
  quick: boolean;
  save: boolean;
  out?: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      scenarios: { type: "string" },
      devices: { type: "string" },
      runs: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      concurrency: { type: "string" },
      storage: { type: "string" },
      client: { type: "string" },
      profile: { type: "boolean", default: false },
      quick: { type: "boolean", default: false },
      save: { type: "boolean" },
      "no-save": { type: "boolean" },
      out: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const quick = values.quick!;
  const count = (v: string | undefined, name: string, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number >= 1`);
    return n;
  };
  const seconds = (v: string | undefined, name: string, dflt: number): number => {
    if (v === undefined) return dflt;
    const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(v.trim());
    if (!m) throw new Error(`--${name} must be a duration in seconds, e.g. 5, 2.5s or 500ms`);
    return Number(m[1]) * (m[2] === "ms" ? 1 : 1000);
  };
  const picked = (values.scenarios ?? SCENARIOS.join(",")).split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const s of picked) if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario ${s}; pick from ${SCENARIOS.join(", ")}`);
  const scenarios = SCENARIOS.filter((s) => s === "floor" || picked.includes(s));
  const client = (values.client ?? "raw") as ClientKind;
  if (client !== "raw" && client !== "node") throw new Error("--client must be raw or node");
  return {
    scenarios,
    devices: count(values.devices, "devices", quick ? 20 : 200),
    runs: count(values.runs, "runs", quick ? 1 : 5),
    durationMs: seconds(values.duration, "duration", quick ? 1000 : 5000),
    warmupMs: seconds(values.warmup, "warmup", quick ? 500 : 1000),
    concurrency: count(values.concurrency, "concurrency", 32),
    storage: values.storage,
    client,
    profile: values.profile!,
    quick,
    save: values["no-save"] ? false : (values.save ?? (!quick || values.out !== undefined)),
    out: values.out,
  };
}

/** A device has at most one request in flight, so fewer devices than --concurrency lower it. */
function inFlight(o: Options): number {
  return Math.min(o.concurrency, o.devices);
}

// ---- checks and units ----------------------------------------------------------

const emptyOk: Check = (r) => (r.status !== 200 ? `status ${r.status}` : r.body.length !== 0 ? "non-empty body" : undefined);

const UNITS: Record<ScenarioName, Unit<BenchDevice>> = {
  // The same requests as idle, to a server that answers them all 200 and empty.
  floor: async (d, call) => void (await call(d.idle, "idle", emptyOk)),
  idle: async (d, call) => void (await call(d.idle, "idle", emptyOk)),
  tokenupdate: async (d, call) => void (await call(d.tokenUpdate, "tokenupdate", emptyOk)),
  roundtrip: async (d, call) => {
    const uuid = randomUUID().toUpperCase();
    const uuidBytes = Buffer.from(uuid);
    await call(d.enqueue.prepared(uuid), "enqueue", (r) =>
      r.status !== 200 ? `status ${r.status}` : r.body.indexOf(uuidBytes) === -1 ? "answer without the CommandUUID" : undefined,
    );
    await call(d.idle, "idle", (r) =>
      r.status !== 200 ? `status ${r.status}` : r.body.indexOf(uuidBytes) === -1 ? "answer is not the queued command" : undefined,
    );
    await call(d.ack.prepared(uuid), "ack", emptyOk);
  },
};

// ---- measurement ---------------------------------------------------------------

interface RunResult {
  round: number;
  requests: number;
  roundTrips?: number;
  elapsedS: number;
  reqPerSec: number;
  roundTripsPerSec?: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  errorKinds: Record<string, number>;
  serverCpuS: number;
  serverCpuPer1k: number;
  /** Server CPU as a share of one core over the run. */
  serverCorePct: number;
  clientCpuPer1k: number;
  clientCorePct: number;
  /** CPU the machine spent outside the bench's two processes, as % of all cores. */
  otherCpuPct: number;
  serverPeakRssMb: number;
  serverRssEndMb: number;
  xFloor?: number;
}

interface Scenario {
  name: ScenarioName;
  server: ServerHandle;
  pool: ConnPool;
  devices: BenchDevice[];
  dataDir?: string;
  profileFile?: string;
  enrollS?: number;
  warmup?: { reqPerSec: number; errors: number; errorKinds: Record<string, number> };
  runs: RunResult[];
}

function machineBusyMs(): number {
  let busy = 0;
  for (const c of os.cpus()) busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  return busy;
}

const MB = 1024 * 1024;

async function measure(s: Scenario, durationMs: number, round: number): Promise<RunResult> {
  s.server.resetPeak();
  const before = await s.server.stats();
  const client0 = process.cpuUsage();
  const busy0 = machineBusyMs();
  const r: DriveResult = await drive(s.pool, s.devices, UNITS[s.name], durationMs);
  const busy1 = machineBusyMs();
  const client = process.cpuUsage(client0);
  const after = await s.server.stats();

  const elapsedS = r.elapsedMs / 1000;
  const serverCpuS = (after.cpu.user - before.cpu.user + after.cpu.system - before.cpu.system) / 1e6;
  const clientCpuS = (client.user + client.system) / 1e6;
  const [p50, p90, p99, max] = quantiles(r.latencies, [0.5, 0.9, 0.99, 1]);
  const ncpu = os.cpus().length;
  const result: RunResult = {
    round,
    requests: r.requests,
    elapsedS: round3(elapsedS),
    reqPerSec: Math.round(r.requests / elapsedS),
    p50Ms: round3(p50!),
    p90Ms: round3(p90!),
    p99Ms: round3(p99!),
    maxMs: round3(max!),
    errors: r.errors,
    errorKinds: r.errorKinds,
    serverCpuS: round3(serverCpuS),
    serverCpuPer1k: round4(serverCpuS / (r.requests / 1000)),
    serverCorePct: Math.round((serverCpuS / elapsedS) * 100),
    clientCpuPer1k: round4(clientCpuS / (r.requests / 1000)),
    clientCorePct: Math.round((clientCpuS / elapsedS) * 100),
    otherCpuPct: Math.max(0, Math.round((((busy1 - busy0) / 1000 - serverCpuS - clientCpuS) / (elapsedS * ncpu)) * 100)),
    serverPeakRssMb: round1(after.peakRss / MB),
    serverRssEndMb: round1(after.rss / MB),
  };
  if (s.name === "roundtrip") {
    result.roundTrips = r.units;
    result.roundTripsPerSec = Math.round(r.units / elapsedS);
  }
  return result;
}

// ---- setup ---------------------------------------------------------------------

async function setUp(name: ScenarioName, o: Options, fleet: Awaited<ReturnType<typeof recordFleet>>, caFile: string, profileDir?: string): Promise<Scenario> {
  let server: ServerHandle;
  let dataDir: string | undefined;
  let profileFile: string | undefined;
  if (name === "floor") {
    server = await ServerHandle.start("floor");
  } else {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `orchard-bench-${name}-`));
    const args = ["--listen", "127.0.0.1:0", "--data-dir", dataDir, "--cert-header", CERT_HEADER, "--api-key", API_KEY, "--log-level", "warn", "--ca", caFile];
    if (o.storage) args.push("--storage", o.storage);
    if (profileDir) profileFile = path.join(profileDir, `${name}.cpuprofile`);
    server = await ServerHandle.start("orchard", args);
  }
  const pool = await ConnPool.open(server.url, inFlight(o), o.client);
  const devices = fleet.devices.map((d) => forServer(server.url, d));
  const s: Scenario = { name, server, pool, devices, dataDir, profileFile, runs: [] };
  if (name !== "floor") {
    const enroll = await forEachDevice(pool, devices, async (d, call) => {
      await call(d.authenticate, "authenticate", emptyOk);
      await call(d.tokenUpdate, "tokenupdate", emptyOk);
    });
    s.enrollS = round3(enroll.elapsedMs / 1000);
    if (enroll.errors > 0) throw new Error(`${name}: enrollment failed: ${JSON.stringify(enroll.errorKinds)}`);
  }
  if (o.warmupMs > 0) {
    const w = await drive(pool, devices, UNITS[name], o.warmupMs);
    s.warmup = { reqPerSec: Math.round(w.requests / (w.elapsedMs / 1000)), errors: w.errors, errorKinds: w.errorKinds };
  }
  // From here to the end of the last run; the time between this scenario's runs shows as (idle).
  if (profileFile) server.startProfile();
  return s;
}

async function tearDown(s: Scenario): Promise<void> {
  try {
    if (s.profileFile) await s.server.stopProfile(s.profileFile);
  } catch (err) {
    process.stderr.write(`bench: ${s.name}: no profile: ${(err as Error).message}\n`);
  } finally {
    s.pool.close();
    await s.server.stop();
    if (s.dataDir) fs.rmSync(s.dataDir, { recursive: true, force: true });
  }
}

// ---- reporting -----------------------------------------------------------------

function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round3 = (x: number) => Math.round(x * 1000) / 1000;
const round4 = (x: number) => Math.round(x * 10000) / 10000;

const MEDIAN_KEYS = [
  "reqPerSec", "roundTripsPerSec", "p50Ms", "p90Ms", "p99Ms", "maxMs", "errors", "serverCpuPer1k", "serverCorePct",
  "clientCpuPer1k", "clientCorePct", "otherCpuPct", "serverPeakRssMb", "xFloor",
] as const;

function medians(runs: RunResult[]): Partial<Record<(typeof MEDIAN_KEYS)[number], number>> {
  const out: Partial<Record<(typeof MEDIAN_KEYS)[number], number>> = {};
  for (const k of MEDIAN_KEYS) {
    const values = runs.map((r) => r[k]).filter((x): x is number => typeof x === "number");
    if (values.length) out[k] = round4(median(values));
  }
  return out;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ");
  return [line(rows[0]!), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.slice(1).map(line)].join("\n");
}

const fmt = (x: number | undefined, digits = 0) =>
  x === undefined || !Number.isFinite(x) ? "-" : x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

function resultsFile(o: Options): string {
  if (o.out) return path.resolve(o.out);
  const dir = path.join(REPO_ROOT, "bench", "results");
  fs.mkdirSync(dir, { recursive: true });
  const d = new Date();
  const day = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  for (let i = 1; ; i++) {
    const file = path.join(dir, `${day}${i === 1 ? "" : `-${i}`}.json`);
    if (!fs.existsSync(file)) return file;
  }
}

// ---- main ----------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const log = (msg: string) => process.stderr.write(msg + "\n");
  const started = new Date();
  const cpus = os.cpus();
  const machine = {
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cpuCount: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemGiB: round1(os.totalmem() / 1024 ** 3),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAvgAtStart: os.loadavg().map(round1),
  };
  log(`bench: ${machine.cpuCount} x ${machine.cpuModel}, node ${machine.node}; load average ${machine.loadAvgAtStart.join(" ")}`);
  log(
    `bench: ${o.devices} devices, ${o.runs} run(s) x ${o.durationMs / 1000} s per scenario, ${inFlight(o)} in flight, ` +
      `${o.client} client; scenarios ${o.scenarios.join(", ")}`,
  );

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-bench-"));
  const scenarios: Scenario[] = [];
  let failed: unknown;
  try {
    let t = Date.now();
    const fleet = await recordFleet(o.devices);
    const caFile = path.join(tmp, "ca.pem");
    fs.writeFileSync(caFile, fleet.ca.certPem);
    log(`bench: issued ${o.devices} device certificates and recorded their requests in ${((Date.now() - t) / 1000).toFixed(1)} s`);

    const stamp = started.toISOString().replace(/[:.]/g, "-");
    const profileDir = o.profile ? path.join(REPO_ROOT, "bench", "results", "profiles", stamp) : undefined;
    if (profileDir) fs.mkdirSync(profileDir, { recursive: true });

    for (const name of o.scenarios) {
      t = Date.now();
      const s = await setUp(name, o, fleet, caFile, profileDir);
      scenarios.push(s);
      const w = s.warmup;
      log(
        `bench: ${name}: server pid ${s.server.pid} at ${s.server.url}` +
          (s.enrollS !== undefined ? `, enrolled in ${s.enrollS} s` : "") +
          (w ? `, warmup ${fmt(w.reqPerSec)} req/s` : "") +
          (w?.errors ? `, WARMUP ERRORS ${JSON.stringify(w.errorKinds)}` : ""),
      );
    }

    // Interleaved: every round runs each scenario once, so drifting load on a
    // shared machine hits the floor and Orchard alike.
    for (let round = 1; round <= o.runs; round++) {
      for (const s of scenarios) {
        const r = await measure(s, o.durationMs, round);
        s.runs.push(r);
        log(
          `round ${round}/${o.runs} ${s.name.padEnd(11)} ${fmt(r.reqPerSec).padStart(7)} req/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  ` +
            `server ${r.serverCorePct}% core, client ${r.clientCorePct}% core, other ${r.otherCpuPct}% machine` +
            (r.errors ? `  ERRORS ${r.errors} ${JSON.stringify(r.errorKinds)}` : ""),
        );
      }
      const floor = scenarios.find((s) => s.name === "floor")!.runs[round - 1]!;
      for (const s of scenarios) s.runs[round - 1]!.xFloor = round4(s.runs[round - 1]!.reqPerSec / floor.reqPerSec);
    }
  } catch (err) {
    failed = err;
  } finally {
    for (const s of scenarios) await tearDown(s).catch(() => {});
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (failed) throw failed;

  // ---- report
  const summary = scenarios.map((s) => ({ s, m: medians(s.runs), peakRss: Math.max(...s.runs.map((r) => r.serverPeakRssMb)) }));
  const rows = [["scenario", "req/s", "p50 ms", "p99 ms", "CPU s/1k req", "peak RSS MB", "x floor", "errors"]];
  for (const { s, m, peakRss } of summary) {
    rows.push([
      s.name,
      fmt(m.reqPerSec),
      fmt(m.p50Ms, 2),
      fmt(m.p99Ms, 2),
      fmt(m.serverCpuPer1k, 3),
      fmt(peakRss, 1),
      fmt(m.xFloor, 2),
      String(s.runs.reduce((n, r) => n + r.errors, 0)),
    ]);
  }
  const out: string[] = [];
  out.push("");
  out.push(`Medians of ${o.runs} run(s) of ${o.durationMs / 1000} s, ${o.devices} devices, ${inFlight(o)} in flight (${o.client} client).`);
  out.push("CPU s/1k req and peak RSS are the server process's; x floor is the median of per-round req/s ratios; errors are summed over the runs.");
  out.push("");
  out.push(table(rows));
  out.push("");
  const extra = [["scenario", "round trips/s", "server % core", "client % core", "client CPU s/1k", "other % machine"]];
  for (const { s, m } of summary) {
    extra.push([s.name, fmt(m.roundTripsPerSec), fmt(m.serverCorePct), fmt(m.clientCorePct), fmt(m.clientCpuPer1k, 3), fmt(m.otherCpuPct)]);
  }
  out.push(table(extra));
  out.push("");
  const targets: Record<string, { target: number; median: number; met: boolean }> = {};
  for (const { s, m } of summary) {
    const target = TARGETS[s.name];
    if (target === undefined || m.reqPerSec === undefined) continue;
    targets[s.name] = { target, median: m.reqPerSec, met: m.reqPerSec >= target };
    out.push(`target ${s.name.padEnd(11)} >= ${fmt(target).padStart(6)} req/s: ${m.reqPerSec >= target ? "met" : "MISSED"} (${fmt(m.reqPerSec)})`);
  }
  const errorKinds = summary.flatMap(({ s }) =>
    s.runs.flatMap((r) => Object.entries(r.errorKinds).map(([k, n]) => `${s.name}: ${k} x${n}`)),
  );
  if (errorKinds.length) out.push("", "errors:", ...errorKinds.map((e) => "  " + e));
  for (const s of scenarios) {
    if (s.server.logLines > 0) out.push("", `${s.name} server wrote ${s.server.logLines} line(s) of log or warnings; last:`, ...s.server.logTail.map((l) => "  " + l.slice(0, 300)));
  }
  if (o.quick) out.push("", "(quick smoke run: too short for conclusions)");
  process.stdout.write(out.join("\n") + "\n");

  const profiles: Record<string, unknown> = {};
  for (const s of scenarios) {
    const file = s.profileFile;
    if (!file || !fs.existsSync(file)) continue;
    const { busyMs, self, inclusive } = summarizeProfile(file, 15);
    profiles[s.name] = { file: path.relative(REPO_ROOT, file), busyMs, self, inclusive };
    process.stdout.write(`\nserver profile, ${s.name} (${path.relative(REPO_ROOT, file)}): ${fmt(busyMs)} ms busy during the runs\n`);
    process.stdout.write(profileTable(self, inclusive) + "\n");
  }

  if (o.save) {
    const file = resultsFile(o);
    const json = {
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      machine,
      parameters: {
        devices: o.devices,
        runs: o.runs,
        durationS: o.durationMs / 1000,
        warmupS: o.warmupMs / 1000,
        concurrency: o.concurrency,
        inFlight: inFlight(o),
        scenarios: o.scenarios,
        storage: o.storage ?? "sqlite (temp dir)",
        client: o.client,
        identity: "cert-header (x-client-cert, URL-escaped PEM), one test CA, --ca given",
        quick: o.quick,
        profile: o.profile,
      },
      targets,
      scenarios: Object.fromEntries(
        summary.map(({ s, m, peakRss }) => [
          s.name,
          { enrollS: s.enrollS, warmup: s.warmup, median: m, serverPeakRssMbMax: peakRss, serverLogLines: s.server.logLines, runs: s.runs },
        ]),
      ),
      ...(o.profile ? { profiles } : {}),
    };
    fs.writeFileSync(file, JSON.stringify(json, null, 2) + "\n");
    process.stdout.write(`\nresults: ${path.relative(process.cwd(), file)}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
