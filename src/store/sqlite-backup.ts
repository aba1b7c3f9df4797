import fs from "node:fs";
import Database from "better-sqlite3";

/**
 * Copies a SQLite store with SQLite's online backup: a consistent snapshot,
 * safe while other connections (the server) read and write; it restarts when
 * they write. The copy is then checked with SQLite's integrity check and left
 * as one file (no -wal or -shm beside it), readable by its owner only.
 */
export async function backupSqlite(source: string, destination: string): Promise<void> {
  // The copy holds sealed keys and the directory's digests: never readable by others, not even while it is written.
  fs.closeSync(fs.openSync(destination, "wx", 0o600));
  const db = new Database(source, { fileMustExist: true });
  try {
    await db.backup(destination);
  } finally {
    db.close();
  }
  // A read-write connection: a read-only one cannot remove the -wal and -shm files it leaves.
  const check = new Database(destination, { fileMustExist: true });
  try {
    check.pragma("journal_mode = DELETE");
    const result = check.pragma("integrity_check", { simple: true });
    if (result !== "ok") throw new Error(`the copy failed SQLite's integrity check: ${String(result)}`);
  } finally {
    check.close();
  }
  fs.chmodSync(destination, 0o600);
}

/** SQLite's integrity check of a store file, read-only: "ok", or what it found. */
export function sqliteIntegrity(file: string): string {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return String(db.pragma("integrity_check", { simple: true }));
  } finally {
    db.close();
  }
}
