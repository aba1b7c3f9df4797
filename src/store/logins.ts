import type { Database } from "./db.ts";
import { type DigestHashName, type DirectoryEntry, type DirectoryState, ENTRY_FOR_USER_SQL, toEntry, type UserRow } from "./directory.ts";
import { ADD_EVENT_SQL } from "./events.ts";
import {
  BEGIN_SESSION_SQL,
  type ChallengeRecord,
  challengeRecord,
  FAILURE_COUNTS_SQL,
  type FailureCountRow,
  ISSUE_TOKEN_SQL,
  type NewSessionState,
  RECORD_FAILURE_SQL,
  SESSION_RESTARTED_SQL,
  USE_NONCE_SQL,
  beginParams,
  failureCountParams,
  failureCounts,
} from "./user-sessions.ts";

// The common path of a login in as few round trips as the store allows: on
// PostgreSQL each write below is one statement (data-modifying CTEs), atomic
// on its own, where BEGIN, two to four statements and COMMIT ran before. SQLite
// has no such CTEs; there each is a transaction of the same statements (in
// process, a transaction costs no round trips). Neither writes the webhook
// outbox: a caller whose outbox wants these events uses the general path.

/** What the digest response of a login is checked against, read in one statement. */
export interface AnswerFacts {
  failures: { pair: number; device: number; user: number };
  sessionState: string | null;
  /** The challenge the session records (UserSession.challenge). */
  challenge: ChallengeRecord | null;
  /** The directory entry of the response's user name, if there is one. */
  user: { guid: string | null; state: DirectoryState } | undefined;
  /** Its HA1 for the realm and hash, if it has one. */
  ha1: string | undefined;
}

interface AnswerFactsRow extends FailureCountRow {
  session_state: string | null;
  challenge_nonce: string | null;
  challenge_offers: string | null;
  user_short_name: string | null;
  guid: string | null;
  user_state: DirectoryState | null;
  ha1: string | null;
}

/** The event of a login step: its type and JSON detail. */
export interface LoginEvent {
  type: string;
  detail: Record<string, unknown>;
}

/** A directory entry's state as a challenge sees it: "none" when the message names no entry. */
export type EntryState = DirectoryState | "none";

export type TokenOutcome = "issued" | "no-challenge" | "nonce-used" | "limited";

/** The failure limits of a login, checked again where the token is written. */
export interface FailureLimits {
  since: number;
  pair: number;
  device: number;
  user: number;
}

export class LoginStore {
  constructor(private readonly db: Database) {}

  /** The failure counts since `since`, the session's state, the user's entry and its HA1. */
  async answerFacts(q: {
    enrollmentId: string;
    deviceId: string;
    shortName: string;
    since: number;
    realm: string;
    algorithm: DigestHashName;
  }): Promise<AnswerFacts> {
    const row = await this.db.get<AnswerFactsRow>(
      `SELECT f.by_pair, f.by_device, f.by_user, s.state AS session_state, s.challenge_nonce, s.challenge_offers, u.short_name AS user_short_name, u.guid,
         u.state AS user_state, d.ha1
       FROM (${FAILURE_COUNTS_SQL}) f
       LEFT JOIN user_sessions s ON s.enrollment_id = ?
       LEFT JOIN directory_users u ON u.short_name = ?
       LEFT JOIN directory_digests d ON d.short_name = u.short_name AND d.realm = ? AND d.algorithm = ?`,
      [...failureCountParams(q.deviceId, q.shortName, q.since), q.enrollmentId, q.shortName, q.realm, q.algorithm],
    );
    return {
      failures: failureCounts(row),
      sessionState: row?.session_state ?? null,
      challenge: row ? challengeRecord(row) : null,
      user: row?.user_short_name == null ? undefined : { guid: row.guid, state: row.user_state! },
      ha1: row?.ha1 ?? undefined,
    };
  }

