import type { Sql } from "./db.ts";

// Figures read at scrape time (/metrics): cheap, bounded queries.
// Enrollments by type and platform read every enrollment and its device once
// per scrape (the caller caches the figures a few seconds); the queue's two
// figures walk only active rows, through the partial index command_queue_next.

export interface QueueStats {
  depth: number;
  /** Milliseconds since epoch of the oldest active row; undefined when the queue is empty. */
  oldestCreatedAt: number | undefined;
}

export const ENROLLMENTS_BY_TYPE_SQL =
  "SELECT e.type, d.platform, COUNT(*) AS n FROM enrollments e JOIN devices d ON d.id = e.device_id GROUP BY e.type, d.platform";
export const QUEUE_STATS_SQL = "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM command_queue WHERE active = 1";

export class StatsStore {
  constructor(private readonly db: Sql) {}

  /** Enrollments by type and platform (null: the device's facts do not tell). */
  async enrollmentsByType(): Promise<Array<{ type: string; platform: string | null; count: number }>> {
    const rows = await this.db.all<{ type: string; platform: string | null; n: number | string }>(ENROLLMENTS_BY_TYPE_SQL);
    return rows.map((r) => ({ type: r.type, platform: r.platform, count: Number(r.n) }));
  }

  async queue(): Promise<QueueStats> {
    const row = await this.db.get<{ n: number | string; oldest: number | string | null }>(QUEUE_STATS_SQL);
    const oldest = row?.oldest;
    return { depth: Number(row?.n ?? 0), oldestCreatedAt: oldest === null || oldest === undefined ? undefined : Number(oldest) };
  }
}
