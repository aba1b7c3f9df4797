// The CMS (RFC 5652) layers of a SCEP message: SignedData around EnvelopedData
// around the payload, as src/scep reads and writes them. Reading uses the
// strict BER reader (ber.ts), which hands back the exact bytes of each element
// (the signed attributes are verified over the bytes as received, the CSR over
// its own); writing uses the DER writer next to that reader (der.ts). The
// cryptography is node's: hashes, RSA signatures, AES and 3DES-CBC, and RSA key
// transport (PKCS#1 v1.5 decryption with implicit rejection, rsa-pkcs1.ts).
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  constants,
  publicEncrypt,
  randomBytes,
  sign,
  verify,
  type KeyObject,
  type X509Certificate,
} from "node:crypto";
import {
  BerError,
  BerReader,
  CONTEXT,
  is,
  TAG_INTEGER,
  TAG_NULL,
  TAG_OCTET_STRING,
  TAG_SEQUENCE,
  TAG_SET,
  UNIVERSAL,
  type Tlv,
} from "./ber.ts";
import { certFields, certInfo, type CertInfo } from "./cms-certs.ts";
import { costlyKeyProblem } from "./key-cost.ts";
import {
  algorithm,
  explicit,
  implicitPrimitive,
  integer,
  nullValue,
  octetString,
  oid,
  oidHex,
  retag,
  sequence,
  setOf,
  sortedTlv,
  tlv,
} from "./der.ts";
import { DIGEST_OIDS, DIGESTS, OIDS, RSA_SIGNATURES, type Digest } from "./oids.ts";
import { decryptPkcs1v15 } from "./rsa-pkcs1.ts";

export type CmsErrorKind = "malformed" | "unsupported-algorithm" | "bad-signature" | "cannot-decrypt";

/** Why a CMS layer was refused; never carries secret material. */
export class CmsError extends Error {
  constructor(
    readonly kind: CmsErrorKind,
    message: string,
  ) {
    super(message);
    this.name = "CmsError";
  }
}

const malformed = (what: string) => new CmsError("malformed", what);

const HEX = {
  data: oidHex(OIDS.data),
  signedData: oidHex(OIDS.signedData),
  envelopedData: oidHex(OIDS.envelopedData),
  contentType: oidHex(OIDS.contentType),
  messageDigest: oidHex(OIDS.messageDigest),
  rsaEncryption: oidHex(OIDS.rsaEncryption),
};

// ---------------------------------------------------------------------------
// Content encryption: what SCEP clients use (RFC 8894 3.5.2 caps AES and DES3).

export type CipherName = "des-cbc" | "des-ede3-cbc" | "aes-128-cbc" | "aes-192-cbc" | "aes-256-cbc";

interface CipherSpec {
  name: CipherName;
  oid: string;
  keyLength: number;
  ivLength: number;
}

export const CIPHERS: readonly CipherSpec[] = [
  // Single DES: never advertised, but micromdm's scepclient (v2.1.0, Go's
  // pkcs7 default) sends it whatever the caps say, and so do old clients.
  { name: "des-cbc", oid: "1.3.14.3.2.7", keyLength: 8, ivLength: 8 },
  { name: "des-ede3-cbc", oid: "1.2.840.113549.3.7", keyLength: 24, ivLength: 8 },
  { name: "aes-128-cbc", oid: "2.16.840.1.101.3.4.1.2", keyLength: 16, ivLength: 16 },
  { name: "aes-192-cbc", oid: "2.16.840.1.101.3.4.1.22", keyLength: 24, ivLength: 16 },
  { name: "aes-256-cbc", oid: "2.16.840.1.101.3.4.1.42", keyLength: 32, ivLength: 16 },
];
const CIPHERS_BY_OID = new Map(CIPHERS.map((c) => [oidHex(c.oid), c]));
const cipherSpec = (name: CipherName): CipherSpec => CIPHERS.find((c) => c.name === name)!;

