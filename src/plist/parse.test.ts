import { test } from "node:test";
import assert from "node:assert/strict";
import { parsePlist, parsePlistDict } from "./index.ts";
import { assertPlistError } from "./testing.ts";

const HEAD =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n';
const doc = (body: string): string => `${HEAD}<plist version="1.0">\n${body}\n</plist>\n`;
const one = (body: string): unknown => parsePlist(doc(body));

test("every scalar type", () => {
  assert.equal(one("<string>hello</string>"), "hello");
  assert.equal(one("<string/>"), "");
  assert.equal(one("<string></string>"), "");
  assert.equal(one("<string>  spaced\n\tout  </string>"), "  spaced\n\tout  ");
  assert.equal(one("<integer>42</integer>"), 42);
  assert.equal(one("<real>2.5</real>"), 2.5);
  assert.equal(one("<true/>"), true);
  assert.equal(one("<false/>"), false);
  assert.equal(one("<true></true>"), true);
  assert.equal(one("<false ></false >"), false);
  assert.deepEqual(one("<date>2024-02-29T23:59:58Z</date>"), new Date("2024-02-29T23:59:58Z"));
  assert.deepEqual(one("<data>aGVsbG8=</data>"), Buffer.from("hello"));
  assert.deepEqual(one("<data></data>"), Buffer.alloc(0));
  assert.deepEqual(one("<data/>"), Buffer.alloc(0));
  assert.ok(Buffer.isBuffer(one("<data>AA==</data>")));
});

test("containers keep order and nest", () => {
  const v = one(`<dict>
    <key>b</key><array><integer>1</integer><string>two</string><array/><dict/></array>
    <key>a</key><dict><key>x</key><true/></dict>
    <key>empty</key><dict></dict>
  </dict>`);
  assert.deepEqual(v, { b: [1, "two", [], {}], a: { x: true }, empty: {} });
  assert.deepEqual(Object.keys(v as object), ["b", "a", "empty"]);
  assert.deepEqual(one("<array></array>"), []);
});

test("multi-line indented base64 as devices wrap it", () => {
  const bytes = Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 7) & 255));
  const b64 = bytes.toString("base64");
  const wrapped = b64
    .match(/.{1,76}/g)!
    .map((l) => `\t\t${l}`)
    .join("\n");
  assert.deepEqual(one(`<data>\n${wrapped}\n\t</data>`), bytes);
  assert.deepEqual(one("<data>\r\n  YX Bw\tbG\nU=  \r\n</data>"), Buffer.from("apple"));
  assert.deepEqual(one("<data>YW\nJj</data>"), Buffer.from("abc"));
});

test("invalid base64 is refused, including AAAA=", () => {
  for (const bad of ["AAAA=", "AAA", "A===", "====", "AA=A", "AA==AA==", "YW*j", "YWJj\u00e9", "YW-_", "=AAA", "A", "AAAAA"]) {
    assertPlistError(() => one(`<data>${bad}</data>`), /data/, [bad]);
  }
  assertPlistError(() => one("<data>YW<!-- c -->Jj</data>"), /unexpected markup in <data>/);
});

test("integers: sign, hex, whitespace, safe range as number, 64-bit range as bigint", () => {
  assert.equal(one("<integer>-17</integer>"), -17);
  assert.equal(one("<integer>+17</integer>"), 17);
  assert.equal(one("<integer> 12 </integer>"), 12);
  assert.equal(one("<integer>0x1F</integer>"), 31);
  assert.equal(one("<integer>-0X10</integer>"), -16);
  assert.equal(one("<integer>000123</integer>"), 123);
  assert.ok(Object.is(one("<integer>-0</integer>"), 0));
  assert.equal(one("<integer>9007199254740991</integer>"), Number.MAX_SAFE_INTEGER);
  assert.equal(one("<integer>-9007199254740991</integer>"), -Number.MAX_SAFE_INTEGER);
  assert.equal(one("<integer>9007199254740992</integer>"), 9007199254740992n);
  assert.equal(one("<integer>18446744073709551615</integer>"), 2n ** 64n - 1n);
  assert.equal(one("<integer>0xFFFFFFFFFFFFFFFF</integer>"), 2n ** 64n - 1n);
  assert.equal(one("<integer>-9223372036854775808</integer>"), -(2n ** 63n));
  assert.equal(one("<integer>00000000000000000000000000042</integer>"), 42);
});

