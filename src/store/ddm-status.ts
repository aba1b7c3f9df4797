import type { DeclarationKind, DeclarationStatus, StatusReport } from "../protocol/ddm.ts";
import type { Database, Sql } from "./db.ts";
import { chunks } from "./enrollments.ts";

// What each channel reports over Declarative Device Management: its
// declarations' state, its other status items by path, its errors, and its
// last few raw reports. A FullReport replaces what a channel reported
// before; any other report is merged into it.

/** How many raw reports each channel keeps (KMFDDM's status-report?index=); the ring's size, set by migration 023. */
export const REPORTS_KEPT = 5;
/**
 * Counts a channel's report and returns its seq; a full one (status id and
 * time given, null otherwise) becomes the channel's last full report. SET
 * reads the row as it was, so seq + 1 is the new seq in both places.
 */
const COUNT_REPORT_SQL = `INSERT INTO ddm_status_channels AS c (enrollment_id, seq, full_seq, full_status_id, full_at)
  VALUES (?, 1, ?, ?, ?)
  ON CONFLICT (enrollment_id) DO UPDATE SET seq = c.seq + 1,
    full_seq = CASE WHEN excluded.full_status_id IS NULL THEN c.full_seq ELSE c.seq + 1 END,
    full_status_id = COALESCE(excluded.full_status_id, c.full_status_id), full_at = COALESCE(excluded.full_at, c.full_at)
  RETURNING seq`;
/** A row's status id and time: its own, or its channel's last full report's when that named it later (migration 024). */
const LAST_SEEN_SQL = (row: string) => `CASE WHEN c.full_seq > ${row}.seq THEN c.full_status_id ELSE ${row}.status_id END AS status_id,
  CASE WHEN c.full_seq > ${row}.seq THEN c.full_at ELSE ${row}.updated_at END AS updated_at`;
/** The most status values a channel keeps: past it, a report's new paths are refused (the paths already stored are updated). */
export const MAX_CHANNEL_STATUS_VALUES = 5000;
export const PRUNE_STATUS_ERRORS_SQL = "DELETE FROM ddm_status_errors WHERE at < ?";

/** What a channel's stored row of a declaration says, to tell whether a report changes it. */
interface StoredDeclarationRow {
  identifier: string;
  kind: DeclarationKind;
  active: number;
  valid: string;
  server_token: string;
  reasons: string | null;
}

export interface StoredDeclarationStatus {
  enrollmentId: string;
  identifier: string;
  kind: DeclarationKind;
  active: boolean;
  valid: string;
  serverToken: string;
  /** The declaration's ServerToken now (null: no longer stored). */
  currentToken: string | null;
  reasons: unknown[] | null;
  statusId: string;
  updatedAt: number;
}

/** What a report changed, and what of it was not kept. */
export interface RecordOutcome {
  /** The declarations whose state changed. */
  changes: DeclarationChange[];
  /** Declaration statuses dropped: no declaration of that identifier is in the channel's sets. */
  unknownDeclarations: number;
  /** New status paths refused: the channel holds MAX_CHANNEL_STATUS_VALUES already. */
  refusedValues: number;
}

/** A declaration whose active, valid or reasons differ from what the channel reported before. */
export interface DeclarationChange {
  now: DeclarationStatus;
  before: { active: boolean; valid: string } | null;
}

export interface StoredStatusValue {
  path: string;
  value: unknown;
  statusId: string;
  updatedAt: number;
}

export interface StoredStatusError {
  path: string;
  error: unknown;
  statusId: string;
  at: number;
}

export interface StoredReport {
  statusId: string;
  report: string;
  at: number;
  index: number;
}

export interface SetCompliance {
  enrollments: number;
  declarations: Array<{ identifier: string; serverToken: string; compliant: number; failing: number; pending: number }>;
}

export class DdmStatusStore {
  constructor(private readonly db: Database) {}

