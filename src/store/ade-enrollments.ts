import type { Database, SqlParam } from "./db.ts";

/** Where an ADE device stands between the enrollment URL and DeviceConfigured (migration 016). */
export type AdeEnrollmentState = "profile_served" | "running" | "releasing" | "configured" | "failed";
export const ADE_ENROLLMENT_STATES: readonly AdeEnrollmentState[] = ["profile_served", "running", "releasing", "configured", "failed"];

export interface AdeEnrollment {
  serialNumber: string;
  serverName: string;
  udid: string;
  product: string | null;
  osVersion: string | null;
  buildVersion: string | null;
  state: AdeEnrollmentState;
  /** The initial commands' UUIDs, in order. */
  steps: string[];
  stepTotal: number;
  stepsDone: number;
  stepsFailed: number;
  releaseOnFailure: boolean;
  /** DeviceConfigured's CommandUUID, once queued. */
  configuredCommand: string | null;
  error: string | null;
  servedAt: number;
  startedAt: number | null;
  releasedAt: number | null;
  configuredAt: number | null;
  updatedAt: number;
}

export interface AdeEnrollmentFilter {
  server?: string;
  state?: AdeEnrollmentState;
  /** The serial number of the last row of the previous page. */
  after?: string;
  limit: number;
}

interface Row {
  serial_number: string;
  server_name: string;
  udid: string;
  product: string | null;
  os_version: string | null;
  build_version: string | null;
  state: string;
  steps: string;
  step_total: number | string;
  steps_done: number | string;
  steps_failed: number | string;
  release_on_failure: number | string;
  configured_command: string | null;
  error: string | null;
  served_at: number | string;
  started_at: number | string | null;
  released_at: number | string | null;
  configured_at: number | string | null;
  updated_at: number | string;
}

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

function toEnrollment(r: Row): AdeEnrollment {
  let steps: string[] = [];
  try {
    const parsed = JSON.parse(r.steps) as unknown;
    if (Array.isArray(parsed)) steps = parsed.filter((s): s is string => typeof s === "string");
  } catch {
    // Written by this file only; an unreadable list counts as none.
  }
  return {
    serialNumber: r.serial_number,
    serverName: r.server_name,
    udid: r.udid,
    product: r.product,
    osVersion: r.os_version,
    buildVersion: r.build_version,
    state: r.state as AdeEnrollmentState,
    steps,
    stepTotal: Number(r.step_total),
    stepsDone: Number(r.steps_done),
    stepsFailed: Number(r.steps_failed),
    releaseOnFailure: Number(r.release_on_failure) === 1,
    configuredCommand: r.configured_command,
    error: r.error,
    servedAt: Number(r.served_at),
    startedAt: num(r.started_at),
    releasedAt: num(r.released_at),
    configuredAt: num(r.configured_at),
    updatedAt: Number(r.updated_at),
  };
}

/**
 * ADE devices on their way through Setup Assistant: the profile served at the
 * enrollment URL, the initial set run while the device awaits configuration,
 * DeviceConfigured. Each step is a conditional UPDATE on the state, so two
 * processes (or a repeated message) cannot both take it.
 */
export class AdeEnrollmentStore {
  constructor(private readonly db: Database) {}