test("huge or malformed integers are refused", () => {
  for (const bad of [
    "18446744073709551616",
    "-9223372036854775809",
    "0x10000000000000000",
    "9".repeat(5000),
    "",
    " ",
    "-",
    "0x",
    "1.5",
    "1e3",
    "12a",
    "0xG1",
    "--1",
    "1 2",
  ]) {
    assertPlistError(() => one(`<integer>${bad}</integer>`), /integer/);
  }
  assertPlistError(() => one("<integer/>"), /empty <integer>/);
  assertPlistError(() => one(`<integer>${"9".repeat(21)}</integer>`), /out of 64-bit range/);
  assertPlistError(() => one(`<integer>${"z".repeat(30)}</integer>`), /malformed <integer>/);
});

test("reals, including the spellings CF writes for NaN and infinities", () => {
  assert.equal(one("<real>-1.25e-3</real>"), -1.25e-3);
  assert.equal(one("<real>3</real>"), 3);
  assert.equal(one("<real>.5</real>"), 0.5);
  assert.equal(one("<real>5.</real>"), 5);
  assert.equal(one("<real> 1E+2 </real>"), 100);
  assert.ok(Object.is(one("<real>-0.0</real>"), -0));
  assert.ok(Number.isNaN(one("<real>nan</real>")));
  assert.ok(Number.isNaN(one("<real>NaN</real>")));
  assert.equal(one("<real>inf</real>"), Infinity);
  assert.equal(one("<real>+infinity</real>"), Infinity);
  assert.equal(one("<real>-INF</real>"), -Infinity);
  assert.equal(one("<real>-infinity</real>"), -Infinity);
  for (const bad of ["", "abc", "1.2.3", "0x10", "1e", "e5", "--1", "infinit", "constructor", "__proto__"]) {
    assertPlistError(() => one(`<real>${bad}</real>`), /real/);
  }
});

test("dates: ISO 8601 UTC, fractional seconds tolerated", () => {
  assert.deepEqual(one("<date>2016-12-13T17:45:02Z</date>"), new Date(Date.UTC(2016, 11, 13, 17, 45, 2)));
  assert.equal((one("<date>2016-12-13T17:45:02.789123Z</date>") as Date).toISOString(), "2016-12-13T17:45:02.789Z");
  assert.equal((one("<date>2016-12-13T17:45:02.5Z</date>") as Date).getUTCMilliseconds(), 500);
  assert.equal((one("<date>0001-01-01T00:00:00Z</date>") as Date).getUTCFullYear(), 1);
  assert.equal((one("<date>0099-03-01T00:00:00Z</date>") as Date).toISOString(), "0099-03-01T00:00:00.000Z");
  assert.equal((one("<date>9999-12-31T23:59:59Z</date>") as Date).toISOString(), "9999-12-31T23:59:59.000Z");
});

test("bad dates are refused", () => {
  for (const bad of [
    "2023-02-29T00:00:00Z", // not a leap year
    "1900-02-29T00:00:00Z",
    "2024-13-01T00:00:00Z",
    "2024-00-10T00:00:00Z",
    "2024-04-31T00:00:00Z",
    "2024-01-01T24:00:00Z",
    "2024-01-01T00:60:00Z",
    "2024-01-01T00:00:60Z",
    "2024-01-01T00:00:00",
    "2024-01-01T00:00:00+02:00",
    "2024-01-01 00:00:00Z",
    "2024-1-01T00:00:00Z",
    "2024-01-01T00:00:00.Z",
    "2024-01-01T00:00:00.1aZ",
    "+12024-01-01T00:00:00Z",
    "yesterday",
    "",
  ]) {
    assertPlistError(() => one(`<date>${bad}</date>`), /date/);
  }
});

test("predefined entities and numeric character references", () => {
  assert.equal(one("<string>&lt;a&gt; &amp; &quot;b&quot; &apos;c&apos;</string>"), "<a> & \"b\" 'c'");
  assert.equal(one("<string>&#65;&#x42;&#x1f600;&#x1F600;&#0000000068;</string>"), "AB😀😀D");
  assert.equal(one("<string>&#9;&#10;&#13;</string>"), "\t\n\r");
  assert.deepEqual(one("<dict><key>a&amp;b</key><string>x</string></dict>"), { "a&b": "x" });
});

