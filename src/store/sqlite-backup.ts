import fs from "node:fs";
import path from "node:path";
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

/**
 * Whether another process has the SQLite store open, found without changing it.
 * A connection in WAL mode holds a shared lock on the database file from its
 * first read until it closes, idle or not; a connection in exclusive locking
 * mode cannot then take its write lock (SQLITE_BUSY at once, with no timeout).
 * The probe opens the file through a hard link of its own: SQLite names the
 * log after the path it opened, so the probe neither reads nor checkpoints the
 * store's orchard.db-wal (a crashed server's, which then goes aside as it is);
 * the lock is the file's, whatever its name. Where no hard link can be made,
 * the probe opens the store itself (a crashed store's log is then checkpointed
 * into it, as a server starting on it would do). A file SQLite cannot read is
 * not in use: no server can be answering from it either. Throws when it cannot
 * tell.
 */
export function sqliteInUse(file: string): boolean {
  if (!fs.existsSync(file)) return false;
  const link = path.join(path.dirname(file), `.${path.basename(file)}.restore-probe-${process.pid}`);
  let probe = link;
  try {
    fs.linkSync(file, link);
  } catch {
    probe = file;
  }
  let db: Database.Database | undefined;
  try {
    db = new Database(probe, { fileMustExist: true, timeout: 0 });
    db.pragma("locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE");
    db.exec("ROLLBACK");
    return false;
  } catch (err) {
    const code = String((err as { code?: unknown }).code ?? "");
    if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") return true;
    if (code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT")) return false;
    throw err;
  } finally {
    db?.close();
    if (probe === link) fs.rmSync(link, { force: true });
  }
}

/** Values of the store's settings table, read-only (none when the store has no such table). */
export function sqliteSettings(file: string, names: readonly string[]): Map<string, Buffer> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const found = new Map<string, Buffer>();
    if (!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'settings'").get()) return found;
    const read = db.prepare("SELECT value FROM settings WHERE name = ?");
    for (const name of names) {
      const row = read.get(name) as { value: Buffer | string } | undefined;
      if (row) found.set(name, Buffer.from(row.value));
    }
    return found;
  } finally {
    db.close();
  }
}
