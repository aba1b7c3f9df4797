import type { Sql } from "./db.ts";

// Figures read at scrape time (/metrics): cheap, bounded queries.
// Enrollments by type walk the enrollments_type index; the queue's two
// figures walk only active rows, through the partial index command_queue_next.

export interface QueueStats {
  depth: number;
  /** Milliseconds since epoch of the oldest active row; undefined when the queue is empty. */
  oldestCreatedAt: number | undefined;
}

export const ENROLLMENTS_BY_TYPE_SQL = "SELECT type, COUNT(*) AS n FROM enrollments GROUP BY type";
export const QUEUE_STATS_SQL = "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM command_queue WHERE active = 1";

export class StatsStore {
  constructor(private readonly db: Sql) {}

  async enrollmentsByType(): Promise<Array<{ type: string; count: number }>> {
    const rows = await this.db.all<{ type: string; n: number | string }>(ENROLLMENTS_BY_TYPE_SQL);
    return rows.map((r) => ({ type: r.type, count: Number(r.n) }));
  }

  async queue(): Promise<QueueStats> {
    const row = await this.db.get<{ n: number | string; oldest: number | string | null }>(QUEUE_STATS_SQL);
    const oldest = row?.oldest;
    return { depth: Number(row?.n ?? 0), oldestCreatedAt: oldest === null || oldest === undefined ? undefined : Number(oldest) };
  }
}
