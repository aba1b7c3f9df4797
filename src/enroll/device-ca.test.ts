import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, webcrypto, X509Certificate } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as x509 from "@peculiar/x509";
import { DEVICE_CA_CERT_FILE, DEVICE_CA_KEY_FILE, DeviceCa, loadDeviceCa } from "./device-ca.ts";

const quiet = { info() {}, warn() {} };
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "orchard-device-ca-"));
const deviceKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey;
const request = (cn: string) => ({
  subjectDer: new Uint8Array(new x509.Name(`CN=${cn}, O=Example`).toArrayBuffer()),
  publicKeyDer: deviceKey.export({ type: "spki", format: "der" }),
});

test("the data dir's device CA is created once, kept private, and loaded again", async () => {
  const dir = tmp();
  try {
    const first = await loadDeviceCa({ dataDir: dir, log: quiet });
    assert.equal(fs.statSync(path.join(dir, DEVICE_CA_KEY_FILE)).mode & 0o777, 0o600);
    const again = await loadDeviceCa({ dataDir: dir, log: quiet });
    assert.equal(again.fingerprint, first.fingerprint);
    assert.ok(first.cert.ca);
    assert.equal(first.key.asymmetricKeyType, "rsa");
    assert.deepEqual(fs.readdirSync(dir).sort(), [DEVICE_CA_KEY_FILE, DEVICE_CA_CERT_FILE].sort(), "no temp files left");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("processes starting at once on one data dir end up with one device CA", async () => {
  const dir = tmp();
  try {
    const cas = await Promise.all(Array.from({ length: 4 }, () => loadDeviceCa({ dataDir: dir, log: quiet })));
    assert.equal(new Set(cas.map((ca) => ca.fingerprint)).size, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("issued certificates: the request's subject and key, clientAuth, chained to the CA (openssl verify)", async () => {
  const ca = await DeviceCa.create("Test Device CA", 30);
  const cert = await ca.issue(request("device-7"));
  assert.equal(cert.subject, "CN=device-7\nO=Example");
  assert.ok(cert.checkIssued(ca.cert) && cert.verify(ca.cert.publicKey));
  assert.ok(!cert.ca);
  assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.2"]);
  assert.ok(cert.publicKey.equals(deviceKey));
  const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
  assert.ok(Math.abs(days - 30) < 0.01, `lifetime ${days} days`);
  const other = await ca.issue(request("device-7"));
  assert.notEqual(other.serialNumber, cert.serialNumber);

  const dir = tmp();
  try {
    fs.writeFileSync(path.join(dir, "ca.pem"), ca.certPem);
    fs.writeFileSync(path.join(dir, "device.pem"), cert.toString());
    const out = execFileSync("openssl", [
      "verify",
      "-purpose",
      "sslclient",
      "-CAfile",
      path.join(dir, "ca.pem"),
      path.join(dir, "device.pem"),
    ]).toString();
    assert.match(out, /device\.pem: OK/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("--device-ca-cert/--device-ca-key: used as given; a mismatched key or a non-CA certificate is refused", async () => {
  const ca = await DeviceCa.create("Given CA");
  const dir = tmp();
  try {
    const certFile = path.join(dir, "ca.pem");
    const keyFile = path.join(dir, "ca.key");
    fs.writeFileSync(certFile, ca.certPem);
    fs.writeFileSync(keyFile, ca.key.export({ type: "pkcs8", format: "pem" }));
    const loaded = await loadDeviceCa({ dataDir: dir, certFile, keyFile, log: quiet });
    assert.equal(loaded.fingerprint, ca.fingerprint);
    assert.ok(!fs.existsSync(path.join(dir, DEVICE_CA_KEY_FILE)), "no CA created in the data dir");

    const otherKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    assert.throws(() => DeviceCa.fromPem(ca.certPem, otherKey.export({ type: "pkcs8", format: "pem" })), /does not match/);
    const leaf = await ca.issue(request("not-a-ca"));
    assert.throws(() => new DeviceCa(new X509Certificate(leaf.raw), ca.key), /not a CA/);
    await assert.rejects(loadDeviceCa({ dataDir: dir, certFile, log: quiet }), /go together/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a given CA with its own kind of key identifier and a short life: issued certificates match it and end with it", async () => {
  const keys = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const wc = webcrypto as unknown as Crypto;
  const alg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  const publicKey = await wc.subtle.importKey("spki", keys.publicKey.export({ type: "spki", format: "der" }), alg, true, ["verify"]);
  const signingKey = await wc.subtle.importKey("pkcs8", keys.privateKey.export({ type: "pkcs8", format: "der" }), alg, false, ["sign"]);
  const notAfter = new Date(Date.now() + 10 * 86_400_000);
  const caCert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: "01",
      name: "CN=Short-lived CA with an RFC 7093 key id",
      notBefore: new Date(Date.now() - 60_000),
      notAfter,
      keys: { publicKey, privateKey: signingKey },
      signingAlgorithm: alg,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
        new x509.SubjectKeyIdentifierExtension("a1b2c3d4e5f60718293a4b5c6d7e8f90", false), // not SHA-1 of the key
      ],
    },
    wc,
  );
  const ca = new DeviceCa(new X509Certificate(Buffer.from(caCert.rawData)), keys.privateKey, 365);
  const cert = await ca.issue(request("device-of-a-given-ca"));
  assert.ok(cert.checkIssued(ca.cert), "the authority key id is the CA's own subject key id");
  assert.ok(cert.verify(ca.cert.publicKey));
  assert.equal(Date.parse(cert.validTo), Date.parse(ca.cert.validTo), "not valid past the CA");
});
