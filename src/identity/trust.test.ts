import { test, before } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { spawnSync } from "node:child_process";
import { DeviceTrust, IdentityError, verifyMdmSignatureDetailed } from "./index.ts";
import {
  createCa,
  generateKeyPair,
  issueDeviceIdentity,
  signMdmBody,
  type CaIdentity,
  type DeviceIdentity,
  type KeyPair,
} from "./testing/pki.ts";

const DAY = 24 * 60 * 60 * 1000;
let caA: CaIdentity;
let caB: CaIdentity;
let root: CaIdentity;
let intermediate: CaIdentity;
let deviceKeys: KeyPair;
let deviceA: DeviceIdentity;
let deviceI: DeviceIdentity;

before(async () => {
  [caA, caB, root, deviceKeys] = await Promise.all([
    createCa({ commonName: "CA A" }),
    createCa({ commonName: "CA B", keyAlgorithm: "ECDSA" }),
    createCa({ commonName: "Root" }),
    generateKeyPair("RSA"),
  ]);
  intermediate = await createCa({ commonName: "Intermediate", issuer: root, keyAlgorithm: "ECDSA" });
  // One shared key keeps the suite fast; each certificate is still distinct.
  deviceA = await issueDeviceIdentity(caA, { commonName: "device-a", keyPair: deviceKeys });
  deviceI = await issueDeviceIdentity(intermediate, { commonName: "device-i", keyPair: deviceKeys });
});

function throwsReason(fn: () => void, reason: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof IdentityError, `expected IdentityError, got ${String(err)}`);
    assert.equal(err.reason, reason);
    return true;
  });
}

test("a device certificate is trusted by its CA and not by another", () => {
  new DeviceTrust([caA.certPem]).verify(deviceA.cert);
  throwsReason(() => new DeviceTrust([caB.certPem]).verify(deviceA.cert), "untrusted");
  assert.equal(new DeviceTrust([caA.certPem]).isOpen, false);
});

test("a CA with the same name but another key does not vouch for the device", async () => {
  const impostor = await createCa({ commonName: "CA A", keyAlgorithm: "ECDSA" });
  throwsReason(() => new DeviceTrust([impostor.certPem]).verify(deviceA.cert), "untrusted");
});

test("a certificate whose signature is broken is refused", () => {
  const der = Buffer.from(deviceA.certDer);
  der[der.length - 1] ^= 0x01; // last byte of the issuer's signature; names and key ids intact
  throwsReason(() => new DeviceTrust([caA.certPem]).verify(new X509Certificate(der)), "untrusted");
});

test("chains through an intermediate from the CA file or given as extra", () => {
  new DeviceTrust([root.certPem + intermediate.certPem]).verify(deviceI.cert);
  new DeviceTrust([root.certPem, intermediate.certPem]).verify(deviceI.cert);
  throwsReason(() => new DeviceTrust([root.certPem]).verify(deviceI.cert), "untrusted");
  new DeviceTrust([root.certPem]).verify(deviceI.cert, [intermediate.cert]);
  throwsReason(() => new DeviceTrust([caA.certPem]).verify(deviceI.cert, [intermediate.cert]), "untrusted");
});

test("intermediates carried in an Mdm-Signature complete the chain", async () => {
  const body = Buffer.from("<plist/>");
  const header = await signMdmBody(deviceI, body, { extraCertificates: [intermediate.cert] });
  const { signer, certificates } = await verifyMdmSignatureDetailed(header, body);
  new DeviceTrust([root.certPem]).verify(signer, certificates);
});

test("expired or not yet valid leaf is refused as expired, also after a cached success", async () => {
  const expired = await issueDeviceIdentity(caA, {
    commonName: "old",
    keyPair: deviceKeys,
    notBefore: new Date(Date.now() - 30 * DAY),
    notAfter: new Date(Date.now() - DAY),
  });
  const future = await issueDeviceIdentity(caA, { commonName: "future", keyPair: deviceKeys, notBefore: new Date(Date.now() + DAY) });
  const trust = new DeviceTrust([caA.certPem]);
  throwsReason(() => trust.verify(expired.cert), "expired");
  throwsReason(() => trust.verify(future.cert), "expired");
  trust.verify(deviceA.cert); // now cached
  throwsReason(() => trust.verify(deviceA.cert, [], new Date(Date.now() - DAY)), "expired");
  throwsReason(() => trust.verify(deviceA.cert, [], new Date(Date.now() + 400 * DAY)), "expired");
  trust.verify(deviceA.cert);
});

test("an expired intermediate breaks the chain", async () => {
  const oldIntermediate = await createCa({
    commonName: "Old Intermediate",
    issuer: root,
    keyAlgorithm: "ECDSA",
    notBefore: new Date(Date.now() - 30 * DAY),
    notAfter: new Date(Date.now() - DAY),
  });
  // The leaf outlives its issuer here; the issuer's validity must still be checked.
  const leaf = await issueDeviceIdentity(oldIntermediate, { commonName: "orphan", keyPair: deviceKeys });
  throwsReason(() => new DeviceTrust([root.certPem]).verify(leaf.cert, [oldIntermediate.cert]), "expired");
});

