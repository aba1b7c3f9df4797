import { createHash, createPrivateKey, createPublicKey, randomBytes, X509Certificate, type KeyObject } from "node:crypto";
import { setMaxListeners } from "node:events";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { certFingerprint } from "../identity/fingerprint.ts";
import { createCa, generateKeyPair, type CaIdentity, type DeviceIdentity } from "../identity/testing/pki.ts";
import { ScepRefused } from "../scep/testing/client.ts";
import { serializePlist, type PlistDict, type PlistValue } from "../plist/index.ts";
import { DdmChannel, DdmSyncError } from "./ddm.ts";
import { SimDevice, type DeviceReply, type SimUser } from "./device.ts";
import { SimStats, type DdmCounts, type ErrorKind, type RequestTypeCounts, type SimPhase } from "./metrics.ts";
import { IdentityFactory } from "./identities.ts";
import { ScepIdentities } from "./scep-identities.ts";
import { MeteredSender, NotSent, RateLimiter, RequestTimeout, sleepUntil } from "./pacing.ts";
import { answerCommand, type DeviceProfile, type Platform, type SimUserProfile } from "./responder.ts";
import { Rng } from "./rng.ts";
import { Transport } from "./transport.ts";
import { DigestAnswerer, parseChallenge } from "./userauth.ts";

/**
 * `orchard simulate`: a fleet of virtual Macs and iPhones against one server.
 * Each device has its own identity certificate (issued locally from a CA, or
 * with `scep` by the server's own SCEP), enrolls (Authenticate, TokenUpdate), opens its users' channels (network users log in through the
 * whole UserAuthenticate digest handshake first), polls, and answers the
 * commands it gets; the run queues some commands through the operator API so
 * that there is work. It ends by itself: enrollment and polling stop at
 * `durationMs`, every loop is bounded.
 */

export type PlatformMix = "mixed" | Platform;

export interface SimulateOptions {
  /** The server's base URL (device and API paths go under its path). */
  url: string;
  /**
   * The operator API (an ApiClient from src/cli/api-client.ts fits): needed for
   * network users, queued commands and cleanup. Its base URL should be `url`.
   */
  api?: OperatorApi;
  devices: number;
  /** User channels per Mac (iPhones have none). Default 0. */
  usersPerDevice?: number;
  /** The users are network users: created in the directory, logged in with UserAuthenticate. */
  networkUsers?: boolean;
  /** The CA that issues the devices' identities; made for the run when absent. */
  ca?: { certPem: string; keyPem: string };
  /** Where a CA made for the run is written (ca.pem, ca.key); default a new temporary directory. */
  caOutDir?: string;
  /**
   * Each device gets its identity from the server's SCEP (`<url>/scep`) with a
   * challenge from the API (POST /v1/scep/challenges), as a real device does
   * when it installs Orchard's enrollment profile, instead of from `ca`. Not
   * with `ca` or `caOutDir`; needs `api`.
   */
  scep?: boolean;
  /**
   * How long the devices talk to the server, enrollment included (making the
   * keys and certificates before is not counted). Default 60 s. Polling and
   * queueing stop early enough for the last sessions to answer every queued
   * command by then; those get a grace of 10% (1 to 10 s) for slow answers.
   */
  durationMs?: number;
  /** Requests per second over the whole run (device and API requests); default unlimited. */
  rate?: number;
  /** Requests in flight at once. Default 16. */
  concurrency?: number;
  /** How the devices present their identity. Default: the x-client-cert header. */
  identity?: { kind: "header"; header: string } | { kind: "signature" };
  checkinPath?: string;
  serverPath?: string;
  platform?: PlatformMix;
  /** Makes the fleet (UDIDs, models, users) and the devices' choices reproducible. Default random. */
  seed?: string;
  /** Queue commands through the API during the run. Default true. */
  commands?: boolean;
  commandIntervalMs?: number;
  /** Each channel polls about this often. Default 5 s. */
  pollIntervalMs?: number;
  /** Probability that a device answers a command NotNow (it is answered for good in a later session). Default 0.05. */
  notNow?: number;
  /**
   * Each channel does a Declarative Device Management sync as soon as it is
   * open (a DDM-enabled first sync), not only when a DeclarativeManagement
   * command asks for one. Default false.
   */
  ddmFirstSync?: boolean;
  /**
   * Probability that a device's OS update fails (it reports install-state
   * failed). Devices given an enforcement declaration otherwise download,
   * install and report the new OS version, one step per poll. Default 0.
   */
  updateFailure?: number;
  /** At the end, devices check out and the directory users the run made are removed. */
  cleanup?: boolean;
  requestTimeoutMs?: number;
  /** Interrupts the run (e.g. Ctrl-C): it stops and reports what it saw. */
  signal?: AbortSignal;
  /** Counters to watch while the run goes on (the progress line). */
  stats?: SimStats;
  /** Things the operator should know (where the generated CA is). */
  onNotice?: (text: string) => void;
  /** Called for each command the run queued, with the enrollment ids it was queued for. */
  onEnqueued?: (commandUuid: string, requestType: string, enrollmentIds: string[]) => void;
  /** Called as each phase starts; awaited. */
  onPhase?: (phase: SimPhase, stats: SimStats) => void | Promise<void>;
}

/** The part of the operator API client the simulator uses. */
export interface OperatorApi {
  request(
    method: string,
    apiPath: string,
    o?: { query?: Record<string, string | undefined>; body?: Buffer; contentType?: string },
  ): Promise<{ status: number; json: unknown; text: string }>;
}

export interface SimulationReport {
  url: string;
  seed: string;
  platform: PlatformMix;
  identity: string;
  /** Where the identity certificates came from: the server's SCEP, the given CA, or a CA made for the run. */
  identitySource: IdentitySource;
  /** The SCEP endpoint the identities came from (identitySource "scep"). */
  scepUrl?: string;
  /** Certificates the server's SCEP issued to the devices (identitySource "scep"). */
  scepCertificates?: number;
  devices: number;
  macs: number;
  iphones: number;
  enrolled: number;
  usersPerDevice: number;
  networkUsers: boolean;
  userChannelsExpected: number;
  userChannels: number;
  loginsExpected: number;
  logins: number;
  zeroLengthLogins: number;
  commandsEnqueued: number;
  commands: number;
  notNow: number;
  unanswered: number;
  requestTypes: Record<string, RequestTypeCounts>;
  /** Declarative Device Management: syncs finished, and the requests of each endpoint. */
  ddm: DdmCounts;
  requests: number;
  apiRequests: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  statuses: Record<string, number>;
  errors: number;
  errorKinds: Record<string, ErrorKind>;
  durationMs: number;
  interrupted: boolean;
  /** The CA made for this run, when none was given. */
  caCertPath?: string;
}

