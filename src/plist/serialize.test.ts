import { test } from "node:test";
import assert from "node:assert/strict";
import { parsePlist, serializePlist, type PlistValue } from "./index.ts";
import { prng, randomValue } from "./testing.ts";

const HEAD =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
  '<plist version="1.0">\n';

test("exact Apple-style output for a typical command", () => {
  const cmd = {
    Command: {
      RequestType: "InstallProfile",
      Payload: Buffer.from("<?xml?>"),
      Queries: ["UDID", "OSVersion"],
      Flags: {},
      Empty: [],
    },
    CommandUUID: "0001_InstallProfile",
    Retries: 3,
    Ratio: 0.5,
    Big: 2n ** 64n - 1n,
    Enabled: true,
    Disabled: false,
    When: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)),
    Note: "",
    Skipped: undefined,
  };
  assert.equal(
    serializePlist(cmd as unknown as PlistValue),
    HEAD +
      "<dict>\n" +
      "\t<key>Command</key>\n" +
      "\t<dict>\n" +
      "\t\t<key>RequestType</key>\n" +
      "\t\t<string>InstallProfile</string>\n" +
      "\t\t<key>Payload</key>\n" +
      "\t\t<data>PD94bWw/Pg==</data>\n" +
      "\t\t<key>Queries</key>\n" +
      "\t\t<array>\n" +
      "\t\t\t<string>UDID</string>\n" +
      "\t\t\t<string>OSVersion</string>\n" +
      "\t\t</array>\n" +
      "\t\t<key>Flags</key>\n" +
      "\t\t<dict/>\n" +
      "\t\t<key>Empty</key>\n" +
      "\t\t<array/>\n" +
      "\t</dict>\n" +
      "\t<key>CommandUUID</key>\n" +
      "\t<string>0001_InstallProfile</string>\n" +
      "\t<key>Retries</key>\n" +
      "\t<integer>3</integer>\n" +
      "\t<key>Ratio</key>\n" +
      "\t<real>0.5</real>\n" +
      "\t<key>Big</key>\n" +
      "\t<integer>18446744073709551615</integer>\n" +
      "\t<key>Enabled</key>\n" +
      "\t<true/>\n" +
      "\t<key>Disabled</key>\n" +
      "\t<false/>\n" +
      "\t<key>When</key>\n" +
      "\t<date>2024-01-02T03:04:05Z</date>\n" +
      "\t<key>Note</key>\n" +
      "\t<string></string>\n" +
      "</dict>\n" +
      "</plist>\n",
  );
});

test("scalars at the root, escaping, special numbers", () => {
  const body = (v: PlistValue): string => serializePlist(v).slice(HEAD.length, -"</plist>\n".length);
  assert.equal(body("a & b < c > d \"e\" 'f'"), "<string>a &amp; b &lt; c &gt; d \"e\" 'f'</string>\n");
  assert.equal(body("cr\r\nlf\ttab\u0001"), "<string>cr&#13;\nlf\ttab&#1;</string>\n");
  assert.equal(body({ "k<&>": 1 }), "<dict>\n\t<key>k&lt;&amp;&gt;</key>\n\t<integer>1</integer>\n</dict>\n");
  assert.equal(body(-5), "<integer>-5</integer>\n");
  assert.equal(body(-0), "<real>-0</real>\n");
  assert.equal(body(1e21), "<real>1e+21</real>\n");
  assert.equal(body(2 ** 60), "<real>1152921504606847000</real>\n"); // shortest repr that reads back exactly
  assert.equal(body(NaN), "<real>nan</real>\n");
  assert.equal(body(Infinity), "<real>+infinity</real>\n");
  assert.equal(body(-Infinity), "<real>-infinity</real>\n");
  assert.equal(body(-(2n ** 63n)), "<integer>-9223372036854775808</integer>\n");
  assert.equal(body(Buffer.alloc(0)), "<data></data>\n");
  assert.equal(body(new Uint8Array([1, 2, 3]) as Buffer), "<data>AQID</data>\n");
  assert.equal(body(new Date("0005-01-01T00:00:00Z")), "<date>0005-01-01T00:00:00Z</date>\n");
});

