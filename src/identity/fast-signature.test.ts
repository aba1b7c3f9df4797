// Differential tests: the hand-written Mdm-Signature path (fast-signature.ts) against
// pkijs, the reference, on every shape the other tests make plus thousands of
// truncated and corrupted inputs. Wherever the fast path answers (instead of handing
// the input to pkijs) the answers must be identical: accept or reject, reason, signer
// and the other certificates.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, webcrypto } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { cmsEngine } from "./engine.ts";
import { IdentityError } from "./errors.ts";
import { verifyFast } from "./fast-signature.ts";
import { certFingerprint } from "./fingerprint.ts";
import { decodeSignatureHeader, verifyMdmSignatureDetailed, verifyMdmSignaturePkijs, type MdmSignature } from "./signature.ts";
import { opensslDir, type OpensslDir } from "./testing/openssl-dir.ts";
import { createCa, issueDeviceIdentity, signMdmBody, type CaIdentity, type DeviceIdentity } from "./testing/pki.ts";

const body = Buffer.from(
  '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>Status</key><string>Idle</string></dict></plist>\n',
);
let files: OpensslDir;
let ca: CaIdentity;
let device: DeviceIdentity;
let other: DeviceIdentity;
let ec256: DeviceIdentity;
let ec384: DeviceIdentity;

before(async () => {
  ca = await createCa({ commonName: "Fast Path CA" });
  [device, other, ec256, ec384] = await Promise.all([
    issueDeviceIdentity(ca, { commonName: "device" }),
    issueDeviceIdentity(ca, { commonName: "other" }),
    issueDeviceIdentity(ca, { commonName: "ec-256", keyAlgorithm: "ECDSA" }),
    issueDeviceIdentity(ca, { commonName: "ec-384", keyPair: generateKeyPairSync("ec", { namedCurve: "P-384" }) }),
  ]);
  files = opensslDir("orchard-fastsig-", ca, { rsa: device, other, ec: ec256, ec384 }, body);
});

after(() => files.remove());

const opensslSign = (signer: string, extra: string[]) => files.sign(signer, extra);

// OpenSSL streams (indefinite lengths) only with embedded content; cutting the
// eContent out yields Apple's shape (see openssl.test.ts).
function detachIndefinite(attached: Buffer): Buffer {
  const idData = Buffer.from("06092a864886f70d010701", "hex");
  const start = attached.indexOf(idData) + idData.length;
  const eContent = asn1js.fromBER(attached.subarray(start));
  return Buffer.concat([attached.subarray(0, start), attached.subarray(start + eContent.offset)]);
}

type Outcome = string;

function describe(result: MdmSignature): Outcome {
  return `accept ${certFingerprint(result.signer).slice(0, 12)} [${result.certificates.map((c) => certFingerprint(c).slice(0, 12)).join(",")}]`;
}

async function settle(run: () => Promise<MdmSignature | null> | MdmSignature | null): Promise<Outcome | null> {
  try {
    const result = await run();
    return result === null ? null : describe(result);
  } catch (err) {
    assert.ok(err instanceof IdentityError, `not an IdentityError: ${String(err)}`);
    return `reject ${err.reason}`;
  }
}

interface Tally {
  decided: number;
  fallback: number;
  accepted: number;
}

/** Runs both paths (and the exported one) on one input; fast is null when it handed the input to pkijs. */
async function compare(label: string, header: string, data: Buffer, tally?: Tally): Promise<{ fast: Outcome | null; reference: Outcome }> {
  const reference = (await settle(() => verifyMdmSignaturePkijs(header, data)))!;
  const fast = await settle(() => verifyFast(decodeSignatureHeader(header), data));
  if (fast !== null) assert.equal(fast, reference, `${label}: fast path disagrees with pkijs`);
  assert.equal(await settle(() => verifyMdmSignatureDetailed(header, data)), reference, `${label}: exported path`);
  if (tally) {
    if (fast === null) tally.fallback++;
    else tally.decided++;
    if (reference.startsWith("accept")) tally.accepted++;
  }
  return { fast, reference };
}

async function decides(label: string, header: string, data: Buffer, expected: "accept" | "reject"): Promise<void> {
  const { fast, reference } = await compare(label, header, data);
  assert.notEqual(fast, null, `${label}: the fast path should decide this itself`);
  assert.ok(reference.startsWith(expected), `${label}: expected ${expected}, got ${reference}`);
}

const tampered = (b: Buffer): Buffer[] => {
  const flipped = Buffer.from(b);
  flipped[10]! ^= 0x01;
  return [flipped, Buffer.concat([b, Buffer.from("\n")]), b.subarray(0, b.length - 1), Buffer.from("other")];
};

