import { randomBytes } from "node:crypto";
import { describe } from "node:test";
import pg from "pg";

/** The server tests create their databases on; ORCHARD_TEST_POSTGRES overrides it. */
export const POSTGRES_ADMIN_URL = process.env.ORCHARD_TEST_POSTGRES || "postgres://root@127.0.0.1:5432/postgres";
const REQUIRED = process.env.ORCHARD_TEST_REQUIRE_POSTGRES === "1";

export type Backend = "sqlite" | "postgres";

let reachable: Promise<boolean> | undefined;

/** True when PostgreSQL answers; CI (ORCHARD_TEST_REQUIRE_POSTGRES=1) fails instead of skipping. */
export function postgresReachable(): Promise<boolean> {
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query("SELECT 1");
      return true;
    } catch (err) {
      if (REQUIRED)
        throw new Error(`ORCHARD_TEST_REQUIRE_POSTGRES=1 but PostgreSQL is not reachable at ${redact(POSTGRES_ADMIN_URL)}: ${String(err)}`);
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return reachable;
}

/** A fresh, empty database for one test; drop() removes it. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `orchard_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client(POSTGRES_ADMIN_URL);
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client(POSTGRES_ADMIN_URL);
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * Registers a suite once per store backend. Without PostgreSQL the
 * PostgreSQL run is skipped with the reason; in CI it fails.
 */
export async function forEachBackend(name: string, suite: (backend: Backend) => void): Promise<void> {
  describe(`${name} [sqlite]`, () => suite("sqlite"));
  if (await postgresReachable()) describe(`${name} [postgres]`, () => suite("postgres"));
  else
    describe(`${name} [postgres]`, {
      skip: `PostgreSQL not reachable at ${redact(POSTGRES_ADMIN_URL)} (set ORCHARD_TEST_POSTGRES)`,
    }, () => {});
}

function redact(url: string): string {
  return url.replace(/:\/\/([^:@/]+):[^@/]*@/, "://$1:***@");
}
