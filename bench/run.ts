import { spawnSync } from "node:child_process";
// npm run bench [-- --quick | --devices N --runs R --duration S --concurrency C --scenarios a,b ...]
//
// Measures Orchard's device hot paths, new enrollments, Idle with a large
// store and bulk pushes against a bare node:http "floor", each server in its
// own child process, on SQLite and/or PostgreSQL; with --baseline-nanomdm,
// also NanoMDM on the paths it has, in the same rounds; with
// --baseline-orchard REV, also that git revision's Orchard (A/B); see
// bench/README.md.
import { randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { AUTH_TOKEN_RE, parseChallenge, plistStringReader, xmlText } from "../src/sim/userauth.ts";
import {
  BASE_ROW_PREFIX,
  describeTree,
  prepareBaseOrchard,
  removeBaseOrchard,
  resolveBaseRevision,
  roundOrder,
  storeKit,
  type BaseOrchard,
  type BaseRevision,
} from "./base-orchard.ts";
import { timeApiPages } from "./scale-api.ts";
import { seedManyEnrollments, seedManyEvents, storeFilesMb } from "./seed.ts";
import { compare, readResultsSpec, resolveResultsSpec, viewResults } from "./compare.ts";
import {
  API_KEY,
  CERT_HEADER,
  DIGEST_REALM,
  enrolleeForServer,
  forServer,
  recordEnrollees,
  recordFleet,
  type BenchDevice,
  type BenchEnrollee,
  type Fleet,
  type RecordedEnrollee,
} from "./fleet.ts";
import { ConnPool, drive, forEachDevice, quantiles, type Check, type ClientKind, type DriveResult, type Unit } from "./load.ts";
import {
  cpuBetween,
  createBenchDatabase,
  DatabaseCpu,
  DEFAULT_POSTGRES_URL,
  isPostgresUrl,
  postgresInfo,
  redactUrl,
  type BenchDatabase,
} from "./postgres.ts";
import { profileTable, summarizeProfile } from "./profile-top.ts";
import { IDS_PER_REQUEST, PUSH_WARMUP, PushRig, startPushStandIn } from "./push.ts";
import { DDM_ROW_KINDS, ddmReport, ddmRows, DdmRig, type DdmExtra, type DdmRowKind } from "./ddm.ts";
import {
  findNanoMdmSchema,
  isNanoMdmKind,
  loadNanoMdmSchema,
  nanomdmPgsqlDsn,
  nanomdmRequest,
  nanomdmSchemaCandidates,
  NanoMdmServer,
  nanomdmVersion,
  type NanoMdmStorage,
} from "./nanomdm.ts";
import { runConsoleBench } from "./console.ts";
import type { MemoryBreakdown } from "./server-process.ts";
import { REPO_ROOT, ServerHandle, serverRuntime } from "./servers.ts";

/** What --scenarios selects; each is one results file. scale and push give a row per size. */
const SCENARIOS = ["floor", "idle", "tokenupdate", "roundtrip", "login", "enroll", "scale", "push", "webhooks", "ddm"] as const;
type ScenarioName = (typeof SCENARIOS)[number];
/** Scenarios whose unit is driven for --duration over the bench devices. */
type DrivenKind = "floor" | "idle" | "tokenupdate" | "roundtrip" | "login";
const BACKENDS = ["sqlite", "postgres"] as const;
type Backend = (typeof BACKENDS)[number];

/** Push sizes above this run min(--runs, PUSH_LARGE_RUNS) times (a 100k push takes several seconds). */
const PUSH_LARGE = 10_000;
const PUSH_LARGE_RUNS = 3;
const PUSH_MAX_STREAMS = 1000;
const PUSH_IN_FLIGHT = 2;

interface Target {
  min: number;
  /** The median compared with min. */
  metric: "reqPerSec" | "loginsPerSec";
  unit: string;
}
const reqs = (min: number): Target => ({ min, metric: "reqPerSec", unit: "req/s" });
const logins = (min: number): Target => ({ min, metric: "loginsPerSec", unit: "logins/s" });

/**
 * The issues' targets on this project's 2-core machine, client included.
 * Round trips count all three requests; a login is two UserAuthenticate
 * requests and the user's Idle.
 */
const TARGETS: Record<Backend, Partial<Record<string, Target>>> = {
  sqlite: { idle: reqs(12_000), tokenupdate: reqs(4_000), roundtrip: reqs(6_000), login: logins(2_000) },
  postgres: { idle: reqs(3_000), tokenupdate: reqs(2_000), roundtrip: reqs(1_500), login: logins(500) },
};
const BACKEND_TITLE: Record<Backend, string> = { sqlite: "SQLite", postgres: "PostgreSQL" };

const USAGE = `usage: npm run bench -- [options]

  --scenarios LIST   comma-separated: ${SCENARIOS.join(",")} (default: all;
                     floor always runs: it is the baseline)
  --devices N        simulated devices (default 200)
  --runs R           measured runs per scenario, interleaved across scenarios (default 5;
                     push sizes above ${PUSH_LARGE / 1000}k run min(R, ${PUSH_LARGE_RUNS}) times)
  --duration S       seconds per run (default 5; "500ms" also works); not for enroll and push,
                     whose runs are a fixed amount of work
  --warmup S         unmeasured seconds per scenario before the runs (default 1); enroll warms up
                     on one batch of its own, push on ${PUSH_WARMUP.toLocaleString("en-US")} pushes
  --concurrency C    requests in flight = connections (default 32)
  --enroll-batch N   enroll: new devices per run (default 2000); runs + 1 batches are issued
                     before the measuring starts, each device once (default quick: 200)
  --scale-sizes LIST scale: enrolled devices in the store, one row each (default 1k,100k;
                     quick: 1k,10k)
  --push-sizes LIST  push: enrollments pushed per run, one row each (default 10k,100k; quick: 2k)
  --ddm-sizes LIST   ddm: enrollments in the store, rows ddm-tokens/items/sync-N each, and
                     ddm-change-N for the largest up to 100k (default 1k,100k; quick: 1k,10k);
                     bench/ddm.ts
  --ddm-rows LIST    ddm: which of tokens,items,sync,change to run (default: all)
  --backends LIST    sqlite,postgres: run every scenario on each, one table per backend
                     (default: sqlite, plus postgres when --storage postgres://... is given)
  --storage URL      sqlite:/path/file.db: the SQLite store (default: a temp dir per server;
                     scale and push always get a fresh store of their own);
                     postgres://user@host:port/db: where to create a fresh database per
                     scenario server (CREATE DATABASE orchard_bench_<random>, dropped at the end;
                     default ${redactUrl(DEFAULT_POSTGRES_URL)}, or $ORCHARD_BENCH_POSTGRES).
                     May be given twice, once per backend.
  --client KIND      raw (default: pre-encoded requests over raw sockets) or node (src/sim Transport)
  --profile          run the Orchard servers under the CPU profiler and print their top functions
  --runtime KIND     bundle (default: Orchard from dist/orchard.mjs on plain node, as bin/orchard.js
                     runs it) or tsx (the TypeScript sources through tsx, as before the bundle)
  --server-node-args=FLAGS
                     node/V8 flags for the Orchard servers, e.g. --max-semi-space-size=4
                     (not for the floor); recorded in the results' parameters
  --base-server-node-args=FLAGS
                     the base Orchard's node/V8 flags (--baseline-orchard), when they should
                     differ from --server-node-args: a flag A/B'd on one build is
                     --baseline-orchard HEAD with each side's flags
  --quick            smoke run: 1 run, 1 s, 20 devices, 0.5 s warmup, small enroll/scale/push
                     sizes; results not saved unless --save
  --save / --no-save write bench/results/<YYYY-MM-DD>-<scenario>.json, one file per scenario
                     (that day's file of the scenario is overwritten; default: save unless --quick)
  --out PREFIX       write PREFIX-<scenario>.json instead (PREFIX a directory: DIR/<date>-<scenario>.json)
  --baseline-nanomdm PATH
                     also run NanoMDM (the binary at PATH, built from github.com/micromdm/nanomdm)
                     in the same rounds, with the same devices and requests, for the scenarios it
                     has (idle, tokenupdate, roundtrip, enroll): rows nanomdm-<scenario>, and an
                     "x nanomdm" column; SQLite backend: NanoMDM's filekv in a temp dir, postgres:
                     its pgsql storage on a fresh database with its schema (bench/README.md)
  --baseline-orchard REV
                     A/B: also run the Orchard of git revision REV (HEAD~1, a hash, a branch),
                     exported with git archive and bundled by this checkout's bin/bundle.js, in the
                     same rounds with the same devices, flags and seeding: a row base-<row> beside
                     each Orchard row, swapping places every other round (every scenario but floor, which is not Orchard; console
                     and updates run alone, without one), and an "x base" column: this tree's req/s
                     / the base's in the same round, median over rounds (> 1: this tree is faster).
                     Not with --runtime tsx or --storage sqlite:... (one store cannot serve two
                     schemas); with --baseline-nanomdm, NanoMDM's row follows the base row
                     (bench/README.md, "A/B of two Orchard builds")
  --nanomdm-schema FILE
                     NanoMDM's PostgreSQL schema (default: pgsql-schema.sql beside PATH, or
                     storage/pgsql/schema.sql of a NanoMDM checkout PATH was built in)
  --compare SPEC     print the change of req/s and CPU s/1k against earlier results: a results file
                     (per scenario, or an older combined one), a date prefix such as
                     bench/results/2026-11-25 (that day's per-scenario files), or a directory
                     (its latest day). Also: node --import tsx bench/compare.ts OLD NEW
`;

interface Options {
  scenarios: ScenarioName[];
  devices: number;
  runs: number;
  durationMs: number;
  warmupMs: number;
  concurrency: number;
  enrollBatch: number;
  scaleSizes: number[];
  pushSizes: number[];
  ddmSizes: number[];
  ddmRows: DdmRowKind[];
  backends: Backend[];
  /** --storage per backend; postgres is where the fresh databases are made. */
  storage: { sqlite?: string; postgres: string };
  client: ClientKind;
  profile: boolean;
  runtime: "bundle" | "tsx";
  /** Undefined: none. */
  serverNodeArgs?: string[];
  baseServerNodeArgs?: string[];
  quick: boolean;
  save: boolean;
  out?: string;
  compare?: string;
  /** --baseline-nanomdm: the binary, its version, and (postgres backend) its schema file. */
  nanomdm?: { binary: string; version: string; schema?: string };
  /** --baseline-orchard: the revision, resolved (exported and built in main). */
  baseOrchard?: BaseRevision;
}

/** "1k,100k,1m" or "1000,100000,1000000". */
function sizes(v: string, name: string): number[] {
  const out = v
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
    .map((s) => {
      const m = /^(\d+(?:\.\d+)?)([km])?$/.exec(s);
      const n = m ? Number(m[1]) * (m[2] === "m" ? 1_000_000 : m[2] === "k" ? 1000 : 1) : NaN;
      if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: ${s} is not a count (e.g. 1000, 1k or 1m)`);
      return n;
    });
  if (out.length === 0) throw new Error(`--${name}: none given`);
  return [...new Set(out)].sort((a, b) => a - b);
}

/** --ddm-rows: the ddm row kinds to run, all when not given. */
function ddmRowKinds(v: string | undefined): DdmRowKind[] {
  if (v === undefined) return [...DDM_ROW_KINDS];
  const kinds = v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = kinds.filter((k) => !(DDM_ROW_KINDS as readonly string[]).includes(k));
  if (unknown.length > 0 || kinds.length === 0) throw new Error(`--ddm-rows: ${v} is not a list of ${DDM_ROW_KINDS.join(",")}`);
  return kinds as DdmRowKind[];
}

/** 1000 -> 1k, 100000 -> 100k, 1000000 -> 1m, 1500 -> 1500. */
const sizeLabel = (n: number) =>
  n >= 1_000_000 && n % 1_000_000 === 0 ? `${n / 1_000_000}m` : n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n);

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
      "enroll-batch": { type: "string" },
      "scale-sizes": { type: "string" },
      "push-sizes": { type: "string" },
      "ddm-sizes": { type: "string" },
      "ddm-rows": { type: "string" },
      storage: { type: "string", multiple: true },
      backends: { type: "string" },
      compare: { type: "string" },
      client: { type: "string" },
      profile: { type: "boolean", default: false },
      runtime: { type: "string" },
      "server-node-args": { type: "string" },
      "base-server-node-args": { type: "string" },
      quick: { type: "boolean", default: false },
      save: { type: "boolean" },
      "no-save": { type: "boolean" },
      out: { type: "string" },
      "baseline-nanomdm": { type: "string" },
      "nanomdm-schema": { type: "string" },
      "baseline-orchard": { type: "string" },
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
  const picked = (values.scenarios ?? SCENARIOS.join(","))
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const s of picked)
    if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario ${s}; pick from ${SCENARIOS.join(", ")}`);
  const scenarios = SCENARIOS.filter((s) => s === "floor" || picked.includes(s));
  const storage: Options["storage"] = { postgres: DEFAULT_POSTGRES_URL };
  let postgresGiven = false;
  for (const url of values.storage ?? []) {
    if (isPostgresUrl(url)) {
      if (postgresGiven) throw new Error("--storage: one postgres:// URL at most");
      storage.postgres = url;
      postgresGiven = true;
    } else {
      if (storage.sqlite !== undefined) throw new Error("--storage: one SQLite store at most");
      storage.sqlite = url;
    }
  }
  const backends = values.backends
    ? values.backends
        .split(",")
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean)
    : ["sqlite", ...(postgresGiven ? ["postgres"] : [])];
  for (const b of backends)
    if (!(BACKENDS as readonly string[]).includes(b)) throw new Error(`unknown backend ${b}; pick from ${BACKENDS.join(", ")}`);
  if (backends.length === 0) throw new Error("--backends: none given");
  if (values.compare !== undefined) {
    try {
      resolveResultsSpec(values.compare); // fails now, not after the run
    } catch (err) {
      throw new Error(`--compare: ${(err as Error).message}`);
    }
  }
  let nanomdm: Options["nanomdm"];
  if (values["baseline-nanomdm"] !== undefined) {
    const binary = path.resolve(values["baseline-nanomdm"]);
    // Checked now, not after the Orchard servers are up.
    const version = nanomdmVersion(binary);
    let schema: string | undefined;
    if (backends.includes("postgres")) {
      schema = findNanoMdmSchema(binary, values["nanomdm-schema"]);
      if (schema === undefined)
        throw new Error(
          `--baseline-nanomdm on PostgreSQL needs NanoMDM's schema; none at ${nanomdmSchemaCandidates(binary, values["nanomdm-schema"]).join(" or ")} (--nanomdm-schema FILE)`,
        );
    }
    nanomdm = { binary, version, schema };
  } else if (values["nanomdm-schema"] !== undefined) {
    throw new Error("--nanomdm-schema goes with --baseline-nanomdm");
  }
  const client = (values.client ?? "raw") as ClientKind;
  if (client !== "raw" && client !== "node") throw new Error("--client must be raw or node");
  const runtime = values.runtime ?? "bundle";
  if (runtime !== "bundle" && runtime !== "tsx") throw new Error("--runtime must be bundle or tsx");
  let baseOrchard: BaseRevision | undefined;
  if (values["baseline-orchard"] !== undefined) {
    // Refused now, not after the fleet's certificates are issued.
    if (runtime === "tsx") throw new Error("--baseline-orchard runs both builds from their bundles: not with --runtime tsx");
    if (storage.sqlite !== undefined)
      throw new Error(
        "--baseline-orchard cannot share --storage sqlite:... between the two builds (an older Orchard refuses a store a newer one migrated); " +
          "leave --storage out (a temp store per server)",
      );
    baseOrchard = resolveBaseRevision(REPO_ROOT, values["baseline-orchard"]);
  }
  return {
    scenarios,
    devices: count(values.devices, "devices", quick ? 20 : 200),
    runs: count(values.runs, "runs", quick ? 1 : 5),
    durationMs: seconds(values.duration, "duration", quick ? 1000 : 5000),
    warmupMs: seconds(values.warmup, "warmup", quick ? 500 : 1000),
    concurrency: count(values.concurrency, "concurrency", 32),
    enrollBatch: count(values["enroll-batch"], "enroll-batch", quick ? 200 : 2000),
    scaleSizes: sizes(values["scale-sizes"] ?? (quick ? "1k,10k" : "1k,100k"), "scale-sizes"),
    pushSizes: sizes(values["push-sizes"] ?? (quick ? "2k" : "10k,100k"), "push-sizes"),
    ddmSizes: sizes(values["ddm-sizes"] ?? (quick ? "1k,10k" : "1k,100k"), "ddm-sizes"),
    ddmRows: ddmRowKinds(values["ddm-rows"]),
    backends: BACKENDS.filter((b) => backends.includes(b)),
    storage,
    client,
    profile: values.profile!,
    runtime,
    serverNodeArgs: values["server-node-args"]?.split(/\s+/).filter(Boolean),
    baseServerNodeArgs: values["base-server-node-args"]?.split(/\s+/).filter(Boolean),
    quick,
    save: values["no-save"] ? false : (values.save ?? (!quick || values.out !== undefined)),
    out: values.out,
    compare: values.compare,
    nanomdm,
    baseOrchard,
  };
}

/** A device has at most one request in flight, so fewer devices than --concurrency lower it. */
function inFlight(o: Options): number {
  return Math.min(o.concurrency, o.devices);
}

/** Measured runs of a push size. */
function pushRuns(o: Options, size: number): number {
  return size > PUSH_LARGE ? Math.min(o.runs, PUSH_LARGE_RUNS) : o.runs;
}

/** Enroll batches: one for the warm-up (when there is one), one per run. */
function enrollBatches(o: Options): number {
  return o.runs + (o.warmupMs > 0 ? 1 : 0);
}

/** A row of the tables: a scenario, at one size for scale and push. */
interface RowSpec {
  kind: ScenarioName;
  name: string;
  size?: number;
  runs: number;
  /** webhooks: the requests driven, and whether the server has --webhook-url (to a receiver process). */
  webhook?: WebhookRow;
  ddm?: DdmRowKind;
  /**
   * A baseline row, measured in the same rounds as Orchard's: NanoMDM's
   * (nanomdm-<kind>) or the --baseline-orchard revision's (base-<row>).
   */
  baseline?: Baseline;
  /** scale: the row drives TokenUpdate rather than Idle. */
  tokenUpdate?: boolean;
}

type Baseline = "nanomdm" | "orchard";

interface WebhookRow {
  unit: "idle" | "tokenupdate";
  on: boolean;
  /** The webhook on, pointed at a port where nothing listens: what writing the outbox costs, without delivering. */
  nowhere?: boolean;
}

/** The webhooks scenario's rows: Idle and TokenUpdate, each with the webhook off and on, measured in the same rounds. */
const WEBHOOK_ROWS: ReadonlyArray<{ name: string; webhook: WebhookRow }> = [
  { name: "wh-idle-off", webhook: { unit: "idle", on: false } },
  { name: "wh-idle-store", webhook: { unit: "idle", on: true, nowhere: true } },
  { name: "wh-idle-on", webhook: { unit: "idle", on: true } },
  { name: "wh-tu-off", webhook: { unit: "tokenupdate", on: false } },
  { name: "wh-tu-store", webhook: { unit: "tokenupdate", on: true, nowhere: true } },
  { name: "wh-tu-on", webhook: { unit: "tokenupdate", on: true } },
];

function rowsOf(o: Options): RowSpec[] {
  return o.scenarios.flatMap((kind): RowSpec[] => {
    const orchard = orchardRows(o, kind);
    // The baselines' rows beside Orchard's, so they are measured as close together as the round allows (roundOrder swaps each pair every other round).
    const rows = o.baseOrchard && kind !== "floor" ? orchard.flatMap((r) => [r, baseRow(r)]) : orchard;
    if (o.nanomdm && isNanoMdmKind(kind)) rows.push({ kind, name: `nanomdm-${kind}`, runs: o.runs, baseline: "nanomdm" });
    return rows;
  });
}

/** Orchard's rows of a scenario. */
function orchardRows(o: Options, kind: ScenarioName): RowSpec[] {
  // scale: Idle (scale-N) and TokenUpdate (scale-tu-N) with N enrollments in the store, a store each.
  if (kind === "scale")
    return o.scaleSizes.flatMap((size): RowSpec[] => [
      { kind, name: `scale-${sizeLabel(size)}`, size, runs: o.runs },
      { kind, name: `scale-tu-${sizeLabel(size)}`, size, runs: o.runs, tokenUpdate: true },
    ]);
  if (kind === "push") return o.pushSizes.map((size) => ({ kind, name: `push-${sizeLabel(size)}`, size, runs: pushRuns(o, size) }));
  if (kind === "webhooks") return WEBHOOK_ROWS.map((r) => ({ kind, name: r.name, webhook: r.webhook, runs: o.runs }));
  if (kind === "ddm")
    return ddmRows(o.ddmSizes, o.ddmRows).map((r) => ({ kind, name: `ddm-${r.ddm}-${sizeLabel(r.size)}`, ...r, runs: o.runs }));
  return [{ kind, name: kind, runs: o.runs }];
}

/** The --baseline-orchard twin of an Orchard row: the same set-up, the base revision's server. */
const baseRow = (r: RowSpec): RowSpec => ({ ...r, name: BASE_ROW_PREFIX + r.name, baseline: "orchard" });

// ---- checks and units ----------------------------------------------------------

const emptyOk: Check = (r) => (r.status !== 200 ? `status ${r.status}` : r.body.length !== 0 ? "non-empty body" : undefined);
const readChallenge = plistStringReader("DigestChallenge");
const readAuthToken = plistStringReader("AuthToken");

const UNITS: Record<DrivenKind, Unit<BenchDevice>> = {
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
  // A network user's login: UserAuthenticate (challenge), UserAuthenticate
  // with the digest response (AuthToken), then Idle on the user's channel
  // with that token. A step that goes wrong ends the login (one error).
  login: async (d, call) => {
    const l = d.login;
    let answer: string | undefined;
    await call(l.challenge, "userauth challenge", (r) => {
      if (r.status !== 200) return `status ${r.status}`;
      const challenge = readChallenge(r.body);
      if (challenge === undefined) return "no DigestChallenge";
      if (challenge === "") return "zero-length DigestChallenge";
      const params = parseChallenge(challenge);
      if (!params) return "not a Digest challenge";
      try {
        answer = xmlText(l.answerer.respond(params));
      } catch (err) {
        return `cannot answer the challenge: ${(err as Error).message}`;
      }
      return undefined;
    });
    if (answer === undefined) return;
    let token: string | undefined;
    await call(l.response.prepared(answer), "userauth response", (r) => {
      if (r.status !== 200) return `status ${r.status}`;
      const t = readAuthToken(r.body);
      if (t === undefined) return "no AuthToken";
      if (t === "") return "empty AuthToken (login refused)";
      if (!AUTH_TOKEN_RE.test(t)) return "AuthToken is not 32 bytes of base64";
      token = t;
      return undefined;
    });
    if (token === undefined) return;
    await call(l.idle.prepared(token), "user idle", emptyOk);
  },
};

/** The driven unit of a row: scale polls Idle like idle (scale-tu-N: TokenUpdate like tokenupdate). */
const unitOf = (s: { kind: ScenarioName; webhook?: WebhookRow; tokenUpdate?: boolean }): Unit<BenchDevice> =>
  UNITS[s.kind === "scale" ? (s.tokenUpdate ? "tokenupdate" : "idle") : s.kind === "webhooks" ? s.webhook!.unit : (s.kind as DrivenKind)];

/** A new device enrolls: Authenticate, then TokenUpdate (skipped when Authenticate went wrong). Counts the enrollments that completed. */
function enrollUnit(done: { n: number }): Unit<BenchEnrollee> {
  return async (d, call) => {
    const a = await call(d.authenticate, "authenticate", emptyOk);
    if (!a || emptyOk(a) !== undefined) return;
    const t = await call(d.tokenUpdate, "tokenupdate", emptyOk);
    if (t && emptyOk(t) === undefined) done.n++;
  };
}

// ---- measurement ---------------------------------------------------------------

interface RunResult extends DdmExtra {
  round: number;
  /** Completed requests; for push, pushes asked for. */
  requests: number;
  roundTrips?: number;
  logins?: number;
  enrollments?: number;
  pushes?: number;
  elapsedS: number;
  /** Requests/s; for push, pushes/s. */
  reqPerSec: number;
  roundTripsPerSec?: number;
  loginsPerSec?: number;
  enrollmentsPerSec?: number;
  pushesPerSec?: number;
  /** webhooks (on): events the receiver took during the run, and per second. */
  eventsDelivered?: number;
  eventsPerSec?: number;
  /** Push: most streams open at once at the APNs stand-in, and the TLS connections used. */
  peakStreams?: number;
  apnsConnections?: number;
  /** Push: median time of the run's POST /v1/push calls (10,000 ids each). */
  pushRequestP50Ms?: number;
  /** Per request; for push, per push from the start of its POST /v1/push to its arrival at the stand-in. */
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  errorKinds: Record<string, number>;
  serverCpuS: number;
  /** Server CPU s per 1000 requests (push: per 1000 pushes). */
  serverCpuPer1k: number;
  /** Server CPU as a share of one core over the run. */
  serverCorePct: number;
  /** The bench process (load generator; for push, the APNs stand-in and the API calls). */
  clientCpuPer1k: number;
  clientCorePct: number;
  /** PostgreSQL backends serving this server's database (local PostgreSQL only): CPU s per 1000 requests, and % of one core. */
  dbCpuPer1k?: number;
  dbCorePct?: number;
  /** CPU the machine spent outside the bench's two processes (and the database's backends), as % of all cores. */
  otherCpuPct: number;
  /** The machine's 1-minute load average at the end of the run. */
  loadAvg1: number;
  serverPeakRssMb: number;
  serverRssEndMb: number;
  /** Where the server's memory was at its peak (server-process.ts); not for NanoMDM. */
  serverPeakMemory?: MemoryBreakdown;
  xFloor?: number;
  /** Orchard's req/s ÷ the NanoMDM row's req/s of the same round (--baseline-nanomdm). */
  xNanomdm?: number;
  /** This tree's req/s ÷ its base-<row>'s req/s of the same round (--baseline-orchard). */
  xBase?: number;
}

interface Scenario {
  kind: ScenarioName;
  /** The row: the scenario, or scale-1k, push-100k, ... */
  name: string;
  /** scale: enrolled devices in the store; push: enrollments pushed per run. */
  size?: number;
  /** Measured runs wanted (push: fewer for large sizes). */
  runsWanted: number;
  backend: Backend;
  server?: ServerHandle | NanoMdmServer;
  /** A NanoMDM row (--baseline-nanomdm) or a base-<row> (--baseline-orchard). */
  baseline?: Baseline;
  pool?: ConnPool;
  devices: BenchDevice[];
  /** enroll: the warm-up batch (when there is a warm-up), then one per run. */
  batches?: BenchEnrollee[][];
  push?: PushRig;
  /** webhooks: what the row drives, and the receiver process of a row with the webhook on. */
  webhook?: WebhookRow;
  receiver?: ServerHandle;
  /** ddm: the row's kind and the server (with its seeded store) it shares with the other rows of its size. */
  ddm?: { kind: DdmRowKind; rig: DdmRig };
  dataDir?: string;
  database?: BenchDatabase;
  dbCpu?: DatabaseCpu;
  profileFile?: string;
  enrollS?: number;
  /** Time to create the directory users (login). */
  usersS?: number;
  /** scale and push: enrollments written straight into the store before the server started, and how long it took. */
  seeded?: number;
  seedS?: number;
  /** scale: events written into the store after the enrollments (bench/seed.ts's seedManyEvents), and how long it took. */
  eventsSeeded?: number;
  eventsSeedS?: number;
  /** scale: TokenUpdate rather than Idle (scale-tu-N). */
  tokenUpdate?: boolean;
  /** scale: seconds from forking the server to its listening, with the seeded store. */
  startS?: number;
  /** scale and ddm on SQLite: the store's files on disk (database, WAL) after the bench devices enrolled, MB. */
  storeMb?: number;
  /** scale: median ms of each API page (bench/scale-api.ts). */
  apiMs?: Record<string, number>;
  warmup?: { reqPerSec: number; errors: number; errorKinds: Record<string, number> };
  runs: RunResult[];
}

function machineBusyMs(): number {
  let busy = 0;
  for (const c of os.cpus()) busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  return busy;
}

const MB = 1024 * 1024;

/** What a run did, whatever the scenario; `extra` goes into the RunResult as is. */
type LoadResult = DriveResult & { extra?: Partial<RunResult> };

async function load(s: Scenario, o: Options, round: number): Promise<LoadResult> {
  if (s.ddm) return s.ddm.rig.load(s.ddm.kind, o.durationMs);
  if (s.kind === "enroll") {
    const batch = s.batches![s.batches!.length - o.runs + round - 1]!;
    const done = { n: 0 };
    const r = await forEachDevice(s.pool!, batch, enrollUnit(done));
    return { ...r, extra: { enrollments: done.n, enrollmentsPerSec: Math.round(done.n / (r.elapsedMs / 1000)) } };
  }
  if (s.kind === "push") {
    const p = await s.push!.run();
    const [requestP50] = quantiles(Float64Array.from(p.requestMs), [0.5]);
    return {
      requests: p.pushes,
      units: p.pushes,
      errors: p.failed,
      errorKinds: p.errorKinds,
      elapsedMs: p.elapsedMs,
      latencies: p.latencies,
      extra: {
        pushes: p.pushes,
        pushesPerSec: Math.round(p.pushesPerSec),
        peakStreams: p.peakStreams,
        apnsConnections: p.connections,
        pushRequestP50Ms: round3(requestP50!),
      },
    };
  }
  if (s.receiver) {
    // Events the receiver took during the run (the outbox may still hold more: delivery runs behind when it cannot keep up).
    const before = (await s.receiver.stats()).requests ?? 0;
    const r = await drive(s.pool!, s.devices, unitOf(s), o.durationMs);
    const delivered = ((await s.receiver.stats()).requests ?? 0) - before;
    return { ...r, extra: { eventsDelivered: delivered, eventsPerSec: Math.round(delivered / (r.elapsedMs / 1000)) } };
  }
  return drive(s.pool!, s.devices, unitOf(s), o.durationMs);
}

async function measure(s: Scenario, o: Options, round: number): Promise<RunResult> {
  const server = s.server!;
  server.resetPeak();
  const db0 = s.dbCpu && s.database ? await s.dbCpu.sample(s.database.name) : undefined;
  const before = await server.stats();
  const client0 = process.cpuUsage();
  const busy0 = machineBusyMs();
  const r = await load(s, o, round);
  const busy1 = machineBusyMs();
  const client = process.cpuUsage(client0);
  const after = await server.stats();
  const dbCpuS = db0 && s.dbCpu && s.database ? cpuBetween(db0, await s.dbCpu.sample(s.database.name)) : undefined;

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
    otherCpuPct: Math.max(0, Math.round((((busy1 - busy0) / 1000 - serverCpuS - clientCpuS - (dbCpuS ?? 0)) / (elapsedS * ncpu)) * 100)),
    loadAvg1: round1(os.loadavg()[0]!),
    serverPeakRssMb: round1(after.peakRss / MB),
    serverRssEndMb: round1(after.rss / MB),
    ...(after.peakMemory ? { serverPeakMemory: after.peakMemory } : {}),
    ...r.extra,
  };
  if (dbCpuS !== undefined) {
    result.dbCpuPer1k = round4(dbCpuS / (r.requests / 1000));
    result.dbCorePct = Math.round((dbCpuS / elapsedS) * 100);
  }
  if (s.kind === "roundtrip") {
    result.roundTrips = r.units;
    result.roundTripsPerSec = Math.round(r.units / elapsedS);
  }
  if (s.kind === "login") {
    result.logins = r.units;
    result.loginsPerSec = Math.round(r.units / elapsedS);
  }
  return result;
}

