// Mdm-Signature verification without building pkijs objects.
//
// Why not pkijs here (the project prefers the library): bench/identity.ts, RSA-2048,
// SHA-1, no signed attributes, 1 KB body, Apple's BER shape, one core: pkijs ~125
// verifications/s (8 ms each: asn1js.fromBER ~1.6 ms, pkijs object building 4-5 ms),
// this path ~10,000/s (0.1 ms, of which the RSA check ~0.035 ms): ~80x. Every device
// request of a SignMessage deployment pays it. A certificate not seen before costs
// ~3 ms once (cms-certs.ts parses it with node and with pkijs, then caches it).
//
// pkijs stays the reference. This path handles the shapes it fully understands and
// returns null for anything else (unusual but possibly valid encodings, algorithms it
// leaves alone), and signature.ts then asks pkijs, so those get pkijs's answer. It
// rejects on its own only where pkijs rejects as well: a signature or message digest
// that does not verify, no certificate with the signer's serial or key id, a wrong
// content type, not exactly one signer, no certificates. Malformed BER goes to pkijs too:
// anyone can send a shape only pkijs handles (RSASSA-PSS, say), so rejecting garbage
// early would not lower the worst case, and this way it cannot change an answer.
// fast-signature.test.ts checks
// both paths agree on every shape and on thousands of truncated and corrupted inputs.
// One deliberate difference: the RFC 5652 rules for signed attributes (exactly one
// content-type, equal to id-data, exactly one message-digest, each single-valued),
// which pkijs does not enforce; only the key holder can make such attributes.
import { createHash, verify as cryptoVerify } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { BerReader, is, CONTEXT, UNIVERSAL, TAG_INTEGER, TAG_NULL, TAG_OCTET_STRING, TAG_SEQUENCE, TAG_SET, type Tlv } from "./ber.ts";
import { certInfo, type CertInfo } from "./cms-certs.ts";
import { oidHex } from "./der.ts";
import { IdentityError } from "./errors.ts";
import type { MdmSignature } from "./signature.ts";

// asn1js refuses inputs with more than 10,000 nodes; every node takes at least two
// bytes, so below this size that limit cannot decide anything. Real headers: 2-5 KB.
const MAX_FAST_INPUT = 16 * 1024;
// Signed attributes sit at depth 5 (ContentInfo, [0], SignedData, SET, SignerInfo);
// asn1js refuses nesting beyond 100.
const PKIJS_ATTRS_MAX_DEPTH = 95;

const OID = {
  signedData: oidHex("1.2.840.113549.1.7.2"),
  data: oidHex("1.2.840.113549.1.7.1"),
  contentType: oidHex("1.2.840.113549.1.9.3"),
  messageDigest: oidHex("1.2.840.113549.1.9.4"),
  rsaEncryption: oidHex("1.2.840.113549.1.1.1"),
};
const DIGESTS = new Map([
  [oidHex("1.3.14.3.2.26"), "sha1"],
  [oidHex("2.16.840.1.101.3.4.2.1"), "sha256"],
  [oidHex("2.16.840.1.101.3.4.2.2"), "sha384"],
  [oidHex("2.16.840.1.101.3.4.2.3"), "sha512"],
]);
// pkijs takes only the hash from these; the key decides RSA or ECDSA (as here).
const SIGNATURE_HASHES = new Map([
  [oidHex("1.2.840.113549.1.1.5"), "sha1"],
  [oidHex("1.2.840.113549.1.1.11"), "sha256"],
  [oidHex("1.2.840.113549.1.1.12"), "sha384"],
  [oidHex("1.2.840.113549.1.1.13"), "sha512"],
  [oidHex("1.2.840.10045.4.1"), "sha1"],
  [oidHex("1.2.840.10045.4.3.2"), "sha256"],
  [oidHex("1.2.840.10045.4.3.3"), "sha384"],
  [oidHex("1.2.840.10045.4.3.4"), "sha512"],
]);

/** Thrown inside: the input is outside what this path decides; pkijs will. */
class Unsupported extends Error {}

function bad(message: string): IdentityError {
  return new IdentityError("bad-signature", message);
}

/**
 * Verifies a decoded Mdm-Signature (DER/BER bytes) over `body`. Returns the result,
 * throws IdentityError('bad-signature'), or returns null: ask pkijs.
 */