  /**
   * Stores one report of a channel (in the caller's transaction, with the
   * events it makes) and returns the declarations whose state changed. Only
   * declarations in the channel's sets are kept (a report cannot fill the table
   * with made-up identifiers, nor report on another channel's declarations),
   * and a channel holds at most MAX_CHANNEL_STATUS_VALUES
   * status values (reports that are not full cannot grow it without bound).
   * A full report removes the rows it does not name, and writes only those
   * whose content it changes: a row it left as it was reads as seen in it
   * (migration 024), so that a full report that changes nothing writes its
   * raw text and its channel's counter alone (and its errors: the Errors it
   * reports and its invalid declarations are kept at every report). A report
   * that is not full writes every row it names: they were last seen in it.
   */
  async record(enrollmentId: string, report: StatusReport, raw: string, statusId: string, now: number): Promise<RecordOutcome> {
    return this.db.transaction(async (tx) => {
      // First, the channel's counter: on PostgreSQL its row lock makes a second report of the channel
      // wait for this one, which then reads what this one wrote (SQLite has one writer anyway).
      const seq = Number(
        (await tx.get<{ seq: number }>(COUNT_REPORT_SQL, [
          enrollmentId,
          report.fullReport ? 1 : 0,
          report.fullReport ? statusId : null,
          report.fullReport ? now : null,
        ]))!.seq,
      );
      const reported = [...new Map(report.declarations.map((d) => [d.identifier, d])).values()];
      // What the channel reported before: every row for a full report (it compares them all, and removes those
      // it does not name), the rows it names for one that is not full (a channel may hold thousands).
      const storedSql =
        "SELECT identifier, kind, active, valid, server_token, reasons FROM ddm_status_declarations WHERE enrollment_id = ?";
      const storedRows: StoredDeclarationRow[] = [];
      if (report.fullReport) storedRows.push(...(await tx.all<StoredDeclarationRow>(storedSql, [enrollmentId])));
      else {
        for (const chunk of chunks(reported, 500)) {
          const named = `${storedSql} AND identifier IN (${chunk.map(() => "?").join(", ")})`;
          storedRows.push(...(await tx.all<StoredDeclarationRow>(named, [enrollmentId, ...chunk.map((d) => d.identifier)])));
        }
      }
      const stored = new Map(storedRows.map((r) => [r.identifier, r]));
      // The reported declarations that one of the channel's sets holds, with their kind. Any other is dropped:
      // a device cannot give itself the status of a declaration it was never given, nor file one under another kind.
      const assigned = new Map<string, DeclarationKind>();
      for (const chunk of chunks(reported, 500)) {
        const rows = await tx.all<{ identifier: string; kind: DeclarationKind }>(
          `SELECT d.identifier, d.kind FROM ddm_declarations d
           WHERE d.identifier IN (${chunk.map(() => "?").join(", ")})
             AND EXISTS (SELECT 1 FROM ddm_enrollment_sets es JOIN ddm_set_declarations sd ON sd.set_name = es.set_name
               WHERE es.enrollment_id = ? AND sd.declaration_identifier = d.identifier)`,
          [...chunk.map((d) => d.identifier), enrollmentId],
        );
        for (const r of rows) assigned.set(r.identifier, r.kind);
      }
      const declarations: DeclarationStatus[] = [];
      for (const d of reported) {
        const kind = assigned.get(d.identifier);
        if (kind) declarations.push(d.kind === kind ? d : { ...d, kind });
      }
      const changes: DeclarationChange[] = [];
      // The rows to write: every one a partial report names (it is their last seen), and what a full one changes.
      const rewritten: DeclarationStatus[] = [];
      for (const d of declarations) {
        const had = stored.get(d.identifier);
        const reasons = d.reasons === null ? null : JSON.stringify(d.reasons);
        const stateChanged = !had || Number(had.active) !== (d.active ? 1 : 0) || had.valid !== d.valid || had.reasons !== reasons;
        if (stateChanged) changes.push({ now: d, before: had ? { active: Number(had.active) === 1, valid: had.valid } : null });
        if (!report.fullReport || stateChanged || had.kind !== d.kind || had.server_token !== d.serverToken) rewritten.push(d);
      }
      for (const chunk of chunks(rewritten, 100)) {
        await tx.run(
          `INSERT INTO ddm_status_declarations (enrollment_id, identifier, kind, active, valid, server_token, reasons, status_id, updated_at, seq)
           VALUES ${chunk.map(() => "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").join(", ")}
           ON CONFLICT (enrollment_id, identifier) DO UPDATE SET kind = excluded.kind, active = excluded.active, valid = excluded.valid,
             server_token = excluded.server_token, reasons = excluded.reasons, status_id = excluded.status_id, updated_at = excluded.updated_at,
             seq = excluded.seq`,
          chunk.flatMap((d) => [
            enrollmentId,
            d.identifier,
            d.kind,
            d.active,
            d.valid,
            d.serverToken,
            d.reasons === null ? null : JSON.stringify(d.reasons),
            statusId,
            now,
            seq,
          ]),
        );
      }
      // "a.b": 1 and a: { b: 2 } flatten to one path: the last one wins (one statement may not write a row twice).
      let values = [...new Map(report.values.map((v) => [v.path, JSON.stringify(v.value)])).entries()];
      // A full report compares every stored value with its own; one that is not full writes all it names, and
      // needs only how many the channel holds (and, near the limit, which of its paths are held).
      const held = new Map<string, string>();
      if (report.fullReport) {
        for (const r of await tx.all<{ path: string; value: string }>("SELECT path, value FROM ddm_status_values WHERE enrollment_id = ?", [
          enrollmentId,
        ]))
          held.set(r.path, r.value);
      }
      const heldCount = report.fullReport
        ? held.size
        : Number((await tx.get<{ n: number }>("SELECT COUNT(*) AS n FROM ddm_status_values WHERE enrollment_id = ?", [enrollmentId]))!.n);
      let refusedValues = 0;
      if (report.fullReport && values.length > MAX_CHANNEL_STATUS_VALUES) {
        // A full report replaces them all: the first ones are kept.
        refusedValues = values.length - MAX_CHANNEL_STATUS_VALUES;
        values = values.slice(0, MAX_CHANNEL_STATUS_VALUES);
      } else if (!report.fullReport && heldCount + values.length > MAX_CHANNEL_STATUS_VALUES) {
        // Paths already stored are updated; new ones only while there is room.
        for (const chunk of chunks(values, 500)) {
          const rows = await tx.all<{ path: string; value: string }>(
            `SELECT path, value FROM ddm_status_values WHERE enrollment_id = ? AND path IN (${chunk.map(() => "?").join(", ")})`,
            [enrollmentId, ...chunk.map(([path]) => path)],
          );
          for (const r of rows) held.set(r.path, r.value);
        }
        let room = Math.max(0, MAX_CHANNEL_STATUS_VALUES - heldCount);
        const kept = values.filter(([path]) => {
          if (held.has(path)) return true;
          if (room === 0) return false;
          room--;
          return true;
        });
        refusedValues = values.length - kept.length;
        values = kept;
      }
      for (const chunk of chunks(
        values.filter(([path, value]) => !report.fullReport || held.get(path) !== value),
        100,
      )) {
        await tx.run(
          `INSERT INTO ddm_status_values (enrollment_id, path, value, status_id, updated_at, seq)
           VALUES ${chunk.map(() => "(?, ?, ?, ?, ?, ?)").join(", ")}
           ON CONFLICT (enrollment_id, path) DO UPDATE SET value = excluded.value, status_id = excluded.status_id,
             updated_at = excluded.updated_at, seq = excluded.seq`,
          chunk.flatMap(([path, value]) => [enrollmentId, path, value, statusId, now, seq]),
        );
      }
      if (report.fullReport) {
        // What the full report did not name goes (most reports name what they named before: nothing).
        const named = new Set(declarations.map((d) => d.identifier));
        await deleteKeys(
          tx,
          "ddm_status_declarations",
          "identifier",
          enrollmentId,
          [...stored.keys()].filter((k) => !named.has(k)),
        );
        const namedPaths = new Set(values.map(([path]) => path));
        await deleteKeys(
          tx,
          "ddm_status_values",
          "path",
          enrollmentId,
          [...held.keys()].filter((k) => !namedPaths.has(k)),
        );
      }
      const errors = [
        ...report.errors.map((e) => ({ path: e.statusItem, error: e.error })),
        ...declarations
          .filter((d) => d.valid === "invalid")
          .map((d) => ({ path: `management.declarations.${arrayOf(d.kind)}`, error: statusJson(d) })),
      ];
      await insertErrors(tx, enrollmentId, errors, statusId, now);
      // The raw report overwrites the channel's oldest (migration 023's ring).
      await tx.run(
        `INSERT INTO ddm_status_report_ring (enrollment_id, slot, seq, status_id, report, at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (enrollment_id, slot) DO UPDATE SET seq = excluded.seq, status_id = excluded.status_id, report = excluded.report,
           at = excluded.at`,
        [enrollmentId, seq % REPORTS_KEPT, seq, statusId, raw, now],
      );
      return { changes, unknownDeclarations: reported.length - declarations.length, refusedValues };
    });
  }

