// Getting a push certificate: `orchard pushcert csr` (the customer's key and
// CSR) and `orchard pushcert sign` (the MDM vendor's signed request for Apple's
// Push Certificates Portal), checked with the openssl command line against a
// test vendor PKI shaped like Apple's: root -> WWDR intermediate -> vendor.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { runWith } from "../src/cli/client-commands.ts";
import { createCa, generateKeyPair, issueDeviceIdentity, type PkiIdentity } from "../src/identity/testing/pki.ts";
import { parsePlistDict } from "../src/plist/index.ts";
import { cliContext } from "./support/cli.ts";

let tmp: string;
let root: PkiIdentity;
let wwdr: PkiIdentity;
let vendor: PkiIdentity;

/** The file names Apple hands out (DER .cer files), and the vendor's key as PEM. */
async function writeVendorFiles(dir: string): Promise<void> {
  fs.writeFileSync(path.join(dir, "mdm.cer"), vendor.certDer);
  fs.writeFileSync(path.join(dir, "vendor.pem"), vendor.certPem);
  fs.writeFileSync(path.join(dir, "vendor.key"), vendor.keyPem);
  fs.writeFileSync(path.join(dir, "AppleWWDRCAG3.cer"), wwdr.certDer);
  fs.writeFileSync(path.join(dir, "AppleIncRootCertificate.cer"), root.certDer);
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-pushreq-"));
  const [k1, k2, k3] = await Promise.all([generateKeyPair(), generateKeyPair(), generateKeyPair()]);
  root = await createCa({ commonName: "Test Apple Root CA", keyPair: k1 });
  wwdr = await createCa({ commonName: "Test Apple Worldwide Developer Relations CA", issuer: root, keyPair: k2 });
  vendor = await issueDeviceIdentity(wwdr, { commonName: "MDM Vendor: Test Vendor", keyPair: k3, extendedKeyUsages: null });
  await writeVendorFiles(tmp);
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function orchard(args: string[], o: { cwd?: string; stdin?: string } = {}) {
  const ctx = cliContext("http://127.0.0.1:1", { cwd: o.cwd ?? tmp, stdin: o.stdin });
  const code = await runWith(ctx, "pushcert", args);
  return { code, stdout: ctx.stdout, stderr: ctx.stderr };
}

const openssl = (args: string[], cwd = tmp) => execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] }).toString();

