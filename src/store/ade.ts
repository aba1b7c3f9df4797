import { randomUUID } from "node:crypto";
import type { Database, SqlParam } from "./db.ts";
import { chunks } from "./enrollments.ts";

/** An ABM/ASM "MDM server" as stored: the key and the token only sealed. */
export interface StoredAdeServer {
  name: string;
  certPem: string;
  keySealed: Buffer;
  certNotAfter: number;
  tokensSealed: Buffer | null;
  consumerKey: string | null;
  tokenExpiry: number | null;
  tokenUploadedAt: number | null;
  serverUuid: string | null;
  serverName: string | null;
  orgName: string | null;
  cursor: string | null;
  phase: "fetch" | "sync";
  lastSyncAt: number | null;
  lastSyncError: string | null;
  defaultProfile: string | null;
  /** The enrollment settings (JSON, ade/settings.ts), or null for none. */
  enrollmentSettings: string | null;
  createdAt: number;
  updatedAt: number;
}

/** What the API shows of a server: never the key or the token. */
export type AdeServerInfo = Omit<StoredAdeServer, "keySealed" | "tokensSealed"> & { devices: number; enrolled: number };

/** One device as Apple's device list describes it (times in ms). */
export interface AdeDeviceRecord {
  serialNumber: string;
  model?: string;
  description?: string;
  color?: string;
  assetTag?: string;
  os?: string;
  deviceFamily?: string;
  profileStatus?: string;
  profileUuid?: string;
  profileAssignTime?: number;
  profilePushTime?: number;
  deviceAssignedBy?: string;
  deviceAssignedDate?: number;
  opType?: string;
  opDate?: number;
}

export interface AdeDevice extends AdeDeviceRecord {
  serverName: string;
  removed: boolean;
  enrolled: boolean;
  firstSeenAt: number;
  updatedAt: number;
}

export interface AdeDeviceFilter {
  server?: string;
  serial?: string;
  profileStatus?: string;
  enrolled?: boolean;
  removed?: boolean;
  /** `server/serial` of the last row of the previous page. */
  after?: string;
  limit: number;
}

export interface StoredAdeProfile {
  serverName: string;
  name: string;
  body: string;
  profileUuid: string | null;
  definedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

const SERVER_COLUMNS = `name, cert_pem, key_sealed, cert_not_after, tokens_sealed, consumer_key, token_expiry, token_uploaded_at,
  server_uuid, server_name, org_name, cursor, phase, last_sync_at, last_sync_error, default_profile, enrollment_settings, created_at, updated_at`;

const DEVICE_FIELDS = [
  "model",
  "description",
  "color",
  "asset_tag",
  "os",
  "device_family",
  "profile_status",
  "profile_uuid",
  "profile_assign_time",
  "profile_push_time",
  "device_assigned_by",
  "device_assigned_date",
] as const;
const DEVICE_INSERT_COLUMNS = [
  "server_name",
  "serial_number",
  ...DEVICE_FIELDS,
  "op_type",
  "op_date",
  "removed",
  "fetch_id",
  "first_seen_at",
  "updated_at",
];
const ROWS_PER_UPSERT = 100;
// A deleted record keeps what was known of the device; any other overwrites it.
// A record without an op (a full fetch's: Apple's fetch answer has none) keeps
// the op stored, unless that said the device was removed and it is listed again.
// A sync's record (no fetch id) keeps the id of the last full fetch that listed the device.
const UPSERT_TAIL = `ON CONFLICT (server_name, serial_number) DO UPDATE SET
  ${DEVICE_FIELDS.map((f) => `${f} = CASE WHEN excluded.removed = 1 THEN ade_devices.${f} ELSE excluded.${f} END`).join(",\n  ")},
  ${["op_type", "op_date"]
    .map(
      (f) =>
        `${f} = CASE WHEN excluded.op_type IS NOT NULL THEN excluded.${f} WHEN ade_devices.removed = 1 AND excluded.removed = 0 THEN NULL ELSE ade_devices.${f} END`,
    )
    .join(",\n  ")},
  removed = excluded.removed, fetch_id = COALESCE(excluded.fetch_id, ade_devices.fetch_id), updated_at = excluded.updated_at
  RETURNING serial_number, first_seen_at, profile_uuid, removed`;

/** ABM servers, their device inventory and their DEP profiles. */
export class AdeStore {
  constructor(private readonly db: Database) {}

