// `orchard backup` copies a SQLite store while the server writes to it, with
// the data dir's secrets, and a server starts on the copy.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { runOrchard } from "./support/cli.ts";
import { startTestServer } from "./support/server.ts";

test("a consistent copy while serving, the secrets beside it, and a server that starts on it", async () => {
  const server = await startTestServer();
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "orchard-backup-")), "copy");
  let restored: Awaited<ReturnType<typeof startTestServer>> | undefined;
  try {
    // The server keeps writing while the copy is taken.
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        await server.store.events.add({ type: "pushcert.removed", detail: { topic: `backup.test.${written}` } }, Date.now());
        written++;
        if (written % 50 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    while (written < 200) await new Promise((r) => setTimeout(r, 5));
    const run = await runOrchard(["backup", "--data-dir", server.dataDir, "--out", out]);
    writing = false;
    await writer;
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /backed up .*orchard\.db \(\d+ bytes\) and secret-key, device-ca\.pem, device-ca\.key to /);

    // One file per thing, each its owner's only: no -wal or -shm left beside the copy.
    // (The test server is given --api-key, so there is no api-key file to copy.)
    assert.deepEqual(fs.readdirSync(out).sort(), ["device-ca.key", "device-ca.pem", "orchard.db", "secret-key"]);
    for (const name of ["orchard.db", "secret-key", "device-ca.pem", "device-ca.key"]) {
      assert.equal(fs.statSync(path.join(out, name)).mode & 0o777, 0o600, name);
    }
    assert.equal(
      fs.readFileSync(path.join(out, "device-ca.key"), "utf8"),
      fs.readFileSync(path.join(server.dataDir, "device-ca.key"), "utf8"),
    );
    const copy = new Database(path.join(out, "orchard.db"), { readonly: true });
    const copied = (copy.prepare("SELECT COUNT(*) AS n FROM events WHERE type = 'pushcert.removed'").get() as { n: number }).n;
    assert.equal(copy.pragma("integrity_check", { simple: true }), "ok");
    copy.close();
    assert.ok(copied >= 200 && copied <= written, `${copied} of ${written} events in the copy`);

    restored = await startTestServer(["--data-dir", out]);
    const events = await restored.api("GET", "/v1/events?type=pushcert.removed&limit=1000");
    assert.equal(events.status, 200);
    assert.equal(events.json.events.length, Math.min(copied, 1000));
    assert.equal(restored.deviceCa.fingerprint, server.deviceCa.fingerprint);
  } finally {
    await restored?.stop();
    await server.stop();
  }
});

test("refuses a non-empty --out, a missing store, and PostgreSQL (pg_dump is its tool)", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-backup-"));
  fs.writeFileSync(path.join(dir, "something"), "");
  let run = await runOrchard(["backup", "--data-dir", dir, "--out", dir]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /is not empty/);
  run = await runOrchard(["backup", "--data-dir", dir, "--out", path.join(dir, "copy")]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /no SQLite store at/);
  run = await runOrchard(["backup", "--storage", "postgres://root@127.0.0.1/orchard", "--out", path.join(dir, "copy")]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /for PostgreSQL run pg_dump/);
});

