// The ddm scenario: Declarative Device Management with a large store.
//
// Per size N (--ddm-sizes, default 1k and 100k) one Orchard server on a
// fresh store into which the bench first writes N - the bench devices
// enrollments (bench/seed.ts, streamed, as scale does), 50 sets of 3
// declarations each (an activation and the two configurations it activates;
// through the Store), and 3 sets per enrollment (streamed too): every
// enrollment holds set 0 and two of the 49 others (so set 0 is held by all
// N), the bench devices included (their UDIDs are known before they enroll).
// The bench devices then enroll over HTTP and drive, per row:
//
//   ddm-tokens-N  one `tokens` check-in
//   ddm-items-N   one `declaration-items` check-in
//   ddm-sync-N    a full sync: tokens, declaration-items, each of the
//                 channel's 9 declarations, a status report (FullReport,
//                 built by src/sim/ddm.ts's DdmChannel): 12 requests
//   ddm-change-N  (the largest size up to 100k only: at 1M it would outlast
//                 its 180 s limit) a change to a declaration of set 0,
//                 held by all N: PUT /v1/declarations through the API, then
//                 the time until every one of the N channels has been pushed
//                 at the APNs stand-in (bench/push.ts's), which the sync
//                 sweep (core/ddm-sync.ts) does after queueing its command.
//                 It includes the change's coalescing delay (1 s).
//
// The requests are SimDevice's own, recorded once per device as the other
// scenarios' are; see bench/README.md.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { DeviceIdentity } from "../src/identity/testing/pki.ts";
import { kindOfType } from "../src/protocol/ddm.ts";
import { DdmChannel, type DdmKind } from "../src/sim/ddm.ts";
import { SimDevice } from "../src/sim/device.ts";
import { prepare, RecordingTransport, type PreparedRequest } from "../src/sim/prebuilt.ts";
import { pushArgs, type ApnsStandIn, type PushPki } from "../test/support/apns.ts";
import { storeKit, type BaseOrchard } from "./base-orchard.ts";
import { API_KEY, CERT_HEADER, DIGEST_REALM, forServer, type BenchDevice, type Fleet } from "./fleet.ts";
import { ConnPool, drive, forEachDevice, type Check, type ClientKind, type DriveResult, type Unit } from "./load.ts";
import { createBenchDatabase, type BenchDatabase } from "./postgres.ts";
import { seededId, seedManyEnrollments, seedManySetAssignments, storeFilesMb } from "./seed.ts";
import { ServerHandle } from "./servers.ts";

export const DDM_SETS = 50;
/** Sets per enrollment: set 0 and two others. */
export const DDM_SETS_PER_ENROLLMENT = 3;
/** An activation and the two configurations it activates. */
export const DDM_DECLARATIONS_PER_SET = 3;
/** The set every enrollment holds, whose change the change row measures. */
const SHARED_SET = setName(0);
const CHANGED = `${declarationPrefix(0)}.config-1`;
/** The seeded enrollments' ids are DDM-0000000 on. */
const DDM_PREFIX = "DDM";
/** A change row that has not seen every push by then fails. */
const CHANGE_TIMEOUT_MS = 180_000;

export type DdmRowKind = "tokens" | "items" | "sync" | "change";
export const DDM_ROW_KINDS: readonly DdmRowKind[] = ["tokens", "items", "sync", "change"];

/** What a ddm run adds to the bench's RunResult. */
export interface DdmExtra {
  syncs?: number;
  syncsPerSec?: number;
  /** change: channels that held the changed set, and the seconds until the last of them was pushed. */
  changeChannels?: number;
  changeS?: number;
}

export type DdmLoad = DriveResult & { extra?: DdmExtra };

function setName(k: number): string {
  return `bench-set-${String(k).padStart(2, "0")}`;
}
function declarationPrefix(k: number): string {
  return `bench.ddm.set${String(k).padStart(2, "0")}`;
}

interface BenchDeclaration {
  Type: string;
  Identifier: string;
  Payload: Record<string, unknown>;
}

