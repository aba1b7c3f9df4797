import { writeCoalescedTimes } from "./coalesced-times.ts";
import type { Database } from "./db.ts";

/** revoked: its AuthToken was ended (the user removed, the Mac enrolled again); the Mac must log the user in again. */
export type UserSessionState = "challenged" | "authenticated" | "zero-length" | "declined" | "revoked";

export interface UserSession {
  enrollmentId: string;
  deviceId: string;
  userId: string;
  shortName: string | null;
  state: UserSessionState;
  /** SHA-256 (hex) of the AuthToken; never shown through the API. */
  tokenHash: string | null;
  challengedAt: number | null;
  /** The latest challenge's nonce id and what it offered (digest/offers.ts), if it recorded them (see NewSessionState). */
  challenge: ChallengeRecord | null;
  tokenIssuedAt: number | null;
  tokenLastUsedAt: number | null;
  updatedAt: number;
}

interface SessionRow {
  enrollment_id: string;
  device_id: string;
  user_id: string;
  short_name: string | null;
  state: UserSessionState;
  token_hash: string | null;
  challenged_at: number | null;
  challenge_nonce: string | null;
  challenge_offers: string | null;
  token_issued_at: number | null;
  token_last_used_at: number | null;
  updated_at: number;
}

/** How long a session that never became a user channel is kept after its last change (prune). */
export const UNENROLLED_SESSION_KEPT_MS = 86_400_000;

// The writes of a login, shared with the one-statement forms of logins.ts.

/** What a new handshake state does to the session there was: whatever AuthToken it had ends. */
export const SESSION_RESTARTED_SQL = `ON CONFLICT (enrollment_id) DO UPDATE SET state = excluded.state,
     short_name = COALESCE(excluded.short_name, user_sessions.short_name),
     token_hash = NULL, challenged_at = excluded.challenged_at, challenge_nonce = excluded.challenge_nonce,
     challenge_offers = excluded.challenge_offers, token_issued_at = NULL, token_last_used_at = NULL,
     updated_at = excluded.updated_at`;

/** Starts a handshake state (params: beginParams). */
export const BEGIN_SESSION_SQL = `INSERT INTO user_sessions (enrollment_id, device_id, user_id, short_name, state, token_hash, challenged_at,
     challenge_nonce, challenge_offers, token_issued_at, token_last_used_at, updated_at)
   VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, NULL, NULL, ?)
   ${SESSION_RESTARTED_SQL}`;

/** Issues a token to a session still challenged (params: short name, token hash, now x3, enrollment id). */
export const ISSUE_TOKEN_SQL = `UPDATE user_sessions SET state = 'authenticated', short_name = ?, token_hash = ?, token_issued_at = ?,
     authenticated_at = ?, updated_at = ?
   WHERE enrollment_id = ? AND state = 'challenged'`;

/** Marks a nonce used, unless it was (params: nonce id, expiry, response hash). */
export const USE_NONCE_SQL =
  "INSERT INTO used_nonces (nonce_id, expires_at, response_hash) VALUES (?, ?, ?) ON CONFLICT (nonce_id) DO NOTHING";

/** Counts a failed attempt (params: now, device id, short name). */
export const RECORD_FAILURE_SQL = "INSERT INTO userauth_failures (at, device_id, short_name) VALUES (?, ?, ?)";

/** Failures since a time, of a (Mac, user) pair, of the Mac, of the user: one row (params: failureCountParams). */
export const FAILURE_COUNTS_SQL = `SELECT SUM(CASE WHEN device_id = ? AND short_name = ? THEN 1 ELSE 0 END) AS by_pair,
     SUM(CASE WHEN device_id = ? THEN 1 ELSE 0 END) AS by_device, SUM(CASE WHEN short_name = ? THEN 1 ELSE 0 END) AS by_user
   FROM userauth_failures WHERE at >= ? AND (device_id = ? OR short_name = ?)`;

export interface FailureCountRow {
  by_pair: number | null;
  by_device: number | null;
  by_user: number | null;
}

export function failureCountParams(deviceId: string, shortName: string | undefined, since: number): Array<string | number | null> {
  const name = shortName ?? null;
  return [deviceId, name, deviceId, name, since, deviceId, name];
}