test("unknown entities and invalid character references are refused", () => {
  assertPlistError(() => one("<string>&secret;</string>"), /unknown entity reference/, ["secret"]);
  assertPlistError(() => one("<string>&nbsp;</string>"), /unknown entity/);
  assertPlistError(() => one("<string>AT&T</string>"), /unterminated entity reference/);
  assertPlistError(() => one("<string>a & b</string>"), /unterminated entity|unknown entity/);
  for (const ref of [
    "&#0;",
    "&#x0;",
    "&#xD800;",
    "&#xDFFF;",
    "&#x110000;",
    "&#99999999999999999999;",
    "&#;",
    "&#x;",
    "&#12a;",
    "&#xZ;",
    "&# 65;",
    "&#X41;",
  ]) {
    assertPlistError(() => one(`<string>${ref}</string>`), /character reference/);
  }
});

test("CDATA sections and comments inside strings", () => {
  assert.equal(one("<string><![CDATA[<not> &markup;]]></string>"), "<not> &markup;");
  assert.equal(one("<string>a<![CDATA[b]]>c&amp;<![CDATA[]]>d</string>"), "abc&d");
  assert.equal(one("<string>a<!-- hidden -->b</string>"), "ab");
  assertPlistError(() => one("<string><![CDATA[never closed</string>"), /unexpected end of document/);
});

test("comments, whitespace and attributes between elements", () => {
  const v = parsePlist(`<?xml version='1.0' encoding='utf-8' standalone="yes"?>
<!-- leading -->
<!DOCTYPE plist SYSTEM "file://localhost/System/Library/DTDs/PropertyList.dtd">
<!-- after doctype -->
<plist version="1.0" xmlns:x='urn:x'>
  <!-- before --><dict>
    <!-- between --> <key>k</key> <!-- here too -->
    <string>v</string>
  <!-- end --></dict> <!-- after -->
</plist>
<!-- trailing -->
`);
  assert.deepEqual(v, { k: "v" });
  assert.deepEqual(parsePlist("<plist><true/></plist>"), true);
  assert.deepEqual(parsePlist("\ufeff<plist><true/></plist>"), true);
});

test("structural errors", () => {
  const cases: [string, RegExp][] = [
    ["<dict><key>a</key><string>1</string><key>a</key><string>2</string></dict>", /duplicate key/],
    ["<dict><string>no key</string></dict>", /expected <key>/],
    ["<dict><key>a</key></dict>", /missing value for <key>/],
    ["<dict><key>a</key><key>b</key><true/></dict>", /unexpected <key>/],
    ["<array><key>a</key></array>", /unexpected <key>/],
    ["<dict>text<key>a</key><true/></dict>", /unexpected text in <dict>/],
    ["<array>text</array>", /unexpected text/],
    ["<array><true/></dict>", /expected <\/array>/],
    ["<string>a</key>", /expected <\/string>/],
    ["<string>a<b>c</b></string>", /unexpected markup in <string>/],
    ["<integer>1<!-- x --></integer>", /unexpected markup in <integer>/],
    ["<true>x</true>", /expected <\/true>/],
    ["<foo/>", /unknown element/],
    ["<Dict/>", /unknown element/],
    ["<dict1/>", /unknown element/],
    ["<null/>", /unknown element/],
    ["<plist><true/></plist>", /unexpected <plist>/],
    ["<true/><false/>", /exactly one value/],
    ["<date/>", /empty <date>/],
    ["<real/>", /empty <real>/],
    ["<dict foo>", /malformed attribute/],
    ['<dict a="1" b=2/>', /malformed attribute/],
    ['<dict a="<"/>', /malformed attribute/],
    ["<true/ >", /malformed start tag/],
  ];
  for (const [body, re] of cases) assertPlistError(() => one(body), re);
  assertPlistError(() => parsePlist(`${HEAD}<plist version="1.0"></plist>`), /<plist> has no value/);
  assertPlistError(() => parsePlist(`${HEAD}<plist/>`), /<plist> has no value/);
  assertPlistError(() => parsePlist("<dict/>"), /root element must be <plist>/);
  assertPlistError(() => parsePlist("hello <plist><true/></plist>"), /expected <plist>/);
  assertPlistError(() => parsePlist("<plist><true/></plist>trailing"), /after <\/plist>/);
  assertPlistError(() => parsePlist("<plist><true/></plist><plist><true/></plist>"), /after <\/plist>/);
  assertPlistError(() => parsePlist(""), /unexpected end of document/);
  assertPlistError(() => parsePlist("   "), /unexpected end of document/);
  assertPlistError(() => parsePlist(' <?xml version="1.0"?><plist><true/></plist>'), /processing instructions/);
  assertPlistError(() => parsePlist('<?xml-stylesheet href="x"?><plist><true/></plist>'), /processing instructions/);
  assertPlistError(() => parsePlist('<?xml version="1.0" encoding="UTF-16"?><plist><true/></plist>'), /encoding/);
  assertPlistError(() => parsePlist('<?xml version="1.0" encoding="ISO-8859-1"?><plist><true/></plist>'), /encoding/);
  assertPlistError(() => parsePlist("<!-- never closed <plist><true/></plist>"), /unexpected end of document/);
});

