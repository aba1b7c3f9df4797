// Checks a parsed DigestResponse against a stored HA1. Which HTTP method the
// Mac hashes into HA2 is undocumented (protocol brief §9 item 1), so callers
// pass the request's own method first and any configured extras after it.

import { timingSafeEqual } from "node:crypto";
import { computeResponse } from "./compute.ts";
import { baseHash, hexLength, type DigestResponse } from "./types.ts";

export interface VerifyInput {
  response: DigestResponse;
  /** Hex HA1 for the response's base hash (MD5 or SHA-256). */
  ha1: string;
  /** Methods to try, in order, e.g. ['PUT'] then configured extras. */
  methods: string[];
}

export type VerifyResult = { ok: true; method: string } | { ok: false };

export function verifyDigestResponse(input: VerifyInput): VerifyResult {
  const { response, ha1, methods } = input;
  if (methods.length === 0) throw new TypeError("verifyDigestResponse: methods must not be empty");
  const hexLen = hexLength(baseHash(response.algorithm));
  // A bad stored HA1 is a configuration error, not a wrong password.
  if (!new RegExp(`^[0-9a-fA-F]{${hexLen}}$`).test(ha1)) {
    throw new TypeError("verifyDigestResponse: ha1 is not hex of the algorithm base hash length");
  }

  const received = Buffer.from(response.response, "hex");
  // Hand-built responses may skip the parser's length check; never let that
  // throw inside timingSafeEqual, just fail.
  const receivedOk = received.length * 2 === hexLen && response.response.length === hexLen;
  const compareTo = receivedOk ? received : Buffer.alloc(hexLen / 2);

  let matched: string | undefined;
  // Try every method even after a match so timing does not depend on which one matched.
  for (const method of methods) {
    const expected = Buffer.from(computeResponse({ ...response, ha1, method }), "hex");
    const equal = timingSafeEqual(expected, compareTo);
    if (equal && receivedOk && matched === undefined) matched = method;
  }
  return matched === undefined ? { ok: false } : { ok: true, method: matched };
}
