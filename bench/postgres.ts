// PostgreSQL for the bench: a fresh database per Orchard server (each scenario
// needs an empty one), created and dropped through the URL given to --storage.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import pg from "pg";
import { procCpuS } from "./proc.ts";

/** Used by --backends postgres when no postgres:// --storage is given. */
export const DEFAULT_POSTGRES_URL = process.env.ORCHARD_BENCH_POSTGRES || "postgres://root@127.0.0.1:5432/postgres";

export function isPostgresUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s);
}

/** The URL without its password, for logs and results. */
export function redactUrl(url: string): string {
  return url.replace(/:\/\/([^:@/]+):[^@/]*@/, "://$1:***@");
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export interface BenchDatabase {
  name: string;
  /** The admin URL with this database's name. */
  url: string;
  /** DROP DATABASE … WITH (FORCE): also ends the connections a dead server left. */
  drop(): Promise<void>;
}

/** CREATE DATABASE <prefix>_<random> (orchard_bench_… unless told) on the server of `adminUrl`. */
export async function createBenchDatabase(adminUrl: string, prefix = "orchard_bench"): Promise<BenchDatabase> {
  if (!/^[a-z_][a-z0-9_]*$/.test(prefix)) throw new Error(`not a database name prefix: ${prefix}`);
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    name,
    url: url.toString(),
    drop: () => (dropped ??= withClient(adminUrl, async (c) => void (await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)))),
  };
}

/** The server's version and the settings that matter most for write-heavy scenarios. */
export async function postgresInfo(adminUrl: string): Promise<Record<string, string>> {
  return withClient(adminUrl, async (c) => {
    const { rows } = await c.query<{ name: string; setting: string; unit: string | null }>(
      `SELECT name, setting, unit FROM pg_settings
        WHERE name IN ('server_version', 'synchronous_commit', 'fsync', 'shared_buffers', 'max_connections', 'wal_level', 'commit_delay')`,
    );
    return Object.fromEntries(rows.map((r) => [r.name, r.unit && r.unit !== "" ? `${r.setting} (${r.unit})` : r.setting]));
  });
}

/**
 * The CPU of the PostgreSQL backend processes serving one database, when
 * PostgreSQL runs on this machine (Linux /proc): what the bench's requests
 * cost the database, apart from the rest of the machine. Backends are found
 * through pg_stat_activity at both ends of a run; one that started during the
 * run counts whole, one that ended during it is missed (Orchard's pool keeps
 * its connections while busy). Shared work (WAL writer, checkpointer) is not
 * included.
 */
export class DatabaseCpu {
  private constructor(private readonly client: pg.Client) {}

  /** undefined when PostgreSQL is not on this machine or /proc is not there. */
  static async open(adminUrl: string): Promise<DatabaseCpu | undefined> {
    const host = new URL(adminUrl).hostname;
    if (!["127.0.0.1", "localhost", "[::1]", "::1", ""].includes(host) || !fs.existsSync("/proc/self/stat")) return undefined;
    const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
    await client.connect();
    const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    if (procCpuS(rows[0]!.pid) === undefined) {
      await client.end().catch(() => {});
      return undefined;
    }
    return new DatabaseCpu(client);
  }

  /** pid -> CPU seconds of the backends connected to `database`. */
  async sample(database: string): Promise<Map<number, number>> {
    const { rows } = await this.client.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1", [database]);
    const out = new Map<number, number>();
    for (const { pid } of rows) {
      const cpu = procCpuS(pid);
      if (cpu !== undefined) out.set(pid, cpu);
    }
    return out;
  }

  close(): Promise<void> {
    return this.client.end().catch(() => {});
  }
}

/** CPU seconds spent between two samples by the backends alive at the second. */
export function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let s = 0;
  for (const [pid, cpu] of after) s += cpu - (before.get(pid) ?? 0);
  return s;
}
