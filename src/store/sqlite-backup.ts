import Database from "better-sqlite3";

/**
 * Copies a SQLite store with SQLite's online backup: a consistent snapshot,
 * safe while other connections (the server) read and write; it restarts when
 * they write. The copy is then checked with SQLite's integrity check.
 */
export async function backupSqlite(source: string, destination: string): Promise<void> {
  const db = new Database(source, { fileMustExist: true });
  try {
    await db.backup(destination);
  } finally {
    db.close();
  }
  const check = new Database(destination, { readonly: true });
  try {
    const result = check.pragma("integrity_check", { simple: true });
    if (result !== "ok") throw new Error(`the copy failed SQLite's integrity check: ${String(result)}`);
  } finally {
    check.close();
  }
}
