// Pure HTTP Digest layer for the macOS UserAuthenticate handshake
// (protocol brief §4.4, §5.3, §9 item 1). No I/O: callers supply secrets,
// clocks, stored HA1s and single-use bookkeeping.

export {
  DigestError,
  DIGEST_ALGORITHMS,
  baseHash,
  hexLength,
  isSessAlgorithm,
  type DigestAlgorithm,
  type DigestHash,
  type DigestChallenge,
  type DigestErrorReason,
  type DigestResponse,
} from "./types.ts";
export { MAX_DIGEST_LENGTH, MAX_PARAM_VALUE_LENGTH } from "./params.ts";
export { parseDigestChallenge, parseDigestResponse } from "./parse.ts";
export { buildChallenge, type ChallengeOptions } from "./challenge.ts";
export { computeHA1, computeResponse, computeSessionHA1, digestHash, type ResponseInput } from "./compute.ts";
export { formatOffers, offerMismatch, parseOffers, type Offer, type OfferMismatch } from "./offers.ts";
export { verifyDigestResponse, type VerifyInput, type VerifyResult } from "./verify.ts";
export {
  checkNonce,
  mintNonce,
  nonceIdOf,
  NONCE_CLOCK_SKEW_MS,
  type CheckNonceInput,
  type CheckNonceResult,
  type MintNonceInput,
} from "./nonce.ts";
export {
  formatHtdigestLine,
  parseHtdigest,
  type HtdigestEntry,
  type HtdigestErrorReason,
  type HtdigestParseResult,
} from "./htdigest.ts";