function declarationsOf(k: number): BenchDeclaration[] {
  const p = declarationPrefix(k);
  return [
    {
      Type: "com.apple.activation.simple",
      Identifier: `${p}.activation`,
      Payload: { StandardConfigurations: [`${p}.config-1`, `${p}.config-2`] },
    },
    {
      Type: "com.apple.configuration.management.test",
      Identifier: `${p}.config-1`,
      Payload: { Echo: `set ${k} one`, ReturnStatus: "Installed" },
    },
    {
      Type: "com.apple.configuration.management.test",
      Identifier: `${p}.config-2`,
      Payload: { Echo: `set ${k} two`, ReturnStatus: "Installed" },
    },
  ];
}

/** The sets of the enrollment with this index: set 0 and two of the 49 others. */
function setsOf(i: number): string[] {
  const others = DDM_SETS - 1;
  return [SHARED_SET, setName(1 + (i % others)), setName(1 + ((i + 24) % others))];
}

/** A bench device's DDM requests, encoded for one server. */
interface DdmDevice {
  enroll: BenchDevice;
  tokens: PreparedRequest;
  items: PreparedRequest;
  declarations: Array<{ request: PreparedRequest; expect: Buffer }>;
  status: PreparedRequest;
}

export interface DdmRigOptions {
  size: number;
  backend: "sqlite" | "postgres";
  /** Where PostgreSQL databases are made (postgres backend). */
  postgres: string;
  fleet: Fleet;
  /** The bench devices' CA file, for --ca. */
  caFile: string;
  apns: ApnsStandIn;
  pki: PushPki;
  inFlight: number;
  client: ClientKind;
  /** --baseline-orchard: that revision's Orchard, on a store its own code seeded (a rig of its own). */
  base?: BaseOrchard;
}

/**
 * One server and its seeded store for one size, shared by that size's rows
 * (each row holds it; the last one released stops it).
 */
export class DdmRig {
  server: ServerHandle | undefined;
  database: BenchDatabase | undefined;
  pool: ConnPool | undefined;
  devices: DdmDevice[] = [];
  seeded = 0;
  seedS = 0;
  enrollS = 0;
  /** SQLite: the store's files after the bench devices enrolled, MB. */
  storeMb: number | undefined;
  private holders = 0;
  private changes = 0;
  private stopped: Promise<void> | undefined;

  private constructor(
    readonly o: DdmRigOptions,
    readonly dir: string,
  ) {}

  private static rigs = new Map<string, Promise<DdmRig>>();

  private static key(o: DdmRigOptions): string {
    return `${o.backend}-${o.size}-${o.base?.commit ?? "checkout"}`;
  }

  /** The rig of this backend, size and build, started by its first row. */
  static async hold(o: DdmRigOptions, onResource: (rig: DdmRig) => void): Promise<DdmRig> {
    const key = DdmRig.key(o);
    let p = DdmRig.rigs.get(key);
    if (!p) {
      p = DdmRig.start(o, onResource);
      DdmRig.rigs.set(key, p);
      p.catch(() => DdmRig.rigs.delete(key));
    }
    const rig = await p;
    rig.holders++;
    return rig;
  }

  /** A row is done with the rig; the last one stops it. */
  async release(): Promise<void> {
    if (--this.holders > 0) return;
    DdmRig.rigs.delete(DdmRig.key(this.o));
    await this.stop();
  }

