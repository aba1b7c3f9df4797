import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeviceCa } from "./device-ca.ts";
import { issuePkcs12Identity, newPkcs12Passphrase } from "./pkcs12-build.ts";
import { buildPkcs12 } from "../identity/pkcs12-write.ts";
import { Pkcs12Error, readPkcs12 } from "../identity/pkcs12.ts";

const OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
let dir: string;
let ca: DeviceCa;
let otherCa: DeviceCa;
let passphrase: string;
let aes: Buffer;
let tdes: Buffer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "orchard-p12-"));
  [ca, otherCa] = await Promise.all([DeviceCa.create("P12 Test CA"), DeviceCa.create("Other CA")]);
  writeFileSync(join(dir, "ca.pem"), ca.certPem);
  writeFileSync(join(dir, "other-ca.pem"), otherCa.certPem);
  passphrase = newPkcs12Passphrase();
  [aes, tdes] = await Promise.all([
    issuePkcs12Identity(ca, { commonName: "Orchard device 1", passphrase }),
    issuePkcs12Identity(ca, { commonName: "Orchard device 2", passphrase, encryption: "3des" }),
  ]);
  writeFileSync(join(dir, "aes.p12"), aes);
  writeFileSync(join(dir, "3des.p12"), tdes);
});

after(() => rmSync(dir, { recursive: true, force: true }));

function openssl(args: string[]): string {
  return execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] }).toString();
}

/** `openssl pkcs12 -info` prints the algorithm lines on stderr. */
function opensslInfo(args: string[]): string {
  const r = spawnSync("openssl", [...args, "-info"]);
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stderr.toString() + r.stdout.toString();
}