  /**
   * Step 1 of a login: reads the entry the message names (DirectoryStore's
   * entryForUser) and, when its state is in `challengeWhen`, starts the
   * challenged session with the entry's short name and records
   * `userauth.challenged`, together; on PostgreSQL in one statement. Resolves
   * to the entry either way, so that a caller that must decline or answer
   * zero-length (nothing written) need not read it again.
   */
  async challenge(
    q: {
      enrollmentId: string;
      deviceId: string;
      userId: string;
      guid: string;
      shortName: string | undefined;
      /** The challenge sent if the session is challenged. */
      challenge: ChallengeRecord;
    },
    challengeWhen: ReadonlySet<EntryState>,
    now: number,
  ): Promise<{ challenged: boolean; entry: DirectoryEntry | undefined }> {
    const entryParams = [q.guid, q.shortName ?? null];
    if (this.db.dialect === "postgres") {
      // One placeholder per possible state, null for those that do not challenge: one statement text.
      const states = (["none", "managed", "declined"] as const).map((st) => (challengeWhen.has(st) ? st : null));
      const row = await this.db.get<UserRow & { challenged: number }>(
        `WITH u AS (${ENTRY_FOR_USER_SQL}),
         p AS (SELECT u.short_name FROM (SELECT 1 AS one) AS o LEFT JOIN u ON TRUE WHERE COALESCE(u.state, 'none') IN (?, ?, ?)),
         s AS (INSERT INTO user_sessions (enrollment_id, device_id, user_id, short_name, state, token_hash, challenged_at,
                 challenge_nonce, challenge_offers, token_issued_at, token_last_used_at, updated_at)
               SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), p.short_name, 'challenged', NULL,
                 CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), NULL, NULL, CAST(? AS BIGINT) FROM p
               ${SESSION_RESTARTED_SQL} RETURNING 1),
         e AS (INSERT INTO events (at, type, enrollment_id, detail)
               SELECT CAST(? AS BIGINT), 'userauth.challenged', CAST(? AS TEXT),
                 CASE WHEN p.short_name IS NULL THEN '{}' ELSE '{"short_name":' || to_json(p.short_name)::text || '}' END FROM p, s
               RETURNING 1)
         SELECT u.*, (SELECT COUNT(*) FROM e) AS challenged FROM (SELECT 1 AS one) AS o LEFT JOIN u ON TRUE`,
        [
          ...entryParams,
          ...states,
          q.enrollmentId,
          q.deviceId,
          q.userId,
          now,
          q.challenge.nonceId,
          q.challenge.offers,
          now,
          now,
          q.enrollmentId,
        ],
      );
      return { challenged: Number(row?.challenged) > 0, entry: row?.short_name == null ? undefined : toEntry(row) };
    }
    return this.db.transaction(async (tx) => {
      const row = await tx.get<UserRow>(ENTRY_FOR_USER_SQL, entryParams);
      const entry = row && toEntry(row);
      if (!challengeWhen.has(entry?.state ?? "none")) return { challenged: false, entry };
      await tx.run(BEGIN_SESSION_SQL, beginParams({ ...q, state: "challenged", shortName: entry?.shortName }, now));
      await tx.run(ADD_EVENT_SQL, [now, "userauth.challenged", q.enrollmentId, JSON.stringify({ short_name: entry?.shortName })]);
      return { challenged: true, entry };
    });
  }

  /** Starts a handshake state and records its event, together. */
  async begin(s: NewSessionState, event: LoginEvent, now: number): Promise<void> {
    const eventParams = [now, event.type, s.enrollmentId, JSON.stringify(event.detail)];
    if (this.db.dialect === "postgres") {
      await this.db.run(
        `WITH s AS (${BEGIN_SESSION_SQL} RETURNING 1)
         INSERT INTO events (at, type, enrollment_id, detail) SELECT CAST(? AS BIGINT), ?, ?, ? FROM s`,
        [...beginParams(s, now), ...eventParams],
      );
      return;
    }
    await this.db.transaction(async (tx) => {
      await tx.run(BEGIN_SESSION_SQL, beginParams(s, now));
      await tx.run(ADD_EVENT_SQL, eventParams);
    });
  }

