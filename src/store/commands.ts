import { Conflict } from "../errors.ts";
import { withoutAuthToken } from "../protocol/auth-token-element.ts";
import type { Database } from "./db.ts";
import { chunks } from "./enrollments.ts";

export type ResultStatus = "Acknowledged" | "Error" | "CommandFormatError" | "NotNow";
/** Discarded: still queued when its device enrolled again (a wipe, a new profile), never sent. */
export type QueueStatus = "Queued" | "Discarded" | ResultStatus;

export interface NewCommand {
  commandUuid: string;
  requestType: string;
  /** The command plist exactly as it will be sent. */
  command: Buffer;
}

export interface PendingCommand {
  commandUuid: string;
  command: Buffer;
}

export interface QueuedCommand {
  commandUuid: string;
  requestType: string;
  status: QueueStatus;
  notNowCount: number;
  createdAt: number;
  updatedAt: number;
}

export interface CommandResult {
  enrollmentId: string;
  status: QueueStatus;
  active: boolean;
  notNowCount: number;
  /** The raw plist of the latest report for this command, if any. */
  result: Buffer | null;
  updatedAt: number;
}

/** What became of a report: stored, a repeat of one already stored, or for no queued command. */
export type ReportOutcome = "recorded" | "duplicate" | "unknown";

// The hot queries, exported so that test/query-plans.test.ts can EXPLAIN them.
export const NEXT_COMMAND_SQL = `SELECT q.command_uuid, c.command FROM command_queue q JOIN commands c ON c.command_uuid = q.command_uuid
  WHERE q.enrollment_id = ? AND q.active = 1 ORDER BY q.id LIMIT 1`;
const NEXT_NEVER_TRIED_SQL = `SELECT q.command_uuid, c.command FROM command_queue q JOIN commands c ON c.command_uuid = q.command_uuid
  WHERE q.enrollment_id = ? AND q.active = 1 AND q.status = 'Queued' ORDER BY q.id LIMIT 1`;
export const PRUNE_RESULTS_SQL = "DELETE FROM command_queue WHERE active = 0 AND updated_at < ?";
export const RESULTS_SQL = `SELECT enrollment_id, status, active, not_now_count, result, updated_at FROM command_queue
  WHERE command_uuid = ? ORDER BY enrollment_id`;

const RESULT_OF_SQL = `SELECT enrollment_id, status, active, not_now_count, result, updated_at FROM command_queue
  WHERE command_uuid = ? AND enrollment_id = ?`;
/** A channel's commands, newest first (through the (enrollment_id, command_uuid) unique index). */
export const HISTORY_SQL = `SELECT q.id, q.command_uuid, c.request_type, q.status, q.active, q.not_now_count, q.created_at, q.updated_at
  FROM command_queue q JOIN commands c ON c.command_uuid = q.command_uuid
  WHERE q.enrollment_id = ? AND q.id < ? ORDER BY q.id DESC LIMIT ?`;

/** One of a channel's commands: queued, or answered (its result stays until pruned). */
export interface CommandHistoryEntry extends QueuedCommand {
  /** The row's id: the cursor of the next (older) page. */
  id: number;
  active: boolean;
}

/** Per-channel command queues; a queue row becomes the result once answered. */
export class CommandStore {
  constructor(private readonly db: Database) {}

