import fs from "node:fs";
import BetterSqlite3 from "better-sqlite3";
import type { Database, Sql, SqlParam } from "./db.ts";
import { normalizeParams } from "./params.ts";
import { StatementCache } from "./statement-cache.ts";
import { storeError } from "./unavailable.ts";

// better-sqlite3 is synchronous and holds one connection. A transaction in
// Orchard is an async function, so another request could interleave its own
// statements between two awaits and land inside the open transaction. A small
// lock keeps every statement outside a transaction waiting until it ends;
// when no transaction is open (the common case) statements run at once.
//
// Group commit: the transactions asked for in one turn of the event loop run
// one after the other inside ONE BEGIN/COMMIT, each in a savepoint of its
// own, so each still commits or rolls back whole (a member that throws is
// rolled back to its savepoint; the others go on). Every member is answered
// only once the shared COMMIT is done, so nothing answered can be lost. On
// SQLite a commit (writing the changed pages to the WAL) costs more than the
// statements of a small transaction (BENCHMARKS.md, 2026-12-03: the outbox
// row doubled a TokenUpdate's commit); sharing it makes concurrent check-ins
// cheaper. What a member sees is what it would see run alone after the
// members before it.
//
// Read snapshot: the reads outside a transaction in one turn of the event
// loop share one read transaction (BEGIN, then COMMIT at the turn's end).
// On its own each read would take and drop SQLite's file locks (four fcntl
// calls, about 4 us here: more than the query of an Idle's empty queue;
// BENCHMARKS.md, 2026-12-03 third session). Any write of this connection
// ends the snapshot first, so the process always reads its own writes;
// another process's commit is seen from the next turn on.
//
// Page cache: sized from the fleet (pageCacheKib), not better-sqlite3's fixed
// 16 MB, which a small fleet's store fills with pages it rarely reads again.

/** SQLite's page cache for a store of this many enrollment channels, in KiB. */
export function pageCacheKib(channels: number): number {
  // In proportion: 16 MB at 100,000 channels. At 10,000 and 50,000 a 4 MB
  // cache cost DDM nothing; at 100,000 it lost 11% of DDM's tokens query (in
  // an A/B whose smaller cache always ran first) and 32 MB gained nothing
  // clear (BENCHMARKS.md, 2026-12-04 fourth session). 16 MB, better-sqlite3's
  // default, stays the ceiling: the million-enrollment figures were made with it.
  return Math.min(PAGE_CACHE_MAX_KIB, Math.max(PAGE_CACHE_MIN_KIB, Math.ceil((channels / 100_000) * PAGE_CACHE_MAX_KIB)));
}
export const PAGE_CACHE_MIN_KIB = 4096;
export const PAGE_CACHE_MAX_KIB = 16_000;

/**
 * The store holds secrets (network users' digests, the nonce key, push
 * tokens, raw device messages): its files are the owner's alone, whatever the
 * umask or the data directory's mode. A new database is created 0600 (SQLite
 * gives its -wal and -shm the database's mode); existing files readable by
 * others are narrowed to it.
 */
function keepPrivate(file: string): void {
  if (file === ":memory:" || file === "") return;
  fs.closeSync(fs.openSync(file, "a", 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      if ((fs.statSync(f).mode & 0o077) !== 0) fs.chmodSync(f, 0o600);
    } catch (err) {
      // Not there yet (SQLite makes it with the database's mode), or not ours to change.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT" && (err as NodeJS.ErrnoException).code !== "EPERM") throw err;
    }
  }
}

export class SqliteDatabase implements Database {
  readonly dialect = "sqlite" as const;
  private readonly db: BetterSqlite3.Database;
  /** Prepared statements by SQL text (a statement no longer kept is freed by the GC). */
  readonly statements: StatementCache<BetterSqlite3.Statement>;
  private locked = false;
  private readonly waiting: Array<() => void> = [];
  /** Transactions waiting for the next group (run at the end of this turn of the event loop). */
  private group: GroupMember[] = [];
  private groupScheduled = false;
  private readonly savepoint: BetterSqlite3.Statement;
  private readonly releaseSavepoint: BetterSqlite3.Statement;
  private readonly rollbackSavepoint: BetterSqlite3.Statement;
  /** True while this turn's read snapshot is open (see the comment at the top). */
  private reading = false;
  private readonly beginRead: BetterSqlite3.Statement;
  private readonly endRead: BetterSqlite3.Statement;

