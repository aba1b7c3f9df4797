// The JSON of operator accounts, tokens, sessions and the audit log (part of
// http/wire.ts, which re-exports it; kept apart so its lines stay together).
// Types only, the same contract as wire.ts.

import type { Role } from "../store/operators.ts";

export type { Role } from "../store/operators.ts";

type Time = string;

/** Who is signed in: the answer of POST and GET /v1/session. */
export interface SessionJson {
  operator: { name: string; role: Role };
  /** Send it back as `X-CSRF-Token` with every change made with the session cookie. */
  csrf_token: string;
  /** When the session ends at the latest (the idle timeout may end it sooner). */
  expires_at: Time;
  idle_timeout_seconds: number;
}

/** GET /v1/me: the caller, whatever its credential. */
export interface MeJson {
  name: string;
  role: Role;
  /** `session`, `token:<id>` or `api-key`. */
  credential: string;
}

export interface OperatorJson {
  name: string;
  role: Role;
  disabled: boolean;
  created_at: Time;
  updated_at: Time;
  password_changed_at: Time;
}

export type OperatorPage = { operators: OperatorJson[]; next_cursor: string | null };

/** POST /v1/operators. */
export interface OperatorAddBody {
  name: string;
  role: Role;
  password: string;
}

/** PATCH /v1/operators/{name}: any of them. */
export interface OperatorChangeBody {
  role?: Role;
  password?: string;
  disabled?: boolean;
}

export interface OperatorRemoved {
  removed: string;
}

export interface TokenJson {
  id: string;
  operator: string;
  label: string;
  /** The role it was made with. */
  role: Role;
  /** The role it acts with now: `role`, capped by its owner's role (lower after a demotion). */
  effective_role: Role;
  created_at: Time;
  expires_at: Time;
  revoked_at: Time | null;
  last_used_at: Time | null;
}

/** POST /v1/tokens: the token itself, shown this once. */
export interface TokenCreated extends TokenJson {
  token: string;
}

export type TokenPage = { tokens: TokenJson[]; next_cursor: string | null };

/** POST /v1/tokens. */
export interface TokenCreateBody {
  label: string;
  role?: Role;
  /** A duration (`30d`, `12h`); default 90d, at most 366d. */
  expires_in?: string;
  /** Admins only: whose token it is (default: the caller's own). */
  operator?: string;
}

export interface AuditEntryJson {
  id: number;
  at: Time;
  actor: string;
  credential: string;
  action: string;
  method: string;
  route: string;
  objects: string[];
  address: string | null;
  status: number;
}

export type AuditPage = { entries: AuditEntryJson[]; next_cursor: string | null };