test("errors carry the offset of the problem", () => {
  const text = "<plist><dict><key>a</key><integer>x</integer></dict></plist>";
  const err = assertPlistError(() => parsePlist(text), /malformed <integer> at offset 25$/);
  assert.equal(err.offset, text.indexOf("<integer>"));
});

test("parsePlistDict requires a top-level dict", () => {
  assert.deepEqual(parsePlistDict("<plist><dict><key>a</key><true/></dict></plist>"), { a: true });
  for (const body of [
    "<array/>",
    "<string>x</string>",
    "<data>AA==</data>",
    "<date>2020-01-01T00:00:00Z</date>",
    "<true/>",
    "<integer>1</integer>",
  ]) {
    assertPlistError(() => parsePlistDict(`<plist>${body}</plist>`), /^top-level value is not a dict$/);
  }
});

test("keys that are Object.prototype names are plain own keys; __proto__ is refused", () => {
  const v = parsePlistDict(
    "<plist><dict><key>constructor</key><true/><key>toString</key><integer>1</integer><key>hasOwnProperty</key><string>x</string></dict></plist>",
  );
  assert.deepEqual(Object.keys(v), ["constructor", "toString", "hasOwnProperty"]);
  assert.equal(v["constructor"], true);
  assertPlistError(
    () => parsePlist("<plist><dict><key>__proto__</key><dict><key>polluted</key><true/></dict></dict></plist>"),
    /forbidden key/,
  );
  assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
  // A duplicate of an inherited name is still detected as a duplicate only when repeated.
  assertPlistError(
    () => parsePlist("<plist><dict><key>constructor</key><true/><key>constructor</key><true/></dict></plist>"),
    /duplicate key/,
  );
});

test("Buffer input: UTF-8 decoding, BOM stripped, invalid UTF-8 refused", () => {
  const text = "<plist><string>Grüße 中文 😀</string></plist>";
  assert.equal(parsePlist(Buffer.from(text, "utf8")), "Grüße 中文 😀");
  assert.equal(parsePlist(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])), "Grüße 中文 😀");
  assert.equal(parsePlist(new Uint8Array(Buffer.from(text)) as Buffer), "Grüße 中文 😀");
  const bad = [
    [0xff],
    [0xc3], // truncated sequence
    [0xc0, 0x80], // overlong NUL
    [0xed, 0xa0, 0x80], // encoded surrogate
    [0xf4, 0x90, 0x80, 0x80], // > U+10FFFF
    [0x80],
  ];
  for (const bytes of bad) {
    const input = Buffer.concat([Buffer.from("<plist><string>"), Buffer.from(bytes), Buffer.from("</string></plist>")]);
    assertPlistError(() => parsePlist(input), /^invalid UTF-8$/);
  }
  assertPlistError(() => parsePlist("<plist><string>\ud800</string></plist>"), /lone surrogate/);
  assertPlistError(() => parsePlist("<plist><string>a\0b</string></plist>"), /NUL character at offset 16/);
});

test("non-string, non-Buffer input is a PlistError", () => {
  for (const bad of [undefined, null, 42, {}, [], new ArrayBuffer(4)]) {
    assertPlistError(() => parsePlist(bad as unknown as string), /must be a string or Buffer/);
  }
});

test("maxKeys counts each dict on its own, not its siblings together", () => {
  const doc =
    '<plist version="1.0"><array><dict><key>a</key><true/><key>b</key><true/></dict><dict><key>a</key><true/><key>b</key><true/></dict></array></plist>';
  assert.deepEqual(parsePlist(doc, { maxKeys: 2 }), [
    { a: true, b: true },
    { a: true, b: true },
  ]);
  assert.throws(
    () => parsePlist('<plist version="1.0"><dict><key>a</key><true/><key>b</key><true/><key>c</key><true/></dict></plist>', { maxKeys: 2 }),
    /too many keys/,
  );
});