  /**
   * The enrollment URL answered this device: it starts (again) from
   * profile_served, unless its initial set is under way (running,
   * releasing) on a device still enrolled. Anyone holding a MachineInfo can reach the enrollment URL
   * (without --ade-device-ca anyone can make one), so a MachineInfo with
   * another UDID than the row's changes nothing while that UDID is enrolled
   * (a device that checked out, or was removed, gives way to its replacement):
   * a forged one rewrote a configured device's row, and then refused that
   * device's next Authenticate (hostile review). The same device coming back
   * (wiped, running Setup Assistant again) starts over.
   */
  async served(
    e: { serialNumber: string; serverName: string; udid: string; product?: string; osVersion?: string; buildVersion?: string },
    now: number,
  ): Promise<void> {
    await this.db.run(
      `INSERT INTO ade_enrollments (serial_number, server_name, udid, product, os_version, build_version, state, served_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, 'profile_served', ?, ?)
       ON CONFLICT (serial_number) DO UPDATE SET server_name = excluded.server_name, udid = excluded.udid, product = excluded.product,
         os_version = excluded.os_version, build_version = excluded.build_version, state = 'profile_served', steps = '[]',
         step_total = 0, steps_done = 0, steps_failed = 0, release_on_failure = 1, configured_command = NULL, error = NULL,
         served_at = excluded.served_at, started_at = NULL, released_at = NULL, configured_at = NULL, updated_at = excluded.updated_at
       WHERE (ade_enrollments.udid = excluded.udid AND ade_enrollments.state NOT IN ('running', 'releasing'))
         OR NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = ade_enrollments.udid AND d.checked_out_at IS NULL)`,
      [e.serialNumber, e.serverName, e.udid, e.product ?? null, e.osVersion ?? null, e.buildVersion ?? null, now, now],
    );
  }

  /**
   * The device enrolls again (its Authenticate, which the serial-bound
   * identity let through, discards its queue): an initial set under way
   * starts over at its next AwaitingConfiguration. True when one was reset.
   */
  async restart(udid: string, now: number): Promise<boolean> {
    return (
      (await this.db.run(
        `UPDATE ade_enrollments SET state = 'profile_served', steps = '[]', step_total = 0, steps_done = 0, steps_failed = 0,
           configured_command = NULL, error = NULL, started_at = NULL, released_at = NULL, configured_at = NULL, updated_at = ?
         WHERE udid = ? AND state IN ('running', 'releasing')`,
        [now, udid],
      )) > 0
    );
  }

  async get(serial: string): Promise<AdeEnrollment | undefined> {
    const row = await this.db.get<Row>("SELECT * FROM ade_enrollments WHERE serial_number = ?", [serial]);
    return row && toEnrollment(row);
  }

  /** The serial number a device's Authenticate gave. */
  async deviceSerial(udid: string): Promise<string | undefined> {
    const row = await this.db.get<{ serial_number: string | null }>("SELECT serial_number FROM devices WHERE id = ?", [udid]);
    return row?.serial_number ?? undefined;
  }

  /** The latest served row of a UDID (a device sends its UDID at the enrollment URL). */
  async byUdid(udid: string): Promise<AdeEnrollment | undefined> {
    const row = await this.db.get<Row>("SELECT * FROM ade_enrollments WHERE udid = ? ORDER BY served_at DESC LIMIT 1", [udid]);
    return row && toEnrollment(row);
  }

  async list(f: AdeEnrollmentFilter): Promise<AdeEnrollment[]> {
    const where: string[] = [];
    const params: SqlParam[] = [];
    if (f.server !== undefined) where.push("server_name = ?"), params.push(f.server);
    if (f.state !== undefined) where.push("state = ?"), params.push(f.state);
    if (f.after !== undefined) where.push("serial_number > ?"), params.push(f.after);
    const rows = await this.db.all<Row>(
      `SELECT * FROM ade_enrollments ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY serial_number LIMIT ?`,
      [...params, f.limit],
    );
    return rows.map(toEnrollment);
  }

  /**
   * A device awaiting configuration: its initial set starts, unless it is
   * already running (a repeated TokenUpdate). True when this call started it.
   * With no steps it goes straight to releasing (DeviceConfigured queued).
   */
  async start(
    serial: string,
    s: { steps: readonly string[]; releaseOnFailure: boolean; configuredCommand: string | null },
    now: number,
  ): Promise<boolean> {
    const releasing = s.configuredCommand !== null;
    return (
      (await this.db.run(
        `UPDATE ade_enrollments SET state = ?, steps = ?, step_total = ?, steps_done = 0, steps_failed = 0, release_on_failure = ?,
           configured_command = ?, error = NULL, started_at = ?, released_at = ?, configured_at = NULL, updated_at = ?
         WHERE serial_number = ? AND state NOT IN ('running', 'releasing')`,
        [
          releasing ? "releasing" : "running",
          JSON.stringify(s.steps),
          s.steps.length,
          s.releaseOnFailure ? 1 : 0,
          s.configuredCommand,
          now,
          releasing ? now : null,
          now,
          serial,
        ],
      )) > 0
    );
  }

