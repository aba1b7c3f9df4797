import type { Migration } from "./index.ts";

export const userAuth: Migration = {
  version: 2,
  name: "userauth",
  sql: `
-- Network and mobile users Orchard can authenticate. Digests only: never a password.
CREATE TABLE directory_users (
  short_name TEXT PRIMARY KEY,
  guid TEXT,
  full_name TEXT,
  state TEXT NOT NULL DEFAULT 'managed',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX directory_users_guid ON directory_users (guid);

-- HA1 per realm and hash: MD5(user:realm:password) or its SHA-256 twin (RFC 7616).
CREATE TABLE directory_digests (
  short_name TEXT NOT NULL REFERENCES directory_users (short_name) ON DELETE CASCADE,
  realm TEXT NOT NULL,
  algorithm TEXT NOT NULL,
  ha1 TEXT NOT NULL,
  PRIMARY KEY (short_name, realm, algorithm)
);

-- The latest UserAuthenticate handshake of each (Mac, user), and its AuthToken's hash.
CREATE TABLE user_sessions (
  enrollment_id TEXT PRIMARY KEY,
  device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  user_id TEXT NOT NULL,
  short_name TEXT,
  state TEXT NOT NULL,
  token_hash TEXT,
  challenged_at BIGINT,
  token_issued_at BIGINT,
  token_last_used_at BIGINT,
  updated_at BIGINT NOT NULL
);
CREATE INDEX user_sessions_device_id ON user_sessions (device_id);

-- Digest nonces already answered, so a replay fails on every instance.
CREATE TABLE used_nonces (
  nonce_id TEXT PRIMARY KEY,
  expires_at BIGINT NOT NULL
);

-- Failed digest attempts, for the per-user and per-device rate limit.
CREATE TABLE userauth_failures (
  id {{serial}},
  at BIGINT NOT NULL,
  device_id TEXT NOT NULL,
  short_name TEXT
);
CREATE INDEX userauth_failures_device ON userauth_failures (device_id, at);
CREATE INDEX userauth_failures_short_name ON userauth_failures (short_name, at);
`,
};
