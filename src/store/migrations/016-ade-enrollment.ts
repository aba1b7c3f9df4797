import type { Migration } from "./index.ts";

export const adeEnrollment: Migration = {
  version: 16,
  name: "ade-enrollment",
  sql: `
-- ADE phase 2. An ABM server's enrollment settings (JSON, ade/settings.ts):
-- the minimum OS per platform, Platform SSO, and the initial set a device
-- awaiting configuration gets before DeviceConfigured.
ALTER TABLE ade_servers ADD COLUMN enrollment_settings TEXT;

-- A SCEP challenge minted at the ADE enrollment URL is bound to the serial
-- number of the device it was made for; the certificate it buys records that
-- serial (and a renewal carries it over), so that a later Authenticate for an
-- ADE serial is let in only from a certificate issued for it (core/ade-identity.ts).
ALTER TABLE scep_challenges ADD COLUMN ade_serial TEXT;
ALTER TABLE scep_certificates ADD COLUMN ade_serial TEXT;

-- One row per ADE device that reached the enrollment URL: where it stands on
-- its way through Setup Assistant. state: profile_served, running (the initial
-- commands queued: steps_done of step_total have a result), releasing
-- (DeviceConfigured queued), configured (DeviceConfigured acknowledged),
-- failed (a step failed and the settings hold the device, or DeviceConfigured
-- was refused). steps: the initial commands' UUIDs (JSON list).
CREATE TABLE ade_enrollments (
  serial_number TEXT PRIMARY KEY,
  server_name TEXT NOT NULL REFERENCES ade_servers (name) ON DELETE CASCADE,
  udid TEXT NOT NULL,
  product TEXT,
  os_version TEXT,
  build_version TEXT,
  state TEXT NOT NULL,
  steps TEXT NOT NULL DEFAULT '[]',
  step_total INTEGER NOT NULL DEFAULT 0,
  steps_done INTEGER NOT NULL DEFAULT 0,
  steps_failed INTEGER NOT NULL DEFAULT 0,
  release_on_failure INTEGER NOT NULL DEFAULT 1,
  configured_command TEXT,
  error TEXT,
  served_at BIGINT NOT NULL,
  started_at BIGINT,
  released_at BIGINT,
  configured_at BIGINT,
  updated_at BIGINT NOT NULL
);
CREATE INDEX ade_enrollments_udid ON ade_enrollments (udid);
CREATE INDEX ade_enrollments_state ON ade_enrollments (state);
`,
};
