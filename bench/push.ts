// The push scenario: bulk pushes from an Orchard server (its own process) to a
// local APNs stand-in (HTTP/2 + TLS + client certificate, in this process).
//
//   node --import tsx bench/push.ts [--sizes 10000,100000] [--runs 1] [--max-streams 1000]
//        [--in-flight 2] [--storage postgres://user@host:port/db] [--profile] [--all]
//
// `npm run bench -- --scenarios push` runs the same thing (PushRig below) as
// rows push-10k and push-100k of the bench's tables, on each backend.
//
// Per size: N enrollments (plus 1,000 for the warm-up) are written straight
// into a fresh store, Orchard starts with --apns-url pointing at the stand-in,
// a push certificate is uploaded, 1,000 pushes warm up the connection and the
// JIT, then every run pushes all N enrollments through POST /v1/push {"ids"} in
// requests of 10,000 ids (the API's limit), `--in-flight` requests at once
// (the same server and store are pushed again on every run); with --all, a
// run is one POST /v1/push {"all": true}, which pushes every enabled channel
// (the N and the warm-up's 1,000) read from the store a page at a time. Reported:
// pushes/s, the peak number of streams open at the stand-in, the server's
// peak RSS and its CPU time per 1,000 pushes, and per push the time from the
// start of the POST that named it to the stand-in receiving it. Every push
// must come back with an apns-id.
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { pushArgs, pushPki, startApnsStandIn, type ApnsStandIn, type PushPki } from "../test/support/apns.ts";
import { storeKit, type BaseOrchard } from "./base-orchard.ts";
import { createBenchDatabase, redactUrl, type BenchDatabase } from "./postgres.ts";
import { ServerHandle } from "./servers.ts";

const API_KEY = "bench-api-key-0123456789abcdef";
export const IDS_PER_REQUEST = 10_000;
export const PUSH_WARMUP = 1000;

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

/** One measured push of every seeded enrollment. */
export interface PushRun {
  /** Pushes asked for (the size). */
  pushes: number;
  elapsedMs: number;
  pushesPerSec: number;
  /** Most streams open at once at the stand-in. */
  peakStreams: number;
  /** TLS connections that carried the run's pushes. */
  connections: number;
  peakRssMb: number;
  cpuSecPer1k: number;
  standInCpuSecPer1k: number;
  /** Pushes without an apns-id, plus requests the stand-in found wrong. */
  failed: number;
  errorKinds: Record<string, number>;
  /** Per push that arrived: ms from the start of the POST /v1/push naming it to its arrival at the stand-in (1 ms resolution). */
  latencies: Float64Array;
  /** Each POST /v1/push of the run, ms. */
  requestMs: number[];
}

export interface PushRigOptions {
  size: number;
  apns: ApnsStandIn;
  pki: PushPki;
  /** An admin URL: the store is a fresh database made there. Otherwise SQLite in a temp dir. */
  postgres?: string;
  maxStreams: number;
  inFlight: number;
  /** Each run is one POST /v1/push {"all": true}: every enabled channel (the warm-up ones too), streamed from the store. */
  all?: boolean;
  /** Called as soon as a server or database exists, so an interrupted caller can clean up. */
  onResource?: (rig: PushRig) => void;
  /** --baseline-orchard: that revision's Orchard, on a store its own code seeded. */
  base?: BaseOrchard;
}

type StatusMap = Record<string, { push_result?: string; push_error?: string }>;

/**
 * An Orchard server with `size` (+ warm-up) enrollments seeded in its own
 * store, its push certificate uploaded and its APNs connection warmed up,
 * ready to push them all as many times as asked.
 */
export class PushRig {
  server: ServerHandle | undefined;
  database: BenchDatabase | undefined;
  /** Seconds to write the enrollments into the store. */
  seedS = 0;
  /** Seconds for the warm-up pushes (connection, TLS, JIT). */
  warmupS = 0;
  private ids: string[] = [];
  /** Push token -> index of the measured request that names its enrollment. */
  private readonly requestOf = new Map<string, number>();
  private requests: string[][] = [];
  private stopped: Promise<void> | undefined;

  private constructor(
    readonly o: PushRigOptions,
    readonly dir: string,
  ) {}

  get backend(): "sqlite" | "postgres" {
    return this.o.postgres ? "postgres" : "sqlite";
  }

