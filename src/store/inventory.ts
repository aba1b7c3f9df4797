import type { Platform } from "../protocol/platform.ts";
import type { Database } from "./db.ts";
import { chunks } from "./enrollments.ts";

// The device inventory: one record per device, each field's latest value
// with the kind of message it came from and when (core/inventory.ts reads
// the messages). A record is written in the transaction of the message that
// changed it, and only when a value changed: a message repeating what the
// record holds writes nothing (a field's time is when its value was learned).

/** The messages a field is learned from. */
export const INVENTORY_SOURCES = ["authenticate", "device-information", "security-info", "ddm-status"] as const;
export type InventorySource = (typeof INVENTORY_SOURCES)[number];

/** Apple's softwareupdate.install-state values (declarative/status/softwareupdate.install-state.yaml). */
export const UPDATE_INSTALL_STATES = ["none", "waiting", "downloading", "prepared", "installing", "failed"] as const;

type Kind = "text" | "boolean" | "number" | "integer" | "json";

/**
 * Every field, by its column (same name) and kind: MDM's names in snake_case
 * (ProductName is product_name, the model identifier such as Mac14,2;
 * softwareupdate.install-state is update_install_state). Booleans are 0/1
 * columns, integers INTEGER columns (PostgreSQL refuses 1.5 or 2^31 there),
 * JSON values canonical JSON text.
 */
export const INVENTORY_FIELDS = {
  serial_number: "text",
  platform: "text",
  product_name: "text",
  model: "text",
  model_name: "text",
  model_family: "text",
  model_number: "text",
  marketing_name: "text",
  device_name: "text",
  os_version: "text",
  build_version: "text",
  os_marketing_name: "text",
  supplemental_build_version: "text",
  supplemental_extra_version: "text",
  imei: "text",
  meid: "text",
  is_supervised: "boolean",
  device_capacity: "number",
  available_device_capacity: "number",
  wifi_mac: "text",
  bluetooth_mac: "text",
  time_zone: "text",
  filevault_enabled: "boolean",
  passcode_present: "boolean",
  passcode_compliant: "boolean",
  system_integrity_protection: "boolean",
  firewall_enabled: "boolean",
  enrolled_via_dep: "boolean",
  user_approved_enrollment: "boolean",
  update_install_state: "text",
  update_pending_version: "text",
  update_pending_build: "text",
  update_target_local_date_time: "text",
  update_failure_count: "integer",
  update_failure_reason: "text",
  update_failure_at: "text",
  update_install_reason: "json",
  update_device_id: "text",
  update_beta_enrollment: "text",
  client_capabilities: "json",
} as const satisfies Record<string, Kind>;

export type InventoryField = keyof typeof INVENTORY_FIELDS;
export const INVENTORY_FIELD_NAMES = Object.keys(INVENTORY_FIELDS) as InventoryField[];

type ValueOf<K extends Kind> = K extends "text"
  ? string
  : K extends "boolean"
    ? boolean
    : K extends "number" | "integer"
      ? number
      : unknown;
/**
 * Field values. A field absent from a message is not learned from it; null
 * is a device saying there is none now (no failure reason since the update
 * succeeded): the field is cleared, and shown as not known.
 */
export type InventoryValues = { -readonly [F in InventoryField]?: ValueOf<(typeof INVENTORY_FIELDS)[F]> | null };

export interface Learned {
  source: InventorySource;
  /** When the message carrying the current value arrived (ms). */
  at: number;
}

/** A user of the device: one of its user channels. */
export interface InventoryUser {
  enrollmentId: string;
  userId: string | null;
  shortName: string | null;
  longName: string | null;
}

export interface InventoryRecord {
  deviceId: string;
  values: InventoryValues;
  /** Where and when each known field's value was learned. */
  learned: Partial<Record<InventoryField, Learned>>;
  users: InventoryUser[];
  /** The device channel's last request (coalesced: up to a few seconds behind). */
  lastSeenAt: number | null;
  /** When a field last changed. */
  updatedAt: number;
}

export interface InventoryFilter {
  platform?: Platform;
  /** The model identifier (product_name, Mac14,2) or the model name (MacBook Pro). */
  model?: string;
  /** This version, number by number (15.2 is 15.2.0). */
  osVersion?: string;
  /** Devices whose os_version is lower than this one, compared number by number. */
  osVersionBelow?: string;
  serialNumber?: string;
  /** An enrolled user channel's short name or user id (GUID). */
  user?: string;
  /** Last seen before (or never seen), after (ms). */
  lastSeenBefore?: number;
  lastSeenAfter?: number;
  updateInstallState?: string;
  /** Device ids greater than this one (cursor pagination, ordered by device id). */
  after?: string;
  limit: number;
}

