import type { Sql } from "./db.ts";

// Figures read at scrape time (/metrics): cheap, bounded queries.
// Enrollments by type and platform read every enrollment and its device once
// per scrape (the caller caches the figures a few seconds); the queue's two
// figures walk only active rows, through the partial index command_queue_next.
// DDM's figures: the rows of ddm_sync_due (few: a sweep claims them within a
// second) and one pass over the declaration states channels reported.

export interface QueueStats {
  depth: number;
  /** Milliseconds since epoch of the oldest active row; undefined when the queue is empty. */
  oldestCreatedAt: number | undefined;
}

export const ENROLLMENTS_BY_TYPE_SQL =
  "SELECT e.type, d.platform, COUNT(*) AS n FROM enrollments e JOIN devices d ON d.id = e.device_id GROUP BY e.type, d.platform";
export const QUEUE_STATS_SQL = "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM command_queue WHERE active = 1";

/**
 * What channels last reported of their declarations, against each
 * declaration's current ServerToken: one pass over ddm_status_declarations
 * (a row per channel and declaration reported), joined by primary key.
 */
export const DDM_DECLARATION_STATES_SQL = `SELECT
  SUM(CASE WHEN s.server_token = d.server_token AND s.active = 1 AND s.valid = 'valid' THEN 1 ELSE 0 END) AS active_valid,
  SUM(CASE WHEN s.server_token = d.server_token AND NOT (s.active = 1 AND s.valid = 'valid') THEN 1 ELSE 0 END) AS failing,
  SUM(CASE WHEN s.server_token <> d.server_token THEN 1 ELSE 0 END) AS pending
  FROM ddm_status_declarations s JOIN ddm_declarations d ON d.identifier = s.identifier`;

/** Per channel and declaration reported: active and valid, failing, or reported with an older ServerToken (not applied yet). */
export interface DdmDeclarationStates {
  activeValid: number;
  failing: number;
  pending: number;
}

/** The console's overview (GET /v1/fleet): device channels by when they were last seen, one pass. */
export interface NotSeenCount {
  since: number;
  count: number;
}

export class StatsStore {
  constructor(private readonly db: Sql) {}

  /** Enrollments by type and platform (null: the device's facts do not tell). */
  async enrollmentsByType(): Promise<Array<{ type: string; platform: string | null; count: number }>> {
    const rows = await this.db.all<{ type: string; platform: string | null; n: number | string }>(ENROLLMENTS_BY_TYPE_SQL);
    return rows.map((r) => ({ type: r.type, platform: r.platform, count: Number(r.n) }));
  }

  /**
   * Enabled device channels (not user channels) not seen since each of these
   * times, or never: one pass over enrollments.
   */
  async notSeenSince(times: readonly number[]): Promise<NotSeenCount[]> {
    if (times.length === 0) return [];
    const sums = times.map((_, i) => `SUM(CASE WHEN last_seen_at IS NULL OR last_seen_at < ? THEN 1 ELSE 0 END) AS n${i}`).join(", ");
    const row = await this.db.get<Record<string, number | string | null>>(
      `SELECT ${sums} FROM enrollments WHERE enabled = 1 AND type IN ('Device', 'UserEnrollmentDevice')`,
      [...times],
    );
    return times.map((since, i) => ({ since, count: Number(row?.[`n${i}`] ?? 0) }));
  }

  /**
   * Device channels by platform and OS version, the most common first: the
   * version each device last reported (the inventory's, as its list filters
   * by), not the one it enrolled with. A device without a record (none of
   * its facts known) counts as an unknown version, not as none.
   */
  async osVersions(limit: number): Promise<Array<{ platform: string | null; osVersion: string | null; count: number }>> {
    const rows = await this.db.all<{ platform: string | null; os_version: string | null; n: number | string }>(
      `SELECT i.platform, i.os_version, COUNT(*) AS n FROM enrollments e LEFT JOIN inventory i ON i.device_id = e.device_id
       WHERE e.type IN ('Device', 'UserEnrollmentDevice') GROUP BY i.platform, i.os_version ORDER BY n DESC, i.os_version LIMIT ?`,
      [limit],
    );
    return rows.map((r) => ({ platform: r.platform, osVersion: r.os_version, count: Number(r.n) }));
  }

  async ddmDeclarationStates(): Promise<DdmDeclarationStates> {
    const row = await this.db.get<Record<"active_valid" | "failing" | "pending", number | string | null>>(DDM_DECLARATION_STATES_SQL);
    return { activeValid: Number(row?.active_valid ?? 0), failing: Number(row?.failing ?? 0), pending: Number(row?.pending ?? 0) };
  }

  /** Channels waiting for their DeclarativeManagement command (core/ddm-sync.ts). */
  async ddmSyncDue(): Promise<number> {
    return Number((await this.db.get<{ n: number | string }>("SELECT COUNT(*) AS n FROM ddm_sync_due"))?.n ?? 0);
  }

  async queue(): Promise<QueueStats> {
    const row = await this.db.get<{ n: number | string; oldest: number | string | null }>(QUEUE_STATS_SQL);
    const oldest = row?.oldest;
    return { depth: Number(row?.n ?? 0), oldestCreatedAt: oldest === null || oldest === undefined ? undefined : Number(oldest) };
  }
}
