import type { Migration } from "./index.ts";

export const ddmStatusChannels: Migration = {
  version: 24,
  name: "ddm-status-channels",
  sql: `
-- Per channel that has reported DDM status: how many reports it sent (seq,
-- the ring's), and its last full report. Every declaration and value row of
-- a channel was in that report (a full report removes the rest), so a full
-- report rewrites only the rows it changes (store/ddm-status.ts): a row
-- whose own seq is older than full_seq was last seen in the full report,
-- whose status id and time the API then gives. Most reports change nothing,
-- and writing every row again was half a report's cost (BENCHMARKS.md,
-- 2026-12-05, ninth session).
CREATE TABLE ddm_status_channels (
  enrollment_id TEXT PRIMARY KEY,
  seq BIGINT NOT NULL,
  full_seq BIGINT NOT NULL,
  full_status_id TEXT,
  full_at BIGINT
);
INSERT INTO ddm_status_channels (enrollment_id, seq, full_seq)
  SELECT enrollment_id, MAX(seq), 0 FROM ddm_status_report_ring GROUP BY enrollment_id;
-- The report each row was last written by (0: before this migration, when
-- every row was written by each report that named it).
ALTER TABLE ddm_status_declarations ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ddm_status_values ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
`,
};
