// Building blocks of the fuzz suite (test/fuzz.test.ts): a seeded PRNG,
// grammar-aware mutations of plist messages (as values and as XML text),
// hostile documents, malformed DigestResponse strings, and store snapshots
// that tell a refused request's (no change allowed) from an accepted one's.
import { CHECKIN_MESSAGE_TYPES } from "../../src/protocol/checkin.ts";
import { REPORT_STATUSES } from "../../src/protocol/report.ts";
import { createHash } from "node:crypto";
import fs from "node:fs";
import type { PlistValue } from "../../src/plist/index.ts";
import type { Store } from "../../src/store/index.ts";
import { AUDIT_TABLES } from "./mdm.ts";

// ---------------------------------------------------------------------------
// PRNG: sfc32 seeded through splitmix32, so one 32-bit seed reproduces a run.

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** [0, 1) */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** Picks by weight: [[weight, value], ...]. */
  weighted<T>(table: ReadonlyArray<readonly [number, T]>): T {
    const total = table.reduce((s, [w]) => s + w, 0);
    let x = this.float() * total;
    for (const [w, v] of table) {
      if ((x -= w) < 0) return v;
    }
    return table[table.length - 1]![1];
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  /** A size that is usually small and sometimes near a boundary. */
  size(): number {
    return this.weighted([
      [6, this.int(16)],
      [3, this.int(300)],
      [1, this.pick([255, 256, 257, 1023, 1024, 1025, 4096, 65535, 65536])],
    ]);
  }
}

// ---------------------------------------------------------------------------
// Values. A Raw element is written verbatim: it puts text the serializer
// refuses to write (huge integers, impossible dates, bad base64, unknown
// elements) exactly where the grammar expects a value.

export class Raw {
  constructor(readonly xml: string) {}
}
export type FuzzValue = PlistValue | Raw | FuzzValue[] | { [key: string]: FuzzValue };
export type FuzzDict = { [key: string]: FuzzValue };

// The protocol layer's own lists: a new message type or status is fuzzed too.
export const MESSAGE_TYPES: readonly string[] = CHECKIN_MESSAGE_TYPES;
export const STATUSES: readonly string[] = REPORT_STATUSES;
/** Keys Orchard reads, so mutations land where the code looks. */
export const KNOWN_KEYS = [
  "MessageType",
  "Status",
  "UDID",
  "EnrollmentID",
  "EnrollmentUserID",
  "UserID",
  "UserShortName",
  "UserLongName",
  "Topic",
  "Token",
  "PushMagic",
  "UnlockToken",
  "AwaitingConfiguration",
  "NotOnConsole",
  "DigestResponse",
  "AuthToken",
  "BootstrapToken",
  "TokenServiceType",
  "TokenParameters",
  "Endpoint",
  "Data",
  "SerialNumber",
  "ProductName",
  "OSVersion",
  "BuildVersion",
  "IMEI",
  "MEID",
  "DeviceName",
  "Model",
  "ModelName",
  "CommandUUID",
  "ErrorChain",
  "QueryResponses",
  "Challenge",
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "",
];

const STRINGS = [
  "",
  " ",
  "a",
  "0",
  "-1",
  "true",
  "null",
  "undefined",
  "NaN",
  "__proto__",
  "constructor",
  "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
  "A:B",
  "A/B",
  "A,B",
  "../..",
  "/",
  "%00",
  "%s%n",
  "\u0001\u0002",
  "\t\r\n",
  "\u00e9\u00e8",
  "\u202e\u202d",
  "\ud83c\udf4f",
  "\ufeff",
  "\ufffd",
  "<",
  ">",
  "&",
  "&amp;",
  "]]>",
  "<!--",
  "'\"",
  "Robert'); DROP TABLE enrollments;--",
  "' OR 1=1 --",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, meant literally
  "${7*7}",
  "{{7*7}}",
  "\\",
  '\\\\\\"',
  "x".repeat(256),
  "x".repeat(257),
  "y".repeat(4096),
  "Digest ",
  "com.apple.mgmt.External.test",
];

