// Hostile input: DTD tricks, nesting bombs, every limit, and fuzzed documents.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_PLIST_LIMITS, PlistError, parsePlist, serializePlist } from "./index.ts";
import { assertPlistError, fixtures, prng } from "./testing.ts";

const BILLION_LAUGHS = `<?xml version="1.0"?>
<!DOCTYPE plist [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<plist version="1.0"><string>&lol9;</string></plist>`;

test("DOCTYPE with an internal subset is refused (billion laughs, XXE)", () => {
  assertPlistError(() => parsePlist(BILLION_LAUGHS), /DOCTYPE internal subset is not allowed/);
  const xxe =
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd" [<!ENTITY x SYSTEM "file:///etc/passwd">]><plist><string>&x;</string></plist>';
  assertPlistError(() => parsePlist(xxe), /DOCTYPE internal subset is not allowed/);
  // A '[' inside a quoted identifier is not a subset.
  assert.equal(parsePlist('<!DOCTYPE plist SYSTEM "weird[name].dtd"><plist><true/></plist>'), true);
  assertPlistError(() => parsePlist('<!DOCTYPE plist "unterminated><plist><true/></plist>'), /unexpected end of document/);
  assertPlistError(() => parsePlist("<!DOCTYPE plist><!DOCTYPE plist><plist><true/></plist>"), /unsupported markup declaration/);
  assertPlistError(() => parsePlist("<!DOCTYPEplist><plist><true/></plist>"), /malformed DOCTYPE/);
});

test("entity declarations and references to them are refused, never expanded", () => {
  assertPlistError(() => parsePlist('<!ENTITY lol "lol"><plist><string>&lol;</string></plist>'), /entity declarations are not allowed/);
  assertPlistError(() => parsePlist("<plist><string>&lol9;</string></plist>"), /unknown entity reference/, ["lol9"]);
  assertPlistError(() => parsePlist('<plist><!ENTITY x "y"><true/></plist>'), /unexpected end tag|unknown element|malformed/);
  assertPlistError(() => parsePlist("<!ELEMENT plist ANY><plist><true/></plist>"), /unsupported markup declaration/);
});

test("absurd nesting fails fast with PlistError, not a stack overflow", () => {
  for (const [open, close] of [
    ["<array>", "</array>"],
    ["<dict><key>k</key>", "</dict>"],
  ] as const) {
    const deep = `<plist>${open.repeat(10_000)}<true/>${close.repeat(10_000)}</plist>`;
    const started = performance.now();
    const err = assertPlistError(() => parsePlist(deep), /nesting too deep/);
    assert.ok(performance.now() - started < 1000);
    assert.ok(err.offset! < 33 * open.length + 10, "stopped at the 33rd level, not at the end");
    // Unclosed nesting too: still a PlistError.
    assertPlistError(() => parsePlist(`<plist>${open.repeat(100_000)}`), /nesting too deep/);
  }
});

test("depth limit is exact, and raising it parses 100 000 levels iteratively", () => {
  const nest = (n: number): string => `<plist>${"<array>".repeat(n)}${"</array>".repeat(n)}</plist>`;
  assert.deepEqual(parsePlist(nest(32)), JSON.parse("[".repeat(32) + "]".repeat(32)));
  assertPlistError(() => parsePlist(nest(33)), /nesting too deep/);
  assertPlistError(() => parsePlist(nest(3), { maxDepth: 2 }), /nesting too deep/);
  let v = parsePlist(nest(100_000), { maxDepth: Infinity });
  let depth = 0;
  while (Array.isArray(v) && v.length > 0) {
    v = v[0]!;
    depth++;
  }
  assert.equal(depth, 99_999);
});