  /** Adds a server; false when the name is taken. */
  async createServer(s: { name: string; certPem: string; keySealed: Buffer; certNotAfter: number }, now: number): Promise<boolean> {
    const changed = await this.db.run(
      `INSERT INTO ade_servers (name, cert_pem, key_sealed, cert_not_after, phase, created_at, updated_at) VALUES (?, ?, ?, ?, 'fetch', ?, ?)
       ON CONFLICT (name) DO NOTHING`,
      [s.name, s.certPem, s.keySealed, s.certNotAfter, now, now],
    );
    return changed > 0;
  }

  async server(name: string): Promise<StoredAdeServer | undefined> {
    const row = await this.db.get<ServerRow>(`SELECT ${SERVER_COLUMNS} FROM ade_servers WHERE name = ?`, [name]);
    return row && toServer(row);
  }

  async servers(): Promise<AdeServerInfo[]> {
    const rows = await this.db.all<ServerRow & { devices: number | string; enrolled: number | string }>(
      `SELECT ${SERVER_COLUMNS},
        (SELECT COUNT(*) FROM ade_devices a WHERE a.server_name = s.name AND a.removed = 0) AS devices,
        (SELECT COUNT(*) FROM ade_devices a WHERE a.server_name = s.name AND a.removed = 0
          AND EXISTS (SELECT 1 FROM devices d WHERE d.serial_number = a.serial_number)) AS enrolled
       FROM ade_servers s ORDER BY name`,
    );
    return rows.map((r) => {
      const { keySealed: _k, tokensSealed: _t, ...info } = toServer(r);
      return { ...info, devices: Number(r.devices), enrolled: Number(r.enrolled) };
    });
  }

  async serverInfo(name: string): Promise<AdeServerInfo | undefined> {
    return (await this.servers()).find((s) => s.name === name);
  }