const INTEGERS: FuzzValue[] = [
  0,
  1,
  -1,
  2 ** 31,
  -(2 ** 31),
  2 ** 53 - 1,
  -(2 ** 53 - 1),
  2n ** 63n - 1n,
  -(2n ** 63n),
  2n ** 64n - 1n,
  2n ** 63n,
  new Raw("<integer>18446744073709551616</integer>"), // 2^64
  new Raw("<integer>-9223372036854775809</integer>"), // -2^63 - 1
  new Raw(`<integer>${"9".repeat(400)}</integer>`),
  new Raw("<integer>0x</integer>"),
  new Raw("<integer>0xFFFFFFFFFFFFFFFFF</integer>"),
  new Raw("<integer>1e10</integer>"),
  new Raw("<integer>--1</integer>"),
  new Raw("<integer> 12 </integer>"),
  new Raw("<integer></integer>"),
  new Raw("<integer/>"),
  new Raw("<integer>١٢</integer>"),
  new Raw(`<integer>${"0".repeat(5000)}1</integer>`),
];
const REALS: FuzzValue[] = [
  0.5,
  -0,
  NaN,
  Infinity,
  -Infinity,
  1e308,
  5e-324,
  new Raw("<real>1e999</real>"),
  new Raw("<real>.</real>"),
  new Raw("<real>0x10</real>"),
  new Raw("<real>infinityx</real>"),
  new Raw("<real/>"),
];
const DATES: FuzzValue[] = [
  new Date(0),
  new Date("2024-02-29T12:00:00Z"),
  new Date("9999-12-31T23:59:59Z"),
  new Date("0000-01-01T00:00:00Z"),
  new Raw("<date>10000-01-01T00:00:00Z</date>"),
  new Raw("<date>2024-13-01T00:00:00Z</date>"),
  new Raw("<date>2023-02-29T00:00:00Z</date>"),
  new Raw("<date>2024-01-01T24:00:00Z</date>"),
  new Raw("<date>2024-01-01T23:60:00Z</date>"),
  new Raw("<date>2024-01-01T23:59:60Z</date>"),
  new Raw("<date>2024-01-01T00:00:00+02:00</date>"),
  new Raw("<date>2024-01-01</date>"),
  new Raw("<date>-0001-01-01T00:00:00Z</date>"),
  new Raw("<date>2024-01-01T00:00:00.Z</date>"),
  new Raw(`<date>2024-01-01T00:00:00.${"9".repeat(1000)}Z</date>`),
  new Raw("<date/>"),
  new Raw("<date>+275760-09-13T00:00:00Z</date>"),
];
const DATAS: FuzzValue[] = [
  Buffer.alloc(0),
  Buffer.from("x"),
  Buffer.alloc(32, 0xff),
  new Raw("<data>!!!!</data>"),
  new Raw("<data>AAAA=</data>"),
  new Raw("<data>AAA</data>"),
  new Raw("<data>A===</data>"),
  new Raw("<data>AA==AA==</data>"),
  new Raw("<data>\n\tYXBw\n\tbGU=\n</data>"),
  new Raw("<data>YXBwbGU=\u00e9</data>"),
  new Raw("<data>YX&#66;wbGU=</data>"),
  new Raw("<data><![CDATA[YXBwbGU=]]></data>"),
  new Raw("<data/>"),
  new Raw("<data>=</data>"),
];
const ODD_ELEMENTS = [
  "<true>x</true>",
  "<false></false>",
  "<string><string/></string>",
  "<foo/>",
  "<String>x</String>",
  "<string a='1' b=\"2\">x</string>",
  "<string a=>x</string>",
  "<string>&bogus;</string>",
  "<string>&#0;</string>",
  "<string>&#xD800;</string>",
  "<string>&#x110000;</string>",
  "<string>&#99999999999999999999;</string>",
  "<string>&#x;</string>",
  "<string>&amp</string>",
  "<string><![CDATA[a]]>b<!--c-->d</string>",
  "<string><?pi x?></string>",
  "<key>k</key>",
  "<dict><key>a</key></dict>",
  "<dict><string>v</string></dict>",
  "<array><key>k</key></array>",
  "<plist><dict/></plist>",
  "<dict><key>a</key><string>1</string><key>a</key><string>2</string></dict>",
  "<![CDATA[x]]>",
];

export function interestingString(rng: Rng): string {
  return rng.weighted<() => string>([
    [5, () => rng.pick(STRINGS)],
    [2, () => rng.bytes(rng.int(24)).toString("hex").toUpperCase()],
    [1, () => "z".repeat(rng.size())],
    [
      1,
      () =>
        String.fromCodePoint(
          ...Array.from({ length: 1 + rng.int(12) }, () => 1 + rng.int(0x2ffff)).filter((c) => c < 0xd800 || c > 0xdfff),
        ),
    ],
  ])();
}