// ---- setup ---------------------------------------------------------------------

/** scale: the seeded enrollments' ids are SCALE-0000000 on. */
const SCALE_PREFIX = "SCALE";

/** Scenarios with a server or database alive, for cleaning up after an interrupt. */
const live = new Set<Scenario>();

/** What every backend's scenarios share. */
interface Shared {
  fleet: Fleet;
  caFile: string;
  /** enroll: enrollBatches(o) x --enroll-batch new devices (every backend uses the same, each on a fresh server). */
  enrollees?: RecordedEnrollee[];
  /** push: the APNs stand-in in this process, and its certificates. */
  push?: Awaited<ReturnType<typeof startPushStandIn>>;
  /** --baseline-orchard: the revision's tree and bundle. */
  base?: BaseOrchard;
}

/**
 * scale: `count` enrollments written into the store the server will open
 * (multi-row inserts, 50,000 rows a transaction), then `events` events
 * spread over them, then, on PostgreSQL, ANALYZE: autovacuum would do it
 * within a minute of such an insert, and doing it now keeps the plans from
 * changing in the middle of the runs.
 */
async function seedStore(s: Scenario, count: number, events: number, base?: BaseOrchard): Promise<void> {
  const t0 = performance.now();
  const { openStore } = await storeKit(base);
  const store = await openStore(s.database?.url, s.dataDir!);
  try {
    if (count > 0) await seedManyEnrollments(store, count, SCALE_PREFIX);
    const t1 = performance.now();
    s.seedS = round3((t1 - t0) / 1000);
    await seedManyEvents(store, events, SCALE_PREFIX, count);
    s.eventsSeedS = round3((performance.now() - t1) / 1000);
    if (s.database) await store.db.exec("ANALYZE");
  } finally {
    await store.close();
  }
  s.seeded = count;
  s.eventsSeeded = count > 0 ? events : 0;
}