  constructor(file: string) {
    keepPrivate(file);
    this.db = new BetterSqlite3(file);
    this.db.pragma("journal_mode = WAL");
    // NORMAL in WAL mode survives a process crash without losing a commit;
    // only a power loss can drop the last transactions.
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("foreign_keys = ON");
    this.db.pragma("busy_timeout = 5000");
    this.savepoint = this.db.prepare("SAVEPOINT orchard_member");
    this.releaseSavepoint = this.db.prepare("RELEASE orchard_member");
    this.rollbackSavepoint = this.db.prepare("ROLLBACK TO orchard_member");
    this.beginRead = this.db.prepare("BEGIN");
    this.endRead = this.db.prepare("COMMIT");
    this.statements = new StatementCache((sql) => this.db.prepare(sql));
  }

  private statement(sql: string): BetterSqlite3.Statement {
    return this.statements.get(sql);
  }

  private readonly direct: Sql = {
    all: async <T>(sql: string, params: readonly SqlParam[] = []) =>
      guarded(() => this.statement(sql).all(...normalizeParams(params)) as T[]),
    get: async <T>(sql: string, params: readonly SqlParam[] = []) =>
      guarded(() => this.statement(sql).get(...normalizeParams(params)) as T | undefined),
    run: async (sql: string, params: readonly SqlParam[] = []) =>
      guarded(() => this.statement(sql).run(...normalizeParams(params)).changes),
    exec: async (script: string) => {
      guarded(() => this.db.exec(script));
    },
  };

  all<T>(sql: string, params?: readonly SqlParam[]): Promise<T[]> {
    return this.locked
      ? this.queued(() => this.read(() => this.direct.all<T>(sql, params)))
      : this.read(() => this.direct.all<T>(sql, params));
  }

  get<T>(sql: string, params?: readonly SqlParam[]): Promise<T | undefined> {
    return this.locked
      ? this.queued(() => this.read(() => this.direct.get<T>(sql, params)))
      : this.read(() => this.direct.get<T>(sql, params));
  }

  run(sql: string, params?: readonly SqlParam[]): Promise<number> {
    return this.locked ? this.queued(() => this.write(() => this.direct.run(sql, params))) : this.write(() => this.direct.run(sql, params));
  }

  /** A read outside a transaction: in this turn's read snapshot, opened by the first. */
  private read<T>(statement: () => Promise<T>): Promise<T> {
    if (!this.reading) {
      guarded(() => this.beginRead.run());
      this.reading = true;
      setImmediate(() => this.endReadSnapshot());
    }
    return statement();
  }

  /** A write outside a transaction: the read snapshot ends first (a write in it could not commit on its own). */
  private write<T>(statement: () => Promise<T>): Promise<T> {
    this.endReadSnapshot();
    return statement();
  }

  private endReadSnapshot(): void {
    if (!this.reading) return;
    this.reading = false;
    try {
      if (this.db.inTransaction) this.endRead.run();
    } catch {
      // A read-only transaction has nothing to lose: end it whatever the COMMIT said.
      this.rollback();
    }
  }

