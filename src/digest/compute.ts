// RFC 2617 / RFC 7616 digest arithmetic. Strings are hashed as UTF-8 (RFC 7616
// charset=UTF-8); all outputs are lowercase hex.

import { createHash } from "node:crypto";
import { baseHash, isSessAlgorithm, type DigestAlgorithm, type DigestHash } from "./types.ts";

const NODE_HASH: Record<DigestHash, string> = { MD5: "md5", "SHA-256": "sha256" };

/** H(data) as lowercase hex. */
export function digestHash(hash: DigestHash, data: string): string {
  const name = NODE_HASH[hash];
  if (!name) throw new TypeError("unknown Digest hash");
  return createHash(name).update(data, "utf8").digest("hex");
}

/** HA1 = H(username ":" realm ":" password): what a directory or htdigest file stores. */
export function computeHA1(hash: DigestHash, username: string, realm: string, password: string): string {
  if (hash !== "MD5" && hash !== "SHA-256") throw new TypeError("computeHA1 takes a base hash (MD5 or SHA-256)");
  return digestHash(hash, `${username}:${realm}:${password}`);
}

/**
 * Session HA1 for -sess algorithms: H(HA1 ":" nonce ":" cnonce), with HA1 in
 * hex (RFC 2617 errata 1649 / RFC 7616; the RFC 2617 sample code's binary HA1
 * is the known mistake).
 */
export function computeSessionHA1(hash: DigestHash, ha1: string, nonce: string, cnonce: string): string {
  return digestHash(hash, `${ha1.toLowerCase()}:${nonce}:${cnonce}`);
}

export interface ResponseInput {
  /** Hex HA1 for the algorithm's base hash (not the session HA1). */
  ha1: string;
  algorithm: DigestAlgorithm;
  nonce: string;
  cnonce?: string;
  nc?: string;
  qop?: "auth";
  method: string;
  uri: string;
}

/** The `response` value a client should send for these inputs. */
export function computeResponse(input: ResponseInput): string {
  const { algorithm, nonce, cnonce, nc, qop, method, uri } = input;
  const hash = baseHash(algorithm);
  let ha1 = input.ha1.toLowerCase(); // the hex string itself is hashed, so case matters
  if (isSessAlgorithm(algorithm)) {
    if (cnonce === undefined) throw new TypeError("computeResponse: -sess algorithms need cnonce");
    ha1 = computeSessionHA1(hash, ha1, nonce, cnonce);
  }
  const ha2 = digestHash(hash, `${method}:${uri}`);
  if (qop === undefined) return digestHash(hash, `${ha1}:${nonce}:${ha2}`);
  if (qop !== "auth") throw new TypeError("computeResponse: only qop=auth is supported");
  if (nc === undefined || cnonce === undefined) throw new TypeError("computeResponse: qop=auth needs nc and cnonce");
  return digestHash(hash, `${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`);
}
