// Semantic checks on top of the tokenizer: what a DigestResponse (device ->
// server) and a DigestChallenge (server -> device) must contain.

import { parseDigestParams } from "./params.ts";
import {
  DIGEST_ALGORITHMS,
  DigestError,
  hexLength,
  isSessAlgorithm,
  type DigestAlgorithm,
  type DigestChallenge,
  type DigestResponse,
} from "./types.ts";

const NC = /^[0-9a-fA-F]{8}$/;

function parseAlgorithm(value: string | undefined): DigestAlgorithm {
  if (value === undefined) return "MD5"; // RFC 2617 default, and Apple's case
  const found = DIGEST_ALGORITHMS.find((a) => a.toLowerCase() === value.toLowerCase());
  if (!found) throw new DigestError("bad-algorithm", "unsupported algorithm");
  return found;
}

function required(params: Map<string, string>, name: string): string {
  const value = params.get(name);
  if (value === undefined || value === "") throw new DigestError("missing-param", `missing or empty parameter "${name}"`);
  return value;
}

/** Parses a client's Digest credentials, e.g. the plist `DigestResponse` string. */
export function parseDigestResponse(s: string): DigestResponse {
  const params = parseDigestParams(s);
  const algorithm = parseAlgorithm(params.get("algorithm"));
  const username = required(params, "username");
  const realm = required(params, "realm");
  const nonce = required(params, "nonce");
  const uri = required(params, "uri");
  const response = required(params, "response");

  const hexRe = new RegExp(`^[0-9a-fA-F]{${hexLength(algorithm)}}$`);
  if (!hexRe.test(response)) throw new DigestError("bad-response", 'parameter "response" is not a hash of the expected length');
  // userhash=true means username is a hash we cannot map back; refuse rather than fail later.
  if (params.get("userhash")?.toLowerCase() === "true") throw new DigestError("unsupported", "userhash is not supported");

  const out: DigestResponse = { username, realm, nonce, uri, response: response.toLowerCase(), algorithm };

  const qop = params.get("qop");
  const nc = params.get("nc");
  const cnonce = params.get("cnonce");
  if (qop !== undefined) {
    if (qop.toLowerCase() !== "auth") throw new DigestError("bad-qop", 'parameter "qop" must be auth');
    const ncValue = required(params, "nc");
    if (!NC.test(ncValue)) throw new DigestError("bad-nc", 'parameter "nc" must be 8 hex digits');
    out.qop = "auth";
    out.nc = ncValue.toLowerCase();
    out.cnonce = required(params, "cnonce");
  } else if (nc !== undefined || cnonce !== undefined) {
    // RFC 2617 §3.2.2: nc/cnonce only go with qop; a mix means a confused client.
    throw new DigestError("bad-qop", 'parameters "nc"/"cnonce" without "qop"');
  }
  // The session HA1 needs cnonce, which only exists with qop.
  if (isSessAlgorithm(algorithm) && out.cnonce === undefined) {
    throw new DigestError("missing-param", `missing or empty parameter "cnonce"`);
  }

  const opaque = params.get("opaque");
  if (opaque !== undefined) out.opaque = opaque;
  return out;
}

/** Parses a server's Digest challenge (used by tests and device simulators). */
export function parseDigestChallenge(s: string): DigestChallenge {
  const params = parseDigestParams(s);
  const algorithm = parseAlgorithm(params.get("algorithm"));
  const out: DigestChallenge = { realm: required(params, "realm"), nonce: required(params, "nonce"), algorithm };

  const qop = params.get("qop");
  if (qop !== undefined) {
    // In a challenge qop is a quoted list of options, e.g. "auth,auth-int".
    const options = qop.split(",").map((o) => o.trim().toLowerCase());
    if (!options.includes("auth")) throw new DigestError("bad-qop", 'parameter "qop" does not offer auth');
    out.qop = "auth";
  }
  const opaque = params.get("opaque");
  if (opaque !== undefined) out.opaque = opaque;
  const stale = params.get("stale");
  if (stale !== undefined) out.stale = stale.toLowerCase() === "true";
  return out;
}
