import type { Database } from "./db.ts";

/** What an operator may do, lowest first (core/roles.ts compares them). */
export const ROLES = ["auditor", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

export interface Operator {
  name: string;
  role: Role;
  /** core/password.ts's PHC-style scrypt string. */
  passwordHash: string;
  disabled: boolean;
  createdAt: number;
  updatedAt: number;
  passwordChangedAt: number;
}

export interface OperatorToken {
  id: string;
  operator: string;
  label: string;
  /** The role it was made with. */
  role: Role;
  /** Its owner's role now, which caps the token's (an owner demoted after making it). */
  ownerRole: Role;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

/** A token found by its hash, with whether its owner is disabled now. */
export interface TokenOwner {
  token: OperatorToken;
  ownerDisabled: boolean;
}

export interface OperatorSession {
  operator: string;
  role: Role;
  disabled: boolean;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
}

type OperatorRow = {
  name: string;
  role: string;
  password_hash: string;
  disabled: number | string;
  created_at: number | string;
  updated_at: number | string;
  password_changed_at: number | string;
};
type TokenRow = {
  id: string;
  operator: string;
  label: string;
  role: string;
  owner_role: string;
  created_at: number | string;
  expires_at: number | string;
  revoked_at: number | string | null;
  last_used_at: number | string | null;
};

const TOKEN_COLUMNS = "t.id, t.operator, t.label, t.role, o.role AS owner_role, t.created_at, t.expires_at, t.revoked_at, t.last_used_at";
/** Tokens with their owner (a token is deleted with its operator, so the join loses none). */
const TOKENS_WITH_OWNER = "operator_tokens t JOIN operators o ON o.name = t.operator";

/** Operator accounts, their personal API tokens and their browser sessions. */
export class OperatorStore {
  constructor(private readonly db: Database) {}

  /**
   * Adds an account; undefined when added, else the existing name that
   * takes it, compared ignoring case (names are ASCII, which lower() folds
   * the same in SQLite and PostgreSQL). The unique index on lower(name)
   * (migration 28) settles two adds of case variants at the same moment on
   * PostgreSQL, which the NOT EXISTS alone let both in: the second waits for
   * the first and does nothing, as ON CONFLICT without a target covers that
   * index too. The NOT EXISTS keeps the rule in a store whose case variants
   * of old hold the index back. (The CASTs: PostgreSQL types a bare parameter
   * in a SELECT list as text.)
   */
  async add(o: { name: string; role: Role; passwordHash: string }, now: number): Promise<string | undefined> {
    const n = await this.db.run(
      `INSERT INTO operators (name, role, password_hash, disabled, created_at, updated_at, password_changed_at)
       SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), 0, CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT)
       WHERE NOT EXISTS (SELECT 1 FROM operators WHERE lower(name) = lower(?))
       ON CONFLICT DO NOTHING`,
      [o.name, o.role, o.passwordHash, now, now, now, o.name],
    );
    if (n === 1) return undefined;
    return (await this.nameIgnoringCase(o.name)) ?? o.name;
  }

  /** The account's name as stored, found ignoring case (the exact one first, when old rows hold case variants). */
  async nameIgnoringCase(name: string): Promise<string | undefined> {
    const row = await this.db.get<{ name: string }>(
      "SELECT name FROM operators WHERE lower(name) = lower(?) ORDER BY CASE WHEN name = ? THEN 0 ELSE 1 END, name LIMIT 1",
      [name, name],
    );
    return row?.name;
  }

  async get(name: string): Promise<Operator | undefined> {
    const row = await this.db.get<OperatorRow>("SELECT * FROM operators WHERE name = ?", [name]);
    return row && operatorOf(row);
  }

  async list(after: string | undefined, limit: number): Promise<Operator[]> {
    const rows = await this.db.all<OperatorRow>(
      `SELECT * FROM operators ${after === undefined ? "" : "WHERE name > ?"} ORDER BY name LIMIT ?`,
      after === undefined ? [limit] : [after, limit],
    );
    return rows.map(operatorOf);
  }

  /**
   * Admins that are not disabled: the last one may not be demoted, disabled
   * or removed. Inside a transaction on PostgreSQL their rows are locked (in
   * name order: no deadlock), so two transactions demoting two admins at once
   * cannot both count two: the second waits and counts again after the first
   * (READ COMMITTED re-reads a locked row). SQLite's write lock does the same.
   */
  async activeAdmins(): Promise<number> {
    const lock = this.db.dialect === "postgres" ? " ORDER BY name FOR UPDATE" : "";
    const rows = await this.db.all<{ name: string }>(`SELECT name FROM operators WHERE role = 'admin' AND disabled = 0${lock}`);
    return rows.length;
  }

  /**
   * Changes an account; false when there is none. A new password or a
   * disabling ends the account's sessions in the same statement group (call it
   * inside a transaction), so a stolen cookie dies with the old password.
   */
  async update(name: string, change: { role?: Role; passwordHash?: string; disabled?: boolean }, now: number): Promise<boolean> {
    const sets: string[] = ["updated_at = ?"];
    const params: Array<string | number> = [now];
    if (change.role !== undefined) sets.push("role = ?"), params.push(change.role);
    if (change.passwordHash !== undefined) sets.push("password_hash = ?", "password_changed_at = ?"), params.push(change.passwordHash, now);
    if (change.disabled !== undefined) sets.push("disabled = ?"), params.push(change.disabled ? 1 : 0);
    const n = await this.db.run(`UPDATE operators SET ${sets.join(", ")} WHERE name = ?`, [...params, name]);
    if (n === 1 && (change.passwordHash !== undefined || change.disabled === true)) await this.endSessions(name);
    return n === 1;
  }

  /** Removes an account with its tokens and sessions (ON DELETE CASCADE). */
  async remove(name: string): Promise<boolean> {
    return (await this.db.run("DELETE FROM operators WHERE name = ?", [name])) === 1;
  }

  // Tokens

  async addToken(
    t: { id: string; operator: string; label: string; role: Role; tokenHash: string; expiresAt: number },
    now: number,
  ): Promise<void> {
    await this.db.run(
      `INSERT INTO operator_tokens (id, operator, label, token_hash, role, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      [t.id, t.operator, t.label, t.tokenHash, t.role, now, t.expiresAt],
    );
  }

  async tokenByHash(tokenHash: string): Promise<TokenOwner | undefined> {
    const row = await this.db.get<TokenRow & { owner_disabled: number | string }>(
      `SELECT ${TOKEN_COLUMNS}, o.disabled AS owner_disabled FROM ${TOKENS_WITH_OWNER} WHERE t.token_hash = ?`,
      [tokenHash],
    );
    return row && { token: tokenOf(row), ownerDisabled: Number(row.owner_disabled) === 1 };
  }

  async token(id: string): Promise<OperatorToken | undefined> {
    const row = await this.db.get<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM ${TOKENS_WITH_OWNER} WHERE t.id = ?`, [id]);
    return row && tokenOf(row);
  }

  /** Tokens, newest first by id order of creation; of one operator, or of all. */
  async tokens(filter: { operator?: string; after?: string; limit: number }): Promise<OperatorToken[]> {
    const where: string[] = [];
    const params: Array<string | number> = [];
    if (filter.operator !== undefined) where.push("t.operator = ?"), params.push(filter.operator);
    if (filter.after !== undefined) where.push("t.id > ?"), params.push(filter.after);
    const rows = await this.db.all<TokenRow>(
      `SELECT ${TOKEN_COLUMNS} FROM ${TOKENS_WITH_OWNER} ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY t.id LIMIT ?`,
      [...params, filter.limit],
    );
    return rows.map(tokenOf);
  }

  /** Revokes a token; false when there is none or it was revoked already. */
  async revokeToken(id: string, now: number): Promise<boolean> {
    return (await this.db.run("UPDATE operator_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [now, id])) === 1;
  }

  /** Records a use; only when the last recorded one is older than `coarseMs` (a use is not a write per request). */
  async markTokenUsed(id: string, now: number, coarseMs: number): Promise<void> {
    await this.db.run("UPDATE operator_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)", [
      now,
      id,
      now - coarseMs,
    ]);
  }

  // Sessions

  async addSession(s: { idHash: string; operator: string; expiresAt: number; address: string | null }, now: number): Promise<void> {
    await this.db.run(
      "INSERT INTO operator_sessions (id_hash, operator, created_at, last_seen_at, expires_at, address) VALUES (?, ?, ?, ?, ?, ?)",
      [s.idHash, s.operator, now, now, s.expiresAt, s.address],
    );
  }

  async session(idHash: string): Promise<OperatorSession | undefined> {
    const row = await this.db.get<{
      operator: string;
      role: string;
      disabled: number | string;
      created_at: number | string;
      last_seen_at: number | string;
      expires_at: number | string;
    }>(
      `SELECT s.operator, o.role, o.disabled, s.created_at, s.last_seen_at, s.expires_at
       FROM operator_sessions s JOIN operators o ON o.name = s.operator WHERE s.id_hash = ?`,
      [idHash],
    );
    return (
      row && {
        operator: row.operator,
        role: row.role as Role,
        disabled: Number(row.disabled) === 1,
        createdAt: Number(row.created_at),
        lastSeenAt: Number(row.last_seen_at),
        expiresAt: Number(row.expires_at),
      }
    );
  }

  /** Moves a session's idle clock; only when the last move is older than `coarseMs`. */
  async touchSession(idHash: string, now: number, coarseMs: number): Promise<void> {
    await this.db.run("UPDATE operator_sessions SET last_seen_at = ? WHERE id_hash = ? AND last_seen_at < ?", [
      now,
      idHash,
      now - coarseMs,
    ]);
  }

  async endSession(idHash: string): Promise<boolean> {
    return (await this.db.run("DELETE FROM operator_sessions WHERE id_hash = ?", [idHash])) === 1;
  }

  async endSessions(operator: string): Promise<number> {
    return this.db.run("DELETE FROM operator_sessions WHERE operator = ?", [operator]);
  }

  /** Deletes sessions past their absolute end or idle past `idleMs`, and tokens expired or revoked before `tokensBefore`. */
  async prune(now: number, idleMs: number, tokensBefore: number): Promise<number> {
    const sessions = await this.db.run("DELETE FROM operator_sessions WHERE expires_at <= ? OR last_seen_at <= ?", [now, now - idleMs]);
    const tokens = await this.db.run("DELETE FROM operator_tokens WHERE expires_at < ? OR revoked_at < ?", [tokensBefore, tokensBefore]);
    return sessions + tokens;
  }
}

function operatorOf(r: OperatorRow): Operator {
  return {
    name: r.name,
    role: r.role as Role,
    passwordHash: r.password_hash,
    disabled: Number(r.disabled) === 1,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    passwordChangedAt: Number(r.password_changed_at),
  };
}

function tokenOf(r: TokenRow): OperatorToken {
  return {
    id: r.id,
    operator: r.operator,
    label: r.label,
    role: r.role as Role,
    ownerRole: r.owner_role as Role,
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
    lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
  };
}