  private static async start(o: DdmRigOptions, onResource: (rig: DdmRig) => void): Promise<DdmRig> {
    const rig = new DdmRig(o, fs.mkdtempSync(path.join(os.tmpdir(), `orchard-bench-ddm-${o.size}-`)));
    onResource(rig);
    try {
      if (o.backend === "postgres") rig.database = await createBenchDatabase(o.postgres);
      const storage = rig.database?.url ?? `sqlite:${path.join(rig.dir, "orchard.db")}`;
      const t0 = performance.now();
      const bench = o.fleet.devices.map((d) => d.udid);
      // The base's store code migrates the store to its own schema; the rows are written by this checkout's SQL, as for scale.
      const { openStore } = await storeKit(o.base);
      const store = await openStore(storage, rig.dir);
      const expected = new Map<string, Array<{ identifier: string; kind: DdmKind; serverToken: string }>>();
      try {
        const seeded = Math.max(0, o.size - bench.length);
        await seedManyEnrollments(store, seeded, DDM_PREFIX);
        const now = Date.now();
        for (let k = 0; k < DDM_SETS; k++) {
          for (const d of declarationsOf(k)) {
            await store.ddm.putDeclaration({ ...d, kind: kindOfType(d.Type)! }, { now, syncDueAt: null });
            await store.ddm.addToSet(setName(k), d.Identifier, { now, syncDueAt: null });
          }
        }
        // The bench devices first (their UDIDs, before they enroll), then the seeded ids.
        const idOf = (i: number) => (i < bench.length ? bench[i]! : seededId(DDM_PREFIX, i - bench.length));
        await seedManySetAssignments(store, bench.length + seeded, idOf, setsOf, now);
        if (rig.database) await store.db.exec("ANALYZE");
        for (const udid of bench) expected.set(udid, await store.ddm.declarationItems(udid));
        rig.seeded = seeded;
      } finally {
        await store.close();
      }
      rig.seedS = (performance.now() - t0) / 1000;

      rig.server = await ServerHandle.start(
        "orchard",
        [
          "--listen",
          "127.0.0.1:0",
          "--data-dir",
          rig.dir,
          "--storage",
          storage,
          "--cert-header",
          CERT_HEADER,
          "--api-key",
          API_KEY,
          "--log-level",
          "warn",
          "--ca",
          o.caFile,
          "--digest-realm",
          DIGEST_REALM,
          "--push-sweep-interval",
          "0",
          ...pushArgs(o.apns, ["--apns-max-streams", "1000"]),
        ],
        [],
        o.base,
      );
      const up = await rig.api("PUT", "/v1/pushcert", o.pki.pem());
      if (up.status !== 200) throw new Error(`pushcert upload: HTTP ${up.status} ${up.text.slice(0, 200)}`);
      const url = rig.server.url;
      const host = new URL(url).host;
      for (const d of o.fleet.devices)
        rig.devices.push(await recordDdm(host, forServer(url, d), d.idle.headers![CERT_HEADER]!, expected.get(d.udid)!));
      rig.pool = await ConnPool.open(url, o.inFlight, o.client);
      const enroll = await forEachDevice(rig.pool, rig.devices, async (d, call) => {
        await call(d.enroll.authenticate, "authenticate", emptyOk);
        await call(d.enroll.tokenUpdate, "tokenupdate", emptyOk);
      });
      rig.enrollS = enroll.elapsedMs / 1000;
      if (enroll.errors > 0) throw new Error(`ddm-${o.size}: enrollment failed: ${JSON.stringify(enroll.errorKinds)}`);
      if (!rig.database) rig.storeMb = storeFilesMb(rig.dir);
      return rig;
    } catch (err) {
      await rig.stop().catch(() => {});
      throw err;
    }
  }

  private async api(method: string, url: string, body?: string): Promise<{ status: number; text: string }> {
    const auth = "Basic " + Buffer.from(`x:${API_KEY}`).toString("base64");
    const res = await fetch(this.server!.url + url, { method, headers: { authorization: auth }, body });
    return { status: res.status, text: await res.text() };
  }

  /** A row's run: its unit driven for durationMs, or (change) one change to set 0 until every holder is pushed. */
  async load(kind: DdmRowKind, durationMs: number): Promise<DdmLoad> {
    if (kind === "change") return this.change();
    const syncs = { n: 0 };
    const r = await drive(this.pool!, this.devices, UNITS[kind](syncs), durationMs);
    if (kind !== "sync") return r;
    return { ...r, extra: { syncs: syncs.n, syncsPerSec: Math.round(syncs.n / (r.elapsedMs / 1000)) } };
  }

