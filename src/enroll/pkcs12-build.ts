// A device identity for an enrollment profile (com.apple.security.pkcs12): a
// fresh key and a certificate from the device CA, in a PKCS#12 file written by
// src/identity/pkcs12-write.ts.
import { generateKeyPair, randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { buildPkcs12, checkPassphrase, nameWithCommonName, type Pkcs12Encryption } from "../identity/pkcs12-write.ts";
import type { DeviceCa } from "./device-ca.ts";

export interface Pkcs12IdentityOptions {
  /** The certificate's subject CN. */
  commonName: string;
  /** The PKCS#12 password: printable ASCII, not empty. See newPkcs12Passphrase(). */
  passphrase: string;
  /** Certificate lifetime; default the device CA's. */
  days?: number;
  /** The friendlyName bag attribute (the keychain item's label); default the CN. */
  friendlyName?: string;
  encryption?: Pkcs12Encryption;
  /** PBKDF2 / PKCS#12 KDF iterations for encryption and MAC; default 2048, minimum 2048. */
  iterations?: number;
}

const generateRsa = promisify(generateKeyPair);

/** A fresh one-time PKCS#12 password: 24 characters of base64url (144 random bits). */
export function newPkcs12Passphrase(): string {
  return randomBytes(18).toString("base64url");
}

/**
 * A device identity as a PKCS#12 file: a fresh RSA-2048 key, a certificate the
 * device CA issues for it (clientAuth), and the CA certificate.
 */
export async function issuePkcs12Identity(ca: DeviceCa, o: Pkcs12IdentityOptions): Promise<Buffer> {
  checkPassphrase(o.passphrase);
  if (typeof o.commonName !== "string" || o.commonName.trim() === "") throw new TypeError("the identity needs a common name");
  const keys = await generateRsa("rsa", { modulusLength: 2048, publicExponent: 0x10001 });
  const cert = await ca.issue({
    subjectDer: nameWithCommonName(o.commonName),
    publicKeyDer: keys.publicKey.export({ type: "spki", format: "der" }),
    ...(o.days !== undefined ? { days: o.days } : {}),
  });
  return buildPkcs12({
    key: keys.privateKey,
    certificates: [Buffer.from(cert.raw), ca.certDer],
    passphrase: o.passphrase,
    friendlyName: o.friendlyName ?? o.commonName,
    ...(o.encryption ? { encryption: o.encryption } : {}),
    ...(o.iterations !== undefined ? { iterations: o.iterations } : {}),
  });
}
