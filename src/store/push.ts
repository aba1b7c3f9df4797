import type { Database, Sql } from "./db.ts";
import { chunks } from "./enrollments.ts";
import type { EventStore, NewEvent } from "./events.ts";

/** A push certificate as stored: the key only sealed (see push/secret-box.ts). */
export interface StoredPushCert {
  topic: string;
  certPem: string;
  keySealed: Buffer;
  fingerprint: string;
  notBefore: number;
  notAfter: number;
  createdAt: number;
  updatedAt: number;
}

/** What the API shows of a push certificate: never the key. */
export type PushCertInfo = Omit<StoredPushCert, "keySealed" | "certPem">;

/** What a push to one channel needs, and why it may not be sent. */
export interface PushTarget {
  id: string;
  topic: string;
  pushToken: string;
  pushMagic: string;
  enabled: boolean;
  /** Set when APNs refused this very token and no TokenUpdate came since. */
  dead?: { status: number; reason: string; markedAt: number };
}

/** A token APNs refused (410, or 400 BadDeviceToken). */
export interface DeadTokenMark {
  enrollmentId: string;
  pushToken: string;
  status: number;
  reason: string;
  /** APNs' `timestamp` (410 only): when the token stopped being valid. */
  apnsTimestamp?: number;
  /** When the push was sent: a TokenUpdate after it means the token may be new. */
  sentAt: number;
}

// The enrollment's token is dead when it is still the refused one and no
// TokenUpdate came after the mark (TokenUpdate sets enrollments.updated_at).
const TARGETS_SQL = (n: number) => `SELECT e.id, e.topic, e.push_token, e.push_magic, e.enabled,
    d.status AS dead_status, d.reason AS dead_reason, d.marked_at AS dead_at
  FROM enrollments e
  LEFT JOIN push_dead_tokens d ON d.enrollment_id = e.id AND d.push_token = e.push_token AND d.marked_at >= e.updated_at
  WHERE e.id IN (${Array(n).fill("?").join(", ")})`;

// Every enabled channel, a page at a time in id order (keyset: the primary key, never an OFFSET).
export const ENABLED_PAGE_SQL = `SELECT e.id, e.topic, e.push_token, e.push_magic, e.enabled,
    d.status AS dead_status, d.reason AS dead_reason, d.marked_at AS dead_at
  FROM enrollments e
  LEFT JOIN push_dead_tokens d ON d.enrollment_id = e.id AND d.push_token = e.push_token AND d.marked_at >= e.updated_at
  WHERE e.id > ? AND e.enabled = 1
  ORDER BY e.id LIMIT ?`;

const CERT_COLUMNS = "topic, cert_pem, key_sealed, fingerprint, not_before, not_after, created_at, updated_at";

/** Push certificates, dead tokens, pushes due later and the sweep's lease. */
export class PushStore {
  constructor(
    private readonly db: Database,
    /** The event store of a transaction. */
    private readonly events: (tx: Sql) => EventStore,
  ) {}