  /**
   * A new Payload for a declaration of set 0 (held by every enrollment),
   * through the API, as an operator would; the run ends when the APNs
   * stand-in has seen a push for every one of them.
   */
  private async change(): Promise<DdmLoad> {
    const apns = this.o.apns;
    apns.reset();
    const want = this.o.size;
    const d = declarationsOf(0).find((x) => x.Identifier === CHANGED)!;
    const body = JSON.stringify({ ...d, Payload: { ...d.Payload, Echo: `changed ${++this.changes}` } });
    const wall0 = Date.now();
    const t0 = performance.now();
    const put = await fetch(this.server!.url + "/v1/declarations", {
      method: "PUT",
      headers: { authorization: "Basic " + Buffer.from(`x:${API_KEY}`).toString("base64"), "content-type": "application/json" },
      body,
    });
    await put.arrayBuffer();
    const errorKinds: Record<string, number> = {};
    if (put.status !== 204) errorKinds[`PUT /v1/declarations: HTTP ${put.status}`] = 1;
    const tokens = new Set<string>();
    let read = 0;
    let lastAt = wall0;
    while (put.status === 204 && tokens.size < want && performance.now() - t0 < CHANGE_TIMEOUT_MS) {
      for (; read < apns.seen.length; read++) {
        const p = apns.seen[read]!;
        tokens.add(p.token);
        lastAt = Math.max(lastAt, p.at);
      }
      if (tokens.size < want) await new Promise((r) => setTimeout(r, 10));
    }
    const elapsedMs = tokens.size >= want ? lastAt - wall0 : performance.now() - t0;
    if (tokens.size < want) errorKinds[`not pushed within ${CHANGE_TIMEOUT_MS / 1000} s`] = want - tokens.size;
    for (const v of apns.violations) errorKinds[`stand-in: ${v}`] = (errorKinds[`stand-in: ${v}`] ?? 0) + 1;
    const latencies = new Float64Array(apns.seen.length);
    for (const [i, p] of apns.seen.entries()) latencies[i] = p.at - wall0;
    return {
      requests: want,
      units: 1,
      errors: Object.values(errorKinds).reduce((a, b) => a + b, 0),
      errorKinds,
      elapsedMs,
      latencies,
      extra: { changeChannels: want, changeS: Math.round(elapsedMs) / 1000 },
    };
  }

