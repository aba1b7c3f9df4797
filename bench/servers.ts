// Starts bench/server-process.ts in a child process and talks to it over IPC.
import { fork, type ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bundle, ensureOrchardBundle } from "../bin/bundle.js";
import type { BaseOrchard } from "./base-orchard.ts";
import type { ChildMessage, ParentMessage, ServerStats } from "./server-process.ts";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SCRIPT = path.join(REPO_ROOT, "bench", "server-process.ts");
const BUNDLED_SCRIPT = path.join(REPO_ROOT, "dist", "bench", "server-process.mjs");
const KEEP_LOG_LINES = 20;

/**
 * How the servers run. `bundle` (the default) as `orchard serve` runs
 * (bin/orchard.js): Orchard from dist/orchard.mjs on plain node, and
 * server-process.ts bundled apart (the floor and the receiver load none of
 * Orchard). `tsx`: the sources through tsx, as before the bundle (35 to 55 MB
 * more RSS). `nodeArgs` go to node for the Orchard servers only (V8 flags such
 * as --max-semi-space-size; not the floor's).
 */
export const serverRuntime: { kind: "bundle" | "tsx"; nodeArgs: string[]; baseNodeArgs?: string[] } = { kind: "bundle", nodeArgs: [] };

let prepared: Promise<string> | undefined;

/** Builds (when src/ changed) Orchard's bundle and, once per bench process, the bundled server-process. */
function prepareBundle(): Promise<string> {
  prepared ??= (async () => {
    const orchard = ensureOrchardBundle(REPO_ROOT);
    if (orchard instanceof Error) throw orchard;
    // Its `import("../src/...")` lines are the tsx runtime's: under the bundle it imports ORCHARD_BENCH_BUNDLE.
    await bundle({ root: REPO_ROOT, entry: SCRIPT, outfile: BUNDLED_SCRIPT, external: ["../src/*"] });
    return orchard;
  })();
  return prepared;
}

export class ServerHandle {
  /** Lines the server wrote on stdout after its URL (log lines) and on stderr (warnings), the last few kept. */
  readonly logTail: string[] = [];
  logLines = 0;
  private nextId = 1;
  private readonly waiting = new Map<number, (s: ServerStats) => void>();
  private exited: Promise<number | null>;
  private exitError: Error | undefined;