export function verifyFast(der: Uint8Array, body: Buffer): MdmSignature | null {
  try {
    return verifyOrThrow(der, body);
  } catch (err) {
    if (err instanceof IdentityError) throw err;
    return null; // BerError, Unsupported, or a surprise: the reference decides
  }
}

/**
 * The signer's certificate and the others of the set, read from a decoded
 * Mdm-Signature without any body: nothing is verified. Throws
 * IdentityError('bad-signature') where pkijs would refuse the signature too,
 * or returns null: ask pkijs.
 */
export function signerFast(der: Uint8Array): MdmSignature | null {
  try {
    const { certs, signerIndex } = parse(der);
    return { signer: certs[signerIndex]!.cert, certificates: certs.filter((_, i) => i !== signerIndex).map((c) => c.cert) };
  } catch (err) {
    if (err instanceof IdentityError) throw err;
    return null;
  }
}

function verifyOrThrow(der: Uint8Array, body: Buffer): MdmSignature {
  if (body.byteLength === 0) throw bad("request body is empty");
  const { r, signer, certs, signerIndex } = parse(der);
  const cert = certs[signerIndex]!;
  if (!cert.scheme) throw new Unsupported();
  let data: Uint8Array = body;
  if (signer.signedAttrs) {
    const messageDigest = signedAttributesDigest(r, signer.signedAttrs);
    const actual = createHash(signer.digest).update(body).digest();
    if (!actual.equals(messageDigest)) throw bad("Mdm-Signature does not verify");
    // Signed over the attributes with the [0] tag turned into SET OF; like pkijs, over
    // the bytes as received (definite-length encodings only reach this point).
    const copy = Buffer.from(r.bytes(signer.signedAttrs));
    copy[0] = 0x31;
    data = copy;
  }
  const hash = signer.signatureHash ?? signer.digest;
  const ok =
    cert.scheme === "rsa"
      ? cryptoVerify(hash, data, cert.key, signer.signature)
      : cryptoVerify(hash, data, { key: cert.key, dsaEncoding: "ieee-p1363" }, ecdsaRaw(signer.signature, cert.ecSize));
  if (!ok) throw bad("Mdm-Signature does not verify");
  return { signer: cert.cert, certificates: certs.filter((_, i) => i !== signerIndex).map((c) => c.cert) };
}

interface Parsed {
  r: BerReader;
  signer: Signer;
  certs: CertInfo[];
  signerIndex: number;
}

// The SignedData up to the signer's certificate: what verifying and naming the signer share.
function parse(der: Uint8Array): Parsed {
  if (der.byteLength > MAX_FAST_INPUT) throw new Unsupported();
  const r = new BerReader(der);

  // ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT SignedData }
  const [contentType, explicit] = kids(r, r.root(), UNIVERSAL, TAG_SEQUENCE, 2);
  if (r.oidHex(contentType!) !== OID.signedData) throw bad("Mdm-Signature is not a CMS SignedData");
  const [signedData] = kids(r, explicit!, CONTEXT, 0, 1);

  // SignedData ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo,
  //   [0] certificates OPTIONAL, [1] crls OPTIONAL (left to pkijs), signerInfos SET }
  const sd = kidsOf(r, signedData!, UNIVERSAL, TAG_SEQUENCE);
  if (sd.length < 4 || sd.length > 5) throw new Unsupported();
  const [version, digestAlgorithms, encap] = sd;
  const certSet = sd.length === 5 ? sd[3]! : undefined;
  const signerInfos = sd[sd.length - 1]!;
  if (![1, 3].includes(smallInt(r, version!))) throw new Unsupported();
  const algs = kidsOf(r, digestAlgorithms!, UNIVERSAL, TAG_SET);
  if (algs.length === 0) throw new Unsupported();
  for (const alg of algs) algorithm(r, alg);
  // Detached: encapContentInfo is the content type alone.
  const [eContentType] = kids(r, encap!, UNIVERSAL, TAG_SEQUENCE, 1);
  if (r.oidHex(eContentType!) !== OID.data) throw bad("Mdm-Signature content type is not id-data");
  if (certSet && !(is(certSet, CONTEXT, 0) && certSet.constructed)) throw new Unsupported();
  const signers = kidsOf(r, signerInfos, UNIVERSAL, TAG_SET);
  if (signers.length !== 1) throw bad("Mdm-Signature must have exactly one signer");
  const signer = signerInfo(r, signers[0]!);

  if (!certSet) throw bad("Mdm-Signature carries no certificates");
  const certs = r.children(certSet).map((tlv) => {
    if (!is(tlv, UNIVERSAL, TAG_SEQUENCE) || !tlv.constructed) throw new Unsupported(); // other CertificateChoices
    const info = certInfo(r.bytes(tlv));
    if (!info) throw new Unsupported();
    return info;
  });
  return { r, signer, certs, signerIndex: findSigner(certs, signer) };
}

