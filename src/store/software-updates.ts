import type { Database, Sql } from "./db.ts";
import { dueIds } from "./ddm.ts";
import { chunks } from "./enrollments.ts";

// OS updates through DDM (src/updates/): the software lookup feed's last good
// copy, the operators' update policies, and each device channel's target and
// compliance state. The targets themselves are DDM declarations in built-in
// sets (store/ddm.ts); update_devices says which set each device is in.

export interface FeedRow {
  url: string | null;
  /** The releases as Orchard read them (JSON text); null before the first good copy. */
  releases: string | null;
  sha256: string | null;
  fetchedAt: number | null;
  attemptedAt: number | null;
  /** The last attempt's error, when it failed (the good copy stays). */
  error: string | null;
  errorAt: number | null;
}

export type PolicyScope = "all" | "set" | "ids";
export type PolicyMode = "latest" | "version";

export interface StoredPolicy {
  name: string;
  platform: string;
  scope: PolicyScope;
  scopeSet: string | null;
  mode: PolicyMode;
  targetOsVersion: string | null;
  targetBuildVersion: string | null;
  targetLocalDateTime: string | null;
  deadlineDays: number | null;
  deadlineTime: string | null;
  detailsUrl: string | null;
  /** The softwareupdate.settings Payload, JSON text; null: none. */
  settings: string | null;
  createdAt: number;
  updatedAt: number;
}

/** What Orchard knows of a device channel to pick its target (from its inventory record). */
export interface DeviceFacts {
  enrollmentId: string;
  platform: string;
  /** The product type: Mac14,2, iPhone15,2 (null: unknown). */
  productType: string | null;
  /** The software update device id Apple's feed lists Macs by (J413AP; softwareupdate.device-id, SoftwareUpdateDeviceID). */
  softwareUpdateDeviceId: string | null;
  osVersion: string | null;
  buildVersion: string | null;
  /** Its IANA time zone (DeviceInformation's TimeZone; null: not known, as on every Mac): the deadline's clock. */
  timeZone: string | null;
  /** Its softwareupdate.* status. */
  status: UpdateStatus;
}

/** The softwareupdate.* status items a device reported (its inventory record). */
export interface UpdateStatus {
  installState: string | null;
  pendingVersion: string | null;
  failureReason: string | null;
  failureCount: number | null;
}

export interface UpdateDeviceRow {
  enrollmentId: string;
  policy: string;
  targetSet: string | null;
  osVersion: string | null;
  buildVersion: string | null;
  localDateTime: string | null;
  deadlineAt: number | null;
  state: string;
  reason: string | null;
  failedNotified: boolean;
  overdueNotified: boolean;
  /** When Orchard asked the device for its time zone (updates/zone-ask.ts); null: not for this target. */
  zoneAskedAt: number | null;
  updatedAt: number;
}

const POLICY_COLUMNS =
  "name, platform, scope, scope_set, mode, target_os_version, target_build_version, target_local_date_time, deadline_days, deadline_time, details_url, settings, created_at, updated_at";
const DEVICE_COLUMNS =
  "enrollment_id, policy, target_set, os_version, build_version, local_date_time, deadline_at, state, reason, failed_notified, overdue_notified, zone_asked_at, updated_at";

/**
 * THE one place device facts and update status are read for updates: the
 * device's inventory record (store/inventory.ts), which keeps the latest
 * value of each field from whichever message brought it (Authenticate, a
 * DeviceInformation result, a DDM status report). The product type is the
 * model identifier (product_name, Mac14,2), else Authenticate's Model.
 */
const FACTS_SQL = `SELECT e.id, i.platform, i.product_name, i.model, i.update_device_id, i.os_version, i.build_version, i.time_zone,
  i.update_install_state, i.update_pending_version, i.update_failure_reason, i.update_failure_count
  FROM enrollments e JOIN inventory i ON i.device_id = e.device_id
  WHERE e.type = 'Device' AND e.enabled = 1`;

interface FactsRow {
  id: string;
  platform: string | null;
  product_name: string | null;
  model: string | null;
  update_device_id: string | null;
  os_version: string | null;
  build_version: string | null;
  time_zone: string | null;
  update_install_state: string | null;
  update_pending_version: string | null;
  update_failure_reason: string | null;
  update_failure_count: number | string | null;
}

