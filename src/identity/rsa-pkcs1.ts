// RSAES-PKCS1-v1_5 decryption with implicit rejection, for the one place
// Orchard needs it: the content-encryption key of a SCEP request, which every
// SCEP client wraps for the CA with PKCS#1 v1.5 key transport (CMS rsaEncryption).
//
// Why this file exists: Node 20 refuses privateDecrypt with RSA_PKCS1_PADDING
// (CVE-2023-46809, the Marvin attack: the padding check of the OpenSSL it
// bundles leaks through timing, a Bleichenbacher padding oracle). Newer
// OpenSSL answers bad padding with a deterministic pseudo-random message
// instead of an error ("implicit rejection"); Node 20's does not, so we do it
// here. The RSA operation itself stays in OpenSSL: privateDecrypt with
// RSA_NO_PADDING (allowed) is blinded and constant-time, which a BigInt modPow
// in JavaScript is not (its timing would leak the private key itself). Only the
// unpadding is ours, and it never tells anyone whether the padding was right:
//
// - The caller says how long the message must be (the key length of the content
//   cipher the request names). The check is a fixed pattern, 00 02, at least
//   eight non-zero bytes, 00 at exactly the place that leaves that length, so
//   there is no scan for the separator and no early exit.
// - When the pattern does not hold (or the ciphertext is not a number below the
//   modulus), the result is a key derived from an HMAC of the ciphertext under a
//   secret derived from the private key. Decryption goes on with it and fails
//   later, at the content's CBC padding or its parsing, exactly as it does for a
//   request encrypted to the wrong key. The same ciphertext always gives the same
//   key, so resending it teaches nothing either.
//
// JavaScript gives no hard constant-time guarantee; the code avoids branches and
// lookups that depend on secret bytes, which is what is in our hands.
import { constants, createHash, createHmac, privateDecrypt, type KeyObject } from "node:crypto";

const secrets = new WeakMap<KeyObject, Buffer>();

/** The implicit-rejection secret of a key: a hash of its private exponent, never the key itself. */
function rejectionSecret(key: KeyObject): Buffer {
  let secret = secrets.get(key);
  if (!secret) {
    const jwk = key.export({ format: "jwk" });
    if (typeof jwk.d !== "string") throw new Error("an RSA private key is required");
    secret = createHash("sha256").update("orchard pkcs1 implicit rejection\0").update(Buffer.from(jwk.d, "base64url")).digest();
    secrets.set(key, secret);
  }
  return secret;
}

/** The stand-in message for a ciphertext whose padding is wrong: length bytes, deterministic. */
export function syntheticMessage(key: KeyObject, ciphertext: Uint8Array, length: number): Buffer {
  const secret = rejectionSecret(key);
  const blocks: Buffer[] = [];
  for (let i = 0; blocks.length * 32 < length; i++) {
    blocks.push(
      createHmac("sha256", secret)
        .update(Buffer.from([i >> 24, i >> 16, i >> 8, i].map((b) => b & 0xff)))
        .update(ciphertext)
        .digest(),
    );
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/**
 * Decrypts an RSAES-PKCS1-v1_5 ciphertext whose message must be `length` bytes.
 * Never throws for a bad ciphertext: returns `length` bytes, the message when the
 * padding is right, a pseudo-random stand-in otherwise (see the top of the file).
 */
export function decryptPkcs1v15(key: KeyObject, ciphertext: Uint8Array, length: number): Buffer {
  if (key.type !== "private" || key.asymmetricKeyType !== "rsa") throw new Error("an RSA private key is required");
  const k = Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  if (!Number.isInteger(length) || length < 1 || length > k - 11)
    throw new Error(`cannot carry a ${length}-byte message in a ${k}-byte RSA block`);
  const synthetic = syntheticMessage(key, ciphertext, length);

  let em: Buffer;
  try {
    // The ciphertext length and its size against the modulus are public facts,
    // but they end in the stand-in like everything else.
    if (ciphertext.length !== k) throw new Error("ciphertext length");
    em = privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, ciphertext);
    if (em.length !== k) throw new Error("block length");
  } catch {
    return synthetic;
  }

  const sep = k - length - 1;
  // bad stays 0 while the block matches the pattern; every byte is looked at.
  let bad = em[0]! | (em[1]! ^ 0x02) | em[sep]!;
  for (let i = 2; i < sep; i++) {
    // (b - 1) >> 8 is -1 (all ones) exactly when b is 0.
    bad |= ((em[i]! - 1) >> 8) & 0xff;
  }
  // mask = 0xff when good, 0x00 when bad, without a branch.
  const mask = (((bad | -bad) >> 31) & 0xff) ^ 0xff;
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (em[sep + 1 + i]! & mask) | (synthetic[i]! & ~mask & 0xff);
  em.fill(0);
  return out;
}