test("signMdmBody shapes: the fast path decides and agrees, valid and tampered", async () => {
  for (const id of [device, ec256, ec384]) {
    for (const digest of ["SHA-1", "SHA-256"] as const) {
      for (const signedAttributes of [false, true]) {
        for (const indefiniteLength of [false, true]) {
          const label = `${id.commonName} ${digest} attrs=${signedAttributes} indefinite=${indefiniteLength}`;
          const header = await signMdmBody(id, body, { digest, signedAttributes, indefiniteLength });
          await decides(label, header, body, "accept");
          for (const [i, changed] of tampered(body).entries()) await decides(`${label} tampered ${i}`, header, changed, "reject");
          await decides(`${label} empty body`, header, Buffer.alloc(0), "reject");
        }
      }
    }
  }
  const extra = await signMdmBody(device, body, { extraCertificates: [ca.cert, other.cert] });
  await decides("extra certificates", extra, body, "accept");
  for (const signedAttributes of [false, true]) {
    const forged = await signMdmBody({ cert: device.cert, key: other.key }, body, { signedAttributes });
    await decides(`forged attrs=${signedAttributes}`, forged, body, "reject");
  }
});

test("OpenSSL shapes: the fast path decides and agrees", async () => {
  const cases: [string, Buffer][] = [];
  for (const md of ["sha1", "sha256", "sha384", "sha512"]) {
    cases.push([`rsa ${md}`, opensslSign("rsa", ["-md", md])], [`rsa ${md} -noattr`, opensslSign("rsa", ["-md", md, "-noattr"])]);
  }
  cases.push(
    ["ec", opensslSign("ec", ["-md", "sha256"])],
    ["ec -noattr", opensslSign("ec", ["-md", "sha256", "-noattr"])],
    ["ec384 sha384", opensslSign("ec384", ["-md", "sha384"])],
    ["ec sha1 -noattr", opensslSign("ec", ["-md", "sha1", "-noattr"])],
    ["subjectKeyIdentifier sid", opensslSign("rsa", ["-md", "sha256", "-keyid"])],
    ["subjectKeyIdentifier sid -noattr", opensslSign("rsa", ["-md", "sha1", "-keyid", "-noattr"])],
    ["signer after the CA", opensslSign("rsa", ["-md", "sha256", "-certfile", files.path("ca.pem")])],
    ["BER indefinite sha1", detachIndefinite(opensslSign("rsa", ["-md", "sha1", "-noattr", "-stream", "-nodetach"]))],
    ["BER indefinite sha256", detachIndefinite(opensslSign("rsa", ["-md", "sha256", "-noattr", "-stream", "-nodetach"]))],
    ["another identity", opensslSign("other", ["-md", "sha1", "-noattr"])],
  );
  for (const [label, der] of cases) {
    const header = der.toString("base64");
    await decides(label, header, body, "accept");
    for (const [i, changed] of tampered(body).entries()) await decides(`${label} tampered ${i}`, header, changed, "reject");
  }
  const two = opensslSign("rsa", ["-md", "sha256", "-signer", files.path("other.pem"), "-inkey", files.path("other.key")]);
  await decides("two signers", two.toString("base64"), body, "reject");
  await decides("no certificates", opensslSign("rsa", ["-md", "sha256", "-nocerts"]).toString("base64"), body, "reject");
});

test("shapes left to pkijs get its answer", async () => {
  const cases: [string, Buffer, "accept" | "reject"][] = [
    ["RSASSA-PSS", opensslSign("rsa", ["-md", "sha256", "-keyopt", "rsa_padding_mode:pss"]), "accept"],
    ["attached content", opensslSign("rsa", ["-md", "sha256", "-nodetach"]), "reject"],
  ];
  for (const [label, der, expected] of cases) {
    const { fast, reference } = await compare(label, der.toString("base64"), body);
    assert.equal(fast, null, `${label}: expected a hand-off to pkijs`);
    assert.ok(reference.startsWith(expected), `${label}: ${reference}`);
  }
});

test("garbage and malformed headers agree", async () => {
  const header = await signMdmBody(device, body);
  const inputs = [
    "",
    "   ",
    "!!not base64!!",
    "QUJD",
    "A".repeat(70_000),
    Buffer.from("garbage that is not ASN.1").toString("base64"),
    Buffer.from("3080", "hex").toString("base64"),
    Buffer.from("300530030201", "hex").toString("base64"),
    Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).toString("base64"),
    header + header,
    Buffer.concat([Buffer.from(header, "base64"), Buffer.from([0, 0])]).toString("base64"),
  ];
  for (const [i, input] of inputs.entries()) await compare(`garbage ${i}`, input, body);
});

