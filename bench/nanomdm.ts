// NanoMDM (github.com/micromdm/nanomdm, MIT) as a baseline for the bench:
// with --baseline-nanomdm PATH each backend also runs the NanoMDM binary the
// operator built, in the same rounds, with the same devices and the same
// recorded requests. Nothing of NanoMDM is in this repository: the binary
// and, for PostgreSQL, its schema are the operator's, found at run time.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import pg from "pg";
import type { RequestOptions } from "../src/sim/transport.ts";
import type { RequestMap } from "./fleet.ts";
import { procCpuUsage, procMemory } from "./proc.ts";
import type { ServerStats } from "./server-process.ts";

/** The driven scenarios NanoMDM has a counterpart of (no digest login, no seeding path for scale, no DDM or webhook outbox of the same kind). */
export const NANOMDM_KINDS = ["idle", "tokenupdate", "roundtrip", "enroll"] as const;
export type NanoMdmKind = (typeof NANOMDM_KINDS)[number];
export const isNanoMdmKind = (kind: string): kind is NanoMdmKind => (NANOMDM_KINDS as readonly string[]).includes(kind);

/** NanoMDM's API takes HTTP Basic with this user name and -api as the password. */
export const NANOMDM_API_USER = "nanomdm";

/** Its endpoints with -checkin: check-in messages on their own path, command reports and polls on /mdm. */
const CHECKIN_PATH = "/checkin";
const SERVER_PATH = "/mdm";
const CHECKIN_TYPE = "application/x-apple-aspen-mdm-checkin";
const SERVER_TYPE = "application/x-apple-aspen-mdm";

/**
 * A recorded request as NanoMDM takes it: check-ins (by their content type,
 * whatever path Orchard's devices use) to /checkin, command reports to /mdm,
 * and the API (/v1/...: the enqueue; NanoMDM has the same path and
 * ?nopush=1) with NanoMDM's Basic credentials. The body and the identity
 * header stay byte for byte the same.
 */
export function nanomdmRequest(apiKey: string): RequestMap {
  const authorization = "Basic " + Buffer.from(`${NANOMDM_API_USER}:${apiKey}`).toString("base64");
  return (o: RequestOptions): RequestOptions => {
    const headers = { ...o.headers };
    const type = Object.entries(headers).find(([k]) => k.toLowerCase() === "content-type")?.[1];
    if (type === CHECKIN_TYPE) return { ...o, headers, path: CHECKIN_PATH };
    if (type === SERVER_TYPE) return { ...o, headers, path: SERVER_PATH };
    if (o.path.startsWith("/v1/")) {
      for (const k of Object.keys(headers)) if (k.toLowerCase() === "authorization") delete headers[k];
      return { ...o, headers: { ...headers, authorization } };
    }
    throw new Error(`no NanoMDM counterpart for ${o.method} ${o.path}`);
  };
}

/** NanoMDM's pgsql storage takes a lib/pq URL; the bench's PostgreSQL runs without TLS. */
export function nanomdmPgsqlDsn(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  if (!url.searchParams.has("sslmode")) url.searchParams.set("sslmode", "disable");
  return url.toString();
}

/**
 * Where NanoMDM's PostgreSQL schema is: the path given, else beside the
 * binary as `pgsql-schema.sql` or, for a binary built at the top of a
 * NanoMDM checkout, `storage/pgsql/schema.sql` there.
 */
export function nanomdmSchemaCandidates(binary: string, given?: string): string[] {
  if (given !== undefined) return [path.resolve(given)];
  const dir = path.dirname(path.resolve(binary));
  return [path.join(dir, "pgsql-schema.sql"), path.join(dir, "storage", "pgsql", "schema.sql")];
}

export function findNanoMdmSchema(binary: string, given?: string): string | undefined {
  return nanomdmSchemaCandidates(binary, given).find((f) => fs.existsSync(f) && fs.statSync(f).isFile());
}

/** `nanomdm -version`; throws with the reason when the binary cannot run. */
export function nanomdmVersion(binary: string): string {
  try {
    return execFileSync(binary, ["-version"], { encoding: "utf8", timeout: 10_000, stdio: ["ignore", "pipe", "pipe"] }).trim();
  } catch (err) {
    throw new Error(`--baseline-nanomdm ${binary}: cannot run it: ${(err as Error).message.split("\n")[0]}`);
  }
}

/** Loads NanoMDM's schema into a fresh database (it has no migrations of its own). */
export async function loadNanoMdmSchema(databaseUrl: string, schemaFile: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(fs.readFileSync(schemaFile, "utf8"));
  } finally {
    await client.end().catch(() => {});
  }
}

export type NanoMdmStorage = { kind: "filekv"; dir: string } | { kind: "pgsql"; dsn: string };

export interface NanoMdmStart {
  binary: string;
  caFile: string;
  apiKey: string;
  certHeader: string;
  storage: NanoMdmStorage;
  /** Its stdout and stderr: two info lines per request, and NanoMDM has no quieter level. */
  logFile: string;
}

const SAMPLE_MS = 50;
const READY_TIMEOUT_MS = 15_000;
const KEEP_LOG_LINES = 20;
/** Log lines that tell of something wrong: NanoMDM logs a failed request at info level with err=. */
const TROUBLE = /\blevel=(warn|error)\b|\berr=/;