  /** Queues one command for several channels in one transaction. */
  async enqueue(cmd: NewCommand, enrollmentIds: readonly string[], now: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      const existing = await tx.get("SELECT 1 AS x FROM commands WHERE command_uuid = ?", [cmd.commandUuid]);
      if (existing) throw new Conflict(`a command with CommandUUID ${cmd.commandUuid} already exists`, "command_exists");
      await tx.run("INSERT INTO commands (command_uuid, request_type, command, created_at) VALUES (?, ?, ?, ?)", [
        cmd.commandUuid,
        cmd.requestType,
        cmd.command,
        now,
      ]);
      // Many rows per statement: a bulk enqueue is a few round trips, not one per id.
      for (const chunk of chunks(enrollmentIds, 200)) {
        await tx.run(
          `INSERT INTO command_queue (enrollment_id, command_uuid, created_at, updated_at) VALUES ${chunk.map(() => "(?, ?, ?, ?)").join(", ")}`,
          chunk.flatMap((id) => [id, cmd.commandUuid, now, now]),
        );
      }
    });
  }

  /**
   * The oldest active command for a channel. After a NotNow only commands never
   * tried are offered, so one session cannot loop on NotNow (brief 6.6).
   */
  async next(enrollmentId: string, neverTriedOnly: boolean): Promise<PendingCommand | undefined> {
    const row = await this.db.get<{ command_uuid: string; command: Buffer }>(neverTriedOnly ? NEXT_NEVER_TRIED_SQL : NEXT_COMMAND_SQL, [
      enrollmentId,
    ]);
    return row && { commandUuid: row.command_uuid, command: row.command };
  }

  /**
   * Stores a report, less a network user's AuthToken (the result is shown to auditors, the token is a live
   * secret); idempotent by CommandUUID (a repeated report changes nothing).
   */
  async report(enrollmentId: string, commandUuid: string, status: ResultStatus, report: Buffer, now: number): Promise<ReportOutcome> {
    const result = withoutAuthToken(report);
    const changed =
      status === "NotNow"
        ? await this.db.run(
            `UPDATE command_queue SET status = 'NotNow', not_now_count = not_now_count + 1, result = ?, updated_at = ?
             WHERE enrollment_id = ? AND command_uuid = ? AND active = 1`,
            [result, now, enrollmentId, commandUuid],
          )
        : await this.db.run(
            `UPDATE command_queue SET status = ?, active = 0, result = ?, updated_at = ?
             WHERE enrollment_id = ? AND command_uuid = ? AND active = 1`,
            [status, result, now, enrollmentId, commandUuid],
          );
    if (changed > 0) return "recorded";
    const known = await this.db.get("SELECT 1 AS x FROM command_queue WHERE enrollment_id = ? AND command_uuid = ?", [
      enrollmentId,
      commandUuid,
    ]);
    return known ? "duplicate" : "unknown";
  }

  /**
   * Deletes results (answered queue rows) last updated before `before`, then
   * commands no queue row refers to any more. Active rows are never touched.
   */
  async pruneResults(before: number): Promise<number> {
    const results = await this.db.run(PRUNE_RESULTS_SQL, [before]);
    await this.db.run(
      `DELETE FROM commands WHERE created_at < ?
         AND NOT EXISTS (SELECT 1 FROM command_queue q WHERE q.command_uuid = commands.command_uuid)`,
      [before],
    );
    return results;
  }

  async queue(enrollmentId: string): Promise<QueuedCommand[]> {
    const rows = await this.db.all<QueueRow>(
      `SELECT q.command_uuid, c.request_type, q.status, q.not_now_count, q.created_at, q.updated_at
       FROM command_queue q JOIN commands c ON c.command_uuid = q.command_uuid
       WHERE q.enrollment_id = ? AND q.active = 1 ORDER BY q.id`,
      [enrollmentId],
    );
    return rows.map((r) => ({
      commandUuid: r.command_uuid,
      requestType: r.request_type,
      status: r.status,
      notNowCount: Number(r.not_now_count),
      createdAt: Number(r.created_at),
      updatedAt: Number(r.updated_at),
    }));
  }

  /** A channel's commands, queued and answered, newest first: those older than `before` (a row id). */
  async history(enrollmentId: string, before: number | undefined, limit: number): Promise<CommandHistoryEntry[]> {
    const rows = await this.db.all<QueueRow & { id: number | string; active: number }>(HISTORY_SQL, [
      enrollmentId,
      before ?? Number.MAX_SAFE_INTEGER,
      limit,
    ]);
    return rows.map((r) => ({
      id: Number(r.id),
      commandUuid: r.command_uuid,
      requestType: r.request_type,
      status: r.status,
      active: Number(r.active) === 1,
      notNowCount: Number(r.not_now_count),
      createdAt: Number(r.created_at),
      updatedAt: Number(r.updated_at),
    }));
  }

  /** Removes the commands still waiting in these channels' queues; results stay. */
  async clear(enrollmentIds: readonly string[]): Promise<number> {
    return this.db.transaction(async (tx) => {
      let removed = 0;
      for (const id of enrollmentIds) {
        removed += await tx.run("DELETE FROM command_queue WHERE enrollment_id = ? AND active = 1", [id]);
      }
      return removed;
    });
  }

  async command(commandUuid: string): Promise<(NewCommand & { createdAt: number }) | undefined> {
    const row = await this.db.get<{ command_uuid: string; request_type: string; command: Buffer; created_at: number }>(
      "SELECT command_uuid, request_type, command, created_at FROM commands WHERE command_uuid = ?",
      [commandUuid],
    );
    return row && { commandUuid: row.command_uuid, requestType: row.request_type, command: row.command, createdAt: Number(row.created_at) };
  }

  /** Every channel's answer to a command, or only this channel's. */
  async results(commandUuid: string, enrollmentId?: string): Promise<CommandResult[]> {
    const rows = await this.db.all<{
      enrollment_id: string;
      status: QueueStatus;
      active: number;
      not_now_count: number;
      result: Buffer | null;
      updated_at: number;
    }>(enrollmentId === undefined ? RESULTS_SQL : RESULT_OF_SQL, enrollmentId === undefined ? [commandUuid] : [commandUuid, enrollmentId]);
    return rows.map((r) => ({
      enrollmentId: r.enrollment_id,
      status: r.status,
      active: Number(r.active) === 1,
      notNowCount: Number(r.not_now_count),
      result: r.result,
      updatedAt: Number(r.updated_at),
    }));
  }
}

interface QueueRow {
  command_uuid: string;
  request_type: string;
  status: QueueStatus;
  not_now_count: number;
  created_at: number;
  updated_at: number;
}
