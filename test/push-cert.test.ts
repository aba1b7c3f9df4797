// Push certificates: what PUT /v1/pushcert accepts (PEM, PKCS#12 from
// `openssl pkcs12 -export`, modern and legacy) and refuses, that keys are
// sealed in the store and never shown or logged, and the CLI commands
// `orchard pushcert` and `orchard push`.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { runWith } from "../src/cli/client-commands.ts";
import { cliContext, runOrchard } from "./support/cli.ts";
import { issueDeviceIdentity } from "../src/identity/testing/pki.ts";
import { issuePushCertificate } from "../src/identity/testing/push-cert.ts";
import { pushArgs, pushPki, startApnsStandIn, TEST_TOPIC, type ApnsStandIn } from "./support/apns.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const pki = await pushPki();
const PASSPHRASE = "p12-pass-phrase!";
let apns: ApnsStandIn;
let server: TestServer;
let fleet: TestFleet;
let tmp: string;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-pushcert-"));
  apns = await startApnsStandIn({ pushCa: pki.pushCa, serverCa: pki.serverCa, serverKey: pki.serverKey });
  server = await startTestServer(pushArgs(apns));
  fleet = await testFleet(server.url);
});
after(async () => {
  fleet.close();
  await server.stop();
  await apns.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const put = (body: Buffer | string, headers: Record<string, string> = {}) =>
  fetch(`${server.url}/v1/pushcert`, {
    method: "PUT",
    headers: { authorization: "Basic " + Buffer.from("x:test-api-key-0123456789abcdef").toString("base64"), ...headers },
    body: typeof body === "string" ? body : new Uint8Array(body),
  }).then(async (r) => ({ status: r.status, json: (await r.json()) as any }));

/** A .p12 from the openssl command line, as operators make them. */
function p12(extra: string[] = [], passphrase = PASSPHRASE): Buffer {
  const cert = path.join(tmp, "c.pem");
  const key = path.join(tmp, "k.pem");
  const out = path.join(tmp, `out-${Math.random().toString(36).slice(2)}.p12`);
  fs.writeFileSync(cert, pki.cert.certPem);
  fs.writeFileSync(key, pki.cert.keyPem);
  execFileSync("openssl", ["pkcs12", "-export", "-in", cert, "-inkey", key, "-out", out, "-passout", `pass:${passphrase}`, ...extra], {
    stdio: "pipe",
  });
  return fs.readFileSync(out);
}

const keyLines = (pem: string) => pem.split("\n").filter((l) => l && !l.startsWith("-----"));

describe("PUT /v1/pushcert", () => {
  test("PEM: certificate then key, key then certificate, with a chain, whatever the Content-Type", async () => {
    const expected = { topic: TEST_TOPIC, not_after: new Date(pki.cert.cert.validTo).toISOString() };
    assert.deepEqual((await put(pki.cert.certPem + pki.cert.keyPem)).json, expected);
    assert.deepEqual((await put(pki.cert.keyPem + pki.cert.certPem, { "content-type": "application/json" })).json, expected);
    const chained = await put(pki.cert.certPem + pki.pushCa.certPem + pki.cert.keyPem, { "content-type": "text/plain" });
    assert.equal(chained.status, 200);
    assert.deepEqual(chained.json, expected);
  });

  test("PKCS#12 from openssl pkcs12 -export, its passphrase in X-Passphrase; modern, legacy (RC2/3DES) and base64", async () => {
    const expected = { topic: TEST_TOPIC, not_after: new Date(pki.cert.cert.validTo).toISOString() };
    const modern = p12();
    assert.deepEqual((await put(modern, { "x-passphrase": PASSPHRASE })).json, expected);
    assert.deepEqual((await put(p12(["-legacy"]), { "x-passphrase": PASSPHRASE, "content-type": "application/x-pkcs12" })).json, expected);
    assert.deepEqual((await put(modern.toString("base64"), { "x-passphrase": PASSPHRASE })).json, expected);
    assert.deepEqual((await put(p12([], ""))).json, expected, "an empty passphrase needs no header");

    const wrong = await put(modern, { "x-passphrase": "nope" });
    assert.equal(wrong.status, 400);
    assert.match(wrong.json.error, /^PKCS#12: wrong passphrase/);
    const missing = await put(modern);
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error, "PKCS#12: the file needs a passphrase, and none was given (the X-Passphrase header)");
    const list = await server.api("GET", "/v1/pushcert");
    assert.equal(list.json.push_certs[0].fingerprint, pki.cert.fingerprint);
  });

  test("an encrypted PEM key opens with X-Passphrase and is refused without it", async () => {
    const encrypted = pki.cert.key.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: PASSPHRASE }) as string;
    const without = await put(pki.cert.certPem + encrypted);
    assert.equal(without.status, 400);
    assert.match(without.json.error, /^the private key is encrypted/);
    assert.deepEqual(await put(pki.cert.certPem + encrypted, { "x-passphrase": "nope" }), {
      status: 400,
      json: { error: "cannot decrypt the private key: wrong passphrase?", code: "invalid_push_certificate" },
    });
    assert.equal((await put(pki.cert.certPem + encrypted, { "x-passphrase": PASSPHRASE })).status, 200);
  });

  test("refused with a reason: a key that does not match, a topic outside com.apple.mgmt., no UID, expired, garbage", async () => {
    const mismatch = await put(pki.cert.certPem + pki.rotated.keyPem);
    assert.deepEqual(mismatch, {
      status: 400,
      json: { error: "the private key does not match the certificate", code: "invalid_push_certificate" },
    });

    const notMdm = await issuePushCertificate(pki.pushCa, {
      topic: "com.example.not-mdm",
      keyPair: { privateKey: pki.cert.key, publicKey: pki.cert.publicKey },
    });
    const wrongTopic = await put(notMdm.certPem + notMdm.keyPem);
    assert.equal(wrongTopic.status, 400);
    assert.match(wrongTopic.json.error, /^topic "com\.example\.not-mdm" does not start with com\.apple\.mgmt\./);

    const device = await issueDeviceIdentity(pki.pushCa, {
      commonName: "not a push cert",
      keyPair: { privateKey: pki.cert.key, publicKey: pki.cert.publicKey },
    });
    const noUid = await put(device.certPem + device.keyPem);
    assert.equal(noUid.status, 400);
    assert.match(noUid.json.error, /has no UID/);

    const old = await issuePushCertificate(pki.pushCa, {
      topic: TEST_TOPIC,
      keyPair: { privateKey: pki.cert.key, publicKey: pki.cert.publicKey },
      notBefore: new Date(Date.now() - 400 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const expired = await put(old.certPem + old.keyPem);
    assert.equal(expired.status, 400);
    assert.match(expired.json.error, /expired on/);

    assert.equal((await put(pki.cert.certPem)).status, 400);
    assert.match((await put(pki.cert.certPem)).json.error, /^no private key found/);
    assert.match((await put("hello")).json.error, /^expected a PEM certificate/);
    assert.match((await put(Buffer.from([0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x03, 0x30]))).json.error, /^(PKCS#12|expected)/);
    assert.equal((await put("")).status, 400);
    // Nothing refused replaced the stored certificate.
    assert.equal((await server.api("GET", "/v1/pushcert")).json.push_certs[0].fingerprint, pki.cert.fingerprint);
  });

  test("the key is sealed in the store, never shown by GET, never logged", async () => {
    assert.equal((await put(pki.pem(), { "x-passphrase": PASSPHRASE })).status, 200);
    const row = await server.store.db.get<{ key_sealed: Buffer; cert_pem: string }>(
      "SELECT key_sealed, cert_pem FROM push_certs WHERE topic = ?",
      [TEST_TOPIC],
    );
    const keyDer = pki.cert.key.export({ type: "pkcs8", format: "der" });
    assert.ok(!Buffer.from(row!.key_sealed).includes(keyDer.subarray(40, 72)), "no plain key bytes in the store");
    assert.ok(!Buffer.from(row!.key_sealed).toString("latin1").includes("PRIVATE KEY"));
    const list = await server.api("GET", "/v1/pushcert");
    for (const line of keyLines(pki.cert.keyPem)) assert.ok(!list.text.includes(line));
    const logs = server.logs.join("\n");
    for (const line of keyLines(pki.cert.keyPem)) assert.ok(!logs.includes(line), "key material in the log");
    assert.ok(!logs.includes(PASSPHRASE), "passphrase in the log");
  });

  test("a passphrase put in the query (not X-Passphrase) is refused, and the log line does not hold it", async () => {
    const from = server.logs.length;
    const res = await fetch(`${server.url}/v1/pushcert?passphrase=${encodeURIComponent(PASSPHRASE)}`, {
      method: "PUT",
      headers: { authorization: "Basic " + Buffer.from("x:test-api-key-0123456789abcdef").toString("base64") },
      body: new Uint8Array(p12()),
    });
    assert.equal(res.status, 400);
    const logged = server.logs.slice(from).join("\n");
    assert.match(logged, /"url":"\/v1\/pushcert\?passphrase=\[redacted\]"/, logged);
    assert.ok(!logged.includes(PASSPHRASE) && !logged.includes(encodeURIComponent(PASSPHRASE)), "passphrase in the log");
  });

  test("without --secret-key a secret key file is generated in the data dir, mode 0600", async () => {
    const plain = await startTestServer(["--apns-url", apns.url]);
    try {
      const file = path.join(plain.dataDir, "secret-key");
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.ok(fs.readFileSync(file, "utf8").trim().length >= 32);
      assert.equal((await plain.api("PUT", "/v1/pushcert", pki.pem())).status, 200);
    } finally {
      await plain.stop();
    }
  });

  test("DELETE /v1/pushcert/<topic> removes it", async () => {
    const other = await issuePushCertificate(pki.pushCa, {
      topic: "com.apple.mgmt.External.to-remove",
      keyPair: { privateKey: pki.cert.key, publicKey: pki.cert.publicKey },
    });
    assert.equal((await put(other.certPem + other.keyPem)).status, 200);
    assert.deepEqual(
      (await server.api("GET", "/v1/pushcert")).json.push_certs.map((c: any) => c.topic),
      ["com.apple.mgmt.External.orchard-sim", "com.apple.mgmt.External.to-remove"],
    );
    assert.equal((await server.api("DELETE", "/v1/pushcert/com.apple.mgmt.External.to-remove")).status, 200);
    assert.equal((await server.api("DELETE", "/v1/pushcert/com.apple.mgmt.External.to-remove")).status, 404);
    assert.deepEqual(
      (await server.api("GET", "/v1/pushcert")).json.push_certs.map((c: any) => c.topic),
      [TEST_TOPIC],
    );
  });
});

describe("--apns-ca", () => {
  /** `orchard serve` refused before it writes anything: exit 2 and one line, no stack trace. */
  async function refused(args: string[]): Promise<string> {
    const dataDir = path.join(fs.mkdtempSync(path.join(tmp, "serve-")), "data");
    const run = await runOrchard(["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, ...args], {
      env: { ORCHARD_LOG_LEVEL: "error" },
      timeoutMs: 20_000,
    });
    assert.equal(run.code, 2, run.stderr);
    assert.equal(run.stderr.split("\n").filter(Boolean).length, 1, run.stderr);
    assert.equal(fs.existsSync(dataDir), false, "nothing written");
    return run.stderr;
  }

  test("a file that holds no certificate is refused at start, naming the flag and the file, as --ca is", async () => {
    const garbage = path.join(tmp, "garbage.pem");
    fs.writeFileSync(garbage, "not a certificate\n");
    assert.equal(
      await refused(["--apns-ca", garbage]),
      `orchard: --apns-ca ${garbage} holds no PEM certificate (a DER .cer converts with: openssl x509 -inform der -in ${garbage} -out apns-ca.pem)\n`,
    );
    const damaged = path.join(tmp, "damaged.pem");
    fs.writeFileSync(damaged, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    // The second of a comma-separated list (ORCHARD_APNS_CA) is checked too.
    assert.equal(
      await refused(["--apns-ca", `${apns.caFile},${damaged}`]),
      `orchard: --apns-ca ${damaged} holds a PEM certificate that cannot be read\n`,
    );
    const missing = path.join(tmp, "no-such-ca.pem");
    assert.equal(await refused(["--apns-ca", missing]), `orchard: cannot read --apns-ca ${missing}: no such file\n`);
  });
});

describe("the CLI", () => {
  const context = (stdin = "") => cliContext(server.url, { cwd: tmp, stdin });

  test("orchard pushcert upload (PEM, and PKCS#12 with --passphrase-stdin) and show", async () => {
    const pemFile = path.join(tmp, "both.pem");
    fs.writeFileSync(pemFile, pki.pem());
    const up = context();
    assert.equal(await runWith(up, "pushcert", ["upload", pemFile]), 0, up.stderr);
    assert.match(up.stdout, /^stored the push certificate of com\.apple\.mgmt\.External\.orchard-sim, valid until \d{4}-/);

    const p12File = path.join(tmp, "push.p12");
    fs.writeFileSync(p12File, p12());
    const withPass = context(`${PASSPHRASE}\n`);
    assert.equal(await runWith(withPass, "pushcert", ["upload", p12File, "--passphrase-stdin", "--json"]), 0, withPass.stderr);
    assert.equal(JSON.parse(withPass.stdout).topic, TEST_TOPIC);
    const wrong = context("bad\n");
    assert.equal(await runWith(wrong, "pushcert", ["upload", p12File, "--passphrase-stdin"]), 1);
    assert.match(wrong.stderr, /^orchard: PKCS#12: wrong passphrase/);
    // Not at a terminal, no --passphrase-stdin: told how to give it (not "wrong", nor an HTTP header).
    const none = context();
    assert.equal(await runWith(none, "pushcert", ["upload", p12File]), 1);
    assert.equal(
      none.stderr,
      `orchard: ${p12File} needs its PKCS#12 passphrase: run this at a terminal to be asked for it, or give it on stdin's first line with --passphrase-stdin\n`,
    );

    const show = context();
    assert.equal(await runWith(show, "pushcert", ["show"]), 0);
    assert.match(
      show.stdout,
      /^TOPIC\s+NOT AFTER\s+DAYS LEFT\s+SHA-256\s+UPDATED\ncom\.apple\.mgmt\.External\.orchard-sim\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+36[45]\s/,
    );
    assert.ok(!show.stdout.includes("PRIVATE"));
    const bad = context();
    assert.equal(await runWith(bad, "pushcert", ["frobnicate"]), 2);
  });

  test("orchard pushcert upload with an encrypted PEM key: asked for at a terminal, --passphrase-stdin, and told so otherwise", async () => {
    const encrypted = pki.cert.key.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: PASSPHRASE }) as string;
    const encFile = path.join(tmp, "enc.pem");
    fs.writeFileSync(encFile, pki.cert.certPem + encrypted);
    const ways = "run this at a terminal to be asked for it, or give it on stdin's first line with --passphrase-stdin";
    // Not at a terminal, no --passphrase-stdin: the CLI's ways, not the API's header.
    const none = context();
    assert.equal(await runWith(none, "pushcert", ["upload", encFile]), 1);
    assert.equal(none.stderr, `orchard: ${encFile}: the private key is encrypted and needs its passphrase: ${ways}\n`);
    const piped = cliContext(server.url, { cwd: tmp, stdin: pki.cert.certPem + encrypted });
    assert.equal(await runWith(piped, "pushcert", ["upload", "-"]), 1);
    assert.equal(
      piped.stderr,
      `orchard: the private key is encrypted and needs its passphrase: give the file by its path (not -), then ${ways}\n`,
    );

    const withPass = context(`${PASSPHRASE}\n`);
    assert.equal(await runWith(withPass, "pushcert", ["upload", encFile, "--passphrase-stdin"]), 0, withPass.stderr);
    const prompts: string[] = [];
    const tty = context();
    tty.stdinIsTTY = true;
    tty.readSecret = async (prompt) => (prompts.push(prompt), PASSPHRASE);
    assert.equal(await runWith(tty, "pushcert", ["upload", encFile]), 0, tty.stderr);
    assert.deepEqual(prompts, ["private key passphrase: "]);
  });

  test("orchard push: 0 when all were pushed, 3 when some failed", async () => {
    assert.equal((await server.api("PUT", "/v1/pushcert", pki.pem())).status, 200);
    const d = await fleet.device();
    await d.enroll();
    apns.reset();
    const ok = context();
    assert.equal(await runWith(ok, "push", [d.udid]), 0, ok.stderr);
    assert.equal(apns.seen.length, 1);
    assert.match(ok.stdout, new RegExp(`^${d.udid}\\s+pushed \\(apns-id ${apns.seen[0]!.apnsId}\\)$`, "m"));
    const some = context();
    assert.equal(await runWith(some, "push", [d.udid, "NO-SUCH"]), 3);
    assert.match(some.stdout, /^NO-SUCH\s+not pushed: unknown enrollment$/m);
    const none = context();
    assert.equal(await runWith(none, "push", ["NO-SUCH"]), 1);
  });
});