  /** Stores or replaces the certificate of its topic; true when the topic is new. */
  /** Stores a certificate and, in the same transaction, the event that says so (given whether it was created). */
  async putCert(c: Omit<StoredPushCert, "createdAt" | "updatedAt">, now: number, event?: (created: boolean) => NewEvent): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const created = await this.putCertRow(tx, c, now);
      if (event) await this.events(tx).add(event(created), now);
      return created;
    });
  }

  private async putCertRow(db: Sql, c: Omit<StoredPushCert, "createdAt" | "updatedAt">, now: number): Promise<boolean> {
    const row = await db.get<{ created_at: number | string }>(
      `INSERT INTO push_certs (${CERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (topic) DO UPDATE SET cert_pem = excluded.cert_pem, key_sealed = excluded.key_sealed,
         fingerprint = excluded.fingerprint, not_before = excluded.not_before, not_after = excluded.not_after,
         updated_at = excluded.updated_at,
         expiry_notified_at = CASE WHEN push_certs.fingerprint = excluded.fingerprint THEN push_certs.expiry_notified_at ELSE NULL END
       RETURNING created_at`,
      [c.topic, c.certPem, c.keySealed, c.fingerprint, c.notBefore, c.notAfter, now, now],
    );
    return Number(row!.created_at) === now;
  }

  async cert(topic: string): Promise<StoredPushCert | undefined> {
    const row = await this.db.get<CertRow>(`SELECT ${CERT_COLUMNS} FROM push_certs WHERE topic = ?`, [topic]);
    return row && toCert(row);
  }

  /** The cheap check every process makes to notice a new certificate. */
  async certVersion(topic: string): Promise<{ fingerprint: string; updatedAt: number } | undefined> {
    const row = await this.db.get<{ fingerprint: string; updated_at: number | string }>(
      "SELECT fingerprint, updated_at FROM push_certs WHERE topic = ?",
      [topic],
    );
    return row && { fingerprint: row.fingerprint, updatedAt: Number(row.updated_at) };
  }

  async certs(): Promise<PushCertInfo[]> {
    const rows = await this.db.all<CertRow>(`SELECT ${CERT_COLUMNS} FROM push_certs ORDER BY topic`);
    return rows.map((r) => {
      const { keySealed: _key, certPem: _pem, ...info } = toCert(r);
      return info;
    });
  }

  /** Enrolled devices (with an enabled channel) per topic other than `topic`. */
  async enrolledOnOtherTopics(topic: string): Promise<Array<{ topic: string; devices: number }>> {
    const rows = await this.db.all<{ topic: string; n: number | string }>(
      "SELECT topic, COUNT(DISTINCT device_id) AS n FROM enrollments WHERE enabled = 1 AND topic <> ? GROUP BY topic ORDER BY topic",
      [topic],
    );
    return rows.map((r) => ({ topic: r.topic, devices: Number(r.n) }));
  }

  /**
   * Records the event that this certificate (topic and fingerprint) is about
   * to expire, unless it was recorded already (by any process): true when
   * this call recorded it.
   */
  async noteExpiring(topic: string, fingerprint: string, event: NewEvent, now: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const claimed = await tx.run(
        "UPDATE push_certs SET expiry_notified_at = ? WHERE topic = ? AND fingerprint = ? AND expiry_notified_at IS NULL",
        [now, topic, fingerprint],
      );
      if (claimed === 0) return false;
      await this.events(tx).add(event, now);
      return true;
    });
  }

  async certCount(): Promise<number> {
    const row = await this.db.get<{ n: number | string }>("SELECT COUNT(*) AS n FROM push_certs");
    return Number(row!.n);
  }

  /** Removes a certificate and records the event in the same transaction. */
  async removeCert(topic: string, event?: NewEvent, now = Date.now()): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const removed = (await tx.run("DELETE FROM push_certs WHERE topic = ?", [topic])) > 0;
      if (removed && event) await this.events(tx).add(event, now);
      return removed;
    });
  }

  /** Push facts of the channels that exist among these ids. */
  async targets(ids: readonly string[]): Promise<Map<string, PushTarget>> {
    const out = new Map<string, PushTarget>();
    for (const chunk of chunks(ids, 500)) {
      const rows = await this.db.all<TargetRow>(TARGETS_SQL(chunk.length), chunk);
      for (const r of rows) out.set(r.id, toTarget(r));
    }
    return out;
  }

  /** Push facts of the enabled channels after `after` in id order, `limit` of them: a push to all reads the store a page at a time. */
  async enabledTargets(after: string, limit: number): Promise<PushTarget[]> {
    const rows = await this.db.all<TargetRow>(ENABLED_PAGE_SQL, [after, limit]);
    return rows.map(toTarget);
  }

  /**
   * Records what a batch of pushes came to in one transaction: the tokens to
   * stop pushing to, then one event per outcome (many rows per statement).
   * Returns the ids whose token was marked dead.
   */
  async recordOutcomes(dead: readonly DeadTokenMark[], events: readonly NewEvent[], now: number): Promise<Set<string>> {
    if (dead.length === 0 && events.length === 0) return new Set();
    return this.db.transaction(async (tx) => {
      const marked = new Set<string>();
      for (const d of dead) if (await markDead(tx, d, now)) marked.add(d.enrollmentId);
      await this.events(tx).addMany(events, now);
      return marked;
    });
  }

  /** True when the channel has a command it answered NotNow to still queued. */
  async hasNotNowQueued(enrollmentId: string): Promise<boolean> {
    const row = await this.db.get("SELECT 1 AS x FROM command_queue WHERE enrollment_id = ? AND active = 1 AND status = 'NotNow' LIMIT 1", [
      enrollmentId,
    ]);
    return row !== undefined;
  }

  /** Schedules a push; an earlier one already scheduled stays. */
  async scheduleDue(enrollmentId: string, dueAt: number, reason: string): Promise<void> {
    await this.db.run(
      `INSERT INTO push_due (enrollment_id, due_at, reason) VALUES (?, ?, ?)
       ON CONFLICT (enrollment_id) DO UPDATE SET
         due_at = CASE WHEN excluded.due_at < push_due.due_at THEN excluded.due_at ELSE push_due.due_at END`,
      [enrollmentId, dueAt, reason],
    );
  }

  /** Takes the pushes due by `now` (each taken by one process only). */
  async claimDue(now: number, limit: number): Promise<Array<{ enrollmentId: string; reason: string }>> {
    const rows = await this.db.all<{ enrollment_id: string; reason: string }>(
      `DELETE FROM push_due WHERE enrollment_id IN (SELECT enrollment_id FROM push_due WHERE due_at <= ? ORDER BY due_at LIMIT ?)
       RETURNING enrollment_id, reason`,
      [now, limit],
    );
    return rows.map((r) => ({ enrollmentId: r.enrollment_id, reason: r.reason }));
  }

  /** Which of these channels still have commands queued. */
  async withQueuedCommands(ids: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const chunk of chunks(ids, 500)) {
      const rows = await this.db.all<{ enrollment_id: string }>(
        `SELECT DISTINCT enrollment_id FROM command_queue WHERE active = 1 AND enrollment_id IN (${chunk.map(() => "?").join(", ")})`,
        chunk,
      );
      out.push(...rows.map((r) => r.enrollment_id));
    }
    return out;
  }

  /**
   * Enabled channels with a command queued since before `before` that have
   * not been seen since `before` and whose token is not dead, in id order after `after`.
   */
  async silentWithQueue(before: number, after: string, limit: number): Promise<string[]> {
    const rows = await this.db.all<{ id: string }>(
      `SELECT e.id FROM enrollments e
       WHERE e.id > ? AND e.enabled = 1 AND (e.last_seen_at IS NULL OR e.last_seen_at < ?)
         AND EXISTS (SELECT 1 FROM command_queue q WHERE q.enrollment_id = e.id AND q.active = 1 AND q.created_at < ?)
         AND NOT EXISTS (SELECT 1 FROM push_dead_tokens d
           WHERE d.enrollment_id = e.id AND d.push_token = e.push_token AND d.marked_at >= e.updated_at)
       ORDER BY e.id LIMIT ?`,
      [after, before, before, limit],
    );
    return rows.map((r) => r.id);
  }

  /** Takes (or renews) a named lease until now + ttl unless another holder has it; true when taken. */
  async acquireLease(name: string, holder: string, now: number, ttlMs: number): Promise<boolean> {
    const changed = await this.db.run(
      `INSERT INTO push_leases (name, holder, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE push_leases.expires_at <= ? OR push_leases.holder = excluded.holder`,
      [name, holder, now + ttlMs, now],
    );
    return changed > 0;
  }
}