/** Any value, sometimes a container (bounded depth). */
export function randomValue(rng: Rng, depth = 0): FuzzValue {
  const kinds: Array<readonly [number, () => FuzzValue]> = [
    [6, () => interestingString(rng)],
    [3, () => rng.pick(INTEGERS)],
    [1, () => rng.pick(REALS)],
    [2, () => rng.pick(DATES)],
    [3, () => rng.pick(DATAS)],
    [1, () => rng.bytes(rng.size())],
    [2, () => rng.chance(0.5)],
    [1, () => new Raw(rng.pick(ODD_ELEMENTS))],
  ];
  if (depth < 4) {
    kinds.push([2, () => Array.from({ length: rng.int(4) }, () => randomValue(rng, depth + 1))]);
    kinds.push([
      2,
      () =>
        Object.fromEntries(
          Array.from({ length: rng.int(4) }, () => [rng.pick(KNOWN_KEYS.filter((k) => k !== "__proto__")), randomValue(rng, depth + 1)]),
        ),
    ]);
  }
  return rng.weighted(kinds)();
}

/** The same value as another plist type (a string where data belongs, and so on). */
function retype(v: FuzzValue, rng: Rng): FuzzValue {
  if (typeof v === "string") return rng.pick<FuzzValue>([Buffer.from(v), v.length, v === "true", [v], { v }, new Raw(`<date>${v}</date>`)]);
  if (Buffer.isBuffer(v)) return rng.pick<FuzzValue>([v.toString("base64"), v.toString("hex"), v.length, [v]]);
  if (typeof v === "boolean") return rng.pick<FuzzValue>([String(v), v ? 1 : 0, Buffer.from([v ? 1 : 0])]);
  if (typeof v === "number" || typeof v === "bigint") return rng.pick<FuzzValue>([String(v), Buffer.from(String(v)), v !== 0 && v !== 0n]);
  return interestingString(rng);
}

/** Deep nesting around a value (past and within the parser's depth limit). */
function nest(v: FuzzValue, depth: number, rng: Rng): FuzzValue {
  let out = v;
  for (let i = 0; i < depth; i++) out = rng.chance(0.5) ? [out] : { [rng.pick(["a", "Data", "x"])]: out };
  return out;
}