export interface InventorySubscription {
  platform: Platform;
  setName: string;
  createdAt: number;
}

const VALUE_COLUMNS = INVENTORY_FIELD_NAMES.join(", ");
const ALL_COLUMNS = `device_id, ${VALUE_COLUMNS}, os_version_key, learned, updated_at`;
/** One statement text for every write (the statement caches key on the text): every column, from the merged record. */
const UPSERT_SQL = `INSERT INTO inventory (${ALL_COLUMNS}) VALUES (${ALL_COLUMNS.split(", ")
  .map(() => "?")
  .join(", ")})
  ON CONFLICT (device_id) DO UPDATE SET ${ALL_COLUMNS.split(", ")
    .slice(1)
    .map((c) => `${c} = excluded.${c}`)
    .join(", ")}`;
/** Every column of a record, and the device channel's last request. */
const INVENTORY_LIST_SQL = `SELECT i.device_id, ${INVENTORY_FIELD_NAMES.map((f) => `i.${f}`).join(", ")}, i.learned, i.updated_at,
  e.last_seen_at FROM inventory i LEFT JOIN enrollments e ON e.id = i.device_id`;

type Row = Record<string, unknown> & {
  device_id: string;
  learned: string;
  updated_at: number | string;
  last_seen_at?: number | string | null;
};

/**
 * Per source, the fields it has given so far in this process: learn compares
 * a message's fields from a row of these columns. Which fields a message
 * gives is the device's choice (a DDM status report names any of them), so a
 * text per message would be a prepared statement per combination, kept for
 * good; a set that only grows makes at most one text per field and source.
 */
const compared = new Map<InventorySource, { fields: Set<InventoryField>; columns: string }>();

function comparedColumns(source: InventorySource, given: readonly InventoryField[]): string {
  const had = compared.get(source);
  if (had && given.every((f) => had.fields.has(f))) return had.columns;
  const fields = new Set([...(had?.fields ?? []), ...given]);
  const columns = `device_id, ${INVENTORY_FIELD_NAMES.filter((f) => fields.has(f)).join(", ")}`;
  compared.set(source, { fields, columns });
  return columns;
}

export class InventoryStore {
  constructor(private readonly db: Database) {}

  /**
   * Merges what one message says about a device into its record: the fields
   * whose value differs take it, with this source and time. Returns the
   * fields that changed; when none did, nothing is written. Call it inside
   * the transaction of the message (on PostgreSQL the row is locked from the
   * read to the write, so two messages at once both land).
   */
  async learn(deviceId: string, values: InventoryValues, source: InventorySource, now: number): Promise<InventoryField[]> {
    const given = INVENTORY_FIELD_NAMES.filter((f) => values[f] !== undefined);
    if (given.length === 0) return [];
    return this.db.transaction(async (tx) => {
      const lock = this.db.dialect === "postgres" ? " FOR UPDATE" : "";
      const read = (columns: string) => tx.get<Row>(`SELECT ${columns} FROM inventory WHERE device_id = ?${lock}`, [deviceId]);
      // The fields the message gives, first: most messages confirm what is
      // stored, and a row of a few columns is cheaper to read than all 44.
      const givenColumns = comparedColumns(source, given);
      let had = await read(givenColumns);
      if (!had) {
        // A row to lock first, so that two first messages of a device cannot overwrite each other.
        await tx.run("INSERT INTO inventory (device_id, learned, updated_at) VALUES (?, '{}', ?) ON CONFLICT (device_id) DO NOTHING", [
          deviceId,
          now,
        ]);
        had = await read(givenColumns);
        if (!had) return [];
      }
      const changed: InventoryField[] = [];
      for (const f of given) {
        const stored = toColumn(f, values[f]);
        const was = had[f] ?? null;
        if (was === null ? stored === null : stored !== null && sameColumn(INVENTORY_FIELDS[f], was, stored)) continue;
        changed.push(f);
      }
      if (changed.length === 0) return [];
      const row = (await read(ALL_COLUMNS))!;
      for (const f of changed) row[f] = toColumn(f, values[f]);
      const learned = JSON.parse(row.learned) as Partial<Record<InventoryField, Learned>>;
      for (const f of changed) learned[f] = { source, at: now };
      if (changed.includes("os_version")) row.os_version_key = values.os_version ? (versionKey(values.os_version) ?? null) : null;
      await tx.run(UPSERT_SQL, [
        deviceId,
        ...INVENTORY_FIELD_NAMES.map((f) => (row[f] ?? null) as string | number | null),
        (row.os_version_key ?? null) as string | null,
        JSON.stringify(learned),
        now,
      ]);
      return changed;
    });
  }

