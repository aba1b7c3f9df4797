import type { Migration } from "./index.ts";

// Times are milliseconds since the epoch (BIGINT); booleans are 0/1 INTEGERs,
// so that one SQL text serves SQLite and PostgreSQL.
export const core: Migration = {
  version: 1,
  name: "core",
  sql: `
CREATE TABLE settings (
  name TEXT PRIMARY KEY,
  value {{blob}} NOT NULL
);

-- One row per device (UDID, or EnrollmentID for a User Enrollment): the facts
-- from Authenticate, the identity certificate bound to it, its bootstrap token.
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  serial_number TEXT,
  product_name TEXT,
  model TEXT,
  model_name TEXT,
  device_name TEXT,
  os_version TEXT,
  build_version TEXT,
  imei TEXT,
  meid TEXT,
  topic TEXT,
  cert_fingerprint TEXT NOT NULL,
  bootstrap_token {{blob}},
  authenticate_message {{blob}},
  authenticated_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX devices_cert_fingerprint ON devices (cert_fingerprint);
CREATE INDEX devices_serial_number ON devices (serial_number);

-- One row per channel: the device channel, and each user channel of it.
CREATE TABLE enrollments (
  id TEXT PRIMARY KEY,
  device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  user_id TEXT,
  user_short_name TEXT,
  user_long_name TEXT,
  enabled INTEGER NOT NULL DEFAULT 0,
  topic TEXT NOT NULL,
  push_token TEXT NOT NULL,
  push_magic TEXT NOT NULL,
  unlock_token {{blob}},
  token_update_count INTEGER NOT NULL DEFAULT 0,
  awaiting_configuration INTEGER NOT NULL DEFAULT 0,
  not_on_console INTEGER,
  token_update_message {{blob}},
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  last_seen_at BIGINT
);
CREATE INDEX enrollments_device_id ON enrollments (device_id);
CREATE INDEX enrollments_type ON enrollments (type, id);

-- A command as the operator queued it; sent to devices byte for byte.
CREATE TABLE commands (
  command_uuid TEXT PRIMARY KEY,
  request_type TEXT NOT NULL,
  command {{blob}} NOT NULL,
  created_at BIGINT NOT NULL
);

-- One row per (channel, command): the queue while active, then the result.
CREATE TABLE command_queue (
  id {{serial}},
  enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,
  command_uuid TEXT NOT NULL REFERENCES commands (command_uuid) ON DELETE CASCADE,
  status TEXT NOT NULL DEFAULT 'Queued',
  active INTEGER NOT NULL DEFAULT 1,
  not_now_count INTEGER NOT NULL DEFAULT 0,
  result {{blob}},
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  UNIQUE (enrollment_id, command_uuid)
);
CREATE INDEX command_queue_next ON command_queue (enrollment_id, id) WHERE active = 1;
CREATE INDEX command_queue_command ON command_queue (command_uuid);
CREATE INDEX command_queue_done ON command_queue (updated_at) WHERE active = 0;

CREATE TABLE events (
  id {{serial}},
  at BIGINT NOT NULL,
  type TEXT NOT NULL,
  enrollment_id TEXT,
  detail TEXT
);
CREATE INDEX events_enrollment ON events (enrollment_id, id);
CREATE INDEX events_type ON events (type, id);
CREATE INDEX events_at ON events (at);
`,
};