/**
 * Marks the token dead unless the channel has another token by now, or sent
 * a TokenUpdate after APNs' timestamp (or after the push was sent).
 */
async function markDead(tx: Sql, d: DeadTokenMark, now: number): Promise<boolean> {
  const validUntil = Math.min(d.sentAt, d.apnsTimestamp ?? d.sentAt);
  const changed = await tx.run(
    `INSERT INTO push_dead_tokens (enrollment_id, push_token, status, reason, apns_timestamp, marked_at)
     SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT)
     WHERE EXISTS (SELECT 1 FROM enrollments WHERE id = ? AND push_token = ? AND updated_at <= ?)
     ON CONFLICT (enrollment_id) DO UPDATE SET push_token = excluded.push_token, status = excluded.status,
       reason = excluded.reason, apns_timestamp = excluded.apns_timestamp, marked_at = excluded.marked_at`,
    [d.enrollmentId, d.pushToken, d.status, d.reason, d.apnsTimestamp ?? null, now, d.enrollmentId, d.pushToken, validUntil],
  );
  return changed > 0;
}

interface CertRow {
  topic: string;
  cert_pem: string;
  key_sealed: Buffer;
  fingerprint: string;
  not_before: number | string;
  not_after: number | string;
  created_at: number | string;
  updated_at: number | string;
}

interface TargetRow {
  id: string;
  topic: string;
  push_token: string;
  push_magic: string;
  enabled: number;
  dead_status: number | null;
  dead_reason: string | null;
  dead_at: number | string | null;
}

function toTarget(r: TargetRow): PushTarget {
  return {
    id: r.id,
    topic: r.topic,
    pushToken: r.push_token,
    pushMagic: r.push_magic,
    enabled: Number(r.enabled) === 1,
    dead: r.dead_status === null ? undefined : { status: Number(r.dead_status), reason: r.dead_reason!, markedAt: Number(r.dead_at) },
  };
}

function toCert(r: CertRow): StoredPushCert {
  return {
    topic: r.topic,
    certPem: r.cert_pem,
    keySealed: Buffer.from(r.key_sealed),
    fingerprint: r.fingerprint,
    notBefore: Number(r.not_before),
    notAfter: Number(r.not_after),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}
