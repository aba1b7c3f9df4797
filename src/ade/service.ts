// Automated Device Enrollment, phase 1: ABM servers (the token exchange),
// the device inventory kept in step with Apple's list (fetch, then sync),
// and DEP profiles defined at Apple and assigned (a server's default to every
// device that has none, after each sync). Phase 2 (the enrollment URL the
// profiles point at, await configuration) builds on this.
import { randomUUID } from "node:crypto";
import { BadRequest, Conflict, NotFound, OrchardError } from "../errors.ts";
import type { AdeDeviceRecord, AdeServerInfo, StoredAdeProfile, StoredAdeServer } from "../store/ade.ts";
import type { AdeSyncedDevice, EventDetail } from "../store/event-types.ts";
import type { Store } from "../store/index.ts";
import { AdeApiError, AdeClient, APPLE_ADE_URL, type AppleDevice, type DevicePage, type DeviceStatuses } from "./client.ts";
import type { OAuth1Credentials } from "./oauth1.ts";
import { checkProfile } from "./profile.ts";
import { decryptServerToken, makeTokenKeyPair, type ServerToken } from "./token-pki.ts";

const DAY_MS = 86_400_000;
/** As push certificates: the operator is told 30 days ahead (a new token takes a person at ABM). */
export const TOKEN_EXPIRY_WARNING_MS = 30 * DAY_MS;
const EXPIRY_CHECK_MS = 60 * 60_000;
const LEASE_MS = 5 * 60_000;
/** The most serials one assignment (PUT /profile/devices) carries. */
export const ASSIGN_BATCH = 1000;
/** Apple's maximum page (godep: default 100, maximum 1000). */
export const DEFAULT_PAGE_SIZE = 1000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Seals secrets for the store (push/secret-box.ts's SecretBox); aad binds a value to its row. */
export interface Sealer {
  seal(plain: Buffer, aad: string): Buffer;
  open(sealed: Buffer, aad: string): Buffer;
}

export interface AdeLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** The --ade-* settings (README flag table, docs/automated-enrollment.md). */
export interface AdeOptions {
  /** Apple's device assignment API (a stand-in in tests). */
  url: string;
  /** How often each ABM server's device list is synced; 0: only on demand. */
  syncIntervalMs: number;
}

export interface SyncResult {
  server: string;
  /** The phase the run ended in: fetch (the first full list) or sync. */
  phase: "fetch" | "sync";
  pages: number;
  fetched: number;
  added: number;
  modified: number;
  deleted: number;
  assigned: number;
  assignFailed: number;
  /** INVALID_CURSOR or EXPIRED_CURSOR made this run start over from a full fetch. */
  cursorReset?: string;
}

export interface AssignResult {
  profileUuid: string;
  devices: Record<string, string>;
}

/** A client per ABM server (its session token in memory); swapped when a new token arrives. */
export class AdeService {
  private readonly clients = new Map<string, AdeClient>();
  private readonly pageSize: number;

  constructor(
    private readonly o: {
      store: Store;
      sealer: Sealer;
      log: AdeLog;
      url?: string;
      publicUrl?: string;
      pageSize?: number;
      /** Injected waits (tests): 429 Retry-After. */
      sleep?: (ms: number) => Promise<void>;
    },
  ) {
    this.pageSize = o.pageSize ?? DEFAULT_PAGE_SIZE;
  }

  private get store() {
    return this.o.store;
  }

  /** A new ABM server: its key pair (the key sealed) and the certificate to upload at ABM. */
  async addServer(name: string, o: { commonName?: string; days?: number } = {}): Promise<AdeServerInfo> {
    checkName(name);
    if (o.days !== undefined && (!Number.isInteger(o.days) || o.days < 1 || o.days > 3650)) {
      throw new BadRequest("days must be a whole number from 1 to 3650", "invalid_parameter");
    }
    const pair = await makeTokenKeyPair(o.commonName ?? `Orchard ADE ${name}`, o.days ?? 365);
    const now = Date.now();
    const created = await this.store.ade.createServer(
      { name, certPem: pair.certPem, keySealed: this.o.sealer.seal(Buffer.from(pair.keyPem), keyAad(name)), certNotAfter: pair.notAfter },
      now,
    );
    if (!created) throw new Conflict(`an ABM server named ${name} exists`);
    await this.store.events.add({ type: "ade.server_added", detail: { server: name, cert_fingerprint: pair.fingerprint } }, now);
    this.o.log.info({ server: name, fingerprint: pair.fingerprint }, "ABM server added: upload its certificate at Apple Business Manager");
    return (await this.store.ade.serverInfo(name))!;
  }

  async info(name: string): Promise<AdeServerInfo> {
    const info = await this.store.ade.serverInfo(name);
    if (!info) throw new NotFound(`no ABM server named ${name}`);
    return info;
  }

  /**
   * Takes the server token (.p7m) ABM gave for this server's certificate:
   * decrypted with the stored key, its OAuth1 credentials stored sealed. A
   * token of another ABM MDM server (another consumer key) replaces the old
   * one only with force. Then Apple's account details are read (best effort).
   */
  async uploadToken(name: string, p7m: Buffer, force = false): Promise<AdeServerInfo> {
    const server = await this.requireServer(name);
    const keyPem = this.openKey(server).toString("utf8");
    const token = decryptServerToken(p7m, server.certPem, keyPem);
    if (server.consumerKey && server.consumerKey !== token.consumerKey && !force) {
      throw new Conflict(
        `this token is for another ABM MDM server (consumer key ${token.consumerKey}, not ${server.consumerKey}): replace it with --force (the API's ?force=1)`,
        "ade_token_change",
      );
    }
    const now = Date.now();
    const sealed = this.o.sealer.seal(Buffer.from(JSON.stringify(token)), tokenAad(name));
    await this.store.ade.putToken(
      name,
      { tokensSealed: sealed, consumerKey: token.consumerKey, tokenExpiry: token.accessTokenExpiry },
      now,
    );
    this.clients.delete(name);
    const expiry = new Date(token.accessTokenExpiry).toISOString();
    await this.store.events.add({ type: "ade.token_uploaded", detail: { server: name, token_expiry: expiry } }, now);
    this.o.log.info({ server: name, tokenExpiry: expiry }, "ABM server token stored");
    try {
      const account = await this.client(name).account();
      await this.store.ade.setAccount(
        name,
        { serverUuid: account.server_uuid, serverName: account.server_name, orgName: account.org_name },
        Date.now(),
      );
    } catch (err) {
      if (!(err instanceof AdeApiError)) throw err;
      this.o.log.warn({ server: name, reason: err.message }, "ABM server token stored, but Apple's account details could not be read");
    }
    return this.info(name);
  }

  async removeServer(name: string): Promise<void> {
    if (!(await this.store.ade.removeServer(name))) throw new NotFound(`no ABM server named ${name}`);
    this.clients.delete(name);
    await this.store.events.add({ type: "ade.server_removed", detail: { server: name } }, Date.now());
  }

  /** Stores a DEP profile (checked); `makeDefault` makes it the one new devices get. True when new. */
  async putProfile(
    server: string,
    name: string,
    input: unknown,
    makeDefault = false,
  ): Promise<{ created: boolean; profile: StoredAdeProfile }> {
    await this.requireServer(server);
    checkName(name, "profile name");
    const body = JSON.stringify(checkProfile(input, { name, publicUrl: this.o.publicUrl }));
    const now = Date.now();
    const created = await this.store.ade.putProfile(server, name, body, now);
    if (makeDefault) await this.store.ade.setDefaultProfile(server, name, now);
    return { created, profile: (await this.store.ade.profile(server, name))! };
  }

  async setDefaultProfile(server: string, name: string | null): Promise<void> {
    await this.requireServer(server);
    if (name !== null && !(await this.store.ade.profile(server, name))) throw new NotFound(`ABM server ${server} has no profile ${name}`);
    await this.store.ade.setDefaultProfile(server, name, Date.now());
  }

  /** Assigns a profile (defined at Apple first when needed) to devices by serial. */
  async assign(server: string, profileName: string, serials: string[]): Promise<AssignResult> {
    await this.requireServer(server);
    if (serials.length === 0 || serials.length > ASSIGN_BATCH)
      throw new BadRequest(`give 1 to ${ASSIGN_BATCH} serial numbers`, "invalid_parameter");
    const profile = await this.store.ade.profile(server, profileName);
    if (!profile) throw new NotFound(`ABM server ${server} has no profile ${profileName}`);
    const result = await this.upstream(async () => this.assignNow(server, await this.defined(server, profile), [...new Set(serials)]));
    await this.store.events.add(
      {
        type: "ade.profile_assigned",
        detail: { server, profile: profileName, profile_uuid: result.profileUuid, ...countStatuses(result.devices) },
      },
      Date.now(),
    );
    return result;
  }

  /**
   * One sync run of a server's device list: the first full fetch (resumed
   * from its stored cursor) or the changes since the cursor, a page at a
   * time, each page stored with the cursor after it; then the default profile
   * assigned to the devices seen that have none. One run per server at a time
   * across processes (ade_sync_running otherwise).
   */
  async sync(name: string, trigger = "api"): Promise<SyncResult> {
    const server = await this.requireServer(name);
    if (!server.tokensSealed) throw new Conflict(`ABM server ${name} has no token yet: upload the .p7m from ABM first`, "ade_no_token");
    const holder = randomUUID();
    if (!(await this.store.ade.acquireSync(name, holder, Date.now(), LEASE_MS))) {
      throw new Conflict(`a sync of ABM server ${name} is running`, "ade_sync_running");
    }
    const result: SyncResult = {
      server: name,
      phase: server.phase,
      pages: 0,
      fetched: 0,
      added: 0,
      modified: 0,
      deleted: 0,
      assigned: 0,
      assignFailed: 0,
    };
    try {
      const unassigned = await this.upstream(() => this.walk(server, holder, result));
      if (unassigned.size > 0 && server.defaultProfile) {
        const profile = await this.store.ade.profile(name, server.defaultProfile);
        if (profile) {
          // Defined at Apple (when it has no UUID yet) once, before the first batch: every batch gets the same UUID.
          const profileUuid = await this.upstream(() => this.defined(name, profile));
          const serials = [...unassigned];
          for (let i = 0; i < serials.length; i += ASSIGN_BATCH) {
            const batch = serials.slice(i, i + ASSIGN_BATCH);
            const r = await this.upstream(() => this.assignNow(name, profileUuid, batch));
            const counts = countStatuses(r.devices);
            result.assigned += counts.success;
            result.assignFailed += batch.length - counts.success;
          }
        }
      }
      const now = Date.now();
      await this.store.ade.finishSync(name, null, now);
      await this.store.events.add({ type: "ade.sync", detail: syncDetail(result, trigger) }, now);
      this.o.log.info({ ...result, trigger }, "ABM device sync done");
      return result;
    } catch (err) {
      const now = Date.now();
      const reason = err instanceof Error ? err.message : String(err);
      await this.store.ade.finishSync(name, reason, now).catch(() => {});
      await this.store.events
        .add({ type: "ade.sync_failed", detail: { ...syncDetail(result, trigger), error: reason } }, now)
        .catch(() => {});
      this.o.log.warn(
        { server: name, reason, pages: result.pages },
        "ABM device sync failed: the stored cursor is kept and the next sync resumes from it",
      );
      throw err;
    } finally {
      await this.store.ade.releaseSync(name, holder).catch(() => {});
    }
  }

  /** The fetch/sync loop; returns the serials seen without a profile. */
  private async walk(server: StoredAdeServer, holder: string, result: SyncResult): Promise<Set<string>> {
    const client = this.client(server.name);
    const unassigned = new Set<string>();
    let phase = server.phase;
    let cursor = server.cursor ?? undefined;
    if (phase === "sync" && cursor === undefined) phase = "fetch";
    let restarted = false;
    for (;;) {
      if (!(await this.store.ade.acquireSync(server.name, holder, Date.now(), LEASE_MS))) throw lostLease(server.name);
      // A fetch without a cursor starts the full list over: a new full fetch.
      const fetchStarts = phase === "fetch" && cursor === undefined;
      let page: DevicePage;
      try {
        page = phase === "fetch" ? await client.fetchDevices(cursor, this.pageSize) : await client.syncDevices(cursor!, this.pageSize);
      } catch (err) {
        const cursorError = err instanceof AdeApiError ? err.cursorError : undefined;
        if (cursorError === "EXHAUSTED_CURSOR" && phase === "fetch" && cursor !== undefined) {
          // The full list was fetched before (every page of it): the fetch ends here; on to the changes since.
          const ended = await this.storePage(server.name, holder, {
            phase,
            nextPhase: "sync",
            cursor: cursor,
            records: [],
            listed: [],
            moreToFollow: false,
            fetch: { start: false, end: true },
          });
          result.deleted += ended.removed.length;
          result.phase = "sync";
          phase = "sync";
          continue;
        }
        if ((cursorError === "INVALID_CURSOR" || cursorError === "EXPIRED_CURSOR") && !restarted) {
          // As NanoDEP's syncer: start over with a full fetch.
          restarted = true;
          result.cursorReset = cursorError;
          phase = "fetch";
          cursor = undefined;
          await this.store.ade.resetCursor(server.name, holder, Date.now());
          this.o.log.warn({ server: server.name, cursorError }, "Apple refused the stored cursor: fetching the whole device list again");
          continue;
        }
        throw err;
      }
      const devices = (page.devices ?? []).map(deviceRecord).filter((d): d is AdeDeviceRecord => d !== undefined);
      for (const d of devices) {
        if (phase === "fetch") result.fetched++;
        else if (d.opType === "added") result.added++;
        else if (d.opType === "modified") result.modified++;
        else if (d.opType === "deleted" || d.opType === "removed") result.deleted++;
      }
      const nextPhase = phase === "fetch" && !page.more_to_follow ? "sync" : phase;
      const nextCursor = typeof page.cursor === "string" && page.cursor !== "" ? page.cursor : cursor;
      const applied = await this.storePage(server.name, holder, {
        phase,
        nextPhase,
        cursor: nextCursor ?? null,
        records: devices,
        listed: page.devices ?? [],
        moreToFollow: page.more_to_follow === true,
        fetch: phase === "fetch" ? { start: fetchStarts, end: nextPhase === "sync" } : undefined,
      });
      for (const serial of applied.withoutProfile) unassigned.add(serial);
      for (const d of devices) if (d.opType === "deleted" || d.opType === "removed") unassigned.delete(d.serialNumber);
      result.deleted += applied.removed.length;
      result.pages++;
      result.phase = nextPhase;
      cursor = nextCursor;
      phase = nextPhase;
      if (!page.more_to_follow) return unassigned;
    }
  }

  /**
   * Stores a page with the cursor after it (or, with no devices, the end of a
   * full fetch), and (when the webhook subscribes to it) its ade.sync_devices
   * event, in one transaction. At the end of a full fetch the devices it did
   * not list are marked removed (store/ade.ts applyPage): the webhook hears of
   * them as of deleted ops, a page's worth an event after the page's.
   */
  private async storePage(
    server: string,
    holder: string,
    p: {
      phase: "fetch" | "sync";
      nextPhase: "fetch" | "sync";
      cursor: string | null;
      records: AdeDeviceRecord[];
      listed: AppleDevice[];
      moreToFollow: boolean;
      fetch?: { start: boolean; end: boolean };
    },
  ): Promise<{ withoutProfile: string[]; removed: string[] }> {
    const applied = await this.store.transaction(async (tx) => {
      const now = Date.now();
      const r = await tx.ade.applyPage(server, holder, { devices: p.records, cursor: p.cursor, phase: p.nextPhase, fetch: p.fetch }, now);
      if (r.applied && tx.outbox.wants("ade.sync_devices")) {
        if (p.records.length > 0) {
          const detail = { server, phase: p.phase, more_to_follow: p.moreToFollow, devices: p.listed.map(syncedDevice) };
          await tx.events.add({ type: "ade.sync_devices", detail }, now);
        }
        for (let i = 0; i < r.removed.length; i += this.pageSize) {
          const devices = r.removed.slice(i, i + this.pageSize).map((serial) => deletedDevice(serial, now));
          const detail = { server, phase: "fetch" as const, more_to_follow: i + this.pageSize < r.removed.length, devices };
          await tx.events.add({ type: "ade.sync_devices", detail }, now);
        }
      }
      return r;
    });
    if (!applied.applied) throw lostLease(server);
    if (applied.removed.length > 0) {
      this.o.log.info(
        { server, removed: applied.removed.length },
        "ABM full fetch done: the devices it did not list are marked removed (ABM no longer assigns them to this server)",
      );
    }
    return applied;
  }

  /** The profile's UUID at Apple: the stored one, or (none yet) the one Apple gives it now (POST /profile), stored. */
  private async defined(server: string, profile: StoredAdeProfile): Promise<string> {
    if (profile.profileUuid) return profile.profileUuid;
    const defined = await this.client(server).defineProfile(JSON.parse(profile.body) as Record<string, unknown> & { profile_name: string });
    if (!defined.profile_uuid) throw new AdeApiError("POST /profile: Apple's answer has no profile_uuid", 200);
    const uuid = defined.profile_uuid;
    await this.store.ade.profileDefined(server, profile.name, profile.body, uuid, Date.now());
    this.o.log.info({ server, profile: profile.name, profileUuid: uuid }, "DEP profile defined at Apple");
    return uuid;
  }

  /** Assigns a profile defined at Apple to these serials; those Apple says SUCCESS are recorded with it. */
  private async assignNow(server: string, profileUuid: string, serials: string[]): Promise<AssignResult> {
    const r: DeviceStatuses = await this.client(server).assignProfile(profileUuid, serials);
    const devices = r.devices ?? {};
    const ok = serials.filter((s) => devices[s] === "SUCCESS");
    await this.store.ade.markAssigned(server, ok, profileUuid, Date.now());
    return { profileUuid, devices };
  }

  /** The periodic sync of every server with a token (each when its interval has passed) and the token expiry check. */
  start(o: AdeOptions): () => Promise<void> {
    let running: Promise<void> = Promise.resolve();
    const timers: NodeJS.Timeout[] = [];
    const queue = (job: () => Promise<void>) => {
      running = running.then(job);
    };
    const expiry = () => this.checkTokenExpiry().catch((err: unknown) => this.o.log.warn({ err }, "ABM token expiry check failed"));
    queue(expiry);
    timers.push(setInterval(() => queue(expiry), EXPIRY_CHECK_MS));
    if (o.syncIntervalMs > 0) {
      const tick = () => this.syncDue(o.syncIntervalMs).catch((err: unknown) => this.o.log.warn({ err }, "ABM sync schedule failed"));
      queue(tick);
      timers.push(setInterval(() => queue(tick), Math.min(o.syncIntervalMs, 60_000)));
    }
    for (const t of timers) t.unref();
    return async () => {
      for (const t of timers) clearInterval(t);
      await running;
    };
  }

  /** Syncs each server with a token whose last sync is older than the interval. */
  async syncDue(intervalMs: number, now = Date.now()): Promise<void> {
    for (const s of await this.store.ade.servers()) {
      if (s.tokenExpiry === null) continue;
      if (s.lastSyncAt !== null && now - s.lastSyncAt < intervalMs) continue;
      await this.sync(s.name, "schedule").catch((err: unknown) => {
        if (err instanceof OrchardError && err.code === "ade_sync_running") return;
        if (!(err instanceof OrchardError)) this.o.log.warn({ server: s.name, err }, "ABM device sync failed");
      });
    }
  }

  /** One ade.token_expiring event per token within 30 days of expiry (any process records it), and a warn line. */
  async checkTokenExpiry(now = Date.now()): Promise<void> {
    for (const t of await this.store.ade.tokenExpiries()) {
      if (t.tokenExpiry - now > TOKEN_EXPIRY_WARNING_MS) continue;
      const days = Math.floor((t.tokenExpiry - now) / DAY_MS);
      const expired = t.tokenExpiry <= now;
      const tokenExpiry = new Date(t.tokenExpiry).toISOString();
      const detail = { server: t.name, token_expiry: tokenExpiry, days_left: days, expired };
      // The notice and its event commit together, through the event store (so the webhook sees it too).
      await this.store.transaction(async (tx) => {
        if (await tx.ade.claimExpiryNotice(t.name, t.tokenExpiry, now)) await tx.events.add({ type: "ade.token_expiring", detail }, now);
      });
      this.o.log.warn(
        { server: t.name, tokenExpiry, daysLeft: days },
        `${expired ? "ABM SERVER TOKEN EXPIRED" : `ABM server token expires in ${days} days`} (${tokenExpiry}): ` +
          "download a new token for this MDM server at Apple Business Manager and upload it (docs/automated-enrollment.md)",
      );
    }
  }

  private client(name: string): AdeClient {
    const cached = this.clients.get(name);
    if (cached) return cached;
    const client = new AdeClient({
      baseUrl: this.o.url ?? APPLE_ADE_URL,
      credentials: () => this.credentials(name),
      sleep: this.o.sleep,
    });
    this.clients.set(name, client);
    return client;
  }

  private async credentials(name: string): Promise<OAuth1Credentials> {
    const server = await this.requireServer(name);
    if (!server.tokensSealed) throw new Conflict(`ABM server ${name} has no token`, "ade_no_token");
    let token: ServerToken;
    try {
      token = JSON.parse(this.o.sealer.open(server.tokensSealed, tokenAad(name)).toString("utf8")) as ServerToken;
    } catch {
      throw new Conflict(
        `the stored token of ABM server ${name} does not open with this server's secret key: give every process the same --secret-key, or upload the token again`,
        "ade_no_token",
      );
    }
    return token;
  }

  private openKey(server: StoredAdeServer): Buffer {
    try {
      return this.o.sealer.open(server.keySealed, keyAad(server.name));
    } catch {
      throw new Conflict(
        `the stored key of ABM server ${server.name} does not open with this server's secret key: give every process the same --secret-key`,
      );
    }
  }

  private async requireServer(name: string): Promise<StoredAdeServer> {
    const server = await this.store.ade.server(name);
    if (!server) throw new NotFound(`no ABM server named ${name}`);
    return server;
  }

  /** Apple's failures become a 502 (code ade_upstream) with Apple's status and reason, never a secret. */
  private async upstream<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof AdeApiError) throw new OrchardError(502, err.message, "ade_upstream");
      throw err;
    }
  }
}

