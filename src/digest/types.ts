// Shared Digest types and the error class. Kept apart so every other file can
// import them without pulling in crypto or parsing code.

export type DigestAlgorithm = "MD5" | "MD5-sess" | "SHA-256" | "SHA-256-sess";

/** The hash behind an algorithm: what HA1 is stored in (htdigest, directory). */
export type DigestHash = "MD5" | "SHA-256";

export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"];

/** A parsed `Authorization: Digest ...` value (here: the plist `DigestResponse`). */
export interface DigestResponse {
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  /** Lowercase hex, length checked against the algorithm. */
  response: string;
  algorithm: DigestAlgorithm;
  qop?: "auth";
  nc?: string;
  cnonce?: string;
  opaque?: string;
}

/** A parsed `WWW-Authenticate: Digest ...` value (the plist `DigestChallenge`). */
export interface DigestChallenge {
  realm: string;
  nonce: string;
  algorithm: DigestAlgorithm;
  /** Present when the server offered qop and `auth` is among the options. */
  qop?: "auth";
  opaque?: string;
  stale?: boolean;
}

export type DigestErrorReason =
  | "too-long" // whole string or one value over its bound
  | "bad-scheme" // not `Digest <params>`
  | "malformed" // syntax error in the parameter list
  | "duplicate-param"
  | "missing-param" // required parameter absent or empty
  | "bad-response" // response is not hex of the algorithm's length
  | "bad-algorithm"
  | "bad-qop" // qop not auth, or nc/cnonce without qop
  | "bad-nc"
  | "unsupported"; // e.g. userhash=true

/**
 * Parse failure. The message names at most a parameter and an offset, never a
 * value: Digest values (response hash, nonce, username) must not reach logs.
 */
export class DigestError extends Error {
  readonly reason: DigestErrorReason;
  constructor(reason: DigestErrorReason, message: string) {
    super(`Digest: ${message}`);
    this.name = "DigestError";
    this.reason = reason;
  }
}

/** Hex length of a hash output for an algorithm. */
export function hexLength(algorithm: DigestAlgorithm | DigestHash): number {
  return baseHash(algorithm) === "MD5" ? 32 : 64;
}

/** `MD5-sess` -> `MD5`, `SHA-256-sess` -> `SHA-256`. */
export function baseHash(algorithm: DigestAlgorithm | DigestHash): DigestHash {
  switch (algorithm) {
    case "MD5":
    case "MD5-sess":
      return "MD5";
    case "SHA-256":
    case "SHA-256-sess":
      return "SHA-256";
    default:
      throw new TypeError("unknown Digest algorithm");
  }
}

export function isSessAlgorithm(algorithm: DigestAlgorithm): boolean {
  return algorithm === "MD5-sess" || algorithm === "SHA-256-sess";
}