// OpenSSL 3 keeps single DES in its legacy provider, which node does not load.
// DES-EDE3 with the same key three times is DES (encrypt, decrypt, encrypt
// with one key is one encryption), so des-cbc runs as des-ede3-cbc with K|K|K.
function nodeCipher(name: CipherName, key: Buffer): { algorithm: string; key: Buffer } {
  return name === "des-cbc" ? { algorithm: "des-ede3-cbc", key: Buffer.concat([key, key, key]) } : { algorithm: name, key };
}

function encryptContent(name: CipherName, key: Buffer, iv: Buffer, plain: Uint8Array): Buffer {
  const c = nodeCipher(name, key);
  const cipher = createCipheriv(c.algorithm, c.key, iv);
  return Buffer.concat([cipher.update(plain), cipher.final()]);
}

function decryptContent(name: CipherName, key: Buffer, iv: Uint8Array, data: Uint8Array): Buffer {
  const c = nodeCipher(name, key);
  try {
    const decipher = createDecipheriv(c.algorithm, c.key, iv);
    return Buffer.concat([decipher.update(data), decipher.final()]);
  } catch {
    // Wrong key (including the stand-in of a bad RSA padding) or damaged data: one answer for all.
    throw new CmsError("cannot-decrypt", "the request cannot be decrypted with the CA key");
  }
}

/** A DES key with odd parity in every byte, as DES keys are defined. */
function desKey(length: number): Buffer {
  const key = randomBytes(length);
  for (let i = 0; i < key.length; i++) {
    let b = key[i]! & 0xfe;
    let ones = 0;
    for (let v = b; v; v >>= 1) ones += v & 1;
    if (ones % 2 === 0) b |= 1;
    key[i] = b;
  }
  return key;
}

// ---------------------------------------------------------------------------
// Reading.

/** A reader over a whole input whose every BER complaint becomes CmsError("malformed"). */
function reader(der: Uint8Array, what: string): { r: BerReader; root: Tlv } {
  try {
    const r = new BerReader(der);
    return { r, root: r.root() };
  } catch (err) {
    throw rethrow(err, what);
  }
}

function rethrow(err: unknown, what: string): unknown {
  if (err instanceof BerError) return malformed(`${what}: ${err.message}`);
  return err;
}

function kidsOf(r: BerReader, t: Tlv, cls: number, tag: number, what: string): readonly Tlv[] {
  if (!is(t, cls, tag) || !t.constructed) throw malformed(`${what}: unexpected element`);
  return r.children(t);
}

function oidOf(r: BerReader, t: Tlv, what: string): string {
  if (!is(t, UNIVERSAL, 6)) throw malformed(`${what}: OBJECT IDENTIFIER expected`);
  return r.oidHex(t);
}

/** AlgorithmIdentifier: the OID (hex) and the parameters element, if any. */
function algorithmOf(r: BerReader, t: Tlv, what: string): { oid: string; params?: Tlv } {
  const f = kidsOf(r, t, UNIVERSAL, TAG_SEQUENCE, what);
  if (f.length < 1 || f.length > 2) throw malformed(`${what}: bad AlgorithmIdentifier`);
  return { oid: oidOf(r, f[0]!, what), params: f[1] };
}

function nullOrAbsent(r: BerReader, params: Tlv | undefined): boolean {
  return params === undefined || (is(params, UNIVERSAL, TAG_NULL) && !params.constructed && r.content(params).length === 0);
}

function integerContent(r: BerReader, t: Tlv, what: string): Buffer {
  if (!is(t, UNIVERSAL, TAG_INTEGER) || t.constructed) throw malformed(`${what}: INTEGER expected`);
  const c = r.content(t);
  if (c.length === 0) throw malformed(`${what}: empty INTEGER`);
  return Buffer.from(c);
}

function smallInt(r: BerReader, t: Tlv, what: string): number {
  const c = integerContent(r, t, what);
  if (c.length > 2) throw malformed(`${what}: version out of range`);
  return c.readUIntBE(0, c.length);
}

