import type { Migration } from "./index.ts";

export const push: Migration = {
  version: 3,
  name: "push",
  sql: `
-- APNs push certificates, one per topic (the certificate subject's UID). The
-- private key is sealed with AES-256-GCM under the server's secret key
-- (--secret-key or <data dir>/secret-key): nonce (12 bytes), tag (16), ciphertext.
CREATE TABLE push_certs (
  topic TEXT PRIMARY KEY,
  cert_pem TEXT NOT NULL,
  key_sealed {{blob}} NOT NULL,
  fingerprint TEXT NOT NULL,
  not_before BIGINT NOT NULL,
  not_after BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

-- A channel's push token APNs refused (410 Unregistered, 400 BadDeviceToken).
-- It stays dead while the channel's push_token is this one and its last
-- TokenUpdate (enrollments.updated_at) is not later than marked_at.
CREATE TABLE push_dead_tokens (
  enrollment_id TEXT PRIMARY KEY REFERENCES enrollments (id) ON DELETE CASCADE,
  push_token TEXT NOT NULL,
  status INTEGER NOT NULL,
  reason TEXT NOT NULL,
  apns_timestamp BIGINT,
  marked_at BIGINT NOT NULL
);

-- Pushes to send later (after a NotNow, brief 6.6); whichever process polls first sends it.
CREATE TABLE push_due (
  enrollment_id TEXT PRIMARY KEY REFERENCES enrollments (id) ON DELETE CASCADE,
  due_at BIGINT NOT NULL,
  reason TEXT NOT NULL
);
CREATE INDEX push_due_at ON push_due (due_at);

-- Which process runs a periodic push job (the silent-device sweep) until expires_at.
CREATE TABLE push_leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
`,
};
