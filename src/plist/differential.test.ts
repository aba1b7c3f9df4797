// Differential tests against the npm `plist` package (xmldom based), the
// reference implementation. It returns Uint8Array for <data> and has no bigint,
// so values are normalised and generated without bigint/NaN/infinities.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as reference from "plist";
import { parsePlist, serializePlist, type PlistValue } from "./index.ts";
import { fixtures, normalise, prng, randomValue } from "./testing.ts";

const same = (ours: unknown, theirs: unknown, label: string): void => assert.deepStrictEqual(normalise(ours), normalise(theirs), label);

test("every fixture parses exactly as the reference parses it", () => {
  for (const { name, bytes } of fixtures()) {
    const text = bytes.toString("utf8"); // the reference treats a Buffer as a binary plist
    same(parsePlist(bytes), reference.parse(text), name);
  }
});

/**
 * Writes a value with randomly varied but equivalent XML syntax: indentation,
 * comments, entity and character-reference spellings, CDATA, base64 wrapping,
 * self-closing forms. Both parsers must read the same value back.
 */
function noisyXml(v: PlistValue, rnd: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const gap = (): string =>
    (rnd() < 0.15 ? `${pick(["", " ", "\n"])}<!-- ${pick(["c", "a-b", "<x>"])} -->` : "") + pick(["", " ", "\n", "\n\t\t", "\r\n  "]);
  const char = (c: string): string => {
    const cp = c.codePointAt(0)!;
    const r = rnd();
    if (r < 0.1) return `&#${cp};`;
    if (r < 0.2) return `&#x${rnd() < 0.5 ? cp.toString(16) : cp.toString(16).toUpperCase()};`;
    if (c === "&") return pick(["&amp;", "&#38;"]);
    if (c === "<") return pick(["&lt;", "&#x3c;"]);
    if (c === ">") return pick(["&gt;", ">"]);
    if (c === '"') return pick(["&quot;", '"']);
    if (c === "'") return pick(["&apos;", "'"]);
    return c;
  };
  const text = (s: string, inKey: boolean): string => {
    let out = "";
    const chars = Array.from(s);
    for (let i = 0; i < chars.length; ) {
      const n = 1 + Math.floor(rnd() * 4);
      const chunk = chars.slice(i, i + n).join("");
      i += n;
      if (!inKey && rnd() < 0.2 && !chunk.includes("]")) out += `<![CDATA[${chunk}]]>`;
      else if (!inKey && rnd() < 0.05) out += `<!--x-->${Array.from(chunk, (c) => char(c)).join("")}`;
      else out += Array.from(chunk, (c) => char(c)).join("");
    }
    return out;
  };
  const write = (x: PlistValue): string => {
    if (typeof x === "string") return x === "" ? pick(["<string/>", "<string></string>"]) : `<string>${text(x, false)}</string>`;
    if (typeof x === "number") {
      if (Number.isInteger(x)) return `<integer>${pick(["", " ", "+".repeat(x >= 0 ? 1 : 0)])}${x}${pick(["", " "])}</integer>`;
      return `<real>${pick([String(x), x.toExponential(), ` ${x} `])}</real>`;
    }
    if (typeof x === "bigint") return `<integer>${x}</integer>`;
    if (typeof x === "boolean") return pick([`<${x}/>`, `<${x} />`, `<${x}></${x}>`]);
    if (x instanceof Date) return `<date>${x.toISOString().replace(".000Z", pick(["Z", ".000Z"]))}</date>`;
    if (Buffer.isBuffer(x)) {
      const b64 = x.toString("base64");
      if (b64 === "") return pick(["<data/>", "<data></data>", "<data>\n\t</data>"]);
      const width = 4 * (1 + Math.floor(rnd() * 20));
      const lines = b64.match(new RegExp(`.{1,${width}}`, "g"))!;
      return `<data>${pick(["", "\n\t"])}${lines.join(pick(["\n", "\n\t\t", " ", "\t", "\r\n"]))}${pick(["", "\n"])}</data>`;
    }
    if (Array.isArray(x)) {
      if (x.length === 0) return pick(["<array/>", "<array></array>", "<array>\n</array>"]);
      return `<array>${x.map((i) => gap() + write(i)).join("")}${gap()}</array>`;
    }
    const keys = Object.keys(x);
    if (keys.length === 0) return pick(["<dict/>", "<dict></dict>", "<dict> </dict>"]);
    return `<dict>${keys.map((k) => `${gap()}<key>${text(k, true)}</key>${gap()}${write(x[k]!)}`).join("")}${gap()}</dict>`;
  };
  const head = pick([
    '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n',
    '<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN"\n        "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n',
    '<?xml version="1.0"?>\n',
    "",
  ]);
  return `${head}<plist version="1.0">${gap()}${write(v)}${gap()}</plist>${pick(["", "\n"])}`;
}

test("400 random documents with varied syntax parse exactly as the reference parses them", () => {
  const rnd = prng(0xd1ff);
  let bytesSeen = 0;
  for (let i = 0; i < 400; i++) {
    const value = randomValue(rnd, { exotic: false });
    const xml = noisyXml(value, rnd);
    bytesSeen += xml.length;
    const ours = parsePlist(xml);
    same(ours, reference.parse(xml), `case ${i}: ${xml.slice(0, 300)}`);
    same(ours, value, `case ${i} matches the generated value`);
    same(parsePlist(Buffer.from(xml, "utf8")), ours, `case ${i} as Buffer`);
  }
  assert.ok(bytesSeen > 50_000, `generated ${bytesSeen} characters`);
});

test("our serializer output parses identically with the reference, and its builder output with ours", () => {
  const rnd = prng(0xb01d);
  for (let i = 0; i < 300; i++) {
    const value = randomValue(rnd, { exotic: false });
    const ours = serializePlist(value);
    same(reference.parse(ours), value, `reference reads our output, case ${i}`);
    // plist.build needs Uint8Array/Date/number/string/boolean; our parser must read it back.
    const built = reference.build(value as Parameters<typeof reference.build>[0]);
    same(parsePlist(built), value, `we read reference output, case ${i}`);
  }
});
