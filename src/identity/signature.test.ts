import { test, before } from "node:test";
import assert from "node:assert/strict";
import {
  IdentityError,
  verifyMdmSignature,
  verifyMdmSignatureDetailed,
  certFingerprint,
  MAX_SIGNATURE_HEADER_LENGTH,
  mdmSignatureSigner,
} from "./index.ts";
import { createCa, issueDeviceIdentity, signMdmBody, type CaIdentity, type DeviceIdentity } from "./testing/pki.ts";

const body = Buffer.from(
  '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>Status</key><string>Idle</string></dict></plist>\n',
);
let ca: CaIdentity;
let device: DeviceIdentity;
let other: DeviceIdentity;
let ecDevice: DeviceIdentity;

before(async () => {
  ca = await createCa({ commonName: "Signature Test CA" });
  [device, other, ecDevice] = await Promise.all([
    issueDeviceIdentity(ca, { commonName: "device" }),
    issueDeviceIdentity(ca, { commonName: "other" }),
    issueDeviceIdentity(ca, { commonName: "ec-device", keyAlgorithm: "ECDSA" }),
  ]);
});

async function rejects(promise: Promise<unknown>, reason: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof IdentityError, `expected IdentityError, got ${String(err)}`);
    assert.equal(err.reason, reason);
    return true;
  });
}

const combos = [
  { digest: "SHA-1", signedAttributes: false },
  { digest: "SHA-1", signedAttributes: true },
  { digest: "SHA-256", signedAttributes: false },
  { digest: "SHA-256", signedAttributes: true },
] as const;

for (const combo of combos) {
  test(`signMdmBody ${combo.digest} signedAttributes=${combo.signedAttributes} verifies and tampering fails`, async () => {
    const header = await signMdmBody(device, body, combo);
    const signer = await verifyMdmSignature(header, body);
    assert.equal(certFingerprint(signer), device.fingerprint);

    const changed = Buffer.from(body);
    changed[10] ^= 0x01;
    await rejects(verifyMdmSignature(header, changed), "bad-signature");
    await rejects(verifyMdmSignature(header, Buffer.concat([body, Buffer.from(" ")])), "bad-signature");
    await rejects(verifyMdmSignature(header, body.subarray(0, body.length - 1)), "bad-signature");
  });
}

test("DER (definite length) and ECDSA signatures verify", async () => {
  const der = await signMdmBody(device, body, { digest: "SHA-256", signedAttributes: true, indefiniteLength: false });
  assert.deepEqual([...Buffer.from(der, "base64").subarray(0, 2)], [0x30, 0x82]);
  assert.equal(certFingerprint(await verifyMdmSignature(der, body)), device.fingerprint);
  for (const signedAttributes of [false, true]) {
    const header = await signMdmBody(ecDevice, body, { digest: "SHA-256", signedAttributes });
    assert.equal(certFingerprint(await verifyMdmSignature(header, body)), ecDevice.fingerprint);
    await rejects(verifyMdmSignature(header, Buffer.concat([body, body])), "bad-signature");
  }
});

test("default signMdmBody output has the Apple shape: BER indefinite length", async () => {
  const header = await signMdmBody(device, body);
  assert.deepEqual([...Buffer.from(header, "base64").subarray(0, 2)], [0x30, 0x80]);
});

test("a key that does not match the included certificate fails", async () => {
  const forged = { cert: device.cert, key: other.key };
  for (const combo of combos) {
    await rejects(verifyMdmSignature(await signMdmBody(forged, body, combo), body), "bad-signature");
  }
});

test("extra certificates in the set are returned beside the signer", async () => {
  const header = await signMdmBody(device, body, { extraCertificates: [ca.cert] });
  const result = await verifyMdmSignatureDetailed(header, body);
  assert.equal(certFingerprint(result.signer), device.fingerprint);
  assert.deepEqual(result.certificates.map(certFingerprint), [ca.fingerprint]);
});

test("malformed headers fail with IdentityError only", async () => {
  const header = await signMdmBody(device, body);
  await rejects(verifyMdmSignature("", body), "bad-header");
  await rejects(verifyMdmSignature("   ", body), "bad-header");
  await rejects(verifyMdmSignature("A".repeat(MAX_SIGNATURE_HEADER_LENGTH + 4), body), "bad-header");
  await rejects(verifyMdmSignature("!!not base64!!", body), "bad-signature");
  await rejects(verifyMdmSignature("QUJD", body), "bad-signature"); // "ABC"
  await rejects(verifyMdmSignature(Buffer.from("garbage that is not ASN.1").toString("base64"), body), "bad-signature");
  await rejects(verifyMdmSignature(header, Buffer.alloc(0)), "bad-signature");
  for (const cut of [4, 40, 400, Math.floor(header.length / 2), header.length - 8]) {
    await rejects(verifyMdmSignature(header.slice(0, cut), body), "bad-signature");
  }
});

test("corrupting any byte never escapes as a non-IdentityError", async () => {
  const der = Buffer.from(await signMdmBody(device, body, { digest: "SHA-256", signedAttributes: true }), "base64");
  let accepted = 0;
  for (let i = 0; i < der.length; i += 3) {
    const copy = Buffer.from(der);
    copy[i] ^= 0x5a;
    try {
      // Bytes the CMS signature does not cover (the outer digestAlgorithms set, the
      // certificate's own signature, ...) can change and still verify.
      await verifyMdmSignature(copy.toString("base64"), body);
      accepted++;
    } catch (err) {
      assert.ok(err instanceof IdentityError, `byte ${i}: ${String(err)}`);
    }
  }
  assert.ok(accepted < der.length / 6, `too many corrupted signatures accepted: ${accepted}`);
});

test("mdmSignatureSigner names the signer from the header alone, as the verification does (fast path and pkijs)", async () => {
  // Apple's shape takes the fast path; a set past its 16 KB input bound goes to pkijs.
  const padding = await Promise.all(Array.from({ length: 24 }, (_, i) => issueDeviceIdentity(ca, { commonName: `pad-${i}` })));
  for (const extraCertificates of [[], [other.cert], padding.map((p) => p.cert)]) {
    for (const d of [device, ecDevice]) {
      const header = await signMdmBody(d, body, { extraCertificates });
      const named = mdmSignatureSigner(header);
      assert.equal(certFingerprint(named.signer), certFingerprint(d.cert));
      assert.equal(named.certificates.length, extraCertificates.length);
      assert.equal(certFingerprint((await verifyMdmSignatureDetailed(header, body)).signer), certFingerprint(d.cert));
    }
  }
  // It proves nothing: a signature over other bytes names its signer all the same (the body check refuses it later).
  assert.equal(certFingerprint(mdmSignatureSigner(await signMdmBody(device, Buffer.from("other"))).signer), certFingerprint(device.cert));
  for (const garbage of ["bogus", "AAAA", Buffer.from("hello").toString("base64"), "not base64!"]) {
    assert.throws(
      () => mdmSignatureSigner(garbage),
      (err: unknown) => err instanceof IdentityError,
      garbage,
    );
  }
});
