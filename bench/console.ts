// The console's speed (issue #16): the device list's first page with 100,000
// enrollments in the store, and a device page, in server time on SQLite. Each
// request is sent in process with Fastify's inject (routing, the API guard,
// the handler, the store, JSON): the server's time without the network. A
// device page is the sum of the medians of the requests the page sends (the
// browser sends them at once; the sum is what the server spends on one page).
//   npm run bench -- --scenarios console [--console-devices 100000] [--runs 50] [--no-save]
//   node --import tsx bench/console.ts [--devices 100000] [--runs 50] [--out FILE]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { Writable } from "node:stream";
import { parseArgs } from "node:util";
import { parseServeArgs } from "../src/config.ts";
import { createLogger, startServer, type RunningServer } from "../src/server.ts";
import { seedEnrollments } from "../test/support/apns.ts";

const API_KEY = "bench-console-api-key-0123456789abcdef";
/** What the console's device list asks for: device channels, 50 a page. */
export const FIRST_PAGE = "/v1/enrollments?type=Device%2CUserEnrollmentDevice&limit=50";
export const TARGET_MS = { list: 200, device: 100 };

export interface ConsoleBenchResult {
  devices: number;
  runs: number;
  seedS: number;
  /** Per request: median and p95 server time, ms. */
  requests: Record<string, { medianMs: number; p95Ms: number }>;
  listFirstPageMs: number;
  devicePageMs: number;
  /** GET /v1/fleet's first answer (later ones come from its 10 s cache). */
  fleetUncachedMs: number;
  targets: typeof TARGET_MS;
  pass: boolean;
}

function devicePage(id: string): string[] {
  const e = encodeURIComponent(id);
  return [
    `/v1/enrollments?device=${e}&limit=1000`,
    `/v1/enrollments/${e}/rebind`,
    `/v1/user-sessions?device=${e}&limit=100`,
    `/v1/queue/${e}`,
    `/v1/enrollments/${e}/commands?limit=25`,
    `/v1/enrollment-sets/${e}`,
    `/v1/declaration-status/${e}`,
    `/v1/events?enrollment=${e}&order=desc&limit=50`,
  ];
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const round2 = (n: number) => Math.round(n * 100) / 100;

export async function runConsoleBench(o: { devices: number; runs: number; log?: (line: string) => void }): Promise<ConsoleBenchResult> {
  const log = o.log ?? ((line: string) => process.stdout.write(line + "\n"));
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-bench-console-"));
  const sink = new Writable({ write: (_c, _e, done) => done() });
  const config = parseServeArgs(["--listen", "127.0.0.1:0", "--data-dir", dataDir, "--api-key", API_KEY, "--log-level", "warn"], {});
  let server: RunningServer | undefined;
  try {
    server = await startServer(config, createLogger(config.logLevel, sink));
    const t0 = performance.now();
    await seedEnrollments(server.store, o.devices, { prefix: "CONSOLE" });
    // Facts a real fleet has: platform, name, serial, OS (the list shows them).
    await server.store.db.run(
      `UPDATE devices SET platform = CASE WHEN id LIKE '%0' OR id LIKE '%5' THEN 'iOS' ELSE 'macOS' END,
         device_name = 'Mac ' || id, serial_number = 'SN' || substr(id, 9), os_version = '14.6'`,
    );
    // Every enrolled device has an inventory record (made at Authenticate): the fleet's OS versions are counted from it.
    await server.store.db.run(
      `INSERT INTO inventory (device_id, serial_number, platform, device_name, os_version, learned, updated_at)
       SELECT id, serial_number, platform, device_name, os_version, '{}', 0 FROM devices`,
    );
    const device = `CONSOLE-${String(Math.floor(o.devices / 2)).padStart(6, "0")}`;
    // A device with some history: 30 commands, 10 answered.
    for (let i = 0; i < 30; i++) {
      const uuid = `bench-console-${i}`;
      const plist = `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict><key>CommandUUID</key><string>${uuid}</string></dict></plist>`;
      await server.store.commands.enqueue(
        { commandUuid: uuid, requestType: "ProfileList", command: Buffer.from(plist) },
        [device],
        Date.now(),
      );
      if (i < 10) await server.store.commands.report(device, uuid, "Acknowledged", Buffer.from(plist), Date.now());
    }
    const seedS = round2((performance.now() - t0) / 1000);
    log(`console: ${o.devices.toLocaleString("en")} enrollments seeded in ${seedS} s (SQLite); ${o.runs} runs a request`);

    const app = server.app;
    const authorization = "Basic " + Buffer.from(`bench:${API_KEY}`).toString("base64");
    const time = async (url: string): Promise<number> => {
      const start = performance.now();
      const res = await app.inject({ method: "GET", url, headers: { authorization } });
      const ms = performance.now() - start;
      if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      return ms;
    };
    const fleetUncachedMs = round2(await time("/v1/fleet"));
    const urls = [FIRST_PAGE, "/v1/fleet", `/v1/enrollments?q=${encodeURIComponent("sn-099")}&limit=50`, ...devicePage(device)];
    for (const url of urls) for (let i = 0; i < 3; i++) await time(url); // warm: statements prepared, the bundle-free API path hot
    const samples = new Map<string, number[]>(urls.map((u) => [u, []]));
    // Interleaved, so a slow moment of the machine is shared by every request.
    for (let r = 0; r < o.runs; r++) for (const url of urls) samples.get(url)!.push(await time(url));
    const requests: ConsoleBenchResult["requests"] = {};
    for (const [url, s] of samples) {
      s.sort((a, b) => a - b);
      requests[url] = { medianMs: round2(quantile(s, 0.5)), p95Ms: round2(quantile(s, 0.95)) };
    }
    const listFirstPageMs = requests[FIRST_PAGE]!.medianMs;
    const devicePageMs = round2(devicePage(device).reduce((sum, u) => sum + requests[u]!.medianMs, 0));
    const pass = listFirstPageMs < TARGET_MS.list && devicePageMs < TARGET_MS.device;
    for (const [url, r] of Object.entries(requests))
      log(`  ${r.medianMs.toFixed(2).padStart(8)} ms  (p95 ${r.p95Ms.toFixed(2)})  GET ${url}`);
    log(
      `console: device list first page ${listFirstPageMs} ms (target < ${TARGET_MS.list}), device page ${devicePageMs} ms ` +
        `(target < ${TARGET_MS.device}): ${pass ? "pass" : "FAIL"}`,
    );
    log(`console: GET /v1/fleet uncached ${fleetUncachedMs} ms (then from its cache)`);
    return { devices: o.devices, runs: o.runs, seedS, requests, listFirstPageMs, devicePageMs, fleetUncachedMs, targets: TARGET_MS, pass };
  } finally {
    await server?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith(path.join("bench", "console.ts"))) {
  const { values } = parseArgs({
    options: { devices: { type: "string", default: "100000" }, runs: { type: "string", default: "50" }, out: { type: "string" } },
  });
  const result = await runConsoleBench({ devices: Number(values.devices), runs: Number(values.runs) });
  if (values.out)
    fs.writeFileSync(values.out, JSON.stringify({ machine: { cpus: os.cpus().length, node: process.version }, ...result }, null, 2) + "\n");
  if (!result.pass) process.exitCode = 1;
}