test("orchard restore puts a backup back over a crashed store: its log files moved aside, the copy checked", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-restore-"));
  try {
    const live = path.join(root, "live");
    fs.mkdirSync(live);
    const db = new Database(path.join(live, "orchard.db"));
    db.pragma("journal_mode = WAL");
    db.pragma("wal_autocheckpoint = 0");
    db.exec("CREATE TABLE t (n INTEGER)");
    const insert = db.prepare("INSERT INTO t (n) VALUES (?)");
    for (let i = 0; i < 100; i++) insert.run(i);
    fs.writeFileSync(path.join(live, "secret-key"), "s".repeat(32));
    const backup = path.join(root, "backup");
    const made = await runOrchard(["backup", "--data-dir", live, "--out", backup]);
    assert.equal(made.code, 0, made.stderr);
    // More writes, in the log only; then the machine "crashes": the three files as they are on disk.
    db.exec("CREATE TABLE later (x)");
    for (let i = 100; i < 5000; i++) insert.run(i);
    const crashed = path.join(root, "crashed");
    fs.mkdirSync(crashed);
    for (const f of ["orchard.db", "orchard.db-wal", "orchard.db-shm", "secret-key"])
      fs.copyFileSync(path.join(live, f), path.join(crashed, f));
    db.close();
    assert.ok(fs.statSync(path.join(crashed, "orchard.db-wal")).size > 0, "a log left behind");

    const run = await runOrchard(["restore", "--from", backup, "--data-dir", crashed]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^restored orchard\.db, secret-key into .*; what was there is in .*before-restore-/);
    const aside = fs.readdirSync(crashed).find((f) => f.startsWith("before-restore-"))!;
    assert.deepEqual(fs.readdirSync(path.join(crashed, aside)).sort(), ["orchard.db", "orchard.db-shm", "orchard.db-wal", "secret-key"]);
    assert.deepEqual(
      fs
        .readdirSync(crashed)
        .filter((f) => !f.startsWith("before-restore-"))
        .sort(),
      ["orchard.db", "secret-key"],
    );
    assert.equal(fs.statSync(path.join(crashed, "orchard.db")).mode & 0o777, 0o600);
    const restored = new Database(path.join(crashed, "orchard.db"));
    try {
      assert.equal(restored.pragma("integrity_check", { simple: true }), "ok");
      assert.equal(
        (restored.prepare("SELECT COUNT(*) AS n FROM t").get() as { n: number }).n,
        100,
        "the backup's moment, not the crashed log's",
      );
    } finally {
      restored.close();
    }

    const refused = await runOrchard(["restore", "--from", path.join(root, "nothing"), "--data-dir", crashed]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /no orchard\.db in/);
    assert.equal((await runOrchard(["restore", "--data-dir", crashed])).code, 2);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

/**
 * The data dir's files, each with its inode: what a refused restore
 * must leave as it was. Never their bytes: opening and closing the store's
 * file in this process would drop the locks the server's SQLite holds on it
 * (POSIX locks are the process's), and no restore could see the server.
 */
function snapshot(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .sort()
    .map((f) => {
      const s = fs.statSync(path.join(dir, f));
      return `${f} ${s.ino}`;
    });
}

test("orchard restore refuses while a process has the store open, a server idle or a bare connection, and restores once it is closed", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-restore-live-"));
  const dataDir = path.join(root, "data");
  const server = await startTestServer(["--data-dir", dataDir]);
  let serving = true;
  try {
    await server.store.events.add({ type: "pushcert.removed", detail: { topic: "before.backup" } }, Date.now());
    const backup = path.join(root, "backup");
    assert.equal((await runOrchard(["backup", "--data-dir", dataDir, "--out", backup])).code, 0);
    await server.store.events.add({ type: "pushcert.removed", detail: { topic: "after.backup" } }, Date.now());
    const before = snapshot(dataDir);

    // The server is idle: no request, no transaction, its connection open.
    let run = await runOrchard(["restore", "--from", backup, "--data-dir", dataDir]);
    assert.equal(run.code, 2, run.stdout);
    assert.match(
      run.stderr,
      /^orchard: \S+orchard\.db is open in another process \(a running orchard serve\?\): stop the server, then restore; nothing was changed\n$/,
    );
    assert.deepEqual(snapshot(dataDir), before, "nothing moved");
    const events = await server.api("GET", "/v1/events?type=pushcert.removed");
    assert.deepEqual(events.json.events.map((e: { detail: { topic: string } }) => e.detail.topic).sort(), [
      "after.backup",
      "before.backup",
    ]);

    await server.close();
    serving = false;
    // The least a process can do: open the store in WAL mode, read it once, and sit there.
    const idle = new Database(path.join(dataDir, "orchard.db"));
    idle.pragma("journal_mode = WAL");
    try {
      run = await runOrchard(["restore", "--from", backup, "--data-dir", dataDir]);
      assert.equal(run.code, 2, run.stdout);
      assert.match(run.stderr, /is open in another process/);
      assert.equal(fs.readdirSync(dataDir).filter((f) => f.startsWith("before-restore-")).length, 0);
    } finally {
      idle.close();
    }

    run = await runOrchard(["restore", "--from", backup, "--data-dir", dataDir]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^restored orchard\.db, secret-key, device-ca\.pem, device-ca\.key into /);
    assert.deepEqual(
      fs
        .readdirSync(dataDir)
        .filter((f) => !f.startsWith("before-restore-"))
        .sort(),
      ["device-ca.key", "device-ca.pem", "orchard.db", "secret-key"],
      "no probe left behind",
    );
    const restored = new Database(path.join(dataDir, "orchard.db"), { readonly: true });
    try {
      const topics = restored.prepare("SELECT detail FROM events WHERE type = 'pushcert.removed'").all() as Array<{ detail: string }>;
      assert.deepEqual(
        topics.map((t) => JSON.parse(t.detail).topic),
        ["before.backup"],
      );
    } finally {
      restored.close();
    }
  } finally {
    if (serving) await server.close();
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("orchard restore refuses a backup without the secrets its store needs, naming them; kept or given secrets that open it do", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-restore-secrets-"));
  const home = path.join(root, "home");
  const other = path.join(root, "other");
  const a = await startTestServer(["--data-dir", home]);
  await a.close();
  const b = await startTestServer(["--data-dir", other]);
  await b.close();
  let restored: Awaited<ReturnType<typeof startTestServer>> | undefined;
  try {
    // A backup directory that holds only orchard.db.
    const backup = path.join(root, "backup");
    assert.equal((await runOrchard(["backup", "--data-dir", home, "--out", backup])).code, 0);
    for (const f of ["secret-key", "device-ca.pem", "device-ca.key"]) fs.rmSync(path.join(backup, f));

    // Into a data dir with secrets of its own, which would stay: refused, nothing changed.
    const before = snapshot(other);
    let run = await runOrchard(["restore", "--from", backup, "--data-dir", other]);
    assert.equal(run.code, 2, run.stdout);
    assert.equal(run.stderr.split("\n").length, 2, "one line");
    assert.match(run.stderr, /^orchard: not restored, nothing was changed: /);
    assert.match(
      run.stderr,
      /the keys sealed in \S+'s store do not open with \S+other\/secret-key \(kept: the backup has none\): put the secret-key backed up with it into /,
    );
    assert.match(
      run.stderr,
      /the data dir's device CA \(kept: the backup has none\) is not the device CA \S+'s store was enrolled under .*: put the device-ca\.pem and device-ca\.key backed up with it into /,
    );
    assert.deepEqual(snapshot(other), before);

    // Into an empty data dir: nothing to open the store with.
    const empty = path.join(root, "empty");
    run = await runOrchard(["restore", "--from", backup, "--data-dir", empty]);
    assert.equal(run.code, 2, run.stdout);
    assert.match(
      run.stderr,
      /has no secret-key \(and the data dir has none to keep\), and its store's keys are sealed with one: .*or set ORCHARD_SECRET_KEY to the --secret-key its server is given/,
    );
    assert.match(
      run.stderr,
      /has no device-ca\.pem and device-ca\.key \(and the data dir has none to keep\), .*every device must enroll again/,
    );
    assert.equal(fs.existsSync(empty), false);

    // A server given its secrets by flags keeps none in its data dir: the same secrets from the environment open the store.
    const secretKey = fs.readFileSync(path.join(home, "secret-key"), "utf8").trim();
    const given = {
      ORCHARD_SECRET_KEY: secretKey,
      ORCHARD_DEVICE_CA_CERT: path.join(home, "device-ca.pem"),
      ORCHARD_DEVICE_CA_KEY: path.join(home, "device-ca.key"),
    };
    run = await runOrchard(["restore", "--from", backup, "--data-dir", empty], {
      env: { ...given, ORCHARD_SECRET_KEY: "another-secret-key-0123456789" },
    });
    assert.equal(run.code, 2, run.stdout);
    assert.match(run.stderr, /do not open with ORCHARD_SECRET_KEY/);
    assert.doesNotMatch(run.stderr, /device CA/);
    run = await runOrchard(["restore", "--from", backup, "--data-dir", empty], { env: given });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stdout,
      `restored orchard.db into ${empty}; the store opens with ORCHARD_SECRET_KEY and ORCHARD_DEVICE_CA_CERT/ORCHARD_DEVICE_CA_KEY\n`,
    );
    restored = await startTestServer([
      "--data-dir",
      empty,
      "--secret-key",
      secretKey,
      "--device-ca-cert",
      given.ORCHARD_DEVICE_CA_CERT,
      "--device-ca-key",
      given.ORCHARD_DEVICE_CA_KEY,
    ]);
    assert.equal(restored.deviceCa.fingerprint, a.deviceCa.fingerprint);
    await restored.close();

    // Into the data dir it came from, whose secrets are its own: restored, and said what stayed.
    run = await runOrchard(["restore", "--from", backup, "--data-dir", home]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      /^restored orchard\.db into \S+; kept its own secret-key, device-ca\.pem, device-ca\.key \(not in the backup\); what was there is in /,
    );
  } finally {
    await a.stop();
    await b.stop();
    await restored?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("orchard backup --help and orchard restore -h print their usage and exit 0, as the other commands do", async () => {
  for (const [command, flag] of [
    ["backup", "--help"],
    ["backup", "-h"],
    ["restore", "--help"],
    ["restore", "-h"],
  ] as const) {
    const run = await runOrchard([command, flag]);
    assert.equal(run.code, 0, `${command} ${flag}: ${run.stderr}`);
    assert.equal(run.stderr, "");
    assert.match(run.stdout, new RegExp(`^usage: orchard ${command} --`));
    assert.match(run.stdout, /docs\/operations\.md\n$/);
  }
});