  static async start(o: PushRigOptions): Promise<PushRig> {
    const rig = new PushRig(o, fs.mkdtempSync(path.join(os.tmpdir(), "orchard-bench-push-")));
    o.onResource?.(rig);
    try {
      if (o.postgres) rig.database = await createBenchDatabase(o.postgres);
      const storage = rig.database?.url ?? `sqlite:${path.join(rig.dir, "orchard.db")}`;
      const seedStart = performance.now();
      const { openStore, seedEnrollments } = await storeKit(o.base);
      const store = await openStore(storage, rig.dir);
      let rows: Awaited<ReturnType<typeof seedEnrollments>>;
      try {
        rows = await seedEnrollments(store, o.size + PUSH_WARMUP, { prefix: "BENCH" });
        if (o.postgres) await store.db.exec("ANALYZE");
      } finally {
        await store.close();
      }
      rig.seedS = (performance.now() - seedStart) / 1000;
      rig.ids = rows.map((r) => r.id);
      const measured = rows.slice(PUSH_WARMUP);
      for (let i = 0; i < measured.length; i += IDS_PER_REQUEST) {
        const chunk = measured.slice(i, i + IDS_PER_REQUEST);
        for (const r of chunk) rig.requestOf.set(r.token, rig.requests.length);
        rig.requests.push(chunk.map((r) => r.id));
      }

      // No device talks to this server; --ca (any CA) only keeps it from warning that none was given.
      const caFile = path.join(rig.dir, "device-ca.pem");
      fs.writeFileSync(caFile, o.pki.pushCa.certPem);
      rig.server = await ServerHandle.start(
        "orchard",
        [
          "--listen",
          "127.0.0.1:0",
          "--data-dir",
          rig.dir,
          "--storage",
          storage,
          "--api-key",
          API_KEY,
          "--log-level",
          "warn",
          "--ca",
          caFile,
          "--push-sweep-interval",
          "0",
          ...pushArgs(o.apns, ["--apns-max-streams", String(o.maxStreams)]),
        ],
        [],
        o.base,
      );
      const up = await rig.call("PUT", "/v1/pushcert", o.pki.pem());
      if (up.status !== 200) throw new Error(`pushcert upload: HTTP ${up.status} ${JSON.stringify(up.json)}`);
      const warmStart = performance.now();
      const warm = await rig.pushIds(rig.ids.slice(0, PUSH_WARMUP));
      rig.warmupS = (performance.now() - warmStart) / 1000;
      const bad = Object.values(warm.json.status ?? {}).filter((s) => !s.push_result);
      if (warm.status !== 200 || bad.length > 0)
        throw new Error(`push warm-up: HTTP ${warm.status}, ${bad.length} pushes failed: ${JSON.stringify(bad[0] ?? warm.json)}`);
      return rig;
    } catch (err) {
      await rig.stop().catch(() => {});
      throw err;
    }
  }

  /** POST /v1/push with the ids in a JSON body (the path form's headers are capped at 64 kB: about 1,500 ids). */
  private pushIds(ids: readonly string[]) {
    return this.call("POST", "/v1/push", JSON.stringify({ ids }), "application/json");
  }

  /** POST /v1/push {"all": true}: every enabled channel; the answer lists only failures. */
  private async runAll(fail: (kind: string, n?: number) => void, starts: number[], requestMs: number[]): Promise<void> {
    starts.fill(Date.now());
    const c0 = performance.now();
    const r = await postWithoutTimeout(this.server!.url + "/v1/push", API_KEY, JSON.stringify({ all: true }));
    requestMs.push(performance.now() - c0);
    const answer = r.json as { pushed?: number; failed?: number; status?: StatusMap };
    if (r.status !== 200) fail(`POST /v1/push all: HTTP ${r.status}`, answer.failed ?? this.ids.length);
    else if (answer.pushed !== this.ids.length) fail(`pushed ${answer.pushed} of ${this.ids.length}`);
  }

  private async call(
    method: string,
    url: string,
    body?: string,
    contentType?: string,
  ): Promise<{ status: number; json: { status?: StatusMap; body?: string } }> {
    const auth = "Basic " + Buffer.from(`x:${API_KEY}`).toString("base64");
    const headers: Record<string, string> = { authorization: auth };
    if (contentType) headers["content-type"] = contentType;
    const res = await fetch(this.server!.url + url, { method, headers, body });
    const text = await res.text();
    let json: { status?: StatusMap; body?: string } = {};
    try {
      json = JSON.parse(text) as { status?: StatusMap };
    } catch {
      json = { body: text.slice(0, 200) };
    }
    return { status: res.status, json };
  }

