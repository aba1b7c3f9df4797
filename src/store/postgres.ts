import { createHash } from "node:crypto";
import type { Pool, PoolClient, QueryResult, QueryResultRow } from "pg";
import type { Database, Sql, SqlParam } from "./db.ts";
import { normalizeParams } from "./params.ts";
import { LIST_PLACEHOLDERS, placeholders, StatementCache } from "./statement-cache.ts";
import { storeError } from "./unavailable.ts";

type Pg = typeof import("pg").default;
let loading: Promise<Pg> | undefined;

/** pg, loaded with the first PostgreSQL store: a process on SQLite does not carry it (2.4 MB of heap). */
function loadPg(): Promise<Pg> {
  loading ??= import("pg").then(
    ({ default: pg }) => {
      // BIGINT (int8) columns hold millisecond times and counts, all well inside
      // Number's exact range; read them as numbers, as SQLite returns them.
      pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
      return pg;
    },
    (err: unknown) => {
      loading = undefined; // a failed load is tried again by the next store, not remembered
      throw err;
    },
  );
  return loading;
}

/**
 * PostgreSQL through a `pg` pool. Orchard's SQL is written with `?`
 * placeholders; each text is rewritten to $1..$n once and run as a named
 * prepared statement, so a hot query is parsed once per connection. A list's
 * statement (more than LIST_PLACEHOLDERS placeholders, a text per list
 * length) runs unnamed: named, every length would stay prepared on every
 * connection (statement-cache.ts).
 */
export class PostgresDatabase implements Database {
  readonly dialect = "postgres" as const;
  private readonly pool: Pool;
  /** The $n text of each SQL text, and its statement name (none for a list's). */
  readonly queries = new StatementCache<{ name?: string; text: string }>((sql) => {
    let n = 0;
    const text = sql.replace(/\?/g, () => `$${++n}`);
    if (placeholders(sql) > LIST_PLACEHOLDERS) return { text };
    return { name: "o_" + createHash("sha1").update(text).digest("hex").slice(0, 20), text };
  });
  private readonly direct: Sql;

  static async open(url: string, poolSize = 10): Promise<PostgresDatabase> {
    return new PostgresDatabase(new (await loadPg()).Pool({ connectionString: url, max: poolSize }));
  }

  private constructor(pool: Pool) {
    this.pool = pool;
    // An idle client's error (a restarted server) must not crash the process.
    this.pool.on("error", () => {});
    this.direct = this.on(this.pool);
  }

  private on(client: Pool | PoolClient): Sql {
    const exec = async <T>(sql: string, params: readonly SqlParam[] = []) => {
      const { name, text } = this.queries.get(sql);
      try {
        return (await client.query({ name, text, values: normalizeParams(params) })) as unknown as QueryResult<T & QueryResultRow>;
      } catch (err) {
        throw storeError(err);
      }
    };
    return {
      all: async <T>(sql: string, params?: readonly SqlParam[]) => (await exec<T>(sql, params)).rows as T[],
      get: async <T>(sql: string, params?: readonly SqlParam[]) => (await exec<T>(sql, params)).rows[0] as T | undefined,
      run: async (sql: string, params?: readonly SqlParam[]) => (await exec(sql, params)).rowCount ?? 0,
      exec: async (script: string) => {
        await client.query(script).catch((err: unknown) => Promise.reject(storeError(err)));
      },
    };
  }

  all<T>(sql: string, params?: readonly SqlParam[]): Promise<T[]> {
    return this.direct.all<T>(sql, params);
  }

  get<T>(sql: string, params?: readonly SqlParam[]): Promise<T | undefined> {
    return this.direct.get<T>(sql, params);
  }

  run(sql: string, params?: readonly SqlParam[]): Promise<number> {
    return this.direct.run(sql, params);
  }

  exec(script: string): Promise<void> {
    return this.direct.exec(script);
  }

  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    const client = await this.pool.connect().catch((err: unknown) => Promise.reject(storeError(err)));
    // A connection lost while the transaction holds it between statements is
    // an 'error' on the client, which the pool listens for only on idle ones:
    // without this it would crash the process. The next statement then fails
    // (a store error, 503), and the client is destroyed, not pooled again.
    let lost: Error | undefined;
    const onLost = (err: Error) => {
      lost = err;
    };
    client.on("error", onLost);
    try {
      await client.query("BEGIN");
      const result = await fn(this.on(client));
      await client.query("COMMIT");
      return result;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw storeError(err);
    } finally {
      client.off("error", onLost);
      client.release(lost);
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