export type IdentitySource = "scep" | "ca" | "generated-ca";

export const DEFAULT_CERT_HEADER = "x-client-cert";

/** How long the challenge for one SCEP request lives: it is spent at once, unless the request never arrives. */
const SCEP_CHALLENGE_TTL = "5m";

/** What the run queues on device channels, one type per round in turn. */
export const DEVICE_COMMANDS: readonly PlistDict[] = [
  {
    RequestType: "DeviceInformation",
    Queries: [
      "DeviceName",
      "OSVersion",
      "BuildVersion",
      "ModelName",
      "Model",
      "ProductName",
      "SerialNumber",
      "UDID",
      "DeviceCapacity",
      "AvailableDeviceCapacity",
      "BatteryLevel",
      "WiFiMAC",
      "IsSupervised",
    ],
  },
  { RequestType: "ProfileList" },
  { RequestType: "InstalledApplicationList" },
  { RequestType: "SecurityInfo" },
  { RequestType: "CertificateList" },
];

/** What the run queues on user channels. */
export const USER_COMMANDS: readonly PlistDict[] = [{ RequestType: "ProfileList" }, { RequestType: "CertificateList" }];

/** Commands one session answers at most before the device goes back to sleep. */
const MAX_COMMANDS_PER_SESSION = 200;
/** Enrollment ids per enqueue request: keeps the request line well under the server's header limit. */
const IDS_PER_ENQUEUE = 100;

interface Channel {
  /** The enrollment id: UDID or UDID:UserID. */
  id: string;
  /** What the channel has installed over DDM. */
  ddm: DdmChannel;
  device: Device;
  user?: ChannelUser;
  rng: Rng;
  /** Open (enrolled, logged in) and polling. */
  live: boolean;
  due: number;
  /** Commands the run queued here, by CommandUUID, with their RequestType. */
  expected: Map<string, string>;
  /** Commands this channel answered for good. */
  answered: Set<string>;
}

interface ChannelUser {
  profile: SimUserProfile;
  sim: SimUser;
  password: string;
}

interface Device {
  index: number;
  profile: DeviceProfile;
  /** With `scep`, set once the device has its certificate: a device without one never enrolls, so never goes live. */
  sim: SimDevice;
  channel: Channel;
  users: Channel[];
  /** Directory users the run created for this device. */
  createdUsers: string[];
}

export async function runSimulation(o: SimulateOptions): Promise<SimulationReport> {
  return new FleetRun(o).execute();
}

class FleetRun {
  private readonly stats: SimStats;
  private readonly seed: string;
  private readonly rng: Rng;
  private readonly base: URL;
  private readonly durationMs: number;
  private readonly concurrency: number;
  private readonly pollIntervalMs: number;
  private readonly commandIntervalMs: number;
  private readonly notNow: number;
  private readonly usersPerDevice: number;
  private readonly halt = new AbortController();
  private readonly limiter?: RateLimiter;
  private transport?: Transport;
  private sender?: MeteredSender;
  private devices: Device[] = [];
  private channels: Channel[] = [];
  private caCertPath?: string;
  /** With `scep`: the server's device CA and the requests made against it. */
  private scep?: ScepIdentities;
  /** The path of the server's SCEP endpoint, under the path of `url`. */
  private readonly scepPath: string;
  /** Certificates the server's SCEP issued to the devices. */
  private scepIssued = 0;
  private start = 0;
  private hardStop = Infinity;
  /** The least time kept at the end for the last sessions (the drain). */
  private minReserve = 0;
  /** Channels open and polling. */
  private liveCount = 0;
  /** Commands the run queued and the devices have not answered for good yet. */
  private outstanding = 0;
  private interrupted = false;

  constructor(private readonly o: SimulateOptions) {
    if (!Number.isInteger(o.devices) || o.devices < 1) throw new RangeError("devices must be a whole number >= 1");
    this.stats = o.stats ?? new SimStats();
    this.seed = o.seed ?? randomBytes(4).toString("hex");
    this.rng = new Rng(this.seed);
    this.base = new URL(o.url);
    this.durationMs = o.durationMs ?? 60_000;
    this.concurrency = Math.max(1, o.concurrency ?? 16);
    this.pollIntervalMs = Math.max(10, o.pollIntervalMs ?? 5_000);
    this.commandIntervalMs = Math.max(10, o.commandIntervalMs ?? 10_000);
    this.notNow = Math.min(1, Math.max(0, o.notNow ?? 0.05));
    this.usersPerDevice = o.usersPerDevice ?? 0;
    if (o.scep && (o.ca || o.caOutDir !== undefined))
      throw new Error("scep: the identities come from the server's SCEP, not from a CA given or made for the run");
    this.scepPath = this.base.pathname.replace(/\/+$/, "") + "/scep";
    if (o.rate !== undefined) this.limiter = new RateLimiter(o.rate);
    // Every sleeping worker and waiting request listens for an interrupt.
    setMaxListeners(0, this.halt.signal);
    if (this.needsApi() && !o.api)
      throw new Error("the operator API is needed for network users, queued commands, SCEP challenges and cleanup");
  }