// mulberry32: a small seeded PRNG so failures reproduce.
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("truncation at every byte offset agrees", async (t) => {
  const der = Buffer.from(await signMdmBody(device, body), "base64"); // Apple's shape
  const tally: Tally = { decided: 0, fallback: 0, accepted: 0 };
  for (let n = 0; n < der.length; n++) await compare(`truncated to ${n}`, der.subarray(0, n).toString("base64"), body, tally);
  t.diagnostic(JSON.stringify(tally));
  assert.equal(tally.accepted, 0);
});

/**
 * Whether a P-256 CMS signature's r or s is not the minimal DER encoding of
 * a value below 2^256. pkijs, converting them to WebCrypto's fixed-size
 * r||s, can drop a leading byte a bit flip set (seen: s's 0x00 pad become
 * 0x02) and accept; OpenSSL, and so the fast path, refuses: rightly.
 */
function p256IntegerMalformed(der: Buffer): boolean {
  try {
    const info = new pkijs.ContentInfo({ schema: asn1js.fromBER(der).result });
    const signed = new pkijs.SignedData({ schema: info.content });
    const signature = asn1js.fromBER(signed.signerInfos[0]!.signature.valueBlock.valueHexView).result as asn1js.Sequence;
    return signature.valueBlock.value.some((integer) => {
      const v = (integer as asn1js.Integer).valueBlock.valueHexView;
      return v.length > 33 || (v.length === 33 && v[0] !== 0) || (v.length > 1 && v[0] === 0 && v[1]! < 0x80);
    });
  } catch {
    return false;
  }
}

test("random bit flips agree (seeded)", async (t) => {
  const bases: [string, Buffer][] = [
    ["apple shape", Buffer.from(await signMdmBody(device, body), "base64")],
    [
      "signed attributes + CA",
      Buffer.from(await signMdmBody(device, body, { signedAttributes: true, digest: "SHA-256", extraCertificates: [ca.cert] }), "base64"),
    ],
    ["openssl attrs", opensslSign("rsa", ["-md", "sha256"])],
    ["ecdsa", Buffer.from(await signMdmBody(ec256, body, { digest: "SHA-256", indefiniteLength: false }), "base64")],
  ];
  // Each flip runs pkijs too (about 10 ms): keep npm test quick, and let
  // FLIPS=2000 (or npm run fuzz) go further.
  const flips = Number(process.env.FLIPS ?? 60);
  const random = prng(Number(process.env.FLIP_SEED ?? 0x5eed));
  const tally: Tally = { decided: 0, fallback: 0, accepted: 0 };
  for (const [label, der] of bases) {
    for (let i = 0; i < flips; i++) {
      const copy = Buffer.from(der);
      const at = Math.floor(random() * copy.length);
      copy[at]! ^= 1 << Math.floor(random() * 8);
      if (label === "ecdsa" && p256IntegerMalformed(copy)) {
        // pkijs may accept it (above): only the refusal of the fast path, which answers, is checked.
        const fast = await settle(() => verifyFast(decodeSignatureHeader(copy.toString("base64")), body));
        assert.ok(!fast?.startsWith("accept"), `${label}: bit flip at ${at}: a malformed ECDSA integer accepted`);
        continue;
      }
      await compare(`${label}: bit flip at ${at}`, copy.toString("base64"), body, tally);
    }
  }
  t.diagnostic(JSON.stringify(tally));
  // The fast path must decide most of these itself, not just hand them on.
  assert.ok(tally.decided > tally.fallback, JSON.stringify(tally));
  assert.ok(tally.accepted > 0, "some flips land in unsigned bytes and still verify");
});

test("an ECDSA signature whose s gained a leading byte is refused by the fast path, and seen as malformed", async () => {
  // A signature whose s carries a 0x00 pad (02 21 00 at its end); the pad set to 0x02 makes s larger than 2^256:
  // the flip pkijs was seen to accept (when r was padded too). pkijs's answer is not checked here, only the fast path's.
  for (let tries = 0; tries < 200; tries++) {
    const der = Buffer.from(await signMdmBody(ec256, body, { digest: "SHA-256", indefiniteLength: false }), "base64");
    if (der[der.length - 35] !== 0x02 || der[der.length - 34] !== 0x21 || der[der.length - 33] !== 0x00) continue;
    assert.equal(p256IntegerMalformed(der), false);
    const lengthened = Buffer.from(der);
    lengthened[der.length - 33] = 0x02;
    assert.equal(p256IntegerMalformed(lengthened), true);
    const fast = await settle(() => verifyFast(decodeSignatureHeader(lengthened.toString("base64")), body));
    assert.equal(fast, "reject bad-signature");
    return;
  }
  assert.fail("no signature with a padded s in 200 tries");
});