function checkName(name: string, what = "ABM server name"): void {
  if (!NAME.test(name))
    throw new BadRequest(`${what} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`, "invalid_parameter");
}

const keyAad = (name: string) => `ade-server-key:${name}`;
const tokenAad = (name: string) => `ade-server-token:${name}`;

function lostLease(name: string): OrchardError {
  return new Conflict(`another process took over the sync of ABM server ${name}`, "ade_sync_running");
}

function countStatuses(devices: Record<string, string>): { success: number; not_accessible: number; failed: number; throttled: number } {
  const values = Object.values(devices);
  return {
    success: values.filter((v) => v === "SUCCESS").length,
    not_accessible: values.filter((v) => v === "NOT_ACCESSIBLE").length,
    failed: values.filter((v) => v === "FAILED").length,
    throttled: values.filter((v) => v === "THROTTLED").length,
  };
}

/** A run's result in snake_case: the event's detail and (less trigger) the API's answer. */
export function syncDetail(r: SyncResult, trigger: string): EventDetail<"ade.sync"> {
  return {
    server: r.server,
    phase: r.phase,
    pages: r.pages,
    fetched: r.fetched,
    added: r.added,
    modified: r.modified,
    deleted: r.deleted,
    assigned: r.assigned,
    assign_failed: r.assignFailed,
    cursor_reset: r.cursorReset ?? null,
    trigger,
  };
}

