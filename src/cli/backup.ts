import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, envName } from "../config.ts";
import { DEVICE_CA_CERT_FILE, DEVICE_CA_KEY_FILE } from "../enroll/device-ca.ts";
import { backupSqlite } from "../store/sqlite-backup.ts";

// `orchard backup`: a consistent copy of a SQLite store taken while the server
// runs, with the data dir's secrets without which the copy is of little use
// (the secret key seals push certificate keys; the device CA signs every
// device identity). PostgreSQL is backed up with its own tools (docs/operations.md).

export const BACKUP_USAGE = "orchard backup --out DIR [--data-dir DIR] [--storage sqlite:FILE]";

export const BACKUP_HELP = `usage: ${BACKUP_USAGE}
  A consistent copy of the SQLite store (the data dir's, env ORCHARD_DATA_DIR,
  default ./data, or --storage's), taken while the server runs, with the data
  dir's secret-key, api-key, device-ca.pem and device-ca.key, into DIR (new or
  empty), every file mode 0600. orchard restore puts it back. docs/operations.md
`;

/** The data dir's files a restore needs besides the database. */
export const BACKUP_SECRET_FILES = ["secret-key", "api-key", DEVICE_CA_CERT_FILE, DEVICE_CA_KEY_FILE];

export interface BackupResult {
  dir: string;
  database: string;
  files: string[];
  bytes: number;
}

export async function backup(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<BackupResult> {
  let values: { out?: string; "data-dir"?: string; storage?: string };
  try {
    values = parseArgs({
      args,
      options: { out: { type: "string" }, "data-dir": { type: "string" }, storage: { type: "string" } },
      strict: true,
    }).values;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\nusage: ${BACKUP_USAGE}`);
  }
  if (!values.out) throw new ConfigError(`--out is required\nusage: ${BACKUP_USAGE}`);
  const dataDir = values["data-dir"] ?? (env[envName("data-dir")] || "./data");
  const storage = values.storage ?? (env[envName("storage")] || undefined);
  if (storage && !storage.startsWith("sqlite:")) {
    throw new ConfigError(
      "orchard backup copies a SQLite store; for PostgreSQL run pg_dump (pg_dump -Fc -f orchard.dump URL) and keep the data dir's " +
        `${BACKUP_SECRET_FILES.join(", ")} with it (docs/operations.md)`,
    );
  }
  const out = values.out;
  if (fs.existsSync(out) && fs.readdirSync(out).length > 0) throw new ConfigError(`${out} is not empty: give a new directory`);
  const source = storage ? storage.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "") : path.join(dataDir, "orchard.db");
  if (!fs.existsSync(source)) throw new ConfigError(`no SQLite store at ${source}: give --data-dir or --storage sqlite:FILE`);
  fs.mkdirSync(out, { recursive: true, mode: 0o700 });

  const database = path.join(out, "orchard.db");
  await backupSqlite(source, database);
  fs.chmodSync(database, 0o600);

  const files: string[] = [];
  for (const name of BACKUP_SECRET_FILES) {
    const from = path.join(dataDir, name);
    if (!fs.existsSync(from)) continue;
    fs.copyFileSync(from, path.join(out, name), fs.constants.COPYFILE_EXCL);
    fs.chmodSync(path.join(out, name), 0o600);
    files.push(name);
  }
  return { dir: out, database, files, bytes: fs.statSync(database).size };
}
