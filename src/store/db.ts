// A dialect-neutral SQL executor. Every query in Orchard is written once, in
// SQL that SQLite and PostgreSQL both accept (`?` placeholders, ON CONFLICT,
// RETURNING, integers for booleans and millisecond times), and runs through
// this interface; only the executors differ.

export type SqlParam = string | number | bigint | boolean | Buffer | null;

export interface Sql {
  all<T>(sql: string, params?: readonly SqlParam[]): Promise<T[]>;
  get<T>(sql: string, params?: readonly SqlParam[]): Promise<T | undefined>;
  /** Runs a statement; resolves to the number of rows it changed. */
  run(sql: string, params?: readonly SqlParam[]): Promise<number>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

export interface Database extends Sql {
  readonly dialect: "sqlite" | "postgres";
  /** Runs fn in one transaction: all of it commits, or none of it does. */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** Sizes the store's own cache for a fleet of this many enrollment channels (SQLite's page cache; PostgreSQL has none of its own). */
  fitPageCache?(channels: number): void;
}

/**
 * Whether a driver's error is a row that names a missing parent (SQLite's
 * SQLITE_CONSTRAINT_FOREIGNKEY, PostgreSQL's 23503): a write for a device
 * removed meanwhile, which its caller refuses rather than fails.
 */
export function isForeignKeyViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "SQLITE_CONSTRAINT_FOREIGNKEY" || code === "23503";
}