interface Signer {
  issuer?: Uint8Array;
  serial?: Uint8Array;
  keyId?: Uint8Array;
  digest: string;
  signedAttrs?: Tlv;
  /** From signatureAlgorithm; undefined for rsaEncryption, which signs with `digest`. */
  signatureHash?: string;
  signature: Uint8Array;
}

// SignerInfo ::= SEQUENCE { version, sid, digestAlgorithm, [0] signedAttrs OPTIONAL,
//   signatureAlgorithm, signature OCTET STRING, [1] unsignedAttrs OPTIONAL (left to pkijs) }
function signerInfo(r: BerReader, tlv: Tlv): Signer {
  const f = kidsOf(r, tlv, UNIVERSAL, TAG_SEQUENCE);
  if (f.length !== 5 && f.length !== 6) throw new Unsupported();
  const [version, sid, digestAlgorithm] = f;
  const signedAttrs = f.length === 6 ? f[3]! : undefined;
  const [signatureAlgorithm, signature] = f.slice(-2);
  const v = smallInt(r, version!);
  const out: Partial<Signer> = {};
  if (is(sid!, UNIVERSAL, TAG_SEQUENCE) && v === 1) {
    // issuerAndSerialNumber
    const [issuer, serial] = kids(r, sid!, UNIVERSAL, TAG_SEQUENCE, 2);
    if (!is(issuer!, UNIVERSAL, TAG_SEQUENCE) || !issuer!.constructed) throw new Unsupported();
    out.issuer = r.bytes(issuer!);
    out.serial = minimalInteger(r, serial!);
  } else if (is(sid!, CONTEXT, 0) && !sid!.constructed && v === 3) {
    out.keyId = r.content(sid!); // subjectKeyIdentifier
  } else {
    throw new Unsupported();
  }
  const digest = DIGESTS.get(algorithm(r, digestAlgorithm!));
  if (!digest) throw new Unsupported();
  if (signedAttrs && !(is(signedAttrs, CONTEXT, 0) && signedAttrs.constructed && !signedAttrs.indefinite)) {
    throw new Unsupported();
  }
  const sigAlg = algorithm(r, signatureAlgorithm!);
  const signatureHash = SIGNATURE_HASHES.get(sigAlg);
  if (!signatureHash && sigAlg !== OID.rsaEncryption) throw new Unsupported(); // RSASSA-PSS, ...
  // A segmented signature would be valid BER, but pkijs verifies its (empty) primitive
  // value and so rejects it; leaving it to pkijs keeps the answers equal.
  if (!is(signature!, UNIVERSAL, TAG_OCTET_STRING) || signature!.constructed) throw new Unsupported();
  return { ...out, digest, signedAttrs, signatureHash, signature: r.content(signature!) };
}

// Like pkijs: the first certificate whose serial and issuer match, or whose public key's
// SHA-1 is the key id. pkijs compares names after case and space folding; exact bytes
// here, so a serial match with a different issuer encoding goes to pkijs.
function findSigner(certs: CertInfo[], signer: Signer): number {
  for (let i = 0; i < certs.length; i++) {
    const c = certs[i]!;
    if (signer.keyId) {
      if (c.keyHash.equals(signer.keyId)) return i;
    } else if (c.serial.equals(signer.serial!)) {
      if (c.issuer.equals(signer.issuer!)) return i;
      throw new Unsupported();
    }
  }
  throw bad("Mdm-Signature signer certificate not found");
}

