import type { Migration } from "./index.ts";

export const updateTold: Migration = {
  version: 26,
  name: "update-told",
  sql: `
-- What a device was told of an OS update: a failure once per target version,
-- a missed deadline once per version and deadline (updates/service.ts). The
-- marks on update_devices go with the device's target set, and that row is
-- made again when a policy is removed and made again, or a pilot moves the
-- device away and back; these rows stay while the device is enrolled. One
-- insert that conflicts, not a look through the device's events.
CREATE TABLE update_told (
  enrollment_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  os_version TEXT NOT NULL,
  deadline TEXT NOT NULL,
  told_at BIGINT NOT NULL,
  PRIMARY KEY (enrollment_id, kind, os_version, deadline)
);
`,
};