export function failureCounts(row: FailureCountRow | undefined): { pair: number; device: number; user: number } {
  return { pair: Number(row?.by_pair ?? 0), device: Number(row?.by_device ?? 0), user: Number(row?.by_user ?? 0) };
}

/** A challenge as its session records it: the id of its nonce and what it offered (digest/offers.ts formatOffers). */
export interface ChallengeRecord {
  nonceId: string;
  offers: string;
}

export interface NewSessionState {
  enrollmentId: string;
  deviceId: string;
  userId: string;
  state: UserSessionState;
  shortName?: string;
  /** The challenge sent, for state challenged. */
  challenge?: ChallengeRecord;
}

export function beginParams(s: NewSessionState, now: number): Array<string | number | null> {
  const challenged = s.state === "challenged";
  const c = challenged ? s.challenge : undefined;
  return [
    s.enrollmentId,
    s.deviceId,
    s.userId,
    s.shortName ?? null,
    s.state,
    challenged ? now : null,
    c?.nonceId ?? null,
    c?.offers ?? null,
    now,
  ];
}

/** The challenge a row records: both its columns, or none (a row from before they were written). */
export function challengeRecord(r: { challenge_nonce: string | null; challenge_offers: string | null }): ChallengeRecord | null {
  return r.challenge_nonce != null && r.challenge_offers != null ? { nonceId: r.challenge_nonce, offers: r.challenge_offers } : null;
}

/**
 * The state of each (Mac, network user) handshake, the nonces already used
 * and the failures counted for rate limiting: everything every Orchard
 * process must agree on for UserAuthenticate.
 */
export class UserSessionStore {
  constructor(private readonly db: Database) {}

  async get(enrollmentId: string): Promise<UserSession | undefined> {
    const row = await this.db.get<SessionRow>("SELECT * FROM user_sessions WHERE enrollment_id = ?", [enrollmentId]);
    return row && toSession(row);
  }

  async list(filter: { deviceId?: string; after?: string; limit: number }): Promise<UserSession[]> {
    const where: string[] = [];
    const params: Array<string | number> = [];
    if (filter.deviceId !== undefined) where.push("device_id = ?"), params.push(filter.deviceId);
    if (filter.after !== undefined) where.push("enrollment_id > ?"), params.push(filter.after);
    const rows = await this.db.all<SessionRow>(
      `SELECT * FROM user_sessions ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY enrollment_id LIMIT ?`,
      [...params, filter.limit],
    );
    return rows.map(toSession);
  }

  /**
   * Starts a new handshake state for a (Mac, user): whatever AuthToken the
   * user had on this Mac ends here.
   */
  async begin(s: NewSessionState, now: number): Promise<void> {
    await this.db.run(BEGIN_SESSION_SQL, beginParams(s, now));
  }

  /**
   * Issues a token for a session still waiting for its digest response.
   * Resolves false if the session moved on meanwhile (a newer login).
   */
  async issueToken(enrollmentId: string, shortName: string, tokenHash: string, now: number): Promise<boolean> {
    const changed = await this.db.run(ISSUE_TOKEN_SQL, [shortName, tokenHash, now, now, now, enrollmentId]);
    return changed > 0;
  }

  /**
   * Ends every AuthToken of a user (removed from the directory); returns how
   * many. Its Macs no longer count as ones it logged in on.
   */
  async revokeUser(shortName: string, now: number): Promise<number> {
    await this.db.run("UPDATE user_sessions SET authenticated_at = NULL WHERE short_name = ? AND authenticated_at IS NOT NULL", [
      shortName,
    ]);
    return this.revokeTokens(shortName, now);
  }

  /**
   * Ends every AuthToken of a user whose password changed, and every open
   * challenge (a response checked against the old digest must not get a token
   * once the change is in: issuing one needs the state `challenged`); returns
   * how many. The Macs keep counting as the user's own.
   */
  async revokeTokens(shortName: string, now: number): Promise<number> {
    return this.db.run(
      `UPDATE user_sessions SET state = 'revoked', token_hash = NULL, updated_at = ?
       WHERE short_name = ? AND state IN ('authenticated', 'challenged')`,
      [now, shortName],
    );
  }

