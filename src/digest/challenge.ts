// Builds the `DigestChallenge` string sent in step 1 of UserAuthenticate.

import { DIGEST_ALGORITHMS, isSessAlgorithm, type DigestAlgorithm } from "./types.ts";

export interface ChallengeOptions {
  nonce: string;
  realm: string;
  /** Offer qop="auth" (RFC 2617 style). Off by default: Apple's example has none. */
  qop?: boolean;
  /** Emitted as a bare token only when given; absent means MD5. */
  algorithm?: DigestAlgorithm;
}

// `"` and `\` would need escaping that Apple's client may not undo, and control
// characters have no place in a plist string header value: refuse them outright.
const UNSAFE = /["\\\u0000-\u001f\u007f]/;

function checkValue(name: string, value: unknown): asserts value is string {
  if (typeof value !== "string" || value === "") throw new TypeError(`Digest challenge: ${name} must be a non-empty string`);
  if (UNSAFE.test(value)) throw new TypeError(`Digest challenge: ${name} contains a quote, backslash or control character`);
}

/**
 * Default output is exactly Apple's shape: `Digest nonce="…",realm="…"`
 * (nonce first, no space after the comma).
 */
export function buildChallenge(options: ChallengeOptions): string {
  const { nonce, realm, qop = false, algorithm } = options;
  checkValue("nonce", nonce);
  checkValue("realm", realm);
  if (algorithm !== undefined && !DIGEST_ALGORITHMS.includes(algorithm)) {
    throw new TypeError("Digest challenge: unknown algorithm");
  }
  // A -sess HA1 needs the client's cnonce, which clients only send with qop.
  if (algorithm !== undefined && isSessAlgorithm(algorithm) && !qop) {
    throw new TypeError("Digest challenge: -sess algorithms require qop");
  }
  let out = `Digest nonce="${nonce}",realm="${realm}"`;
  if (qop) out += ',qop="auth"';
  if (algorithm !== undefined) out += `,algorithm=${algorithm}`;
  return out;
}