  async removeServer(name: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await tx.run("DELETE FROM ade_enrollments WHERE server_name = ?", [name]);
      await tx.run("DELETE FROM ade_devices WHERE server_name = ?", [name]);
      await tx.run("DELETE FROM ade_profiles WHERE server_name = ?", [name]);
      return (await tx.run("DELETE FROM ade_servers WHERE name = ?", [name])) > 0;
    });
  }

  /** Stores a server token's sealed credentials; a new token clears the expiry notice. */
  async putToken(name: string, t: { tokensSealed: Buffer; consumerKey: string; tokenExpiry: number }, now: number): Promise<boolean> {
    const changed = await this.db.run(
      `UPDATE ade_servers SET tokens_sealed = ?, consumer_key = ?, token_expiry = ?, token_uploaded_at = ?, expiry_notified_at = NULL,
         updated_at = ? WHERE name = ?`,
      [t.tokensSealed, t.consumerKey, t.tokenExpiry, now, now, name],
    );
    return changed > 0;
  }

  async setAccount(name: string, a: { serverUuid?: string; serverName?: string; orgName?: string }, now: number): Promise<void> {
    await this.db.run("UPDATE ade_servers SET server_uuid = ?, server_name = ?, org_name = ?, updated_at = ? WHERE name = ?", [
      a.serverUuid ?? null,
      a.serverName ?? null,
      a.orgName ?? null,
      now,
      name,
    ]);
  }

  async setEnrollmentSettings(name: string, settings: string | null, now: number): Promise<boolean> {
    return (await this.db.run("UPDATE ade_servers SET enrollment_settings = ?, updated_at = ? WHERE name = ?", [settings, now, name])) > 0;
  }

  /** The ABM server that assigns this serial number now (not removed); the latest one if several say so. */
  async assignedServer(serial: string): Promise<string | undefined> {
    const row = await this.db.get<{ server_name: string }>(
      "SELECT server_name FROM ade_devices WHERE serial_number = ? AND removed = 0 ORDER BY updated_at DESC LIMIT 1",
      [serial],
    );
    return row?.server_name;
  }

  async setDefaultProfile(name: string, profile: string | null, now: number): Promise<boolean> {
    return (await this.db.run("UPDATE ade_servers SET default_profile = ?, updated_at = ? WHERE name = ?", [profile, now, name])) > 0;
  }

  /**
   * Takes (or renews) the right to sync this server until now + ttl, unless
   * another holder has it; true when taken. One sync per server at a time,
   * across every process on the store.
   */
  async acquireSync(name: string, holder: string, now: number, ttlMs: number): Promise<boolean> {
    const changed = await this.db.run(
      `UPDATE ade_servers SET sync_holder = ?, sync_until = ?
       WHERE name = ? AND (sync_holder IS NULL OR sync_until <= ? OR sync_holder = ?)`,
      [holder, now + ttlMs, name, now, holder],
    );
    return changed > 0;
  }

  async releaseSync(name: string, holder: string): Promise<void> {
    await this.db.run("UPDATE ade_servers SET sync_holder = NULL, sync_until = NULL WHERE name = ? AND sync_holder = ?", [name, holder]);
  }

  /**
   * One page of Apple's device list, in one transaction: the devices upserted
   * and the cursor (and phase) stored after them, so a failure later keeps
   * this page and resumes after it. Refused (false) when the holder lost the
   * sync lease. Returns the serials seen for the first time and those now
   * without a profile.
   *
   * A page of a full fetch (`fetch`) records on each device the fetch's id,
   * which its first page (`start`) draws and stores on the server. The end of
   * the fetch (`end`: its last page, or Apple's EXHAUSTED_CURSOR after it)
   * marks every device of the server not listed in it removed, as a 'deleted'
   * op (op_date now), and returns their serials in `removed`; a fetch begun
   * without an id (before migration 25) marks nothing. A fetch that stops
   * half-way never reaches its end: it marks nothing.
   */
  async applyPage(
    name: string,
    holder: string,
    page: {
      devices: readonly AdeDeviceRecord[];
      cursor: string | null;
      phase: "fetch" | "sync";
      fetch?: { start: boolean; end: boolean };
    },
    now: number,
  ): Promise<{ applied: boolean; firstSeen: string[]; withoutProfile: string[]; removed: string[] }> {
    // One row per serial and statement: the last record of a serial in the page wins (they come in time order).
    const bySerial = new Map<string, AdeDeviceRecord>();
    for (const d of page.devices) {
      bySerial.delete(d.serialNumber);
      bySerial.set(d.serialNumber, d);
    }
    return this.db.transaction(async (tx) => {
      const held = await tx.run("UPDATE ade_servers SET cursor = ?, phase = ?, updated_at = ? WHERE name = ? AND sync_holder = ?", [
        page.cursor,
        page.phase,
        now,
        name,
        holder,
      ]);
      if (held === 0) return { applied: false, firstSeen: [], withoutProfile: [], removed: [] };
      let fetchId: string | null = null;
      if (page.fetch?.start) {
        fetchId = randomUUID();
        await tx.run("UPDATE ade_servers SET fetch_id = ? WHERE name = ?", [fetchId, name]);
      } else if (page.fetch) {
        fetchId = (await tx.get<{ fetch_id: string | null }>("SELECT fetch_id FROM ade_servers WHERE name = ?", [name]))?.fetch_id ?? null;
      }
      const firstSeen: string[] = [];
      const withoutProfile: string[] = [];
      for (const chunk of chunks([...bySerial.values()], ROWS_PER_UPSERT)) {
        const rowSql = `(${DEVICE_INSERT_COLUMNS.map(() => "?").join(", ")})`;
        const rows = await tx.all<{ serial_number: string; first_seen_at: number | string; profile_uuid: string | null; removed: number }>(
          `INSERT INTO ade_devices (${DEVICE_INSERT_COLUMNS.join(", ")}) VALUES ${chunk.map(() => rowSql).join(", ")} ${UPSERT_TAIL}`,
          chunk.flatMap((d) => deviceParams(name, d, fetchId, now)),
        );
        for (const r of rows) {
          if (Number(r.first_seen_at) === now) firstSeen.push(r.serial_number);
          if (Number(r.removed) === 0 && (r.profile_uuid === null || r.profile_uuid === "")) withoutProfile.push(r.serial_number);
        }
      }
      let removed: string[] = [];
      if (page.fetch?.end) {
        if (fetchId !== null) {
          const rows = await tx.all<{ serial_number: string }>(
            `UPDATE ade_devices SET removed = 1, op_type = 'deleted', op_date = ?, updated_at = ?
             WHERE server_name = ? AND removed = 0 AND (fetch_id IS NULL OR fetch_id <> ?) RETURNING serial_number`,
            [now, now, name, fetchId],
          );
          removed = rows.map((r) => r.serial_number).sort();
        }
        await tx.run("UPDATE ade_servers SET fetch_id = NULL WHERE name = ?", [name]);
      }
      return { applied: true, firstSeen, withoutProfile, removed };
    });
  }

  /** Restarts the device list from a full fetch (after INVALID_CURSOR or EXPIRED_CURSOR); a fetch under way is abandoned. */
  async resetCursor(name: string, holder: string, now: number): Promise<void> {
    await this.db.run(
      "UPDATE ade_servers SET cursor = NULL, phase = 'fetch', fetch_id = NULL, updated_at = ? WHERE name = ? AND sync_holder = ?",
      [now, name, holder],
    );
  }

  async finishSync(name: string, error: string | null, now: number): Promise<void> {
    await this.db.run("UPDATE ade_servers SET last_sync_at = ?, last_sync_error = ? WHERE name = ?", [now, error, name]);
  }

  /**
   * Records that these devices now have this profile (Apple said SUCCESS).
   * The serials come as a VALUES list, not `IN (?, ...)`: with a plain IN of
   * 500 parameters PostgreSQL took 1 to 3 s per statement on a freshly synced
   * inventory (bench/ade-sync.ts: 500 s to assign 100,000 devices), with the
   * VALUES list 40 to 100 ms; SQLite is fast either way.
   */
  async markAssigned(name: string, serials: readonly string[], profileUuid: string, now: number): Promise<void> {
    for (const chunk of chunks(serials, 500)) {
      await this.db.run(
        `UPDATE ade_devices SET profile_uuid = ?, profile_status = 'assigned', profile_assign_time = ?, updated_at = ?
         WHERE server_name = ? AND serial_number IN (SELECT column1 FROM (VALUES ${chunk.map(() => "(CAST(? AS TEXT))").join(", ")}) AS v)`,
        [profileUuid, now, now, name, ...chunk],
      );
    }
  }

  async devices(filter: AdeDeviceFilter): Promise<AdeDevice[]> {
    const where: string[] = [];
    const params: SqlParam[] = [];
    if (filter.server !== undefined) where.push("a.server_name = ?"), params.push(filter.server);
    if (filter.serial !== undefined) where.push("a.serial_number = ?"), params.push(filter.serial);
    if (filter.profileStatus !== undefined) where.push("a.profile_status = ?"), params.push(filter.profileStatus);
    if (filter.removed !== undefined) where.push("a.removed = ?"), params.push(filter.removed ? 1 : 0);
    if (filter.enrolled !== undefined)
      where.push(`${filter.enrolled ? "" : "NOT "}EXISTS (SELECT 1 FROM devices d WHERE d.serial_number = a.serial_number)`);
    if (filter.after !== undefined) {
      const slash = filter.after.indexOf("/");
      where.push("(a.server_name > ? OR (a.server_name = ? AND a.serial_number > ?))");
      params.push(filter.after.slice(0, slash), filter.after.slice(0, slash), filter.after.slice(slash + 1));
    }
    const rows = await this.db.all<DeviceRow>(
      `SELECT a.*, CASE WHEN EXISTS (SELECT 1 FROM devices d WHERE d.serial_number = a.serial_number) THEN 1 ELSE 0 END AS enrolled
       FROM ade_devices a ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY a.server_name, a.serial_number LIMIT ?`,
      [...params, filter.limit],
    );
    return rows.map(toDevice);
  }

  /** Stores a profile; a changed body forgets its profile UUID (it is defined again). True when new. */
  async putProfile(server: string, name: string, body: string, now: number): Promise<boolean> {
    const row = await this.db.get<{ created_at: number | string }>(
      `INSERT INTO ade_profiles (server_name, name, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (server_name, name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at,
         profile_uuid = CASE WHEN ade_profiles.body = excluded.body THEN ade_profiles.profile_uuid ELSE NULL END,
         defined_at = CASE WHEN ade_profiles.body = excluded.body THEN ade_profiles.defined_at ELSE NULL END
       RETURNING created_at`,
      [server, name, body, now, now],
    );
    return Number(row!.created_at) === now;
  }

  async profile(server: string, name: string): Promise<StoredAdeProfile | undefined> {
    const row = await this.db.get<ProfileRow>("SELECT * FROM ade_profiles WHERE server_name = ? AND name = ?", [server, name]);
    return row && toProfile(row);
  }

  async profiles(server: string): Promise<StoredAdeProfile[]> {
    const rows = await this.db.all<ProfileRow>("SELECT * FROM ade_profiles WHERE server_name = ? ORDER BY name", [server]);
    return rows.map(toProfile);
  }

  /** Records Apple's UUID for the profile, unless its body changed since it was sent. */
  async profileDefined(server: string, name: string, body: string, profileUuid: string, now: number): Promise<void> {
    await this.db.run("UPDATE ade_profiles SET profile_uuid = ?, defined_at = ? WHERE server_name = ? AND name = ? AND body = ?", [
      profileUuid,
      now,
      server,
      name,
      body,
    ]);
  }

  async removeProfile(server: string, name: string): Promise<boolean> {
    return (await this.db.run("DELETE FROM ade_profiles WHERE server_name = ? AND name = ?", [server, name])) > 0;
  }

  /** Token expiry of every server with a token (metrics, expiry check). */
  async tokenExpiries(): Promise<Array<{ name: string; tokenExpiry: number; consumerKey: string }>> {
    const rows = await this.db.all<{ name: string; token_expiry: number | string; consumer_key: string }>(
      "SELECT name, token_expiry, consumer_key FROM ade_servers WHERE token_expiry IS NOT NULL ORDER BY name",
    );
    return rows.map((r) => ({ name: r.name, tokenExpiry: Number(r.token_expiry), consumerKey: r.consumer_key }));
  }

  /**
   * Claims the expiry notice of this token (once per token, whichever process
   * comes first): true when this call claimed it. The caller records the
   * event in the same transaction.
   */
  async claimExpiryNotice(name: string, tokenExpiry: number, now: number): Promise<boolean> {
    const claimed = await this.db.run(
      "UPDATE ade_servers SET expiry_notified_at = ? WHERE name = ? AND token_expiry = ? AND expiry_notified_at IS NULL",
      [now, name, tokenExpiry],
    );
    return claimed > 0;
  }
}

