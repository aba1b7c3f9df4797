import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildEnrollmentProfile } from "./profile.ts";
import { loadProfileSigner, ProfileSignerError, signProfile, type ProfileSigner } from "./sign-profile.ts";
import { createCa, issueDeviceIdentity, type CaIdentity, type PkiIdentity } from "../identity/testing/pki.ts";
import { issueServerCertificate } from "../identity/testing/push-cert.ts";

let dir: string;
let root: CaIdentity;
let intermediate: CaIdentity;
let rsaSigner: PkiIdentity;
let ecSigner: PkiIdentity;
let tlsSigner: PkiIdentity;
let stranger: PkiIdentity;
let profile: Buffer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "orchard-sign-"));
  root = await createCa({ commonName: "Signing Root" });
  intermediate = await createCa({ commonName: "Signing Intermediate", issuer: root });
  [rsaSigner, ecSigner, tlsSigner, stranger] = await Promise.all([
    issueDeviceIdentity(intermediate, { commonName: "Profile Signer", extendedKeyUsages: null }),
    issueDeviceIdentity(intermediate, { commonName: "EC Profile Signer", keyAlgorithm: "ECDSA", extendedKeyUsages: null }),
    issueServerCertificate(intermediate, { hosts: ["mdm.example.com"] }),
    issueDeviceIdentity(root, { commonName: "Stranger" }),
  ]);
  writeFileSync(join(dir, "root.pem"), root.certPem);
  profile = buildEnrollmentProfile({
    serverUrl: "https://mdm.example.com/mdm",
    topic: "com.apple.mgmt.External.test",
    identity: { kind: "scep", url: "https://mdm.example.com/scep", challenge: "c" },
  });
});

after(() => rmSync(dir, { recursive: true, force: true }));

function signer(id: PkiIdentity): ProfileSigner {
  return { certPem: id.certPem + intermediate.certPem, keyPem: id.keyPem };
}

/** openssl cms -verify against the root only; returns the content on success. */
function verify(signed: Buffer, extra: string[] = []): { ok: boolean; content: Buffer; stderr: string } {
  const file = join(dir, "signed.mobileconfig");
  const out = join(dir, "verified.plist");
  writeFileSync(file, signed);
  rmSync(out, { force: true });
  const r = spawnSync("openssl", [
    "cms",
    "-verify",
    "-inform",
    "DER",
    "-CAfile",
    join(dir, "root.pem"),
    "-in",
    file,
    "-out",
    out,
    ...extra,
  ]);
  return { ok: r.status === 0, content: r.status === 0 ? readFileSync(out) : Buffer.alloc(0), stderr: r.stderr.toString() };
}

function cmsPrint(signed: Buffer): string {
  const file = join(dir, "print.der");
  writeFileSync(file, signed);
  const r = spawnSync("openssl", ["cms", "-cmsout", "-print", "-inform", "DER", "-in", file]);
  assert.equal(r.status, 0, r.stderr.toString());
  return r.stdout.toString();
}

test("RSA signer: openssl cms -verify succeeds and returns the profile byte for byte", async () => {
  const signed = await signProfile(profile, signer(rsaSigner));
  const r = verify(signed);
  assert.ok(r.ok, r.stderr);
  assert.deepEqual(r.content, profile);
});

test("EC signer verifies too", async () => {
  const r = verify(await signProfile(profile, signer(ecSigner)));
  assert.ok(r.ok, r.stderr);
  assert.deepEqual(r.content, profile);
});

test("a TLS server certificate (serverAuth only) signs; openssl needs -purpose any for that EKU", async () => {
  const signed = await signProfile(profile, signer(tlsSigner));
  const r = verify(signed, ["-purpose", "any"]);
  assert.ok(r.ok, r.stderr);
  assert.deepEqual(r.content, profile);
});

