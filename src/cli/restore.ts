import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import { ConfigError, envName } from "../config.ts";
import { sqliteIntegrity } from "../store/sqlite-backup.ts";
import { BACKUP_SECRET_FILES } from "./backup.ts";

// `orchard restore`: puts an `orchard backup` back into a data dir, with the
// server stopped. Copying orchard.db back by hand is a trap: a server that
// did not stop cleanly (the usual reason to restore) leaves orchard.db-wal and
// orchard.db-shm beside it, and SQLite then replays that log onto the restored
// file and ruins it (a walkthrough found "database disk image is malformed").
// So what is in the data dir is moved aside, never deleted, and the copy is
// checked before it is put in place.
//
// Nothing is moved while a process has the store open: a running server
// keeps its open files (moved aside with the rest), keeps answering from them,
// and every change it makes until its restart is lost.

export const RESTORE_USAGE = "orchard restore --from DIR [--data-dir DIR]   (the server stopped; the data dir's SQLite store)";

const STORE_FILES = ["orchard.db", "orchard.db-wal", "orchard.db-shm"];

export interface RestoreResult {
  dataDir: string;
  /** Where the files the restore replaced went (undefined: there were none). */
  movedAside?: string;
  files: string[];
}

/** What `orchard restore` prints when it is done. */
export function describeRestore(done: RestoreResult): string {
  return (
    `restored ${done.files.join(", ")} into ${done.dataDir}` + (done.movedAside ? `; what was there is in ${done.movedAside}` : "") + "\n"
  );
}

export async function restore(args: string[], env: NodeJS.ProcessEnv = process.env, now = new Date()): Promise<RestoreResult> {
  let values: { from?: string; "data-dir"?: string };
  try {
    values = parseArgs({ args, options: { from: { type: "string" }, "data-dir": { type: "string" } }, strict: true }).values;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\nusage: ${RESTORE_USAGE}`);
  }
  if (!values.from) throw new ConfigError(`--from is required\nusage: ${RESTORE_USAGE}`);
  const from = values.from;
  const dataDir = values["data-dir"] ?? (env[envName("data-dir")] || "./data");
  // The server would not read what is restored here: its store is elsewhere.
  const storage = env[envName("storage")];
  if (storage) {
    throw new ConfigError(
      `${envName("storage")} is set (${storage.split(":")[0]}:...): orchard restore puts back the data dir's orchard.db; ` +
        "for another SQLite file, stop the server and replace that file with its -wal and -shm removed; for PostgreSQL, pg_restore",
    );
  }
  const backupDb = path.join(from, "orchard.db");
  if (!fs.existsSync(backupDb)) throw new ConfigError(`no orchard.db in ${from}: give the directory orchard backup wrote`);
  for (const leftover of ["orchard.db-wal", "orchard.db-shm"]) {
    if (fs.existsSync(path.join(from, leftover))) {
      throw new ConfigError(`${from} holds ${leftover}: it is not a backup orchard backup wrote (a copy of a live store?)`);
    }
  }
  checkIntegrity(backupDb, from);

  const restoring = ["orchard.db", ...BACKUP_SECRET_FILES.filter((f) => fs.existsSync(path.join(from, f)))];

  const liveDb = path.join(dataDir, "orchard.db");
  if (inUse(liveDb)) {
    throw new ConfigError(
      `${liveDb} is open in another process (a running orchard serve?): stop the server, then restore; nothing was changed`,
    );
  }
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // What the restore replaces, the store's log files included, goes aside first.
  const replaced = [...new Set([...STORE_FILES, ...restoring])].filter((f) => fs.existsSync(path.join(dataDir, f)));
  let movedAside: string | undefined;
  if (replaced.length > 0) {
    movedAside = path.join(dataDir, `before-restore-${now.toISOString().replace(/[:.]/g, "-")}`);
    fs.mkdirSync(movedAside, { mode: 0o700 });
    for (const f of replaced) fs.renameSync(path.join(dataDir, f), path.join(movedAside, f));
  }
  try {
    for (const f of restoring) {
      const to = path.join(dataDir, f);
      fs.copyFileSync(path.join(from, f), to, fs.constants.COPYFILE_EXCL);
      fs.chmodSync(to, 0o600);
    }
    checkIntegrity(path.join(dataDir, "orchard.db"), dataDir);
  } catch (err) {
    // Half a restore is worse than none: what was there goes back.
    for (const f of restoring) fs.rmSync(path.join(dataDir, f), { force: true });
    if (movedAside) for (const f of replaced) fs.renameSync(path.join(movedAside, f), path.join(dataDir, f));
    if (movedAside) fs.rmdirSync(movedAside);
    throw err;
  }
  return { dataDir, movedAside, files: restoring };
}

function checkIntegrity(file: string, where: string): void {
  const result = sqliteIntegrity(file);
  if (result !== "ok") throw new ConfigError(`the store in ${where} fails SQLite's integrity check: ${result}`);
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
 * into it, as a server starting on it would do).
 */
function inUse(file: string): boolean {
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
    // Not a database SQLite can read: no server can be answering from it either.
    if (code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT")) return false;
    throw new ConfigError(`cannot tell whether a process has ${file} open (${(err as Error).message}); nothing was changed`);
  } finally {
    db?.close();
    if (probe === link) fs.rmSync(link, { force: true });
  }
}
