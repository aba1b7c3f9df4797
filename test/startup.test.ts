// `orchard serve` failing to start says what is wrong in one line (exit 1 or,
// for a bad flag, 2), never with a stack trace.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { ConfigError, newApiKey, parseServeArgs } from "../src/config.ts";
import { runOrchard } from "./support/cli.ts";
import pg from "pg";
import { createTestDatabase, POSTGRES_ADMIN_URL, postgresReachable } from "./support/postgres.ts";
import { startTestServer } from "./support/server.ts";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "orchard-startup-"));

async function refusesToStart(args: string[], expected: RegExp, code = 1): Promise<void> {
  const dataDir = args.includes("--data-dir") ? [] : ["--data-dir", tmp()];
  // A server that starts after all is killed, and fails the test rather than holding it.
  const run = await runOrchard(["serve", "--listen", "127.0.0.1:0", ...dataDir, ...args], {
    env: { ORCHARD_LOG_LEVEL: "error" },
    timeoutMs: 20_000,
  });
  assert.equal(run.code, code, run.stderr);
  const lines = run.stderr.split("\n").filter((l) => l.startsWith("orchard: ") || /^\s+at /.test(l) || /Error:/.test(l));
  assert.equal(lines.length, 1, `one line, no stack trace:\n${run.stderr}`);
  assert.match(lines[0]!, expected);
}

function listening(): Promise<net.Server> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

test("a port in use", async () => {
  const holder = await listening();
  const { port } = holder.address() as net.AddressInfo;
  try {
    await refusesToStart(["--listen", `127.0.0.1:${port}`], /cannot listen on 127\.0\.0\.1:\d+: the address is in use/);
  } finally {
    holder.close();
  }
});