async function setUp(spec: RowSpec, backend: Backend, o: Options, shared: Shared, profileDir?: string): Promise<Scenario> {
  const { kind, name } = spec;
  const s: Scenario = {
    kind,
    name,
    size: spec.size,
    runsWanted: spec.runs,
    backend,
    devices: [],
    runs: [],
    webhook: spec.webhook,
    tokenUpdate: spec.tokenUpdate,
    baseline: spec.baseline,
  };
  live.add(s);
  // A base row's server and seeded store are the base revision's; all else is the row's set-up as is.
  const base = spec.baseline === "orchard" ? shared.base! : undefined;
  try {
    // NanoMDM is a Go binary: V8's profiler has nothing to say about it.
    if (profileDir && spec.baseline !== "nanomdm") s.profileFile = path.join(profileDir, `${name}.cpuprofile`);
    if (kind === "ddm") {
      const ddm = spec.ddm!;
      const { apns, pki } = shared.push!;
      const rig = await DdmRig.hold(
        {
          size: spec.size!,
          backend,
          postgres: o.storage.postgres,
          fleet: shared.fleet,
          caFile: shared.caFile,
          apns,
          pki,
          inFlight: inFlight(o),
          client: o.client,
          base,
        },
        (r) => (s.ddm = { kind: ddm, rig: r }),
      );
      s.ddm = { kind: ddm, rig };
      Object.assign(s, {
        server: rig.server,
        database: rig.database,
        seeded: rig.seeded,
        seedS: round3(rig.seedS),
        storeMb: rig.storeMb,
        enrollS: round3(rig.enrollS),
        devices: rig.devices.map((d) => d.enroll),
      });
      if (ddm !== "change" && o.warmupMs > 0) {
        const w = await rig.load(ddm, o.warmupMs);
        s.warmup = { reqPerSec: Math.round(w.requests / (w.elapsedMs / 1000)), errors: w.errors, errorKinds: w.errorKinds };
      }
      // One profile per server: the sync row's, which also covers the other rows of its size run after it starts.
      if (s.profileFile && ddm === "sync") rig.server!.startProfile();
      else s.profileFile = undefined;
      return s;
    }
    if (kind === "floor") {
      s.profileFile = undefined;
      s.server = await ServerHandle.start("floor");
    } else if (kind === "push") {
      const rig = await PushRig.start({
        size: spec.size!,
        apns: shared.push!.apns,
        pki: shared.push!.pki,
        postgres: backend === "postgres" ? o.storage.postgres : undefined,
        maxStreams: PUSH_MAX_STREAMS,
        inFlight: PUSH_IN_FLIGHT,
        onResource: (r) => (s.push = r),
        base,
      });
      s.server = rig.server;
      s.database = rig.database;
      s.seeded = spec.size! + PUSH_WARMUP;
      s.seedS = round3(rig.seedS);
      s.warmup = { reqPerSec: Math.round(PUSH_WARMUP / rig.warmupS), errors: 0, errorKinds: {} };
    } else if (spec.baseline === "nanomdm") {
      // NanoMDM's own storage of the backend: filekv in a temp dir for SQLite, pgsql on a fresh database for PostgreSQL.
      const nano = o.nanomdm!;
      s.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `nanomdm-bench-${kind}-`));
      let storage: NanoMdmStorage;
      if (backend === "postgres") {
        s.database = await createBenchDatabase(o.storage.postgres, "nanomdm_bench");
        await loadNanoMdmSchema(s.database.url, nano.schema!);
        storage = { kind: "pgsql", dsn: nanomdmPgsqlDsn(s.database.url) };
      } else {
        storage = { kind: "filekv", dir: path.join(s.dataDir, "db") };
      }
      s.server = await NanoMdmServer.start({
        binary: nano.binary,
        caFile: shared.caFile,
        apiKey: API_KEY,
        certHeader: CERT_HEADER,
        storage,
        logFile: path.join(s.dataDir, "nanomdm.log"),
      });
    } else {
      s.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `orchard-bench-${name}-`));
      const args = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        s.dataDir,
        "--cert-header",
        CERT_HEADER,
        "--api-key",
        API_KEY,
        "--log-level",
        "warn",
        "--ca",
        shared.caFile,
      ];
      args.push("--digest-realm", DIGEST_REALM);
      // The login row's 200 devices each log in many times a second, far past what one real Mac may
      // (--userauth-max-messages); a base from before the limit has none and knows no such flag.
      if (!base || fs.readFileSync(base.bundle, "utf8").includes('"userauth-max-messages"')) {
        args.push("--userauth-max-messages", "0");
      }
      if (backend === "postgres") {
        s.database = await createBenchDatabase(o.storage.postgres);
        args.push("--storage", s.database.url);
      } else if (o.storage.sqlite && kind !== "scale") {
        args.push("--storage", o.storage.sqlite);
      }
      // scale: the server opens a fresh store (its temp dir's orchard.db, or its new database) holding size - devices enrollments and size events.
      if (kind === "scale") await seedStore(s, Math.max(0, spec.size! - o.devices), spec.size!, base);
      if (spec.webhook?.nowhere) {
        // Port 9 (discard): nothing listens there; every delivery fails and backs off.
        args.push("--webhook-url", "http://127.0.0.1:9/hook");
      } else if (spec.webhook?.on) {
        s.receiver = await ServerHandle.start("receiver");
        args.push("--webhook-url", `${s.receiver.url}/hook`);
      }
      const started = performance.now();
      s.server = await ServerHandle.start("orchard", args, [], base);
      if (kind === "scale") s.startS = round3((performance.now() - started) / 1000);
    }
    const server = s.server!;
    const url = server.url;
    // The same recorded requests, retargeted to NanoMDM's paths and API credentials.
    const map = spec.baseline === "nanomdm" ? nanomdmRequest(API_KEY) : undefined;
    if (kind !== "push") {
      s.pool = await ConnPool.open(url, inFlight(o), o.client);
      s.devices = shared.fleet.devices.map((d) => forServer(url, d, map));
    }
    if (kind !== "floor" && kind !== "push" && kind !== "enroll") {
      const enroll = await forEachDevice(s.pool!, s.devices, async (d, call) => {
        await call(d.authenticate, "authenticate", emptyOk);
        await call(d.tokenUpdate, "tokenupdate", emptyOk);
      });
      s.enrollS = round3(enroll.elapsedMs / 1000);
      if (enroll.errors > 0) throw new Error(`${name}: enrollment failed: ${JSON.stringify(enroll.errorKinds)}`);
    }
    if (kind === "scale") {
      if (backend === "sqlite") s.storeMb = storeFilesMb(s.dataDir!);
      // Once per size: the Idle row's server.
      if (!s.tokenUpdate) s.apiMs = await timeApiPages(url, API_KEY, s.seeded ?? 0, SCALE_PREFIX);
    }
    if (kind === "login") {
      // One directory user per device (201 created; 200 when a persistent store has it).
      const users = await forEachDevice(s.pool!, s.devices, async (d, call) => {
        await call(d.login.createUser, "PUT /v1/users", (r) =>
          r.status === 200 || r.status === 201 ? undefined : `status ${r.status}: ${r.body.toString().slice(0, 200)}`,
        );
      });
      s.usersS = round3(users.elapsedMs / 1000);
      if (users.errors > 0) throw new Error(`${name}: creating the directory users failed: ${JSON.stringify(users.errorKinds)}`);
    }
    if (kind === "enroll") {
      const all = shared.enrollees!.map((d) => enrolleeForServer(url, d, map));
      s.batches = Array.from({ length: enrollBatches(o) }, (_, i) => all.slice(i * o.enrollBatch, (i + 1) * o.enrollBatch));
      if (o.warmupMs > 0) {
        const w = await forEachDevice(s.pool!, s.batches[0]!, enrollUnit({ n: 0 }));
        s.warmup = { reqPerSec: Math.round(w.requests / (w.elapsedMs / 1000)), errors: w.errors, errorKinds: w.errorKinds };
      }
    } else if (kind !== "push" && o.warmupMs > 0) {
      const w = await drive(s.pool!, s.devices, unitOf(s), o.warmupMs);
      s.warmup = { reqPerSec: Math.round(w.requests / (w.elapsedMs / 1000)), errors: w.errors, errorKinds: w.errorKinds };
    }
    // From here to the end of the last run; the time between this scenario's runs shows as (idle).
    if (s.profileFile && server instanceof ServerHandle) server.startProfile();
    return s;
  } catch (err) {
    s.profileFile = undefined;
    await tearDown(s).catch(() => {});
    throw err;
  }
}