function pemBlocks(text: string, label: string): string[] {
  return [...text.matchAll(new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----\\n?`, "g"))].map((m) => m[0]);
}

for (const name of ["aes", "3des"] as const) {
  test(`${name}: openssl pkcs12 opens it (no -legacy); key matches cert; cert chains to the device CA`, () => {
    const file = join(dir, `${name}.p12`);
    const all = openssl(["pkcs12", "-in", file, "-passin", `pass:${passphrase}`, "-nodes"]);
    assert.equal(pemBlocks(all, "PRIVATE KEY").length, 1);
    assert.equal(pemBlocks(all, "CERTIFICATE").length, 2);

    const [leafPem] = pemBlocks(openssl(["pkcs12", "-in", file, "-passin", `pass:${passphrase}`, "-clcerts", "-nokeys"]), "CERTIFICATE");
    const [caPem] = pemBlocks(openssl(["pkcs12", "-in", file, "-passin", `pass:${passphrase}`, "-cacerts", "-nokeys"]), "CERTIFICATE");
    const [keyPem] = pemBlocks(openssl(["pkcs12", "-in", file, "-passin", `pass:${passphrase}`, "-nocerts", "-nodes"]), "PRIVATE KEY");
    const leaf = new X509Certificate(leafPem!);
    const key = createPrivateKey(keyPem!);
    assert.ok(leaf.checkPrivateKey(key), "the key belongs to the certificate");
    assert.equal(key.asymmetricKeyType, "rsa");
    assert.equal(key.asymmetricKeyDetails?.modulusLength, 2048);
    assert.equal(new X509Certificate(caPem!).fingerprint256, ca.cert.fingerprint256);
    assert.equal(leaf.subject, `CN=Orchard device ${name === "aes" ? 1 : 2}`);
    assert.ok(leaf.checkIssued(ca.cert) && leaf.verify(ca.cert.publicKey));
    assert.equal(leaf.ca, false);
    assert.deepEqual(leaf.keyUsage, [OID_CLIENT_AUTH]);

    writeFileSync(join(dir, `${name}-leaf.pem`), leafPem!);
    assert.match(openssl(["verify", "-CAfile", join(dir, "ca.pem"), join(dir, `${name}-leaf.pem`)]), /: OK/);
    const wrongCa = spawnSync("openssl", ["verify", "-CAfile", join(dir, "other-ca.pem"), join(dir, `${name}-leaf.pem`)]);
    assert.notEqual(wrongCa.status, 0);
  });

  test(`${name}: our reader (src/identity/pkcs12.ts) reads it too`, () => {
    const contents = readPkcs12(name === "aes" ? aes : tdes, passphrase);
    assert.equal(contents.keys.length, 1);
    assert.equal(contents.certificates.length, 2);
    const leaf = new X509Certificate(contents.certificates[0]!);
    assert.ok(leaf.checkPrivateKey(createPrivateKey({ key: contents.keys[0]!, format: "der", type: "pkcs8" })));
    assert.deepEqual(contents.certificates[1], ca.certDer);
  });

  test(`${name}: the wrong passphrase fails in openssl and in our reader`, () => {
    const r = spawnSync("openssl", ["pkcs12", "-in", join(dir, `${name}.p12`), "-passin", "pass:wrong", "-nodes"]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr.toString(), /mac verify/i);
    assert.throws(() => readPkcs12(name === "aes" ? aes : tdes, "wrong"), Pkcs12Error);
    assert.throws(() => readPkcs12(name === "aes" ? aes : tdes, passphrase + "x"), Pkcs12Error);
  });
}

test("algorithms: PBES2/PBKDF2-HMAC-SHA256/AES-256-CBC + HMAC-SHA256 MAC by default; 3DES + SHA-1 MAC on request", () => {
  const info = (file: string) => opensslInfo(["pkcs12", "-in", join(dir, file), "-passin", `pass:${passphrase}`, "-noout"]);
  const modern = info("aes.p12");
  assert.match(modern, /MAC: sha256, Iteration 2048/);
  assert.match(modern, /PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256/);
  assert.match(modern, /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256/);
  const legacy = info("3des.p12");
  assert.match(legacy, /MAC: sha1, Iteration 2048/);
  assert.match(legacy, /PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048/);
  assert.match(legacy, /Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048/);
});

test("bag attributes: the key and its certificate share localKeyID and friendlyName; the CA cert has none", () => {
  const out = openssl(["pkcs12", "-in", join(dir, "aes.p12"), "-passin", `pass:${passphrase}`, "-nodes"]);
  const ids = [...out.matchAll(/localKeyID: ([0-9A-F ]+)/g)].map((m) => m[1]!.trim());
  assert.equal(ids.length, 2);
  assert.equal(ids[0], ids[1]);
  assert.equal([...out.matchAll(/friendlyName: Orchard device 1/g)].length, 2);
  assert.match(out, /Bag Attributes: <No Attributes>\nsubject=CN = P12 Test CA/);
});

test("iterations option and validation", async () => {
  const p12 = await issuePkcs12Identity(ca, { commonName: "iter", passphrase: "pw", iterations: 10_000, friendlyName: "Label" });
  writeFileSync(join(dir, "iter.p12"), p12);
  const info = opensslInfo(["pkcs12", "-in", join(dir, "iter.p12"), "-passin", "pass:pw", "-nodes"]);
  assert.match(info, /MAC: sha256, Iteration 10000/);
  assert.match(info, /friendlyName: Label/);
  await assert.rejects(issuePkcs12Identity(ca, { commonName: "x", passphrase: "pw", iterations: 1000 }), /iterations/);
  await assert.rejects(issuePkcs12Identity(ca, { commonName: "x", passphrase: "" }), /must not be empty/);
  await assert.rejects(issuePkcs12Identity(ca, { commonName: "x", passphrase: "pässword" }), /printable ASCII/);
  await assert.rejects(issuePkcs12Identity(ca, { commonName: " ", passphrase: "pw" }), /common name/);
  await assert.rejects(buildPkcs12({ key: ca.key, certificates: [], passphrase: "pw" }), /certificate/);
});

test("buildPkcs12 packs an existing key and chain", async () => {
  const p12 = await buildPkcs12({ key: ca.key, certificates: [ca.certDer], passphrase: "pw" });
  const contents = readPkcs12(p12, "pw");
  assert.deepEqual(contents.certificates, [ca.certDer]);
  const key = createPrivateKey({ key: contents.keys[0]!, format: "der", type: "pkcs8" });
  assert.deepEqual(createPublicKey(key).export({ type: "spki", format: "der" }), ca.cert.publicKey.export({ type: "spki", format: "der" }));
});

test("newPkcs12Passphrase: 24 URL-safe characters, fresh each time", () => {
  const a = newPkcs12Passphrase();
  assert.match(a, /^[A-Za-z0-9_-]{24}$/);
  assert.notEqual(a, newPkcs12Passphrase());
});
