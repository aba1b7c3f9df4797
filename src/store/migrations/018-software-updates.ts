import type { Migration } from "./index.ts";

export const softwareUpdates: Migration = {
  version: 18,
  name: "software-updates",
  sql: `
-- OS updates through DDM (src/updates/, store/software-updates.ts).
-- The software lookup feed's last good copy (one row, id 1): its releases
-- as Orchard read them (JSON), their hash (a change re-targets devices), and
-- the last attempt's error, kept beside the good copy a failure leaves in
-- place. lease_*: which process re-targets devices until when (one at a time).
CREATE TABLE software_lookup_feed (
  id INTEGER PRIMARY KEY,
  url TEXT,
  releases TEXT,
  sha256 TEXT,
  fetched_at BIGINT,
  attempted_at BIGINT,
  error TEXT,
  error_at BIGINT,
  lease_holder TEXT,
  lease_until BIGINT
);
INSERT INTO software_lookup_feed (id) VALUES (1);

-- An operator's update policy: a platform, a group of enrollments (scope all,
-- a DDM set's enrollments, or a list in update_policy_enrollments), a target
-- (mode latest: the newest release for each model, deadline_days after
-- Apple's posting date at deadline_time; mode version: target_* as given),
-- and an optional softwareupdate.settings Payload (JSON).
CREATE TABLE update_policies (
  name TEXT PRIMARY KEY,
  platform TEXT NOT NULL,
  scope TEXT NOT NULL,
  scope_set TEXT,
  mode TEXT NOT NULL,
  target_os_version TEXT,
  target_build_version TEXT,
  target_local_date_time TEXT,
  deadline_days INTEGER,
  deadline_time TEXT,
  details_url TEXT,
  settings TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

CREATE TABLE update_policy_enrollments (
  policy TEXT NOT NULL,
  enrollment_id TEXT NOT NULL,
  PRIMARY KEY (policy, enrollment_id)
);

-- Each device channel a policy reaches: the target Orchard gave it (the
-- built-in DDM set holding its enforcement declaration; NULL: none, it is
-- current or no release is known for its model), its compliance state from
-- its status, and whether its failure and its missed deadline were told
-- (events once per target, not on every report).
CREATE TABLE update_devices (
  enrollment_id TEXT PRIMARY KEY,
  policy TEXT NOT NULL,
  target_set TEXT,
  os_version TEXT,
  build_version TEXT,
  local_date_time TEXT,
  deadline_at BIGINT,
  state TEXT NOT NULL,
  reason TEXT,
  failed_notified INTEGER NOT NULL DEFAULT 0,
  overdue_notified INTEGER NOT NULL DEFAULT 0,
  updated_at BIGINT NOT NULL
);
CREATE INDEX update_devices_policy ON update_devices (policy, state);
CREATE INDEX update_devices_deadline ON update_devices (deadline_at) WHERE overdue_notified = 0;
`,
};