test("round trip of every type, exactly", () => {
  const values: PlistValue[] = [
    "plain",
    "",
    " \t\n leading and trailing \n ",
    "entities & <tags> ]]> \"quotes\" 'apos'",
    "unicode é 中文 😀 \u00a0 \ufffe",
    "controls \r \u0001 \u001f \u007f",
    0,
    -1,
    Number.MAX_SAFE_INTEGER,
    -Number.MAX_SAFE_INTEGER,
    1.5,
    -2.25e-300,
    1.7976931348623157e308,
    5e-324,
    -0,
    NaN,
    Infinity,
    -Infinity,
    2 ** 60,
    2n ** 53n,
    -(2n ** 63n),
    2n ** 64n - 1n,
    true,
    false,
    new Date(Date.UTC(2016, 11, 13, 17, 45, 2)),
    new Date("0001-01-01T00:00:00Z"),
    new Date(Date.UTC(9999, 11, 31, 23, 59, 59)),
    new Date(-1000),
    Buffer.alloc(0),
    Buffer.from([0, 255, 128, 7]),
    Buffer.alloc(100_000, 0xab),
    [],
    {},
    [[[]], [{}], { a: [{ b: [] }] }],
    { "": "empty key", constructor: "own", toString: 1, "a.b": { "c d": [true] } },
  ];
  for (const [i, v] of values.entries()) assert.deepStrictEqual(parsePlist(serializePlist(v)), v, `round trip of values[${i}]`);
});

test("round trip of 500 random nested values (seeded)", () => {
  const rnd = prng(20240601);
  for (let i = 0; i < 500; i++) {
    const v = randomValue(rnd, { exotic: true });
    const xml = serializePlist(v);
    assert.deepStrictEqual(parsePlist(xml), v, `case ${i}`);
    assert.equal(serializePlist(parsePlist(xml)), xml, `stable output, case ${i}`);
  }
});

test("output is deterministic and independent of earlier calls", () => {
  const v = { b: [1, 2], a: { z: new Date(0), y: Buffer.from("x") } };
  const first = serializePlist(v);
  serializePlist({ other: ["thing"] });
  assert.equal(serializePlist(v), first);
  // structuredClone turns the Buffer into a plain Uint8Array: same bytes, same output.
  assert.equal(serializePlist(structuredClone(v) as unknown as PlistValue), first);
});

test("values a plist cannot carry are programmer errors (TypeError)", () => {
  const bad: unknown[] = [
    null,
    undefined,
    () => 1,
    Symbol("s"),
    new Map(),
    new Set(),
    new (class Foo {})(),
    new Date(NaN),
    new Date(Date.UTC(10000, 0, 1)),
    new Date(Date.UTC(-1, 0, 1)),
    2n ** 64n,
    -(2n ** 63n) - 1n,
    "nul \0 inside",
    "lone \ud800 surrogate",
    [1, undefined, 2],
    { a: null },
    { a: () => 1 },
    { nested: { deep: [new WeakMap()] } },
  ];
  for (const v of bad) assert.throws(() => serializePlist(v as PlistValue), TypeError, String(v));
  const cyclic: Record<string, unknown> = {};
  cyclic["self"] = [cyclic];
  assert.throws(() => serializePlist(cyclic as PlistValue), /cyclic/);
  assert.throws(() => serializePlist(JSON.parse('{"__proto__": 1}')), /__proto__/);
  // A shared (non-cyclic) subtree is fine.
  const shared = [1];
  assert.deepEqual(parsePlist(serializePlist({ a: shared, b: shared })), { a: [1], b: [1] });
});

test("undefined dict values are skipped; a dict of only undefined is empty", () => {
  assert.deepEqual(parsePlist(serializePlist({ a: 1, b: undefined } as unknown as PlistValue)), { a: 1 });
  assert.match(serializePlist({ b: undefined } as unknown as PlistValue), /<dict\/>/);
  const nullProto = Object.assign(Object.create(null) as Record<string, PlistValue>, { x: "y" });
  assert.deepEqual(parsePlist(serializePlist(nullProto)), { x: "y" });
});