/** d[k] = v as an own property, even for "__proto__" (which must reach the wire as a key). */
function put(d: FuzzDict, k: string, v: FuzzValue): void {
  Object.defineProperty(d, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** One to three grammar-aware edits of a message's values. Returns a new dict. */
export function mutateDict(base: FuzzDict, rng: Rng): FuzzDict {
  const d: FuzzDict = { ...base };
  const edits = 1 + rng.int(3);
  for (let i = 0; i < edits; i++) {
    const keys = Object.keys(d);
    const key = keys.length > 0 ? rng.pick(keys) : "MessageType";
    rng.weighted<() => void>([
      [3, () => delete d[key]],
      [3, () => put(d, rng.pick(KNOWN_KEYS), randomValue(rng))],
      [4, () => put(d, key, randomValue(rng))],
      [3, () => put(d, key, retype(d[key]!, rng))],
      [2, () => put(d, key, interestingString(rng))],
      [2, () => (d.MessageType = rng.chance(0.8) ? rng.pick(MESSAGE_TYPES) : interestingString(rng))],
      [2, () => (d.Status = rng.chance(0.8) ? rng.pick(STATUSES) : interestingString(rng))],
      [1, () => put(d, key, nest(d[key] ?? "x", rng.pick([2, 8, 30, 31, 32, 33, 64]), rng))],
      [1, () => put(d, interestingString(rng), randomValue(rng))],
      [
        1,
        () => {
          // Many copies of a scalar; a container is repeated a few times only (copies of copies grow fast).
          const v = d[key] ?? 0;
          const big = (typeof v === "string" || Buffer.isBuffer(v)) && v.length > 256;
          const scalar = !big && (typeof v !== "object" || v === null || Buffer.isBuffer(v) || v instanceof Date || v instanceof Raw);
          put(
            d,
            key,
            Array.from({ length: rng.pick(scalar ? [0, 1, 100, 5000] : [0, 1, 2, 3]) }, () => v),
          );
        },
      ],
      [1, () => put(d, key, new Raw(rng.pick(ODD_ELEMENTS)))],
      [1, () => (d.CommandUUID = rng.chance(0.5) ? interestingString(rng) : randomValue(rng))],
    ])();
  }
  return d;
}

// ---------------------------------------------------------------------------
// XML writing without the serializer's checks (it refuses what we want to send).

const HEADER =
  '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n';

function escapeText(s: string): string {
  return s.replace(/[&<>]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&gt;"));
}

function writeValue(v: FuzzValue): string {
  if (v instanceof Raw) return v.xml;
  if (typeof v === "string") return `<string>${escapeText(v)}</string>`;
  if (typeof v === "boolean") return v ? "<true/>" : "<false/>";
  if (typeof v === "bigint") return `<integer>${v}</integer>`;
  if (typeof v === "number") {
    if (Number.isSafeInteger(v) && !Object.is(v, -0)) return `<integer>${v}</integer>`;
    return `<real>${Number.isNaN(v) ? "nan" : v === Infinity ? "+infinity" : v === -Infinity ? "-infinity" : Object.is(v, -0) ? "-0" : String(v)}</real>`;
  }
  if (Buffer.isBuffer(v)) return `<data>${v.toString("base64")}</data>`;
  if (v instanceof Date) {
    const t = v.getTime();
    return `<date>${Number.isNaN(t) ? "invalid" : v.toISOString().slice(0, 19) + "Z"}</date>`;
  }
  if (Array.isArray(v)) return v.length === 0 ? "<array/>" : `<array>${v.map(writeValue).join("")}</array>`;
  const entries = Object.entries(v as FuzzDict);
  return `<dict>${entries.map(([k, x]) => `<key>${escapeText(k)}</key>${writeValue(x)}`).join("")}</dict>`;
}

/** A whole document for a dict, in Apple's prolog. */
export function plistText(dict: FuzzDict): string {
  return `${HEADER}${writeValue(dict)}\n</plist>\n`;
}

// ---------------------------------------------------------------------------
// Text-level mutations: the XML as a token stream (tags and text runs).

const TOKEN = /<[^>]*>|[^<]+/g;
const TAGS = ["dict", "array", "key", "string", "integer", "real", "date", "data", "true", "false", "plist", "foo"];

const PROLOG_EDITS = [
  '<?xml version="1.0" encoding="UTF-16"?>',
  '<?xml version="1.0" encoding="ISO-8859-1"?>',
  '<?xml version="1.1"?>',
  "<?xml-stylesheet href='x'?>",
  '<!DOCTYPE plist [<!ENTITY x "y">]>',
  '<!DOCTYPE plist SYSTEM "file:///etc/passwd">',
  '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd" [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x">%p;]>',
  '<!DOCTYPE plist [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>',
  "<!DOCTYPE plist>",
  "<!DOCTYPE plist PUBLIC \"a\" 'b' >",
  "<!DOCTYPE",
  "<!ELEMENT plist ANY>",
  "<!-- a comment -->",
  "<!-- unterminated",
  "\ufeff",
  "\ufeff\ufeff",
  "   \n\t",
];

const TEXT_EDITS = [
  "&x;",
  "&c;",
  "&lt;",
  "&#60;",
  "&#x3C;",
  "&#0;",
  "&#xD800;",
  "&#x10FFFF;",
  "&#1114112;",
  "&",
  "&amp",
  "]]>",
  "<![CDATA[",
  "<!--",
  "-->",
  "<![CDATA[<dict>]]>",
  "<!-- <key>MessageType</key> -->",
  "\u0000",
  "\u0001",
  "\u000b",
  "\ud800",
  "\udfff",
  "\u2028",
  "x".repeat(70000),
];

export function mutateXml(xml: string, rng: Rng): Buffer {
  const tokens = xml.match(TOKEN) ?? [xml];
  const edits = 1 + rng.int(3);
  let tail: Buffer | undefined;
  for (let e = 0; e < edits; e++) {
    if (tokens.length === 0) tokens.push("");
    const i = rng.int(tokens.length);
    rng.weighted<() => void>([
      [3, () => tokens.splice(i, 1)],
      [3, () => tokens.splice(i, 0, tokens[i]!)],
      [
        2,
        () => {
          const j = rng.int(tokens.length);
          [tokens[i], tokens[j]] = [tokens[j]!, tokens[i]!];
        },
      ],
      [3, () => (tokens[i] = tokens[i]!.replace(/^<(\/?)[a-z]+/, `<$1${rng.pick(TAGS)}`))],
      [3, () => (tokens[i] = tokens[i]!.startsWith("<") ? tokens[i]! : rng.pick(TEXT_EDITS))],
      [2, () => tokens.splice(i, 0, rng.pick(TEXT_EDITS))],
      [2, () => tokens.splice(rng.int(Math.min(3, tokens.length)), 0, rng.pick(PROLOG_EDITS))],
      [
        2,
        () => {
          // A duplicate key: the same <key> again with another value.
          const k = tokens.findIndex((t, n) => n >= i && t === "<key>");
          if (k >= 0 && k + 4 < tokens.length) tokens.splice(k, 0, ...tokens.slice(k, k + 3), "<string>dup</string>");
        },
      ],
      [2, () => tokens.splice(i, 0, `<${rng.pick(["array", "dict"])}>`.repeat(rng.pick([31, 32, 33, 100, 5000])))],
      [1, () => tokens.splice(i, 0, "<string>", "a".repeat(rng.pick([1024 * 1024 - 1, 1024 * 1024 + 1])), "</string>")],
      [1, () => tokens.splice(i, 0, `<key>k${rng.int(1e6)}</key><true/>`.repeat(rng.pick([100, 10_001])))],
      [2, () => tokens.splice(i)],
      [1, () => tokens.push(rng.pick(["<plist/>", "x", "<!-- -->", "\u0000", "</plist>", "<dict/>"]))],
      [1, () => (tail = rng.bytes(1 + rng.int(8)))],
    ])();
  }
  let out: Buffer = Buffer.from(tokens.join(""), "utf8");
  if (tail) out = Buffer.concat([out, tail]);
  if (rng.chance(0.15)) out = mutateBytes(out, rng);
  if (rng.chance(0.03)) out = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(out.toString("utf8"), "utf16le")]);
  return out;
}

/** Byte-level damage: flips, invalid UTF-8 sequences, truncation. */
export function mutateBytes(input: Buffer, rng: Rng): Buffer {
  const b = Buffer.from(input);
  const at = b.length === 0 ? 0 : rng.int(b.length);
  return rng.weighted<() => Buffer>([
    [
      3,
      () => {
        if (b.length > 0) b[at] = b[at]! ^ (1 << rng.int(8));
        return b;
      },
    ],
    [
      3,
      () =>
        Buffer.concat([
          b.subarray(0, at),
          Buffer.from(
            rng.pick([
              [0xc3, 0x28],
              [0xff],
              [0xed, 0xa0, 0x80],
              [0xf4, 0x90, 0x80, 0x80],
              [0xc0, 0xaf],
              [0xe2, 0x82],
              [0x00],
              [0xef, 0xbb, 0xbf],
            ]),
          ),
          b.subarray(at),
        ]),
    ],
    [2, () => b.subarray(0, at)],
    [1, () => Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(16)), b.subarray(at)])],
  ])();
}