  async declarations(enrollmentIds: readonly string[]): Promise<StoredDeclarationStatus[]> {
    const out: StoredDeclarationStatus[] = [];
    for (const chunk of chunks(enrollmentIds, 500)) {
      const rows = await this.db.all<{
        enrollment_id: string;
        identifier: string;
        kind: DeclarationKind;
        active: number;
        valid: string;
        server_token: string;
        current_token: string | null;
        reasons: string | null;
        status_id: string;
        updated_at: number;
      }>(
        `SELECT s.enrollment_id, s.identifier, s.kind, s.active, s.valid, s.server_token, d.server_token AS current_token, s.reasons,
           ${LAST_SEEN_SQL("s")}
         FROM ddm_status_declarations s LEFT JOIN ddm_declarations d ON d.identifier = s.identifier
           LEFT JOIN ddm_status_channels c ON c.enrollment_id = s.enrollment_id
         WHERE s.enrollment_id IN (${chunk.map(() => "?").join(", ")}) ORDER BY s.enrollment_id, s.identifier`,
        chunk,
      );
      for (const r of rows) {
        out.push({
          enrollmentId: r.enrollment_id,
          identifier: r.identifier,
          kind: r.kind,
          active: Number(r.active) === 1,
          valid: r.valid,
          serverToken: r.server_token,
          currentToken: r.current_token,
          reasons: r.reasons === null ? null : (JSON.parse(r.reasons) as unknown[]),
          statusId: r.status_id,
          updatedAt: Number(r.updated_at),
        });
      }
    }
    return out;
  }