function deviceParams(server: string, d: AdeDeviceRecord, fetchId: string | null, now: number): SqlParam[] {
  const removed = d.opType === "deleted" || d.opType === "removed" ? 1 : 0;
  return [
    server,
    d.serialNumber,
    d.model ?? null,
    d.description ?? null,
    d.color ?? null,
    d.assetTag ?? null,
    d.os ?? null,
    d.deviceFamily ?? null,
    d.profileStatus ?? null,
    d.profileUuid ?? null,
    d.profileAssignTime ?? null,
    d.profilePushTime ?? null,
    d.deviceAssignedBy ?? null,
    d.deviceAssignedDate ?? null,
    d.opType ?? null,
    d.opDate ?? null,
    removed,
    fetchId,
    now,
    now,
  ];
}

type Num = number | string | null;

interface ServerRow {
  name: string;
  cert_pem: string;
  key_sealed: Buffer;
  cert_not_after: number | string;
  tokens_sealed: Buffer | null;
  consumer_key: string | null;
  token_expiry: Num;
  token_uploaded_at: Num;
  server_uuid: string | null;
  server_name: string | null;
  org_name: string | null;
  cursor: string | null;
  phase: string;
  last_sync_at: Num;
  last_sync_error: string | null;
  default_profile: string | null;
  enrollment_settings: string | null;
  created_at: number | string;
  updated_at: number | string;
}