describe("orchard pushcert csr", () => {
  test("writes an RSA 2048 key (mode 0600) and a CSR for it; the key is never printed", async () => {
    const r = await orchard([
      "csr",
      "--out-key",
      "c1.key",
      "--out-csr",
      "c1.csr",
      "--cn",
      "Example Push",
      "--email",
      "Admin@Example.org",
      "--country",
      "de",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const keyPem = fs.readFileSync(path.join(tmp, "c1.key"), "utf8");
    assert.equal(fs.statSync(path.join(tmp, "c1.key")).mode & 0o777, 0o600);
    const body = keyPem.split("\n").filter((l) => l && !l.startsWith("-----"));
    for (const line of body) assert.ok(!r.stdout.includes(line) && !r.stderr.includes(line), "no key material on the terminal");
    assert.match(openssl(["req", "-in", "c1.csr", "-noout", "-verify"]) + "", /^/);
    const subject = openssl(["req", "-in", "c1.csr", "-noout", "-subject", "-nameopt", "RFC2253"]);
    assert.match(subject, /C=DE/);
    assert.match(subject, /CN=Example Push/);
    assert.match(subject, /emailAddress=admin@example\.org|1\.2\.840\.113549\.1\.9\.1=/);
    assert.match(openssl(["pkey", "-in", "c1.key", "-noout", "-text"]), /Private-Key: \(2048 bit/);
    assert.equal(
      openssl(["req", "-in", "c1.csr", "-noout", "-pubkey"]),
      openssl(["pkey", "-in", "c1.key", "-pubout"]),
      "the CSR is for this key",
    );
  });

  test("the next step depends on the CSR: a push CSR goes to an MDM vendor, a --vendor CSR to Apple's developer portal", async () => {
    const dir = fs.mkdtempSync(path.join(tmp, "kinds-"));
    const push = await orchard(["csr"], { cwd: dir });
    assert.equal(push.code, 0, push.stderr);
    assert.equal(
      push.stdout,
      `wrote the private key to ${path.join(dir, "push.key")} (mode 0600: keep it, the push certificate is useless without it)\n` +
        `wrote the CSR to ${path.join(dir, "push.csr")}: have it signed by an MDM vendor (orchard pushcert sign, or see docs/push-certificate.md)\n`,
    );
    // The vendor CSR of docs/push-certificate.md (way A): its own default files, beside the push ones.
    const vendorCsr = await orchard(["csr", "--vendor", "--email", "mdm-admin@example.org"], { cwd: dir });
    assert.equal(vendorCsr.code, 0, vendorCsr.stderr);
    assert.equal(
      vendorCsr.stdout,
      `wrote the private key to ${path.join(dir, "vendor.key")} (mode 0600: keep it, the MDM vendor certificate is useless without it; it is orchard pushcert sign's --vendor-key)\n` +
        `wrote the CSR to ${path.join(dir, "vendor.csr")}: upload it at https://developer.apple.com/account/resources/certificates/add as an MDM CSR certificate, and download mdm.cer, orchard pushcert sign's --vendor-cert (see docs/push-certificate.md)\n`,
    );
    assert.doesNotMatch(vendorCsr.stdout, /signed by an MDM vendor|push certificate/);
    assert.equal(fs.statSync(path.join(dir, "vendor.key")).mode & 0o777, 0o600);
    assert.match(openssl(["req", "-in", "vendor.csr", "-noout", "-subject"], dir), /CN ?= ?Orchard MDM vendor/);
  });

  test("an existing key or CSR is kept unless --force", async () => {
    fs.writeFileSync(path.join(tmp, "keep.key"), "the old key");
    const r = await orchard(["csr", "--out-key", "keep.key", "--out-csr", "keep.csr"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /keep\.key exists: keep it .*--force/);
    assert.equal(fs.readFileSync(path.join(tmp, "keep.key"), "utf8"), "the old key");
    assert.equal(fs.existsSync(path.join(tmp, "keep.csr")), false);
    const forced = await orchard(["csr", "--out-key", "keep.key", "--out-csr", "keep.csr", "--force"]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(fs.readFileSync(path.join(tmp, "keep.key"), "utf8"), /^-----BEGIN PRIVATE KEY-----/);
    assert.equal(fs.statSync(path.join(tmp, "keep.key")).mode & 0o777, 0o600);
  });

  test("bad flags are usage errors", async () => {
    assert.equal((await orchard(["csr", "--country", "USA", "--out-key", "x1.key", "--out-csr", "x1.csr"])).code, 1);
    assert.equal((await orchard(["csr", "--out-key", "same", "--out-csr", "same"])).code, 2);
    assert.equal(fs.existsSync(path.join(tmp, "x1.key")), false);
  });
});

describe("orchard pushcert sign", () => {
  test("the request is base64 of a plist with exactly the portal's three fields; the CSR is the customer's; the signature verifies with openssl", async () => {
    assert.equal((await orchard(["csr", "--out-key", "cust.key", "--out-csr", "cust.csr", "--email", "it@example.org"])).code, 0);
    const r = await orchard([
      "sign",
      "--csr",
      "cust.csr",
      "--vendor-cert",
      "mdm.cer",
      "--vendor-key",
      "vendor.key",
      "--chain",
      "AppleWWDRCAG3.cer",
      "--chain",
      "AppleIncRootCertificate.cer",
      "--out",
      "push-request.b64",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^wrote the signed request for .*CN=Orchard MDM push.* to .*push-request\.b64: upload it at https:\/\/identity\.apple\.com\/pushcert\n$/,
    );
    const encoded = fs.readFileSync(path.join(tmp, "push-request.b64"), "utf8");
    assert.match(encoded, /^[A-Za-z0-9+/]+=*$/, "base64 alone, as mdmctl writes it");
    const plist = parsePlistDict(Buffer.from(encoded, "base64"));
    assert.deepEqual(Object.keys(plist).sort(), ["PushCertCertificateChain", "PushCertRequestCSR", "PushCertSignature"]);
    for (const v of Object.values(plist)) assert.equal(typeof v, "string");

    const csrDer = Buffer.from(plist.PushCertRequestCSR as string, "base64");
    const customerPem = fs.readFileSync(path.join(tmp, "cust.csr"), "utf8");
    const customerDer = Buffer.from(customerPem.replace(/-----[A-Z ]+-----/g, "").replace(/\s/g, ""), "base64");
    assert.deepEqual(csrDer, customerDer, "the CSR inside is the customer's, as DER");

    const chain = (plist.PushCertCertificateChain as string).match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/g)!;
    assert.deepEqual(
      chain,
      [vendor.certPem, wwdr.certPem, root.certPem].map((p) => p.trim() + "\n"),
      "vendor, WWDR, root, as PEM, in that order",
    );
    assert.equal(chain.join(""), plist.PushCertCertificateChain);

    fs.writeFileSync(path.join(tmp, "inner.der"), csrDer);
    fs.writeFileSync(path.join(tmp, "sig.bin"), Buffer.from(plist.PushCertSignature as string, "base64"));
    fs.writeFileSync(path.join(tmp, "chain.pem"), plist.PushCertCertificateChain as string);
    openssl(["x509", "-in", "mdm.cer", "-inform", "DER", "-pubkey", "-noout", "-out", "vendor-pub.pem"]);
    assert.match(openssl(["dgst", "-sha256", "-verify", "vendor-pub.pem", "-signature", "sig.bin", "inner.der"]), /Verified OK/);
    // The same check against a CSR the vendor did not sign fails.
    fs.writeFileSync(path.join(tmp, "other.der"), Buffer.concat([csrDer, Buffer.from([0])]));
    assert.throws(() => openssl(["dgst", "-sha256", "-verify", "vendor-pub.pem", "-signature", "sig.bin", "other.der"]));
    assert.match(openssl(["req", "-in", "inner.der", "-inform", "DER", "-noout", "-verify"], tmp) + "ok", /ok/);
  });

  test("without --out the request goes to stdout; a PKCS#12 vendor key with its passphrase on stdin works", async () => {
    openssl(["pkcs12", "-export", "-in", "vendor.pem", "-inkey", "vendor.key", "-out", "vendor.p12", "-passout", "pass:vendor-pass"], tmp);
    const r = await orchard(
      [
        "sign",
        "--csr",
        "cust.csr",
        "--vendor-cert",
        "mdm.cer",
        "--vendor-key",
        "vendor.p12",
        "--passphrase-stdin",
        "--chain",
        "AppleWWDRCAG3.cer",
        "--chain",
        "AppleIncRootCertificate.cer",
      ],
      { stdin: "vendor-pass\n" },
    );
    assert.equal(r.code, 0, r.stderr);
    const plist = parsePlistDict(Buffer.from(r.stdout.trim(), "base64"));
    assert.ok(plist.PushCertSignature);
  });

  test("refused with a reason: a key that is not the vendor's, a chain out of order or missing, a damaged CSR, an existing --out", async () => {
    const base = ["sign", "--csr", "cust.csr", "--vendor-cert", "mdm.cer"];
    const chain = ["--chain", "AppleWWDRCAG3.cer", "--chain", "AppleIncRootCertificate.cer"];
    const wrongKey = await orchard([...base, "--vendor-key", "cust.key", ...chain]);
    assert.equal(wrongKey.code, 1);
    assert.match(wrongKey.stderr, /the vendor key does not match the vendor certificate/);
    const swapped = await orchard([
      ...base,
      "--vendor-key",
      "vendor.key",
      "--chain",
      "AppleIncRootCertificate.cer",
      "--chain",
      "AppleWWDRCAG3.cer",
    ]);
    assert.match(swapped.stderr, /is not issued by chain file 1 .*intermediate then root/);
    const short = await orchard([...base, "--vendor-key", "vendor.key", "--chain", "AppleWWDRCAG3.cer"]);
    assert.match(short.stderr, /Apple's WWDR intermediate and Apple's root CA/);
    const none = await orchard([...base, "--vendor-key", "vendor.key"]);
    assert.equal(none.code, 2);
    fs.writeFileSync(path.join(tmp, "bad.csr"), "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n");
    const bad = await orchard(["sign", "--csr", "bad.csr", "--vendor-cert", "mdm.cer", "--vendor-key", "vendor.key", ...chain]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^orchard: the CSR file is not a certificate signing request/);
    fs.writeFileSync(path.join(tmp, "junk.csr"), "junk");
    assert.match(
      (await orchard(["sign", "--csr", "junk.csr", "--vendor-cert", "mdm.cer", "--vendor-key", "vendor.key", ...chain])).stderr,
      /^orchard: the CSR file is not a certificate signing request/,
    );
    fs.writeFileSync(path.join(tmp, "taken.b64"), "x");
    const taken = await orchard([...base, "--vendor-key", "vendor.key", ...chain, "--out", "taken.b64"]);
    assert.match(taken.stderr, /taken\.b64 exists/);
    for (const r of [wrongKey, swapped, short, bad, taken])
      assert.ok(!r.stderr.includes("PRIVATE KEY") && !/\n\s+at /.test(r.stderr), r.stderr);
  });
});