  /** A channel's status values, in path order. */
  async values(enrollmentId: string): Promise<StoredStatusValue[]> {
    const rows = await this.db.all<{ path: string; value: string; status_id: string; updated_at: number }>(
      `SELECT v.path, v.value, ${LAST_SEEN_SQL("v")}
       FROM ddm_status_values v LEFT JOIN ddm_status_channels c ON c.enrollment_id = v.enrollment_id
       WHERE v.enrollment_id = ? ORDER BY v.path`,
      [enrollmentId],
    );
    return rows.map((r) => ({
      path: r.path,
      value: JSON.parse(r.value) as unknown,
      statusId: r.status_id,
      updatedAt: Number(r.updated_at),
    }));
  }

  /** A channel's errors, newest first, at most `limit`. */
  async errors(enrollmentId: string, limit: number): Promise<StoredStatusError[]> {
    const rows = await this.db.all<{ path: string; error: string; status_id: string; at: number }>(
      "SELECT path, error, status_id, at FROM ddm_status_errors WHERE enrollment_id = ? ORDER BY id DESC LIMIT ?",
      [enrollmentId, limit],
    );
    return rows.map((r) => ({ path: r.path, error: JSON.parse(r.error) as unknown, statusId: r.status_id, at: Number(r.at) }));
  }