  /** Stops the server, drops the database, removes the temp dir (once). */
  stop(): Promise<void> {
    return (this.stopped ??= (async () => {
      this.pool?.close();
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

/** The bench device's DDM check-ins, as SimDevice sends them (its identity in the cert header, as recorded). */
async function recordDdm(
  host: string,
  enroll: BenchDevice,
  certHeader: string,
  items: Array<{ identifier: string; kind: DdmKind; serverToken: string }>,
): Promise<DdmDevice> {
  const transport = new RecordingTransport();
  // Header mode sends only the certificate's PEM: the recorded header's value, unescaped.
  const identity = { certPem: decodeURIComponent(certHeader) } as DeviceIdentity;
  const sim = new SimDevice({ transport, identity, mode: { kind: "header", header: CERT_HEADER }, udid: enroll.udid });
  const record = async (endpoint: string, data?: Buffer) =>
    prepare(
      host,
      await transport.record(() => sim.checkin("DeclarativeManagement", { Endpoint: endpoint, ...(data ? { Data: data } : {}) })),
    );
  const byId = new Map(
    Array.from({ length: DDM_SETS }, (_, k) => declarationsOf(k))
      .flat()
      .map((d) => [d.Identifier, d]),
  );
  const channel = new DdmChannel({
    udid: enroll.udid,
    serialNumber: sim.serialNumber,
    family: "macOS",
    osVersion: "14.6",
    buildVersion: "23G80",
    model: "Mac14,2",
    modelName: "MacBook Air",
  });
  for (const i of items) {
    const d = byId.get(i.identifier)!;
    channel.installed.set(i.identifier, {
      kind: i.kind,
      identifier: i.identifier,
      serverToken: i.serverToken,
      type: d.Type,
      payload: d.Payload,
    });
  }
  const report = Buffer.from(JSON.stringify(channel.statusReport([...channel.installed.values()], true)));
  const declarations: DdmDevice["declarations"] = [];
  for (const i of items) {
    const expect = Buffer.from(`"Identifier":${JSON.stringify(i.identifier)}`);
    declarations.push({ request: await record(`declaration/${i.kind}/${i.identifier}`), expect });
  }
  return {
    enroll,
    tokens: await record("tokens"),
    items: await record("declaration-items"),
    declarations,
    status: await record("status", report),
  };
}

const emptyOk: Check = (r) => (r.status !== 200 ? `status ${r.status}` : r.body.length !== 0 ? "non-empty body" : undefined);
const TOKEN = Buffer.from('"DeclarationsToken":"');
const hasToken: Check = (r) =>
  r.status !== 200 ? `status ${r.status}` : r.body.indexOf(TOKEN) === -1 ? "no DeclarationsToken" : undefined;
const ok = (r: { status: number; body: Buffer } | undefined, check: Check) => r !== undefined && check(r) === undefined;

const UNITS: Record<Exclude<DdmRowKind, "change">, (syncs: { n: number }) => Unit<DdmDevice>> = {
  tokens: () => async (d, call) => void (await call(d.tokens, "tokens", hasToken)),
  items: () => async (d, call) => void (await call(d.items, "declaration-items", hasToken)),
  // A full sync; a wrong step ends it (one error), and only whole syncs count.
  sync: (syncs) => async (d, call) => {
    if (!ok(await call(d.tokens, "tokens", hasToken), hasToken)) return;
    if (!ok(await call(d.items, "declaration-items", hasToken), hasToken)) return;
    for (const { request, expect } of d.declarations) {
      const check: Check = (r) =>
        r.status !== 200 ? `status ${r.status}` : r.body.indexOf(expect) === -1 ? "not the declaration asked for" : undefined;
      if (!ok(await call(request, "declaration", check), check)) return;
    }
    if (!ok(await call(d.status, "status", emptyOk), emptyOk)) return;
    syncs.n++;
  },
};

/**
 * The largest size the change row runs at: it queues and pushes every
 * channel: 20 s at 100k on the quiet 2-core machine, 54 s on a busy one,
 * so 1M would take longer than CHANGE_TIMEOUT_MS.
 */
export const DDM_CHANGE_MAX_SIZE = 100_000;

/**
 * The rows of the ddm scenario: of the kinds asked for (--ddm-rows, default
 * all), tokens, items and sync per size, then change at the largest size up
 * to DDM_CHANGE_MAX_SIZE.
 */
export function ddmRows(sizes: readonly number[], kinds: readonly DdmRowKind[] = DDM_ROW_KINDS): Array<{ ddm: DdmRowKind; size: number }> {
  const rows: Array<{ ddm: DdmRowKind; size: number }> = sizes.flatMap((size) =>
    (["tokens", "items", "sync"] as const).filter((ddm) => kinds.includes(ddm)).map((ddm) => ({ ddm, size })),
  );
  const changeable = sizes.filter((size) => size <= DDM_CHANGE_MAX_SIZE);
  if (kinds.includes("change") && changeable.length > 0) rows.push({ ddm: "change", size: Math.max(...changeable) });
  return rows;
}

type Figures = Partial<Record<"reqPerSec" | "syncsPerSec" | "changeS" | "serverCpuPer1k" | "p50Ms" | "p99Ms" | "dbCpuPer1k", number>>;
type Target = { target: number; unit: string; median: number; met: boolean };

/** The targets (SQLite; PostgreSQL's figures are recorded without one). */
export const DDM_TARGETS = { syncsPerSec: 1000, withinPct: 10, changeS: 30 };

/**
 * What the ddm rows of one backend mean: the store each size held, the
 * largest size against the smallest for tokens and declaration-items, the
 * change's time, and the targets (on SQLite).
 */
export function ddmReport(
  backend: "sqlite" | "postgres",
  rows: Array<{ name: string; kind: DdmRowKind; size: number; m: Figures; seeded?: number; seedS?: number; storeMb?: number }>,
): { notes: string[]; targets: Record<string, Target>; targetLines: string[] } {
  const notes: string[] = [];
  const targets: Record<string, Target> = {};
  if (rows.length === 0) return { notes, targets, targetLines: [] };
  const n = (x: number | undefined, digits = 0) =>
    x === undefined ? "-" : x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const pct = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || !a ? "-" : `${b >= a ? "+" : ""}${(((b - a) / a) * 100).toFixed(1)}%`;
  const sizes = [...new Set(rows.map((r) => r.size))].sort((a, b) => a - b);
  for (const size of sizes) {
    const r = rows.find((x) => x.size === size)!;
    notes.push(
      `ddm ${n(size)}: ${n(r.seeded)} enrollments seeded + the bench devices = ${n(size)}, ${DDM_SETS} sets of ${DDM_DECLARATIONS_PER_SET} declarations, ` +
        `${DDM_SETS_PER_ENROLLMENT} sets each (set 0 held by all), written in ${n(r.seedS, 1)} s` +
        (r.storeMb !== undefined ? `, store ${n(r.storeMb, 1)} MB on disk` : ""),
    );
  }
  const row = (kind: DdmRowKind, size: number) => rows.find((r) => r.kind === kind && r.size === size);
  const small = sizes[0]!;
  const large = sizes[sizes.length - 1]!;
  const lines: string[] = [];
  const target = (name: string, t: Target, text: string) => {
    targets[name] = t;
    lines.push(`target ${backend} ${name.padEnd(15)} ${text}: ${t.met ? "met" : "MISSED"} (${n(t.median, t.unit === "s" ? 2 : 0)})`);
  };
  for (const kind of ["tokens", "items"] as const) {
    const a = row(kind, small);
    const b = row(kind, large);
    if (!a || !b || a === b) continue;
    notes.push(
      `${b.name} against ${a.name}: req/s ${pct(a.m.reqPerSec, b.m.reqPerSec)}, p50 ${pct(a.m.p50Ms, b.m.p50Ms)}, ` +
        `CPU s/1k ${pct(a.m.serverCpuPer1k, b.m.serverCpuPer1k)}` +
        (a.m.dbCpuPer1k !== undefined ? `, db CPU s/1k ${pct(a.m.dbCpuPer1k, b.m.dbCpuPer1k)}` : ""),
    );
    if (backend === "sqlite" && a.m.reqPerSec !== undefined && b.m.reqPerSec !== undefined) {
      const min = Math.round(a.m.reqPerSec * (1 - DDM_TARGETS.withinPct / 100));
      target(
        b.name,
        { target: min, unit: "req/s", median: b.m.reqPerSec, met: b.m.reqPerSec >= min },
        `>= ${n(min)} req/s (${a.name} - 10%)`,
      );
    }
  }
  for (const size of sizes) {
    const s = row("sync", size);
    if (s) notes.push(`${s.name}: ${n(s.m.syncsPerSec)} full syncs/s (12 requests each: ${n(s.m.reqPerSec)} req/s)`);
  }
  const sync = row("sync", large);
  if (backend === "sqlite" && sync?.m.syncsPerSec !== undefined) {
    const v = sync.m.syncsPerSec;
    target(
      sync.name,
      { target: DDM_TARGETS.syncsPerSec, unit: "syncs/s", median: v, met: v >= DDM_TARGETS.syncsPerSec },
      `>= ${n(DDM_TARGETS.syncsPerSec)} syncs/s`,
    );
  }
  const change = rows.find((r) => r.kind === "change");
  if (change?.m.changeS !== undefined) {
    notes.push(
      `${change.name}: a new Payload for a declaration of set 0, held by ${n(change.size)} channels: all queued and pushed ${n(change.m.changeS, 2)} s after the PUT ` +
        `(median; the 1 s coalescing delay included; CPU s/1k is per 1,000 channels)`,
    );
    if (backend === "sqlite") {
      const v = change.m.changeS;
      target(
        change.name,
        { target: DDM_TARGETS.changeS, unit: "s", median: v, met: v < DDM_TARGETS.changeS },
        `< ${DDM_TARGETS.changeS} s`,
      );
    }
  }
  return { notes, targets, targetLines: lines };
}
