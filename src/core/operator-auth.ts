import { createHash, randomBytes } from "node:crypto";
import { BadRequest, Conflict, Forbidden, NotFound } from "../errors.ts";
import type { Store } from "../store/index.ts";
import { isRole, ROLES, type Operator, type OperatorToken, type Role } from "../store/operators.ts";
import { dummyHash, hashPassword, passwordProblem, verifyPassword } from "./password.ts";

/** Who made a request, as the API's guard established it. */
export interface Actor {
  /** The operator's name, or `api-key` (the shared key is no account). */
  name: string;
  /** How it proved it: `session`, `token:<id>`, `api-key`. */
  credential: string;
  role: Role;
  /** The operator account behind it (none for the API key). */
  operator?: string;
  /** A browser session's cookie value, hashed; only for `session`. */
  sessionIdHash?: string;
  /** When a session ends at the latest; only for `session`. */
  sessionExpiresAt?: number;
}

export interface SessionTimes {
  /** A session unused this long ends (--session-idle-timeout). */
  idleMs: number;
  /** A session ends this long after sign-in, used or not (--session-max-age). */
  absoluteMs: number;
}

/** Personal API tokens start with this, so a Basic password is known for one without a lookup. */
export const TOKEN_PREFIX = "orchard_pat_";
/** A token's longest and default lifetimes. */
export const MAX_TOKEN_TTL_MS = 366 * 86_400_000;
export const DEFAULT_TOKEN_TTL_MS = 90 * 86_400_000;

/** Operator names: what a person or a service account is called, safe in a URL path and a log line. */
const NAME_RULE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
export const OPERATOR_NAME_RULE = "an operator name is 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit";

/**
 * Uses of a token or a session are written at most this often: `last used`
 * and the idle clock are minute-grained, and a request is not a write.
 */
const USE_WRITE_MS = 60_000;

export function roleRank(role: Role): number {
  return ROLES.indexOf(role);
}

/** The role a token acts with: the one it was made with, capped by its owner's role now. */
export function effectiveRole(token: OperatorToken): Role {
  return roleRank(token.role) <= roleRank(token.ownerRole) ? token.role : token.ownerRole;
}

/** Whether `role` may do what needs `needed`. */
export function allows(role: Role, needed: Role): boolean {
  return roleRank(role) >= roleRank(needed);
}

/**
 * Names the audit log gives callers that are no account (the shared API key,
 * a failed sign-in): an operator so named would read as one of them.
 * Reserved ignoring case, like every name (see OperatorAuth.add).
 */
export const RESERVED_OPERATOR_NAMES = ["api-key", "anonymous"] as const;

export function checkOperatorName(name: string): string {
  if (!NAME_RULE.test(name)) throw new BadRequest(OPERATOR_NAME_RULE, "invalid_parameter");
  if ((RESERVED_OPERATOR_NAMES as readonly string[]).includes(name.toLowerCase())) {
    throw new BadRequest(`"${name}" is reserved: the audit log names the API key and failed sign-ins so`, "invalid_parameter");
  }
  return name;
}

export function checkRole(value: unknown, field = "role"): Role {
  if (!isRole(value)) throw new BadRequest(`${field} must be one of ${ROLES.join(", ")}`, "invalid_parameter");
  return value;
}

function checkPassword(password: string): string {
  const problem = passwordProblem(password);
  if (problem) throw new BadRequest(problem, "invalid_parameter");
  return password;
}

export function sha256Hex(value: string): string {
  return createHash("sha256").update(value).digest("hex");
}

/**
 * The CSRF token of a session: derived from the cookie's secret value (so
 * there is nothing more to store), and no help in finding it (a one-way hash
 * under another label than the stored id hash).
 */
export function csrfTokenOf(sessionId: string): string {
  return createHash("sha256").update(`orchard-csrf\0${sessionId}`).digest("base64url");
}

/**
 * Operator accounts, their tokens and their browser sessions: every rule of
 * who is who. The HTTP layer reads the credentials off the request and asks here.
 */
export class OperatorAuth {
  constructor(
    private readonly store: Store,
    readonly times: SessionTimes,
  ) {}

  // Accounts

  /**
   * Adds an account. A name is taken ignoring case: `ALICE` beside `alice`
   * would read as the same person in the audit log and the console.
   */
  async add(name: string, role: Role, password: string, now = Date.now()): Promise<Operator> {
    checkOperatorName(name);
    const hash = await hashPassword(checkPassword(password));
    const taken = await this.store.operators.add({ name, role, passwordHash: hash }, now);
    if (taken !== undefined) {
      throw new Conflict(taken === name ? "an operator has this name" : `an operator has this name in other letter case: ${taken}`);
    }
    return (await this.store.operators.get(name))!;
  }

  /**
   * Changes an account. The last enabled admin cannot be demoted or disabled
   * (nobody could manage accounts then but the API key). A new password or a
   * disabling ends the account's sessions at once.
   */
  async update(name: string, change: { role?: Role; password?: string; disabled?: boolean }, now = Date.now()): Promise<Operator> {
    const passwordHash = change.password === undefined ? undefined : await hashPassword(checkPassword(change.password));
    return this.store.transaction(async (tx) => {
      const current = await tx.operators.get(name);
      if (!current) throw new NotFound("no such operator");
      const losesAdmin =
        current.role === "admin" && !current.disabled && ((change.role && change.role !== "admin") || change.disabled === true);
      if (losesAdmin && (await tx.operators.activeAdmins()) <= 1) throw new Conflict("this is the last enabled admin");
      await tx.operators.update(name, { role: change.role, passwordHash, disabled: change.disabled }, now);
      return (await tx.operators.get(name))!;
    });
  }