/** An OCTET STRING, or an [n] IMPLICIT one, primitive or segmented. */
function octets(r: BerReader, t: Tlv, what: string): Buffer {
  if (is(t, UNIVERSAL, TAG_OCTET_STRING)) return Buffer.from(r.octets(t));
  if (t.cls !== CONTEXT) throw malformed(`${what}: OCTET STRING expected`);
  if (!t.constructed) return Buffer.from(r.content(t));
  return Buffer.concat(r.children(t).map((k) => Buffer.from(r.octets(k))));
}

/** ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT content }: the content element. */
function contentInfo(r: BerReader, root: Tlv, expected: string, what: string): Tlv {
  const f = kidsOf(r, root, UNIVERSAL, TAG_SEQUENCE, what);
  if (f.length !== 2) throw malformed(`${what}: ContentInfo expected`);
  if (oidOf(r, f[0]!, what) !== expected) throw malformed(`${what}: unexpected content type`);
  const inner = kidsOf(r, f[1]!, CONTEXT, 0, what);
  if (inner.length !== 1) throw malformed(`${what}: ContentInfo expected`);
  return inner[0]!;
}

export interface IssuerAndSerial {
  issuer: Buffer;
  serial: Buffer;
}

/** One value of a signed attribute: its tag and contents. */
export interface AttributeValue {
  cls: number;
  tag: number;
  constructed: boolean;
  content: Buffer;
}

export interface ParsedSigner {
  sid: IssuerAndSerial | { keyId: Buffer };
  /** Undefined: a digest algorithm we do not know (the OID hex is in digestOid). */
  digest: Digest | undefined;
  digestOid: string;
  /** The signed attributes as received, with the SET OF tag the signature covers. */
  signedAttrsDer: Buffer;
  attributes: Map<string, AttributeValue[]>;
  signatureAlgorithm: string;
  signature: Buffer;
}

export interface ParsedSignedData {
  eContentType: string;
  /** Absent in a detached or empty SignedData (a SCEP failure reply). */
  eContent?: Buffer;
  /** The certificates' DER, in the order sent (other CertificateChoices left out). */
  certificates: Buffer[];
  signers: ParsedSigner[];
}

/** Parses ContentInfo(SignedData); any structural problem is CmsError("malformed"). */
export function parseSignedData(der: Uint8Array): ParsedSignedData {
  const what = "SignedData";
  const { r, root } = reader(der, what);
  try {
    const sd = kidsOf(r, contentInfo(r, root, HEX.signedData, what), UNIVERSAL, TAG_SEQUENCE, what);
    if (sd.length < 4) throw malformed(`${what}: too few fields`);
    const [version, digestAlgorithms, encap] = sd;
    smallInt(r, version!, what);
    kidsOf(r, digestAlgorithms!, UNIVERSAL, TAG_SET, what);
    const e = kidsOf(r, encap!, UNIVERSAL, TAG_SEQUENCE, what);
    if (e.length < 1 || e.length > 2) throw malformed(`${what}: bad encapContentInfo`);
    const eContentType = oidOf(r, e[0]!, what);
    let eContent: Buffer | undefined;
    if (e[1]) {
      const wrapped = kidsOf(r, e[1], CONTEXT, 0, what);
      if (wrapped.length !== 1) throw malformed(`${what}: bad eContent`);
      eContent = octets(r, wrapped[0]!, what);
    }
    const certificates: Buffer[] = [];
    let i = 3;
    for (; i < sd.length - 1; i++) {
      const t = sd[i]!;
      if (is(t, CONTEXT, 0) && t.constructed) {
        for (const c of r.children(t)) if (is(c, UNIVERSAL, TAG_SEQUENCE)) certificates.push(Buffer.from(r.bytes(c)));
      } else if (!(is(t, CONTEXT, 1) && t.constructed)) {
        throw malformed(`${what}: unexpected field`);
      }
    }
    const signers = kidsOf(r, sd[sd.length - 1]!, UNIVERSAL, TAG_SET, what).map((s) => signerInfo(r, s));
    return { eContentType, eContent, certificates, signers };
  } catch (err) {
    throw rethrow(err, what);
  }
}

