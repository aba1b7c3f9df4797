// Signs a configuration profile: a DER CMS SignedData (RFC 5652) with the
// profile encapsulated (not detached), SHA-256, signed attributes
// (contentType, signingTime, messageDigest), and the signer's certificate and
// chain. This is what `openssl cms -sign -nodetach -binary -md sha256` and
// macOS `security cms -S` produce; devices show a signed profile as
// "Verified" when the chain leads to a root they trust.
//
// Written with the small DER writer of src/identity/der.ts instead of pkijs:
// certificates and names are copied byte for byte, and the SET OF ordering
// DER requires is explicit.
import { createHash, createPrivateKey, sign as signCb, X509Certificate, type KeyObject } from "node:crypto";
import fs from "node:fs";
import { promisify } from "node:util";
import * as asn1js from "asn1js";
import { certFields } from "../identity/cms-certs.ts";
import { pemBlocks } from "../identity/pem.ts";
import { explicit, integer, nullValue, octetString, oid, retag, sequence, setOf, tlv } from "../identity/der.ts";

export interface ProfileSigner {
  /** PEM certificates: the signer's and, optionally, its chain (any order). */
  certPem: string;
  /** Unencrypted PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC) of one of the certificates. */
  keyPem: string;
}

export class ProfileSignerError extends Error {}

const OID = {
  data: "1.2.840.113549.1.7.1",
  signedData: "1.2.840.113549.1.7.2",
  contentType: "1.2.840.113549.1.9.3",
  messageDigest: "1.2.840.113549.1.9.4",
  signingTime: "1.2.840.113549.1.9.5",
  sha256: "2.16.840.1.101.3.4.2.1",
  rsaEncryption: "1.2.840.113549.1.1.1",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
};

const signAsync = promisify(signCb);

/** Signs `profile` (the plist bytes, kept exactly) and returns the DER SignedData. */
export async function signProfile(profile: Buffer, signer: ProfileSigner, now = new Date()): Promise<Buffer> {
  const { key, chain } = resolveSigner(signer.certPem, signer.keyPem, "the profile signer");
  const cert = chain[0]!;
  if (now.getTime() > Date.parse(cert.validTo)) throw new ProfileSignerError(`the profile signing certificate expired on ${cert.validTo}`);
  if (now.getTime() < Date.parse(cert.validFrom))
    throw new ProfileSignerError(`the profile signing certificate is not valid before ${cert.validFrom}`);

  const sha256 = sequence(oid(OID.sha256)); // RFC 5754: parameters absent
  const signedAttrs = setOf(
    sequence(oid(OID.contentType), setOf(oid(OID.data))),
    sequence(oid(OID.signingTime), setOf(time(now))),
    sequence(oid(OID.messageDigest), setOf(octetString(createHash("sha256").update(profile).digest()))),
  );
  // The signature covers the attributes as a SET (tag 0x31); the SignerInfo carries them as [0] IMPLICIT.
  const signature = await signAsync("sha256", signedAttrs, key.key); // RSA PKCS#1 v1.5; ECDSA as a DER Ecdsa-Sig-Value
  const signatureAlgorithm = key.type === "rsa" ? sequence(oid(OID.rsaEncryption), nullValue()) : sequence(oid(OID.ecdsaWithSha256));

  const { issuer, serial } = issuerAndSerial(cert);
  const signerInfo = sequence(
    integer(1),
    sequence(issuer, serial),
    sha256,
    retag(0xa0, signedAttrs),
    signatureAlgorithm,
    octetString(signature),
  );
  const signedData = sequence(
    integer(1),
    setOf(sha256),
    sequence(oid(OID.data), explicit(0, octetString(profile))),
    tlv(0xa0, Buffer.concat(chain.map((c) => c.raw))), // [0] IMPLICIT SET OF Certificate, signer first
    setOf(signerInfo),
  );
  return sequence(oid(OID.signedData), explicit(0, signedData));
}

/**
 * Reads a profile signer from one PEM file holding the certificate(s) and an
 * unencrypted private key (RSA or EC). The signer's certificate (the one the
 * key belongs to) comes first in the returned certPem, the rest keep file order.
 */
export function loadProfileSigner(file: string): ProfileSigner {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new ProfileSignerError(`cannot read the profile signing file ${file}: ${(err as Error).message}`);
  }
  const blocks = pemBlocks(text);
  const keys = blocks.filter((b) => b.label.endsWith("PRIVATE KEY"));
  if (keys.length === 0)
    throw new ProfileSignerError(
      `${file} holds no private key: put the signing key (PEM, unencrypted) in the same file as the certificate`,
    );
  if (keys.length > 1) throw new ProfileSignerError(`${file} holds ${keys.length} private keys; expected one`);
  const certPem = blocks
    .filter((b) => b.label === "CERTIFICATE")
    .map((b) => b.pem)
    .join("\n");
  const { chain } = resolveSigner(certPem, keys[0]!.pem, file);
  return { certPem: chain.map((c) => c.toString()).join(""), keyPem: keys[0]!.pem + "\n" };
}

interface SigningKey {
  key: KeyObject;
  type: "rsa" | "ec";
}

/** Parses the key and certificates; puts the key's certificate first. */
function resolveSigner(certPem: string, keyPem: string, where: string): { key: SigningKey; chain: X509Certificate[] } {
  if (/ENCRYPTED/.test(keyPem)) {
    throw new ProfileSignerError(`the private key in ${where} is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new ProfileSignerError(`cannot read the private key in ${where}: ${(err as Error).message}`);
  }
  const type = key.asymmetricKeyType;
  if (type !== "rsa" && type !== "ec")
    throw new ProfileSignerError(`the private key in ${where} is ${type ?? "of an unknown type"}; profile signing needs RSA or EC`);

  const certs: X509Certificate[] = [];
  for (const { label, pem } of pemBlocks(certPem)) {
    if (label !== "CERTIFICATE") continue;
    try {
      certs.push(new X509Certificate(pem));
    } catch (err) {
      throw new ProfileSignerError(`cannot read a certificate in ${where}: ${(err as Error).message}`);
    }
  }
  if (certs.length === 0) throw new ProfileSignerError(`${where} holds no certificate`);
  const index = certs.findIndex((c) => c.checkPrivateKey(key));
  if (index === -1) {
    throw new ProfileSignerError(
      `the private key in ${where} does not match ${certs.length === 1 ? "the certificate" : `any of its ${certs.length} certificates`}`,
    );
  }
  const chain = [certs[index]!, ...certs.filter((_, i) => i !== index)];
  return { key: { key, type }, chain };
}

/** The certificate's issuer Name and serialNumber INTEGER, as encoded in the certificate. */
function issuerAndSerial(cert: X509Certificate): { issuer: Buffer; serial: Buffer } {
  const { issuer, serial } = certFields(cert.raw);
  return { issuer, serial: tlv(0x02, serial) };
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5652 §11.3). */
function time(d: Date): Buffer {
  const whole = new Date(Math.floor(d.getTime() / 1000) * 1000);
  const block = whole.getUTCFullYear() < 2050 ? new asn1js.UTCTime({ valueDate: whole }) : new asn1js.GeneralizedTime({ valueDate: whole });
  return Buffer.from(block.toBER(false));
}
