// Test and simulator PKI: CAs, device identities, and Mdm-Signature headers.
// Keys come from node's keygen (thread pool, ~50-150 ms per RSA-2048 key): create
// identities once per test file and reuse them, or pass `keyPair` to share a key.
import { generateKeyPair as generateKeyPairCb, randomBytes, webcrypto, X509Certificate, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import * as x509 from "@peculiar/x509";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { cmsEngine } from "../engine.ts";
import { certFingerprint } from "../fingerprint.ts";

type WebCryptoKey = webcrypto.CryptoKey;
const subtle = webcrypto.subtle;
const wc = webcrypto as unknown as Crypto;
const generateKeyPairAsync = promisify(generateKeyPairCb);

const OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const OID_DATA = "1.2.840.113549.1.7.1";
const OID_SIGNED_DATA = "1.2.840.113549.1.7.2";
const DAY_MS = 24 * 60 * 60 * 1000;
const CLOCK_SKEW_MS = 5 * 60 * 1000;

export type KeyAlgorithm = "RSA" | "ECDSA";
export type SignatureDigest = "SHA-1" | "SHA-256";

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface PkiIdentity {
  commonName: string;
  certPem: string;
  certDer: Buffer;
  /** PKCS#8 PEM of the private key. */
  keyPem: string;
  cert: X509Certificate;
  /** The private key. */
  key: KeyObject;
  publicKey: KeyObject;
  /** Lowercase hex SHA-256 of the DER, as used for enrollment binding. */
  fingerprint: string;
}
export type CaIdentity = PkiIdentity;
export type DeviceIdentity = PkiIdentity;

export interface ValidityOptions {
  /** Lifetime from notBefore, used when notAfter is not given. */
  days?: number;
  /** Defaults to five minutes ago (tolerates clock skew). */
  notBefore?: Date;
  notAfter?: Date;
}

export interface CreateCaOptions extends ValidityOptions {
  commonName: string;
  /** Issue an intermediate under this CA instead of a self-signed root. */
  issuer?: CaIdentity;
  keyAlgorithm?: KeyAlgorithm;
  /** Reuse a key instead of generating one. */
  keyPair?: KeyPair;
  pathLength?: number;
}

export interface DeviceIdentityOptions extends ValidityOptions {
  commonName: string;
  keyAlgorithm?: KeyAlgorithm;
  /** Reuse a key (e.g. one per simulated fleet) to skip key generation. */
  keyPair?: KeyPair;
  /** EKU OIDs; default clientAuth. null leaves the extension out. */
  extendedKeyUsages?: string[] | null;
}

export async function generateKeyPair(algorithm: KeyAlgorithm = "RSA"): Promise<KeyPair> {
  if (algorithm === "RSA") return generateKeyPairAsync("rsa", { modulusLength: 2048, publicExponent: 0x10001 });
  return generateKeyPairAsync("ec", { namedCurve: "P-256" });
}

export async function createCa(options: CreateCaOptions): Promise<CaIdentity> {
  const keys = options.keyPair ?? (await generateKeyPair(options.keyAlgorithm ?? "RSA"));
  const publicKey = await publicCryptoKey(keys.publicKey);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(true, options.pathLength, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(publicKey, false, wc),
  ];
  if (options.issuer) extensions.push(await authorityKeyId(options.issuer));
  return issueCertificate([{ CN: [options.commonName] }], keys, options.issuer ?? null, extensions, validity(options, 3650));
}

export async function issueDeviceIdentity(ca: CaIdentity, options: DeviceIdentityOptions): Promise<DeviceIdentity> {
  const keys = options.keyPair ?? (await generateKeyPair(options.keyAlgorithm ?? "RSA"));
  const publicKey = await publicCryptoKey(keys.publicKey);
  const usage =
    keys.privateKey.asymmetricKeyType === "rsa"
      ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
      : x509.KeyUsageFlags.digitalSignature;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(usage, true),
    await x509.SubjectKeyIdentifierExtension.create(publicKey, false, wc),
    await authorityKeyId(ca),
  ];
  const ekus = options.extendedKeyUsages === undefined ? [OID_CLIENT_AUTH] : options.extendedKeyUsages;
  if (ekus !== null) extensions.push(new x509.ExtendedKeyUsageExtension(ekus, false));
  return issueCertificate([{ CN: [options.commonName] }], keys, ca, extensions, validity(options, 365));
}

export interface SignMdmBodyOptions {
  /** Default 'SHA-1', what Apple devices were seen to use. */
  digest?: SignatureDigest;
  /** Default false (Apple's shape); true adds contentType, signingTime, messageDigest. */
  signedAttributes?: boolean;
  /** Default true: BER with indefinite lengths on the outer layers, like Apple's client. */
  indefiniteLength?: boolean;
  /** Further certificates to put in the SignedData set (e.g. intermediates). */
  extraCertificates?: X509Certificate[];
}

