import type { DeclarationKind } from "../protocol/ddm.ts";
import { declarationsToken, EMPTY_SET_TOKEN, serverToken, setToken } from "../protocol/ddm-tokens.ts";
import type { Database, Sql } from "./db.ts";
import { chunks } from "./enrollments.ts";

// Declarative Device Management's declarations, sets and assignments
// (KMFDDM's model: declarations in sets, sets assigned to enrollment ids).
//
// Tokens are computed once per change, never per device request. Each set
// keeps its token (ddm_sets), rewritten in the transaction that changes the
// set or one of its declarations; a channel's DeclarationsToken is derived
// from its few sets' tokens (one indexed query and one short hash: no cache
// to go stale, correct with any number of processes). A stored token per
// channel would instead cost one write per channel holding the set on every
// change: 100,000 writes for a change to a set that many channels hold.
//
// With several processes on PostgreSQL, two transactions changing two
// declarations of one set could each compute the set's token without the
// other's change. So a set's row is locked (UPDATE) before its token is read
// from the declarations: the later transaction waits, then reads (a new
// snapshot per statement at READ COMMITTED) what the earlier one committed.
// Sets are locked in name order, so two transactions cannot deadlock on them.

export interface StoredDeclaration {
  identifier: string;
  type: string;
  kind: DeclarationKind;
  /** The Payload JSON text, as devices get it. */
  payload: string;
  /** The operator's Payload JSON text when Orchard rewrote it (file references resolved); null when it is payload. */
  source: string | null;
  serverToken: string;
  touched: number;
  createdAt: number;
  updatedAt: number;
}

/** What a device gets of a declaration: its keys, and the Payload JSON text. */
export type ChannelDeclaration = Pick<StoredDeclaration, "identifier" | "type" | "payload" | "serverToken">;

/** A declaration to store: the declaration's own keys, its kind, and its Payload (any JSON). */
export interface NewDeclaration {
  Type: string;
  Identifier: string;
  Payload: unknown;
  kind: DeclarationKind;
  /** The operator's Payload, when resolving file references rewrote it into Payload. */
  source?: unknown;
}

/** When a change makes its channels due for a sync; null: notify nobody (KMFDDM's nonotify). */
export interface ChangeOptions {
  now: number;
  syncDueAt: number | null;
}

export interface ChannelTokens {
  token: string;
  /** When the channel's declarations last changed (ms), for the Timestamp. */
  changedAt: number;
}

export interface DeclarationItem {
  identifier: string;
  kind: DeclarationKind;
  serverToken: string;
}

export type PutOutcome = "created" | "changed" | "unchanged";

/** The CommandUUIDs of the DeclarativeManagement commands core/ddm-sync.ts queues start so. */
export const DDM_SYNC_COMMAND_PREFIX = "ddm-sync-";

/** Channels per statement and transaction of assignMany (3 placeholders each: far below both dialects' limits). */
export const ASSIGN_CHUNK = 500;

const DECLARATION_COLUMNS = "identifier, type, kind, payload, source, server_token, touched, created_at, updated_at";
interface DeclarationRow {
  identifier: string;
  type: string;
  kind: DeclarationKind;
  payload: string;
  source: string | null;
  server_token: string;
  touched: number;
  created_at: number;
  updated_at: number;
}

// The device's hot queries (exported for tests that EXPLAIN them).
export const CHANNEL_SETS_SQL = `SELECT es.set_name, es.created_at, s.token, s.updated_at FROM ddm_enrollment_sets es
  LEFT JOIN ddm_sets s ON s.name = es.set_name WHERE es.enrollment_id = ?`;
export const DECLARATION_ITEMS_SQL = `SELECT DISTINCT d.identifier, d.kind, d.server_token FROM ddm_enrollment_sets es
  JOIN ddm_set_declarations sd ON sd.set_name = es.set_name
  JOIN ddm_declarations d ON d.identifier = sd.declaration_identifier
  WHERE es.enrollment_id = ? ORDER BY d.identifier`;
