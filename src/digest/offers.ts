// What the challenges sent with one nonce offered, and whether a response
// keeps to it. A challenge offers one algorithm, with or without qop="auth";
// a response must use an algorithm one of them offered, and may carry qop
// only where a challenge of that algorithm offered it (RFC 2617 §3.2.2: a
// client sends qop only if the server indicated it). A response without qop
// to a challenge that offered it is kept: RFC 2617 leaves qop optional for
// RFC 2069 clients (a SHOULD), and the parser already refuses a -sess
// response without qop (its HA1 needs the cnonce only qop brings).

import { DIGEST_ALGORITHMS, type DigestAlgorithm, type DigestResponse } from "./types.ts";

/** One challenge: its algorithm and whether it offered qop="auth". */
export interface Offer {
  algorithm: DigestAlgorithm;
  qop: boolean;
}

/** Why a response does not answer what was offered. */
export type OfferMismatch = "algorithm-not-offered" | "qop-not-offered";

/** The offers as stored text: `MD5`, `MD5-sess/auth`, comma-separated. */
export function formatOffers(offers: readonly Offer[]): string {
  if (offers.length === 0) throw new TypeError("formatOffers: at least one challenge is offered");
  return offers.map((o) => (o.qop ? `${o.algorithm}/auth` : o.algorithm)).join(",");
}

/** Reads formatOffers' text; a part it does not know offers nothing (a newer Orchard's, say). */
export function parseOffers(text: string): Offer[] {
  const out: Offer[] = [];
  for (const part of text.split(",")) {
    const [name, qop, ...rest] = part.trim().split("/");
    const algorithm = DIGEST_ALGORITHMS.find((a) => a === name);
    if (algorithm === undefined || rest.length > 0 || (qop !== undefined && qop !== "auth")) continue;
    out.push({ algorithm, qop: qop === "auth" });
  }
  return out;
}

/** Undefined when the response answers one of the offers; else why not. */
export function offerMismatch(response: Pick<DigestResponse, "algorithm" | "qop">, offers: readonly Offer[]): OfferMismatch | undefined {
  const same = offers.filter((o) => o.algorithm === response.algorithm);
  if (same.length === 0) return "algorithm-not-offered";
  if (response.qop !== undefined && !same.some((o) => o.qop)) return "qop-not-offered";
  return undefined;
}
