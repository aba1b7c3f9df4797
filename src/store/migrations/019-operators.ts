import type { Migration } from "./index.ts";

export const operators: Migration = {
  version: 19,
  name: "operators",
  sql: `
-- Operator accounts (store/operators.ts). password_hash is a PHC-style scrypt
-- string (core/password.ts) carrying its own parameters; disabled = 1 stops
-- its sessions and tokens at once (they are checked against this row on use).
CREATE TABLE operators (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  password_changed_at BIGINT NOT NULL
);

-- Personal API tokens: only the SHA-256 of the token is stored (it has 256
-- random bits, so no slow hash is needed). role is at most the owner's; the
-- owner's current role still caps it on each use.
CREATE TABLE operator_tokens (
  id TEXT PRIMARY KEY,
  operator TEXT NOT NULL REFERENCES operators (name) ON DELETE CASCADE,
  label TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT,
  last_used_at BIGINT
);
CREATE INDEX operator_tokens_operator ON operator_tokens (operator);

-- Browser sessions: the SHA-256 of the cookie's value, never the value.
CREATE TABLE operator_sessions (
  id_hash TEXT PRIMARY KEY,
  operator TEXT NOT NULL REFERENCES operators (name) ON DELETE CASCADE,
  created_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  address TEXT
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator);
CREATE INDEX operator_sessions_expires ON operator_sessions (expires_at);

-- The audit log (store/audit.ts): one row per change asked of the API.
-- actor is the operator (or api-key, or anonymous for a failed sign-in);
-- credential says how it came: session, token:<id>, api-key, password.
-- objects is the JSON array of the ids it names; audit_objects holds them
-- again one per row, for the object filter.
CREATE TABLE audit_log (
  id {{serial}},
  at BIGINT NOT NULL,
  actor TEXT NOT NULL,
  credential TEXT NOT NULL,
  action TEXT NOT NULL,
  method TEXT NOT NULL,
  route TEXT NOT NULL,
  objects TEXT NOT NULL,
  address TEXT,
  status INTEGER NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE TABLE audit_objects (
  entry_id BIGINT NOT NULL REFERENCES audit_log (id) ON DELETE CASCADE,
  object TEXT NOT NULL,
  PRIMARY KEY (object, entry_id)
);
CREATE INDEX audit_objects_entry ON audit_objects (entry_id);
`,
};
