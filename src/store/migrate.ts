import type { Database } from "./db.ts";
import { forDialect, migrations } from "./migrations/index.ts";

// Any fixed number: the key of the advisory lock that serialises migrations
// when several processes start at once against one PostgreSQL.
const MIGRATION_LOCK = 7_300_001;

/** The database was migrated by a newer Orchard than this one. */
export class SchemaTooNew extends Error {
  constructor(
    readonly schemaVersion: number,
    readonly knownVersion: number,
  ) {
    super(
      `the database's schema is version ${schemaVersion}, newer than this Orchard knows (${knownVersion}): ` +
        "run the newer Orchard that migrated it, or restore the backup taken before the upgrade",
    );
  }
}

/** A migration the store's data keeps from applying (Migration.heldBy): tried again at the next start. */
export interface HeldMigration {
  version: number;
  name: string;
  /** What holds it back and what the operator can do, in words. */
  reason: string;
}

/**
 * Applies the numbered migrations not yet applied, all in one transaction.
 * On PostgreSQL an advisory lock makes concurrent starters wait for the
 * first; on SQLite the transaction's write lock does the same. A migration
 * whose heldBy names a reason is left out (and said in `held`).
 */
export async function migrate(db: Database): Promise<{ applied: number[]; held: HeldMigration[] }> {
  return db.transaction(async (tx) => {
    if (db.dialect === "postgres") await tx.get("SELECT pg_advisory_xact_lock(?)", [MIGRATION_LOCK]);
    await tx.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    );
    const rows = await tx.all<{ version: number }>("SELECT version FROM schema_migrations");
    const applied = new Set(rows.map((r) => Number(r.version)));
    const known = Math.max(...migrations.map((m) => m.version));
    const newest = Math.max(0, ...applied);
    // A newer Orchard changed this schema: this one would misread it, or undo nothing it knows of.
    if (newest > known) throw new SchemaTooNew(newest, known);
    const done: number[] = [];
    const held: HeldMigration[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      const reason = await m.heldBy?.(tx, db.dialect);
      if (reason !== undefined) {
        held.push({ version: m.version, name: m.name, reason });
        continue;
      }
      if (m.sql.trim() !== "") await tx.exec(forDialect(m.sql, db.dialect));
      await m.data?.(tx, db.dialect);
      await tx.run("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", [m.version, m.name, Date.now()]);
      done.push(m.version);
    }
    return { applied: done, held };
  });
}