  /** One initial command has a result; the counts after it, or undefined when the device is not running its set. */
  async stepDone(
    serial: string,
    failed: boolean,
    now: number,
  ): Promise<{ stepsDone: number; stepTotal: number; stepsFailed: number; releaseOnFailure: boolean } | undefined> {
    const row = await this.db.get<{
      steps_done: number | string;
      step_total: number | string;
      steps_failed: number | string;
      release_on_failure: number | string;
    }>(
      `UPDATE ade_enrollments SET steps_done = steps_done + 1, steps_failed = steps_failed + ?, updated_at = ?
       WHERE serial_number = ? AND state = 'running' AND steps_done < step_total
       RETURNING steps_done, step_total, steps_failed, release_on_failure`,
      [failed ? 1 : 0, now, serial],
    );
    return (
      row && {
        stepsDone: Number(row.steps_done),
        stepTotal: Number(row.step_total),
        stepsFailed: Number(row.steps_failed),
        releaseOnFailure: Number(row.release_on_failure) === 1,
      }
    );
  }

  /** DeviceConfigured is queued: from running (all steps answered), or from failed or profile_served by an operator. */
  async release(serial: string, configuredCommand: string, from: readonly AdeEnrollmentState[], now: number): Promise<boolean> {
    return (
      (await this.db.run(
        `UPDATE ade_enrollments SET state = 'releasing', configured_command = ?, released_at = ?, updated_at = ?
         WHERE serial_number = ? AND state IN (${from.map(() => "?").join(", ")})`,
        [configuredCommand, now, now, serial, ...from],
      )) > 0
    );
  }

  /** The set failed and the settings hold the device (no DeviceConfigured), or DeviceConfigured was refused. */
  async fail(serial: string, error: string, from: AdeEnrollmentState, now: number): Promise<boolean> {
    return (
      (await this.db.run("UPDATE ade_enrollments SET state = 'failed', error = ?, updated_at = ? WHERE serial_number = ? AND state = ?", [
        error.slice(0, 512),
        now,
        serial,
        from,
      ])) > 0
    );
  }

  /** The device acknowledged DeviceConfigured. */
  async configured(serial: string, configuredCommand: string, now: number): Promise<boolean> {
    return (
      (await this.db.run(
        `UPDATE ade_enrollments SET state = 'configured', configured_at = ?, updated_at = ?
         WHERE serial_number = ? AND state = 'releasing' AND configured_command = ?`,
        [now, now, serial, configuredCommand],
      )) > 0
    );
  }

  /**
   * The ADE serial number a device id (UDID) stands for: the one it sent at
   * the enrollment URL, or the serial its Authenticate gave, while ABM
   * assigns that serial to Orchard. Undefined for a device ABM does not.
   */
  async serialOfDevice(udid: string): Promise<string | undefined> {
    // One answer, whatever the plan: the serial the device's last Authenticate gave (which these checks let
    // through), then the enrollment URL's record (which, without --ade-device-ca, anyone could have made).
    const row = await this.db.get<{ serial_number: string }>(
      `SELECT serial_number FROM (
         SELECT 1 AS rank, d.serial_number FROM devices d WHERE d.id = ? AND d.serial_number IS NOT NULL
           AND EXISTS (SELECT 1 FROM ade_devices a WHERE a.serial_number = d.serial_number AND a.removed = 0)
         UNION ALL SELECT 2 AS rank, e.serial_number FROM ade_enrollments e WHERE e.udid = ?
           AND EXISTS (SELECT 1 FROM ade_devices a WHERE a.serial_number = e.serial_number AND a.removed = 0)
       ) s ORDER BY rank, serial_number LIMIT 1`,
      [udid, udid],
    );
    return row?.serial_number;
  }
}