test("the API key generated at first start is printed to a terminal only: a service's stderr gets where it is kept", async () => {
  const holder = await listening();
  const { port } = holder.address() as net.AddressInfo;
  const dataDir = tmp();
  try {
    // The key is made before the listener fails; stderr here is a pipe, as under a service manager.
    const run = await runOrchard(["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir], { timeoutMs: 20_000 });
    assert.equal(run.code, 1, run.stderr);
    const key = fs.readFileSync(path.join(dataDir, "api-key"), "utf8").trim();
    assert.ok(key.length >= 24);
    assert.ok(!(run.stdout + run.stderr).includes(key), "the key is in no output");
    assert.match(run.stderr, /generated an API key: read it from .*api-key \(not printed: this is no terminal\)/);
  } finally {
    holder.close();
  }
});

test("a --metrics-listen port in use stops the start before the main listener is up, naming that flag", async () => {
  const holder = await listening();
  const { port } = holder.address() as net.AddressInfo;
  try {
    const run = await runOrchard(["serve", "--listen", "127.0.0.1:0", "--data-dir", tmp(), "--metrics-listen", `127.0.0.1:${port}`], {
      env: { ORCHARD_LOG_LEVEL: "info" },
      timeoutMs: 20_000,
    });
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(`^orchard: cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use .*--metrics-listen$`, "m"),
    );
    assert.doesNotMatch(run.stdout + run.stderr, /orchard listening|Server listening/);
  } finally {
    holder.close();
  }
});

test("--metrics-listen: a host name that does not resolve names that flag; --listen's own address is refused", async () => {
  await refusesToStart(
    ["--metrics-listen", "no-such-host.invalid:9100"],
    /^orchard: cannot listen on no-such-host\.invalid:9100: the host name does not resolve \((ENOTFOUND|EAI_AGAIN)\); give --metrics-listen/,
  );
  assert.throws(
    () => parseServeArgs(["--listen", "127.0.0.1:9000", "--metrics-listen", "127.0.0.1:9000"], {}),
    /--metrics-listen 127\.0\.0\.1:9000 is --listen's address/,
  );
});

test("an unknown --log-level is a usage error", async () => {
  await refusesToStart(["--log-level", "loud"], /--log-level must be one of .*debug, trace/, 2);
});

test("an unknown ORCHARD_LOG_LEVEL names the variable, not the flag; the flag given names the flag", () => {
  assert.throws(
    () => parseServeArgs([], { ORCHARD_LOG_LEVEL: "bogus" }),
    (e: unknown) =>
      e instanceof ConfigError && e.message === "ORCHARD_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent",
  );
  assert.throws(() => parseServeArgs(["--log-level", "loud"], { ORCHARD_LOG_LEVEL: "info" }), { message: /^--log-level must be one of/ });
  // The flag wins over the variable, so a bad variable under a good flag is never read.
  assert.equal(parseServeArgs(["--log-level", "warn"], { ORCHARD_LOG_LEVEL: "bogus" }).logLevel, "warn");
});

test("an unreadable --ca names the flag and the file, and nothing is written first", async () => {
  const missing = path.join(tmp(), "no-such-ca.pem");
  const dataDir = path.join(tmp(), "data");
  await refusesToStart(
    ["--ca", missing, "--data-dir", dataDir],
    new RegExp(`cannot read --ca ${missing.replaceAll("/", "\\/")}: no such file`),
    2,
  );
  // No API key printed and kept, no device CA made, for a start that never happened.
  assert.equal(fs.existsSync(dataDir), false);
});

test("a --ca that is not a PEM certificate, or a directory, and a TLS pair that does not load: one line each", async () => {
  const dir = tmp();
  const garbage = path.join(dir, "ca.der");
  fs.writeFileSync(garbage, Buffer.from([0x30, 0x82, 0x01, 0x00]));
  await refusesToStart(
    ["--ca", garbage],
    /--ca .*ca\.der holds no PEM certificate \(a DER \.cer converts with: openssl x509 -inform der/,
    2,
  );
  await refusesToStart(["--ca", dir], /cannot read --ca .*: is a directory/, 2);
  const pem = path.join(dir, "bad.pem");
  fs.writeFileSync(pem, "not a certificate\n");
  await refusesToStart(["--tls-cert", pem, "--tls-key", pem], /--tls-cert .* and --tls-key .* do not make a TLS identity/, 2);
});

test("a data dir that cannot be made", async () => {
  const dir = tmp();
  fs.writeFileSync(path.join(dir, "file"), "");
  await refusesToStart(
    ["--data-dir", path.join(dir, "file", "data")],
    /the data dir .* is not usable .*: give a writable directory with --data-dir/,
  );
  // The data dir is a file; a place no directory can be made (Node's recursive mkdir looped there for ever).
  await refusesToStart(["--data-dir", path.join(dir, "file")], /the data dir .*file is not usable \(a file is there, not a directory\)/);
  await refusesToStart(
    ["--data-dir", "/proc/orchard-data"],
    /the data dir \/proc\/orchard-data is not usable \(.*no such file or directory\)/,
  );
});

test("a --profile-signer that is missing or holds no key: one line naming the flag, before any API key", async () => {
  const dir = tmp();
  const dataDir = path.join(dir, "data");
  await refusesToStart(
    ["--profile-signer", path.join(dir, "none.pem"), "--data-dir", dataDir],
    /^orchard: --profile-signer: cannot read the profile signing file .*none\.pem/,
  );
  const certOnly = path.join(dir, "cert.pem");
  fs.writeFileSync(certOnly, "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n");
  await refusesToStart(
    ["--profile-signer", certOnly, "--data-dir", dataDir],
    /^orchard: --profile-signer: .*cert\.pem holds no private key/,
  );
  assert.equal(fs.existsSync(dataDir), false, "no API key made for a start that never happened");
});

test("a short API key in the data dir is refused: its length is what stops guessing", async () => {
  const dataDir = tmp();
  fs.writeFileSync(path.join(dataDir, "api-key"), "short\n");
  await refusesToStart(["--data-dir", dataDir], /the API key in .*api-key must be at least 24 characters/, 2);
});

test("a database migrated by a newer Orchard is refused", async () => {
  const dataDir = tmp();
  const db = new Database(path.join(dataDir, "orchard.db"));
  db.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
  db.prepare("INSERT INTO schema_migrations VALUES (?, ?, ?)").run(9999, "from-the-future", Date.now());
  db.close();
  await refusesToStart(["--data-dir", dataDir], /schema is version 9999, newer than this Orchard knows \(\d+\): run the newer Orchard/);
});

test("PostgreSQL: a missing database says how to create it; an unreachable server and a refused login say so", async (t) => {
  if (!(await postgresReachable())) return t.skip("PostgreSQL not reachable");
  const admin = new URL(POSTGRES_ADMIN_URL);
  const missing = new URL(admin);
  missing.pathname = "/orchard_no_such_database";
  await refusesToStart(
    ["--storage", missing.toString()],
    /database "orchard_no_such_database" does not exist on .*: create it \(createdb .* orchard_no_such_database\)/,
  );

  const closed = await listening();
  const { port } = closed.address() as net.AddressInfo;
  await new Promise((r) => closed.close(r));
  await refusesToStart(
    ["--storage", `postgres://root@127.0.0.1:${port}/orchard`],
    new RegExp(`cannot reach PostgreSQL at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`),
  );

  const stranger = new URL(admin);
  stranger.username = "orchard_no_such_role";
  await refusesToStart(["--storage", stranger.toString()], /refused the login of orchard_no_such_role/);

  // This machine's PostgreSQL takes no SSL: sslmode=require was a stack trace (walkthrough).
  const ssl = new URL(admin);
  ssl.searchParams.set("sslmode", "require");
  if (!(await postgresTakesSsl())) await refusesToStart(["--storage", ssl.toString()], /PostgreSQL at .* does not take SSL connections/);
});

async function postgresTakesSsl(): Promise<boolean> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, ssl: { rejectUnauthorized: false } });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