// SignerInfo ::= SEQUENCE { version, sid, digestAlgorithm, [0] IMPLICIT signedAttrs OPTIONAL,
//   signatureAlgorithm, signature OCTET STRING, [1] IMPLICIT unsignedAttrs OPTIONAL }
function signerInfo(r: BerReader, t: Tlv): ParsedSigner {
  const what = "SignerInfo";
  const f = kidsOf(r, t, UNIVERSAL, TAG_SEQUENCE, what);
  if (f.length < 5) throw malformed(`${what}: too few fields`);
  const [version, sidTlv, digestAlgorithm, attrs] = f;
  smallInt(r, version!, what);
  let sid: ParsedSigner["sid"];
  if (is(sidTlv!, UNIVERSAL, TAG_SEQUENCE)) {
    const s = kidsOf(r, sidTlv!, UNIVERSAL, TAG_SEQUENCE, what);
    if (s.length !== 2 || !is(s[0]!, UNIVERSAL, TAG_SEQUENCE)) throw malformed(`${what}: bad issuerAndSerialNumber`);
    sid = { issuer: Buffer.from(r.bytes(s[0]!)), serial: integerContent(r, s[1]!, what) };
  } else if (is(sidTlv!, CONTEXT, 0) && !sidTlv!.constructed) {
    sid = { keyId: Buffer.from(r.content(sidTlv!)) };
  } else {
    throw malformed(`${what}: bad signer identifier`);
  }
  const digestOid = algorithmOf(r, digestAlgorithm!, what).oid;
  // SCEP requires signed attributes: that is where its fields travel.
  if (!is(attrs!, CONTEXT, 0) || !attrs!.constructed) throw malformed(`${what}: no signed attributes`);
  if (attrs!.indefinite) throw malformed(`${what}: signed attributes must have a definite length`);
  if (f.length < 6) throw malformed(`${what}: too few fields`);
  const signatureAlgorithm = algorithmOf(r, f[4]!, what).oid;
  const sig = f[5]!;
  if (!is(sig, UNIVERSAL, TAG_OCTET_STRING)) throw malformed(`${what}: signature expected`);
  const attributes = new Map<string, AttributeValue[]>();
  for (const a of r.children(attrs!)) {
    const [type, values, ...rest] = kidsOf(r, a, UNIVERSAL, TAG_SEQUENCE, what);
    if (!type || !values || rest.length) throw malformed(`${what}: bad attribute`);
    const key = oidOf(r, type, what);
    if (attributes.has(key)) throw malformed(`${what}: attribute given twice`);
    attributes.set(
      key,
      kidsOf(r, values, UNIVERSAL, TAG_SET, what).map((v) => ({
        cls: v.cls,
        tag: v.tag,
        constructed: v.constructed,
        content: Buffer.from(r.buf.subarray(v.contentStart, v.contentEnd)),
      })),
    );
  }
  const signedAttrsDer = Buffer.from(r.bytes(attrs!));
  signedAttrsDer[0] = 0x31;
  return {
    sid,
    digest: DIGESTS.get(digestOid),
    digestOid,
    signedAttrsDer,
    attributes,
    signatureAlgorithm,
    signature: Buffer.from(r.octets(sig)),
  };
}

/** The single value of an attribute, or undefined when absent; more than one is malformed. */
export function singleValue(signer: ParsedSigner, dotted: string): AttributeValue | undefined {
  const values = signer.attributes.get(oidHex(dotted));
  if (values === undefined) return undefined;
  if (values.length !== 1) throw malformed(`attribute ${dotted} must have exactly one value`);
  return values[0];
}