interface DeviceRow {
  server_name: string;
  serial_number: string;
  model: string | null;
  description: string | null;
  color: string | null;
  asset_tag: string | null;
  os: string | null;
  device_family: string | null;
  profile_status: string | null;
  profile_uuid: string | null;
  profile_assign_time: Num;
  profile_push_time: Num;
  device_assigned_by: string | null;
  device_assigned_date: Num;
  op_type: string | null;
  op_date: Num;
  removed: number | string;
  enrolled: number | string;
  first_seen_at: number | string;
  updated_at: number | string;
}

interface ProfileRow {
  server_name: string;
  name: string;
  body: string;
  profile_uuid: string | null;
  defined_at: Num;
  created_at: number | string;
  updated_at: number | string;
}

const num = (v: Num): number | null => (v === null ? null : Number(v));
const opt = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

function toServer(r: ServerRow): StoredAdeServer {
  return {
    name: r.name,
    certPem: r.cert_pem,
    keySealed: Buffer.from(r.key_sealed),
    certNotAfter: Number(r.cert_not_after),
    tokensSealed: r.tokens_sealed === null ? null : Buffer.from(r.tokens_sealed),
    consumerKey: r.consumer_key,
    tokenExpiry: num(r.token_expiry),
    tokenUploadedAt: num(r.token_uploaded_at),
    serverUuid: r.server_uuid,
    serverName: r.server_name,
    orgName: r.org_name,
    cursor: r.cursor,
    phase: r.phase === "sync" ? "sync" : "fetch",
    lastSyncAt: num(r.last_sync_at),
    lastSyncError: r.last_sync_error,
    defaultProfile: r.default_profile,
    enrollmentSettings: r.enrollment_settings,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

function toDevice(r: DeviceRow): AdeDevice {
  return {
    serverName: r.server_name,
    serialNumber: r.serial_number,
    model: opt(r.model),
    description: opt(r.description),
    color: opt(r.color),
    assetTag: opt(r.asset_tag),
    os: opt(r.os),
    deviceFamily: opt(r.device_family),
    profileStatus: opt(r.profile_status),
    profileUuid: opt(r.profile_uuid),
    profileAssignTime: opt(num(r.profile_assign_time)),
    profilePushTime: opt(num(r.profile_push_time)),
    deviceAssignedBy: opt(r.device_assigned_by),
    deviceAssignedDate: opt(num(r.device_assigned_date)),
    opType: opt(r.op_type),
    opDate: opt(num(r.op_date)),
    removed: Number(r.removed) === 1,
    enrolled: Number(r.enrolled) === 1,
    firstSeenAt: Number(r.first_seen_at),
    updatedAt: Number(r.updated_at),
  };
}

function toProfile(r: ProfileRow): StoredAdeProfile {
  return {
    serverName: r.server_name,
    name: r.name,
    body: r.body,
    profileUuid: r.profile_uuid,
    definedAt: num(r.defined_at),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}
