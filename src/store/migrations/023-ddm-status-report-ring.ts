import type { Migration } from "./index.ts";

export const ddmStatusReportRing: Migration = {
  version: 23,
  name: "ddm-status-report-ring",
  sql: `
-- A channel's last raw status reports as a ring of slots (slot = seq % 5,
-- store/ddm-status.ts's REPORTS_KEPT): a new report overwrites its channel's
-- oldest in place, one row on one page, where an insert and a delete touched
-- the table, its index and the free list (a third of a status report's cost
-- on SQLite: BENCHMARKS.md, 2026-12-04 fifth session). seq counts the
-- channel's reports; the newest has the highest.
CREATE TABLE ddm_status_report_ring (
  enrollment_id TEXT NOT NULL,
  slot INTEGER NOT NULL,
  seq BIGINT NOT NULL,
  status_id TEXT NOT NULL,
  report TEXT NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (enrollment_id, slot)
);
INSERT INTO ddm_status_report_ring (enrollment_id, slot, seq, status_id, report, at)
  SELECT enrollment_id, seq % 5, seq, status_id, report, at FROM (
    SELECT enrollment_id, status_id, report, at,
      ROW_NUMBER() OVER (PARTITION BY enrollment_id ORDER BY id) AS seq,
      ROW_NUMBER() OVER (PARTITION BY enrollment_id ORDER BY id DESC) AS newest
    FROM ddm_status_reports) r
  WHERE newest <= 5;
DROP TABLE ddm_status_reports;
`,
};