test("a certificate pkijs refuses but OpenSSL reads goes to pkijs", async () => {
  // asn1js refuses the reserved tag [UNIVERSAL 15], so pkijs refuses the whole
  // SignedData; OpenSSL reads it. Put one in the subject of an extra certificate.
  const der = Buffer.from(await signMdmBody(device, body, { extraCertificates: [other.cert] }), "base64");
  const certAt = der.indexOf(other.certDer);
  const cnAt = der.indexOf(Buffer.from(other.commonName), certAt);
  assert.ok(certAt > 0 && cnAt > certAt && cnAt < certAt + other.certDer.length);
  const copy = Buffer.from(der);
  copy[cnAt - 2] = 0x0f;
  const { fast, reference } = await compare("[UNIVERSAL 15] in an extra certificate", copy.toString("base64"), body);
  assert.equal(fast, null);
  assert.equal(reference, "reject bad-signature");
});

test("a key pkijs and OpenSSL read differently goes to pkijs", async () => {
  // Unused bits in the key's BIT STRING: OpenSSL masks them off the exponent
  // (65537 -> 65536), pkijs ignores them and still verifies. Found by fuzzing.
  const der = Buffer.from(await signMdmBody(device, body), "base64");
  const keyAt = der.indexOf(Buffer.from("0382010f003082010a", "hex"));
  assert.ok(keyAt > 0);
  const copy = Buffer.from(der);
  copy[keyAt + 4] = 0x02;
  const { fast, reference } = await compare("unused bits in subjectPublicKey", copy.toString("base64"), body);
  assert.equal(fast, null);
  assert.match(reference, /^accept/);
});

// The one deliberate difference: RFC 5652 signed-attribute rules pkijs does not check.
async function signWithAttributes(attributes: pkijs.Attribute[]): Promise<string> {
  const data = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer;
  const cert = pkijs.Certificate.fromBER(device.cert.raw);
  const signerInfo = new pkijs.SignerInfo({
    version: 1,
    sid: new pkijs.IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }),
    signedAttrs: new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes }),
  });
  const signedData = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: "1.2.840.113549.1.7.1" }),
    signerInfos: [signerInfo],
    certificates: [cert],
  });
  const key = await webcrypto.subtle.importKey(
    "pkcs8",
    device.key.export({ type: "pkcs8", format: "der" }),
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    false,
    ["sign"],
  );
  await signedData.sign(key as unknown as CryptoKey, 0, "SHA-256", data, cmsEngine);
  const contentInfo = new pkijs.ContentInfo({ contentType: "1.2.840.113549.1.7.2", content: signedData.toSchema(true) });
  return Buffer.from(contentInfo.toSchema().toBER(false)).toString("base64");
}

test("signed attributes breaking RFC 5652: pkijs accepts, the fast path (and so the export) refuses", async () => {
  const digest = new asn1js.OctetString({ valueHex: await webcrypto.subtle.digest("SHA-256", body) });
  const contentType = (oid: string) =>
    new pkijs.Attribute({ type: "1.2.840.113549.1.9.3", values: [new asn1js.ObjectIdentifier({ value: oid })] });
  const messageDigest = (values: asn1js.AsnType[]) => new pkijs.Attribute({ type: "1.2.840.113549.1.9.4", values });
  const data = "1.2.840.113549.1.7.1";
  const good = await signWithAttributes([contentType(data), messageDigest([digest])]);
  await decides("well-formed attributes", good, body, "accept");
  const cases: [string, pkijs.Attribute[]][] = [
    ["content-type twice", [contentType(data), contentType(data), messageDigest([digest])]],
    ["message-digest twice", [contentType(data), messageDigest([digest]), messageDigest([digest])]],
    ["content-type not id-data", [contentType("1.2.840.113549.1.7.2"), messageDigest([digest])]],
    ["message-digest with two values", [contentType(data), messageDigest([digest, digest])]],
  ];
  for (const [label, attributes] of cases) {
    const header = await signWithAttributes(attributes);
    assert.match((await settle(() => verifyMdmSignaturePkijs(header, body)))!, /^accept/, `${label}: pkijs`);
    assert.equal(await settle(() => verifyFast(decodeSignatureHeader(header), body)), "reject bad-signature", label);
    assert.equal(await settle(() => verifyMdmSignatureDetailed(header, body)), "reject bad-signature", label);
  }
});