  /** One device's record; undefined when the device never authenticated. */
  async get(deviceId: string): Promise<InventoryRecord | undefined> {
    const row = await this.db.get<Row>(`${INVENTORY_LIST_SQL} WHERE i.device_id = ?`, [deviceId]);
    if (!row) return undefined;
    return toRecord(row, (await this.users([deviceId])).get(deviceId) ?? []);
  }

  /** A page of records in device id order, after `filter.after`. */
  async list(filter: InventoryFilter): Promise<InventoryRecord[]> {
    const q = inventoryListQuery(filter);
    const rows = await this.db.all<Row>(q.sql, q.params);
    const users = await this.users(rows.map((r) => r.device_id));
    return rows.map((r) => toRecord(r, users.get(r.device_id) ?? []));
  }

  /**
   * The enrolled user channels of these devices: a channel ends with its
   * device's enrollment (a new Authenticate, a CheckOut) until its user's
   * next TokenUpdate, so a wiped Mac given to someone else does not keep
   * listing (or being found by) its former users.
   */
  private async users(deviceIds: readonly string[]): Promise<Map<string, InventoryUser[]>> {
    const out = new Map<string, InventoryUser[]>();
    for (const chunk of chunks(deviceIds, 500)) {
      const rows = await this.db.all<{
        id: string;
        device_id: string;
        user_id: string | null;
        user_short_name: string | null;
        user_long_name: string | null;
      }>(
        `SELECT id, device_id, user_id, user_short_name, user_long_name FROM enrollments
         WHERE device_id IN (${chunk.map(() => "?").join(", ")}) AND id <> device_id AND enabled = 1 ORDER BY id`,
        chunk,
      );
      for (const r of rows) {
        let list = out.get(r.device_id);
        if (!list) out.set(r.device_id, (list = []));
        list.push({ enrollmentId: r.id, userId: r.user_id, shortName: r.user_short_name, longName: r.user_long_name });
      }
    }
    return out;
  }

  /**
   * Fills os_version_key where it is missing (rows the migration copied from
   * devices: SQL cannot pad each number of a version); run when the store opens.
   */
  async fillVersionKeys(): Promise<number> {
    const rows = await this.db.all<{ device_id: string; os_version: string }>(
      "SELECT device_id, os_version FROM inventory WHERE os_version IS NOT NULL AND os_version_key IS NULL",
    );
    for (const chunk of chunks(rows, 500)) {
      await this.db.transaction(async (tx) => {
        for (const r of chunk) {
          await tx.run("UPDATE inventory SET os_version_key = ? WHERE device_id = ? AND os_version = ?", [
            versionKey(r.os_version) ?? null,
            r.device_id,
            r.os_version,
          ]);
        }
      });
    }
    return rows.length;
  }

  // ---- the built-in status subscription, per platform (core/inventory-subscription.ts)

  async subscriptions(): Promise<InventorySubscription[]> {
    const rows = await this.db.all<{ platform: Platform; set_name: string; created_at: number | string }>(
      "SELECT platform, set_name, created_at FROM inventory_subscriptions ORDER BY platform",
    );
    return rows.map((r) => ({ platform: r.platform, setName: r.set_name, createdAt: Number(r.created_at) }));
  }

  /** Records a platform's subscription; false when it was there already. */
  async subscribe(platform: Platform, setName: string, now: number): Promise<boolean> {
    const added = await this.db.run(
      "INSERT INTO inventory_subscriptions (platform, set_name, created_at) VALUES (?, ?, ?) ON CONFLICT (platform) DO NOTHING",
      [platform, setName, now],
    );
    return added > 0;
  }

  async unsubscribe(platform: Platform): Promise<boolean> {
    return (await this.db.run("DELETE FROM inventory_subscriptions WHERE platform = ?", [platform])) > 0;
  }

  /**
   * A device channel that just enrolled gets its platform's subscription set,
   * if the platform has one (in the TokenUpdate's transaction, before
   * ddm.dueIfAssigned makes it due). True when a set was assigned.
   */
  async assignOnEnrollment(enrollmentId: string, deviceId: string, now: number): Promise<boolean> {
    const added = await this.db.run(
      `INSERT INTO ddm_enrollment_sets (enrollment_id, set_name, created_at)
       SELECT ?, s.set_name, ? FROM devices d JOIN inventory_subscriptions s ON s.platform = d.platform WHERE d.id = ?
       ON CONFLICT (enrollment_id, set_name) DO NOTHING`,
      [enrollmentId, now, deviceId],
    );
    return added > 0;
  }
}