/**
 * A NanoMDM server in a plain child process. It speaks no IPC, so its CPU
 * time comes from /proc/<pid>/stat and its memory from /proc/<pid>/status,
 * the peak sampled every 50 ms as the Orchard servers sample their own.
 */
export class NanoMdmServer {
  /** After stop(): the log lines that tell of trouble, and the last few of them. */
  readonly logTail: string[] = [];
  logLines = 0;
  private peakRss = 0;
  private readonly sampler: NodeJS.Timeout;
  private exitReason: string | undefined;
  private readonly killOnExit = () => this.child.kill("SIGKILL");

  private constructor(
    readonly url: string,
    readonly version: string,
    private readonly child: ChildProcess,
    private readonly exited: Promise<void>,
    private readonly logFile: string,
  ) {
    void exited.then(() => (this.exitReason ??= `exited (${child.signalCode ?? child.exitCode})`));
    process.once("exit", this.killOnExit);
    this.resetPeak();
    this.sampler = setInterval(() => this.sample(), SAMPLE_MS);
    this.sampler.unref();
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Starts NanoMDM on a free port of 127.0.0.1 and waits until GET /version answers. */
  static async start(o: NanoMdmStart): Promise<NanoMdmServer> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await NanoMdmServer.startOn(await freePort(), o);
      } catch (err) {
        // The port was free a moment ago; another process may have taken it since.
        if (attempt < 3 && /address already in use/.test((err as Error).message)) continue;
        throw err;
      }
    }
  }

  private static async startOn(port: number, o: NanoMdmStart): Promise<NanoMdmServer> {
    const listen = `127.0.0.1:${port}`;
    const args = ["-listen", listen, "-api", o.apiKey, "-ca", o.caFile, "-cert-header", o.certHeader, "-checkin"];
    args.push("-storage", o.storage.kind, "-storage-dsn", o.storage.kind === "filekv" ? o.storage.dir : o.storage.dsn);
    const log = fs.openSync(o.logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(o.binary, args, { stdio: ["ignore", log, log] });
    } finally {
      fs.closeSync(log);
    }
    let failed: Error | undefined;
    const exited = new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", (err) => {
        failed = err;
        resolve();
      });
    });
    let gone = false;
    void exited.then(() => (gone = true));
    const url = `http://${listen}`;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (gone) {
        const why = failed ? failed.message : `exited with ${child.signalCode ?? child.exitCode}`;
        throw new Error(`nanomdm ${why} before it answered:\n${tail(o.logFile, 10)}`);
      }
      try {
        const r = await fetch(`${url}/version`, { signal: AbortSignal.timeout(1000) });
        if (r.ok) {
          const version = ((await r.json()) as { version?: string }).version ?? "unknown";
          return new NanoMdmServer(url, version, child, exited, o.logFile);
        }
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
    }
    child.kill("SIGKILL");
    await exited;
    throw new Error(`nanomdm did not answer GET /version within ${READY_TIMEOUT_MS / 1000} s:\n${tail(o.logFile, 10)}`);
  }

  /** CPU time (all threads) and memory, in ServerStats' shape (no heap: it is not a node process). */
  async stats(): Promise<ServerStats> {
    const pid = this.child.pid;
    const cpu = pid === undefined ? undefined : procCpuUsage(pid);
    const mem = pid === undefined ? undefined : procMemory(pid);
    if (this.exitReason || !cpu || !mem) throw new Error(`nanomdm server ${this.exitReason ?? "cannot be read in /proc"}`);
    if (mem.rss > this.peakRss) this.peakRss = mem.rss;
    return { type: "stats", id: 0, cpu, rss: mem.rss, peakRss: this.peakRss, maxRss: mem.hwm, heapUsed: 0 };
  }

  resetPeak(): void {
    this.peakRss = 0;
    this.sample();
  }

  /** SIGTERM (SIGKILL after 10 s), then reads the log for lines that tell of trouble. */
  async stop(): Promise<void> {
    clearInterval(this.sampler);
    if (!this.exitReason) this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
    process.off("exit", this.killOnExit);
    await this.scanLog();
  }

  private sample(): void {
    const mem = this.child.pid === undefined ? undefined : procMemory(this.child.pid);
    if (mem && mem.rss > this.peakRss) this.peakRss = mem.rss;
  }

  private async scanLog(): Promise<void> {
    if (!fs.existsSync(this.logFile)) return;
    const lines = readline.createInterface({ input: fs.createReadStream(this.logFile, "utf8"), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!TROUBLE.test(line)) continue;
      this.logLines++;
      this.logTail.push(line);
      if (this.logTail.length > KEEP_LOG_LINES) this.logTail.shift();
    }
  }
}

/** A port of 127.0.0.1 that nothing listens on now (NanoMDM does not say which port it took for :0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (address && typeof address === "object" ? resolve(address.port) : reject(new Error("no TCP address"))));
    });
  });
}

/** The last lines of a (small, start-up) log file. */
function tail(file: string, n: number): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-n).join("\n");
  } catch {
    return "(no log)";
  }
}
