import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, envName } from "../config.ts";
import { CREDENTIAL_CA_SETTING, loadCredentialCa } from "../enroll/credential-ca.ts";
import { DEVICE_CA_CERT_FILE, DEVICE_CA_KEY_FILE, DeviceCa } from "../enroll/device-ca.ts";
import { SecretBox, SecretKeyMismatch } from "../push/secret-box.ts";
import { sqliteInUse, sqliteIntegrity, sqliteSettings } from "../store/sqlite-backup.ts";
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
// and every change it makes until its restart is lost. Nor is a backup put in
// place whose store does not open with the secrets the server will have
// (a backup without secret-key beside a data dir with another): the server
// would refuse to start, or its devices would have to enroll again.

export const RESTORE_USAGE = "orchard restore --from DIR [--data-dir DIR]   (the server stopped; the data dir's SQLite store)";

export const RESTORE_HELP = `usage: ${RESTORE_USAGE}
  Puts a copy orchard backup wrote back into the data dir (env ORCHARD_DATA_DIR,
  default ./data). What it replaces, orchard.db-wal and orchard.db-shm included,
  is moved aside into DIR/before-restore-<time>/, never deleted. Refused while a
  process (a running orchard serve) has the store open, and when the copy's
  store does not open with the secrets the server will have: the backup's
  secret-key and device CA, or the data dir's where the backup has none, or
  ORCHARD_SECRET_KEY, ORCHARD_DEVICE_CA_CERT and ORCHARD_DEVICE_CA_KEY when set
  (as for a server given --secret-key and --device-ca-cert/--device-ca-key).
  docs/operations.md
`;

const STORE_FILES = ["orchard.db", "orchard.db-wal", "orchard.db-shm"];

export interface RestoreResult {
  dataDir: string;
  /** Where the files the restore replaced went (undefined: there were none). */
  movedAside?: string;
  files: string[];
  /** The data dir's secret files left in place because the backup has none. */
  kept: string[];
  /** The secrets from the environment the store was checked against. */
  checkedWith: string[];
}

