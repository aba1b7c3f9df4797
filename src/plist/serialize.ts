// XML property list writer in Apple's layout (tab indentation, root at column 0).
// Output is deterministic (dict keys in insertion order) and parsePlist reads
// back exactly what was written. Values that cannot be represented are
// programmer errors and throw TypeError.

import type { PlistValue } from "./types.ts";

const HEADER =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
  '<plist version="1.0">\n';

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

// & < > must be escaped; CR as a reference survives XML line-end normalisation;
// other C0 controls as references keep the document printable.
const NEEDS_ESCAPE = /[&<>\x01-\x08\x0b\x0c\x0d\x0e-\x1f]/;
const ESCAPE_ALL = /[&<>\x01-\x08\x0b\x0c\x0d\x0e-\x1f]/g;

type WellFormed = { isWellFormed(): boolean };

function escapeText(s: string): string {
  // NUL and lone surrogates: the parser (and UTF-8) cannot carry them back.
  if (s.indexOf("\0") !== -1) throw new TypeError("plist strings cannot contain U+0000");
  if (!(s as unknown as WellFormed).isWellFormed()) throw new TypeError("plist strings cannot contain lone surrogates");
  if (!NEEDS_ESCAPE.test(s)) return s;
  return s.replace(ESCAPE_ALL, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : `&#${c.charCodeAt(0)};`));
}

const indents: string[] = [""];
function indent(n: number): string {
  while (indents.length <= n) indents.push(indents[indents.length - 1] + "\t");
  return indents[n]!;
}

/** Serializes a value as a complete XML plist document ending in a newline. */
export function serializePlist(value: PlistValue): string {
  return HEADER + write(value, 0, []) + "</plist>\n";
}

/** One element (with trailing newline) at the given depth; `path` detects cycles. */
function write(v: unknown, depth: number, path: object[]): string {
  switch (typeof v) {
    case "string":
      return `${indent(depth)}<string>${escapeText(v)}</string>\n`;
    case "boolean":
      return `${indent(depth)}${v ? "<true/>" : "<false/>"}\n`;
    case "number":
      return `${indent(depth)}${number(v)}\n`;
    case "bigint":
      if (v < INT64_MIN || v > UINT64_MAX) throw new TypeError("bigint outside the plist integer range [-2^63, 2^64-1]");
      return `${indent(depth)}<integer>${v}</integer>\n`;
    case "object":
      break;
    default:
      throw new TypeError(`cannot serialize a ${typeof v} in a plist`);
  }
  if (v === null) throw new TypeError("cannot serialize null in a plist");
  if (v instanceof Uint8Array) {
    const b64 = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
    return `${indent(depth)}<data>${b64}</data>\n`;
  }
  if (v instanceof Date) return `${indent(depth)}<date>${date(v)}</date>\n`;
  if (path.includes(v)) throw new TypeError("cannot serialize a cyclic structure as a plist");
  path.push(v);
  let out: string;
  if (Array.isArray(v)) {
    out = array(v, depth, path);
  } else {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) throw new TypeError("cannot serialize a class instance in a plist");
    out = dict(v as Record<string, unknown>, depth, path);
  }
  path.pop();
  return out;
}

function array(v: unknown[], depth: number, path: object[]): string {
  const pad = indent(depth);
  if (v.length === 0) return `${pad}<array/>\n`;
  let out = `${pad}<array>\n`;
  for (let i = 0; i < v.length; i++) {
    // undefined cannot be skipped in an array without shifting indexes.
    if (v[i] === undefined) throw new TypeError("cannot serialize undefined in a plist array");
    out += write(v[i], depth + 1, path);
  }
  return `${out}${pad}</array>\n`;
}

function dict(v: Record<string, unknown>, depth: number, path: object[]): string {
  const pad = indent(depth);
  const inner = indent(depth + 1);
  let body = "";
  for (const k of Object.keys(v)) {
    const item = v[k];
    if (item === undefined) continue; // like JSON.stringify: an absent optional field
    if (k === "__proto__") throw new TypeError('cannot serialize a "__proto__" key');
    body += `${inner}<key>${escapeText(k)}</key>\n${write(item, depth + 1, path)}`;
  }
  return body === "" ? `${pad}<dict/>\n` : `${pad}<dict>\n${body}${pad}</dict>\n`;
}

function number(n: number): string {
  // -0 and integers beyond 2^53 go out as <real> so they read back as the same number.
  if (Number.isSafeInteger(n) && !Object.is(n, -0)) return `<integer>${n}</integer>`;
  if (Number.isNaN(n)) return "<real>nan</real>";
  if (n === Infinity) return "<real>+infinity</real>";
  if (n === -Infinity) return "<real>-infinity</real>";
  return `<real>${Object.is(n, -0) ? "-0" : String(n)}</real>`;
}

function date(d: Date): string {
  const t = d.getTime();
  if (Number.isNaN(t)) throw new TypeError("cannot serialize an invalid Date");
  const y = d.getUTCFullYear();
  if (y < 0 || y > 9999) throw new TypeError("Date year outside 0000-9999");
  // Whole seconds, as CFPropertyList writes them.
  return `${d.toISOString().slice(0, 19)}Z`;
}
