// A public-key operation's cost is the key's to choose: an RSA key whose
// public exponent is as long as its modulus makes one verification cost
// thousands of times a usual one (0.04 ms for 2048 bits and 65537; about
// 7 ms for 3072 bits and a 3072-bit exponent), synchronously on the event
// loop. Keys a stranger hands over (a SCEP request's signer and CSR, an ADE
// MachineInfo's signer, an intermediate carried to build a chain) are
// checked here before anything is verified with them (review).
import type { KeyObject } from "node:crypto";

/** The largest RSA modulus verified with: Apple's SCEP payload offers 1024, 2048 and 4096 bits; CAs reach 8192. */
export const MAX_RSA_BITS = 8192;
/** The largest RSA public exponent: 65537 in practice, 3 in some old keys; 2^32 - 1 leaves room. */
export const MAX_RSA_EXPONENT = 2n ** 32n - 1n;

/** Why a key is too costly to verify with, or undefined. Keys other than RSA are of fixed cost. */
export function costlyKeyProblem(key: KeyObject): string | undefined {
  if (key.asymmetricKeyType !== "rsa" && key.asymmetricKeyType !== "rsa-pss") return undefined;
  const details = key.asymmetricKeyDetails;
  if ((details?.modulusLength ?? 0) > MAX_RSA_BITS) return `the RSA key has more than ${MAX_RSA_BITS} bits`;
  if ((details?.publicExponent ?? 0n) > MAX_RSA_EXPONENT) return "the RSA key's public exponent is larger than 2^32";
  return undefined;
}
