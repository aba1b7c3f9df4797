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
export class SqliteDatabase implements Database {
  readonly dialect = "sqlite" as const;
  private readonly db: BetterSqlite3.Database;
  /** Prepared statements by SQL text (a statement no longer kept is freed by the GC). */
  readonly statements: StatementCache<BetterSqlite3.Statement>;
  private locked = false;
  private readonly waiting: Array<() => void> = [];

  constructor(file: string) {
    this.db = new BetterSqlite3(file);
    this.db.pragma("journal_mode = WAL");
    // NORMAL in WAL mode survives a process crash without losing a commit;
    // only a power loss can drop the last transactions.
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("foreign_keys = ON");
    this.db.pragma("busy_timeout = 5000");
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
    return this.locked ? this.queued(() => this.direct.all<T>(sql, params)) : this.direct.all<T>(sql, params);
  }

  get<T>(sql: string, params?: readonly SqlParam[]): Promise<T | undefined> {
    return this.locked ? this.queued(() => this.direct.get<T>(sql, params)) : this.direct.get<T>(sql, params);
  }

  run(sql: string, params?: readonly SqlParam[]): Promise<number> {
    return this.locked ? this.queued(() => this.direct.run(sql, params)) : this.direct.run(sql, params);
  }

  private async queued<T>(statement: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await statement();
    } finally {
      this.release();
    }
  }

  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      guarded(() => this.db.exec("BEGIN IMMEDIATE"));
      try {
        const result = await fn(this.direct);
        guarded(() => this.db.exec("COMMIT"));
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec("ROLLBACK");
        throw err;
      }
    } finally {
      this.release();
    }
  }

  exec(script: string): Promise<void> {
    return this.locked ? this.queued(() => this.direct.exec(script)) : this.direct.exec(script);
  }

  async close(): Promise<void> {
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

/** Runs a driver call; an outage (busy past the timeout, I/O error, full disk) becomes StoreUnavailable. */
function guarded<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw storeError(err);
  }
}
