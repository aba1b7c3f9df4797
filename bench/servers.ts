// Starts bench/server-process.ts in a child process and talks to it over IPC.
import { fork, type ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ChildMessage, ParentMessage, ServerStats } from "./server-process.ts";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SCRIPT = path.join(REPO_ROOT, "bench", "server-process.ts");
const KEEP_LOG_LINES = 20;

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
   * server-process.ts after the mode.
   */
  static start(kind: "orchard" | "floor" | "receiver", args: string[] = [], nodeArgs: string[] = []): Promise<ServerHandle> {
    const child = fork(SCRIPT, [kind, ...args], {
      cwd: REPO_ROOT,
      execArgv: ["--import", "tsx", ...nodeArgs],
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
          handle = new ServerHandle(kind, m.url, child);
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