  private constructor(
    readonly kind: "orchard" | "floor" | "receiver",
    readonly url: string,
    private readonly child: ChildProcess,
    /** The node flags the server runs with, as it reports them (process.execArgv, the tsx loader's left out). */
    readonly nodeFlags: readonly string[] = [],
  ) {
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    child.on("message", (m: ChildMessage) => {
      if (m.type === "stats") {
        this.waiting.get(m.id)?.(m);
        this.waiting.delete(m.id);
      }
    });
    child.once("exit", (code, signal) => {
      this.exitError = new Error(`${kind} server exited (${signal ?? code})`);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Forks the server. `nodeArgs` go to node (e.g. --cpu-prof), `args` to
   * server-process.ts after the mode. `base`: Orchard from that revision's
   * bundle (--baseline-orchard) instead of this checkout's.
   */
  static async start(
    kind: "orchard" | "floor" | "receiver",
    args: string[] = [],
    nodeArgs: string[] = [],
    base?: BaseOrchard,
  ): Promise<ServerHandle> {
    const orchardArgs = kind !== "orchard" ? [] : base ? (serverRuntime.baseNodeArgs ?? serverRuntime.nodeArgs) : serverRuntime.nodeArgs;
    if (base && serverRuntime.kind === "tsx") throw new Error("a base Orchard runs from its bundle only, not under --runtime tsx");
    const started = ServerHandle.fork(kind, args, [...orchardArgs, ...nodeArgs], base);
    if (!base) return started;
    return started.catch((err: Error) => {
      // Flag names only: their values hold the bench's API key and database URLs.
      const flags = args.filter((a) => a.startsWith("--")).join(" ");
      throw new Error(
        `the base Orchard ${base.describe} failed to start with the flags this bench gives Orchard (${flags}); ` +
          `a revision older than one of them cannot be A/B'd on this row. ${err.message}`,
      );
    });
  }

  private static async fork(
    kind: "orchard" | "floor" | "receiver",
    args: string[],
    execArgs: string[],
    base?: BaseOrchard,
  ): Promise<ServerHandle> {
    // This checkout's bundles are built either way: the server process is its own, whichever Orchard it loads.
    const bundle = serverRuntime.kind === "bundle" ? await prepareBundle() : undefined;
    const child =
      serverRuntime.kind === "tsx"
        ? fork(SCRIPT, [kind, ...args], {
            cwd: REPO_ROOT,
            execArgv: ["--import", "tsx", ...execArgs],
            stdio: ["ignore", "pipe", "pipe", "ipc"],
          })
        : fork(BUNDLED_SCRIPT, [kind, ...args], {
            cwd: REPO_ROOT,
            execArgv: execArgs,
            env: { ...process.env, ORCHARD_BENCH_BUNDLE: base?.bundle ?? bundle },
            stdio: ["ignore", "pipe", "pipe", "ipc"],
          });
    return new Promise((resolve, reject) => {
      let handle: ServerHandle | undefined;
      let sawUrl = false;
      const early: string[] = [];
      const keep = (line: string) => {
        if (!handle) return void early.push(line);
        handle.logLines++;
        handle.logTail.push(line);
        if (handle.logTail.length > KEEP_LOG_LINES) handle.logTail.shift();
      };
      lines(child.stdout!, (line) => {
        // The URL line (it also comes over IPC); log lines written during start-up (warnings) can come before it.
        if (!sawUrl && /^https?:\/\/\S+$/.test(line)) sawUrl = true;
        else keep(line);
      });
      lines(child.stderr!, (line) => keep(`stderr: ${line}`));
      child.on("message", (m: ChildMessage) => {
        if (m.type === "ready") {
          handle = new ServerHandle(
            kind,
            m.url,
            child,
            m.execArgv.filter((a, i, all) => a !== "--import" && all[i - 1] !== "--import"),
          );
          for (const line of early.splice(0)) keep(line);
          resolve(handle);
        } else if (m.type === "error") reject(new Error(`${kind} server failed to start: ${m.message}`));
      });
      child.once("exit", (code) =>
        reject(new Error(`${kind} server exited with ${code} before it was ready${early.length ? ":\n" + early.join("\n") : ""}`)),
      );
    });
  }

  stats(): Promise<ServerStats> {
    if (this.exitError) return Promise.reject(this.exitError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, resolve);
      this.send({ type: "stats", id });
      void this.exited.then(() => reject(this.exitError ?? new Error("server exited")));
    });
  }

  /** Starts V8's CPU profiler inside the server. */
  startProfile(intervalUs = 250): void {
    this.send({ type: "profile-start", intervalUs });
  }

  /** Stops the profiler and waits until the server has written the profile to `file`. */
  stopProfile(file: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: ChildMessage) => {
        if (m.type === "profile-written" && m.file === file) done(), resolve();
        else if (m.type === "error") done(), reject(new Error(`profile: ${m.message}`));
      };
      const done = () => this.child.off("message", onMessage);
      this.child.on("message", onMessage);
      this.send({ type: "profile-stop", file });
    });
  }

  resetPeak(): void {
    this.send({ type: "reset-peak" });
  }

  /** Asks the server to close and waits for its exit (a profile is written then). */
  async stop(): Promise<void> {
    if (!this.exitError) this.send({ type: "stop" });
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  private send(m: ParentMessage): void {
    if (this.child.connected) this.child.send(m);
  }
}

function lines(stream: Readable, onLine: (line: string) => void): void {
  let partial = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop()!;
    for (const line of parts) onLine(line);
  });
}
