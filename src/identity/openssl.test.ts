// Signatures made by OpenSSL, not by our own helpers, so the verifier is checked
// against an independent CMS implementation.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import * as asn1js from "asn1js";
import { IdentityError, verifyMdmSignature, verifyMdmSignatureDetailed, certFingerprint } from "./index.ts";
import { opensslDir, type OpensslDir } from "./testing/openssl-dir.ts";
import { createCa, issueDeviceIdentity, signMdmBody, type DeviceIdentity } from "./testing/pki.ts";

const body = Buffer.from(
  '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>MessageType</key><string>TokenUpdate</string></dict></plist>\n',
);
let files: OpensslDir;
let device: DeviceIdentity;
let ecDevice: DeviceIdentity;
let other: DeviceIdentity;
let caFingerprint: string;

before(async () => {
  const ca = await createCa({ commonName: "OpenSSL Test CA" });
  caFingerprint = ca.fingerprint;
  [device, ecDevice, other] = await Promise.all([
    issueDeviceIdentity(ca, { commonName: "rsa-device" }),
    issueDeviceIdentity(ca, { commonName: "ec-device", keyAlgorithm: "ECDSA" }),
    issueDeviceIdentity(ca, { commonName: "other-device" }),
  ]);
  files = opensslDir("orchard-identity-", ca, { rsa: device, ec: ecDevice, other }, body);
});

after(() => files.remove());

const opensslSign = (signer: string, extra: string[]) => files.sign(signer, extra);

async function rejects(promise: Promise<unknown>, reason: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof IdentityError && err.reason === reason);
}

for (const md of ["sha1", "sha256"]) {
  for (const attrs of [[], ["-noattr"]]) {
    test(`openssl cms -md ${md} ${attrs.join(" ") || "with attributes"}: verifies, tampered bodies fail`, async () => {
      const header = opensslSign("rsa", ["-md", md, ...attrs]).toString("base64");
      assert.equal(certFingerprint(await verifyMdmSignature(header, body)), device.fingerprint);

      const flipped = Buffer.from(body);
      flipped[20] ^= 0x20;
      await rejects(verifyMdmSignature(header, flipped), "bad-signature");
      await rejects(verifyMdmSignature(header, Buffer.concat([body, Buffer.from("\n")])), "bad-signature");
      await rejects(verifyMdmSignature(header, body.subarray(0, body.length - 1)), "bad-signature"); // trailing newline gone
    });
  }
}

test("openssl ECDSA signer verifies", async () => {
  for (const attrs of [[], ["-noattr"]]) {
    const header = opensslSign("ec", ["-md", "sha256", ...attrs]).toString("base64");
    assert.equal(certFingerprint(await verifyMdmSignature(header, body)), ecDevice.fingerprint);
    await rejects(verifyMdmSignature(header, Buffer.from("other")), "bad-signature");
  }
});

// OpenSSL only streams (indefinite lengths) with the content embedded. Cutting the
// eContent out of an indefinite-length encapContentInfo needs no length fix-ups and
// yields Apple's shape: BER, indefinite, detached, SHA-1, no signed attributes.
function detachIndefinite(attached: Buffer): Buffer {
  // 30 80 06 09 <id-signedData> A0 80 30 80 ... encapContentInfo: 30 80 06 09 <id-data> A0 80 ...
  const idData = Buffer.from("06092a864886f70d010701", "hex");
  const at = attached.indexOf(idData);
  assert.ok(at > 0 && attached[at - 2] === 0x30 && attached[at - 1] === 0x80, "encapContentInfo is indefinite");
  const start = at + idData.length;
  assert.equal(attached[start], 0xa0, "eContent present");
  const eContent = asn1js.fromBER(attached.subarray(start));
  assert.notEqual(eContent.offset, -1);
  return Buffer.concat([attached.subarray(0, start), attached.subarray(start + eContent.offset)]);
}

test("BER with indefinite lengths (Apple shape) from OpenSSL verifies", async () => {
  for (const md of ["sha1", "sha256"]) {
    const ber = detachIndefinite(opensslSign("rsa", ["-md", md, "-noattr", "-stream", "-nodetach"]));
    assert.deepEqual([...ber.subarray(0, 2)], [0x30, 0x80]);
    writeFileSync(files.path("ber.der"), ber);
    // OpenSSL itself accepts the cut-down detached form.
    execFileSync(
      "openssl",
      [
        "cms",
        "-verify",
        "-binary",
        "-noverify",
        "-inform",
        "DER",
        "-in",
        files.path("ber.der"),
        "-content",
        files.path("body"),
        "-out",
        "/dev/null",
      ],
      { stdio: "ignore" },
    );
    const header = ber.toString("base64");
    assert.equal(certFingerprint(await verifyMdmSignature(header, body)), device.fingerprint);
    await rejects(verifyMdmSignature(header, Buffer.concat([body, Buffer.from(" ")])), "bad-signature");
  }
});

test("attached (non-detached) signatures are refused even when valid", async () => {
  const attached = opensslSign("rsa", ["-md", "sha256", "-nodetach"]).toString("base64");
  await rejects(verifyMdmSignature(attached, body), "bad-signature");
  await rejects(verifyMdmSignature(attached, Buffer.from("something else")), "bad-signature");
});

test("two signers, or no certificate included, are refused", async () => {
  const two = opensslSign("rsa", ["-md", "sha256", "-signer", files.path("other.pem"), "-inkey", files.path("other.key")]);
  await rejects(verifyMdmSignature(two.toString("base64"), body), "bad-signature");
  const noCerts = opensslSign("rsa", ["-md", "sha256", "-nocerts"]);
  await rejects(verifyMdmSignature(noCerts.toString("base64"), body), "bad-signature");
});

test("the signer is found by its identifier, not by position in the set", async () => {
  // -certfile puts the CA certificate before the signer's.
  const header = opensslSign("rsa", ["-md", "sha256", "-certfile", files.path("ca.pem")]).toString("base64");
  const { signer, certificates } = await verifyMdmSignatureDetailed(header, body);
  assert.equal(certFingerprint(signer), device.fingerprint);
  assert.deepEqual(certificates.map(certFingerprint), [caFingerprint]);
});

test("a signature by another identity returns that identity, not ours", async () => {
  const header = opensslSign("other", ["-md", "sha1", "-noattr"]).toString("base64");
  assert.equal(certFingerprint(await verifyMdmSignature(header, body)), other.fingerprint);
});

test("OpenSSL accepts the pki helpers: client-auth chain and all signMdmBody shapes", async () => {
  execFileSync(
    "openssl",
    ["verify", "-purpose", "sslclient", "-CAfile", files.path("ca.pem"), files.path("rsa.pem"), files.path("ec.pem")],
    { stdio: "ignore" },
  );
  for (const digest of ["SHA-1", "SHA-256"] as const) {
    for (const signedAttributes of [false, true]) {
      for (const indefiniteLength of [false, true]) {
        const sig = files.path("ours.der");
        writeFileSync(sig, Buffer.from(await signMdmBody(device, body, { digest, signedAttributes, indefiniteLength }), "base64"));
        execFileSync(
          "openssl",
          [
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            sig,
            "-content",
            files.path("body"),
            "-CAfile",
            files.path("ca.pem"),
            "-purpose",
            "sslclient",
            "-out",
            "/dev/null",
          ],
          { stdio: "ignore" },
        );
      }
    }
  }
});