  /**
   * Step 2 of a login whose response checked out: uses the nonce, issues the
   * token and records `issued`, all or nothing. If the session moved on
   * meanwhile (a newer challenge), the nonce is used all the same, the
   * failure counted and `refused` recorded instead ("no-challenge"). If the
   * nonce was used already nothing is written ("nonce-used": the caller's
   * general path tells a resent response from a replay). The failure counts
   * are checked again in the same statement (or transaction): failures that
   * committed since the caller read them (wrong guesses sent together with
   * the right one) stop the token, and nothing is written ("limited": the
   * general path refuses it as rate-limited).
   */
  async issueToken(q: {
    enrollmentId: string;
    deviceId: string;
    shortName: string;
    tokenHash: string;
    nonce: { id: string; expiresAt: number; responseHash: string };
    issued: LoginEvent;
    refused: LoginEvent;
    limits: FailureLimits;
    now: number;
  }): Promise<TokenOutcome> {
    const { enrollmentId, deviceId, shortName, now, limits } = q;
    const countParams = failureCountParams(deviceId, shortName, limits.since);
    const nonceParams = [q.nonce.id, q.nonce.expiresAt, q.nonce.responseHash];
    const issueParams = [shortName, q.tokenHash, now, now, now, enrollmentId];
    const event = (e: LoginEvent) => [now, e.type, enrollmentId, JSON.stringify(e.detail)];
    if (this.db.dialect === "postgres") {
      // Each part sees the one before it only through its RETURNING rows.
      const row = await this.db.get<{ allowed: number; fresh: number; issued: number }>(
        `WITH c AS (${FAILURE_COUNTS_SQL}),
         ok AS (SELECT 1 FROM c WHERE COALESCE(c.by_pair, 0) < CAST(? AS BIGINT) AND COALESCE(c.by_device, 0) < CAST(? AS BIGINT)
                AND COALESCE(c.by_user, 0) < CAST(? AS BIGINT)),
         n AS (INSERT INTO used_nonces (nonce_id, expires_at, response_hash) SELECT CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT) FROM ok
               ON CONFLICT (nonce_id) DO NOTHING RETURNING 1),
         t AS (${ISSUE_TOKEN_SQL} AND EXISTS (SELECT 1 FROM n) RETURNING 1),
         f AS (INSERT INTO userauth_failures (at, device_id, short_name) SELECT CAST(? AS BIGINT), ?, ? FROM n
               WHERE NOT EXISTS (SELECT 1 FROM t)),
         e AS (INSERT INTO events (at, type, enrollment_id, detail)
               SELECT CAST(? AS BIGINT), ?, ?, ? FROM t UNION ALL SELECT CAST(? AS BIGINT), ?, ?, ? FROM n WHERE NOT EXISTS (SELECT 1 FROM t))
         SELECT (SELECT COUNT(*) FROM ok) AS allowed, (SELECT COUNT(*) FROM n) AS fresh, (SELECT COUNT(*) FROM t) AS issued`,
        [
          ...countParams,
          limits.pair,
          limits.device,
          limits.user,
          ...nonceParams,
          ...issueParams,
          now,
          deviceId,
          shortName,
          ...event(q.issued),
          ...event(q.refused),
        ],
      );
      if (Number(row?.allowed) === 0) return "limited";
      return Number(row?.fresh) === 0 ? "nonce-used" : Number(row?.issued) > 0 ? "issued" : "no-challenge";
    }
    return this.db.transaction(async (tx) => {
      const f = failureCounts(await tx.get<FailureCountRow>(FAILURE_COUNTS_SQL, countParams));
      if (f.pair >= limits.pair || f.device >= limits.device || f.user >= limits.user) return "limited";
      if ((await tx.run(USE_NONCE_SQL, nonceParams)) === 0) return "nonce-used";
      if ((await tx.run(ISSUE_TOKEN_SQL, issueParams)) > 0) {
        await tx.run(ADD_EVENT_SQL, event(q.issued));
        return "issued";
      }
      await tx.run(RECORD_FAILURE_SQL, [now, deviceId, shortName]);
      await tx.run(ADD_EVENT_SQL, event(q.refused));
      return "no-challenge";
    });
  }
}
