// Input decoding and XML character/entity references.

import { PlistError } from "./errors.ts";

// fatal: invalid UTF-8 throws instead of becoming U+FFFD; a leading BOM is dropped.
const utf8 = new TextDecoder("utf-8", { fatal: true });

type WellFormed = { isWellFormed(): boolean }; // ES2024, present in Node >= 20

/** Turns the request body into a string the parser can index by UTF-16 unit. */
export function decodeInput(input: unknown): string {
  let s: string;
  if (typeof input === "string") {
    s = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
    // A lone surrogate cannot be re-encoded as UTF-8, so it cannot be a device's text.
    if (!(s as unknown as WellFormed).isWellFormed()) throw new PlistError("invalid UTF-16 text (lone surrogate)");
  } else if (input instanceof Uint8Array) {
    try {
      s = utf8.decode(input);
    } catch {
      throw new PlistError("invalid UTF-8");
    }
  } else {
    throw new PlistError("input must be a string or Buffer");
  }
  // U+0000 is not an XML character and truncates strings in C consumers downstream.
  const nul = s.indexOf("\0");
  if (nul !== -1) throw new PlistError("NUL character", nul);
  return s;
}

/**
 * Decodes the five predefined entities and numeric references in `text`, which
 * starts at document offset `base` (offsets in errors are document offsets).
 * Anything else (including named entities a DTD could define) is refused.
 */
export function decodeEntities(text: string, base: number): string {
  let out = "";
  let from = 0;
  let amp = text.indexOf("&");
  while (amp !== -1) {
    const semi = text.indexOf(";", amp + 1);
    if (semi === -1) throw new PlistError("unterminated entity reference", base + amp);
    out += text.slice(from, amp);
    out += entity(text, amp + 1, semi, base + amp);
    from = semi + 1;
    amp = text.indexOf("&", from);
  }
  return out + text.slice(from);
}

function entity(t: string, start: number, end: number, at: number): string {
  const len = end - start;
  const c0 = t.charCodeAt(start);
  if (c0 === 0x23 /* # */) return charRef(t, start + 1, end, at);
  if (len === 2 && t.charCodeAt(start + 1) === 0x74 /* t */) {
    if (c0 === 0x6c /* l */) return "<";
    if (c0 === 0x67 /* g */) return ">";
  } else if (len === 3 && t.startsWith("amp", start)) return "&";
  else if (len === 4 && t.startsWith("quot", start)) return '"';
  else if (len === 4 && t.startsWith("apos", start)) return "'";
  throw new PlistError("unknown entity reference", at);
}

function charRef(t: string, start: number, end: number, at: number): string {
  let i = start;
  let radix = 10;
  if (t.charCodeAt(i) === 0x78 /* x */) {
    radix = 16;
    i++;
  }
  if (i === end) throw new PlistError("empty character reference", at);
  let cp = 0;
  for (; i < end; i++) {
    const d = digitValue(t.charCodeAt(i));
    if (d >= radix) throw new PlistError("malformed character reference", at);
    // Saturate instead of overflowing; leading zeros are legal XML.
    if (cp <= 0x10ffff) cp = cp * radix + d;
  }
  if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    throw new PlistError("character reference to an invalid code point", at);
  }
  return String.fromCodePoint(cp);
}

/** 0-15 for hex digits, 99 otherwise. */
export function digitValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return 99;
}