test("structure: encapsulated data, SHA-256, signed attributes, signer and chain included", async () => {
  const signed = await signProfile(profile, signer(rsaSigner));
  const text = cmsPrint(signed);
  assert.match(text, /contentType: pkcs7-signedData/);
  assert.match(text, /eContentType: pkcs7-data/);
  assert.doesNotMatch(text, /eContent: <ABSENT>/);
  assert.match(text, /digestAlgorithm:\s+algorithm: sha256/);
  assert.match(text, /object: contentType/);
  assert.match(text, /object: signingTime/);
  assert.match(text, /object: messageDigest/);
  assert.match(text, /subject: CN=Profile Signer/);
  assert.match(text, /subject: CN=Signing Intermediate/);
  assert.doesNotMatch(text, /subject: CN=Signing Root/);
  // The profile sits in the SignedData as one OCTET STRING.
  assert.ok(signed.includes(profile));
  // DER: a definite-length SEQUENCE spanning the whole buffer.
  assert.equal(signed[0], 0x30);
  const lengthBytes = signed[1]! & 0x7f;
  assert.ok(signed[1]! & 0x80 && lengthBytes > 0, "long definite form");
  assert.equal(signed.readUIntBE(2, lengthBytes) + 2 + lengthBytes, signed.length);
});

test("tampering with the content, the signed attributes or the signature fails verification", async () => {
  const signed = await signProfile(profile, signer(rsaSigner));
  const at = signed.indexOf(profile) + profile.indexOf(Buffer.from("mdm.example.com"));
  const tampered = Buffer.from(signed);
  tampered[at] = tampered[at]! ^ 0x01;
  assert.equal(verify(tampered).ok, false);

  const sig = Buffer.from(signed);
  sig[sig.length - 5] = sig[sig.length - 5]! ^ 0x01; // inside the signature value (last field)
  assert.equal(verify(sig).ok, false);

  const time = Buffer.from(signed);
  const signingTimeOid = Buffer.from("06092a864886f70d010905", "hex");
  const at2 = time.indexOf(signingTimeOid) + signingTimeOid.length + 2; // SET header, then UTCTime
  assert.equal(time[at2], 0x17);
  time[at2 + 3] = time[at2 + 3]! ^ 0x01;
  assert.equal(verify(time).ok, false);
});

test("a chain that does not lead to the trusted root fails verification", async () => {
  const otherRoot = await createCa({ commonName: "Other Root" });
  const outsider = await issueDeviceIdentity(otherRoot, { commonName: "Outsider", extendedKeyUsages: null });
  assert.equal(verify(await signProfile(profile, { certPem: outsider.certPem, keyPem: outsider.keyPem })).ok, false);
});

test("signProfile refuses an expired certificate and a key that matches no certificate", async () => {
  await assert.rejects(signProfile(profile, signer(rsaSigner), new Date(Date.now() + 400 * 86_400_000)), /expired/);
  await assert.rejects(signProfile(profile, { certPem: rsaSigner.certPem, keyPem: stranger.keyPem }), /does not match the certificate/);
});

test("loadProfileSigner: one PEM file, any order; the key's certificate goes first", async () => {
  const file = join(dir, "signer.pem");
  writeFileSync(file, intermediate.certPem + rsaSigner.keyPem + rsaSigner.certPem);
  const loaded = loadProfileSigner(file);
  assert.ok(loaded.certPem.startsWith(rsaSigner.certPem.trim()));
  assert.ok(loaded.certPem.includes(intermediate.certPem.trim()));
  const r = verify(await signProfile(profile, loaded));
  assert.ok(r.ok, r.stderr);
  assert.deepEqual(r.content, profile);

  const ec = join(dir, "ec.pem");
  writeFileSync(ec, ecSigner.certPem + intermediate.certPem + ecSigner.keyPem);
  assert.ok(verify(await signProfile(profile, loadProfileSigner(ec))).ok);
});

test("loadProfileSigner: clear errors", () => {
  const write = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const cases: [string, RegExp][] = [
    [write("nokey.pem", rsaSigner.certPem + intermediate.certPem), /no private key/],
    [write("nocert.pem", rsaSigner.keyPem), /no certificate/],
    [write("mismatch.pem", rsaSigner.certPem + intermediate.certPem + stranger.keyPem), /does not match any of its 2 certificates/],
    [write("twokeys.pem", rsaSigner.certPem + rsaSigner.keyPem + stranger.keyPem), /2 private keys/],
    [
      write("encrypted.pem", rsaSigner.certPem + "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"),
      /encrypted/,
    ],
    [
      write("garbage-key.pem", rsaSigner.certPem + "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
      /cannot read the private key/,
    ],
    [join(dir, "missing.pem"), /cannot read the profile signing file/],
  ];
  for (const [file, message] of cases)
    assert.throws(
      () => loadProfileSigner(file),
      (e: unknown) => e instanceof ProfileSignerError && message.test(e.message),
      file,
    );
});
