// What the Mdm-Signature fast path needs from each certificate of a SignedData set,
// read once per distinct certificate: a device sends the same one on every request.
import { createHash, X509Certificate, type KeyObject } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { BerReader, is, CONTEXT, TAG_BIT_STRING, TAG_INTEGER, TAG_SEQUENCE, UNIVERSAL } from "./ber.ts";
import { BoundedCache } from "./cache.ts";

export interface CertInfo {
  cert: X509Certificate;
  /** tbsCertificate.issuer, exact bytes: IssuerAndSerialNumber matches on these. */
  issuer: Buffer;
  /** tbsCertificate.serialNumber contents. */
  serial: Buffer;
  /** SHA-1 of the subjectPublicKey bits, which is what pkijs matches a subjectKeyIdentifier sid with. */
  keyHash: Buffer;
  key: KeyObject;
  /** Hash-and-sign scheme WebCrypto would use with this key, or null if the fast path does not handle it. */
  scheme: "rsa" | "ecdsa" | null;
  /** ECDSA field size in bytes (P-256: 32), for the r||s signature form. */
  ecSize: number;
}

// Curves WebCrypto (and so pkijs) verifies with, by JWK name.
const EC_SIZES: Record<string, number> = { "P-256": 32, "P-384": 48, "P-521": 66 };

// A certificate sits at depth 4 in a ContentInfo (ContentInfo, [0], SignedData, [0],
// certificate), and asn1js refuses anything deeper than 100 levels.
const PKIJS_CERT_MAX_DEPTH = 96;

const cache = new BoundedCache<CertInfo | null>(1024);

/**
 * The certificate's details, or null if the fast path must leave the whole signature
 * to pkijs: node cannot parse it, or pkijs would not (pkijs refuses the entire SignedData
 * over one certificate it cannot parse, e.g. a name with the reserved tag
 * [UNIVERSAL 15] that OpenSSL reads, so accepting it here would accept more than pkijs).
 */
export function certInfo(der: Uint8Array): CertInfo | null {
  const id = createHash("sha256").update(der).digest("base64");
  const hit = cache.get(id);
  if (hit !== undefined) return hit;
  const info = describe(der);
  cache.set(id, info, Number.POSITIVE_INFINITY);
  return info;
}

function describe(der: Uint8Array): CertInfo | null {
  try {
    const parsed = pkijsCertificate(der);
    if (!parsed) return null;
    const cert = new X509Certificate(der);
    const { issuer, serial, keyBits } = certFields(der);
    const key = cert.publicKey;
    return { cert, issuer, serial, keyHash: createHash("sha1").update(keyBits).digest(), key, ...scheme(key, parsed) };
  } catch {
    return null;
  }
}

// The same parse pkijs does for each certificate inside SignedData.fromSchema.
function pkijsCertificate(der: Uint8Array): pkijs.Certificate | null {
  try {
    const asn1 = asn1js.fromBER(der, { maxDepth: PKIJS_CERT_MAX_DEPTH });
    if (asn1.offset !== der.byteLength) return null;
    return new pkijs.Certificate({ schema: asn1.result });
  } catch {
    return null;
  }
}

// pkijs verifies with the key as it reads it (handed to WebCrypto as a JWK), not with
// OpenSSL's reading of the certificate, and the two differ on odd encodings: OpenSSL
// masks a BIT STRING's unused bits, pkijs ignores them (found by fuzzing: a flipped
// unused-bits octet turned e=65537 into 65536 for OpenSSL only). So verify here only
// when both read the same key.
function scheme(key: KeyObject, parsed: pkijs.Certificate): Pick<CertInfo, "scheme" | "ecSize"> {
  const theirs = parsed.subjectPublicKeyInfo.toJSON() as unknown as Record<string, unknown>;
  let ours: JsonWebKey;
  try {
    ours = key.export({ format: "jwk" });
  } catch {
    return { scheme: null, ecSize: 0 }; // e.g. a DSA or brainpool key: not ours to verify
  }
  if (key.asymmetricKeyType === "rsa" && theirs.kty === "RSA" && theirs.n === ours.n && theirs.e === ours.e) {
    return { scheme: "rsa", ecSize: 0 };
  }
  const ecSize = EC_SIZES[ours.crv ?? ""] ?? 0;
  if (
    key.asymmetricKeyType === "ec" &&
    ecSize > 0 &&
    theirs.kty === "EC" &&
    theirs.crv === ours.crv &&
    theirs.x === ours.x &&
    theirs.y === ours.y
  ) {
    return { scheme: "ecdsa", ecSize };
  }
  return { scheme: null, ecSize: 0 };
}

// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
//   signature, issuer, validity, subject, subjectPublicKeyInfo SEQUENCE { algorithm, BIT STRING } ... } ... }
/**
 * tbsCertificate's serial (contents), issuer and subject (exact bytes) and
 * subjectPublicKey bits: what CMS identifies a certificate by (issuer and
 * serial) and what a renewal must keep (subject).
 */
export function certFields(der: Uint8Array): { issuer: Buffer; serial: Buffer; subject: Buffer; keyBits: Uint8Array } {
  const r = new BerReader(der);
  const tbs = r.children(r.root())[0];
  if (!tbs || !is(tbs, UNIVERSAL, TAG_SEQUENCE)) throw new Error("no tbsCertificate");
  const f = r.children(tbs);
  const at = f[0] && is(f[0], CONTEXT, 0) ? 1 : 0;
  const [serial, , issuer, , subject, spki] = f.slice(at);
  if (!serial || !is(serial, UNIVERSAL, TAG_INTEGER) || !issuer || !subject || !spki) throw new Error("short tbsCertificate");
  const s = r.content(serial);
  // Serials are matched byte for byte, so they must be minimal (OpenSSL insists anyway).
  if (s.length === 0 || (s.length > 1 && ((s[0] === 0 && s[1]! < 0x80) || (s[0] === 0xff && s[1]! >= 0x80)))) {
    throw new Error("non-minimal serial");
  }
  const bitString = r.children(spki)[1];
  if (!bitString || !is(bitString, UNIVERSAL, TAG_BIT_STRING)) throw new Error("no subjectPublicKey");
  const keyBits = r.content(bitString).subarray(1); // after the unused-bits octet
  return { issuer: Buffer.from(r.bytes(issuer)), serial: Buffer.from(s), subject: Buffer.from(r.bytes(subject)), keyBits };
}