  async execute(): Promise<SimulationReport> {
    const onAbort = () => {
      this.interrupted = true;
      this.halt.abort();
    };
    if (this.o.signal?.aborted) onAbort();
    this.o.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await this.phase("setup");
      if (this.needsApi() && !(await this.preflight())) return this.report();
      if (this.halted()) return this.report();
      this.openTransport();
      if (this.o.scep && !(await this.scepSetup())) return this.report();
      if (this.halted()) return this.report();
      await this.prepareFleet();
      if (this.halted()) return this.report();

      // The clock starts with the traffic: key generation above is not counted.
      this.start = performance.now();
      // Every device enrolls, however long that takes on a busy server (each
      // request is bounded by its own timeout; Ctrl-C stops it): --duration is
      // how long the enrolled fleet then runs, so that what a run covers does
      // not depend on the machine's load.
      this.hardStop = Infinity;
      await this.phase("enroll");
      await this.enrollAll();
      this.hardStop = performance.now() + this.durationMs;
      this.minReserve = Math.min(3_000, Math.max(200, this.durationMs * 0.05));
      this.sender!.deadline = this.hardStop;
      await this.phase("run");
      // With no device enrolled there is nothing to poll or to queue for: the errors say why.
      if (this.liveCount > 0)
        await Promise.all([this.pollUntilEnd(), this.o.commands === false ? Promise.resolve() : this.commandRounds()]);
      await this.phase("drain");
      // The last sessions aim to end by the deadline; a slow answer gets a short grace, not forever.
      this.sender!.deadline = this.hardStop + Math.min(10_000, Math.max(1_000, this.durationMs * 0.1));
      await pool(
        this.channels.filter((c) => c.live),
        this.concurrency,
        (c) => this.session(c, false),
      );
      this.countUnanswered();
      if (this.o.cleanup) {
        await this.phase("cleanup");
        await this.cleanup();
      }
      return this.report();
    } finally {
      this.o.signal?.removeEventListener("abort", onAbort);
      this.transport?.close();
      this.stats.phase = "done";
    }
  }

  private needsApi(): boolean {
    return (
      (this.o.networkUsers === true && this.usersPerDevice > 0) ||
      this.o.commands !== false ||
      this.o.cleanup === true ||
      this.o.scep === true
    );
  }

  /**
   * Whether the active part of the run is over: the time left is what the
   * last sessions need (one per open channel plus the commands still to
   * answer, and `extraCommands` more), judged by --rate, --concurrency and the
   * latency seen so far.
   */
  private activeOver(extraCommands = 0): boolean {
    const requests = this.liveCount + this.outstanding + extraCommands;
    const latency = Math.max(5, this.stats.latency.quantile(0.9));
    const byRate = this.limiter ? (requests * 1000) / this.limiter.rate : 0;
    const byLatency = Math.ceil(requests / this.concurrency) * latency;
    const reserve = Math.max(this.minReserve, 1.5 * Math.max(byRate, byLatency) + 200);
    return performance.now() >= this.hardStop - reserve;
  }

  private halted(): boolean {
    return this.halt.signal.aborted;
  }

  private async phase(p: SimPhase): Promise<void> {
    this.stats.phase = p;
    await this.o.onPhase?.(p, this.stats);
  }

  // ---- setup ----

  /** One API request that needs the key: a wrong key or URL stops the run before any device is made. */
  private async preflight(): Promise<boolean> {
    const res = await this.api("GET", "/v1/enrollments", {
      query: { limit: "1" },
      deadline: performance.now() + (this.o.requestTimeoutMs ?? 30_000),
    });
    if (!res) return false;
    if (res.status === 200) return true;
    const hint = res.status === 401 ? " (check --api-key)" : res.status === 404 ? " (is --url an Orchard server?)" : "";
    this.stats.error("api", `the operator API answered GET /v1/enrollments with ${describe(res)}${hint}`);
    return false;
  }

  private openTransport(): void {
    this.transport = new Transport(this.base.origin, undefined, this.concurrency + 2);
    this.sender = new MeteredSender(this.transport, {
      stats: this.stats,
      limiter: this.limiter,
      signal: this.halt.signal,
      timeoutMs: this.o.requestTimeoutMs ?? 30_000,
    });
  }

  /**
   * With `scep`: the fleet's key, and the server's device CA from GetCACert.
   * A server without SCEP (or a wrong URL) stops the run here, as one error.
   */
  private async scepSetup(): Promise<boolean> {
    const keyMade = generateKeyPair("RSA");
    keyMade.catch(() => {}); // awaited below; not an unhandled rejection if GetCACert fails first
    const what = `SCEP GetCACert at ${this.scepPath}`;
    const r = await this.device(what, () =>
      this.sender!.send({ method: "GET", path: `${this.scepPath}?operation=GetCACert`, headers: {} }),
    );
    if (!r) return false;
    if (r.status !== 200) {
      const hint = r.status === 404 ? " (the server has no SCEP endpoint there: is --url an Orchard server with SCEP?)" : "";
      this.stats.error("scep", `${what}: ${describe(r)}${hint}`);
      return false;
    }
    try {
      this.scep = await ScepIdentities.create(r.body, await keyMade);
    } catch (err) {
      this.stats.error("scep", `${what}: ${(err as Error).message}`);
      return false;
    }
    return true;
  }

  private async prepareFleet(): Promise<void> {
    // With SCEP the devices get their certificates while they enroll; the key is the one scepSetup made.
    let identities: IdentityFactory | undefined;
    let ca: { commonName: string; der: Buffer };
    if (this.scep) {
      const caCert = this.scep.ca;
      ca = { commonName: /(?:^|\n)CN=([^\n]*)/.exec(caCert.subject)?.[1] ?? "Device CA", der: Buffer.from(caCert.raw) };
    } else {
      // One key for the whole fleet: an RSA key takes tens of milliseconds to make, a certificate for it about one.
      const [localCa, deviceKey] = await Promise.all([this.loadOrCreateCa(), generateKeyPair()]);
      identities = await IdentityFactory.create(localCa, deviceKey);
      ca = { commonName: localCa.commonName, der: localCa.certDer };
    }
    const tag = createHash("sha256").update(this.seed).digest("hex").slice(0, 6);
    for (let i = 0; i < this.o.devices && !this.halted(); i++) {
      const platform: Platform = this.o.platform === "macOS" || this.o.platform === "iOS" ? this.o.platform : i % 2 === 0 ? "macOS" : "iOS";
      const drng = this.rng.fork(`device-${i}`);
      const hw = hardware(platform, drng, i);
      const identity: DeviceIdentity | undefined = identities?.issue(hw.udid);
      const users: SimUserProfile[] = [];
      if (platform === "macOS") {
        for (let j = 0; j < this.usersPerDevice; j++) {
          const network = this.o.networkUsers === true;
          users.push({
            guid: drng.uuid(),
            shortName: network ? `sim-${tag}-d${i}-u${j}` : `simuser${j + 1}`,
            fullName: network ? `Simulated User ${i}.${j}` : `Simulated Local User ${j + 1}`,
            network,
          });
        }
      }
      const profile: DeviceProfile = {
        ...hw,
        platform,
        supervised: false,
        // With SCEP: filled in when the device has its certificate.
        identity: identity ? { commonName: identity.commonName, der: identity.certDer } : { commonName: hw.udid, der: Buffer.alloc(0) },
        ca,
        users,
      };
      const device: Device = {
        index: i,
        profile,
        sim: undefined as unknown as SimDevice,
        channel: undefined as unknown as Channel,
        users: [],
        createdUsers: [],
      };
      if (identity) this.giveIdentity(device, identity);
      device.channel = this.channel(hw.udid, device, drng.fork("channel"));
      for (const u of users) {
        const c = this.channel(`${hw.udid}:${u.guid}`, device, drng.fork(`user-${u.guid}`));
        c.user = {
          profile: u,
          sim: { userId: u.guid, shortName: u.shortName, longName: u.fullName },
          password: randomBytes(18).toString("base64url"),
        };
        device.users.push(c);
      }
      this.devices.push(device);
      this.stats.devices++;
      if (platform === "macOS") this.stats.macs++;
      else this.stats.iphones++;
      this.stats.userChannelsExpected += users.length;
      if (this.o.networkUsers) this.stats.loginsExpected += users.length;
      // Issuing certificates is CPU work: let the progress line and signals through now and then.
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
  }

  /** The device's certificate, and the SimDevice that speaks with it. */
  private giveIdentity(d: Device, identity: DeviceIdentity): void {
    const prefix = this.base.pathname.replace(/\/+$/, "");
    d.profile.identity = { commonName: identity.commonName, der: identity.certDer };
    d.sim = new SimDevice({
      transport: this.sender!,
      identity,
      mode: this.o.identity ?? { kind: "header", header: DEFAULT_CERT_HEADER },
      udid: d.profile.udid,
      serialNumber: d.profile.serialNumber,
      platform: d.profile.platform,
      facts: d.profile.facts,
      topic: "com.apple.mgmt.External.orchard-simulator",
      checkinPath: prefix + (this.o.checkinPath ?? "/checkin"),
      serverPath: prefix + (this.o.serverPath ?? "/mdm"),
    });
  }

  private channel(id: string, device: Device, rng: Rng): Channel {
    const p = device.profile;
    const facts =
      id === p.udid
        ? {
            udid: p.udid,
            serialNumber: p.serialNumber,
            family: p.platform,
            osVersion: String(p.facts.OSVersion ?? ""),
            buildVersion: String(p.facts.BuildVersion ?? ""),
            model: String(p.facts.Model ?? p.facts.ProductName ?? ""),
            modelName: String(p.facts.ModelName ?? ""),
          }
        : undefined;
    const fails = facts !== undefined && (this.o.updateFailure ?? 0) > 0 && rng.chance(this.o.updateFailure!);
    const ddm = new DdmChannel(facts, {
      ...(fails ? { updateFailure: "Simulated failure (orchard simulate --update-failure)" } : {}),
      // DeviceInformation answers from the profile's facts: an installed update changes them (walkthrough: the
      // next answer said the old version, and the update went overdue again).
      onInstalled: (version, build) => {
        p.facts.OSVersion = version;
        p.facts.BuildVersion = build;
      },
    });
    const c: Channel = { id, ddm, device, rng, live: false, due: 0, expected: new Map(), answered: new Set() };
    this.channels.push(c);
    return c;
  }

  private async loadOrCreateCa(): Promise<CaIdentity> {
    if (this.o.ca) return caFromPem(this.o.ca.certPem, this.o.ca.keyPem);
    const ca = await createCa({ commonName: `Orchard Simulator Device CA ${this.seed}` });
    const dir = this.o.caOutDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "orchard-sim-ca-"));
    fs.mkdirSync(dir, { recursive: true });
    const certPath = path.join(dir, "ca.pem");
    const keyPath = path.join(dir, "ca.key");
    fs.writeFileSync(certPath, ca.certPem, { mode: 0o644 });
    fs.writeFileSync(keyPath, ca.keyPem, { mode: 0o600 });
    this.caCertPath = certPath;
    this.o.onNotice?.(
      `made a device CA for this run: ${certPath} (key ${keyPath}).\n` +
        `The server must accept it: run it with --ca ${certPath} (or, in a lab, --insecure-accept-any-device-cert); ` +
        `later runs can reuse it with --ca-cert ${certPath} --ca-key ${keyPath}.`,
    );
    return ca;
  }

  // ---- enrollment and logins ----

  private async enrollAll(): Promise<void> {
    let skipped = 0;
    await pool(this.devices, this.concurrency, async (d) => {
      if (this.halted() || this.activeOver()) {
        skipped++;
        return;
      }
      await this.enroll(d);
    });
    if (skipped > 0 && !this.interrupted) {
      this.stats.error(
        "incomplete",
        `${skipped} device${skipped === 1 ? " was" : "s were"} not enrolled: the run was stopped first`,
        skipped,
      );
    }
  }

  private async enroll(d: Device): Promise<void> {
    const udid = d.profile.udid;
    if (this.scep && !(await this.scepEnroll(d))) return;
    const a = await this.device(`Authenticate of ${udid}`, () => d.sim.authenticate());
    if (!a) return;
    if (a.status !== 200) return this.stats.error("enroll", `Authenticate of ${udid}: ${describe(a)}${this.enrollHint(a)}`);
    const t = await this.device(`TokenUpdate of ${udid}`, () => d.sim.tokenUpdate());
    if (!t) return;
    if (t.status !== 200) return this.stats.error("enroll", `TokenUpdate of ${udid}: ${describe(t)}`);
    this.stats.enrolled++;
    d.channel.live = true;
    this.liveCount++;
    if (this.o.ddmFirstSync) await this.ddmSync(d.channel);
    for (const c of d.users) await this.openUserChannel(d, c);
  }

  /**
   * A first certificate from the server's SCEP, as a device installing the
   * enrollment profile gets it: a fresh challenge password from the API (the
   * profile would carry it), then a PKCSReq with it. False when there is none
   * (the error is counted).
   */
  private async scepEnroll(d: Device): Promise<boolean> {
    const udid = d.profile.udid;
    const res = await this.api("POST", "/v1/scep/challenges", { json: { ttl: SCEP_CHALLENGE_TTL } });
    if (!res) return false;
    const challenge = (res.json as { challenge?: unknown } | undefined)?.challenge;
    if (res.status !== 201 || typeof challenge !== "string") {
      const hint = res.status === 404 ? " (the server has no SCEP challenges: is it an Orchard with SCEP?)" : "";
      this.stats.error("scep", `a SCEP challenge for ${udid}: POST /v1/scep/challenges answered ${describe(res)}${hint}`);
      return false;
    }
    const what = `SCEP PKCSReq of ${udid}`;
    const req = this.scep!.request(challenge, udid);
    const r = await this.device(what, () =>
      this.sender!.send({
        method: "POST",
        path: `${this.scepPath}?operation=PKIOperation`,
        headers: { "content-type": "application/x-pki-message" },
        body: req.body,
      }),
    );
    if (!r) return false;
    if (r.status !== 200) {
      this.stats.error("scep", `${what}: ${describe(r)}`);
      return false;
    }
    let identity: DeviceIdentity;
    try {
      identity = this.scep!.identity(req, r.body);
    } catch (err) {
      const message =
        err instanceof ScepRefused
          ? `SCEP refused: ${err.failInfo ?? "no failInfo"} (orchard events --type scep.refused says why)`
          : `the answer does not check out: ${(err as Error).message}`;
      this.stats.error("scep", `${what}: ${message}`);
      return false;
    }
    this.scepIssued++;
    this.giveIdentity(d, identity);
    return true;
  }

  /** What to change when the server could not find or would not trust the device's identity. */
  private enrollHint(r: DeviceReply): string {
    const text = r.body.toString("utf8");
    const mode = this.o.identity ?? { kind: "header", header: DEFAULT_CERT_HEADER };
    if (r.status === 400 && mode.kind === "header" && /no client certificate/i.test(text)) {
      return ` (the server does not read the ${mode.header} header: start it with --cert-header ${mode.header}, or simulate with --sign-messages)`;
    }
    if (this.scep) {
      // No --ca to suggest: the certificate is the server's own.
      if (r.status === 400 && /trusted CA|chain/i.test(text)) {
        return ` (the certificate came from the server's own SCEP at ${this.scepPath}: did SCEP and the check-ins reach Orchards with different device CAs? Processes sharing one database need the same --device-ca-cert and --device-ca-key)`;
      }
      return "";
    }
    if (r.status === 400 && /trusted CA|chain/i.test(text) && this.caCertPath) {
      return ` (the server does not trust the CA made for this run: start it with --ca ${this.caCertPath}, or give this run --ca-cert and --ca-key of a CA it trusts)`;
    }
    return "";
  }

  private async openUserChannel(d: Device, c: Channel): Promise<void> {
    const u = c.user!;
    if (u.profile.network) {
      if (!(await this.createDirectoryUser(d, u))) return;
      if (!(await this.login(d, u))) return;
    }
    const r = await this.device(`TokenUpdate of ${c.id}`, () => d.sim.userTokenUpdate(u.sim));
    if (!r) return;
    if (r.status !== 200) return this.stats.error("user-channel", `user TokenUpdate of ${c.id} (${u.profile.shortName}): ${describe(r)}`);
    this.stats.userChannels++;
    c.live = true;
    this.liveCount++;
    if (this.o.ddmFirstSync) await this.ddmSync(c);
  }

  private async createDirectoryUser(d: Device, u: ChannelUser): Promise<boolean> {
    const res = await this.api("PUT", `/v1/users/${encodeURIComponent(u.profile.shortName)}`, {
      json: { password: u.password, guid: u.profile.guid, full_name: u.profile.fullName },
    });
    if (!res) return false;
    if (res.status !== 200 && res.status !== 201) {
      this.stats.error("directory", `PUT /v1/users/${u.profile.shortName}: ${describe(res)}`);
      return false;
    }
    d.createdUsers.push(u.profile.shortName);
    return true;
  }

  /** The whole UserAuthenticate handshake; true when the user may open the channel. */
  private async login(d: Device, u: ChannelUser): Promise<boolean> {
    const who = `${u.profile.shortName} on ${d.profile.udid}`;
    const first = await this.device(`UserAuthenticate of ${who}`, () => d.sim.userAuthenticate(u.sim));
    if (!first) return false;
    if (first.status === 410) {
      this.stats.error(
        "login",
        `UserAuthenticate of ${who}: HTTP 410, the server declines the user (--userauth decline, or a declined directory entry)`,
      );
      return false;
    }
    const challenge = first.plist?.DigestChallenge;
    if (first.status !== 200 || typeof challenge !== "string") {
      this.stats.error(
        "login",
        `UserAuthenticate of ${who}: ${first.status === 200 ? "no DigestChallenge in the answer" : describe(first)}`,
      );
      return false;
    }
    if (challenge === "") {
      // Managed without authentication (--userauth zero-length): no token to carry.
      this.stats.zeroLengthLogins++;
      u.sim.authToken = undefined;
      return true;
    }
    const params = parseChallenge(challenge);
    let response: string;
    try {
      if (!params) throw new Error("not a Digest challenge");
      response = new DigestAnswerer({ username: u.profile.shortName, password: u.password }).respond(params);
    } catch (err) {
      this.stats.error(
        "login",
        `UserAuthenticate of ${who}: cannot answer the challenge ${JSON.stringify(challenge.slice(0, 120))}: ${(err as Error).message}`,
      );
      return false;
    }
    const second = await this.device(`UserAuthenticate response of ${who}`, () => d.sim.userAuthenticate(u.sim, response));
    if (!second) return false;
    const token = second.plist?.AuthToken;
    if (second.status !== 200 || typeof token !== "string") {
      this.stats.error(
        "login",
        `UserAuthenticate response of ${who}: ${second.status === 200 ? "no AuthToken in the answer" : describe(second)}`,
      );
      return false;
    }
    if (token === "") {
      this.stats.error(
        "login",
        `UserAuthenticate of ${who}: empty AuthToken, the digest was refused (orchard events --type userauth.failed says why)`,
      );
      return false;
    }
    u.sim.authToken = token;
    this.stats.logins++;
    return true;
  }

  // ---- polling and commands ----

  /** Every open channel polls about every pollIntervalMs until the active part of the run ends. */
  private async pollUntilEnd(): Promise<void> {
    const heap = new MinHeap<Channel>((a, b) => a.due - b.due);
    const now = performance.now();
    for (const c of this.channels) {
      if (!c.live) continue;
      c.due = now + c.rng.next() * this.pollIntervalMs;
      heap.push(c);
    }
    const worker = async () => {
      for (;;) {
        const c = heap.pop();
        if (!c) return;
        // Sleep until the channel is due, looking now and then whether the end has come.
        while (performance.now() < c.due) {
          if (this.halted() || this.activeOver()) return;
          await sleepUntil(Math.min(c.due, performance.now() + 200), this.halt.signal);
        }
        if (this.halted() || this.activeOver()) return;
        await this.session(c, true);
        if (c.ddm.update) await this.updateStep(c);
        c.due = performance.now() + this.pollIntervalMs * (0.75 + 0.5 * c.rng.next());
        heap.push(c);
      }
    };
    await Promise.all(Array.from({ length: this.concurrency }, worker));
  }

  /**
   * One wake-up of a channel: Idle, then each command the server sends is
   * answered until the server has nothing more. With allowNotNow the device
   * answers some commands NotNow (and keeps saying so for the rest of the session).
   */
  private async session(c: Channel, allowNotNow: boolean): Promise<void> {
    const d = c.device;
    const keys = c.user ? d.sim.userKeys(c.user.sim) : {};
    let reply = await this.device(`Idle of ${c.id}`, () => d.sim.report("Idle", keys));
    const notNowHere = new Set<string>();
    for (let i = 0; reply && i <= MAX_COMMANDS_PER_SESSION; i++) {
      if (reply.status !== 200) return this.stats.error("poll", `command poll of ${c.id}: ${describe(reply)}`);
      if (reply.body.length === 0) return;
      const message = reply.plist;
      const uuid = message?.CommandUUID;
      const command = message?.Command;
      if (!message || typeof uuid !== "string" || !isDict(command)) {
        return this.stats.error("poll", `command poll of ${c.id}: the answer is not a command: ${describe(reply)}`);
      }
      if (c.answered.has(uuid)) return this.stats.error("protocol", `${c.id} was sent command ${uuid} again after answering it`);
      const type = typeof command.RequestType === "string" ? command.RequestType : "(none)";
      const counts = this.stats.requestType(type);
      counts.received++;
      if (i === MAX_COMMANDS_PER_SESSION) return; // enough for one session; the rest waits for the next
      const notNow = notNowHere.has(uuid) || (allowNotNow && c.rng.chance(this.notNow));
      let status: string;
      let fields: PlistDict = {};
      if (notNow) {
        status = "NotNow";
        notNowHere.add(uuid);
      } else {
        const answer = answerCommand(message, d.profile, c.rng, c.user?.profile);
        status = answer.status;
        fields = answer.fields;
      }
      reply = await this.device(`${status} report of ${c.id}`, () => d.sim.report(status, { ...keys, CommandUUID: uuid, ...fields }));
      if (reply?.status !== 200) continue; // the loop reports a bad status
      if (notNow) {
        counts.notNow++;
        this.stats.notNow++;
      } else {
        c.answered.add(uuid);
        if (c.expected.has(uuid)) this.outstanding--;
        this.stats.commands++;
        if (status === "Acknowledged") counts.acknowledged++;
        else counts.error++;
        // Acknowledged, the device syncs its declarations as the command asks (its Data: the tokens).
        if (type === "DeclarativeManagement" && status === "Acknowledged")
          await this.ddmSync(c, Buffer.isBuffer(command.Data) ? command.Data : undefined);
      }
    }
  }

  /** Queues a command for every open channel now and then, until the active part of the run ends. */
  private async commandRounds(): Promise<void> {
    for (let round = 0; !this.halted(); round++) {
      // A round adds one command per channel: queue it only when there is time left to answer it.
      if (this.activeOver(this.liveCount)) return;
      const started = performance.now();
      const live = this.channels.filter((c) => c.live);
      await this.enqueue(
        live.filter((c) => !c.user),
        DEVICE_COMMANDS[round % DEVICE_COMMANDS.length]!,
      );
      await this.enqueue(
        live.filter((c) => c.user),
        USER_COMMANDS[round % USER_COMMANDS.length]!,
      );
      while (performance.now() < started + this.commandIntervalMs) {
        if (this.activeOver(this.liveCount)) return;
        if (!(await sleepUntil(Math.min(started + this.commandIntervalMs, performance.now() + 200), this.halt.signal))) return;
      }
    }
  }

  private async enqueue(channels: Channel[], command: PlistDict): Promise<void> {
    const type = String(command.RequestType);
    const body = Buffer.from(serializePlist({ Command: command }));
    for (let i = 0; i < channels.length; i += IDS_PER_ENQUEUE) {
      const chunk = channels.slice(i, i + IDS_PER_ENQUEUE);
      const ids = chunk.map((c) => encodeURIComponent(c.id)).join(",");
      const res = await this.api("PUT", `/v1/enqueue/${ids}`, { query: { nopush: "1" }, body, contentType: "application/xml" });
      if (!res) return;
      const r = res.json as
        | { command_uuid?: string; command_error?: string; status?: Record<string, { command_error?: string }> }
        | undefined;
      if (!r?.command_uuid || r.command_error || (res.status !== 200 && res.status !== 207)) {
        this.stats.error(
          "enqueue",
          `queueing ${type} for ${chunk.length} enrollment${chunk.length === 1 ? "" : "s"}: ${describe(res)}`,
          chunk.length,
        );
        continue;
      }
      const queued: string[] = [];
      for (const c of chunk) {
        // With nopush an id gets a status entry only when it was not queued.
        const error = r.status?.[c.id]?.command_error;
        if (error) {
          this.stats.error("enqueue", `queueing ${type} for ${c.id}: ${error}`);
          continue;
        }
        c.expected.set(r.command_uuid, type);
        this.stats.commandsEnqueued++;
        this.outstanding++;
        queued.push(c.id);
      }
      if (queued.length > 0) this.o.onEnqueued?.(r.command_uuid, type, queued);
    }
  }

  /** One DDM sync of a channel (DdmChannel does the protocol); a wrong answer is a `ddm` error. */
  private async ddmSync(c: Channel, commandData?: Buffer): Promise<void> {
    const d = c.device;
    const keys = c.user ? d.sim.userKeys(c.user.sim) : {};
    const counts = this.stats.ddm;
    try {
      const r = await c.ddm.sync(async (endpoint, data) => {
        const reply = await this.device(`DeclarativeManagement ${endpoint} of ${c.id}`, () =>
          d.sim.checkin("DeclarativeManagement", { Endpoint: endpoint, ...(data ? { Data: data } : {}), ...keys }),
        );
        if (!reply) throw new NotSent("no answer");
        return reply;
      }, commandData);
      counts.syncs++;
      if (r.changed) counts.changed++;
      counts.tokens += r.tokens;
      counts.declarationItems += r.declarationItems;
      counts.declarations += r.declarations;
      counts.statusReports += r.statusReports;
    } catch (err) {
      if (err instanceof NotSent) return; // counted where it failed
      if (err instanceof DdmSyncError) return this.stats.error("ddm", `DDM sync of ${c.id}: ${err.message}`);
      throw err;
    }
  }

  /** The next step of the channel's OS update, reported over DDM. */
  private async updateStep(c: Channel): Promise<void> {
    const d = c.device;
    const installing = c.ddm.update?.stage === "installing";
    try {
      const reported = await c.ddm.advanceUpdate(async (endpoint, data) => {
        const reply = await this.device(`DeclarativeManagement ${endpoint} of ${c.id}`, () =>
          d.sim.checkin("DeclarativeManagement", { Endpoint: endpoint, ...(data ? { Data: data } : {}) }),
        );
        if (!reply) throw new NotSent("no answer");
        return reply;
      });
      if (!reported) return;
      this.stats.ddm.updateSteps++;
      this.stats.ddm.statusReports++;
      if (installing) this.stats.ddm.updatesInstalled++;
    } catch (err) {
      if (err instanceof NotSent) return;
      if (err instanceof DdmSyncError) return this.stats.error("ddm", `OS update status of ${c.id}: ${err.message}`);
      throw err;
    }
  }

  private countUnanswered(): void {
    if (this.interrupted) return;
    for (const c of this.channels) {
      for (const [uuid, type] of c.expected) {
        if (c.answered.has(uuid)) continue;
        this.stats.unanswered++;
        this.stats.error("unanswered", `${type} ${uuid} queued for ${c.id} was not answered by the end of the run`);
      }
    }
  }

  // ---- cleanup ----

  private async cleanup(): Promise<void> {
    // The run's deadline has passed: give the cleanup its own bounded time.
    const deadline = performance.now() + Math.max(30_000, this.durationMs);
    this.sender!.deadline = deadline;
    await pool(this.devices, this.concurrency, async (d) => {
      if (d.channel.live) {
        const r = await this.device(`CheckOut of ${d.profile.udid}`, () => d.sim.checkin("CheckOut"));
        if (r && r.status !== 200) this.stats.error("cleanup", `CheckOut of ${d.profile.udid}: ${describe(r)}`);
      }
      for (const name of d.createdUsers) {
        const r = await this.api("DELETE", `/v1/users/${encodeURIComponent(name)}`, { deadline });
        if (r && r.status !== 200 && r.status !== 404) this.stats.error("cleanup", `DELETE /v1/users/${name}: ${describe(r)}`);
      }
    });
  }

  // ---- requests ----

  /** A device request; undefined when it got no answer (the error is counted) or was not sent. */
  private async device(what: string, fn: () => Promise<DeviceReply>): Promise<DeviceReply | undefined> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof NotSent) return undefined;
      this.stats.error(err instanceof RequestTimeout ? "timeout" : "transport", `${what}: ${reason(err)}`);
      return undefined;
    }
  }

  /** An operator API request, paced like the devices'; undefined when it got no answer (the error is counted). */
  private async api(
    method: string,
    apiPath: string,
    o: { query?: Record<string, string>; json?: unknown; body?: Buffer; contentType?: string; deadline?: number } = {},
  ): Promise<ApiAnswer | undefined> {
    const deadline = o.deadline ?? this.hardStop;
    if (this.halted() || performance.now() >= deadline) return undefined;
    if (this.limiter && !(await this.limiter.take(deadline, this.halt.signal))) return undefined;
    const body = o.json !== undefined ? Buffer.from(JSON.stringify(o.json)) : o.body;
    const contentType = o.json !== undefined ? "application/json" : o.contentType;
    this.stats.apiRequests++;
    const wait = Math.max(1, Math.min(this.o.requestTimeoutMs ?? 30_000, deadline - performance.now()));
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      return await Promise.race([
        this.o.api!.request(method, apiPath, { query: o.query, body, contentType }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new RequestTimeout(`no answer within ${Math.round(wait)} ms`)), wait);
          onAbort = () => reject(new NotSent("interrupted"));
          this.halt.signal.addEventListener("abort", onAbort, { once: true });
        }),
      ]);
    } catch (err) {
      if (err instanceof NotSent) return undefined;
      this.stats.error("api", `${method} ${apiPath.slice(0, 80)}: ${reason(err)}`);
      return undefined;
    } finally {
      clearTimeout(timer);
      if (onAbort) this.halt.signal.removeEventListener("abort", onAbort);
    }
  }

  // ---- the report ----

  private report(): SimulationReport {
    const s = this.stats;
    const durationMs = this.start === 0 ? 0 : performance.now() - this.start;
    const round = (n: number) => Math.round(n * 100) / 100;
    const identity = this.o.identity ?? { kind: "header", header: DEFAULT_CERT_HEADER };
    return {
      url: this.base.href,
      seed: this.seed,
      platform: this.o.platform ?? "mixed",
      identity: identity.kind === "header" ? `header ${identity.header}` : "Mdm-Signature",
      identitySource: this.o.scep ? "scep" : this.o.ca ? "ca" : "generated-ca",
      scepUrl: this.o.scep ? new URL(this.scepPath, this.base).href : undefined,
      scepCertificates: this.o.scep ? this.scepIssued : undefined,
      devices: this.o.devices,
      macs: s.macs,
      iphones: s.iphones,
      enrolled: s.enrolled,
      usersPerDevice: this.usersPerDevice,
      networkUsers: this.o.networkUsers === true,
      userChannelsExpected: s.userChannelsExpected,
      userChannels: s.userChannels,
      loginsExpected: s.loginsExpected,
      logins: s.logins,
      zeroLengthLogins: s.zeroLengthLogins,
      commandsEnqueued: s.commandsEnqueued,
      commands: s.commands,
      notNow: s.notNow,
      unanswered: s.unanswered,
      requestTypes: Object.fromEntries([...s.requestTypes].sort(([a], [b]) => (a < b ? -1 : 1))),
      ddm: { ...s.ddm },
      requests: s.requests,
      apiRequests: s.apiRequests,
      requestsPerSecond: durationMs > 0 ? round((s.requests / durationMs) * 1000) : 0,
      latencyMs: {
        p50: round(s.latency.quantile(0.5)),
        p90: round(s.latency.quantile(0.9)),
        p99: round(s.latency.quantile(0.99)),
        max: round(s.latency.max),
        mean: round(s.latency.mean()),
      },
      statuses: Object.fromEntries(s.statuses),
      errors: s.errors,
      errorKinds: Object.fromEntries(s.errorKinds),
      durationMs: Math.round(durationMs),
      interrupted: this.interrupted,
      caCertPath: this.caCertPath,
    };
  }
}

