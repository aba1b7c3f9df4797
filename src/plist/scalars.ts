// Content of <integer>, <real>, <date> and <data>. Each takes the raw element
// text (no markup inside) and its document offset for error positions.

import { PlistError } from "./errors.ts";
import { digitValue } from "./text.ts";

const isWs = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Decimal or 0x-hex with optional sign, surrounding whitespace allowed (as CF).
 * Safe integers become numbers; the rest of [-2^63, 2^64-1] becomes bigint.
 */
export function parseInteger(t: string, at: number): number | bigint {
  let i = 0;
  let end = t.length;
  while (isWs(t.charCodeAt(i))) i++;
  while (end > i && isWs(t.charCodeAt(end - 1))) end--;
  let neg = false;
  const sign = t.charCodeAt(i);
  if (sign === 0x2d /* - */ || sign === 0x2b /* + */) {
    neg = sign === 0x2d;
    i++;
  }
  let radix = 10;
  if (t.charCodeAt(i) === 0x30 && (t.charCodeAt(i + 1) | 0x20) === 0x78 /* 0x */) {
    radix = 16;
    i += 2;
  }
  if (i >= end) throw new PlistError("empty or malformed <integer>", at);
  // Skip leading zeros so digit counts below measure magnitude, not padding.
  while (i < end - 1 && t.charCodeAt(i) === 0x30) i++;
  const digits = end - i;
  // 15 decimal / 13 hex digits always fit in 2^53.
  if (digits <= (radix === 10 ? 15 : 13)) {
    let v = 0;
    for (let j = i; j < end; j++) {
      const d = digitValue(t.charCodeAt(j));
      if (d >= radix) throw new PlistError("malformed <integer>", at);
      v = v * radix + d;
    }
    return neg ? (v === 0 ? 0 : -v) : v;
  }
  for (let j = i; j < end; j++) {
    if (digitValue(t.charCodeAt(j)) >= radix) throw new PlistError("malformed <integer>", at);
  }
  // Longer than 2^64 allows: refuse before handing a huge string to BigInt.
  if (digits > (radix === 10 ? 20 : 16)) throw new PlistError("<integer> out of 64-bit range", at);
  const mag = BigInt((radix === 16 ? "0x" : "") + t.slice(i, end));
  const v = neg ? -mag : mag;
  if (v < INT64_MIN || v > UINT64_MAX) throw new PlistError("<integer> out of 64-bit range", at);
  return v >= -SAFE_MAX && v <= SAFE_MAX ? Number(v) : v;
}

const REAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
// Spellings CFPropertyList reads (case-insensitive); it writes nan/+infinity/-infinity.
const SPECIAL_REALS = new Map<string, number>([
  ["nan", NaN],
  ["inf", Infinity],
  ["+inf", Infinity],
  ["infinity", Infinity],
  ["+infinity", Infinity],
  ["-inf", -Infinity],
  ["-infinity", -Infinity],
]);

export function parseReal(t: string, at: number): number {
  const s = t.trim();
  if (REAL.test(s)) return Number(s);
  const special = s.length <= 9 ? SPECIAL_REALS.get(s.toLowerCase()) : undefined;
  if (special === undefined) throw new PlistError("malformed <real>", at);
  return special;
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Decimal value of s[i, i+len), or -1 if any of it is not a digit. */
function digits(s: string, i: number, len: number): number {
  let v = 0;
  for (let j = i; j < i + len; j++) {
    const c = s.charCodeAt(j) - 0x30;
    if (!(c >= 0 && c <= 9)) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** YYYY-MM-DDTHH:MM:SS[.fraction]Z, UTC only, every field range-checked. */
export function parseDate(t: string, at: number): Date {
  const s = t.trim();
  const len = s.length;
  let ok = len >= 20 && s[len - 1] === "Z";
  ok &&= s[4] === "-" && s[7] === "-" && s[10] === "T" && s[13] === ":" && s[16] === ":";
  const year = digits(s, 0, 4);
  const month = digits(s, 5, 2);
  const day = digits(s, 8, 2);
  const hour = digits(s, 11, 2);
  const minute = digits(s, 14, 2);
  const second = digits(s, 17, 2);
  let ms = 0;
  if (ok && len > 20) {
    // Fractional seconds: tolerated, truncated to milliseconds.
    ok = s[19] === "." && len > 21;
    for (let j = 20; ok && j < len - 1; j++) ok = s.charCodeAt(j) >= 0x30 && s.charCodeAt(j) <= 0x39;
    ms = Number(s.slice(20, Math.min(23, len - 1)).padEnd(3, "0"));
  }
  ok &&= year >= 0 && month >= 1 && month <= 12 && day >= 1 && hour >= 0 && hour <= 23;
  ok &&= minute >= 0 && minute <= 59 && second >= 0 && second <= 59;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  ok &&= day <= (month === 2 && leap ? 29 : DAYS[month - 1]!);
  if (!ok) throw new PlistError("malformed <date>", at);
  const d = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, ms));
  d.setUTCFullYear(year); // Date.UTC maps years 0-99 to 1900-1999
  return d;
}

// 1 for base64 alphabet characters, 2 for XML whitespace, 0 otherwise.
const B64 = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") B64[c.charCodeAt(0)] = 1;
for (const c of " \t\r\n") B64[c.charCodeAt(0)] = 2;

const TIGHT_B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Strict base64: whitespace anywhere, padding only at the end and making the
 * length a multiple of 4 (so `AAAA=` fails). The size limit is checked before
 * decoding. Node's decoder skips the whitespace we validated.
 */
export function parseData(t: string, at: number, maxBytes: number): Buffer {
  // Fast path: one unwrapped line, validated by a compiled regex instead of a JS loop.
  if (t.length % 4 === 0 && TIGHT_B64.test(t)) {
    if (decodedLength(t) > maxBytes) throw new PlistError("<data> exceeds size limit", at);
    return Buffer.from(t, "base64");
  }
  let chars = 0;
  let pad = 0;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    const k = c < 128 ? B64[c]! : 0;
    if (k === 2) continue;
    if (c === 0x3d /* = */) {
      if (++pad > 2) throw new PlistError("bad base64 padding in <data>", at);
    } else if (k === 1 && pad === 0) {
      chars++;
    } else {
      throw new PlistError(k === 1 ? "base64 after padding in <data>" : "invalid base64 character in <data>", at);
    }
  }
  if ((chars + pad) % 4 !== 0) throw new PlistError("bad base64 length or padding in <data>", at);
  if (Math.floor((chars * 3) / 4) > maxBytes) throw new PlistError("<data> exceeds size limit", at);
  return Buffer.from(t, "base64");
}

function decodedLength(t: string): number {
  const pad = t.endsWith("==") ? 2 : t.endsWith("=") ? 1 : 0;
  return (t.length / 4) * 3 - pad;
}
