import type { Database, SqlParam } from "./db.ts";
import { chunks } from "./enrollments.ts";
import {
  acknowledgeEvent,
  checkinEvent,
  orchardEvent,
  type MdmEventSource,
  type NanoMdmTopic,
  type WebhookEvent,
} from "./webhook-format.ts";

/** Which topics go to the outbox; none when the webhook is off (nothing is written then). */
export interface WebhookTopics {
  has(topic: string): boolean;
  readonly size: number;
}

export const NO_TOPICS: WebhookTopics = new Set<string>();

/** A row claimed for delivery. */
export interface ClaimedEvent {
  id: number;
  eventId: string;
  topic: string;
  enrollmentId: string | null;
  body: string;
  createdAt: number;
  /** Deliveries tried before this one. */
  attempts: number;
  /** For an event handed over at its writing (OutboxHandoff): when its lease ends. */
  leasedUntil?: number;
}

/**
 * Where a process's own new events go to be delivered without being claimed
 * (webhook/fresh-events.ts): an event written while there is room is
 * written already leased to this process (due_at its lease's end, leased 1)
 * and handed over once its transaction commits, which saves the claim's
 * UPDATE of every row. Without room it is written due now, for any process
 * to claim. A process that dies gives the leased ones up when the lease ends.
 */
export interface OutboxHandoff {
  /** Room for n events written now: the end of their lease; undefined: no room (write them unleased). */
  reserve(n: number, now: number): number | undefined;
  /** The reservation of events that were not written (their transaction rolled back). */
  release(n: number): void;
  /** Events written leased, now committed: to be delivered. */
  deliver(events: ClaimedEvent[]): void;
}

/** A transaction's events written leased, handed over when it commits (Store.transaction). */
export interface TxHandoff {
  handoff: OutboxHandoff;
  added: ClaimedEvent[];
}

/** How a claimed delivery ended that did not succeed. */
export interface FailedDelivery {
  id: number;
  /** When to try again. */
  dueAt: number;
  /** Counted as an attempt (false: held back behind an earlier event of its enrollment that failed). */
  attempted: boolean;
  status: number | null;
  error: string;
}

export interface WebhookStatus {
  backlog: number;
  /** Events that failed at least once and wait for a retry. */
  retrying: number;
  oldestCreatedAt: number | null;
  delivered: number;
  failed: number;
  dropped: number;
  lastDeliveredAt: number | null;
  lastFailure: { at: number; status: number | null; error: string; eventId: string | null; topic: string | null } | null;
}

export interface Dropped {
  count: number;
  oldestCreatedAt: number;
  newestCreatedAt: number;
}

const INSERT_SQL = "INSERT INTO webhook_outbox (event_id, topic, enrollment_id, body, created_at, due_at) VALUES (?, ?, ?, ?, ?, ?)";
const DROP_BATCH = 5000;
/** Rows per INSERT when a group of events is written together. */
const ROWS_PER_INSERT = 64;

const INSERT_LEASED_SQL =
  "INSERT INTO webhook_outbox (event_id, topic, enrollment_id, body, created_at, due_at, leased) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id";
const insertRows = (n: number) =>
  `INSERT INTO webhook_outbox (event_id, topic, enrollment_id, body, created_at, due_at, leased) VALUES ${Array(n).fill("(?, ?, ?, ?, ?, ?, ?)").join(", ")} RETURNING id, event_id`;

const fresh = (id: number, e: WebhookEvent, now: number, leasedUntil: number): ClaimedEvent => ({
  id,
  eventId: e.eventId,
  topic: e.topic,
  enrollmentId: e.enrollmentId,
  body: e.body,
  createdAt: now,
  attempts: 0,
  leasedUntil,
});

/**
 * Group commit of the events that stand alone (an Idle's mdm.Connect: no
 * change of its own to commit with): the events of the requests that reach
 * the outbox in one turn of the event loop are written in ONE transaction,
 * multi-row INSERTs, and each request's promise resolves once that
 * transaction has committed, so a request is still answered only after its
 * event is in the store. While one group is being written the next gathers
 * (on PostgreSQL that is the wait for the commit). Measured in BENCHMARKS.md
 * (2026-12-03: webhooks): on SQLite a commit per Idle event was a fifth of
 * the server's time.
 */