test("each limit: at the limit passes, one past it fails while parsing", () => {
  const keys = (n: number): string =>
    `<plist><dict>${Array.from({ length: n }, (_, i) => `<key>k${i}</key><true/>`).join("")}</dict></plist>`;
  assert.equal(Object.keys(parsePlist(keys(5), { maxKeys: 5 }) as object).length, 5);
  assertPlistError(() => parsePlist(keys(6), { maxKeys: 5 }), /too many keys/);

  const items = (n: number): string => `<plist><array>${"<false/>".repeat(n)}</array></plist>`;
  assert.equal((parsePlist(items(7), { maxItems: 7 }) as unknown[]).length, 7);
  assertPlistError(() => parsePlist(items(8), { maxItems: 7 }), /too many items/);

  // Strings are measured in UTF-8 bytes: 'é' is 2 bytes, '😀' is 4.
  const str = (s: string): string => `<plist><string>${s}</string></plist>`;
  assert.equal(parsePlist(str("é".repeat(5)), { maxStringBytes: 10 }), "é".repeat(5));
  assertPlistError(() => parsePlist(str("é".repeat(5) + "a"), { maxStringBytes: 10 }), /string exceeds size limit/);
  assert.equal(parsePlist(str("😀😀"), { maxStringBytes: 8 }), "😀😀");
  assertPlistError(() => parsePlist(str("😀😀a"), { maxStringBytes: 8 }), /string exceeds size limit/);
  assertPlistError(() => parsePlist(str("<![CDATA[12345]]><![CDATA[6]]>"), { maxStringBytes: 5 }), /string exceeds size limit/);
  assertPlistError(
    () => parsePlist("<plist><dict><key>toolong</key><true/></dict></plist>", { maxStringBytes: 6 }),
    /string exceeds size limit/,
  );

  const data = (n: number): string => `<plist><data>${Buffer.alloc(n, 1).toString("base64")}</data></plist>`;
  assert.equal((parsePlist(data(10), { maxDataBytes: 10 }) as Buffer).length, 10);
  assertPlistError(() => parsePlist(data(11), { maxDataBytes: 10 }), /<data> exceeds size limit/);
  const wrapped = `<plist><data>\n${Buffer.alloc(11, 1)
    .toString("base64")
    .replace(/(.{4})/g, "$1\n")}</data></plist>`;
  assertPlistError(() => parsePlist(wrapped, { maxDataBytes: 10 }), /<data> exceeds size limit/);

  // Nodes: the array and its three items are four values.
  const four = "<plist><array><true/><true/><true/></array></plist>";
  assert.deepEqual(parsePlist(four, { maxNodes: 4 }), [true, true, true]);
  assertPlistError(() => parsePlist(four, { maxNodes: 3 }), /too many values/);
});

test("limits are enforced while parsing: a huge array fails near its start", () => {
  const huge = `<plist><array>${"<true/>".repeat(200_000)}</array></plist>`;
  const err = assertPlistError(() => parsePlist(huge, { maxItems: 10 }), /too many items/);
  assert.ok(err.offset! < 200, `offset ${err.offset}`);
  const many = assertPlistError(() => parsePlist(huge, { maxNodes: 10 }), /too many values/);
  assert.ok(many.offset! < 200, `offset ${many.offset}`);
});

test("no quadratic blow-up on long runs of attributes, references, CDATA, comments or keys", () => {
  const n = 200_000;
  const docs = [
    `<plist${' a="1"'.repeat(n)}><true/></plist>`,
    `<plist><string>${"&amp;".repeat(n)}</string></plist>`,
    `<plist><string>${"<![CDATA[x]]>".repeat(n)}</string></plist>`,
    `<plist><array>${"<!-- c -->".repeat(n)}</array></plist>`,
    `<plist><integer>${"0".repeat(n)}1</integer></plist>`,
    `<plist><data>${"QUJD\n".repeat(n)}</data></plist>`,
    `<!DOCTYPE plist SYSTEM ${'"x" '.repeat(n)}><plist><true/></plist>`,
  ];
  for (const d of docs) {
    const started = performance.now();
    try {
      parsePlist(d, { maxStringBytes: 10 * n });
    } catch (err) {
      assert.ok(err instanceof PlistError);
    }
    const ms = performance.now() - started;
    assert.ok(ms < 2000, `${d.slice(0, 40)}... took ${ms.toFixed(0)} ms`);
  }
});