/** What `orchard restore` prints when it is done. */
export function describeRestore(done: RestoreResult): string {
  return (
    `restored ${done.files.join(", ")} into ${done.dataDir}` +
    (done.kept.length ? `; kept its own ${done.kept.join(", ")} (not in the backup)` : "") +
    (done.checkedWith.length ? `; the store opens with ${done.checkedWith.join(" and ")}` : "") +
    (done.movedAside ? `; what was there is in ${done.movedAside}` : "") +
    "\n"
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
  const kept = BACKUP_SECRET_FILES.filter((f) => !restoring.includes(f) && fs.existsSync(path.join(dataDir, f)));
  const checkedWith = await checkSecrets(from, dataDir, env);

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
  return { dataDir, movedAside, files: restoring, kept, checkedWith };
}

function checkIntegrity(file: string, where: string): void {
  const result = sqliteIntegrity(file);
  if (result !== "ok") throw new ConfigError(`the store in ${where} fails SQLite's integrity check: ${result}`);
}

/** Whether another process has the store open (store/sqlite-backup.ts); a ConfigError when that cannot be told. */
function inUse(file: string): boolean {
  try {
    return sqliteInUse(file);
  } catch (err) {
    throw new ConfigError(`cannot tell whether a process has ${file} open (${(err as Error).message}); nothing was changed`);
  }
}

/** The values in the backup's store that say which secrets it goes with. */
function storedSecrets(file: string): { credentialCa?: Buffer; deviceCaFingerprint?: string } {
  const settings = sqliteSettings(file, [CREDENTIAL_CA_SETTING, "device-ca-fingerprint"]);
  return {
    credentialCa: settings.get(CREDENTIAL_CA_SETTING),
    deviceCaFingerprint: settings.get("device-ca-fingerprint")?.toString("utf8"),
  };
}

/**
 * The secrets the server will start with after the restore open the backup's
 * store: the secret key unseals the credential CA (every store a server has
 * started on holds one), and the device CA is the one the store recorded.
 * Each is taken where the server takes it: ORCHARD_SECRET_KEY or
 * ORCHARD_DEVICE_CA_CERT/KEY when set, else the backup's file, else the data
 * dir's, kept. Refuses (nothing changed) naming what is missing or does not
 * fit; answers the environment variables it checked.
 */
async function checkSecrets(from: string, dataDir: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const stored = storedSecrets(path.join(from, "orchard.db"));
  const problems: string[] = [];
  const checkedWith: string[] = [];
  const lacks = `${from} has no {files} (and the data dir has none to keep)`;
  const getFrom = `put the {files} backed up with it into ${from}`;

  if (stored.credentialCa) {
    const keyVar = envName("secret-key");
    const inBackup = path.join(from, "secret-key");
    const inDataDir = path.join(dataDir, "secret-key");
    const read = (f: string) => fs.readFileSync(f, "utf8").trim();
    const key = env[keyVar]
      ? { value: env[keyVar], name: keyVar }
      : fs.existsSync(inBackup)
        ? { value: read(inBackup), name: inBackup }
        : fs.existsSync(inDataDir)
          ? { value: read(inDataDir), name: `${inDataDir} (kept: the backup has none)` }
          : undefined;
    const fix = `${getFrom.replace("{files}", "secret-key")}, or set ${keyVar} to the --secret-key its server is given`;
    if (!key) {
      problems.push(`${lacks.replace("{files}", "secret-key")}, and its store's keys are sealed with one: ${fix}`);
    } else {
      const sealed = stored.credentialCa;
      try {
        await loadCredentialCa({
          stored: async () => sealed,
          storeIfAbsent: async () => sealed,
          sealer: new SecretBox(key.value),
          log: { info() {} },
        });
        if (key.name === keyVar) checkedWith.push(keyVar);
      } catch (err) {
        problems.push(
          err instanceof SecretKeyMismatch
            ? `the keys sealed in ${from}'s store do not open with ${key.name}: ${fix}`
            : `${key.name}: ${(err as Error).message}`,
        );
      }
    }
  }

  if (stored.deviceCaFingerprint) {
    const recorded = stored.deviceCaFingerprint;
    const certVar = envName("device-ca-cert");
    const keyVar = envName("device-ca-key");
    const files = `${DEVICE_CA_CERT_FILE} and ${DEVICE_CA_KEY_FILE}`;
    const fix = `${getFrom.replace("{files}", files)}, or set ${certVar} and ${keyVar} to the files its server is given`;
    const pair = (dir: string) => [path.join(dir, DEVICE_CA_CERT_FILE), path.join(dir, DEVICE_CA_KEY_FILE)] as const;
    const present = (dir: string) => pair(dir).filter((f) => fs.existsSync(f));
    let ca: { cert: string; key: string; name: string } | undefined;
    if (env[certVar] || env[keyVar]) {
      if (!env[certVar] || !env[keyVar]) problems.push(`${certVar} and ${keyVar} go together`);
      else ca = { cert: env[certVar], key: env[keyVar], name: `${certVar} and ${keyVar}` };
    } else {
      const dir = present(from).length > 0 ? from : present(dataDir).length > 0 ? dataDir : undefined;
      if (dir === undefined) {
        problems.push(
          `${lacks.replace("{files}", files)}, and its store's devices hold identities its device CA issued: without it every device must enroll again; ${fix}`,
        );
      } else if (present(dir).length < 2) {
        const missing = pair(dir).find((f) => !fs.existsSync(f))!;
        problems.push(`${dir} has ${path.basename(present(dir)[0]!)} but no ${path.basename(missing)}: ${fix}`);
      } else {
        ca = {
          cert: pair(dir)[0],
          key: pair(dir)[1],
          name: dir === from ? `${from}'s device CA` : `the data dir's device CA (kept: the backup has none)`,
        };
      }
    }
    if (ca) {
      let fingerprint: string | undefined;
      try {
        fingerprint = DeviceCa.fromPem(fs.readFileSync(ca.cert), fs.readFileSync(ca.key)).fingerprint;
      } catch (err) {
        problems.push(`${ca.name}: ${(err as Error).message}`);
      }
      if (fingerprint !== undefined && fingerprint !== recorded) {
        problems.push(
          `${ca.name} is not the device CA ${from}'s store was enrolled under (SHA-256 ${recorded.slice(0, 16)}..., not ${fingerprint.slice(0, 16)}...): ${fix}`,
        );
      } else if (fingerprint !== undefined && ca.name.startsWith(certVar)) {
        checkedWith.push(`${certVar}/${keyVar}`);
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(`not restored, nothing was changed: ${problems.join("; ")}`);
  return checkedWith;
}