export class OutboxGroupCommit {
  private pending: Array<{ event: WebhookEvent; now: number; resolve(): void; reject(err: unknown): void }> = [];
  private scheduled = false;
  private writing = false;

  constructor(
    private readonly db: Database,
    private readonly handoff?: OutboxHandoff,
  ) {}

  add(event: WebhookEvent, now: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ event, now, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.write();
    });
  }

  private async write(): Promise<void> {
    const group = this.pending;
    if (group.length === 0) return;
    this.pending = [];
    this.writing = true;
    const now = Date.now();
    const leasedUntil = this.handoff?.reserve(group.length, now);
    try {
      const ids = new Map<string, number>();
      await this.db.transaction(async (tx) => {
        for (const chunk of chunks(group, ROWS_PER_INSERT)) {
          const rows = await tx.all<{ id: number; event_id: string }>(
            insertRows(chunk.length),
            chunk.flatMap(({ event: e, now }): SqlParam[] => [
              e.eventId,
              e.topic,
              e.enrollmentId,
              e.body,
              now,
              leasedUntil ?? now,
              leasedUntil === undefined ? 0 : 1,
            ]),
          );
          for (const r of rows) ids.set(r.event_id, Number(r.id));
        }
      });
      if (leasedUntil !== undefined) this.handoff!.deliver(group.map((g) => fresh(ids.get(g.event.eventId)!, g.event, g.now, leasedUntil)));
      for (const e of group) e.resolve();
    } catch (err) {
      if (leasedUntil !== undefined) this.handoff!.release(group.length);
      for (const e of group) e.reject(err);
    } finally {
      this.writing = false;
      if (this.pending.length > 0) this.schedule();
    }
  }
}

/**
 * The webhook outbox: events are added in the transaction of the change they
 * report (through the Store of that transaction), claimed by one process at a
 * time with a lease, and deleted once delivered. With no topics (no
 * --webhook-url) every add is a no-op that touches nothing.
 */
export class WebhookOutbox {
  constructor(
    private readonly db: Database,
    readonly topics: WebhookTopics = NO_TOPICS,
    /** Outside a transaction: events are written in groups (OutboxGroupCommit); inside one, at once. */
    private readonly group?: OutboxGroupCommit,
    /** Inside a transaction of a process that delivers: events written leased, handed over at its commit. */
    private readonly tx?: TxHandoff,
  ) {}

  /** True when events of this topic are written to the outbox. */
  wants(topic: string): boolean {
    return this.topics.size > 0 && this.topics.has(topic);
  }

  /** Resolves once the event is committed (with the transaction it is written in, or its group's). */
  async add(event: WebhookEvent, now: number): Promise<void> {
    if (this.group) return this.group.add(event, now);
    const leasedUntil = this.tx?.handoff.reserve(1, now);
    if (leasedUntil === undefined) {
      await this.db.run(INSERT_SQL, [event.eventId, event.topic, event.enrollmentId, event.body, now, now]);
      return;
    }
    try {
      const row = await this.db.get<{ id: number }>(INSERT_LEASED_SQL, [
        event.eventId,
        event.topic,
        event.enrollmentId,
        event.body,
        now,
        leasedUntil,
        1,
      ]);
      this.tx!.added.push(fresh(Number(row!.id), event, now, leasedUntil));
    } catch (err) {
      this.tx!.handoff.release(1);
      throw err;
    }
  }

  /** Gives up the lease of events this process holds but will not deliver: due now, for any process. */
  async unlease(ids: readonly number[], now: number): Promise<void> {
    for (const chunk of chunks(ids, 500)) {
      await this.db.run(`UPDATE webhook_outbox SET due_at = ?, leased = 0 WHERE id IN (${chunk.map(() => "?").join(", ")})`, [
        now,
        ...chunk,
      ]);
    }
  }

  /** A check-in, when its topic is wanted. */
  async checkin(topic: NanoMdmTopic, source: MdmEventSource, now: number, tokenUpdateTally?: number): Promise<void> {
    if (this.wants(topic)) await this.add(checkinEvent(topic, source, now, tokenUpdateTally), now);
  }

  /** A command report (mdm.Connect), when wanted. */
  async report(source: MdmEventSource, status: string, commandUuid: string | undefined, now: number): Promise<void> {
    if (this.wants("mdm.Connect")) await this.add(acknowledgeEvent(source, status, commandUuid, now), now);
  }

