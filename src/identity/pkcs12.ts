// A PKCS#12 (.p12 / .pfx) reader (push certificates, enrollment identities): the certificates
// and the private key, with the MAC checked. node:crypto cannot read PKCS#12
// and pkijs decrypts only PBES2, so the structure is walked with asn1js and
// decrypted with node:crypto (PBES2 with AES or 3DES: OpenSSL 3's default;
// pbeWithSHAAnd3-KeyTripleDES-CBC and pbeWithSHAAnd40/128BitRC2-CBC: older
// OpenSSL, `-legacy`, Keychain Access). RFC 7292.
import { createDecipheriv, createHash, createHmac, pbkdf2Sync, timingSafeEqual } from "node:crypto";
import * as asn1js from "asn1js";
import { rc2CbcDecrypt } from "./rc2.ts";

export class Pkcs12Error extends Error {}

export interface Pkcs12Contents {
  /** DER certificates, in file order. */
  certificates: Buffer[];
  /** PKCS#8 DER private keys, in file order. */
  keys: Buffer[];
}

const OID = {
  data: "1.2.840.113549.1.7.1",
  encryptedData: "1.2.840.113549.1.7.6",
  keyBag: "1.2.840.113549.1.12.10.1.1",
  shroudedKeyBag: "1.2.840.113549.1.12.10.1.2",
  certBag: "1.2.840.113549.1.12.10.1.3",
  safeContentsBag: "1.2.840.113549.1.12.10.1.6",
  x509Certificate: "1.2.840.113549.1.9.22.1",
  pbes2: "1.2.840.113549.1.5.13",
  pbkdf2: "1.2.840.113549.1.5.12",
};

const HASH_BY_OID: Record<string, string> = {
  "1.3.14.3.2.26": "sha1",
  "2.16.840.1.101.3.4.2.4": "sha224",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};
const HMAC_BY_OID: Record<string, string> = {
  "1.2.840.113549.2.7": "sha1",
  "1.2.840.113549.2.8": "sha224",
  "1.2.840.113549.2.9": "sha256",
  "1.2.840.113549.2.10": "sha384",
  "1.2.840.113549.2.11": "sha512",
};
const PBES2_CIPHERS: Record<string, { name: string; keyLength: number }> = {
  "2.16.840.1.101.3.4.1.2": { name: "aes-128-cbc", keyLength: 16 },
  "2.16.840.1.101.3.4.1.22": { name: "aes-192-cbc", keyLength: 24 },
  "2.16.840.1.101.3.4.1.42": { name: "aes-256-cbc", keyLength: 32 },
  "1.2.840.113549.3.7": { name: "des-ede3-cbc", keyLength: 24 },
};
// pkcs-12PbeIds: SHA-1 and the PKCS#12 key derivation (RFC 7292 appendix C).
const PKCS12_PBE: Record<string, { cipher: "3des" | "rc2"; keyLength: number }> = {
  "1.2.840.113549.1.12.1.3": { cipher: "3des", keyLength: 24 },
  "1.2.840.113549.1.12.1.4": { cipher: "3des", keyLength: 16 },
  "1.2.840.113549.1.12.1.5": { cipher: "rc2", keyLength: 16 },
  "1.2.840.113549.1.12.1.6": { cipher: "rc2", keyLength: 5 },
};

/** True when the bytes look like a DER PKCS#12 file (a SEQUENCE starting with version 3). */
export function looksLikePkcs12(der: Buffer): boolean {
  if (der.length < 8 || der[0] !== 0x30) return false;
  try {
    const seq = asn1js.fromBER(new Uint8Array(der)).result;
    const version = children(seq)[0];
    return version instanceof asn1js.Integer && version.valueBlock.valueDec === 3;
  } catch {
    return false;
  }
}

/** Reads a PKCS#12 file; a wrong passphrase fails the MAC check (Pkcs12Error). */
export function readPkcs12(der: Buffer, passphrase: string): Pkcs12Contents {
  try {
    return read(der, passphrase);
  } catch (err) {
    if (err instanceof Pkcs12Error) throw err;
    throw new Pkcs12Error(`not a readable PKCS#12 file: ${(err as Error).message}`);
  }
}