async function tearDown(s: Scenario): Promise<void> {
  try {
    if (s.profileFile && s.server instanceof ServerHandle) await s.server.stopProfile(s.profileFile);
  } catch (err) {
    process.stderr.write(`bench: ${s.backend} ${s.name}: no profile: ${(err as Error).message}\n`);
  } finally {
    s.pool?.close();
    if (s.ddm) {
      await s.ddm.rig.release();
    } else if (s.push) {
      try {
        await s.push.stop();
      } catch (err) {
        process.stderr.write(`bench: ${s.backend} ${s.name}: stopping: ${(err as Error).message}\n`);
      }
    } else {
      await s.server?.stop();
      await s.receiver?.stop();
      if (s.dataDir) fs.rmSync(s.dataDir, { recursive: true, force: true });
      try {
        await s.database?.drop();
      } catch (err) {
        process.stderr.write(`bench: could not drop database ${s.database!.name}: ${(err as Error).message}\n`);
      }
    }
    live.delete(s);
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
  "reqPerSec",
  "roundTripsPerSec",
  "loginsPerSec",
  "enrollmentsPerSec",
  "pushesPerSec",
  "eventsPerSec",
  "syncsPerSec",
  "changeS",
  "peakStreams",
  "apnsConnections",
  "pushRequestP50Ms",
  "p50Ms",
  "p90Ms",
  "p99Ms",
  "maxMs",
  "errors",
  "serverCpuPer1k",
  "serverCorePct",
  "clientCpuPer1k",
  "clientCorePct",
  "dbCpuPer1k",
  "dbCorePct",
  "otherCpuPct",
  "serverPeakRssMb",
  "xFloor",
  "xNanomdm",
  "xBase",
] as const;
type Medians = Partial<Record<(typeof MEDIAN_KEYS)[number], number>>;

function medians(runs: RunResult[]): Medians {
  const out: Medians = {};
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
  x === undefined || !Number.isFinite(x)
    ? "-"
    : x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

const pct = (before: number | undefined, now: number | undefined) =>
  before === undefined || now === undefined || !before
    ? "-"
    : `${now >= before ? "+" : ""}${(((now - before) / before) * 100).toFixed(1)}%`;

/** Today's date (local time): the results files' names start with it. */
function today(): string {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

/** Files are `<prefix>-<scenario>.json`. */
function resultsPrefix(o: Options): string {
  if (o.out) {
    const out = path.resolve(o.out);
    if (fs.existsSync(out) && fs.statSync(out).isDirectory()) return path.join(out, today());
    fs.mkdirSync(path.dirname(out), { recursive: true });
    return out.replace(/\.json$/, "");
  }
  const dir = path.join(REPO_ROOT, "bench", "results");
  fs.mkdirSync(dir, { recursive: true });
  return path.join(dir, today());
}

// ---- main ----------------------------------------------------------------------

type Log = (msg: string) => void;

function storageLabel(backend: Backend, o: Options): string {
  if (backend === "postgres") return `${redactUrl(o.storage.postgres)}: a fresh database per scenario server`;
  return o.storage.sqlite ? `${o.storage.sqlite} (scale and push: a temp dir per server)` : "a temp dir per server";
}

function nanomdmStorageLabel(backend: Backend): string {
  return backend === "postgres" ? "pgsql: a fresh database per server, NanoMDM's schema loaded" : "filekv in a temp dir per server";
}

function runLine(backend: Backend, s: Scenario, r: RunResult, o: Options): string {
  const per =
    r.loginsPerSec !== undefined
      ? ` (${fmt(r.loginsPerSec)} logins/s)`
      : r.roundTripsPerSec !== undefined
        ? ` (${fmt(r.roundTripsPerSec)} round trips/s)`
        : r.enrollmentsPerSec !== undefined
          ? ` (${fmt(r.enrollmentsPerSec)} enrollments/s)`
          : r.eventsPerSec !== undefined
            ? ` (${fmt(r.eventsPerSec)} webhook events/s delivered)`
            : "";
  const rate =
    r.pushesPerSec !== undefined
      ? `${fmt(r.pushesPerSec).padStart(7)} pushes/s, peak ${r.peakStreams} streams`
      : `${fmt(r.reqPerSec).padStart(7)} req/s${per}`;
  return (
    `round ${r.round}/${o.runs} ${backend.padEnd(8)} ${s.name.padEnd(Math.max(11, ...rowsOf(o).map((x) => x.name.length)))} ${rate}  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  ` +
    `server ${r.serverCorePct}% core, client ${r.clientCorePct}% core, ` +
    (r.dbCorePct !== undefined ? `db ${r.dbCorePct}% core, ` : "") +
    `other ${r.otherCpuPct}% machine` +
    (r.errors ? `  ERRORS ${r.errors} ${JSON.stringify(r.errorKinds)}` : "")
  );
}

/** Sets up every scenario on one backend, runs the interleaved rounds, and tears them down. */
async function runBackend(backend: Backend, o: Options, shared: Shared, profileDir: string | undefined, log: Log): Promise<Scenario[]> {
  const scenarios: Scenario[] = [];
  if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
  const dbCpu = backend === "postgres" ? await DatabaseCpu.open(o.storage.postgres) : undefined;
  if (backend === "postgres" && !dbCpu) log("bench: PostgreSQL is not on this machine (or no /proc): no db CPU figures");
  try {
    for (const spec of rowsOf(o)) {
      const t0 = performance.now();
      const s = await setUp(spec, backend, o, shared, profileDir);
      s.dbCpu = dbCpu;
      scenarios.push(s);
      const w = s.warmup;
      log(
        `bench: ${backend} ${s.name}: server pid ${s.server!.pid} at ${s.server!.url}` +
          (s.server instanceof ServerHandle && s.server.nodeFlags.length ? ` (node ${s.server.nodeFlags.join(" ")})` : "") +
          (s.database ? ` on database ${s.database.name}` : "") +
          (s.seedS !== undefined ? `, ${fmt(s.seeded)} enrollments seeded in ${s.seedS} s` : "") +
          (s.eventsSeedS !== undefined ? `, ${fmt(s.eventsSeeded)} events in ${s.eventsSeedS} s` : "") +
          (s.enrollS !== undefined ? `, ${s.devices.length} devices enrolled in ${s.enrollS} s` : "") +
          (s.usersS !== undefined ? `, ${s.devices.length} directory users in ${s.usersS} s` : "") +
          (w ? `, warmup ${fmt(w.reqPerSec)} ${s.kind === "push" ? "pushes" : "req"}/s` : "") +
          (w?.errors ? `, WARMUP ERRORS ${JSON.stringify(w.errorKinds)}` : "") +
          ` (set up in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
    }

    // Interleaved: every round runs each scenario once, so drifting load on a
    // shared machine hits the floor and Orchard alike.
    for (let round = 1; round <= o.runs; round++) {
      for (const s of roundOrder(scenarios, round)) {
        if (round > s.runsWanted) continue;
        const r = await measure(s, o, round);
        s.runs.push(r);
        log(runLine(backend, s, r, o));
      }
      const floor = scenarios.find((s) => s.kind === "floor")!.runs.find((r) => r.round === round)!;
      for (const s of scenarios) {
        const r = s.runs.find((x) => x.round === round);
        // Pushes are not requests of the floor's kind: no ratio.
        if (r && s.kind !== "push" && s.ddm?.kind !== "change") r.xFloor = round4(r.reqPerSec / floor.reqPerSec);
        if (!r || s.baseline === "nanomdm") continue;
        // Orchard (this tree's, and the base's) against NanoMDM on the same kind of request in the same round.
        const nano = scenarios.find((b) => b.baseline === "nanomdm" && b.kind === s.kind)?.runs.find((x) => x.round === round);
        if (nano) r.xNanomdm = round4(r.reqPerSec / nano.reqPerSec);
        // This tree against the base revision on the same row in the same round.
        const base = !s.baseline && scenarios.find((b) => b.name === BASE_ROW_PREFIX + s.name)?.runs.find((x) => x.round === round);
        if (base) r.xBase = round4(r.reqPerSec / base.reqPerSec);
      }
    }
  } finally {
    for (const s of scenarios) await tearDown(s).catch(() => {});
    await dbCpu?.close();
  }
  return scenarios;
}

interface RowSummary {
  s: Scenario;
  m: Medians;
  peakRss: number;
}

/** The JSON of one row. */
function rowJson({ s, m, peakRss }: RowSummary) {
  return {
    backend: s.backend,
    scenario: s.kind,
    ...(s.baseline ? { baseline: s.baseline } : {}),
    ...(s.size !== undefined ? { size: s.size } : {}),
    ...(s.seeded !== undefined ? { seeded: s.seeded, seedS: s.seedS } : {}),
    ...(s.eventsSeeded !== undefined ? { eventsSeeded: s.eventsSeeded, eventsSeedS: s.eventsSeedS } : {}),
    ...(s.startS !== undefined ? { startS: s.startS, storeMb: s.storeMb, apiMs: s.apiMs } : {}),
    ...(s.ddm && s.storeMb !== undefined ? { storeMb: s.storeMb } : {}),
    enrollS: s.enrollS,
    usersS: s.usersS,
    warmup: s.warmup,
    median: m,
    serverPeakRssMbMax: peakRss,
    serverLogLines: s.server!.logLines,
    runs: s.runs,
  };
}

/** Under the table: where each row's memory was at its highest peak (docs/scaling.md, "Memory"). */
function memoryLines(summary: RowSummary[]): string[] {
  const lines: string[] = [];
  for (const { s } of summary) {
    const top = s.runs.reduce<RunResult | undefined>((a, r) => (!a || r.serverPeakRssMb > a.serverPeakRssMb ? r : a), undefined);
    const p = top?.serverPeakMemory;
    if (!p) continue;
    lines.push(
      `  ${s.name}: at the peak ${fmt(p.rss, 1)} MB = anonymous ${fmt(p.rssAnon, 1)} (V8 heap ${fmt(p.heapTotal, 1)}: used ${fmt(p.heapUsed, 1)}, ` +
        `new space ${fmt(p.newSpace, 1)}, old ${fmt(p.oldSpace, 1)}, code ${fmt(p.codeSpace, 1)}; external ${fmt(p.external, 1)}; ` +
        `the rest native: ${fmt(Math.max(0, p.rssAnon - p.heapTotal - p.external), 1)}) + file-backed ${fmt(p.rssFile, 1)}; ${p.threads} threads`,
    );
  }
  return lines.length ? ["memory at each row's peak (MB; server-process.ts MemoryBreakdown):", ...lines] : [];
}

/** One backend's tables and its part of the results JSON. */
function report(backend: Backend, o: Options, scenarios: Scenario[], enrollPool?: EnrollPoolInfo) {
  const summary: RowSummary[] = scenarios.map((s) => ({
    s,
    m: medians(s.runs),
    peakRss: Math.max(...s.runs.map((r) => r.serverPeakRssMb)),
  }));
  const out: string[] = [];
  out.push("", `${BACKEND_TITLE[backend]} (${storageLabel(backend, o)})`, "");
  const withNano = o.nanomdm !== undefined;
  const withBase = o.baseOrchard !== undefined;
  const rows = [
    [
      "scenario",
      "req/s",
      "p50 ms",
      "p99 ms",
      "CPU s/1k req",
      "peak RSS MB",
      "x floor",
      ...(withBase ? ["x base"] : []),
      ...(withNano ? ["x nanomdm"] : []),
      "errors",
    ],
  ];
  for (const { s, m, peakRss } of summary) {
    rows.push([
      s.name + (s.kind === "push" ? " *" : ""),
      fmt(m.reqPerSec),
      fmt(m.p50Ms, s.kind === "push" ? 0 : 2),
      fmt(m.p99Ms, s.kind === "push" ? 0 : 2),
      fmt(m.serverCpuPer1k, 3),
      fmt(peakRss, 1),
      s.kind === "push" ? "-" : fmt(m.xFloor, 2),
      ...(withBase ? [fmt(m.xBase, 2)] : []),
      ...(withNano ? [fmt(m.xNanomdm, 2)] : []),
      String(s.runs.reduce((n, r) => n + r.errors, 0)),
    ]);
  }
  out.push(table(rows));
  out.push(...memoryLines(summary));
  if (o.baseOrchard) {
    const b = o.baseOrchard;
    out.push(
      `base-*: Orchard at ${b.describe} (${b.commit}, --baseline-orchard ${b.rev}) against this tree (${describeTree(REPO_ROOT)}), ` +
        "the same devices, flags and seeding; x base: this tree's req/s ÷ the base's in the same round, median over rounds (> 1: this tree is faster)",
    );
  }
  if (o.nanomdm) {
    out.push(
      `nanomdm-*: NanoMDM ${o.nanomdm.version} (${nanomdmStorageLabel(backend)}), the same devices and recorded requests (check-ins to /checkin, ` +
        "the enqueue with Basic nanomdm:KEY); x nanomdm: Orchard's req/s ÷ NanoMDM's in the same round, median over rounds",
    );
    if (o.scenarios.some((k) => k !== "floor" && !isNanoMdmKind(k)))
      out.push(
        `(no NanoMDM row for ${o.scenarios.filter((k) => k !== "floor" && !isNanoMdmKind(k)).join(", ")}: ` +
          "NanoMDM has no digest login, no way to seed a store but over HTTP, and no DDM, push or webhook path of the same kind)",
      );
  }
  if (summary.some(({ s }) => s.kind === "push")) {
    out.push(
      "* push rows: pushes/s, CPU s per 1k pushes, and per push the time from the start of the POST /v1/push that named it to its arrival at the APNs stand-in",
    );
  }
  out.push("");
  const withDb = summary.some(({ m }) => m.dbCpuPer1k !== undefined);
  const extra = [
    [
      "scenario",
      "per unit",
      "runs",
      "server % core",
      "client % core",
      "client CPU s/1k",
      ...(withDb ? ["db % core", "db CPU s/1k"] : []),
      "other % machine",
    ],
  ];
  for (const { s, m } of summary) {
    const per =
      m.roundTripsPerSec !== undefined
        ? `${fmt(m.roundTripsPerSec)} round trips/s`
        : m.loginsPerSec !== undefined
          ? `${fmt(m.loginsPerSec)} logins/s`
          : m.enrollmentsPerSec !== undefined
            ? `${fmt(m.enrollmentsPerSec)} enrollments/s`
            : m.pushesPerSec !== undefined
              ? `${fmt(m.pushesPerSec)} pushes/s`
              : m.syncsPerSec !== undefined
                ? `${fmt(m.syncsPerSec)} full syncs/s`
                : m.changeS !== undefined
                  ? `all pushed in ${fmt(m.changeS, 2)} s`
                  : "-";
    extra.push([
      s.name,
      per,
      String(s.runs.length),
      fmt(m.serverCorePct),
      fmt(m.clientCorePct),
      fmt(m.clientCpuPer1k, 3),
      ...(withDb ? [fmt(m.dbCorePct), fmt(m.dbCpuPer1k, 3)] : []),
      fmt(m.otherCpuPct),
    ]);
  }
  out.push(table(extra), "");

  // The scenarios with a set-up worth knowing: new devices, seeded stores, pushes.
  const notes: string[] = [];
  const enroll = summary.find(({ s }) => s.kind === "enroll" && !s.baseline);
  if (enroll && enrollPool) {
    notes.push(
      `enroll: ${fmt(o.enrollBatch)} new devices per run (Authenticate + TokenUpdate each), ${fmt(enroll.m.enrollmentsPerSec)} enrollments/s; ` +
        `${fmt(enrollPool.devices)} certificates issued once for every backend in ${enrollPool.issueS} s by ${enrollPool.issueProcesses} process(es)`,
    );
  }
  const scale = summary.filter(({ s }) => s.kind === "scale");
  for (const { s } of scale) {
    notes.push(
      `${s.name}: ${fmt(s.seeded)} enrollments seeded in ${s.seedS} s + ${fmt(s.devices.length)} bench devices enrolled over HTTP = ${fmt((s.seeded ?? 0) + s.devices.length)} in the store; ` +
        `${fmt(s.eventsSeeded)} events seeded in ${s.eventsSeedS} s; ` +
        `server started in ${s.startS} s` +
        (s.storeMb !== undefined ? `, store ${fmt(s.storeMb, 1)} MB on disk` : ""),
    );
    if (s.apiMs)
      notes.push(
        `${s.name} API pages (median ms): ${Object.entries(s.apiMs)
          .map(([page, ms]) => `${page} ${ms}`)
          .join(", ")}`,
      );
  }
  // Each build's larger sizes against its own smallest, Idle rows and TokenUpdate rows apart.
  for (const same of [false, true].flatMap((tu) =>
    [scale.filter(({ s }) => !s.baseline), scale.filter(({ s }) => s.baseline)].map((rows) =>
      rows.filter(({ s }) => !!s.tokenUpdate === tu),
    ),
  )) {
    if (same.length < 2) continue;
    const a = same[0]!.m;
    for (const { s, m } of same.slice(1)) {
      notes.push(
        `${s.name} against ${same[0]!.s.name}: req/s ${pct(a.reqPerSec, m.reqPerSec)}, p50 ${pct(a.p50Ms, m.p50Ms)}, p99 ${pct(a.p99Ms, m.p99Ms)}, ` +
          `CPU s/1k ${pct(a.serverCpuPer1k, m.serverCpuPer1k)}, x floor ${fmt(a.xFloor, 2)} -> ${fmt(m.xFloor, 2)}` +
          (a.dbCpuPer1k !== undefined ? `, db CPU s/1k ${pct(a.dbCpuPer1k, m.dbCpuPer1k)}` : ""),
      );
    }
  }
  const push = summary.filter(({ s }) => s.kind === "push");
  if (push.length > 0) {
    if (notes.length) notes.push("");
    const pushRows = [
      [
        "push",
        "pushes/s",
        "p50 ms",
        "p99 ms",
        "POST p50 ms",
        "peak streams",
        "connections",
        "CPU s/1k pushes",
        "stand-in CPU s/1k",
        "peak RSS MB",
        "seeded",
        "seed s",
        "runs",
        "failed",
      ],
    ];
    for (const { s, m, peakRss } of push) {
      pushRows.push([
        s.name,
        fmt(m.pushesPerSec),
        fmt(m.p50Ms, 1),
        fmt(m.p99Ms, 1),
        fmt(m.pushRequestP50Ms, 1),
        fmt(m.peakStreams),
        fmt(m.apnsConnections),
        fmt(m.serverCpuPer1k, 3),
        fmt(m.clientCpuPer1k, 3),
        fmt(peakRss, 1),
        fmt(s.seeded),
        fmt(s.seedS, 1),
        String(s.runs.length),
        String(s.runs.reduce((n, r) => n + r.errors, 0)),
      ]);
    }
    notes.push(table(pushRows));
    notes.push(
      `(POST /v1/push with ${fmt(IDS_PER_REQUEST)} ids each, ${PUSH_IN_FLIGHT} at a time; the stand-in allows ${PUSH_MAX_STREAMS} streams, so does --apns-max-streams; ` +
        `sizes above ${fmt(PUSH_LARGE)} run min(--runs, ${PUSH_LARGE_RUNS}) times)`,
    );
  }
  // The ddm notes and targets are this tree's; its base rows are read against them through x base.
  const ddm = ddmReport(
    backend,
    summary.flatMap(({ s, m }) =>
      s.ddm && !s.baseline
        ? [{ name: s.name, kind: s.ddm.kind, size: s.size!, m, seeded: s.seeded, seedS: s.seedS, storeMb: s.storeMb }]
        : [],
    ),
  );
  if (notes.length && ddm.notes.length) notes.push("");
  notes.push(...ddm.notes);
  if (notes.length) out.push(...notes, "");

  const targets: Record<string, { target: number; unit: string; median: number; met: boolean }> = { ...ddm.targets };
  out.push(...ddm.targetLines);
  for (const { s, m } of summary) {
    const t = TARGETS[backend][s.name];
    const value = t && m[t.metric];
    if (!t || value === undefined) continue;
    targets[s.name] = { target: t.min, unit: t.unit, median: value, met: value >= t.min };
    out.push(
      `target ${backend} ${s.name.padEnd(11)} >= ${fmt(t.min).padStart(6)} ${t.unit.padEnd(8)}: ${value >= t.min ? "met" : "MISSED"} (${fmt(value)})`,
    );
  }
  const errorKinds = summary.flatMap(({ s }) =>
    s.runs.flatMap((r) => Object.entries(r.errorKinds).map(([k, n]) => `${s.name}: ${k} x${n}`)),
  );
  if (errorKinds.length) out.push("", "errors:", ...errorKinds.map((e) => "  " + e));
  for (const s of scenarios) {
    const server = s.server!;
    if (server.logLines > 0)
      out.push(
        "",
        `${backend} ${s.name} server wrote ${server.logLines} line(s) of log or warnings; last:`,
        ...server.logTail.map((l) => "  " + l.slice(0, 300)),
      );
  }
  const json = {
    backend,
    storage: storageLabel(backend, o),
    ...(o.nanomdm ? { nanomdm: { version: o.nanomdm.version, storage: nanomdmStorageLabel(backend) } } : {}),
    targets,
    scenarios: Object.fromEntries(summary.map((row) => [row.s.name, rowJson(row)])),
  };
  return { text: out.join("\n"), json };
}

interface EnrollPoolInfo {
  devices: number;
  batches: number;
  batchSize: number;
  issueS: number;
  /** Processes that issued the certificates (one per core from 1,000 certificates on). */
  issueProcesses: number;
  recordS: number;
}

async function main(): Promise<void> {
  // The console's scenario (bench/console.ts) is run by name only (--scenarios console): server time of its
  // pages over a seeded SQLite store, not a load; it keeps its own results file.
  const consoleRest = await consoleScenario(process.argv.slice(2));
  if (consoleRest === undefined) return;
  // So is OS updates' (bench/updates.ts): re-targeting 100,000 enrollments after a feed change, in one process.
  const argv = updatesScenario(consoleRest);
  if (argv === undefined) return;
  const o = parseOptions(argv);
  const log: Log = (msg) => process.stderr.write(msg + "\n");
  serverRuntime.kind = o.runtime;
  if (o.serverNodeArgs) serverRuntime.nodeArgs = o.serverNodeArgs;
  if (o.baseServerNodeArgs) serverRuntime.baseNodeArgs = o.baseServerNodeArgs;
  log(
    `bench: servers run ${o.runtime === "tsx" ? "the sources through tsx" : "from dist/orchard.mjs (bin/bundle.js)"}; ` +
      `Orchard's node flags: ${serverRuntime.nodeArgs.join(" ") || "none"}` +
      (serverRuntime.baseNodeArgs ? `; the base's: ${serverRuntime.baseNodeArgs.join(" ") || "none"}` : ""),
  );
  const started = new Date();
  const t0 = performance.now();
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
  // Ctrl-C: stop the servers and drop the databases made so far.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      log(`bench: ${signal}: stopping ${live.size} server(s) and dropping their databases`);
      void Promise.allSettled([...live].map((s) => tearDown({ ...s, profileFile: undefined }))).finally(() => process.exit(130));
    });
  }
  log(`bench: ${machine.cpuCount} x ${machine.cpuModel}, node ${machine.node}; load average ${machine.loadAvgAtStart.join(" ")}`);
  log(
    `bench: ${o.devices} devices, ${o.runs} run(s) x ${o.durationMs / 1000} s per scenario, ${inFlight(o)} in flight, ` +
      `${o.client} client; scenarios ${o.scenarios.join(", ")} (rows ${rowsOf(o)
        .map((r) => r.name)
        .join(", ")}); ` +
      `backends ${o.backends.map((b) => `${b} (${storageLabel(b, o)})`).join(", ")}`,
  );
  if (o.nanomdm)
    log(
      `bench: baseline NanoMDM ${o.nanomdm.version} (${o.nanomdm.binary})` +
        (o.nanomdm.schema ? `, PostgreSQL schema ${o.nanomdm.schema}` : ""),
    );
  let base: BaseOrchard | undefined;
  if (o.baseOrchard) {
    const built = prepareBaseOrchard(REPO_ROOT, o.baseOrchard);
    // At exit, whatever ends the run (a base row's profile is read from its bundle after the runs).
    process.once("exit", () => removeBaseOrchard(built));
    base = built;
    log(
      `bench: baseline Orchard ${base.describe} (${base.commit}) exported to ${base.root} and built in ${base.buildS.toFixed(1)} s; ` +
        `this tree is ${describeTree(REPO_ROOT)}`,
    );
    if (base.dependenciesDiffer)
      log("bench: WARNING: the base's package.json names other dependencies than this checkout's; it runs on this checkout's node_modules");
    if (o.runs > 1 && o.runs % 2 === 1)
      log(
        `bench: note: ${o.runs} rounds run this tree first in ${(o.runs + 1) / 2} of them and the base first in ${(o.runs - 1) / 2}; an even --runs balances the order`,
      );
  }

  let postgres: Record<string, string> | undefined;
  if (o.backends.includes("postgres")) {
    try {
      postgres = await postgresInfo(o.storage.postgres);
    } catch (err) {
      throw new Error(
        `PostgreSQL is not reachable at ${redactUrl(o.storage.postgres)} (--storage postgres://...): ${(err as Error).message}`,
      );
    }
    log(
      `bench: PostgreSQL ${Object.entries(postgres)
        .map(([k, v]) => `${k}=${v}`)
        .join(", ")}`,
    );
  }

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-bench-"));
  const done: { backend: Backend; scenarios: Scenario[] }[] = [];
  const failures: { backend: Backend; error: unknown }[] = [];
  const stamp = started.toISOString().replace(/[:.]/g, "-");
  const profileBase = o.profile ? path.join(REPO_ROOT, "bench", "results", "profiles", stamp) : undefined;
  let enrollPool: EnrollPoolInfo | undefined;
  let shared: Shared | undefined;
  try {
    const t = performance.now();
    const fleet = await recordFleet(o.devices);
    const caFile = path.join(tmp, "ca.pem");
    fs.writeFileSync(caFile, fleet.ca.certPem);
    log(`bench: issued ${o.devices} device certificates and recorded their requests in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    shared = { fleet, caFile, base };
    if (o.scenarios.includes("enroll")) {
      const count = enrollBatches(o) * o.enrollBatch;
      const tag = randomBytes(2).toString("hex").toUpperCase();
      const r = await recordEnrollees(fleet, count, tag);
      shared.enrollees = r.enrollees;
      enrollPool = {
        devices: count,
        batches: enrollBatches(o),
        batchSize: o.enrollBatch,
        issueS: round3(r.issueS),
        issueProcesses: r.processes,
        recordS: round3(r.recordS),
      };
      log(
        `bench: enroll: issued ${count} new device certificates in ${r.issueS.toFixed(1)} s (${((r.issueS / count) * 1000).toFixed(2)} ms each, ` +
          `${r.processes} process${r.processes > 1 ? "es" : ""}), recorded their requests in ${r.recordS.toFixed(1)} s`,
      );
    }
    if (o.scenarios.includes("push") || o.scenarios.includes("ddm")) {
      shared.push = await startPushStandIn();
      log(`bench: push: APNs stand-in at ${shared.push.apns.url}`);
    }
    for (const backend of o.backends) {
      try {
        const scenarios = await runBackend(backend, o, shared, profileBase && path.join(profileBase, backend), log);
        done.push({ backend, scenarios });
      } catch (error) {
        log(`bench: ${backend} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        failures.push({ backend, error });
      }
    }
  } finally {
    await shared?.push?.apns.close().catch(() => {});
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const totalS = round1((performance.now() - t0) / 1000);

  // ---- report
  const out: string[] = [];
  out.push("");
  out.push(`Medians of ${o.runs} run(s) of ${o.durationMs / 1000} s, ${o.devices} devices, ${inFlight(o)} in flight (${o.client} client).`);
  out.push(
    "CPU s/1k req and peak RSS are the server process's; x floor is the median of per-round req/s ratios; errors are summed over the runs.",
  );
  if (o.scenarios.includes("login"))
    out.push("A login is UserAuthenticate (challenge), UserAuthenticate (digest response, AuthToken) and the user's Idle: 3 requests.");
  if (o.scenarios.includes("enroll"))
    out.push(`An enroll run is a batch of ${fmt(o.enrollBatch)} new devices, each Authenticate + TokenUpdate: 2 requests.`);
  if (o.scenarios.includes("scale")) out.push("scale-N: Idle polls of the bench devices with N devices enrolled in the store.");
  if (o.baseOrchard)
    out.push(`base-*: the Orchard of ${o.baseOrchard.describe} (--baseline-orchard); x base is the median of per-round req/s ratios.`);
  if (o.nanomdm)
    out.push(
      `nanomdm-*: the NanoMDM baseline (${o.nanomdm.binary}, ${o.nanomdm.version}); x nanomdm is the median of per-round req/s ratios.`,
    );
  if (o.scenarios.includes("ddm"))
    out.push("ddm-*-N: DDM check-ins with N enrollments holding ~3 of 50 sets (bench/ddm.ts); a full sync is 12 requests.");
  const backendsJson: Record<string, unknown> = {};
  for (const { backend, scenarios } of done) {
    const r = report(backend, o, scenarios, enrollPool);
    out.push(r.text);
    backendsJson[backend] = r.json;
  }
  for (const { backend, error } of failures) {
    out.push("", `${BACKEND_TITLE[backend]}: FAILED: ${error instanceof Error ? error.message : String(error)}`);
    backendsJson[backend] = { backend, storage: storageLabel(backend, o), error: error instanceof Error ? error.message : String(error) };
  }
  if (o.quick) out.push("", "(quick smoke run: too short for conclusions)");
  out.push("", `bench: ${totalS} s in all`);
  process.stdout.write(out.join("\n") + "\n");

  const profiles: Record<string, Record<string, unknown>> = {};
  for (const { backend, scenarios } of done) {
    for (const s of scenarios) {
      const file = s.profileFile;
      if (!file || !fs.existsSync(file)) continue;
      const { busyMs, self, inclusive } = summarizeProfile(file, 15);
      (profiles[backend] ??= {})[s.name] = { file: path.relative(REPO_ROOT, file), busyMs, self, inclusive };
      process.stdout.write(
        `\nserver profile, ${backend} ${s.name} (${path.relative(REPO_ROOT, file)}): ${fmt(busyMs)} ms busy during the runs\n`,
      );
      process.stdout.write(profileTable(self, inclusive) + "\n");
    }
  }

  const parameters = {
    devices: o.devices,
    runs: o.runs,
    durationS: o.durationMs / 1000,
    warmupS: o.warmupMs / 1000,
    concurrency: o.concurrency,
    inFlight: inFlight(o),
    scenarios: o.scenarios,
    rows: rowsOf(o).map((r) => r.name),
    backends: o.backends,
    storage: Object.fromEntries(o.backends.map((b) => [b, storageLabel(b, o)])),
    client: o.client,
    identity: "cert-header (x-client-cert, URL-escaped PEM), one test CA, --ca given",
    digestRealm: DIGEST_REALM,
    enrollBatch: o.enrollBatch,
    scaleSizes: o.scaleSizes,
    pushSizes: o.pushSizes,
    ddmSizes: o.ddmSizes,
    ddmRows: o.ddmRows,
    push: {
      idsPerRequest: IDS_PER_REQUEST,
      inFlight: PUSH_IN_FLIGHT,
      maxStreams: PUSH_MAX_STREAMS,
      warmupPushes: PUSH_WARMUP,
      runs: Object.fromEntries(o.pushSizes.map((n) => [`push-${sizeLabel(n)}`, pushRuns(o, n)])),
    },
    quick: o.quick,
    profile: o.profile,
    runtime: o.runtime,
    serverNodeArgs: serverRuntime.nodeArgs,
    ...(serverRuntime.baseNodeArgs ? { baseServerNodeArgs: serverRuntime.baseNodeArgs } : {}),
    ...(o.nanomdm
      ? {
          baselineNanomdm: {
            binary: o.nanomdm.binary,
            version: o.nanomdm.version,
            ...(o.nanomdm.schema ? { schema: o.nanomdm.schema } : {}),
            rows: rowsOf(o)
              .filter((r) => r.baseline === "nanomdm")
              .map((r) => r.name),
          },
        }
      : {}),
    ...(o.baseOrchard
      ? {
          baselineOrchard: {
            rev: o.baseOrchard.rev,
            commit: o.baseOrchard.commit,
            describe: o.baseOrchard.describe,
            // What it was compared with: this checkout, "-dirty" with uncommitted changes.
            tree: describeTree(REPO_ROOT),
            buildS: base ? round1(base.buildS) : undefined,
            rows: rowsOf(o)
              .filter((r) => r.baseline === "orchard")
              .map((r) => r.name),
          },
        }
      : {}),
  };
  const json = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    totalS,
    machine,
    ...(postgres ? { postgres } : {}),
    parameters,
    ...(enrollPool ? { enrollPool } : {}),
    backends: backendsJson,
    ...(o.profile ? { profiles } : {}),
  };
  if (o.compare) process.stdout.write("\n" + compare(readResultsSpec(o.compare), viewResults(json, "this run")) + "\n");
  if (o.save && done.length > 0) {
    const prefix = resultsPrefix(o);
    const written: string[] = [];
    for (const kind of o.scenarios) {
      const file = `${prefix}-${kind}.json`;
      fs.writeFileSync(file, JSON.stringify(scenarioFile(json, kind), null, 2) + "\n");
      written.push(path.relative(process.cwd(), file));
    }
    process.stdout.write(`\nresults: ${written.join(", ")}\n`);
  }
  if (failures.length > 0) process.exitCode = 1;
}

/**
 * One scenario's results file: the run's machine and parameters, and per
 * backend the scenario's rows plus the floor of the same rounds (x floor).
 */
function scenarioFile(json: any, kind: ScenarioName): unknown {
  const backends: Record<string, unknown> = {};
  for (const [backend, b] of Object.entries<any>(json.backends)) {
    if (!b.scenarios) {
      backends[backend] = b; // failed: the error
      continue;
    }
    const scenarios = Object.fromEntries(
      Object.entries<any>(b.scenarios).filter(([name, row]) => name === "floor" || row?.scenario === kind),
    );
    const targets = Object.fromEntries(Object.entries<any>(b.targets ?? {}).filter(([name]) => name in scenarios));
    backends[backend] = { ...b, targets, scenarios };
  }
  const profiles = json.profiles
    ? Object.fromEntries(
        Object.entries<any>(json.profiles).map(([backend, p]) => [
          backend,
          Object.fromEntries(Object.entries<any>(p).filter(([name]) => json.backends[backend]?.scenarios?.[name]?.scenario === kind)),
        ]),
      )
    : undefined;
  const { enrollPool, ...rest } = json;
  return {
    scenario: kind,
    ...rest,
    ...(kind === "enroll" && enrollPool ? { enrollPool } : {}),
    backends,
    ...(profiles ? { profiles } : {}),
  };
}

/**
 * Runs the console scenario when --scenarios names it, and returns the
 * arguments for the other scenarios (undefined: none left to run).
 */
async function consoleScenario(argv: string[]): Promise<string[] | undefined> {
  const { values } = parseArgs({ args: argv, options: { scenarios: { type: "string" } }, strict: false });
  const picked = typeof values.scenarios === "string" ? values.scenarios.split(",").map((x) => x.trim()) : [];
  if (!picked.includes("console")) return argv;
  const own = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const devices = Number(own("--console-devices") ?? 100_000);
  const quick = argv.includes("--quick");
  const result = await runConsoleBench({ devices: quick ? 10_000 : devices, runs: Number(own("--runs") ?? (quick ? 10 : 50)) });
  if (!argv.includes("--no-save") && !quick) {
    const file = path.join(REPO_ROOT, "bench", "results", `${new Date().toISOString().slice(0, 10)}-console.json`);
    const machine = { cpuModel: os.cpus()[0]?.model.trim() ?? "unknown", cpuCount: os.cpus().length, node: process.version };
    fs.writeFileSync(file, JSON.stringify({ scenario: "console", machine, ...result }, null, 2) + "\n");
    process.stdout.write(`results: ${path.relative(process.cwd(), file)}\n`);
  }
  if (!result.pass) process.exitCode = 1;
  const rest = picked.filter((x) => x !== "console");
  if (rest.length === 0) return undefined;
  const i = argv.indexOf("--scenarios");
  const out = [...argv];
  if (i >= 0) out[i + 1] = rest.join(",");
  else
    out.splice(
      out.findIndex((a) => a.startsWith("--scenarios=")),
      1,
      `--scenarios=${rest.join(",")}`,
    );
  const c = out.indexOf("--console-devices");
  if (c >= 0) out.splice(c, 2);
  return out;
}

/**
 * Runs bench/updates.ts when --scenarios names `updates` (--updates-devices N,
 * 100,000 by default; on PostgreSQL too with --backends naming postgres), and
 * returns the arguments for the other scenarios (undefined: none left).
 */
function updatesScenario(argv: string[]): string[] | undefined {
  const { values } = parseArgs({ args: argv, options: { scenarios: { type: "string" }, backends: { type: "string" } }, strict: false });
  const picked = typeof values.scenarios === "string" ? values.scenarios.split(",").map((x) => x.trim()) : [];
  if (!picked.includes("updates")) return argv;
  const i = argv.indexOf("--updates-devices");
  const devices = i >= 0 ? argv[i + 1]! : argv.includes("--quick") ? "10000" : "100000";
  const backends = typeof values.backends === "string" ? values.backends.split(",") : ["sqlite"];
  for (const backend of backends) {
    const args = ["--import", "tsx", path.join(REPO_ROOT, "bench", "updates.ts"), "--devices", devices];
    if (backend === "postgres") args.push("--postgres");
    const r = spawnSync(process.execPath, args, { stdio: "inherit" });
    if (r.status !== 0) process.exitCode = 1;
  }
  const rest = picked.filter((x) => x !== "updates");
  if (rest.length === 0) return undefined;
  const out = argv.filter((_, k) => k !== i && k !== i + 1);
  const s = out.indexOf("--scenarios");
  if (s >= 0) out[s + 1] = rest.join(",");
  return out;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