// Only what the device gets: a row of fewer columns is cheaper to read (9 of a full sync's 12 requests).
const CHANNEL_DECLARATION_SQL = `SELECT d.type, d.payload, d.server_token FROM ddm_declarations d
  WHERE d.identifier = ? AND d.kind = ? AND EXISTS (SELECT 1 FROM ddm_enrollment_sets es
    JOIN ddm_set_declarations sd ON sd.set_name = es.set_name
    WHERE es.enrollment_id = ? AND sd.declaration_identifier = d.identifier)`;

export class DdmStore {
  constructor(private readonly db: Database) {}

  // ---- declarations

  async declaration(identifier: string): Promise<StoredDeclaration | undefined> {
    const row = await this.db.get<DeclarationRow>(`SELECT ${DECLARATION_COLUMNS} FROM ddm_declarations WHERE identifier = ?`, [identifier]);
    return row && declarationOf(row);
  }

  /**
   * The declarations whose operator source holds this text (an orchard:asset/
   * reference): a superset, since LIKE reads _ in it as any character; the
   * caller checks each one.
   */
  async declarationsNaming(text: string): Promise<Array<{ identifier: string; type: string; source: string }>> {
    return this.db.all("SELECT identifier, type, source FROM ddm_declarations WHERE source LIKE ?", [`%${text.replace(/%/g, "")}%`]);
  }

  /**
   * declarationsNaming, among the declarations one device holds: those of the
   * sets of any of its channels (the device's and its users'). A superset as
   * well; from the device's channels through primary keys.
   */
  async deviceDeclarationsNaming(deviceId: string, text: string): Promise<Array<{ identifier: string; type: string; source: string }>> {
    return this.db.all(
      `SELECT DISTINCT d.identifier, d.type, d.source FROM enrollments e
       JOIN ddm_enrollment_sets es ON es.enrollment_id = e.id
       JOIN ddm_set_declarations sd ON sd.set_name = es.set_name
       JOIN ddm_declarations d ON d.identifier = sd.declaration_identifier
       WHERE e.device_id = ? AND d.source LIKE ?`,
      [deviceId, `%${text.replace(/%/g, "")}%`],
    );
  }

  /** Which of these identifiers no stored declaration has. */
  async missingDeclarations(identifiers: readonly string[]): Promise<string[]> {
    const found = new Set<string>();
    for (const chunk of chunks(identifiers, 500)) {
      const rows = await this.db.all<{ identifier: string }>(
        `SELECT identifier FROM ddm_declarations WHERE identifier IN (${chunk.map(() => "?").join(", ")})`,
        chunk,
      );
      for (const r of rows) found.add(r.identifier);
    }
    return identifiers.filter((i) => !found.has(i));
  }

  async declarationIds(): Promise<string[]> {
    return (await this.db.all<{ identifier: string }>("SELECT identifier FROM ddm_declarations ORDER BY identifier")).map(
      (r) => r.identifier,
    );
  }

  /**
   * Stores a declaration: "unchanged" when its content (hence its token) is
   * what is stored, and nothing is written; otherwise the sets holding it get
   * their new tokens and their channels are due for a sync, all in one transaction.
   */
  async putDeclaration(d: NewDeclaration, o: ChangeOptions): Promise<{ outcome: PutOutcome; serverToken: string }> {
    return this.db.transaction(async (tx) => {
      const had = await tx.get<{ server_token: string; touched: number; source: string | null }>(
        "SELECT server_token, touched, source FROM ddm_declarations WHERE identifier = ?",
        [d.Identifier],
      );
      const token = serverToken(d, had ? Number(had.touched) : 0);
      const source = d.source === undefined ? null : JSON.stringify(d.source);
      if (had && had.server_token === token && had.source === source) return { outcome: "unchanged" as const, serverToken: token };
      await tx.run(
        `INSERT INTO ddm_declarations (${DECLARATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)
         ON CONFLICT (identifier) DO UPDATE SET type = excluded.type, kind = excluded.kind, payload = excluded.payload,
           source = excluded.source, server_token = excluded.server_token, updated_at = excluded.updated_at`,
        [d.Identifier, d.Type, d.kind, JSON.stringify(d.Payload), source, token, o.now, o.now],
      );
      // The operator's source changed, not what devices get: nobody syncs.
      if (had && had.server_token === token) return { outcome: "changed" as const, serverToken: token };
      await declarationChanged(tx, d.Identifier, o);
      return { outcome: had ? ("changed" as const) : ("created" as const), serverToken: token };
    });
  }