// Returns the message-digest value. RFC 5652 5.3/11: exactly one content-type (equal
// to the eContentType, id-data here) and one message-digest attribute, single-valued.
function signedAttributesDigest(r: BerReader, attrs: Tlv): Uint8Array {
  pkijsAcceptsAttributes(r.bytes(attrs));
  let contentTypes = 0;
  let digest: Uint8Array | undefined;
  let digests = 0;
  for (const attr of kidsOf(r, attrs, CONTEXT, 0)) {
    const [type, set] = kids(r, attr, UNIVERSAL, TAG_SEQUENCE, 2);
    const oid = r.oidHex(type!);
    if (oid !== OID.contentType && oid !== OID.messageDigest) continue;
    const values = kidsOf(r, set!, UNIVERSAL, TAG_SET);
    const value = values[0];
    if (values.length !== 1 || !value) throw bad("Mdm-Signature signed attribute must have one value");
    if (oid === OID.contentType) {
      contentTypes++;
      if (!is(value, UNIVERSAL, 6) || r.oidHex(value) !== OID.data) throw bad("Mdm-Signature content-type attribute is not id-data");
    } else {
      digests++;
      if (!is(value, UNIVERSAL, TAG_OCTET_STRING)) throw bad("Mdm-Signature message-digest is not an OCTET STRING");
      if (value.constructed) throw new Unsupported(); // pkijs compares its empty primitive value
      digest = r.content(value);
    }
  }
  if (contentTypes !== 1 || digests !== 1 || !digest) {
    throw bad("Mdm-Signature needs exactly one content-type and one message-digest attribute");
  }
  return digest;
}

// pkijs parses every attribute value (asn1js rejects e.g. a malformed GeneralizedTime
// signingTime); do the same parse so we never accept attributes pkijs would refuse.
function pkijsAcceptsAttributes(bytes: Uint8Array): void {
  const asn1 = asn1js.fromBER(bytes, { maxDepth: PKIJS_ATTRS_MAX_DEPTH });
  if (asn1.offset !== bytes.byteLength) throw new Unsupported();
  new pkijs.SignedAndUnsignedAttributes({ type: 0, schema: asn1.result }); // throws if refused
}

// ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (DER) to r||s, as pkijs does.
function ecdsaRaw(der: Uint8Array, size: number): Buffer {
  const r = new BerReader(der);
  const [x, y] = kids(r, r.root(), UNIVERSAL, TAG_SEQUENCE, 2);
  const out = Buffer.alloc(2 * size);
  for (const [i, tlv] of [x!, y!].entries()) {
    let v = minimalInteger(r, tlv);
    if (v[0]! >= 0x80) throw new Unsupported(); // negative: pkijs reads it as unsigned
    if (v[0] === 0) v = v.subarray(1);
    if (v.length > size) throw bad("Mdm-Signature does not verify"); // pkijs throws here
    out.set(v, (i + 1) * size - v.length);
  }
  return out;
}

// AlgorithmIdentifier with absent or NULL parameters; returns the OID as hex.
function algorithm(r: BerReader, tlv: Tlv): string {
  const f = kidsOf(r, tlv, UNIVERSAL, TAG_SEQUENCE);
  if (f.length < 1 || f.length > 2) throw new Unsupported();
  const params = f[1];
  if (params && !(is(params, UNIVERSAL, TAG_NULL) && !params.constructed && params.end - params.contentStart === 0)) {
    throw new Unsupported();
  }
  return r.oidHex(f[0]!);
}

function kidsOf(r: BerReader, tlv: Tlv, cls: number, tag: number): readonly Tlv[] {
  if (!is(tlv, cls, tag) || !tlv.constructed) throw new Unsupported();
  return r.children(tlv);
}

function kids(r: BerReader, tlv: Tlv, cls: number, tag: number, count: number): readonly Tlv[] {
  const f = kidsOf(r, tlv, cls, tag);
  if (f.length !== count) throw new Unsupported();
  return f;
}

// INTEGER contents in minimal two's complement, so equal values have equal bytes.
function minimalInteger(r: BerReader, tlv: Tlv): Buffer {
  if (!is(tlv, UNIVERSAL, TAG_INTEGER)) throw new Unsupported();
  const c = r.content(tlv);
  if (c.length === 0) throw new Unsupported();
  if (c.length > 1 && ((c[0] === 0 && c[1]! < 0x80) || (c[0] === 0xff && c[1]! >= 0x80))) throw new Unsupported();
  return Buffer.from(c.buffer, c.byteOffset, c.byteLength);
}

function smallInt(r: BerReader, tlv: Tlv): number {
  const c = minimalInteger(r, tlv);
  if (c.length !== 1) throw new Unsupported();
  return c[0]!;
}
