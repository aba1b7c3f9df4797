// Tokenizer for `Digest <auth-param list>` (RFC 7235 §2.1 / RFC 7616 §3.3-3.4).
// Tolerant of whitespace, empty list elements and bare values; strict on
// quoting, duplicates and size. Errors never quote input values.

import { DigestError } from "./types.ts";

/** Bound on the whole string: real Digest values are a few hundred chars. */
export const MAX_DIGEST_LENGTH = 4096;
/** Bound on one parameter value. */
export const MAX_PARAM_VALUE_LENGTH = 1024;

// Only these names may appear in error messages: an unknown name is input too.
const KNOWN_PARAMS = new Set([
  "username",
  "username*",
  "realm",
  "nonce",
  "uri",
  "response",
  "algorithm",
  "qop",
  "nc",
  "cnonce",
  "opaque",
  "stale",
  "domain",
  "userhash",
  "charset",
]);

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
// Bare values: RFC 7230 tokens plus `/`, which some clients send in unquoted
// uri and base64 nonce values.
const BARE_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z/]/;

function isWhitespace(c: string | undefined): boolean {
  return c === " " || c === "\t" || c === "\r" || c === "\n";
}

function isControl(code: number): boolean {
  return (code < 0x20 && code !== 0x09) || code === 0x7f;
}

function skipWhitespace(s: string, i: number): number {
  while (i < s.length && isWhitespace(s[i])) i++;
  return i;
}

function readWhile(s: string, i: number, re: RegExp): number {
  while (i < s.length && re.test(s[i]!)) i++;
  return i;
}

export function describeParam(name: string): string {
  return KNOWN_PARAMS.has(name) ? `"${name}"` : "(unrecognised name)";
}

/** Reads a quoted-string starting at the opening quote; returns value and next index. */
function readQuoted(s: string, start: number): [string, number] {
  let out = "";
  let i = start + 1;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '"') return [out, i + 1];
    if (c === "\\") {
      i++;
      if (i >= s.length) break;
    }
    const ch = s[i]!;
    if (isControl(ch.charCodeAt(0))) {
      throw new DigestError("malformed", `control character in quoted string at offset ${i}`);
    }
    out += ch;
    if (out.length > MAX_PARAM_VALUE_LENGTH) throw new DigestError("too-long", "parameter value too long");
    i++;
  }
  throw new DigestError("malformed", `unterminated quoted string starting at offset ${start}`);
}

/**
 * Splits `Digest a="b", c=d` into a map keyed by lowercased parameter name.
 * The scheme token is matched case-insensitively.
 */
export function parseDigestParams(s: string): Map<string, string> {
  if (typeof s !== "string") throw new DigestError("malformed", "not a string");
  if (s.length > MAX_DIGEST_LENGTH) throw new DigestError("too-long", `longer than ${MAX_DIGEST_LENGTH} characters`);

  let i = skipWhitespace(s, 0);
  const schemeEnd = readWhile(s, i, TCHAR);
  if (s.slice(i, schemeEnd).toLowerCase() !== "digest") throw new DigestError("bad-scheme", "scheme is not Digest");
  i = schemeEnd;
  if (i < s.length && !isWhitespace(s[i])) throw new DigestError("bad-scheme", "scheme is not Digest");

  const params = new Map<string, string>();
  for (;;) {
    i = skipWhitespace(s, i);
    if (i >= s.length) break;
    if (s[i] === ",") {
      i++; // empty list element, allowed by RFC 7230 #rule
      continue;
    }
    const nameEnd = readWhile(s, i, TCHAR);
    if (nameEnd === i) throw new DigestError("malformed", `expected a parameter name at offset ${i}`);
    const name = s.slice(i, nameEnd).toLowerCase();
    i = skipWhitespace(s, nameEnd);
    if (s[i] !== "=") throw new DigestError("malformed", `expected "=" after parameter ${describeParam(name)}`);
    i = skipWhitespace(s, i + 1);

    let value: string;
    if (s[i] === '"') {
      [value, i] = readQuoted(s, i);
    } else {
      const end = readWhile(s, i, BARE_CHAR);
      if (end === i) throw new DigestError("malformed", `missing value for parameter ${describeParam(name)}`);
      value = s.slice(i, end);
      if (value.length > MAX_PARAM_VALUE_LENGTH) throw new DigestError("too-long", "parameter value too long");
      i = end;
    }

    if (params.has(name)) throw new DigestError("duplicate-param", `duplicate parameter ${describeParam(name)}`);
    params.set(name, value);

    i = skipWhitespace(s, i);
    if (i >= s.length) break;
    if (s[i] !== ",") throw new DigestError("malformed", `expected "," after parameter ${describeParam(name)}`);
    i++;
  }
  return params;
}
