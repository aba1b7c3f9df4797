import { X509Certificate } from "node:crypto";
import { BoundedCache } from "./cache.ts";
import { IdentityError } from "./errors.ts";

// A forwarded client certificate is 1-3 KB; bound the work done on hostile input.
export const MAX_CERT_HEADER_LENGTH = 64 * 1024;

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

// Every request of a device repeats the same header: parse it once. Only
// successful parses are stored. The key is the header's last KEY_CHARS
// characters, not the whole 1-3 KB string: a request's header is a new string
// each time, and a Map hashes a new string key in full (with the LRU's delete
// and set, that was about 5% of an Idle poll's CPU). The tail, part of the
// certificate's signature in every form the header takes, tells certificates
// apart; a hit counts only when the whole header is the one stored.
const parsed = new BoundedCache<{ header: string; cert: X509Certificate }>(4096);
const KEY_CHARS = 64;
const PARSED_TTL_MS = 10 * 60 * 1000;
const MAX_CACHED_LENGTH = 8 * 1024; // real headers are 1-4 KB; keeps the cache under ~32 MB

/**
 * Reads a client certificate forwarded by a TLS-terminating proxy: URL-escaped PEM
 * (nginx `$ssl_client_escaped_cert`), RFC 9440 `:base64-DER:`, or plain PEM.
 * Throws IdentityError('bad-header') on anything else.
 */
export function certFromHeader(value: string): X509Certificate {
  if (typeof value !== "string") throw badHeader("certificate header is missing");
  if (value.length > MAX_CERT_HEADER_LENGTH) throw badHeader("certificate header is too long");
  const now = Date.now();
  const key = value.length <= KEY_CHARS ? value : value.slice(-KEY_CHARS);
  const cached = parsed.get(key, now);
  if (cached !== undefined && cached.header === value) return cached.cert;
  const cert = parseCertHeader(value.trim());
  if (value.length <= MAX_CACHED_LENGTH) parsed.set(key, { header: value, cert }, now + PARSED_TTL_MS);
  return cert;
}

function parseCertHeader(value: string): X509Certificate {
  if (value === "") throw badHeader("certificate header is empty");
  let der: Buffer;
  if (value.length > 2 && value.startsWith(":") && value.endsWith(":")) {
    der = decodeBase64(value.slice(1, -1)); // RFC 9440 byte sequence
  } else {
    let pem = value;
    if (value.includes("%")) {
      try {
        // decodeURIComponent, unlike querystring, leaves '+' alone (it is base64 here).
        pem = decodeURIComponent(value);
      } catch {
        throw badHeader("certificate header is not valid URL escaping");
      }
    }
    // nginx forwards the client's leaf only; if several blocks come, the first is the leaf.
    const match = PEM_BLOCK.exec(pem);
    if (!match) throw badHeader("certificate header is not a PEM certificate or RFC 9440 value");
    der = decodeBase64(match[1]!);
  }
  try {
    return new X509Certificate(der);
  } catch {
    throw badHeader("certificate header does not hold a valid certificate");
  }
}

function decodeBase64(text: string): Buffer {
  const b64 = text.replace(/\s+/g, "");
  if (!BASE64.test(b64) || b64.length % 4 === 1) throw badHeader("certificate header is not valid base64");
  return Buffer.from(b64, "base64");
}

function badHeader(message: string): IdentityError {
  return new IdentityError("bad-header", message);
}