  /** A stored raw report: by index (0 the newest) or by status id. */
  async report(enrollmentId: string, by: { index: number } | { statusId: string }): Promise<StoredReport | undefined> {
    const rows = await this.db.all<{ status_id: string; report: string; at: number }>(
      "SELECT status_id, report, at FROM ddm_status_report_ring WHERE enrollment_id = ? ORDER BY seq DESC",
      [enrollmentId],
    );
    const index = "index" in by ? by.index : rows.findIndex((r) => r.status_id === by.statusId);
    const row = index >= 0 ? rows[index] : undefined;
    return row && { statusId: row.status_id, report: row.report, at: Number(row.at), index };
  }

  /** Per declaration of a set: how many of the set's channels report its current token active and valid, otherwise, or nothing yet. */
  async compliance(set: string): Promise<SetCompliance> {
    const enrollments = Number(
      (await this.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM ddm_enrollment_sets WHERE set_name = ?", [set]))?.n ?? 0,
    );
    const rows = await this.db.all<{ identifier: string; server_token: string; compliant: number | null; failing: number | null }>(
      `SELECT d.identifier, d.server_token,
         SUM(CASE WHEN s.active = 1 AND s.valid = 'valid' THEN 1 ELSE 0 END) AS compliant,
         SUM(CASE WHEN s.enrollment_id IS NOT NULL AND NOT (s.active = 1 AND s.valid = 'valid') THEN 1 ELSE 0 END) AS failing
       FROM ddm_set_declarations sd
       JOIN ddm_declarations d ON d.identifier = sd.declaration_identifier
       LEFT JOIN ddm_enrollment_sets es ON es.set_name = sd.set_name
       LEFT JOIN ddm_status_declarations s
         ON s.enrollment_id = es.enrollment_id AND s.identifier = d.identifier AND s.server_token = d.server_token
       WHERE sd.set_name = ?
       GROUP BY d.identifier, d.server_token ORDER BY d.identifier`,
      [set],
    );
    return {
      enrollments,
      declarations: rows.map((r) => {
        const compliant = Number(r.compliant ?? 0);
        const failing = Number(r.failing ?? 0);
        return { identifier: r.identifier, serverToken: r.server_token, compliant, failing, pending: enrollments - compliant - failing };
      }),
    };
  }

  /** Deletes errors older than `before` (with the events: core/retention.ts). */
  pruneErrors(before: number): Promise<number> {
    return this.db.run(PRUNE_STATUS_ERRORS_SQL, [before]);
  }
}

/** Deletes a channel's rows of `table` whose `column` is one of `keys`. */
async function deleteKeys(tx: Sql, table: string, column: string, enrollmentId: string, keys: readonly string[]) {
  for (const chunk of chunks(keys, 500)) {
    await tx.run(`DELETE FROM ${table} WHERE enrollment_id = ? AND ${column} IN (${chunk.map(() => "?").join(", ")})`, [
      enrollmentId,
      ...chunk,
    ]);
  }
}

async function insertErrors(tx: Sql, enrollmentId: string, errors: Array<{ path: string; error: unknown }>, statusId: string, now: number) {
  for (const chunk of chunks(errors, 100)) {
    await tx.run(
      `INSERT INTO ddm_status_errors (enrollment_id, path, error, status_id, at) VALUES ${chunk.map(() => "(?, ?, ?, ?, ?)").join(", ")}`,
      chunk.flatMap((e) => [enrollmentId, e.path, JSON.stringify(e.error), statusId, now]),
    );
  }
}

/** The plural array name a kind's statuses come in (management stays management). */
export function arrayOf(kind: DeclarationKind): string {
  return kind === "management" ? "management" : `${kind}s`;
}

/** A declaration's status as the device wrote it. */
function statusJson(d: DeclarationStatus): Record<string, unknown> {
  return {
    identifier: d.identifier,
    active: d.active,
    valid: d.valid,
    "server-token": d.serverToken,
    ...(d.reasons ? { reasons: d.reasons } : {}),
  };
}
