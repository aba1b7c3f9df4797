import fs from "node:fs";
import path from "node:path";
import { DEVICE_CA_CERT_FILE, DEVICE_CA_KEY_FILE } from "../enroll/device-ca.ts";
import { ConfigError, parseDuration } from "../config.ts";
import { runSimulation, type PlatformMix, type SimulateOptions, type SimulationReport } from "../sim/fleet-sim.ts";
import { SimStats } from "../sim/metrics.ts";
import { formatSummary, progressLine } from "./simulate-summary.ts";
import {
  CliError,
  connect,
  DEFAULT_URL,
  parseCommand,
  positiveInt,
  printJson,
  UsageError,
  type CliContext,
  type ClientCommand,
} from "./command.ts";

const MAX_DEVICES = 1_000_000;
/** Redraws of the progress line, at most ~4 a second. */
const PROGRESS_MS = 250;

export const simulateCommand: ClientCommand = {
  name: "simulate",
  summary: "run a fleet of virtual Macs and iPhones against a server (a smoke test)",
  usage: [
    `simulate --devices N [--users-per-device M] [--network-users] [--duration 60s]`,
    "  virtual Macs and iPhones enroll, open user channels (network users log in with UserAuthenticate),",
    "  poll and answer the commands the run queues; a summary at the end (--json: one JSON object); exit 1",
    "  when any error was seen. Also: [--rate R] [--concurrency C] [--platform mixed|macOS|iOS] [--seed S]",
    "  [--cert-header NAME | --sign-messages] [--scep | --ca-cert F --ca-key F | --ca-out DIR] [--checkin-path P]",
    "  (default: messages signed (Mdm-Signature); identities from the device CA in ./data (ORCHARD_DATA_DIR) when found,",
    "  else from the server's SCEP)",
    "  [--server-path P] [--poll-interval 5s] [--command-interval 10s | --no-commands] [--not-now 0.05]",
    "  [--update-failure 0] [--cleanup]; see docs/simulator.md (devices given an OS update enforcement declaration",
    "  download, install and report the new version, a step per poll: docs/software-updates.md)",
  ],
  async run(args, ctx) {
    const { values, positionals } = parseCommand(args, {
      devices: { type: "string" },
      "users-per-device": { type: "string" },
      "network-users": { type: "boolean", default: false },
      "ca-cert": { type: "string" },
      "ca-key": { type: "string" },
      "ca-out": { type: "string" },
      scep: { type: "boolean", default: false },
      duration: { type: "string" },
      rate: { type: "string" },
      concurrency: { type: "string" },
      "cert-header": { type: "string" },
      "sign-messages": { type: "boolean", default: false },
      "checkin-path": { type: "string" },
      "server-path": { type: "string" },
      platform: { type: "string" },
      seed: { type: "string" },
      "no-commands": { type: "boolean", default: false },
      "command-interval": { type: "string" },
      "poll-interval": { type: "string" },
      "not-now": { type: "string" },
      "update-failure": { type: "string" },
      cleanup: { type: "boolean", default: false },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);

    const devices = positiveInt("--devices", values.devices);
    if (devices === undefined) throw new UsageError("give --devices N");
    if (devices > MAX_DEVICES) throw new UsageError(`--devices is at most ${MAX_DEVICES}`);
    let usersPerDevice = wholeNumber("--users-per-device", values["users-per-device"]);
    if (values["network-users"] && usersPerDevice === undefined) usersPerDevice = 1;
    if (values["network-users"] && usersPerDevice === 0) throw new UsageError("--network-users needs --users-per-device 1 or more");

    if (values["cert-header"] !== undefined && values["sign-messages"])
      throw new UsageError("give --cert-header or --sign-messages, not both");
    const header = values["cert-header"] ?? "x-client-cert";
    if (!/^[A-Za-z0-9-]+$/.test(header)) throw new UsageError("--cert-header must be an HTTP header name");

    if (values.scep) {
      const given = (["ca-cert", "ca-key", "ca-out"] as const).filter((f) => values[f] !== undefined);
      if (given.length > 0)
        throw new UsageError(`--scep takes the certificates from the server's SCEP: not with ${given.map((f) => `--${f}`).join(" or ")}`);
    }
    if ((values["ca-cert"] === undefined) !== (values["ca-key"] === undefined))
      throw new UsageError("give --ca-cert and --ca-key together");
    if (values["ca-cert"] !== undefined && values["ca-out"] !== undefined)
      throw new UsageError("--ca-out is where a generated CA goes: not with --ca-cert");
    let ca =
      values["ca-cert"] !== undefined
        ? { certPem: readFile(values["ca-cert"], "--ca-cert"), keyPem: readFile(values["ca-key"]!, "--ca-key") }
        : undefined;
    let scep = values.scep;
    const defaultNotice: string[] = [];
    if (!scep && ca === undefined && values["ca-out"] === undefined) {
      // No identity source given: one the server trusts by default (it trusts its device CA, nothing else).
      const local = localDeviceCa(ctx);
      if (local) {
        ca = { certPem: readFile(local.certFile, "the device CA"), keyPem: readFile(local.keyFile, "the device CA key") };
        defaultNotice.push(
          `signing the devices' identities with the server's device CA in ${local.dir} (give --scep, --ca-cert or --ca-out for another source)`,
        );
      } else {
        scep = true;
        defaultNotice.push(
          "no device CA in the data dir: the devices get their identities from the server's SCEP (give --ca-cert or --ca-out for another source)",
        );
      }
    }

    const platform = values.platform ?? "mixed";
    if (platform !== "mixed" && platform !== "macOS" && platform !== "iOS") throw new UsageError("--platform must be mixed, macOS or iOS");
    if (values["no-commands"] && values["command-interval"] !== undefined)
      throw new UsageError("--command-interval and --no-commands do not go together");
    if (values.seed === "") throw new UsageError("--seed is empty");

    const options: SimulateOptions = {
      url: checkUrl(values.url ?? nonEmpty(ctx.env.ORCHARD_URL) ?? DEFAULT_URL),
      devices,
      usersPerDevice,
      networkUsers: values["network-users"],
      ca,
      caOutDir: values["ca-out"],
      scep,
      durationMs: duration("--duration", values.duration) ?? 60_000,
      rate: positiveNumber("--rate", values.rate),
      concurrency: positiveInt("--concurrency", values.concurrency),
      // Mdm-Signature unless a header is asked for: any server reads it, whatever its --cert-header and proxy.
      identity: values["cert-header"] === undefined ? { kind: "signature" } : { kind: "header", header },
      checkinPath: urlPath("--checkin-path", values["checkin-path"]),
      serverPath: urlPath("--server-path", values["server-path"]),
      platform: platform as PlatformMix,
      seed: values.seed,
      commands: !values["no-commands"],
      commandIntervalMs: duration("--command-interval", values["command-interval"]),
      pollIntervalMs: duration("--poll-interval", values["poll-interval"]),
      notNow: probability("--not-now", values["not-now"]),
      updateFailure: probability("--update-failure", values["update-failure"]),
      cleanup: values.cleanup,
    };
    // The API (and so its key) only when the run needs it.
    const needsApi = (options.networkUsers && (usersPerDevice ?? 0) > 0) || options.commands !== false || options.cleanup || options.scep;
    if (needsApi) options.api = connect(values, ctx);

    const stats = new SimStats();
    const progress = process.stderr.isTTY ? new Progress(ctx, stats, devices, options.durationMs!) : undefined;
    options.stats = stats;
    options.onNotice = (text) => {
      progress?.clear();
      ctx.err(`orchard: ${text}\n`);
    };
    for (const text of defaultNotice) options.onNotice(text);
    options.onPhase = (phase) => {
      if (phase === "enroll") progress?.trafficStarted();
    };
    const interrupt = new AbortController();
    const onSigint = () => interrupt.abort();
    process.once("SIGINT", onSigint);
    options.signal = interrupt.signal;
    let report: SimulationReport;
    try {
      report = await runSimulation(options);
    } catch (err) {
      throw new CliError((err as Error).message);
    } finally {
      process.off("SIGINT", onSigint);
      progress?.stop();
    }

    if (values.json) printJson(ctx, report);
    else ctx.out(formatSummary(report));
    if (report.interrupted) {
      ctx.err("orchard: interrupted\n");
      return 130;
    }
    if (report.errors > 0) {
      ctx.err(`orchard: the simulation saw ${report.errors} error${report.errors === 1 ? "" : "s"}\n`);
      return 1;
    }
    return 0;
  },
};

/** The live progress line on stderr (a terminal only), redrawn in place. */
class Progress {
  private readonly timer: NodeJS.Timeout;
  private lastRequests = 0;
  private lastAt = performance.now();
  private perSecond = 0;
  private trafficStartedMs?: number;
  private drawn = false;

  constructor(
    private readonly ctx: CliContext,
    private readonly stats: SimStats,
    private readonly devices: number,
    private readonly durationMs: number,
  ) {
    this.timer = setInterval(() => this.draw(), PROGRESS_MS);
    this.timer.unref();
  }

  trafficStarted(): void {
    this.trafficStartedMs = performance.now();
  }

  private draw(): void {
    const now = performance.now();
    const dt = now - this.lastAt;
    if (dt > 0) this.perSecond = ((this.stats.requests - this.lastRequests) / dt) * 1000;
    this.lastRequests = this.stats.requests;
    this.lastAt = now;
    const line = progressLine(this.stats, {
      devices: this.devices,
      durationMs: this.durationMs,
      perSecond: this.perSecond,
      trafficStartedMs: this.trafficStartedMs,
    });
    const width = Math.max(20, (process.stderr.columns || 120) - 1);
    this.ctx.err(`\r${line.slice(0, width)}\x1b[K`);
    this.drawn = true;
  }

  clear(): void {
    if (this.drawn) this.ctx.err("\r\x1b[K");
    this.drawn = false;
  }

  stop(): void {
    clearInterval(this.timer);
    this.clear();
  }
}

/**
 * The device CA files of a server run from this directory: <data dir>/device-ca.pem
 * and .key (ORCHARD_DATA_DIR, default ./data), when both are there and readable.
 */
function localDeviceCa(ctx: CliContext): { dir: string; certFile: string; keyFile: string } | undefined {
  const dir = path.resolve(ctx.cwd, nonEmpty(ctx.env.ORCHARD_DATA_DIR) ?? "data");
  const certFile = path.join(dir, DEVICE_CA_CERT_FILE);
  const keyFile = path.join(dir, DEVICE_CA_KEY_FILE);
  try {
    fs.accessSync(certFile, fs.constants.R_OK);
    fs.accessSync(keyFile, fs.constants.R_OK);
  } catch {
    return undefined;
  }
  return { dir, certFile, keyFile };
}

function readFile(file: string, flag: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new CliError(`${flag} ${file}: ${(err as Error).message}`);
  }
}

function checkUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--url is not a URL: ${raw}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError("--url must be an http:// or https:// URL");
  if (url.username || url.password) throw new UsageError("--url must not hold credentials; give the key with --api-key or ORCHARD_API_KEY");
  return url.href;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}

function wholeNumber(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^(0|[1-9][0-9]{0,3})$/.test(v)) throw new UsageError(`${flag} must be a whole number from 0 to 9999`);
  return Number(v);
}

function positiveNumber(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(v) || !(n > 0)) throw new UsageError(`${flag} must be a number greater than 0`);
  return n;
}

function probability(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(v) || n > 1) throw new UsageError(`${flag} must be a probability from 0 to 1`);
  return n;
}

function duration(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  let ms: number;
  try {
    ms = parseDuration(v, flag);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  if (!(ms > 0)) throw new UsageError(`${flag} must be longer than 0`);
  return ms;
}

function urlPath(flag: string, v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(v)) throw new UsageError(`${flag} must be a path such as /mdm`);
  return v;
}