  /** One of Orchard's own events, when its type is one of the topics. */
  async orchard(type: string, enrollmentId: string | undefined, detail: unknown, now: number): Promise<void> {
    if (this.wants(type)) await this.add(orchardEvent(type, enrollmentId, detail, now), now);
  }

  /**
   * Claims up to `limit` due events, oldest first, for `leaseMs`: no other
   * process claims them until the lease ends (a process killed mid-delivery
   * gives them up then). On PostgreSQL rows another process is claiming are
   * skipped, and the outer due_at check makes a row claimed twice impossible.
   */
  async claim(now: number, leaseMs: number, limit: number): Promise<ClaimedEvent[]> {
    const skipLocked = this.db.dialect === "postgres" ? " FOR UPDATE SKIP LOCKED" : "";
    const rows = await this.db.all<{
      id: number;
      event_id: string;
      topic: string;
      enrollment_id: string | null;
      body: string;
      created_at: number;
      attempts: number;
    }>(
      `UPDATE webhook_outbox SET due_at = ?, leased = 1
       WHERE id IN (SELECT id FROM webhook_outbox WHERE due_at <= ? ORDER BY due_at, id LIMIT ?${skipLocked}) AND due_at <= ?
       RETURNING id, event_id, topic, enrollment_id, body, created_at, attempts`,
      [now + leaseMs, now, limit, now],
    );
    return rows
      .map((r) => ({
        id: Number(r.id),
        eventId: r.event_id,
        topic: r.topic,
        enrollmentId: r.enrollment_id,
        body: r.body,
        createdAt: Number(r.created_at),
        attempts: Number(r.attempts),
      }))
      .sort((a, b) => a.id - b.id);
  }

  /** Records a batch's outcomes in one transaction: the delivered rows deleted, the failed ones rescheduled. */
  async settle(delivered: readonly number[], failed: readonly FailedDelivery[], lastFailure: ClaimedEvent | undefined, now: number) {
    if (delivered.length === 0 && failed.length === 0) return;
    await this.db.transaction(async (tx) => {
      for (const chunk of chunks(delivered, 500)) {
        await tx.run(`DELETE FROM webhook_outbox WHERE id IN (${chunk.map(() => "?").join(", ")})`, chunk);
      }
      for (const f of failed) {
        await tx.run(
          `UPDATE webhook_outbox SET due_at = ?, leased = 0, attempts = attempts + ?, last_status = ?, last_error = ?,
             last_attempt_at = CASE WHEN ? = 1 THEN ? ELSE last_attempt_at END
           WHERE id = ?`,
          [f.dueAt, f.attempted ? 1 : 0, f.status, f.error.slice(0, 500), f.attempted ? 1 : 0, now, f.id],
        );
      }
      const attempted = failed.filter((f) => f.attempted);
      const last = attempted.at(-1);
      const params: SqlParam[] = [delivered.length, attempted.length, delivered.length > 0 ? now : null];
      if (last && lastFailure) {
        await tx.run(
          `UPDATE webhook_stats SET delivered = delivered + ?, failed = failed + ?,
             last_delivered_at = COALESCE(?, last_delivered_at), last_failure_at = ?, last_failure_status = ?,
             last_failure_error = ?, last_failure_event_id = ?, last_failure_topic = ?
           WHERE name = 'webhook'`,
          [...params, now, last.status, last.error.slice(0, 500), lastFailure.eventId, lastFailure.topic],
        );
      } else {
        await tx.run(
          `UPDATE webhook_stats SET delivered = delivered + ?, failed = failed + ?, last_delivered_at = COALESCE(?, last_delivered_at)
           WHERE name = 'webhook'`,
          params,
        );
      }
    });
  }

  /** Makes every event waiting for a retry due now (not those being delivered). */
  async retryNow(now: number): Promise<number> {
    return this.db.run("UPDATE webhook_outbox SET due_at = ? WHERE leased = 0 AND due_at > ?", [now, now]);
  }

  /** The backlog's size and the creation time of its oldest event. */
  async backlog(): Promise<{ count: number; oldestCreatedAt: number | null }> {
    const count = await this.db.get<{ n: number | string }>("SELECT COUNT(*) AS n FROM webhook_outbox");
    const oldest = await this.db.get<{ created_at: number }>("SELECT created_at FROM webhook_outbox ORDER BY id LIMIT 1");
    return { count: Number(count!.n), oldestCreatedAt: oldest ? Number(oldest.created_at) : null };
  }

