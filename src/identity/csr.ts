// PKCS#10 certification requests (RFC 2986): the payload of a SCEP PKCSReq or
// RenewalReq. Read with the strict BER reader so that the subject and the
// public key go into the certificate byte for byte, and the signature is checked
// over the request info exactly as received.
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import { costlyKeyProblem } from "./key-cost.ts";
import { BerError, BerReader, CONTEXT, is, TAG_BIT_STRING, TAG_SEQUENCE, TAG_SET, UNIVERSAL, type Tlv } from "./ber.ts";
import { oidHex } from "./der.ts";
import { OIDS, RSA_SIGNATURES } from "./oids.ts";

/**
 * Why a CSR was refused. `malformed`: not a readable PKCS#10 (which is also what
 * a wrong decryption key produces); `signature`: not signed by its own key;
 * `key`: a key the device CA does not certify; `refused`: readable, but not a
 * request this CA grants.
 */
export class CsrError extends Error {
  constructor(
    readonly kind: "malformed" | "signature" | "key" | "refused",
    message: string,
  ) {
    super(message);
    this.name = "CsrError";
  }
}

export interface Csr {
  /** The subject Name, DER, as requested. */
  subjectDer: Buffer;
  /** SubjectPublicKeyInfo DER. */
  publicKeyDer: Buffer;
  publicKey: KeyObject;
  /** The challengePassword attribute, when present. */
  challengePassword?: string;
}

/** Refused below this: a device identity key of fewer bits is not worth a certificate. */
export const MIN_RSA_BITS = 2048;
const MAX_CHALLENGE_LENGTH = 1024;
const CHALLENGE_PASSWORD = oidHex(OIDS.challengePassword);

/** Parses and verifies a CSR: well formed, RSA key of at least MIN_RSA_BITS, self-signature valid. */
export function parseCsr(der: Uint8Array): Csr {
  try {
    return parse(der);
  } catch (err) {
    if (err instanceof BerError) throw new CsrError("malformed", `malformed CSR: ${err.message}`);
    throw err;
  }
}

function parse(der: Uint8Array): Csr {
  const r = new BerReader(der);
  const top = seq(r, r.root());
  if (top.length !== 3) throw new CsrError("malformed", "a CSR has three fields");
  const info = top[0]!;
  const fields = seq(r, info);
  const alg = seq(r, top[1]!);
  if (alg.length < 1 || !is(alg[0]!, UNIVERSAL, 6)) throw new CsrError("malformed", "bad signature algorithm");
  const sigAlg = r.oidHex(alg[0]!);
  if (!is(top[2]!, UNIVERSAL, TAG_BIT_STRING) || top[2]!.constructed) throw new CsrError("malformed", "bad signature");
  const bits = r.content(top[2]!);
  if (bits.length < 1 || bits[0] !== 0) throw new CsrError("malformed", "bad signature");
  const signature = bits.subarray(1);

  if (fields.length !== 4) throw new CsrError("malformed", "the request info has four fields");
  const [version, subject, spki, attrs] = fields as [Tlv, Tlv, Tlv, Tlv];
  if (info.indefinite) throw new CsrError("malformed", "the request info must have a definite length");
  if (!is(version, UNIVERSAL, 2) || r.content(version).length !== 1 || r.content(version)[0] !== 0) {
    throw new CsrError("malformed", "unsupported CSR version");
  }
  if (!is(subject, UNIVERSAL, TAG_SEQUENCE) || !subject.constructed || subject.indefinite) throw new CsrError("malformed", "bad subject");
  if (!is(spki, UNIVERSAL, TAG_SEQUENCE) || !spki.constructed || spki.indefinite) throw new CsrError("malformed", "bad public key");
  if (!is(attrs, CONTEXT, 0) || !attrs.constructed) throw new CsrError("malformed", "bad attributes");
  if (r.children(subject).length === 0) throw new CsrError("refused", "the subject is empty");

  let challengePassword: string | undefined;
  for (const a of r.children(attrs)) {
    const [type, values] = seq(r, a);
    if (!type || !values || !is(type, UNIVERSAL, 6)) throw new CsrError("malformed", "bad attribute");
    if (r.oidHex(type) !== CHALLENGE_PASSWORD) continue;
    if (challengePassword !== undefined || !is(values, UNIVERSAL, TAG_SET) || !values.constructed)
      throw new CsrError("malformed", "bad challengePassword");
    const v = r.children(values);
    if (v.length !== 1) throw new CsrError("malformed", "challengePassword must have one value");
    challengePassword = directoryString(r, v[0]!);
    if (challengePassword.length > MAX_CHALLENGE_LENGTH) throw new CsrError("refused", "challengePassword too long");
  }

  const publicKeyDer = Buffer.from(r.bytes(spki));
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: publicKeyDer, format: "der", type: "spki" });
  } catch {
    throw new CsrError("malformed", "unreadable public key");
  }
  if (publicKey.asymmetricKeyType !== "rsa") throw new CsrError("key", "the key must be RSA");
  if ((publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS)
    throw new CsrError("key", `the RSA key must have at least ${MIN_RSA_BITS} bits`);
  const costly = costlyKeyProblem(publicKey);
  if (costly) throw new CsrError("key", costly);
  const hash = RSA_SIGNATURES.get(sigAlg);
  if (!hash) throw new CsrError("key", "unsupported CSR signature algorithm (RSA PKCS#1 v1.5 with SHA-1 or SHA-2)");
  let ok = false;
  try {
    ok = verify(hash, r.bytes(info), publicKey, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new CsrError("signature", "the CSR's signature does not verify with its own key");
  return { subjectDer: Buffer.from(r.bytes(subject)), publicKeyDer, publicKey, challengePassword };
}

function seq(r: BerReader, t: Tlv): readonly Tlv[] {
  if (!is(t, UNIVERSAL, TAG_SEQUENCE) || !t.constructed) throw new CsrError("malformed", "SEQUENCE expected");
  return r.children(t);
}

// DirectoryString and the IA5String some clients use.
function directoryString(r: BerReader, t: Tlv): string {
  if (t.cls !== UNIVERSAL || t.constructed) throw new CsrError("malformed", "challengePassword is not a string");
  const c = Buffer.from(r.content(t));
  switch (t.tag) {
    case 12: // UTF8String
      return c.toString("utf8");
    case 19: // PrintableString
    case 22: // IA5String
    case 20: // TeletexString
      return c.toString("latin1");
    case 30: // BMPString
      if (c.length % 2) throw new CsrError("malformed", "bad BMPString");
      return Buffer.from(c).swap16().toString("utf16le");
    default:
      throw new CsrError("malformed", "challengePassword is not a string");
  }
}
