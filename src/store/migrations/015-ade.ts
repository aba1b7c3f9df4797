import type { Migration } from "./index.ts";

export const ade: Migration = {
  version: 15,
  name: "ade",
  sql: `
-- Automated Device Enrollment: one row per ABM/ASM "MDM server" (its local
-- name). The token key pair's private key and the OAuth1 credentials of the
-- server token are sealed with AES-256-GCM under the server's secret key
-- (--secret-key or <data dir>/secret-key), like push certificate keys. The
-- session token Apple hands out is never stored (each process keeps its own).
CREATE TABLE ade_servers (
  name TEXT PRIMARY KEY,
  cert_pem TEXT NOT NULL,
  key_sealed {{blob}} NOT NULL,
  cert_not_after BIGINT NOT NULL,
  tokens_sealed {{blob}},
  consumer_key TEXT,
  token_expiry BIGINT,
  token_uploaded_at BIGINT,
  expiry_notified_at BIGINT,
  -- From Apple's GET /account after the token upload.
  server_uuid TEXT,
  server_name TEXT,
  org_name TEXT,
  -- The device list's cursor; phase 'fetch' until the first full fetch ends, then 'sync'.
  cursor TEXT,
  phase TEXT NOT NULL DEFAULT 'fetch',
  last_sync_at BIGINT,
  last_sync_error TEXT,
  default_profile TEXT,
  -- Which process syncs this server until sync_until (one sync at a time, across processes).
  sync_holder TEXT,
  sync_until BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

-- Every device Orchard has seen from ABM, per ABM server (a device moved to
-- another server is 'deleted' on one and 'added' on the other). removed = 1
-- once ABM said op_type deleted. Enrolled or not: joined to devices by serial.
CREATE TABLE ade_devices (
  server_name TEXT NOT NULL REFERENCES ade_servers (name) ON DELETE CASCADE,
  serial_number TEXT NOT NULL,
  model TEXT,
  description TEXT,
  color TEXT,
  asset_tag TEXT,
  os TEXT,
  device_family TEXT,
  profile_status TEXT,
  profile_uuid TEXT,
  profile_assign_time BIGINT,
  profile_push_time BIGINT,
  device_assigned_by TEXT,
  device_assigned_date BIGINT,
  op_type TEXT,
  op_date BIGINT,
  removed INTEGER NOT NULL DEFAULT 0,
  first_seen_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (server_name, serial_number)
);
CREATE INDEX ade_devices_serial ON ade_devices (serial_number);

-- Operator-defined DEP profiles, per ABM server (a profile UUID is Apple's
-- answer to that server's POST /profile). body: the profile JSON in Apple's
-- keys; profile_uuid is cleared when the body changes, and set again when the
-- profile is next defined at Apple.
CREATE TABLE ade_profiles (
  server_name TEXT NOT NULL REFERENCES ade_servers (name) ON DELETE CASCADE,
  name TEXT NOT NULL,
  body TEXT NOT NULL,
  profile_uuid TEXT,
  defined_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (server_name, name)
);
`,
};