function read(der: Buffer, passphrase: string): Pkcs12Contents {
  const parsed = asn1js.fromBER(new Uint8Array(der));
  if (parsed.offset === -1) throw new Pkcs12Error("not DER");
  const [version, authSafe, macData] = children(parsed.result);
  if (!(version instanceof asn1js.Integer) || version.valueBlock.valueDec !== 3) throw new Pkcs12Error("not a PKCS#12 version 3 file");
  const [contentType, content] = children(authSafe!);
  if (oid(contentType) !== OID.data) throw new Pkcs12Error("only password-integrity PKCS#12 files are supported");
  const authSafeBytes = octets(children(content!)[0]!);

  // Some exporters write an empty passphrase as the BMPString terminator, some as nothing.
  const candidates = passphrase === "" ? [bmpPassword(""), Buffer.alloc(0)] : [bmpPassword(passphrase)];
  let bmp = candidates[0]!;
  if (macData) {
    const match = candidates.find((c) => macMatches(macData, authSafeBytes, c));
    if (!match) throw new Pkcs12Error("wrong passphrase (the PKCS#12 integrity check failed)");
    bmp = match;
  }
  const password = { bmp, utf8: Buffer.from(passphrase, "utf8") };

  const out: Pkcs12Contents = { certificates: [], keys: [] };
  for (const info of children(fromDer(authSafeBytes))) {
    const [type, explicit] = children(info);
    const body = children(explicit!)[0]!;
    let safeContents: Buffer;
    if (oid(type) === OID.data) safeContents = octets(body);
    else if (oid(type) === OID.encryptedData) {
      // EncryptedData ::= SEQUENCE { version, EncryptedContentInfo { contentType, algorithm, [0] IMPLICIT content } }
      const [, encryptedContentInfo] = children(body);
      const [, algorithm, encrypted] = children(encryptedContentInfo!);
      if (!encrypted) continue; // no content: nothing in this safe
      safeContents = decrypt(algorithm!, implicitOctets(encrypted), password);
    } else continue;
    readSafeContents(fromDer(safeContents), password, out);
  }
  return out;
}

function readSafeContents(safe: asn1js.AsnType, password: Password, out: Pkcs12Contents): void {
  for (const bag of children(safe)) {
    const [bagId, explicit] = children(bag);
    const value = children(explicit!)[0]!;
    switch (oid(bagId)) {
      case OID.keyBag:
        out.keys.push(Buffer.from(value.toBER(false)));
        break;
      case OID.shroudedKeyBag: {
        const [algorithm, encrypted] = children(value);
        out.keys.push(decrypt(algorithm!, octets(encrypted!), password));
        break;
      }
      case OID.certBag: {
        const [certType, certValue] = children(value);
        if (oid(certType) === OID.x509Certificate) out.certificates.push(octets(children(certValue!)[0]!));
        break;
      }
      case OID.safeContentsBag:
        readSafeContents(value, password, out);
        break;
    }
  }
}

interface Password {
  /** BMPString with its terminator: the PKCS#12 key derivation's input. */
  bmp: Buffer;
  /** The passphrase's bytes: PBES2's input. */
  utf8: Buffer;
}

function decrypt(algorithm: asn1js.AsnType, data: Buffer, password: Password): Buffer {
  const [algOid, params] = children(algorithm);
  const id = oid(algOid);
  try {
    if (id === OID.pbes2) return pbes2Decrypt(params!, data, password.utf8);
    const pbe = PKCS12_PBE[id];
    if (!pbe) throw new Pkcs12Error(`unsupported encryption ${id}`);
    const [salt, iterations] = children(params!);
    const saltBytes = octets(salt!);
    const rounds = integer(iterations);
    const key = pkcs12Kdf("sha1", password.bmp, saltBytes, 1, rounds, pbe.keyLength);
    const iv = pkcs12Kdf("sha1", password.bmp, saltBytes, 2, rounds, 8);
    if (pbe.cipher === "rc2") return rc2CbcDecrypt(key, pbe.keyLength * 8, iv, data);
    const key24 = pbe.keyLength === 16 ? Buffer.concat([key, key.subarray(0, 8)]) : key;
    return decipher("des-ede3-cbc", key24, iv, data);
  } catch (err) {
    if (err instanceof Pkcs12Error) throw err;
    throw new Pkcs12Error("cannot decrypt the PKCS#12 contents: wrong passphrase?");
  }
}

function pbes2Decrypt(params: asn1js.AsnType, data: Buffer, password: Buffer): Buffer {
  const [kdf, scheme] = children(params);
  const [kdfOid, kdfParams] = children(kdf!);
  if (oid(kdfOid) !== OID.pbkdf2) throw new Pkcs12Error(`unsupported key derivation ${oid(kdfOid)}`);
  const kp = children(kdfParams!);
  const salt = octets(kp[0]!);
  const iterations = integer(kp[1]);
  let keyLength: number | undefined;
  let hash = "sha1";
  for (const extra of kp.slice(2)) {
    if (extra instanceof asn1js.Integer) keyLength = extra.valueBlock.valueDec;
    else {
      const prf = HMAC_BY_OID[oid(children(extra)[0])];
      if (!prf) throw new Pkcs12Error("unsupported PBKDF2 PRF");
      hash = prf;
    }
  }
  const [cipherOid, iv] = children(scheme!);
  const cipher = PBES2_CIPHERS[oid(cipherOid)];
  if (!cipher) throw new Pkcs12Error(`unsupported cipher ${oid(cipherOid)}`);
  const key = pbkdf2Sync(password, salt, iterations, keyLength ?? cipher.keyLength, hash);
  return decipher(cipher.name, key, octets(iv!), data);
}