  /** Pushes every seeded enrollment once (not the warm-up ones), `inFlight` requests at once. */
  async run(): Promise<PushRun> {
    const server = this.server!;
    const apns = this.o.apns;
    apns.reset(); // forgets earlier pushes, peak streams = streams open now
    server.resetPeak();
    const errorKinds: Record<string, number> = {};
    let failed = 0;
    const fail = (kind: string, n = 1) => {
      failed += n;
      errorKinds[kind] = (errorKinds[kind] ?? 0) + n;
    };
    const starts = new Array<number>(this.requests.length);
    const requestMs: number[] = [];
    const cpuBefore = (await server.stats()).cpu;
    const ownBefore = process.cpuUsage();
    const t0 = performance.now();
    let next = 0;
    if (this.o.all) await this.runAll(fail, starts, requestMs);
    else
      await Promise.all(
        Array.from({ length: Math.min(this.o.inFlight, this.requests.length) }, async () => {
          while (next < this.requests.length) {
            const i = next++;
            const chunk = this.requests[i]!;
            starts[i] = Date.now();
            const c0 = performance.now();
            const r = await this.pushIds(chunk);
            requestMs.push(performance.now() - c0);
            if (r.status !== 200) {
              fail(`POST /v1/push: HTTP ${r.status}`, chunk.length);
              continue;
            }
            const status = r.json.status ?? {};
            for (const id of chunk) {
              const s = status[id];
              if (!s?.push_result) fail(s?.push_error ? `push_error: ${s.push_error}` : "no status for the id");
            }
          }
        }),
      );
    const elapsedMs = performance.now() - t0;
    const own = process.cpuUsage(ownBefore);
    const stats = await server.stats();
    const cpuSec = (stats.cpu.user + stats.cpu.system - cpuBefore.user - cpuBefore.system) / 1e6;
    for (const v of apns.violations) fail(`stand-in: ${v}`);
    const latencies = new Float64Array(apns.seen.length);
    const sessions = new Set<number>();
    let n = 0;
    for (const p of apns.seen) {
      sessions.add(p.session);
      const i = this.requestOf.get(p.token);
      if (i === undefined) continue;
      latencies[n++] = p.at - starts[i]!;
    }
    // A push to all also pushes the warm-up's channels.
    const size = this.o.all ? this.ids.length : this.o.size;
    return {
      pushes: size,
      elapsedMs,
      pushesPerSec: size / (elapsedMs / 1000),
      peakStreams: apns.maxOpen,
      connections: sessions.size,
      peakRssMb: stats.peakRss / 1024 / 1024,
      cpuSecPer1k: (cpuSec / size) * 1000,
      standInCpuSecPer1k: ((own.user + own.system) / 1e6 / size) * 1000,
      failed,
      errorKinds,
      latencies: latencies.subarray(0, n),
      requestMs,
    };
  }

  /** Stops the server, drops the database, removes the temp dir (once). */
  stop(): Promise<void> {
    return (this.stopped ??= (async () => {
      try {
        await this.server?.stop();
      } finally {
        try {
          await this.database?.drop();
        } finally {
          fs.rmSync(this.dir, { recursive: true, force: true });
        }
      }
    })());
  }
}

/**
 * A POST answered when the last of a million pushes is: minutes on a busy
 * machine, past fetch's 300 s wait for the answer's headers.
 */
function postWithoutTimeout(
  url: string,
  apiKey: string,
  body: string,
): Promise<{ status: number; json: { status?: StatusMap; body?: string } }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: "POST",
        headers: { authorization: "Basic " + Buffer.from(`x:${apiKey}`).toString("base64"), "content-type": "application/json" },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as { status?: StatusMap } });
          } catch {
            resolve({ status: res.statusCode ?? 0, json: { body: text.slice(0, 200) } });
          }
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A stand-in and the push certificates it trusts (4 RSA keys: about a second). */
export async function startPushStandIn(): Promise<{ apns: ApnsStandIn; pki: PushPki }> {
  const pki = await pushPki();
  const apns = await startApnsStandIn({ pushCa: pki.pushCa, serverCa: pki.serverCa, serverKey: pki.serverKey });
  return { apns, pki };
}

