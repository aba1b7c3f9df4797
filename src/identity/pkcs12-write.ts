// A PKCS#12 (RFC 7292) writer, the inverse of the reader beside it (pkcs12.ts),
// for the device identities enrollment profiles embed (src/enroll/pkcs12-build.ts).
//
// Layout (what `openssl pkcs12 -export` writes):
//   PFX { version 3,
//         authSafe: data [
//           encryptedData { SafeContents [ CertBag leaf (localKeyID, friendlyName), CertBag CA … ] },
//           data          { SafeContents [ PKCS8ShroudedKeyBag (localKeyID, friendlyName) ] } ],
//         macData: HMAC over the authSafe content, key from the PKCS#12 KDF (appendix B) }
//
// Encryption (password privacy and password integrity mode):
// - "aes-256-cbc" (default): PBES2 = PBKDF2-HMAC-SHA256 + AES-256-CBC for the key
//   and the certificates, MAC HMAC-SHA256. OpenSSL 3's defaults byte for byte,
//   read by OpenSSL 1.1.1+/3 and by current macOS/iOS.
// - "3des": pbeWithSHAAnd3-KeyTripleDES-CBC for both, MAC HMAC-SHA1 (what
//   `openssl pkcs12 -export -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES -macalg sha1`
//   writes). Older Apple releases (reports up to macOS 12 / iOS 15) only import
//   this family; OpenSSL 3 reads it without -legacy (3DES is in the default provider).
import { createCipheriv, createHash, createHmac, pbkdf2, randomBytes, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import * as asn1js from "asn1js";
import { bmpString, explicit, implicitPrimitive, integer, nullValue, octetString, oid, sequence, setOf } from "./der.ts";
import { pkcs12Kdf } from "./pkcs12.ts";

export type Pkcs12Encryption = "aes-256-cbc" | "3des";

export interface BuildPkcs12Options {
  /** The private key (PKCS#8 DER, or a KeyObject). */
  key: KeyObject | Uint8Array;
  /** DER certificates: the key's certificate first, then its chain. */
  certificates: Uint8Array[];
  passphrase: string;
  friendlyName?: string;
  encryption?: Pkcs12Encryption;
  iterations?: number;
}

export const DEFAULT_PKCS12_ITERATIONS = 2048;

const OID = {
  data: "1.2.840.113549.1.7.1",
  encryptedData: "1.2.840.113549.1.7.6",
  shroudedKeyBag: "1.2.840.113549.1.12.10.1.2",
  certBag: "1.2.840.113549.1.12.10.1.3",
  x509Certificate: "1.2.840.113549.1.9.22.1",
  friendlyName: "1.2.840.113549.1.9.20",
  localKeyId: "1.2.840.113549.1.9.21",
  pbes2: "1.2.840.113549.1.5.13",
  pbkdf2: "1.2.840.113549.1.5.12",
  hmacWithSha256: "1.2.840.113549.2.9",
  aes256Cbc: "2.16.840.1.101.3.4.1.42",
  pbeWithSha1And3DesCbc: "1.2.840.113549.1.12.1.3",
  sha1: "1.3.14.3.2.26",
  sha256: "2.16.840.1.101.3.4.2.1",
  commonName: "2.5.4.3",
};

const pbkdf2Async = promisify(pbkdf2);

/** Writes a PKCS#12 file holding one private key and its certificate chain. */
export async function buildPkcs12(o: BuildPkcs12Options): Promise<Buffer> {
  checkPassphrase(o.passphrase);
  if (o.certificates.length === 0) throw new TypeError("a PKCS#12 identity needs its certificate");
  const iterations = o.iterations ?? DEFAULT_PKCS12_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < DEFAULT_PKCS12_ITERATIONS || iterations > 1_000_000) {
    throw new RangeError(`PKCS#12 iterations must be an integer in [${DEFAULT_PKCS12_ITERATIONS}, 1000000]`);
  }
  const encryption = o.encryption ?? "aes-256-cbc";
  if (encryption !== "aes-256-cbc" && encryption !== "3des") throw new TypeError(`unknown PKCS#12 encryption ${String(encryption)}`);
  const keyDer = o.key instanceof Uint8Array ? Buffer.from(o.key) : o.key.export({ type: "pkcs8", format: "der" });
  const pw = password(o.passphrase);

  // OpenSSL's convention: localKeyID = SHA-1 of the leaf certificate, on the key and on that certificate.
  const leaf = Buffer.from(o.certificates[0]!);
  const localKeyId = createHash("sha1").update(leaf).digest();
  const attributes = bagAttributes(localKeyId, o.friendlyName);

  const certBags = o.certificates.map((der, i) =>
    sequence(
      oid(OID.certBag),
      explicit(0, sequence(oid(OID.x509Certificate), explicit(0, octetString(der)))),
      ...(i === 0 ? [attributes] : []),
    ),
  );
  const certSafe = sequence(...certBags);
  const encryptedCerts = await encrypt(encryption, pw, iterations, certSafe);
  // EncryptedData { version 0, EncryptedContentInfo { data, algorithm, [0] IMPLICIT content } }
  const certInfo = sequence(
    oid(OID.encryptedData),
    explicit(0, sequence(integer(0), sequence(oid(OID.data), encryptedCerts.algorithm, implicitPrimitive(0, encryptedCerts.ciphertext)))),
  );

  const encryptedKey = await encrypt(encryption, pw, iterations, keyDer);
  const keyBag = sequence(
    oid(OID.shroudedKeyBag),
    explicit(0, sequence(encryptedKey.algorithm, octetString(encryptedKey.ciphertext))),
    attributes,
  );
  const keyInfo = sequence(oid(OID.data), explicit(0, octetString(sequence(keyBag))));

  const authSafe = sequence(certInfo, keyInfo);
  const macHash = encryption === "3des" ? "sha1" : "sha256";
  const macSalt = randomBytes(encryption === "3des" ? 8 : 16);
  const macKey = pkcs12Kdf(macHash, pw.bmp, macSalt, 3, iterations, createHash(macHash).digest().length);
  const mac = createHmac(macHash, macKey).update(authSafe).digest();
  const macData = sequence(
    sequence(sequence(oid(macHash === "sha1" ? OID.sha1 : OID.sha256), nullValue()), octetString(mac)),
    octetString(macSalt),
    integer(iterations),
  );

  return sequence(integer(3), sequence(oid(OID.data), explicit(0, octetString(authSafe))), macData);
}