test("a device CA that is not RSA, or a key that is not its certificate's: one line naming the flags", async () => {
  const dir = tmp();
  const file = (name: string, text: string) => (fs.writeFileSync(path.join(dir, name), text), path.join(dir, name));
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  // A CA certificate of the EC key, made with the openssl command the tests already need.
  const ecKey = file("ec.key", ec.privateKey.export({ type: "pkcs8", format: "pem" }) as string);
  const ecCert = path.join(dir, "ec.pem");
  execFileSync("openssl", [
    "req",
    "-x509",
    "-new",
    "-key",
    ecKey,
    "-subj",
    "/CN=EC CA",
    "-days",
    "30",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-out",
    ecCert,
  ]);
  await refusesToStart(
    ["--device-ca-cert", ecCert, "--device-ca-key", ecKey],
    /--device-ca-cert .*ec\.pem and --device-ca-key .*ec\.key: the device CA key must be RSA/,
    2,
  );
  const rsaKey = file("rsa.key", rsa.privateKey.export({ type: "pkcs8", format: "pem" }) as string);
  await refusesToStart(
    ["--device-ca-cert", ecCert, "--device-ca-key", rsaKey],
    /--device-ca-key .*rsa\.key: the device CA key does not match its certificate/,
    2,
  );
});

test("a generated API key never starts with - or _ (a CLI flag's value could not), and is 32 characters", () => {
  for (let i = 0; i < 2_000; i++) {
    const key = newApiKey();
    assert.match(key, /^[A-Za-z0-9][A-Za-z0-9_-]{31}$/);
  }
});

test("a --dm-url or --webhook-url that is not an http or https URL is a usage error, its password and query not said back", async () => {
  for (const flag of ["--dm-url", "--webhook-url"]) {
    for (const bad of ["kmfddm:9002", "ftp://user:secret@x/"])
      await refusesToStart([flag, bad], new RegExp(`^orchard: ${flag} (?!.*secret).*: not an http or https URL`), 2);
    // Not URLs at all (no scheme; a port out of range): a query's token was said back (walkthrough).
    // A / in the password makes the value no URL: it must not be said back either (review).
    for (const bad of [
      "127.0.0.1:9002/",
      "hooks.example.com/mdm?token=secret",
      "https://hooks.example.com:99999/mdm?token=secret",
      "https://hook:Zx/9secret@hooks.example.com/mdm",
    ])
      await refusesToStart([flag, bad], new RegExp(`^orchard: ${flag} (?!.*secret).*: not a valid URL`), 2);
  }
});

test("a webhook flag without --webhook-url is a usage error, not taken in silence", async () => {
  await refusesToStart(["--webhook-topics", "mdm.*"], /^orchard: --webhook-topics goes with --webhook-url/, 2);
  await refusesToStart(["--webhook-max-backlog", "10"], /^orchard: --webhook-max-backlog goes with --webhook-url/, 2);
});

test("a --storage of another kind, or not a URL, is a usage error before anything is made in the data dir", async () => {
  const dir = tmp();
  await refusesToStart(["--data-dir", dir, "--storage", "mysql://x"], /^orchard: unsupported --storage mysql: use sqlite:/, 2);
  await refusesToStart(
    ["--data-dir", dir, "--storage", "postgres://root:secret@127.0.0.1:notaport/x"],
    /^orchard: --storage postgres:\/\/\.\.\.@127\.0\.0\.1:notaport\/x: not a valid postgres:\/\/ URL/,
    2,
  );
  await refusesToStart(
    ["--data-dir", dir, "--storage", "postgres://orchard:ab/cd+secret@db.example.org:5432/orchard"],
    /^orchard: --storage postgres:\/\/\.\.\.@db\.example\.org:5432\/orchard: not a valid postgres:\/\/ URL .*percent-encode/,
    2,
  );
  assert.deepEqual(fs.readdirSync(dir), [], "no API key made for a server that cannot start");
});

// A refusal while starting, with a PostgreSQL pool open: the process said why and stayed alive, not listening
// (fourth walkthrough). It must exit, as it does on SQLite.
test("PostgreSQL: a server refused at start (another secret key) exits", async (t) => {
  if (!(await postgresReachable())) return t.skip("PostgreSQL not reachable");
  const db = await createTestDatabase();
  try {
    const first = await startTestServer(["--storage", db.url, "--secret-key", "the first secret key, long enough"]);
    await first.stop();
    const run = await runOrchard(
      ["serve", "--listen", "127.0.0.1:0", "--data-dir", tmp(), "--storage", db.url, "--secret-key", "another secret key, long enough"],
      { env: { ORCHARD_LOG_LEVEL: "error" }, timeoutMs: 20_000 },
    );
    assert.equal(run.code, 2, `exits: ${run.stderr}`);
    assert.match(run.stderr, /^orchard: the credential CA kept in the store does not open with this server's secret key/m);
  } finally {
    await db.drop();
  }
});