test("a CA certificate presented as the device identity is refused", () => {
  throwsReason(() => new DeviceTrust([caA.certPem]).verify(caA.cert), "bad-certificate");
  throwsReason(() => new DeviceTrust([root.certPem]).verify(intermediate.cert), "bad-certificate");
});

test("a device certificate cannot act as an issuer", async () => {
  // deviceA is not a CA; a "leaf" it signs must not chain to CA A through it.
  // (Both our CA-flag check and OpenSSL's keyUsage check in checkIssued refuse it.)
  const forged = await issueDeviceIdentity(deviceA, { commonName: "forged", keyPair: deviceKeys });
  throwsReason(() => new DeviceTrust([caA.certPem]).verify(forged.cert, [deviceA.cert]), "untrusted");
});

test("pathLength on the root is enforced", async () => {
  const strictRoot = await createCa({ commonName: "Strict Root", pathLength: 0, keyAlgorithm: "ECDSA" });
  const sub = await createCa({ commonName: "Sub", issuer: strictRoot, keyAlgorithm: "ECDSA" });
  const leaf = await issueDeviceIdentity(sub, { commonName: "too-deep", keyPair: deviceKeys });
  throwsReason(() => new DeviceTrust([strictRoot.certPem]).verify(leaf.cert, [sub.cert]), "untrusted");
  const direct = await issueDeviceIdentity(strictRoot, { commonName: "direct", keyPair: deviceKeys });
  new DeviceTrust([strictRoot.certPem]).verify(direct.cert);
});

test("extendedKeyUsage must allow client auth when present", async () => {
  const trust = new DeviceTrust([caA.certPem]);
  const serverOnly = await issueDeviceIdentity(caA, { commonName: "s", keyPair: deviceKeys, extendedKeyUsages: ["1.3.6.1.5.5.7.3.1"] });
  throwsReason(() => trust.verify(serverOnly.cert), "bad-certificate");
  const none = await issueDeviceIdentity(caA, { commonName: "n", keyPair: deviceKeys, extendedKeyUsages: null });
  trust.verify(none.cert);
  const anyEku = await issueDeviceIdentity(caA, { commonName: "a", keyPair: deviceKeys, extendedKeyUsages: ["2.5.29.37.0"] });
  trust.verify(anyEku.cert);
});

test("DeviceTrust.any() accepts a self-signed certificate but still checks validity", async () => {
  const trust = DeviceTrust.any();
  assert.equal(trust.isOpen, true);
  trust.verify(caB.cert);
  trust.verify(deviceA.cert);
  throwsReason(() => trust.verify(deviceA.cert, [], new Date(Date.now() + 400 * DAY)), "expired");
});

test("a CA file without certificates is a configuration error", () => {
  assert.throws(() => new DeviceTrust(["not a pem"]), /no PEM certificate/);
});

// Run in a child with a hard timeout: an unbounded search is synchronous and would
// otherwise hang the test runner instead of failing.
test("a mesh of cross-signing attacker CAs in the extras does not blow up the search", () => {
  const script = `
    import { DeviceTrust, IdentityError } from ${JSON.stringify(new URL("./index.ts", import.meta.url).href)};
    import { createCa, generateKeyPair, issueDeviceIdentity } from ${JSON.stringify(new URL("./testing/pki.ts", import.meta.url).href)};
    // Same name and key: every one of them verifies as the issuer of every other.
    const keyPair = await generateKeyPair('ECDSA');
    const mesh = await Promise.all(Array.from({ length: 16 }, () => createCa({ commonName: 'Evil', keyPair })));
    const leaf = await issueDeviceIdentity(mesh[0], { commonName: 'victim', keyAlgorithm: 'ECDSA' });
    const anchor = await createCa({ commonName: 'Real', keyAlgorithm: 'ECDSA' });
    try { new DeviceTrust([anchor.certPem]).verify(leaf.cert, mesh.map((m) => m.cert)); }
    catch (err) { if (err instanceof IdentityError && err.reason === 'untrusted') process.exit(0); }
    process.exit(1);`;
  const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    timeout: 30_000,
    encoding: "utf8",
  });
  assert.equal(child.status, 0, child.signal ? `killed by ${child.signal} (search did not finish)` : child.stderr);
});

test("refuseIssuer: a certificate of that CA is never an identity, even when its CA is trusted or anything is accepted", async () => {
  const credentialCa = await createCa({ commonName: "Orchard Credential CA" });
  const credential = await issueDeviceIdentity(credentialCa, { commonName: "wifi", keyPair: deviceKeys });
  const open = DeviceTrust.any();
  open.verify(credential.cert); // accepted (and cached) before the refusal: refuseIssuer forgets what was trusted
  open.refuseIssuer(credentialCa.certPem);
  const bothTrusted = new DeviceTrust([caA.certPem, credentialCa.certPem]);
  bothTrusted.refuseIssuer(credentialCa.certPem);
  for (const trust of [open, bothTrusted]) {
    assert.throws(
      () => trust.verify(credential.cert),
      (err: unknown) => err instanceof IdentityError && err.reason === "untrusted" && /credential CA/.test(err.message),
    );
    assert.throws(() => trust.verify(credentialCa.cert), IdentityError, "nor the CA certificate itself");
    trust.verify(deviceA.cert); // others still pass
  }
});