interface Password {
  /** UTF-16BE with a terminating NUL: the PKCS#12 KDF's input (MAC, PKCS#12 PBE). */
  bmp: Buffer;
  /** The bytes PBKDF2 takes in PBES2 (OpenSSL passes the password as typed). */
  ascii: Buffer;
}

function password(passphrase: string): Password {
  const bmp = Buffer.alloc((passphrase.length + 1) * 2);
  for (let i = 0; i < passphrase.length; i++) bmp.writeUInt16BE(passphrase.charCodeAt(i), i * 2);
  return { bmp, ascii: Buffer.from(passphrase, "latin1") };
}

/**
 * Printable ASCII only: PBES2 (password bytes) and the PKCS#12 KDF (BMPString)
 * agree on it in every implementation, and Apple's importer is known to fail
 * on empty passwords.
 */
export function checkPassphrase(passphrase: string): void {
  if (typeof passphrase !== "string" || passphrase.length === 0) throw new TypeError("the PKCS#12 passphrase must not be empty");
  if (!/^[\x20-\x7e]+$/.test(passphrase)) throw new TypeError("the PKCS#12 passphrase must be printable ASCII");
}

async function encrypt(
  encryption: Pkcs12Encryption,
  pw: Password,
  iterations: number,
  plaintext: Buffer,
): Promise<{ algorithm: Buffer; ciphertext: Buffer }> {
  if (encryption === "3des") {
    const salt = randomBytes(8);
    const key = pkcs12Kdf("sha1", pw.bmp, salt, 1, iterations, 24);
    const iv = pkcs12Kdf("sha1", pw.bmp, salt, 2, iterations, 8);
    const c = createCipheriv("des-ede3-cbc", key, iv);
    return {
      algorithm: sequence(oid(OID.pbeWithSha1And3DesCbc), sequence(octetString(salt), integer(iterations))),
      ciphertext: Buffer.concat([c.update(plaintext), c.final()]),
    };
  }
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const key = await pbkdf2Async(pw.ascii, salt, iterations, 32, "sha256");
  const c = createCipheriv("aes-256-cbc", key, iv);
  // PBES2-params { PBKDF2 { salt, iterations, prf hmacWithSHA256 }, aes256-CBC iv }; keyLength omitted (implied by the cipher).
  const algorithm = sequence(
    oid(OID.pbes2),
    sequence(
      sequence(oid(OID.pbkdf2), sequence(octetString(salt), integer(iterations), sequence(oid(OID.hmacWithSha256), nullValue()))),
      sequence(oid(OID.aes256Cbc), octetString(iv)),
    ),
  );
  return { algorithm, ciphertext: Buffer.concat([c.update(plaintext), c.final()]) };
}

function bagAttributes(localKeyId: Buffer, friendlyName: string | undefined): Buffer {
  const attrs = [sequence(oid(OID.localKeyId), setOf(octetString(localKeyId)))];
  if (friendlyName !== undefined && friendlyName !== "") attrs.push(sequence(oid(OID.friendlyName), setOf(bmpString(friendlyName))));
  return setOf(...attrs);
}

/** Name ::= SEQUENCE OF RDN: one RDN, CN as UTF8String. */
export function nameWithCommonName(commonName: string): Buffer {
  const utf8 = Buffer.from(new asn1js.Utf8String({ value: commonName }).toBER(false));
  return sequence(setOf(sequence(oid(OID.commonName), utf8)));
}
