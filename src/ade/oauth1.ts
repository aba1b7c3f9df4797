// OAuth 1.0a (RFC 5849) HMAC-SHA1 request signing, the one use Apple's device
// assignment API makes of it: the GET /session request is signed with the
// server token's consumer key and secret and access token and secret. The
// Authorization header carries only public values and the signature; the
// secrets never leave this file.
import { createHmac, randomBytes } from "node:crypto";

export interface OAuth1Credentials {
  consumerKey: string;
  consumerSecret: string;
  accessToken: string;
  accessSecret: string;
}

/** RFC 3986 percent-encoding, as RFC 5849 3.6 asks (unreserved characters kept). */
export function percentEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The signature base string (RFC 5849 3.4.1): method, the base URL (no query),
 * and every parameter (the query's, form body's and the oauth_ ones) sorted.
 */
export function signatureBase(method: string, url: URL, params: ReadonlyArray<[string, string]>): string {
  const base = `${url.protocol}//${url.host.toLowerCase()}${url.pathname}`;
  const all: Array<[string, string]> = [...url.searchParams.entries(), ...params].map(([k, v]) => [percentEncode(k), percentEncode(v)]);
  all.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return [method.toUpperCase(), percentEncode(base), percentEncode(all.map(([k, v]) => `${k}=${v}`).join("&"))].join("&");
}

/** HMAC-SHA1 of the base string under consumer secret & token secret, base64. */
export function hmacSha1Signature(base: string, consumerSecret: string, tokenSecret: string): string {
  return createHmac("sha1", `${percentEncode(consumerSecret)}&${percentEncode(tokenSecret)}`)
    .update(base)
    .digest("base64");
}

/** The oauth_ parameters of one request (nonce and timestamp may be given, for tests). */
export function oauthParams(c: OAuth1Credentials, o: { nonce?: string; timestamp?: number } = {}): Array<[string, string]> {
  return [
    ["oauth_consumer_key", c.consumerKey],
    ["oauth_token", c.accessToken],
    ["oauth_signature_method", "HMAC-SHA1"],
    ["oauth_timestamp", String(o.timestamp ?? Math.floor(Date.now() / 1000))],
    ["oauth_nonce", o.nonce ?? randomBytes(16).toString("hex")],
    ["oauth_version", "1.0"],
  ];
}

/** The Authorization header value for a request without form parameters (Apple's GET /session). */
export function authorizationHeader(
  method: string,
  url: URL,
  c: OAuth1Credentials,
  o: { nonce?: string; timestamp?: number } = {},
): string {
  const params = oauthParams(c, o);
  const signature = hmacSha1Signature(signatureBase(method, url, params), c.consumerSecret, c.accessSecret);
  const fields = [...params, ["oauth_signature", signature] as [string, string]];
  return "OAuth " + fields.map(([k, v]) => `${percentEncode(k)}="${percentEncode(v)}"`).join(", ");
}