  async remove(name: string): Promise<void> {
    await this.store.transaction(async (tx) => {
      const current = await tx.operators.get(name);
      if (!current) throw new NotFound("no such operator");
      if (current.role === "admin" && !current.disabled && (await tx.operators.activeAdmins()) <= 1) {
        throw new Conflict("this is the last enabled admin");
      }
      await tx.operators.remove(name);
    });
  }

  /**
   * Checks an operator's password (its own change of password asks for the
   * old one). `caller` (an address, an account) is whose share of the
   * server's hash queue it takes: one guesser cannot fill it for everyone.
   */
  async checkPassword(name: string, password: string, caller?: string): Promise<boolean> {
    const operator = await this.store.operators.get(name);
    const ok = await verifyPassword(password, operator?.passwordHash ?? (await dummyHash()), caller);
    return ok && operator !== undefined && !operator.disabled;
  }

  // Sessions

  /**
   * Signs in: a new session for the right name and password of an enabled
   * account; undefined for anything else (one answer for all of them, and
   * the same time: an unknown name is checked against a dummy hash).
   */
  async signIn(
    name: string,
    password: string,
    address: string | null,
    caller?: string,
  ): Promise<{ sessionId: string; operator: Operator } | undefined> {
    if (typeof name !== "string" || typeof password !== "string" || name.length > 64 || password.length > 1024) return undefined;
    if (!(await this.checkPassword(name, password, caller))) return undefined;
    // After the hash, which takes a while: the session's clocks start when it is handed out.
    const now = Date.now();
    const operator = (await this.store.operators.get(name))!;
    const sessionId = randomBytes(32).toString("base64url");
    await this.store.operators.addSession(
      { idHash: sha256Hex(sessionId), operator: name, expiresAt: now + this.times.absoluteMs, address },
      now,
    );
    return { sessionId, operator };
  }

  /** The actor of a session cookie's value; undefined when it is unknown, idle, past its end, or its account disabled. */
  async session(sessionId: string, now = Date.now()): Promise<Actor | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(sessionId)) return undefined;
    const idHash = sha256Hex(sessionId);
    const s = await this.store.operators.session(idHash);
    if (!s) return undefined;
    if (s.disabled || now >= s.expiresAt || now - s.lastSeenAt >= this.times.idleMs) {
      await this.store.operators.endSession(idHash);
      return undefined;
    }
    // Written only when the recorded use is older than a minute, or a tenth of a short idle timeout.
    await this.store.operators.touchSession(idHash, now, Math.min(USE_WRITE_MS, this.times.idleMs / 10));
    return {
      name: s.operator,
      operator: s.operator,
      credential: "session",
      role: s.role,
      sessionIdHash: idHash,
      sessionExpiresAt: s.expiresAt,
    };
  }

  async signOut(sessionIdHash: string): Promise<void> {
    await this.store.operators.endSession(sessionIdHash);
  }

  // Tokens

  /**
   * A personal API token for `owner`, shown once (only its hash is kept). Its
   * role is at most the owner's, and at most the creator's (an admin making
   * one for another operator is capped by that operator's role).
   */
  async createToken(
    owner: string,
    o: { label: string; role?: Role; ttlMs?: number; creatorRole: Role },
    now = Date.now(),
  ): Promise<{ secret: string; token: OperatorToken }> {
    const account = await this.store.operators.get(owner);
    if (!account) throw new NotFound("no such operator");
    if (account.disabled) throw new Conflict("the operator is disabled");
    const role = o.role ?? account.role;
    if (!allows(account.role, role) || !allows(o.creatorRole, role)) {
      throw new Forbidden(`a token's role is at most its owner's and its creator's (${account.role})`);
    }
    const ttl = o.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
    if (ttl <= 0 || ttl > MAX_TOKEN_TTL_MS) throw new BadRequest("a token expires within 366 days", "invalid_parameter");
    const id = randomBytes(8).toString("hex");
    const secret = `${TOKEN_PREFIX}${id}_${randomBytes(32).toString("base64url")}`;
    await this.store.operators.addToken(
      { id, operator: owner, label: o.label, role, tokenHash: sha256Hex(secret), expiresAt: now + ttl },
      now,
    );
    return { secret, token: (await this.store.operators.token(id))! };
  }

  /**
   * The actor of a token; undefined when it is unknown, expired, revoked, or
   * its owner disabled. Its role is capped by its owner's role today.
   */
  async token(secret: string, now = Date.now()): Promise<Actor | undefined> {
    if (!secret.startsWith(TOKEN_PREFIX) || secret.length > 200) return undefined;
    const found = await this.store.operators.tokenByHash(sha256Hex(secret));
    if (!found) return undefined;
    const { token, ownerDisabled } = found;
    if (ownerDisabled || token.revokedAt !== null || now >= token.expiresAt) return undefined;
    await this.store.operators.markTokenUsed(token.id, now, USE_WRITE_MS);
    return { name: token.operator, operator: token.operator, credential: `token:${token.id}`, role: effectiveRole(token) };
  }
}
