import type { Database } from "./db.ts";

export interface NewEvent {
  type: string;
  enrollmentId?: string;
  /** Facts about the event. Never a secret: events are shown through the API. */
  detail?: Record<string, unknown>;
}

export interface StoredEvent {
  id: number;
  at: number;
  type: string;
  enrollmentId: string | null;
  detail: Record<string, unknown> | null;
}

export interface EventFilter {
  enrollmentId?: string;
  type?: string;
  since?: number;
  /** The page's cursor: events after this id (oldest first), or before it (newest first). */
  after?: number;
  /** Oldest first (the default) or newest first. */
  newestFirst?: boolean;
  limit: number;
}

export const PRUNE_EVENTS_SQL = "DELETE FROM events WHERE at < ?";

/** The audit trail: what happened to each enrollment, in order. */
export class EventStore {
  constructor(private readonly db: Database) {}

  async add(event: NewEvent, now: number): Promise<void> {
    await this.db.run("INSERT INTO events (at, type, enrollment_id, detail) VALUES (?, ?, ?, ?)", [
      now,
      event.type,
      event.enrollmentId ?? null,
      event.detail ? JSON.stringify(event.detail) : null,
    ]);
  }

  /** Deletes events older than `before`. */
  prune(before: number): Promise<number> {
    return this.db.run(PRUNE_EVENTS_SQL, [before]);
  }

  async list(filter: EventFilter): Promise<StoredEvent[]> {
    const { sql, params } = eventListQuery(filter);
    const rows = await this.db.all<{ id: number; at: number; type: string; enrollment_id: string | null; detail: string | null }>(
      sql,
      params,
    );
    return rows.map((r) => ({
      id: Number(r.id),
      at: Number(r.at),
      type: r.type,
      enrollmentId: r.enrollment_id,
      detail: r.detail === null ? null : (JSON.parse(r.detail) as Record<string, unknown>),
    }));
  }
}

/** The events query for a filter (exported for test/query-plans.test.ts). */
export function eventListQuery(filter: EventFilter): { sql: string; params: Array<string | number> } {
  const where: string[] = [];
  const params: Array<string | number> = [];
  if (filter.enrollmentId !== undefined) where.push("enrollment_id = ?"), params.push(filter.enrollmentId);
  if (filter.type !== undefined) where.push("type = ?"), params.push(filter.type);
  if (filter.since !== undefined) where.push("at >= ?"), params.push(filter.since);
  if (filter.after !== undefined) where.push(filter.newestFirst ? "id < ?" : "id > ?"), params.push(filter.after);
  const order = filter.newestFirst ? "id DESC" : "id";
  const sql = `SELECT id, at, type, enrollment_id, detail FROM events ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY ${order} LIMIT ?`;
  return { sql, params: [...params, filter.limit] };
}