interface ApiAnswer {
  status: number;
  text: string;
  json: unknown;
}

/** A CA identity from PEM files, checked to be a CA whose key matches. */
export function caFromPem(certPem: string, keyPem: string): CaIdentity {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new Error(`the CA certificate is not a PEM certificate: ${(err as Error).message}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new Error(`the CA key is not a PEM private key: ${(err as Error).message}`);
  }
  if (!cert.ca) throw new Error("the CA certificate is not a CA certificate (basicConstraints cA is not set)");
  if (!cert.checkPrivateKey(key)) throw new Error("the CA key does not belong to the CA certificate");
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? "Device CA";
  return {
    commonName: cn,
    certPem: cert.toString(),
    certDer: Buffer.from(cert.raw),
    keyPem: key.export({ type: "pkcs8", format: "pem" }) as string,
    cert,
    key,
    publicKey: createPublicKey(key),
    fingerprint: certFingerprint(cert),
  };
}

const MACS = [
  { Model: "Mac14,2", ModelName: "MacBook Air", battery: true },
  { Model: "Mac15,12", ModelName: "MacBook Air", battery: true },
  { Model: "Mac15,3", ModelName: "MacBook Pro", battery: true },
  { Model: "Mac14,3", ModelName: "Mac mini", battery: false },
  { Model: "Mac15,4", ModelName: "iMac", battery: false },
];
const MAC_OS = [
  { OSVersion: "14.7.1", BuildVersion: "23H222" },
  { OSVersion: "15.1", BuildVersion: "24B83" },
];
const IPHONES = [
  { ProductName: "iPhone15,2", ModelName: "iPhone 14 Pro" },
  { ProductName: "iPhone15,4", ModelName: "iPhone 15" },
  { ProductName: "iPhone16,1", ModelName: "iPhone 15 Pro" },
];
const IOS = [
  { OSVersion: "17.7", BuildVersion: "21H16" },
  { OSVersion: "18.1", BuildVersion: "22B83" },
];
/** Apple's serial number characters (no vowels that could spell words). */
const SERIAL_CHARS = "0123456789CDFGHJKLMNPQRTVWXY";

type Hardware = Pick<
  DeviceProfile,
  "udid" | "serialNumber" | "facts" | "wifiMac" | "bluetoothMac" | "capacity" | "available" | "batteryLevel" | "imei"
>;

/** A device's fixed facts, drawn from its own random stream. */
function hardware(platform: Platform, rng: Rng, index: number): Hardware {
  const serialNumber = rng.chars(10, SERIAL_CHARS);
  const mac = () =>
    Array.from({ length: 6 }, (_, i) => (i === 0 ? (rng.int(64) * 4).toString(16) : rng.hex(2).toLowerCase()).padStart(2, "0")).join(":");
  const capacity = rng.pick([245.11, 494.38, 994.66]);
  if (platform === "macOS") {
    const m = rng.pick(MACS);
    const release = rng.pick(MAC_OS);
    const facts: PlistDict = {
      Model: m.Model,
      ModelName: m.ModelName,
      DeviceName: `Simulated ${m.ModelName} ${index}`,
      ProductName: m.Model,
      ...release,
    };
    return {
      udid: rng.uuid(),
      serialNumber,
      facts,
      wifiMac: mac(),
      bluetoothMac: mac(),
      capacity,
      available: Math.round(capacity * (0.2 + 0.6 * rng.next()) * 100) / 100,
      batteryLevel: m.battery ? Math.round((0.2 + 0.75 * rng.next()) * 100) / 100 : undefined,
    };
  }
  const p = rng.pick(IPHONES);
  const release = rng.pick(IOS);
  const facts: PlistDict = { ProductName: p.ProductName, ModelName: p.ModelName, DeviceName: `Simulated iPhone ${index}`, ...release };
  return {
    // Newer iPhones' UDIDs: the chip id, a dash, 16 hexadecimal digits.
    udid: `0000${rng.pick(["8110", "8120", "8130"])}-${rng.hex(16)}`,
    serialNumber,
    facts,
    wifiMac: mac(),
    bluetoothMac: mac(),
    capacity: rng.pick([128, 256, 512]) - 0.4,
    available: Math.round((40 + 60 * rng.next()) * 100) / 100,
    batteryLevel: Math.round((0.2 + 0.75 * rng.next()) * 100) / 100,
    imei: `35${rng.chars(13, "0123456789")}`,
  };
}

function isDict(v: PlistValue | undefined): v is PlistDict {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof Date);
}

/** `HTTP 403: reason` with the start of the body. */
function describe(r: { status: number; body?: Buffer; text?: string }): string {
  const text = (r.text ?? r.body?.toString("utf8") ?? "").replace(/\s+/g, " ").trim();
  // Long enough for the server's longest reasons (a re-enrollment refusal names both ways out), marked where cut.
  const shown = text.length > 480 ? `${text.slice(0, 480)}...` : text;
  return `HTTP ${r.status}${shown ? `: ${shown}` : ""}`;
}

function reason(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === "TimeoutError") return "no answer in time";
  return e?.cause?.code ?? e?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

/** Runs fn over items with at most n at once. */
async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

/** A binary min-heap. */
class MinHeap<T> {
  private readonly items: T[] = [];
  constructor(private readonly less: (a: T, b: T) => number) {}

  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(a[i]!, a[p]!) >= 0) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!) < 0) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!) < 0) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}
