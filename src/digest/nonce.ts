// Stateless Digest nonces: any server instance holding the secret can check
// one without shared state. Layout (33 bytes -> 44 base64url chars):
//   version(1) | issued seconds, uint32 BE (4) | random (12) | HMAC-SHA256 truncated (16)
// The MAC also covers the UDID and UserID, so a nonce minted for one
// (device, user) is 'foreign' for any other. Single use is the caller's job:
// record `nonceId` once the response has been checked.

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

const VERSION = 1;
const RANDOM_BYTES = 12;
const MAC_BYTES = 16;
const HEADER_BYTES = 1 + 4 + RANDOM_BYTES;
const NONCE_BYTES = HEADER_BYTES + MAC_BYTES;
const NONCE_CHARS = Math.ceil((NONCE_BYTES * 4) / 3); // 44, no padding: 33 bytes is a multiple of 3
const NONCE_RE = new RegExp(`^[A-Za-z0-9_-]{${NONCE_CHARS}}$`);
// Domain separation, in case the same secret is ever reused for other MACs.
const LABEL = Buffer.from("orchard/digest-nonce\0", "utf8");
const MIN_SECRET_BYTES = 16;

/** Tolerated clock difference between server instances for 'future'. */
export const NONCE_CLOCK_SKEW_MS = 30_000;

export interface MintNonceInput {
  secret: Buffer;
  udid: string;
  userId: string;
  /** Milliseconds since the epoch. */
  now: number;
}

export interface CheckNonceInput extends MintNonceInput {
  nonce: string;
  ttlMs: number;
  /** Defaults to NONCE_CLOCK_SKEW_MS. */
  clockSkewMs?: number;
}

export type CheckNonceResult =
  | { ok: true /** ms since epoch, second precision */; issuedAt: number /** hex, stable per nonce */; nonceId: string }
  | { ok: false; reason: "malformed" | "foreign" | "expired" | "future" };

function checkSecret(secret: unknown): asserts secret is Buffer {
  if (!Buffer.isBuffer(secret) || secret.length < MIN_SECRET_BYTES) {
    throw new TypeError(`Digest nonce secret must be a Buffer of at least ${MIN_SECRET_BYTES} bytes`);
  }
}

function lengthPrefixed(s: string): Buffer {
  const bytes = Buffer.from(s, "utf8");
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

function nonceMac(secret: Buffer, header: Buffer, udid: string, userId: string): Buffer {
  // Length prefixes keep (udid, userId) pairs like ("a:b","c") and ("a","b:c") apart.
  return createHmac("sha256", secret)
    .update(LABEL)
    .update(header)
    .update(lengthPrefixed(udid))
    .update(lengthPrefixed(userId))
    .digest()
    .subarray(0, MAC_BYTES);
}

export function mintNonce(input: MintNonceInput): string {
  const { secret, udid, userId, now } = input;
  checkSecret(secret);
  if (typeof udid !== "string" || typeof userId !== "string") throw new TypeError("mintNonce: udid and userId must be strings");
  const seconds = Math.floor(now / 1000);
  if (!Number.isFinite(now) || seconds < 0 || seconds > 0xffffffff) throw new TypeError("mintNonce: now out of range");

  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(VERSION, 0);
  header.writeUInt32BE(seconds, 1);
  randomBytes(RANDOM_BYTES).copy(header, 5);
  return Buffer.concat([header, nonceMac(secret, header, udid, userId)]).toString("base64url");
}

/** The `nonceId` checkNonce gives for a nonce mintNonce made: its MAC, in hex. */
export function nonceIdOf(nonce: string): string {
  const raw = typeof nonce === "string" && NONCE_RE.test(nonce) ? Buffer.from(nonce, "base64url") : undefined;
  if (raw?.length !== NONCE_BYTES) throw new TypeError("nonceIdOf: not a nonce mintNonce made");
  return raw.subarray(HEADER_BYTES).toString("hex");
}

/** Never throws for a bad nonce; throws TypeError only for bad server-side arguments. */
export function checkNonce(input: CheckNonceInput): CheckNonceResult {
  const { secret, nonce, udid, userId, now, ttlMs, clockSkewMs = NONCE_CLOCK_SKEW_MS } = input;
  checkSecret(secret);
  if (!Number.isFinite(now) || !Number.isFinite(ttlMs) || ttlMs <= 0 || !Number.isFinite(clockSkewMs) || clockSkewMs < 0) {
    throw new TypeError("checkNonce: now, ttlMs and clockSkewMs must be finite (ttlMs > 0)");
  }
  if (typeof udid !== "string" || typeof userId !== "string") throw new TypeError("checkNonce: udid and userId must be strings");
  if (typeof nonce !== "string" || !NONCE_RE.test(nonce)) return { ok: false, reason: "malformed" };
  const raw = Buffer.from(nonce, "base64url");
  if (raw.length !== NONCE_BYTES || raw[0] !== VERSION) return { ok: false, reason: "malformed" };

  const header = raw.subarray(0, HEADER_BYTES);
  const mac = raw.subarray(HEADER_BYTES);
  // MAC before time: a tampered timestamp must read as forged, not as expired.
  if (!timingSafeEqual(mac, nonceMac(secret, header, udid, userId))) {
    return { ok: false, reason: "foreign" };
  }
  const issuedAt = header.readUInt32BE(1) * 1000;
  if (issuedAt > now + clockSkewMs) return { ok: false, reason: "future" };
  if (now - issuedAt > ttlMs) return { ok: false, reason: "expired" };
  return { ok: true, issuedAt, nonceId: mac.toString("hex") };
}