function decipher(name: string, key: Buffer, iv: Buffer, data: Buffer): Buffer {
  const d = createDecipheriv(name, key, iv);
  return Buffer.concat([d.update(data), d.final()]);
}

function macMatches(macData: asn1js.AsnType, content: Buffer, bmp: Buffer): boolean {
  const [digestInfo, salt, iterations] = children(macData);
  const [algorithm, digest] = children(digestInfo!);
  const hash = HASH_BY_OID[oid(children(algorithm!)[0])];
  if (!hash) throw new Pkcs12Error("unsupported PKCS#12 MAC algorithm");
  const expected = octets(digest!);
  const size = createHash(hash).digest().length;
  const key = pkcs12Kdf(hash, bmp, octets(salt!), 3, iterations ? integer(iterations) : 1, size);
  const actual = createHmac(hash, key).update(content).digest();
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** RFC 7292 appendix B.2: the PKCS#12 key derivation (id 1 key, 2 IV, 3 MAC key). */
export function pkcs12Kdf(hash: string, password: Buffer, salt: Buffer, id: number, iterations: number, length: number): Buffer {
  const u = createHash(hash).digest().length;
  const v = hash === "sha384" || hash === "sha512" ? 128 : 64;
  const fill = (src: Buffer) => {
    if (src.length === 0) return Buffer.alloc(0);
    const out = Buffer.alloc(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length]!;
    return out;
  };
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([fill(salt), fill(password)]);
  const blocks: Buffer[] = [];
  for (let produced = 0; produced < length; produced += u) {
    let A = createHash(hash).update(D).update(I).digest();
    for (let r = 1; r < iterations; r++) A = createHash(hash).update(A).digest();
    blocks.push(A);
    const B = Buffer.alloc(v);
    for (let i = 0; i < v; i++) B[i] = A[i % u]!;
    // Each v-byte block of I becomes (I_j + B + 1) mod 2^(8v).
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k]! + B[k]! + carry;
        I[j + k] = sum & 0xff;
        carry = sum >>> 8;
      }
    }
  }
  return Buffer.concat(blocks).subarray(0, length);
}

function bmpPassword(passphrase: string): Buffer {
  const out = Buffer.alloc((passphrase.length + 1) * 2);
  for (let i = 0; i < passphrase.length; i++) out.writeUInt16BE(passphrase.charCodeAt(i), i * 2);
  return out;
}

// --- asn1js helpers: every shape mistake becomes an exception caught above.

function fromDer(bytes: Buffer): asn1js.AsnType {
  const parsed = asn1js.fromBER(new Uint8Array(bytes));
  if (parsed.offset === -1) throw new Pkcs12Error("bad DER inside the file");
  return parsed.result;
}

function children(block: asn1js.AsnType | undefined): asn1js.AsnType[] {
  const value = (block as asn1js.Constructed | undefined)?.valueBlock?.value;
  if (!Array.isArray(value)) throw new Pkcs12Error("unexpected structure");
  return value as asn1js.AsnType[];
}

function oid(block: asn1js.AsnType | undefined): string {
  if (!(block instanceof asn1js.ObjectIdentifier)) throw new Pkcs12Error("expected an OID");
  return block.valueBlock.toString();
}

function integer(block: asn1js.AsnType | undefined): number {
  if (!(block instanceof asn1js.Integer)) throw new Pkcs12Error("expected an integer");
  const n = block.valueBlock.valueDec;
  if (!Number.isSafeInteger(n) || n < 1 || n > 10_000_000) throw new Pkcs12Error("unreasonable iteration count");
  return n;
}

/** An OCTET STRING's bytes, also when BER splits it into constructed pieces. */
function octets(block: asn1js.AsnType): Buffer {
  if (!(block instanceof asn1js.OctetString)) throw new Pkcs12Error("expected an OCTET STRING");
  if (block.valueBlock.isConstructed) return Buffer.concat(block.valueBlock.value.map((b) => octets(b as asn1js.AsnType)));
  return Buffer.from(block.valueBlock.valueHexView);
}

/** The bytes of a [0] IMPLICIT OCTET STRING (primitive, or constructed of OCTET STRINGs). */
function implicitOctets(block: asn1js.AsnType): Buffer {
  const b = block as asn1js.Constructed & asn1js.Primitive;
  if (b.idBlock.isConstructed) return Buffer.concat((b as asn1js.Constructed).valueBlock.value.map((p) => octets(p as asn1js.AsnType)));
  return Buffer.from((b as asn1js.Primitive).valueBlock.valueHexView);
}
