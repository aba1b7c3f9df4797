// Orchard's credential CA: it issues the certificates of DDM credential assets
// (com.apple.asset.credential.scep: the identity of a Wi-Fi or VPN
// configuration, a user's keychain), and never a device identity. It is a CA
// of its own beside the device CA, never in the MDM trust: a certificate it
// issued cannot authenticate a device, whatever its subject or key usage say
// (identity/trust.ts refuses its certificates by name even under
// --insecure-accept-any-device-cert, docs/declarative-management.md).
//
// Created by the first process that starts and kept in the store (its key
// sealed like push keys), so every process of a deployment issues from the
// same one and trusts none of its certificates.
import * as x509 from "@peculiar/x509";
import type { Logger } from "pino";
import { DeviceCa } from "./device-ca.ts";

/** The settings row that holds the credential CA: its certificate and its sealed key. */
export const CREDENTIAL_CA_SETTING = "credential-ca";
const AAD = "credential-ca";

/** Seals the CA's key at rest (push/secret-box.ts's SecretBox, handed in by server.ts). */
export interface Sealer {
  seal(plain: Buffer, aad: string): Buffer;
  open(sealed: Buffer, aad: string): Buffer;
}

export interface CredentialCaOptions {
  /** The stored CA, if any. */
  stored(): Promise<Buffer | undefined>;
  /** Stores this one unless another process stored one first; answers what is stored. */
  storeIfAbsent(value: Buffer): Promise<Buffer>;
  sealer: Sealer;
  log: Pick<Logger, "info">;
}

interface StoredCa {
  cert: string;
  /** PKCS#8 DER of the key, sealed, base64. */
  key: string;
}

/** The deployment's credential CA: the stored one, or a new one stored by whichever process asks first. */
export async function loadCredentialCa(o: CredentialCaOptions): Promise<DeviceCa> {
  let value = await o.stored();
  if (value === undefined) {
    const made = await DeviceCa.create("Orchard Credential CA");
    const key = made.key.export({ type: "pkcs8", format: "der" });
    const fresh: StoredCa = { cert: made.certPem, key: o.sealer.seal(key, AAD).toString("base64") };
    value = await o.storeIfAbsent(Buffer.from(JSON.stringify(fresh)));
    if (value.equals(Buffer.from(JSON.stringify(fresh)))) o.log.info({ fingerprint: made.fingerprint }, "created the credential CA");
  }
  const stored = JSON.parse(value.toString("utf8")) as StoredCa;
  const keyDer = o.sealer.open(Buffer.from(stored.key, "base64"), AAD);
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${keyDer.toString("base64")}\n-----END PRIVATE KEY-----\n`;
  return DeviceCa.fromPem(stored.cert, keyPem);
}

/** Apple's Subject shortcuts (credentials/scep.yaml); any other attribute is a dotted OID. */
const ATTRIBUTE_OIDS: Record<string, string> = {
  C: "2.5.4.6",
  L: "2.5.4.7",
  ST: "2.5.4.8",
  O: "2.5.4.10",
  OU: "2.5.4.11",
  CN: "2.5.4.3",
};
const DOTTED_OID = /^[0-2](\.(0|[1-9][0-9]{0,8})){1,20}$/;

/** The attribute OID for a Subject key (C, L, ST, O, OU, CN or a dotted OID), or undefined. */
export function attributeOid(key: string): string | undefined {
  return ATTRIBUTE_OIDS[key] ?? (DOTTED_OID.test(key) ? key : undefined);
}

/** A Name as DER from Apple's Subject pairs, one attribute per RDN, in order. */
export function subjectDer(pairs: ReadonlyArray<readonly [string, string]>): Buffer {
  const name = new x509.Name(
    pairs.map(([key, value]) => {
      const oid = attributeOid(key);
      if (oid === undefined) throw new Error(`unknown subject attribute ${key}`);
      return { [oid]: [value] };
    }),
  );
  return Buffer.from(name.toArrayBuffer());
}

/**
 * Whether two Names hold the same attributes with the same values: string
 * types aside (clients encode as they like), and in any order (some SCEP
 * clients write C, O, OU, CN whatever order they were given).
 */
export function sameName(a: Uint8Array, b: Uint8Array): boolean {
  try {
    const text = (der: Uint8Array) =>
      JSON.stringify(
        new x509.Name(new Uint8Array(der).buffer as ArrayBuffer)
          .toJSON()
          .flatMap((rdn) => Object.entries(rdn).flatMap(([k, values]) => values.map((v) => `${k}=${v}`)))
          .sort(),
      );
    return text(a) === text(b);
  } catch {
    return false;
  }
}

/** A Name as text (for logs and events). */
export function nameText(der: Uint8Array): string {
  try {
    return new x509.Name(new Uint8Array(der).buffer as ArrayBuffer).toString();
  } catch {
    return "(unreadable)";
  }
}

/** Apple's Key Usage bitmask (1 signing, 4 encryption) as X.509 KeyUsage bits. */
export function keyUsageBits(appleKeyUsage: number): number {
  let bits = 0;
  if (appleKeyUsage & 1) bits |= x509.KeyUsageFlags.digitalSignature;
  if (appleKeyUsage & 4) bits |= x509.KeyUsageFlags.keyEncipherment;
  return bits;
}