test("default limits are the documented values and bad limits are a TypeError", () => {
  assert.deepEqual(DEFAULT_PLIST_LIMITS, {
    maxDepth: 32,
    maxKeys: 10_000,
    maxItems: 1_000_000,
    maxStringBytes: 1_048_576,
    maxDataBytes: 16_777_216,
    maxNodes: 2_000_000,
  });
  assert.ok(Object.isFrozen(DEFAULT_PLIST_LIMITS));
  assert.throws(() => parsePlist("<plist><true/></plist>", { maxDepth: NaN }), TypeError);
  assert.throws(() => parsePlist("<plist><true/></plist>", { maxKeys: -1 }), TypeError);
  assert.equal(parsePlist("<plist><true/></plist>", { maxDepth: undefined }), true);
});

test("error messages never quote document content", () => {
  const secret = "S3cr3tT0ken";
  const docs = [
    `<plist><integer>${secret}</integer></plist>`,
    `<plist><real>${secret}</real></plist>`,
    `<plist><date>${secret}</date></plist>`,
    `<plist><data>${secret}!</data></plist>`,
    `<plist><${secret}/></plist>`,
    `<plist><string>&${secret};</string></plist>`,
    `<plist><dict><key>${secret}</key><true/><key>${secret}</key><true/></dict></plist>`,
    `<plist><dict>${secret}</dict></plist>`,
    `<${secret}><true/></${secret}>`,
    `<plist><string>x</${secret}></plist>`,
  ];
  for (const d of docs) assertPlistError(() => parsePlist(d), undefined, [secret]);
});

test("every truncation of every fixture is a PlistError", () => {
  for (const { name, bytes } of fixtures()) {
    const full = parsePlist(bytes);
    const end = bytes.lastIndexOf("</plist>") + "</plist>".length;
    for (let n = 0; n < bytes.length; n++) {
      const prefix = bytes.subarray(0, n);
      if (n < end) assertPlistError(() => parsePlist(prefix), undefined, [], `${name} prefix ${n}`);
      else assert.deepEqual(parsePlist(prefix), full);
    }
  }
  // Truncation in the middle of a multi-byte character is invalid UTF-8.
  const utf = Buffer.from("<plist><string>é</string></plist>");
  assertPlistError(() => parsePlist(utf.subarray(0, 16)), /invalid UTF-8/);
});

test("fuzzed fixtures and serialized documents throw only PlistError", () => {
  const rnd = prng(0x5eed);
  const seeds = fixtures().map((f) => f.bytes.toString("latin1"));
  seeds.push(serializePlist({ a: [1, 2.5, true, new Date(0), Buffer.from("xyz"), { b: "c&d" }], e: 2n ** 63n }));
  const junk = [
    "<",
    ">",
    "/",
    "&",
    ";",
    "#",
    "x",
    '"',
    "[",
    "]",
    "!",
    "-",
    "=",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "&#",
    "<dict>",
    "</array>",
    "<key>",
    "\u00ff",
    "\n",
  ];
  let parsed = 0;
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    let s = seeds[i % seeds.length]!;
    const edits = 1 + Math.floor(rnd() * 4);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rnd() * (s.length + 1));
      const op = rnd();
      if (op < 0.35) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rnd() * 8));
      else if (op < 0.7) s = s.slice(0, at) + junk[Math.floor(rnd() * junk.length)] + s.slice(at);
      else s = s.slice(0, at) + String.fromCharCode(Math.floor(rnd() * 256)) + s.slice(at + 1);
    }
    for (const input of [s, Buffer.from(s, "latin1")]) {
      try {
        parsePlist(input);
        parsed++;
      } catch (err) {
        assert.ok(err instanceof PlistError, `non-PlistError for fuzz case ${i}: ${String(err)}`);
        assert.doesNotMatch(err.message, /internal parser error/, `fuzz case ${i}`);
        refused++;
      }
    }
  }
  // Both outcomes occur, so the fuzzer is exercising the parser, not just its first check.
  assert.ok(parsed > 100 && refused > 1000, `parsed ${parsed}, refused ${refused}`);
});