  private async queued<T>(statement: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await statement();
    } finally {
      this.release();
    }
  }

  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.group.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (this.groupScheduled) return;
      this.groupScheduled = true;
      setImmediate(() => void this.runGroup());
    });
  }

  /** The transactions gathered so far, in one BEGIN/COMMIT (see the comment at the top). */
  private async runGroup(): Promise<void> {
    this.groupScheduled = false;
    await this.acquire();
    this.endReadSnapshot();
    // Those asked for while waiting for the lock join this group too.
    const members = this.group;
    this.group = [];
    // Each member's answer, given once the lock is released (what its caller does next needs no queueing).
    let answers: Array<() => void> = [];
    try {
      if (members.length === 1) await this.runAlone(members[0]!, answers);
      else await this.runTogether(members, answers);
    } catch (err) {
      // Not expected (every statement's failure is handled above): nothing of the group stays, every member hears why.
      this.rollback();
      answers = members.map((m) => () => m.reject(err));
    } finally {
      this.release();
    }
    for (const answer of answers) answer();
  }

  private async runAlone(m: GroupMember, answers: Array<() => void>): Promise<void> {
    let result: unknown;
    try {
      guarded(() => this.db.exec("BEGIN IMMEDIATE"));
      result = await m.fn(this.direct);
      guarded(() => this.db.exec("COMMIT"));
    } catch (err) {
      this.rollback();
      answers.push(() => m.reject(err));
      return;
    }
    answers.push(() => m.resolve(result));
  }

  private async runTogether(members: readonly GroupMember[], answers: Array<() => void>): Promise<void> {
    // Members done but not yet committed: answered after the COMMIT.
    let done: Array<{ m: GroupMember; result: unknown }> = [];
    const failDone = (err: unknown) => {
      for (const d of done) answers.push(() => d.m.reject(err));
      done = [];
    };
    for (const [i, m] of members.entries()) {
      try {
        if (!this.db.inTransaction) guarded(() => this.db.exec("BEGIN IMMEDIATE"));
      } catch (err) {
        // No transaction to be had (another process holds the write lock past the busy timeout): none of the rest runs.
        failDone(err);
        for (const rest of members.slice(i)) answers.push(() => rest.reject(err));
        return;
      }
      try {
        guarded(() => this.savepoint.run());
        const result = await m.fn(this.direct);
        guarded(() => this.releaseSavepoint.run());
        done.push({ m, result });
      } catch (err) {
        answers.push(() => m.reject(err));
        // SQLite may have rolled the whole transaction back (a full disk, an I/O
        // error): the members before this one went with it. The rest start a new one.
        if (!this.rollbackMember()) failDone(err);
      }
    }
    if (done.length === 0) return this.rollback();
    try {
      guarded(() => this.db.exec("COMMIT"));
    } catch (err) {
      this.rollback();
      return failDone(err);
    }
    for (const d of done) answers.push(() => d.m.resolve(d.result));
  }

  /** Undoes the member in its savepoint; false when the transaction itself is gone (then nothing of it stays). */
  private rollbackMember(): boolean {
    if (!this.db.inTransaction) return false;
    try {
      this.rollbackSavepoint.run();
      this.releaseSavepoint.run();
      return true;
    } catch {
      this.rollback();
      return false;
    }
  }

  /** Ends the open transaction, if any, keeping none of it; never throws (its callers are answering already). */
  private rollback(): void {
    try {
      if (this.db.inTransaction) this.db.exec("ROLLBACK");
    } catch {
      // Nothing more to undo: SQLite ends the transaction when its ROLLBACK fails.
    }
  }

  exec(script: string): Promise<void> {
    return this.locked ? this.queued(() => this.write(() => this.direct.exec(script))) : this.write(() => this.direct.exec(script));
  }

  /** Sizes the page cache for this many enrollment channels (pageCacheKib). */
  fitPageCache(channels: number): void {
    this.db.pragma(`cache_size = -${pageCacheKib(channels)}`);
  }

  async close(): Promise<void> {
    this.endReadSnapshot();
    this.db.close();
  }

  private acquire(): Promise<void> {
    if (!this.locked) {
      this.locked = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.locked = false;
  }
}

interface GroupMember {
  fn: (tx: Sql) => Promise<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** Runs a driver call; an outage (busy past the timeout, I/O error, full disk) becomes StoreUnavailable. */
function guarded<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw storeError(err);
  }
}
