// The server side of the bench, in its own process so that its CPU time and
// memory are measured apart from the load generator's.
//
//   node --import tsx bench/server-process.ts orchard [orchard serve flags...]
//   node --import tsx bench/server-process.ts floor
//
// The bench runs it bundled (dist/bench/server-process.mjs, bench/servers.ts)
// on plain node, with ORCHARD_BENCH_BUNDLE naming Orchard's bundle
// (dist/orchard.mjs), which `orchard` mode then loads: Orchard as
// bin/orchard.js runs it. Without that variable it loads the sources.
//
// `orchard` runs startServer(parseServeArgs(flags)); `floor` runs a bare
// node:http server answering every request 200 with an empty body (the
// baseline). Either prints its URL as the first line on stdout. Under fork()
// it also speaks IPC: it sends {type:"ready", url, execArgv}, and answers
// {type:"stats"} with its CPU time and memory, {type:"reset-peak"} by
// restarting the peak RSS tracking, {type:"profile-start"} and
// {type:"profile-stop", file} by running V8's CPU profiler in this process
// (so a profile covers the measured runs only, not start-up and enrollment),
// and {type:"stop"} by closing and exiting.
import fs from "node:fs";
import http from "node:http";
import v8 from "node:v8";
import { Session } from "node:inspector/promises";
import { pathToFileURL } from "node:url";

export interface ServerStats {
  type: "stats";
  id: number;
  /** process.cpuUsage() in microseconds (all threads). */
  cpu: NodeJS.CpuUsage;
  rss: number;
  /** Highest RSS sampled since the last reset-peak (bytes). */
  peakRss: number;
  /** Kernel's peak RSS over the process's life (bytes). */
  maxRss: number;
  heapUsed: number;
  /** Where the memory was when peakRss was sampled (MB). */
  peakMemory?: MemoryBreakdown;
  /** receiver: the requests it has answered. */
  requests?: number;
}

/**
 * One sample of where the process's memory is, in MB: V8's heap (committed,
 * used, and its spaces), memory outside it that V8 knows of (external, of it
 * arrayBuffers), and the kernel's view: anonymous RSS (heaps, V8 and malloc
 * alike, and thread stacks) against file-backed RSS (node's binary and the
 * shared libraries, shared with other node processes).
 */
export interface MemoryBreakdown {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  newSpace: number;
  oldSpace: number;
  codeSpace: number;
  largeObjects: number;
  external: number;
  arrayBuffers: number;
  rssAnon: number;
  rssFile: number;
  threads: number;
}

export type ParentMessage =
  | { type: "stats"; id: number }
  | { type: "reset-peak" }
  | { type: "profile-start"; intervalUs: number }
  | { type: "profile-stop"; file: string }
  | { type: "stop" };
export type ChildMessage =
  | { type: "ready"; url: string; execArgv: string[] }
  | ServerStats
  | { type: "profile-written"; file: string }
  | { type: "error"; message: string };

const SAMPLE_MS = 50;

let received = 0;