/** Standalone: per size, seed, start, warm up, then `runs` measured runs (the last one reported, every one logged). */
export async function runPushBench(o: {
  sizes: number[];
  maxStreams: number;
  inFlight: number;
  postgres?: string;
  profileDir?: string;
  runs?: number;
  all?: boolean;
}): Promise<PushBenchResult[]> {
  const { apns, pki } = await startPushStandIn();
  const results: PushBenchResult[] = [];
  try {
    for (const size of o.sizes) {
      const rig = await PushRig.start({
        size,
        apns,
        pki,
        postgres: o.postgres,
        maxStreams: o.maxStreams,
        inFlight: o.inFlight,
        all: o.all,
      });
      try {
        log(`${size}: seeded ${size + PUSH_WARMUP} enrollments in ${rig.seedS.toFixed(1)} s`);
        if (o.profileDir) rig.server!.startProfile();
        let r: PushRun | undefined;
        for (let run = 1; run <= (o.runs ?? 1); run++) {
          r = await rig.run();
          log(
            `${size}: run ${run}: ${Math.round(r.pushesPerSec)} pushes/s, peak ${r.peakStreams} streams, peak RSS ${r.peakRssMb.toFixed(0)} MB, ${r.failed} failed${r.failed ? ` ${JSON.stringify(r.errorKinds)}` : ""}`,
          );
        }
        if (o.profileDir) await rig.server!.stopProfile(path.join(o.profileDir, `push-${size}.cpuprofile`));
        results.push({
          size,
          backend: rig.backend,
          maxStreams: o.maxStreams,
          seconds: r!.elapsedMs / 1000,
          pushesPerSec: r!.pushesPerSec,
          peakStreams: r!.peakStreams,
          connections: r!.connections,
          peakRssMb: r!.peakRssMb,
          cpuSecPer1k: r!.cpuSecPer1k,
          standInCpuSecPer1k: r!.standInCpuSecPer1k,
          failed: r!.failed,
        });
      } finally {
        await rig.stop();
      }
    }
  } finally {
    await apns.close();
  }
  return results;
}

export function pushTable(results: PushBenchResult[]): string {
  const rows = [
    [
      "enrollments",
      "backend",
      "pushes/s",
      "seconds",
      "peak streams",
      "cap",
      "connections",
      "peak RSS MB",
      "CPU s/1k",
      "stand-in CPU s/1k",
      "failed",
    ],
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
      runs: { type: "string", default: "1" },
      "max-streams": { type: "string", default: "1000" },
      "in-flight": { type: "string", default: "2" },
      storage: { type: "string" },
      profile: { type: "boolean", default: false },
      all: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      "usage: node --import tsx bench/push.ts [--sizes 10000,100000] [--runs 1] [--max-streams 1000] [--in-flight 2] [--storage postgres://...] [--profile] [--all]\n" +
        '--all: each run is one POST /v1/push {"all": true} (every enabled channel, the 1,000 warm-up ones too) instead of requests of 10,000 ids\n' +
        "(npm run bench -- --scenarios push: the same, medians of several runs, on each backend)\n",
    );
    return;
  }
  const sizes = values.sizes!.split(",").map((s) => Number(s.trim()));
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error("--sizes: whole numbers >= 1");
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs: a whole number >= 1");
  const postgres = values.storage;
  if (postgres !== undefined && !/^postgres(ql)?:\/\//.test(postgres))
    throw new Error("--storage: a postgres:// URL (SQLite is the default)");
  const profileDir = values.profile ? fs.mkdtempSync(path.join(os.tmpdir(), "orchard-push-profile-")) : undefined;
  const results = await runPushBench({
    sizes,
    runs,
    maxStreams: Number(values["max-streams"]),
    inFlight: Number(values["in-flight"]),
    postgres,
    profileDir,
    all: values.all,
  });
  process.stdout.write(
    `\npush scenario (${os.cpus().length} cores${postgres ? `, PostgreSQL ${redactUrl(postgres)}` : ", SQLite"}${runs > 1 ? `, last of ${runs} runs` : ""})\n`,
  );
  process.stdout.write(pushTable(results));
  if (profileDir) process.stdout.write(`server CPU profiles in ${profileDir} (node --import tsx bench/profile-top.ts FILE)\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  main().catch((err: unknown) => {
    process.stderr.write(`push bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