// ---------------------------------------------------------------------------
// Malformed DigestResponse strings, every kind the parser and the checks know.

export interface DigestParts {
  username: string;
  realm: string;
  nonce: string;
}

export function malformedDigestResponses(p: DigestParts, rng: Rng): string[] {
  const hex32 = "0123456789abcdef0123456789abcdef";
  const ok = (o: Partial<Record<string, string>> = {}, extra = "") => {
    const f = { username: `"${p.username}"`, realm: `"${p.realm}"`, nonce: `"${p.nonce}"`, uri: '"/"', response: `"${hex32}"`, ...o };
    return (
      "Digest " +
      Object.entries(f)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${v}`)
        .join(",") +
      extra
    );
  };
  const flip = (s: string) => (s.length === 0 ? "x" : s.slice(0, -1) + (s.endsWith("A") ? "B" : "A"));
  return [
    "",
    " ",
    "Digest",
    "Digest ",
    "digest username",
    "Basic dXNlcjpwYXNz",
    "Bearer x",
    'Digestusername="a"',
    "NTLM TlRMTVNTUAAB",
    ok({ username: undefined }),
    ok({ realm: undefined }),
    ok({ nonce: undefined }),
    ok({ uri: undefined }),
    ok({ response: undefined }),
    ok({ username: '""' }),
    ok({ realm: '""' }),
    ok({ nonce: '""' }),
    ok({ response: '""' }),
    ok({}, `,username="${p.username}"`),
    ok({}, ",nonce=x"),
    ok({ username: `"${p.username}` }),
    ok({ realm: '"a\u0001b"' }),
    ok({ username: `"${"u".repeat(1025)}"` }),
    ok({ nonce: "x".repeat(5000) }),
    ok({ response: '"xyz"' }),
    ok({ response: `"${hex32}00"` }),
    ok({ response: `"${"g".repeat(32)}"` }),
    ok({}, ",algorithm=SHA-512-256"),
    ok({}, ",algorithm=foo"),
    ok({}, ",algorithm=MD5-sess"),
    ok({}, ",algorithm=SHA-256"),
    ok({}, ',qop=auth-int,nc=00000001,cnonce="c"'),
    ok({}, ",qop=auth"),
    ok({}, ',qop=auth,nc=1,cnonce="c"'),
    ok({}, ",qop=auth,nc=00000001"),
    ok({}, ",nc=00000001"),
    ok({}, ',cnonce="c"'),
    ok({}, ",userhash=true"),
    ok({ realm: '"other.realm"' }),
    ok({ nonce: `"${flip(p.nonce)}"` }),
    ok({ nonce: `"${p.nonce.slice(0, Math.max(0, p.nonce.length - 5))}"` }),
    ok({ nonce: '"AAAA"' }),
    ok({ nonce: `"${rng.bytes(48).toString("base64url")}"` }),
    ok({ nonce: `"${p.nonce}x"` }),
    ok({ username: '"nobody-at-all"' }),
    ok({ username: '"a\\"b"' }),
    ok({ username: '"\u00e9\u00e8"' }),
    ok({ uri: "/mdm" }),
    ok({ username: "bare" }),
    ok({ username: "=" }),
    ok({}, ","),
    "Digest ,,,,",
    "Digest =x",
    "Digest a",
    'Digest a="b" c="d"',
    'Digest username="a", , realm="b"',
    ok({}, ' garbage="x'),
    ok({}, ',opaque="\u00ff"'),
    "DIGEST " + ok().slice(7).toUpperCase(),
    ok().replaceAll(",", " , "),
    ok().replaceAll('"', ""),
    "Digest " + "a=b,".repeat(2000),
    "\u0000",
    rng.bytes(64).toString("latin1"),
    interestingString(rng),
    ok().slice(0, rng.int(ok().length)),
  ];
}

// ---------------------------------------------------------------------------
// Store snapshots. A refused request must leave every row as it was; the
// only exceptions are the coalesced bookkeeping columns (written a second
// later for earlier, accepted requests) and audit events a refusal records.

/** Columns written off the request path by the Coalescer (core/coalesce.ts). */
const COALESCED: Record<string, string[]> = { enrollments: ["last_seen_at"], user_sessions: ["token_last_used_at"] };
/** Append-only tables compared by row count and highest id (they grow with accepted requests). */
const APPEND_ONLY: Record<string, string> = { events: "id", userauth_failures: "id" };
/** Events a refusal may record: the audit trail of a refused AuthToken. */
export const AUDIT_EVENTS = new Set(["userauth.token_refused"]);

export interface Snapshot {
  /** The store's write counter when the snapshot began (see writeCounter). */
  writes: string;
  tables: Map<string, { hash: string; rows: unknown[] }>;
  appendOnly: Map<string, { count: number; maxId: number }>;
}

/**
 * A value that changes whenever anything is written: SQLite's total_changes()
 * on the one connection the (in-process) server shares; on PostgreSQL the next
 * transaction id to be assigned, which only a writing transaction moves (on
 * the whole cluster, so other databases' writes move it too: that only costs
 * a full comparison). Equal values mean no row changed, without reading any.
 */
export async function writeCounter(store: Store): Promise<string> {
  const sql = store.db.dialect === "sqlite" ? "SELECT total_changes() AS n" : "SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS n";
  return String((await store.db.get<{ n: unknown }>(sql))!.n);
}

function canonical(v: unknown): unknown {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `b64:${Buffer.from(v).toString("base64")}`;
  if (typeof v === "bigint") return `n:${v}`;
  return v;
}

const tableLists = new WeakMap<Store, string[]>();

export async function snapshot(store: Store): Promise<Snapshot> {
  let names = tableLists.get(store);
  if (!names) {
    const tablesSql =
      store.db.dialect === "sqlite"
        ? "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        : "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name";
    // The audit log records refused API requests by design (docs/operators.md).
    names = (await store.db.all<{ name: string }>(tablesSql)).map((r) => r.name).filter((t) => !AUDIT_TABLES.includes(t));
    tableLists.set(store, names);
  }
  const out: Snapshot = { writes: await writeCounter(store), tables: new Map(), appendOnly: new Map() };
  const add = (t: string, rows: Record<string, unknown>[]) => {
    const skip = COALESCED[t] ?? [];
    const clean = rows.map((row) => {
      const o: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(row)) if (!skip.includes(k)) o[k] = canonical(v);
      return o;
    });
    out.tables.set(t, { hash: createHash("sha256").update(JSON.stringify(clean)).digest("hex"), rows: clean });
  };
  if (store.db.dialect === "postgres") {
    // One round trip for every table: a per-table query each time would dominate the run.
    const parts = names.map((t, i) =>
      APPEND_ONLY[t]
        ? `(SELECT json_build_array(COUNT(*), MAX(${APPEND_ONLY[t]})) FROM ${t}) AS t${i}`
        : `(SELECT COALESCE(json_agg(x), '[]'::json) FROM (SELECT * FROM ${t} ORDER BY 1) x) AS t${i}`,
    );
    const row = (await store.db.get<Record<string, unknown>>(`SELECT ${parts.join(", ")}`))!;
    names.forEach((t, i) => {
      const v = row[`t${i}`];
      if (APPEND_ONLY[t]) {
        const [n, m] = v as [number, number | null];
        out.appendOnly.set(t, { count: Number(n), maxId: Number(m ?? 0) });
      } else add(t, v as Record<string, unknown>[]);
    });
    return out;
  }
  for (const t of names) {
    const idCol = APPEND_ONLY[t];
    if (idCol) {
      const r = await store.db.get<{ n: number | string; m: number | string | null }>(`SELECT COUNT(*) AS n, MAX(${idCol}) AS m FROM ${t}`);
      out.appendOnly.set(t, { count: Number(r?.n ?? 0), maxId: Number(r?.m ?? 0) });
    } else {
      add(t, await store.db.all<Record<string, unknown>>(`SELECT * FROM ${t} ORDER BY 1`));
    }
  }
  return out;
}