const time = (v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
};
const text = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v.slice(0, 512) : undefined);

/** A device of a page as ade.sync_devices carries it (NanoDEP's dep.SyncDevices: Apple's keys). */
function syncedDevice(d: AppleDevice): AdeSyncedDevice {
  const v = (x: unknown) => (typeof x === "string" && x !== "" ? x.slice(0, 512) : null);
  return {
    serial_number: v(d?.serial_number) ?? "",
    op_type: v(d.op_type),
    op_date: v(d.op_date),
    model: v(d.model),
    description: v(d.description),
    color: v(d.color),
    os: v(d.os),
    device_family: v(d.device_family),
    profile_status: v(d.profile_status),
    profile_uuid: v(d.profile_uuid),
  };
}

/** A device a full fetch did not list, as ade.sync_devices carries it: as Apple's deleted op. */
function deletedDevice(serial: string, at: number): AdeSyncedDevice {
  return {
    serial_number: serial,
    op_type: "deleted",
    op_date: new Date(at).toISOString(),
    model: null,
    description: null,
    color: null,
    os: null,
    device_family: null,
    profile_status: null,
    profile_uuid: null,
  };
}

/** Apple's device JSON as a stored record; one without a serial number is left out. */
export function deviceRecord(d: AppleDevice): AdeDeviceRecord | undefined {
  const serialNumber = text(d?.serial_number);
  if (!serialNumber) return undefined;
  return {
    serialNumber,
    model: text(d.model),
    description: text(d.description),
    color: text(d.color),
    assetTag: text(d.asset_tag),
    os: text(d.os),
    deviceFamily: text(d.device_family),
    profileStatus: text(d.profile_status),
    profileUuid: text(d.profile_uuid),
    profileAssignTime: time(d.profile_assign_time),
    profilePushTime: time(d.profile_push_time),
    deviceAssignedBy: text(d.device_assigned_by),
    deviceAssignedDate: time(d.device_assigned_date),
    opType: text(d.op_type),
    opDate: time(d.op_date),
  };
}