export class SoftwareUpdateStore {
  constructor(private readonly db: Database) {}

  // ---- the feed

  async feed(): Promise<FeedRow> {
    const r = await this.db.get<{
      url: string | null;
      releases: string | null;
      sha256: string | null;
      fetched_at: number | null;
      attempted_at: number | null;
      error: string | null;
      error_at: number | null;
    }>("SELECT url, releases, sha256, fetched_at, attempted_at, error, error_at FROM software_lookup_feed WHERE id = 1");
    return {
      url: r?.url ?? null,
      releases: r?.releases ?? null,
      sha256: r?.sha256 ?? null,
      fetchedAt: num(r?.fetched_at),
      attemptedAt: num(r?.attempted_at),
      error: r?.error ?? null,
      errorAt: num(r?.error_at),
    };
  }

  /** A good copy: stored; true when its releases differ from the copy before (only one process sees true for one change). */
  async saveFeed(url: string, releases: string, sha256: string, now: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const changed = await tx.run(
        "UPDATE software_lookup_feed SET releases = ?, sha256 = ? WHERE id = 1 AND (sha256 IS NULL OR sha256 <> ?)",
        [releases, sha256, sha256],
      );
      await tx.run(
        "UPDATE software_lookup_feed SET url = ?, fetched_at = ?, attempted_at = ?, error = NULL, error_at = NULL WHERE id = 1",
        [url, now, now],
      );
      return changed > 0;
    });
  }

  /** A failed refresh: the error is kept beside the last good copy, which stays. */
  async feedFailed(url: string, error: string, now: number): Promise<void> {
    await this.db.run("UPDATE software_lookup_feed SET url = COALESCE(url, ?), attempted_at = ?, error = ?, error_at = ? WHERE id = 1", [
      url,
      now,
      error,
      now,
    ]);
  }

  /** One process re-targets devices at a time: true when `holder` has the lease until now + ms. */
  async takeLease(holder: string, now: number, ms: number): Promise<boolean> {
    const n = await this.db.run(
      "UPDATE software_lookup_feed SET lease_holder = ?, lease_until = ? WHERE id = 1 AND (lease_until IS NULL OR lease_until < ? OR lease_holder = ?)",
      [holder, now + ms, now, holder],
    );
    return n > 0;
  }

  async releaseLease(holder: string): Promise<void> {
    await this.db.run("UPDATE software_lookup_feed SET lease_until = NULL WHERE id = 1 AND lease_holder = ?", [holder]);
  }

  // ---- policies

  async policies(): Promise<StoredPolicy[]> {
    return (await this.db.all<PolicyRow>(`SELECT ${POLICY_COLUMNS} FROM update_policies ORDER BY name`)).map(policyOf);
  }

  async policy(name: string): Promise<StoredPolicy | undefined> {
    const r = await this.db.get<PolicyRow>(`SELECT ${POLICY_COLUMNS} FROM update_policies WHERE name = ?`, [name]);
    return r && policyOf(r);
  }

  /** Creates or replaces a policy (its id list too, when its scope is ids); true when it was created. */
  async putPolicy(p: Omit<StoredPolicy, "createdAt" | "updatedAt">, ids: readonly string[], now: number): Promise<boolean> {
    const tx = this.db;
    const had = await tx.get("SELECT 1 AS x FROM update_policies WHERE name = ?", [p.name]);
    await tx.run(
      `INSERT INTO update_policies (${POLICY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET platform = excluded.platform, scope = excluded.scope, scope_set = excluded.scope_set,
         mode = excluded.mode, target_os_version = excluded.target_os_version, target_build_version = excluded.target_build_version,
         target_local_date_time = excluded.target_local_date_time, deadline_days = excluded.deadline_days,
         deadline_time = excluded.deadline_time, details_url = excluded.details_url, settings = excluded.settings,
         updated_at = excluded.updated_at`,
      [
        p.name,
        p.platform,
        p.scope,
        p.scopeSet,
        p.mode,
        p.targetOsVersion,
        p.targetBuildVersion,
        p.targetLocalDateTime,
        p.deadlineDays,
        p.deadlineTime,
        p.detailsUrl,
        p.settings,
        now,
        now,
      ],
    );
    await tx.run("DELETE FROM update_policy_enrollments WHERE policy = ?", [p.name]);
    for (const chunk of chunks(ids, 400)) {
      await tx.run(
        `INSERT INTO update_policy_enrollments (policy, enrollment_id) VALUES ${chunk.map(() => "(?, ?)").join(", ")}
         ON CONFLICT (policy, enrollment_id) DO NOTHING`,
        chunk.flatMap((id) => [p.name, id]),
      );
    }
    return !had;
  }

  /** Removes a policy and its id list (its devices leave its sets at the next re-targeting). */
  async deletePolicy(name: string): Promise<boolean> {
    const tx = this.db;
    await tx.run("DELETE FROM update_policy_enrollments WHERE policy = ?", [name]);
    return (await tx.run("DELETE FROM update_policies WHERE name = ?", [name])) > 0;
  }

  /** A policy's id list (among these ids only, when given). */
  async policyIds(name: string, among?: readonly string[]): Promise<string[]> {
    const sql = "SELECT enrollment_id FROM update_policy_enrollments WHERE policy = ?";
    return this.among(sql, [name], among);
  }

  /** How many of a policy's listed ids are no enrolled device channel of its platform (as deviceFacts reads them). */
  async policyIdsNotReached(name: string, platform: string): Promise<number> {
    const row = await this.db.get<{ n: number | string }>(
      `SELECT COUNT(*) AS n FROM update_policy_enrollments p WHERE p.policy = ? AND NOT EXISTS (
         SELECT 1 FROM enrollments e JOIN inventory i ON i.device_id = e.device_id
         WHERE e.id = p.enrollment_id AND e.type = 'Device' AND e.enabled = 1 AND i.platform = ?)`,
      [name, platform],
    );
    return Number(row?.n ?? 0);
  }

  async policyIdCount(name: string): Promise<number> {
    return Number(
      (await this.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM update_policy_enrollments WHERE policy = ?", [name]))?.n ?? 0,
    );
  }

  /** The channels holding a DDM set (a policy's scope "set"). */
  async setEnrollments(set: string, among?: readonly string[]): Promise<string[]> {
    return this.among("SELECT enrollment_id FROM ddm_enrollment_sets WHERE set_name = ?", [set], among);
  }

  /** The enrollment_id column of a query, all of it or among these ids. */
  private async among(sql: string, params: string[], among: readonly string[] | undefined): Promise<string[]> {
    if (!among) return (await this.db.all<{ enrollment_id: string }>(sql, params)).map((r) => r.enrollment_id);
    const out: string[] = [];
    for (const chunk of chunks(among, 500)) {
      const rows = await this.db.all<{ enrollment_id: string }>(`${sql} AND enrollment_id IN (${chunk.map(() => "?").join(", ")})`, [
        ...params,
        ...chunk,
      ]);
      out.push(...rows.map((r) => r.enrollment_id));
    }
    return out;
  }

  // ---- devices' facts and status

  /** The facts of the device channels of a platform enrolled now, in id order after `after` (one page). */
  async deviceFacts(platform: string, after: string, limit: number): Promise<DeviceFacts[]> {
    const rows = await this.db.all<FactsRow>(`${FACTS_SQL} AND i.platform = ? AND e.id > ? ORDER BY e.id LIMIT ?`, [
      platform,
      after,
      limit,
    ]);
    return rows.map(factsOf);
  }

  /** One channel's facts (undefined: not an enrolled device channel). */
  async deviceFactsOf(enrollmentId: string): Promise<DeviceFacts | undefined> {
    const r = await this.db.get<FactsRow>(`${FACTS_SQL} AND e.id = ?`, [enrollmentId]);
    return r && factsOf(r);
  }

  /** The facts of those of these channels that are enrolled device channels. */
  async deviceFactsIn(enrollmentIds: readonly string[]): Promise<DeviceFacts[]> {
    const out: DeviceFacts[] = [];
    for (const chunk of chunks(enrollmentIds, 500)) {
      const rows = await this.db.all<FactsRow>(`${FACTS_SQL} AND e.id IN (${chunk.map(() => "?").join(", ")})`, chunk);
      out.push(...rows.map(factsOf));
    }
    return out;
  }

  /** The softwareupdate.* status of these channels, from their devices' inventory (absent: not an enrolled device channel). */
  async updateStatuses(enrollmentIds: readonly string[]): Promise<Map<string, UpdateStatus>> {
    const out = new Map<string, UpdateStatus>();
    for (const chunk of chunks(enrollmentIds, 500)) {
      const rows = await this.db.all<FactsRow>(`${FACTS_SQL} AND e.id IN (${chunk.map(() => "?").join(", ")})`, chunk);
      for (const r of rows) out.set(r.id, statusOf(r));
    }
    return out;
  }

  // ---- update_devices

  /** Every device's row, or these devices' rows. */
  async devices(among?: readonly string[]): Promise<Map<string, UpdateDeviceRow>> {
    const sql = `SELECT ${DEVICE_COLUMNS} FROM update_devices`;
    if (!among) return new Map((await this.db.all<DeviceRow>(sql)).map((r) => [r.enrollment_id, deviceOf(r)]));
    const out = new Map<string, UpdateDeviceRow>();
    for (const chunk of chunks(among, 500)) {
      const rows = await this.db.all<DeviceRow>(`${sql} WHERE enrollment_id IN (${chunk.map(() => "?").join(", ")})`, chunk);
      for (const r of rows) out.set(r.enrollment_id, deviceOf(r));
    }
    return out;
  }

  async device(enrollmentId: string): Promise<UpdateDeviceRow | undefined> {
    const r = await this.db.get<DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM update_devices WHERE enrollment_id = ?`, [enrollmentId]);
    return r && deviceOf(r);
  }

  /** A policy's devices, in id order after `after`, of one state when given. */
  async policyDevices(policy: string, state: string | undefined, after: string, limit: number): Promise<UpdateDeviceRow[]> {
    const rows = await this.db.all<DeviceRow>(
      `SELECT ${DEVICE_COLUMNS} FROM update_devices WHERE policy = ? AND enrollment_id > ?${state ? " AND state = ?" : ""}
       ORDER BY enrollment_id LIMIT ?`,
      state ? [policy, after, state, limit] : [policy, after, limit],
    );
    return rows.map(deviceOf);
  }

  /** How many of a policy's devices are in each state. */
  async policyCounts(policy: string): Promise<Record<string, number>> {
    const rows = await this.db.all<{ state: string; n: number }>(
      "SELECT state, COUNT(*) AS n FROM update_devices WHERE policy = ? GROUP BY state",
      [policy],
    );
    return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
  }

  /** Writes these rows whole (a new target clears the told flags: the caller says so); a transaction per 4,000 rows. */
  async putDevices(rows: readonly UpdateDeviceRow[]): Promise<void> {
    for (const batch of chunks(rows, 4000)) await this.db.transaction((tx) => this.putDeviceRows(tx, batch));
  }

  private async putDeviceRows(tx: Sql, rows: readonly UpdateDeviceRow[]): Promise<void> {
    for (const chunk of chunks(rows, 80)) {
      await tx.run(
        `INSERT INTO update_devices (${DEVICE_COLUMNS}) VALUES ${chunk.map(() => "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").join(", ")}
         ON CONFLICT (enrollment_id) DO UPDATE SET policy = excluded.policy, target_set = excluded.target_set,
           os_version = excluded.os_version, build_version = excluded.build_version, local_date_time = excluded.local_date_time,
           deadline_at = excluded.deadline_at, state = excluded.state, reason = excluded.reason,
           failed_notified = excluded.failed_notified, overdue_notified = excluded.overdue_notified,
           zone_asked_at = excluded.zone_asked_at, updated_at = excluded.updated_at`,
        chunk.flatMap((r) => [
          r.enrollmentId,
          r.policy,
          r.targetSet,
          r.osVersion,
          r.buildVersion,
          r.localDateTime,
          r.deadlineAt,
          r.state,
          r.reason,
          r.failedNotified ? 1 : 0,
          r.overdueNotified ? 1 : 0,
          r.zoneAskedAt,
          r.updatedAt,
        ]),
      );
    }
  }

  async deleteDevices(enrollmentIds: readonly string[]): Promise<void> {
    for (const batch of chunks(enrollmentIds, 4000)) {
      await this.db.transaction(async (tx) => {
        for (const chunk of chunks(batch, 500)) {
          await tx.run(`DELETE FROM update_devices WHERE enrollment_id IN (${chunk.map(() => "?").join(", ")})`, chunk);
        }
      });
    }
  }

  /**
   * Makes the channels of the built-in update sets (names from `prefix`)
   * what update_devices says: each device in its policy's set (prefix +
   * policy) and its target's set, in no other. Set-based: one statement adds
   * what is missing, then one removes what is left over, whatever the number
   * of devices (new sets before old ones: a device syncing between the two
   * never lacks a target). Each channel that gained or lost a set is due for
   * a sync at dueAt. `only`: these channels alone (one device re-targeted).
   */
  async applyMemberships(
    prefix: string,
    now: number,
    dueAt: number,
    only?: readonly string[],
  ): Promise<{ added: number; removed: number }> {
    if (only?.length === 0) return { added: 0, removed: 0 };
    const ids = only ? ` AND u.enrollment_id IN (${only.map(() => "?").join(", ")})` : "";
    const given = only ?? [];
    return this.db.transaction(async (tx) => {
      const added = [
        ...(await tx.all<{ enrollment_id: string }>(
          `INSERT INTO ddm_enrollment_sets (enrollment_id, set_name, created_at)
           SELECT u.enrollment_id, ? || u.policy, ? FROM update_devices u WHERE 1 = 1${ids}
           ON CONFLICT (enrollment_id, set_name) DO NOTHING RETURNING enrollment_id`,
          [prefix, now, ...given],
        )),
        ...(await tx.all<{ enrollment_id: string }>(
          `INSERT INTO ddm_enrollment_sets (enrollment_id, set_name, created_at)
           SELECT u.enrollment_id, u.target_set, ? FROM update_devices u WHERE u.target_set IS NOT NULL${ids}
           ON CONFLICT (enrollment_id, set_name) DO NOTHING RETURNING enrollment_id`,
          [now, ...given],
        )),
      ];
      const removed = await tx.all<{ enrollment_id: string }>(
        `DELETE FROM ddm_enrollment_sets WHERE set_name >= ? AND set_name < ?${ids.replace("u.enrollment_id", "enrollment_id")}
           AND NOT EXISTS (SELECT 1 FROM update_devices u WHERE u.enrollment_id = ddm_enrollment_sets.enrollment_id
             AND (u.target_set = ddm_enrollment_sets.set_name OR ? || u.policy = ddm_enrollment_sets.set_name))
         RETURNING enrollment_id`,
        [prefix, `${prefix}\uffff`, ...given, prefix],
      );
      await dueIds(tx, [...new Set([...added, ...removed].map((r) => r.enrollment_id))], dueAt);
      return { added: added.length, removed: removed.length };
    });
  }

  async setState(enrollmentId: string, state: string, reason: string | null, now: number): Promise<void> {
    await this.db.run("UPDATE update_devices SET state = ?, reason = ?, updated_at = ? WHERE enrollment_id = ?", [
      state,
      reason,
      now,
      enrollmentId,
    ]);
  }

  /**
   * Marks a device's failure, or its missed deadline, told: true only for the
   * call that marked it (the caller then records the event, in the same
   * transaction), so each is told once per target, by one process.
   */
  /**
   * Records that a device is told of a failure of this version, or of a missed
   * deadline of this version and deadline ("" for a failure): true the first
   * time, false when it was told before (one insert; safe with many processes).
   */
  async toldOnce(enrollmentId: string, what: "failed" | "overdue", osVersion: string, deadline: string, now: number): Promise<boolean> {
    const rows = await this.db.all<{ enrollment_id: string }>(
      `INSERT INTO update_told (enrollment_id, kind, os_version, deadline, told_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (enrollment_id, kind, os_version, deadline) DO NOTHING RETURNING enrollment_id`,
      [enrollmentId, what, osVersion, deadline, now],
    );
    return rows.length > 0;
  }

  async markTold(enrollmentId: string, what: "failed" | "overdue"): Promise<boolean> {
    const column = what === "failed" ? "failed_notified" : "overdue_notified";
    return (await this.db.run(`UPDATE update_devices SET ${column} = 1 WHERE enrollment_id = ? AND ${column} = 0`, [enrollmentId])) > 0;
  }

  /**
   * Marks these devices asked for their time zone now, those not asked yet
   * (the caller then queues the DeviceInformation, in the same transaction):
   * the ids it marked, so each device is asked once, by one process.
   */
  async markZoneAsked(enrollmentIds: readonly string[], now: number): Promise<string[]> {
    const out: string[] = [];
    for (const chunk of chunks(enrollmentIds, 500)) {
      const rows = await this.db.all<{ enrollment_id: string }>(
        `UPDATE update_devices SET zone_asked_at = ? WHERE enrollment_id IN (${chunk.map(() => "?").join(", ")}) AND zone_asked_at IS NULL
         RETURNING enrollment_id`,
        [now, ...chunk],
      );
      out.push(...rows.map((r) => r.enrollment_id));
    }
    return out;
  }

  /** Devices with a target whose deadline passed and whose missed deadline was not told yet. */
  async pastDeadline(now: number, limit: number): Promise<UpdateDeviceRow[]> {
    const rows = await this.db.all<DeviceRow>(
      `SELECT ${DEVICE_COLUMNS} FROM update_devices WHERE deadline_at <= ? AND overdue_notified = 0 AND target_set IS NOT NULL
       ORDER BY deadline_at LIMIT ?`,
      [now, limit],
    );
    return rows.map(deviceOf);
  }

  /** The built-in sets that still hold declarations, by name prefix (to remove those no device uses). */
  async setsNamed(prefix: string): Promise<string[]> {
    const rows = await this.db.all<{ set_name: string }>(
      "SELECT DISTINCT set_name FROM ddm_set_declarations WHERE set_name >= ? AND set_name < ? ORDER BY set_name",
      [prefix, `${prefix}\uffff`],
    );
    return rows.map((r) => r.set_name);
  }
}

interface PolicyRow {
  name: string;
  platform: string;
  scope: PolicyScope;
  scope_set: string | null;
  mode: PolicyMode;
  target_os_version: string | null;
  target_build_version: string | null;
  target_local_date_time: string | null;
  deadline_days: number | null;
  deadline_time: string | null;
  details_url: string | null;
  settings: string | null;
  created_at: number;
  updated_at: number;
}

function policyOf(r: PolicyRow): StoredPolicy {
  return {
    name: r.name,
    platform: r.platform,
    scope: r.scope,
    scopeSet: r.scope_set,
    mode: r.mode,
    targetOsVersion: r.target_os_version,
    targetBuildVersion: r.target_build_version,
    targetLocalDateTime: r.target_local_date_time,
    deadlineDays: num(r.deadline_days),
    deadlineTime: r.deadline_time,
    detailsUrl: r.details_url,
    settings: r.settings,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

interface DeviceRow {
  enrollment_id: string;
  policy: string;
  target_set: string | null;
  os_version: string | null;
  build_version: string | null;
  local_date_time: string | null;
  deadline_at: number | null;
  state: string;
  reason: string | null;
  failed_notified: number;
  overdue_notified: number;
  zone_asked_at: number | null;
  updated_at: number;
}

function deviceOf(r: DeviceRow): UpdateDeviceRow {
  return {
    enrollmentId: r.enrollment_id,
    policy: r.policy,
    targetSet: r.target_set,
    osVersion: r.os_version,
    buildVersion: r.build_version,
    localDateTime: r.local_date_time,
    deadlineAt: num(r.deadline_at),
    state: r.state,
    reason: r.reason,
    failedNotified: Number(r.failed_notified) === 1,
    overdueNotified: Number(r.overdue_notified) === 1,
    zoneAskedAt: num(r.zone_asked_at),
    updatedAt: Number(r.updated_at),
  };
}

function factsOf(r: FactsRow): DeviceFacts {
  return {
    enrollmentId: r.id,
    platform: r.platform ?? "",
    productType: r.product_name || r.model || null,
    softwareUpdateDeviceId: r.update_device_id || null,
    osVersion: r.os_version || null,
    buildVersion: r.build_version || null,
    timeZone: r.time_zone || null,
    status: statusOf(r),
  };
}

function statusOf(r: FactsRow): UpdateStatus {
  return {
    installState: r.update_install_state,
    pendingVersion: r.update_pending_version || null,
    failureReason: r.update_failure_reason,
    failureCount: num(r.update_failure_count),
  };
}

function num(v: number | string | null | undefined): number | null {
  return v === null || v === undefined ? null : Number(v);
}