async function main(): Promise<void> {
  const [mode, ...args] = process.argv.slice(2);
  let url: string;
  let close: () => Promise<void>;
  if (mode === "orchard") {
    // Loaded here only, so the floor process carries none of Orchard's modules.
    const bundle = process.env.ORCHARD_BENCH_BUNDLE;
    const {
      parseServeArgs,
      startServer,
    }: Pick<typeof import("../src/config.ts"), "parseServeArgs"> & Pick<typeof import("../src/server.ts"), "startServer"> = bundle
      ? await import(pathToFileURL(bundle).href)
      : { ...(await import("../src/config.ts")), ...(await import("../src/server.ts")) };
    // The environment is left out so ORCHARD_* variables of the shell cannot skew a run.
    const server = await startServer(parseServeArgs(args, {}));
    url = server.url;
    close = () => server.close();
  } else if (mode === "receiver") {
    // A webhook receiver: answers every POST 200 and counts them.
    const server = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        received++;
        res.writeHead(200, { "content-length": 0 });
        res.end();
      });
    });
    server.keepAliveTimeout = 120_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no TCP address");
    url = `http://127.0.0.1:${address.port}`;
    close = () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
  } else if (mode === "floor") {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-length": 0 });
        res.end();
      });
    });
    server.keepAliveTimeout = 120_000;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no TCP address");
    url = `http://127.0.0.1:${address.port}`;
    close = () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
  } else {
    throw new Error("usage: server-process.ts orchard [flags...] | floor | receiver");
  }

  let peakRss = process.memoryUsage.rss();
  let peakMemory: MemoryBreakdown | undefined;
  const sampler = setInterval(() => {
    const rss = process.memoryUsage.rss();
    if (rss > peakRss) {
      peakRss = rss;
      peakMemory = memoryBreakdown();
    }
  }, SAMPLE_MS);
  sampler.unref();

  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= close().finally(() => process.exit(0)));

  process.stdout.write(url + "\n");
  if (!process.send) return;
  const send = (m: ChildMessage) => process.send!(m);
  const fail = (err: unknown) => send({ type: "error", message: err instanceof Error ? err.message : String(err) });
  let profiler: Session | undefined;
  process.on("message", (m: ParentMessage) => {
    if (m.type === "stats") {
      const mem = process.memoryUsage();
      if (mem.rss > peakRss) peakRss = mem.rss;
      send({
        type: "stats",
        id: m.id,
        cpu: process.cpuUsage(),
        rss: mem.rss,
        peakRss,
        maxRss: process.resourceUsage().maxRSS * 1024,
        heapUsed: mem.heapUsed,
        peakMemory,
        ...(mode === "receiver" ? { requests: received } : {}),
      });
    } else if (m.type === "reset-peak") {
      peakRss = process.memoryUsage.rss();
      peakMemory = memoryBreakdown();
    } else if (m.type === "profile-start") {
      void (async () => {
        profiler ??= new Session();
        profiler.connect();
        await profiler.post("Profiler.enable");
        await profiler.post("Profiler.setSamplingInterval", { interval: m.intervalUs });
        await profiler.post("Profiler.start");
      })().catch(fail);
    } else if (m.type === "profile-stop") {
      void (async () => {
        if (!profiler) throw new Error("profile-stop without profile-start");
        const { profile } = await profiler.post("Profiler.stop");
        fs.writeFileSync(m.file, JSON.stringify(profile));
        profiler.disconnect();
        profiler = undefined;
        send({ type: "profile-written", file: m.file });
      })().catch(fail);
    } else if (m.type === "stop") {
      clearInterval(sampler);
      void stop();
    }
  });
  // The bench died: do not linger.
  process.on("disconnect", () => void stop());
  send({ type: "ready", url, execArgv: process.execArgv });
}

function memoryBreakdown(): MemoryBreakdown {
  const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
  const mem = process.memoryUsage();
  const space = (name: string) => mb(v8.getHeapSpaceStatistics().find((s) => s.space_name === name)?.space_size ?? 0);
  let status = "";
  try {
    status = fs.readFileSync("/proc/self/status", "utf8");
  } catch {
    // Not Linux: the kernel's part stays 0.
  }
  const kb = (key: string) => mb(Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0) * 1024);
  return {
    rss: mb(mem.rss),
    heapTotal: mb(mem.heapTotal),
    heapUsed: mb(mem.heapUsed),
    newSpace: space("new_space"),
    oldSpace: space("old_space"),
    codeSpace: space("code_space"),
    largeObjects: space("large_object_space"),
    external: mb(mem.external),
    arrayBuffers: mb(mem.arrayBuffers),
    rssAnon: kb("RssAnon"),
    rssFile: kb("RssFile"),
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 0),
  };
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`server-process: ${message}\n`);
  process.send?.({ type: "error", message } satisfies ChildMessage);
  process.exit(1);
});