/** The list's statement for a filter (exported for test/query-plans.test.ts): each filter is an indexed condition. */
export function inventoryListQuery(filter: InventoryFilter): { sql: string; params: Array<string | number> } {
  const where: string[] = [];
  const params: Array<string | number> = [];
  const add = (sql: string, ...p: Array<string | number>) => {
    where.push(sql);
    params.push(...p);
  };
  if (filter.platform !== undefined) add("i.platform = ?", filter.platform);
  if (filter.model !== undefined) add("(i.product_name = ? OR i.model_name = ?)", filter.model, filter.model);
  // By the key: 15.2 and 15.2.0 are one version.
  if (filter.osVersion !== undefined) add("i.os_version_key = ?", versionKey(filter.osVersion) ?? "");
  if (filter.osVersionBelow !== undefined) add("i.os_version_key < ?", versionKey(filter.osVersionBelow) ?? "");
  if (filter.serialNumber !== undefined) add("i.serial_number = ?", filter.serialNumber);
  if (filter.user !== undefined)
    add(
      "i.device_id IN (SELECT u.device_id FROM enrollments u WHERE (u.user_short_name = ? OR u.user_id = ?) AND u.enabled = 1)",
      filter.user,
      filter.user,
    );
  if (filter.lastSeenBefore !== undefined) add("(e.last_seen_at IS NULL OR e.last_seen_at < ?)", filter.lastSeenBefore);
  if (filter.lastSeenAfter !== undefined) add("e.last_seen_at >= ?", filter.lastSeenAfter);
  if (filter.updateInstallState !== undefined) add("i.update_install_state = ?", filter.updateInstallState);
  if (filter.after !== undefined) add("i.device_id > ?", filter.after);
  return {
    sql: `${INVENTORY_LIST_SQL} ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY i.device_id LIMIT ?`,
    params: [...params, filter.limit],
  };
}

/**
 * A version as a sortable key: its first four numbers, each zero-padded to 5
 * digits, missing ones 0 (15.2 -> 00015.00002.00000.00000: 15.2 and 15.2.0
 * are one version); undefined when the text does not start with a number.
 */
export function versionKey(version: string): string | undefined {
  const m = /^\d{1,5}(\.\d{1,5})*/.exec(version.trim());
  if (!m) return undefined;
  const numbers = m[0].split(".").slice(0, 4);
  while (numbers.length < 4) numbers.push("0");
  return numbers.map((n) => n.padStart(5, "0")).join(".");
}

/** A version an operator may filter on: 1 to 4 numbers, dot-separated (15, 15.2, 15.2.1). */
export function isFilterVersion(version: string): boolean {
  return /^\d{1,5}(\.\d{1,5}){0,3}$/.test(version);
}

function toColumn(f: InventoryField, v: unknown): string | number | null {
  if (v === null) return null;
  switch (INVENTORY_FIELDS[f]) {
    case "boolean":
      return v ? 1 : 0;
    case "json":
      return canonicalJson(v);
    default:
      return v as string | number;
  }
}

function sameColumn(kind: Kind, stored: unknown, given: string | number): boolean {
  return kind === "text" || kind === "json" ? stored === given : Number(stored) === given;
}

function fromColumn(f: InventoryField, v: unknown): unknown {
  switch (INVENTORY_FIELDS[f]) {
    case "boolean":
      return Number(v) === 1;
    case "number":
    case "integer":
      return Number(v);
    case "json":
      return JSON.parse(v as string) as unknown;
    default:
      return v;
  }
}

function toRecord(r: Row, users: InventoryUser[]): InventoryRecord {
  const values: Record<string, unknown> = {};
  const all = JSON.parse(r.learned) as Partial<Record<InventoryField, Learned>>;
  const learned: Partial<Record<InventoryField, Learned>> = {};
  for (const f of INVENTORY_FIELD_NAMES) {
    if (r[f] === null || r[f] === undefined) continue;
    values[f] = fromColumn(f, r[f]);
    if (all[f]) learned[f] = all[f];
  }
  return {
    deviceId: r.device_id,
    values: values as InventoryValues,
    learned,
    users,
    lastSeenAt: r.last_seen_at === null || r.last_seen_at === undefined ? null : Number(r.last_seen_at),
    updatedAt: Number(r.updated_at),
  };
}

/** JSON with object keys sorted: the same value is the same text, whatever order a device sent it in. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_key, value: unknown) =>
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
}