/** The certificate a signer names, among those carried (parsed by node and pkijs alike). */
export function findSignerCertificate(sd: ParsedSignedData, signer: ParsedSigner): CertInfo | undefined {
  for (const der of sd.certificates) {
    const info = certInfo(der);
    if (!info) continue;
    if (
      "keyId" in signer.sid
        ? info.keyHash.equals(signer.sid.keyId)
        : info.serial.equals(signer.sid.serial) && info.issuer.equals(signer.sid.issuer)
    ) {
      return info;
    }
  }
  return undefined;
}

/**
 * Checks a signer's signature with an RSA certificate key: content-type id-data
 * and message-digest attributes over `content`, the signature over the signed
 * attributes. Throws CmsError; returns the digest used.
 */
export function verifySigner(signer: ParsedSigner, key: KeyObject, content: Uint8Array): Digest {
  if (!signer.digest) throw new CmsError("unsupported-algorithm", "unsupported digest algorithm");
  const sigHash = RSA_SIGNATURES.get(signer.signatureAlgorithm);
  if (signer.signatureAlgorithm !== HEX.rsaEncryption && sigHash === undefined) {
    throw new CmsError("unsupported-algorithm", "unsupported signature algorithm (RSA PKCS#1 v1.5 only)");
  }
  if (sigHash !== undefined && sigHash !== signer.digest) throw new CmsError("bad-signature", "signature and digest algorithms disagree");
  if (key.asymmetricKeyType !== "rsa") throw new CmsError("unsupported-algorithm", "the signer's key is not RSA");
  const contentType = singleValue(signer, OIDS.contentType);
  const messageDigest = singleValue(signer, OIDS.messageDigest);
  if (contentType?.tag !== 6 || contentType.content.toString("hex") !== HEX.data) {
    throw new CmsError("bad-signature", "the content-type attribute must be id-data");
  }
  if (!messageDigest || messageDigest.tag !== TAG_OCTET_STRING || messageDigest.constructed) {
    throw new CmsError("bad-signature", "no message-digest attribute");
  }
  const actual = createHash(signer.digest).update(content).digest();
  if (!actual.equals(messageDigest.content)) throw new CmsError("bad-signature", "the message digest does not match");
  const costly = costlyKeyProblem(key);
  if (costly) throw new CmsError("bad-signature", costly);
  let ok = false;
  try {
    ok = verify(signer.digest, signer.signedAttrsDer, key, signer.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new CmsError("bad-signature", "the signature does not verify");
  return signer.digest;
}

export interface ParsedEnvelope {
  recipients: Array<{ rid: IssuerAndSerial | { keyId: Buffer }; keyEncryption: string; encryptedKey: Buffer }>;
  cipher: CipherName | undefined;
  iv: Buffer | undefined;
  encryptedContent: Buffer;
}

/** Parses ContentInfo(EnvelopedData) with key-transport recipients. */
export function parseEnvelopedData(der: Uint8Array): ParsedEnvelope {
  const what = "EnvelopedData";
  const { r, root } = reader(der, what);
  try {
    const ed = kidsOf(r, contentInfo(r, root, HEX.envelopedData, what), UNIVERSAL, TAG_SEQUENCE, what);
    let i = 0;
    smallInt(r, ed[i++]!, what);
    if (ed[i] && is(ed[i]!, CONTEXT, 0)) i++; // originatorInfo
    const recipientSet = ed[i++];
    const eci = ed[i++];
    if (!recipientSet || !eci) throw malformed(`${what}: too few fields`);
    const recipients: ParsedEnvelope["recipients"] = [];
    for (const ri of kidsOf(r, recipientSet, UNIVERSAL, TAG_SET, what)) {
      // Only KeyTransRecipientInfo (a SEQUENCE); key agreement and others are [n]-tagged.
      if (!is(ri, UNIVERSAL, TAG_SEQUENCE)) continue;
      const f = kidsOf(r, ri, UNIVERSAL, TAG_SEQUENCE, what);
      if (f.length !== 4) throw malformed(`${what}: bad KeyTransRecipientInfo`);
      smallInt(r, f[0]!, what);
      let rid: IssuerAndSerial | { keyId: Buffer };
      if (is(f[1]!, UNIVERSAL, TAG_SEQUENCE)) {
        const s = kidsOf(r, f[1]!, UNIVERSAL, TAG_SEQUENCE, what);
        if (s.length !== 2 || !is(s[0]!, UNIVERSAL, TAG_SEQUENCE)) throw malformed(`${what}: bad issuerAndSerialNumber`);
        rid = { issuer: Buffer.from(r.bytes(s[0]!)), serial: integerContent(r, s[1]!, what) };
      } else if (is(f[1]!, CONTEXT, 0) && !f[1]!.constructed) {
        rid = { keyId: Buffer.from(r.content(f[1]!)) };
      } else {
        throw malformed(`${what}: bad recipient identifier`);
      }
      const alg = algorithmOf(r, f[2]!, what);
      recipients.push({
        rid,
        keyEncryption: nullOrAbsent(r, alg.params) ? alg.oid : `${alg.oid}+params`,
        encryptedKey: octets(r, f[3]!, what),
      });
    }
    const c = kidsOf(r, eci, UNIVERSAL, TAG_SEQUENCE, what);
    if (c.length < 2 || c.length > 3) throw malformed(`${what}: bad EncryptedContentInfo`);
    oidOf(r, c[0]!, what);
    const alg = algorithmOf(r, c[1]!, what);
    const spec = CIPHERS_BY_OID.get(alg.oid);
    let iv: Buffer | undefined;
    if (spec) {
      if (!alg.params || !is(alg.params, UNIVERSAL, TAG_OCTET_STRING)) throw malformed(`${what}: no IV`);
      iv = Buffer.from(r.octets(alg.params));
      if (iv.length !== spec.ivLength) throw malformed(`${what}: wrong IV length`);
    }
    if (!c[2] || !is(c[2], CONTEXT, 0)) throw malformed(`${what}: no encrypted content`);
    return { recipients, cipher: spec?.name, iv, encryptedContent: octets(r, c[2], what) };
  } catch (err) {
    throw rethrow(err, what);
  }
}

/**
 * Decrypts an EnvelopedData addressed to `cert` (the recipient naming it, or,
 * unless `namedOnly`, the only one: SCEP clients may name the CA loosely).
 * Bad RSA padding and a wrong key end in the same CmsError.
 */
export function decryptEnvelope(
  env: ParsedEnvelope,
  cert: X509Certificate,
  key: KeyObject,
  namedOnly = false,
): { content: Buffer; cipher: CipherName } {
  if (!env.cipher || !env.iv)
    throw new CmsError("unsupported-algorithm", "unsupported content encryption algorithm (AES-CBC, 3DES-CBC or DES-CBC)");
  const ours = certIds(cert);
  const recipient =
    env.recipients.find((ri) => ("keyId" in ri.rid ? false : ri.rid.serial.equals(ours.serial) && ri.rid.issuer.equals(ours.issuer))) ??
    (env.recipients.length === 1 && !namedOnly ? env.recipients[0] : undefined);
  if (!recipient) throw new CmsError("cannot-decrypt", "the request is not encrypted to the CA certificate");
  if (recipient.keyEncryption !== HEX.rsaEncryption)
    throw new CmsError("unsupported-algorithm", "unsupported key encryption algorithm (rsaEncryption only)");
  const spec = cipherSpec(env.cipher);
  const contentKey = decryptPkcs1v15(key, recipient.encryptedKey, spec.keyLength);
  const content = decryptContent(env.cipher, contentKey, env.iv, env.encryptedContent);
  contentKey.fill(0);
  return { content, cipher: env.cipher };
}

/** tbsCertificate's issuer (exact bytes) and serial contents. */
export function certIds(cert: X509Certificate): IssuerAndSerial {
  const { issuer, serial } = certFields(cert.raw);
  return { issuer, serial };
}

/** tbsCertificate's subject Name, exact bytes. */
export function certSubjectDer(cert: X509Certificate): Buffer {
  return certFields(cert.raw).subject;
}

// ---------------------------------------------------------------------------
// Writing.

const issuerAndSerial = (ids: IssuerAndSerial): Buffer => sequence(ids.issuer, tlv(0x02, ids.serial));

const contentInfoOf = (type: string, content: Uint8Array): Buffer => sequence(oid(type), explicit(0, content));

/** ContentInfo(EnvelopedData): `content` encrypted with `cipher` for the RSA key of `recipient`. */
export function buildEnvelopedData(content: Uint8Array, recipient: X509Certificate, cipher: CipherName): Buffer {
  const spec = cipherSpec(cipher);
  const key = cipher.startsWith("des") ? desKey(spec.keyLength) : randomBytes(spec.keyLength);
  const iv = randomBytes(spec.ivLength);
  const encrypted = encryptContent(cipher, key, iv, content);
  // PKCS#1 v1.5 encryption is still allowed in node (only decryption is refused).
  const encryptedKey = publicEncrypt({ key: recipient.publicKey, padding: constants.RSA_PKCS1_PADDING }, key);
  key.fill(0);
  const ktri = sequence(
    integer(0),
    issuerAndSerial(certIds(recipient)),
    algorithm(OIDS.rsaEncryption, nullValue()),
    octetString(encryptedKey),
  );
  const eci = sequence(oid(OIDS.data), algorithm(spec.oid, octetString(iv)), implicitPrimitive(0, encrypted));
  return contentInfoOf(OIDS.envelopedData, sequence(integer(0), setOf(ktri), eci));
}

/** One signed attribute (type and its single value, already encoded). */
export const attribute = (dotted: string, value: Uint8Array): Buffer => sequence(oid(dotted), setOf(value));

export interface SignOptions {
  /** The encapsulated id-data content; absent for a reply without content. */
  content?: Uint8Array;
  signerCert: X509Certificate;
  signerKey: KeyObject;
  digest: Digest;
  /** Further signed attributes (content-type and message-digest are added). */
  attributes: Buffer[];
  /** Certificates to carry; default the signer's. */
  certificates?: Uint8Array[];
}

/** ContentInfo(SignedData) with one RSA signer and signed attributes. */
export function buildSignedData(o: SignOptions): Buffer {
  const content = o.content ?? Buffer.alloc(0);
  const attrs = [
    attribute(OIDS.contentType, oid(OIDS.data)),
    attribute(OIDS.messageDigest, octetString(createHash(o.digest).update(content).digest())),
    ...o.attributes,
  ];
  const signedAttrs = setOf(...attrs); // DER SET OF: this is what gets signed
  const signature = sign(o.digest, signedAttrs, o.signerKey);
  const signerInfo = sequence(
    integer(1),
    issuerAndSerial(certIds(o.signerCert)),
    algorithm(DIGEST_OIDS[o.digest]),
    retag(0xa0, signedAttrs), // [0] IMPLICIT
    algorithm(OIDS.rsaEncryption, nullValue()),
    octetString(signature),
  );
  const encap = o.content === undefined ? sequence(oid(OIDS.data)) : sequence(oid(OIDS.data), explicit(0, octetString(o.content)));
  const certs = (o.certificates ?? [o.signerCert.raw]).map((c) => Buffer.from(c));
  const sd = sequence(integer(1), setOf(algorithm(DIGEST_OIDS[o.digest])), encap, sortedTlv(0xa0, certs), setOf(signerInfo));
  return contentInfoOf(OIDS.signedData, sd);
}

/** A degenerate, certificates-only SignedData (RFC 8894 3.3.2 for the issued certificate). */
export function buildCertsOnly(certs: Uint8Array[]): Buffer {
  const sd = sequence(integer(1), setOf(), sequence(oid(OIDS.data)), sortedTlv(0xa0, certs), setOf());
  return contentInfoOf(OIDS.signedData, sd);
}
