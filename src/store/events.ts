import type { Database, SqlParam } from "./db.ts";
import { chunks } from "./enrollments.ts";
import type { NewEvent } from "./event-types.ts";
import type { WebhookOutbox } from "./webhooks.ts";

export type { NewEvent } from "./event-types.ts";

/** Many rows per statement when a batch of events is recorded. */
const EVENT_ROWS_PER_INSERT = 200;

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

/** Records one event (params: at, type, enrollment id, detail JSON). */
export const ADD_EVENT_SQL = "INSERT INTO events (at, type, enrollment_id, detail) VALUES (?, ?, ?, ?)";

export const PRUNE_EVENTS_SQL = "DELETE FROM events WHERE at < ?";

/** The audit trail: what happened to each enrollment, in order. */
export class EventStore {
  constructor(
    private readonly db: Database,
    private readonly outbox: WebhookOutbox,
  ) {}

  /**
   * Records an event of the catalogue (store/event-types.ts) and, when its
   * type is one of the webhook's topics, its webhook event, through the
   * same connection: inside a transaction, both commit with it.
   */
  async add(event: NewEvent, now: number): Promise<void> {
    await this.db.run(ADD_EVENT_SQL, [now, event.type, event.enrollmentId ?? null, event.detail ? JSON.stringify(event.detail) : null]);
    await this.outbox.orchard(event.type, event.enrollmentId, event.detail, now);
  }

  /** Records several events, many rows per statement (call it inside a transaction). */
  async addMany(events: readonly NewEvent[], now: number): Promise<void> {
    for (const chunk of chunks(events, EVENT_ROWS_PER_INSERT)) {
      await this.db.run(
        `INSERT INTO events (at, type, enrollment_id, detail) VALUES ${chunk.map(() => "(?, ?, ?, ?)").join(", ")}`,
        chunk.flatMap((e): SqlParam[] => [now, e.type, e.enrollmentId ?? null, e.detail ? JSON.stringify(e.detail) : null]),
      );
    }
    for (const e of events) await this.outbox.orchard(e.type, e.enrollmentId, e.detail, now);
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