/** What a refused request changed (empty: nothing), audit events allowed. */
export async function refusalChanges(store: Store, before: Snapshot, after: Snapshot): Promise<string[]> {
  const problems: string[] = [];
  for (const [t, b] of before.tables) {
    const a = after.tables.get(t);
    if (!a || a.hash !== b.hash) problems.push(`${t} changed: ${describeDiff(b.rows, a?.rows ?? [])}`);
  }
  for (const t of after.tables.keys()) if (!before.tables.has(t)) problems.push(`table ${t} appeared`);
  for (const [t, b] of before.appendOnly) {
    const a = after.appendOnly.get(t)!;
    if (a.count === b.count && a.maxId === b.maxId) continue;
    if (t === "events" && a.count - b.count === a.maxId - b.maxId && a.maxId > b.maxId) {
      const added = await store.db.all<{ type: string }>("SELECT type FROM events WHERE id > ? ORDER BY id", [b.maxId]);
      const foreign = added.filter((e) => !AUDIT_EVENTS.has(e.type));
      if (foreign.length === 0) continue;
      problems.push(`events added: ${foreign.map((e) => e.type).join(", ")}`);
      continue;
    }
    problems.push(`${t}: ${b.count} rows (max id ${b.maxId}) became ${a.count} (max id ${a.maxId})`);
  }
  return problems;
}

function describeDiff(before: unknown[], after: unknown[]): string {
  const b = new Set(before.map((r) => JSON.stringify(r)));
  const a = new Set(after.map((r) => JSON.stringify(r)));
  const gone = [...b].filter((r) => !a.has(r));
  const added = [...a].filter((r) => !b.has(r));
  const cut = (s: string) => (s.length > 300 ? s.slice(0, 300) + "..." : s);
  return `-${gone.length} +${added.length} rows; first removed ${cut(gone[0] ?? "")}; first added ${cut(added[0] ?? "")}`;
}

/** Resident set size of a process in bytes (Linux /proc), or of this one. */
export function rssOf(pid?: number): number {
  if (pid === undefined) return process.memoryUsage().rss;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