  /** A new ServerToken for an unchanged declaration (KMFDDM's touch); false when there is no such declaration. */
  async touch(identifier: string, o: ChangeOptions): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const row = await tx.get<DeclarationRow>(`SELECT ${DECLARATION_COLUMNS} FROM ddm_declarations WHERE identifier = ?`, [identifier]);
      if (!row) return false;
      const touched = Number(row.touched) + 1;
      const token = serverToken({ Type: row.type, Identifier: row.identifier, Payload: JSON.parse(row.payload) }, touched);
      await tx.run("UPDATE ddm_declarations SET touched = ?, server_token = ?, updated_at = ? WHERE identifier = ?", [
        touched,
        token,
        o.now,
        identifier,
      ]);
      await declarationChanged(tx, identifier, o);
      return true;
    });
  }

  /** Deletes a declaration that no set holds (KMFDDM: nobody is notified). */
  async deleteDeclaration(identifier: string): Promise<"deleted" | "absent" | "in_use"> {
    return this.db.transaction(async (tx) => {
      if (await tx.get("SELECT 1 AS x FROM ddm_set_declarations WHERE declaration_identifier = ?", [identifier])) return "in_use";
      return (await tx.run("DELETE FROM ddm_declarations WHERE identifier = ?", [identifier])) > 0 ? "deleted" : "absent";
    });
  }

  // ---- sets

  async setNames(): Promise<string[]> {
    return (await this.db.all<{ set_name: string }>("SELECT DISTINCT set_name FROM ddm_set_declarations ORDER BY set_name")).map(
      (r) => r.set_name,
    );
  }

  /** Whether a set holds any declaration (a set is its declarations). */
  async setHoldsAny(set: string): Promise<boolean> {
    return (await this.db.get("SELECT 1 AS one FROM ddm_set_declarations WHERE set_name = ? LIMIT 1", [set])) !== undefined;
  }

  async setDeclarations(set: string): Promise<string[]> {
    const rows = await this.db.all<{ declaration_identifier: string }>(
      "SELECT declaration_identifier FROM ddm_set_declarations WHERE set_name = ? ORDER BY declaration_identifier",
      [set],
    );
    return rows.map((r) => r.declaration_identifier);
  }

  async declarationSets(identifier: string): Promise<string[]> {
    const rows = await this.db.all<{ set_name: string }>(
      "SELECT set_name FROM ddm_set_declarations WHERE declaration_identifier = ? ORDER BY set_name",
      [identifier],
    );
    return rows.map((r) => r.set_name);
  }

  /**
   * A set's membership change locks the declaration's row first (PostgreSQL;
   * SQLite has one writer at a time): a putDeclaration of it in flight either
   * committed before (the set's token is computed from its new ServerToken)
   * or waits (and then finds the set among the declaration's).
   */
  private get forUpdate(): string {
    return this.db.dialect === "postgres" ? " FOR UPDATE" : "";
  }

  /** Puts a declaration in a set: true when that changed anything, "no_declaration" when it does not exist. */
  async addToSet(set: string, identifier: string, o: ChangeOptions): Promise<boolean | "no_declaration"> {
    return this.db.transaction(async (tx) => {
      if (!(await tx.get(`SELECT 1 AS x FROM ddm_declarations WHERE identifier = ?${this.forUpdate}`, [identifier])))
        return "no_declaration";
      const added = await tx.run(
        "INSERT INTO ddm_set_declarations (set_name, declaration_identifier) VALUES (?, ?) ON CONFLICT (set_name, declaration_identifier) DO NOTHING",
        [set, identifier],
      );
      if (added > 0) await setsChanged(tx, [set], o);
      return added > 0;
    });
  }

  async removeFromSet(set: string, identifier: string, o: ChangeOptions): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await tx.get(`SELECT 1 AS x FROM ddm_declarations WHERE identifier = ?${this.forUpdate}`, [identifier]);
      const removed = await tx.run("DELETE FROM ddm_set_declarations WHERE set_name = ? AND declaration_identifier = ?", [set, identifier]);
      if (removed > 0) await setsChanged(tx, [set], o);
      return removed > 0;
    });
  }

  // ---- assignments

  async enrollmentSets(enrollmentId: string): Promise<string[]> {
    const rows = await this.db.all<{ set_name: string }>(
      "SELECT set_name FROM ddm_enrollment_sets WHERE enrollment_id = ? ORDER BY set_name",
      [enrollmentId],
    );
    return rows.map((r) => r.set_name);
  }

  async assign(enrollmentId: string, set: string, o: ChangeOptions): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const added = await tx.run(
        "INSERT INTO ddm_enrollment_sets (enrollment_id, set_name, created_at) VALUES (?, ?, ?) ON CONFLICT (enrollment_id, set_name) DO NOTHING",
        [enrollmentId, set, o.now],
      );
      if (added > 0 && o.syncDueAt !== null) await dueIds(tx, [enrollmentId], o.syncDueAt);
      return added > 0;
    });
  }

  /** Removes one set from a channel, or (set undefined) all of them. */
  async unassign(enrollmentId: string, set: string | undefined, o: ChangeOptions): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const removed =
        set === undefined
          ? await tx.run("DELETE FROM ddm_enrollment_sets WHERE enrollment_id = ?", [enrollmentId])
          : await tx.run("DELETE FROM ddm_enrollment_sets WHERE enrollment_id = ? AND set_name = ?", [enrollmentId, set]);
      if (removed > 0 && o.syncDueAt !== null) await dueIds(tx, [enrollmentId], o.syncDueAt);
      return removed > 0;
    });
  }

  /**
   * Assigns a set to many channels (add) or takes it from them: one
   * transaction per chunk of ASSIGN_CHUNK ids, each channel whose sets changed
   * made due once (as assign/unassign do). Returns how many channels changed.
   * Memory stays bounded by the chunk whatever the number of ids.
   */
  async assignMany(set: string, enrollmentIds: readonly string[], add: boolean, o: ChangeOptions): Promise<number> {
    let changed = 0;
    for (const chunk of chunks(enrollmentIds, ASSIGN_CHUNK)) {
      changed += await this.db.transaction(async (tx) => {
        const rows = add
          ? await tx.all<{ enrollment_id: string }>(
              `INSERT INTO ddm_enrollment_sets (enrollment_id, set_name, created_at) VALUES ${chunk.map(() => "(?, ?, ?)").join(", ")}
               ON CONFLICT (enrollment_id, set_name) DO NOTHING RETURNING enrollment_id`,
              chunk.flatMap((id) => [id, set, o.now]),
            )
          : await tx.all<{ enrollment_id: string }>(
              `DELETE FROM ddm_enrollment_sets WHERE set_name = ? AND enrollment_id IN (${chunk.map(() => "?").join(", ")})
               RETURNING enrollment_id`,
              [set, ...chunk],
            );
        const ids = rows.map((r) => r.enrollment_id);
        if (ids.length > 0 && o.syncDueAt !== null) await dueIds(tx, ids, o.syncDueAt);
        return ids.length;
      });
    }
    return changed;
  }

  /**
   * The device channels (type Device) of a platform enrolled now (enabled),
   * in id order after `after`: one page for assignMany.
   */
  async deviceChannels(platform: string, after: string, limit: number): Promise<string[]> {
    const rows = await this.db.all<{ id: string }>(
      `SELECT e.id FROM enrollments e JOIN devices d ON d.id = e.device_id
       WHERE e.type = 'Device' AND e.id > ? AND e.enabled = 1 AND d.platform = ? ORDER BY e.id LIMIT ?`,
      [after, platform, limit],
    );
    return rows.map((r) => r.id);
  }

  /** The channels holding a set, in id order after `after`: one page. */
  async setHolders(set: string, after: string, limit: number): Promise<string[]> {
    const rows = await this.db.all<{ enrollment_id: string }>(
      "SELECT enrollment_id FROM ddm_enrollment_sets WHERE set_name = ? AND enrollment_id > ? ORDER BY enrollment_id LIMIT ?",
      [set, after, limit],
    );
    return rows.map((r) => r.enrollment_id);
  }

  // ---- syncs

  /** Makes channels due for a sync: by id, by set, and through sets by declaration. Returns how many rows it added. */
  async scheduleSync(
    what: { ids?: readonly string[]; sets?: readonly string[]; declarations?: readonly string[] },
    dueAt: number,
  ): Promise<number> {
    return this.db.transaction(async (tx) => {
      let added = await dueIds(tx, what.ids ?? [], dueAt);
      const sets = new Set(what.sets ?? []);
      for (const identifier of what.declarations ?? []) for (const s of await setsOf(tx, identifier)) sets.add(s);
      added += await dueSets(tx, [...sets], dueAt);
      return added;
    });
  }

  /** Whether any channel's sync is due by `now` (a read: the sweep opens no transaction for nothing). */
  async hasDue(now: number): Promise<boolean> {
    return (await this.db.get("SELECT 1 AS x FROM ddm_sync_due WHERE due_at <= ? LIMIT 1", [now])) !== undefined;
  }

  /** Takes up to `limit` channels whose sync is due: each is returned to one caller only, in any process. */
  async claimDue(now: number, limit: number): Promise<string[]> {
    const rows = await this.db.all<{ enrollment_id: string }>(
      `DELETE FROM ddm_sync_due WHERE enrollment_id IN (SELECT enrollment_id FROM ddm_sync_due WHERE due_at <= ? ORDER BY due_at LIMIT ?)
       RETURNING enrollment_id`,
      [now, limit],
    );
    return rows.map((r) => r.enrollment_id);
  }

  /** Which of these channels can take a command now: enrolled and enabled. */
  async syncable(enrollmentIds: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const chunk of chunks(enrollmentIds, 500)) {
      const rows = await this.db.all<{ id: string }>(
        `SELECT id FROM enrollments WHERE enabled = 1 AND id IN (${chunk.map(() => "?").join(", ")})`,
        chunk,
      );
      for (const r of rows) out.push(r.id);
    }
    return out;
  }

  /**
   * Removes the sync commands (DDM_SYNC_COMMAND_PREFIX) still waiting, never
   * sent, in these channels' queues: a newer one replaces them (theirs carry
   * older tokens), so an offline device finds one, not one per change.
   */
  async dropWaitingSyncs(enrollmentIds: readonly string[]): Promise<number> {
    let dropped = 0;
    for (const chunk of chunks(enrollmentIds, 500)) {
      dropped += await this.db.run(
        `DELETE FROM command_queue WHERE active = 1 AND status = 'Queued' AND command_uuid LIKE '${DDM_SYNC_COMMAND_PREFIX}%'
           AND enrollment_id IN (${chunk.map(() => "?").join(", ")})`,
        chunk,
      );
    }
    return dropped;
  }

  /** A channel that just enrolled is due for a sync when sets were assigned to its id beforehand. */
  async dueIfAssigned(enrollmentId: string, dueAt: number): Promise<boolean> {
    const added = await this.db.run(
      `INSERT INTO ddm_sync_due (enrollment_id, due_at) SELECT enrollment_id, ? FROM ddm_enrollment_sets WHERE enrollment_id = ? LIMIT 1
       ON CONFLICT (enrollment_id) DO NOTHING`,
      [dueAt, enrollmentId],
    );
    return added > 0;
  }

  /** How many channels wait for a sync (tests, metrics). */
  async dueCount(): Promise<number> {
    return Number((await this.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM ddm_sync_due"))?.n ?? 0);
  }

  // ---- the device's side

  async channelTokens(enrollmentId: string): Promise<ChannelTokens> {
    return tokensOf(await this.db.all<ChannelSetRow>(CHANNEL_SETS_SQL, [enrollmentId]));
  }

  /** channelTokens of many channels at once (the sync sweep). */
  async channelTokensMany(enrollmentIds: readonly string[]): Promise<Map<string, ChannelTokens>> {
    const rows = new Map<string, ChannelSetRow[]>(enrollmentIds.map((id) => [id, []]));
    for (const chunk of chunks(enrollmentIds, 500)) {
      const found = await this.db.all<ChannelSetRow & { enrollment_id: string }>(
        `SELECT es.enrollment_id, es.set_name, es.created_at, s.token, s.updated_at FROM ddm_enrollment_sets es
         LEFT JOIN ddm_sets s ON s.name = es.set_name WHERE es.enrollment_id IN (${chunk.map(() => "?").join(", ")})`,
        chunk,
      );
      for (const r of found) rows.get(r.enrollment_id)?.push(r);
    }
    // Channels with the same sets have the same token: hashed once per combination (tokensOf), not once per channel.
    return new Map([...rows].map(([id, r]) => [id, tokensOf(r)]));
  }

  async declarationItems(enrollmentId: string): Promise<DeclarationItem[]> {
    const rows = await this.db.all<{ identifier: string; kind: DeclarationKind; server_token: string }>(DECLARATION_ITEMS_SQL, [
      enrollmentId,
    ]);
    return rows.map((r) => ({ identifier: r.identifier, kind: r.kind, serverToken: r.server_token }));
  }

  /** A declaration as a channel gets it, when one of the channel's sets holds it and it is of this kind. */
  async channelDeclaration(enrollmentId: string, kind: DeclarationKind, identifier: string): Promise<ChannelDeclaration | undefined> {
    const row = await this.db.get<{ type: string; payload: string; server_token: string }>(CHANNEL_DECLARATION_SQL, [
      identifier,
      kind,
      enrollmentId,
    ]);
    return row && { identifier, type: row.type, payload: row.payload, serverToken: row.server_token };
  }
}

interface ChannelSetRow {
  set_name: string;
  created_at: number;
  token: string | null;
  updated_at: number | null;
}

/** DeclarationsTokens by their sets' names and tokens: hashed once per combination, not per request. */
const channelTokenMemo = new Map<string, string>();
const MAX_MEMO = 10_000;

function tokensOf(rows: readonly ChannelSetRow[]): ChannelTokens {
  // JSON escapes every control character: no two combinations share a key.
  const key = rows.map((r) => `${JSON.stringify(r.set_name)} ${r.token ?? ""}`).join("\n");
  let token = channelTokenMemo.get(key);
  if (token === undefined) {
    token = declarationsToken(rows.map((r) => ({ name: r.set_name, token: r.token ?? EMPTY_SET_TOKEN })));
    if (channelTokenMemo.size >= MAX_MEMO) channelTokenMemo.clear();
    channelTokenMemo.set(key, token);
  }
  return { token, changedAt: changedAtOf(rows) };
}

function changedAtOf(rows: readonly ChannelSetRow[]): number {
  let changedAt = 0;
  for (const r of rows) changedAt = Math.max(changedAt, Number(r.created_at), Number(r.updated_at ?? 0));
  return changedAt;
}

function declarationOf(r: DeclarationRow): StoredDeclaration {
  return {
    identifier: r.identifier,
    type: r.type,
    kind: r.kind,
    payload: r.payload,
    source: r.source,
    serverToken: r.server_token,
    touched: Number(r.touched),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

async function setsOf(tx: Sql, identifier: string): Promise<string[]> {
  const rows = await tx.all<{ set_name: string }>("SELECT set_name FROM ddm_set_declarations WHERE declaration_identifier = ?", [
    identifier,
  ]);
  return rows.map((r) => r.set_name);
}

/** A declaration's token changed: the sets holding it get new tokens, their channels are due. */
async function declarationChanged(tx: Sql, identifier: string, o: ChangeOptions): Promise<void> {
  await setsChanged(tx, await setsOf(tx, identifier), o);
}

/** Rewrites the sets' tokens (each set locked first, in name order), and makes their channels due. */
async function setsChanged(tx: Sql, sets: readonly string[], o: ChangeOptions): Promise<void> {
  const names = [...new Set(sets)].sort();
  for (const name of names) {
    await tx.run("INSERT INTO ddm_sets (name, token, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING", [
      name,
      EMPTY_SET_TOKEN,
      o.now,
    ]);
    await tx.run("UPDATE ddm_sets SET updated_at = ? WHERE name = ?", [o.now, name]);
    const items = await tx.all<{ identifier: string; server_token: string }>(
      `SELECT d.identifier, d.server_token FROM ddm_set_declarations sd JOIN ddm_declarations d ON d.identifier = sd.declaration_identifier
       WHERE sd.set_name = ?`,
      [name],
    );
    await tx.run("UPDATE ddm_sets SET token = ? WHERE name = ?", [
      setToken(items.map((i) => ({ identifier: i.identifier, serverToken: i.server_token }))),
      name,
    ]);
  }
  if (o.syncDueAt !== null) await dueSets(tx, names, o.syncDueAt);
}

/**
 * A channel due already keeps the earlier due time, and its row is locked
 * by the change's transaction either way (PostgreSQL locks every row a DO
 * UPDATE meets, updated or not): a sweep claiming it waits for the change
 * to commit, then reads its new tokens. DO NOTHING locked nothing, and a
 * sweep could take the row and queue the old tokens while the change was
 * still open, leaving nothing due once it committed.
 */
const DUE_CONFLICT = "ON CONFLICT (enrollment_id) DO UPDATE SET due_at = excluded.due_at WHERE excluded.due_at < ddm_sync_due.due_at";

/** Every channel holding one of the sets is due (one statement per set, whatever the number of channels). */
async function dueSets(tx: Sql, sets: readonly string[], dueAt: number): Promise<number> {
  let added = 0;
  for (const set of sets) {
    added += await tx.run(
      `INSERT INTO ddm_sync_due (enrollment_id, due_at) SELECT enrollment_id, ? FROM ddm_enrollment_sets WHERE set_name = ?
       ${DUE_CONFLICT}`,
      [dueAt, set],
    );
  }
  return added;
}

/** These channels are due at dueAt (or sooner, when they already were). */
export async function dueIds(tx: Sql, ids: readonly string[], dueAt: number): Promise<number> {
  let added = 0;
  for (const chunk of chunks(ids, 200)) {
    added += await tx.run(
      `INSERT INTO ddm_sync_due (enrollment_id, due_at) VALUES ${chunk.map(() => "(?, ?)").join(", ")} ${DUE_CONFLICT}`,
      chunk.flatMap((id) => [id, dueAt]),
    );
  }
  return added;
}