/** Returns an `Mdm-Signature` header value: base64 CMS SignedData, detached, over `body`. */
export async function signMdmBody(
  identity: Pick<PkiIdentity, "cert" | "key">,
  body: Buffer,
  options: SignMdmBodyOptions = {},
): Promise<string> {
  const digest = options.digest ?? "SHA-1";
  const data = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer;
  const cert = pkijs.Certificate.fromBER(identity.cert.raw);
  const signerInfo = new pkijs.SignerInfo({
    version: 1,
    sid: new pkijs.IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }),
  });
  if (options.signedAttributes) {
    const messageDigest = await subtle.digest(digest, data);
    // Listed in DER SET OF order (by encoded length here), as CMS requires.
    signerInfo.signedAttrs = new pkijs.SignedAndUnsignedAttributes({
      type: 0,
      attributes: [
        new pkijs.Attribute({ type: "1.2.840.113549.1.9.3", values: [new asn1js.ObjectIdentifier({ value: OID_DATA })] }),
        new pkijs.Attribute({ type: "1.2.840.113549.1.9.5", values: [new asn1js.UTCTime({ valueDate: new Date() })] }),
        new pkijs.Attribute({ type: "1.2.840.113549.1.9.4", values: [new asn1js.OctetString({ valueHex: messageDigest })] }),
      ],
    });
  }
  const signedData = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID_DATA }),
    signerInfos: [signerInfo],
    certificates: [cert, ...(options.extraCertificates ?? []).map((c) => pkijs.Certificate.fromBER(c.raw))],
  });
  await signedData.sign(await signingKey(identity.key, digest), 0, digest, data, cmsEngine);

  const contentInfo = new pkijs.ContentInfo({ contentType: OID_SIGNED_DATA, content: signedData.toSchema(true) });
  const schema = contentInfo.toSchema() as asn1js.Sequence;
  if (options.indefiniteLength ?? true) markIndefinite(schema);
  return Buffer.from(schema.toBER(false)).toString("base64");
}

/** nginx `$ssl_client_escaped_cert` form: URL-escaped PEM. */
export function escapedPemHeader(certPem: string): string {
  return encodeURIComponent(certPem);
}

/** RFC 9440 Client-Cert form: `:base64(DER):`. */
export function rfc9440Header(certDer: Uint8Array): string {
  return `:${Buffer.from(certDer).toString("base64")}:`;
}

// ContentInfo, its [0], SignedData and EncapsulatedContentInfo: the layers Apple streams.
function markIndefinite(contentInfo: asn1js.Sequence): void {
  const explicit = contentInfo.valueBlock.value[1] as asn1js.Constructed;
  const signedData = explicit.valueBlock.value[0] as asn1js.Sequence;
  const encap = signedData.valueBlock.value[2] as asn1js.Sequence;
  for (const block of [contentInfo, explicit, signedData, encap]) block.lenBlock.isIndefiniteForm = true;
}

/** A certificate for `keys` with this subject, signed by `issuer` (self-signed when null). */
export async function issueCertificate(
  subject: x509.JsonName,
  keys: KeyPair,
  issuer: PkiIdentity | null,
  extensions: x509.Extension[],
  period: { notBefore: Date; notAfter: Date },
): Promise<PkiIdentity> {
  const signer = issuer ? issuer.key : keys.privateKey;
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40; // positive, fixed length
  const generated = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial.toString("hex"),
      subject,
      issuer: issuer ? new x509.X509Certificate(new Uint8Array(issuer.certDer)).subjectName : subject,
      notBefore: period.notBefore,
      notAfter: period.notAfter,
      publicKey: await publicCryptoKey(keys.publicKey),
      signingKey: (await signingKey(signer, "SHA-256")) as unknown as CryptoKey,
      signingAlgorithm:
        signer.asymmetricKeyType === "rsa"
          ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }
          : ({ name: "ECDSA", hash: "SHA-256" } as EcdsaParams),
      extensions,
    },
    wc,
  );
  return pkiIdentity(new X509Certificate(Buffer.from(generated.rawData)), keys);
}

/** A certificate and its key pair in the shape tests and SimDevice use. */
export function pkiIdentity(cert: X509Certificate, keys: KeyPair): PkiIdentity {
  return {
    commonName: /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? cert.subject,
    certPem: cert.toString(),
    certDer: Buffer.from(cert.raw),
    keyPem: keys.privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    cert,
    key: keys.privateKey,
    publicKey: keys.publicKey,
    fingerprint: certFingerprint(cert),
  };
}

export function validity(options: ValidityOptions, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const notBefore = options.notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS);
  const notAfter = options.notAfter ?? new Date(notBefore.getTime() + (options.days ?? defaultDays) * DAY_MS);
  return { notBefore, notAfter };
}

async function authorityKeyId(issuer: PkiIdentity): Promise<x509.Extension> {
  return x509.AuthorityKeyIdentifierExtension.create(await publicCryptoKey(issuer.publicKey), false, wc);
}

async function publicCryptoKey(key: KeyObject): Promise<CryptoKey> {
  const spki = key.export({ type: "spki", format: "der" });
  return (await subtle.importKey("spki", spki, importAlgorithm(key, "SHA-256"), true, ["verify"])) as unknown as CryptoKey;
}

// WebCrypto binds the hash to an RSA key, and pkijs signs with the key's hash when
// there are no signed attributes, so import once per (key, digest).
const signingKeys = new WeakMap<KeyObject, Map<SignatureDigest, Promise<WebCryptoKey>>>();

function signingKey(key: KeyObject, digest: SignatureDigest): Promise<WebCryptoKey> {
  let byDigest = signingKeys.get(key);
  if (!byDigest) signingKeys.set(key, (byDigest = new Map()));
  let imported = byDigest.get(digest);
  if (!imported) {
    const pkcs8 = key.export({ type: "pkcs8", format: "der" });
    imported = subtle.importKey("pkcs8", pkcs8, importAlgorithm(key, digest), false, ["sign"]);
    byDigest.set(digest, imported);
  }
  return imported;
}

function importAlgorithm(key: KeyObject, digest: SignatureDigest): webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams {
  if (key.asymmetricKeyType === "rsa") return { name: "RSASSA-PKCS1-v1_5", hash: digest };
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === "prime256v1" ? "P-256" : curve === "secp384r1" ? "P-384" : curve === "secp521r1" ? "P-521" : undefined;
    if (namedCurve) return { name: "ECDSA", namedCurve };
  }
  throw new Error(`unsupported key type ${key.asymmetricKeyType ?? "unknown"}`);
}
