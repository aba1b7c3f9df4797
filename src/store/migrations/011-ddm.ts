import type { Migration } from "./index.ts";

export const ddm: Migration = {
  version: 11,
  name: "ddm",
  sql: `
-- Declarative Device Management (store/ddm.ts, store/ddm-status.ts).
-- A declaration as the operator put it: its Payload JSON text as given, its
-- kind (the Endpoint folder: activation, configuration, asset, management),
-- and its ServerToken, a hash of its whole content (protocol/ddm-tokens.ts);
-- touched counts POST .../touch, which changes the token alone. payload is
-- what devices get; source is the operator's Payload when Orchard rewrote it
-- (an orchard:asset/ or orchard:profile/ reference made a URL with its hash,
-- core/ddm-assets.ts), kept to rewrite it again when that file changes.
CREATE TABLE ddm_declarations (
  identifier TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL,
  source TEXT,
  server_token TEXT NOT NULL,
  touched INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

-- Sets and their declarations (KMFDDM's model). A declaration in a set cannot be deleted.
CREATE TABLE ddm_set_declarations (
  set_name TEXT NOT NULL,
  declaration_identifier TEXT NOT NULL REFERENCES ddm_declarations (identifier),
  PRIMARY KEY (set_name, declaration_identifier)
);
CREATE INDEX ddm_set_declarations_declaration ON ddm_set_declarations (declaration_identifier);

-- Each set's token, a hash of its declarations' (Identifier, ServerToken),
-- rewritten in the transaction that changes the set or one of its
-- declarations; the row is also the lock that orders those rewrites.
CREATE TABLE ddm_sets (
  name TEXT PRIMARY KEY,
  token TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);

-- Which sets each channel has. No foreign key: a set may be assigned to an
-- enrollment id before the device enrolls (KMFDDM allows it too).
CREATE TABLE ddm_enrollment_sets (
  enrollment_id TEXT NOT NULL,
  set_name TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (enrollment_id, set_name)
);
CREATE INDEX ddm_enrollment_sets_set ON ddm_enrollment_sets (set_name, enrollment_id);

-- Channels owed a DeclarativeManagement command, and from when: changes
-- within the window coalesce into one row (the first one's due time), and
-- core/ddm-sync.ts claims due rows (DELETE ... RETURNING: one process each).
CREATE TABLE ddm_sync_due (
  enrollment_id TEXT PRIMARY KEY,
  due_at BIGINT NOT NULL
);
CREATE INDEX ddm_sync_due_at ON ddm_sync_due (due_at);

-- What each channel last reported of each declaration.
CREATE TABLE ddm_status_declarations (
  enrollment_id TEXT NOT NULL,
  identifier TEXT NOT NULL,
  kind TEXT NOT NULL,
  active INTEGER NOT NULL,
  valid TEXT NOT NULL,
  server_token TEXT NOT NULL,
  reasons TEXT,
  status_id TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (enrollment_id, identifier)
);
CREATE INDEX ddm_status_declarations_identifier ON ddm_status_declarations (identifier);

-- Every other status item, by path (device.operating-system.version), its value as JSON.
CREATE TABLE ddm_status_values (
  enrollment_id TEXT NOT NULL,
  path TEXT NOT NULL,
  value TEXT NOT NULL,
  status_id TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (enrollment_id, path)
);

-- Errors reported (the report's Errors, and declarations reported invalid); pruned with the events.
CREATE TABLE ddm_status_errors (
  id {{serial}},
  enrollment_id TEXT NOT NULL,
  path TEXT NOT NULL,
  error TEXT NOT NULL,
  status_id TEXT NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX ddm_status_errors_enrollment ON ddm_status_errors (enrollment_id, id);
CREATE INDEX ddm_status_errors_at ON ddm_status_errors (at);

-- The last few raw reports of each channel (store/ddm-status.ts keeps REPORTS_KEPT).
CREATE TABLE ddm_status_reports (
  id {{serial}},
  enrollment_id TEXT NOT NULL,
  status_id TEXT NOT NULL,
  report TEXT NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX ddm_status_reports_enrollment ON ddm_status_reports (enrollment_id, id);
`,
};