  /**
   * A user declined in the directory: each of its channels gets 410 from now
   * on, its AuthTokens and zero-length passes ended; returns how many sessions
   * changed. By GUID too: a session begun before the entry existed has no short name.
   */
  async decline(shortName: string, guid: string | null, now: number): Promise<number> {
    return this.db.run(
      `UPDATE user_sessions SET state = 'declined', token_hash = NULL, updated_at = ?
       WHERE (short_name = ? OR UPPER(user_id) = ?) AND state <> 'declined'`,
      [now, shortName, guid],
    );
  }

  /** Whether the user ever got an AuthToken on this Mac (since it was last removed from the directory). */
  async hasAuthenticated(deviceId: string, shortName: string): Promise<boolean> {
    const row = await this.db.get<{ one: number }>(
      "SELECT 1 AS one FROM user_sessions WHERE device_id = ? AND short_name = ? AND authenticated_at IS NOT NULL LIMIT 1",
      [deviceId, shortName],
    );
    return row !== undefined;
  }

  /**
   * Marks a nonce used by a response (`responseHash`, its SHA-256). "fresh"
   * the first time; "resent" when it was used by this very response (a retry
   * of an attempt already judged); "replayed" when by another.
   */
  async useNonce(nonceId: string, expiresAt: number, responseHash: string): Promise<"fresh" | "resent" | "replayed"> {
    const changed = await this.db.run(USE_NONCE_SQL, [nonceId, expiresAt, responseHash]);
    if (changed > 0) return "fresh";
    const row = await this.db.get<{ response_hash: string | null }>("SELECT response_hash FROM used_nonces WHERE nonce_id = ?", [nonceId]);
    return row?.response_hash === responseHash ? "resent" : "replayed";
  }

  async recordFailure(deviceId: string, shortName: string | undefined, now: number): Promise<void> {
    await this.db.run(RECORD_FAILURE_SQL, [now, deviceId, shortName ?? null]);
  }

  /**
   * Failures since `since`, in one query: of this user on this Mac (`pair`),
   * of this Mac for any user (`device`), of this user on any Mac (`user`).
   */
  async failuresSince(
    deviceId: string,
    shortName: string | undefined,
    since: number,
  ): Promise<{ pair: number; device: number; user: number }> {
    const row = await this.db.get<FailureCountRow>(FAILURE_COUNTS_SQL, failureCountParams(deviceId, shortName, since));
    return failureCounts(row);
  }

  /** Writes coalesced token-use times (see core/coalesce.ts). */
  async markTokensUsed(used: ReadonlyMap<string, number>): Promise<void> {
    await writeCoalescedTimes(
      this.db,
      used,
      (values) => `UPDATE user_sessions SET token_last_used_at = v.column2 FROM ${values}
         WHERE user_sessions.enrollment_id = v.column1 AND user_sessions.state = 'authenticated'`,
    );
  }

  /**
   * Drops nonces past their lifetime, failures past the rate-limit window,
   * and sessions that never became a user channel (no enrollment: the Mac
   * never sent its TokenUpdate) and never had a token, unchanged for
   * UNENROLLED_SESSION_KEPT_MS: a made-up UserID leaves nothing behind.
   * Resolves to the sessions deleted.
   */
  async prune(now: number, failureWindowMs: number): Promise<number> {
    await this.db.run("DELETE FROM used_nonces WHERE expires_at < ?", [now]);
    await this.db.run("DELETE FROM userauth_failures WHERE at < ?", [now - failureWindowMs]);
    return this.db.run(
      `DELETE FROM user_sessions WHERE state IN ('challenged', 'declined', 'zero-length') AND updated_at < ?
         AND NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.id = user_sessions.enrollment_id)`,
      [now - UNENROLLED_SESSION_KEPT_MS],
    );
  }
}

function toSession(r: SessionRow): UserSession {
  const n = (v: number | null) => (v === null ? null : Number(v));
  return {
    enrollmentId: r.enrollment_id,
    deviceId: r.device_id,
    userId: r.user_id,
    shortName: r.short_name,
    state: r.state,
    tokenHash: r.token_hash,
    challengedAt: n(r.challenged_at),
    challenge: challengeRecord(r),
    tokenIssuedAt: n(r.token_issued_at),
    tokenLastUsedAt: n(r.token_last_used_at),
    updatedAt: Number(r.updated_at),
  };
}