  async status(): Promise<WebhookStatus> {
    const { count, oldestCreatedAt } = await this.backlog();
    const retrying = await this.db.get<{ n: number | string }>("SELECT COUNT(*) AS n FROM webhook_outbox WHERE attempts > 0");
    const s = await this.db.get<{
      delivered: number;
      failed: number;
      dropped: number;
      last_delivered_at: number | null;
      last_failure_at: number | null;
      last_failure_status: number | null;
      last_failure_error: string | null;
      last_failure_event_id: string | null;
      last_failure_topic: string | null;
    }>("SELECT * FROM webhook_stats WHERE name = 'webhook'");
    const num = (v: number | null | undefined) => (v === null || v === undefined ? null : Number(v));
    return {
      backlog: count,
      retrying: Number(retrying!.n),
      oldestCreatedAt,
      delivered: Number(s?.delivered ?? 0),
      failed: Number(s?.failed ?? 0),
      dropped: Number(s?.dropped ?? 0),
      lastDeliveredAt: num(s?.last_delivered_at),
      lastFailure:
        s && s.last_failure_at !== null
          ? {
              at: Number(s.last_failure_at),
              status: num(s.last_failure_status),
              error: s.last_failure_error ?? "",
              eventId: s.last_failure_event_id,
              topic: s.last_failure_topic,
            }
          : null,
    };
  }

  /**
   * Deletes the oldest events past the limits: those created before
   * `createdBefore`, then all but the newest `maxBacklog`. Ids grow with
   * time, so each walks from the oldest id and stops at the first that
   * stays. A backlog past its limit goes down to `room` below it for each
   * reason that dropped (a place for each drop's own event). Returns what went, per reason (counted in
   * webhook_stats too).
   */
  async dropPastLimits(createdBefore: number, maxBacklog: number, room = 0): Promise<{ age?: Dropped; backlog?: Dropped }> {
    const out: { age?: Dropped; backlog?: Dropped } = {};
    const age = await this.dropWhile(
      `SELECT id, created_at FROM webhook_outbox WHERE created_at < ? AND id IN (SELECT id FROM webhook_outbox ORDER BY id LIMIT ?)`,
      (limit) => [createdBefore, limit],
    );
    if (age) out.age = age;
    const { count } = await this.backlog();
    if (count > maxBacklog) {
      // A place for each drop's event: the age drop's too when there was one.
      const excess = Math.min(count, count - maxBacklog + room * (age ? 2 : 1));
      const backlog = await this.dropWhile("SELECT id, created_at FROM webhook_outbox ORDER BY id LIMIT ?", (limit) => [limit], excess);
      if (backlog) out.backlog = backlog;
    }
    return out;
  }

  private async dropWhile(
    select: string,
    params: (limit: number) => SqlParam[],
    total = Number.POSITIVE_INFINITY,
  ): Promise<Dropped | undefined> {
    let dropped: Dropped | undefined;
    while (total > 0) {
      const limit = Math.min(DROP_BATCH, total);
      const n = await this.db.transaction(async (tx) => {
        const rows = await tx.all<{ id: number; created_at: number }>(select, params(limit));
        if (rows.length === 0) return 0;
        const ids = rows.map((r) => Number(r.id));
        let deleted = 0;
        for (const chunk of chunks(ids, 500)) {
          deleted += await tx.run(`DELETE FROM webhook_outbox WHERE id IN (${chunk.map(() => "?").join(", ")})`, chunk);
        }
        if (deleted === 0) return 0;
        await tx.run("UPDATE webhook_stats SET dropped = dropped + ? WHERE name = 'webhook'", [deleted]);
        const times = rows.map((r) => Number(r.created_at));
        const oldest = Math.min(...times);
        const newest = Math.max(...times);
        dropped = dropped
          ? {
              count: dropped.count + deleted,
              oldestCreatedAt: Math.min(dropped.oldestCreatedAt, oldest),
              newestCreatedAt: Math.max(dropped.newestCreatedAt, newest),
            }
          : { count: deleted, oldestCreatedAt: oldest, newestCreatedAt: newest };
        return rows.length;
      });
      if (n < limit) break;
      total -= n;
    }
    return dropped;
  }
}
