import { test } from "node:test";
import assert from "node:assert/strict";
import { BerError, BerReader, is, CONTEXT, UNIVERSAL, TAG_OCTET_STRING, type Tlv } from "./ber.ts";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");

// Reads every element of the tree: the whole input gets checked.
function walk(r: BerReader, tlv: Tlv): number {
  let n = 1;
  if (tlv.constructed) for (const kid of r.children(tlv)) n += walk(r, kid);
  return n;
}

function fails(input: Buffer, pattern: RegExp, maxDepth?: number): void {
  assert.throws(
    () => {
      const r = new BerReader(input, maxDepth);
      walk(r, r.root());
    },
    (err: unknown) => err instanceof BerError && pattern.test(err.message),
  );
}

test("definite lengths, short and long form", () => {
  const content = Buffer.alloc(300, 7);
  const input = Buffer.concat([hex("30 82 01 30 04 82 01 2c"), content]);
  const r = new BerReader(input);
  const root = r.root();
  assert.equal(root.end, input.length);
  const [octets] = r.children(root);
  assert.ok(is(octets!, UNIVERSAL, TAG_OCTET_STRING));
  assert.deepEqual(Buffer.from(r.octets(octets!)), content);
  // BER allows a needlessly long length form.
  const loose = new BerReader(hex("30 81 03 02 01 05"));
  assert.equal(loose.children(loose.root()).length, 1);
  assert.deepEqual(Buffer.from(loose.content(loose.children(loose.root())[0]!)), hex("05"));
});

test("multi-byte tags", () => {
  // [31] and [200] context-specific, constructed and primitive.
  const r = new BerReader(hex("bf 1f 05 9f 81 48 01 aa"));
  const outer = r.root();
  assert.deepEqual([outer.cls, outer.tag, outer.constructed], [CONTEXT, 31, true]);
  const [inner] = r.children(outer);
  assert.deepEqual([inner!.cls, inner!.tag, inner!.constructed], [CONTEXT, 200, false]);
  assert.deepEqual(Buffer.from(r.bytes(inner!)), hex("9f 81 48 01 aa"));
});

test("indefinite lengths, nested, and segmented OCTET STRINGs", () => {
  // SEQUENCE(indef) { [0](indef) { OCTET STRING(indef) { 04 02 'ab', 24 80 { 04 01 'c' } 00 00 } } }
  const input = hex("30 80 a0 80 24 80 04 02 61 62 24 80 04 01 63 00 00 00 00 00 00 00 00");
  const r = new BerReader(input);
  const root = r.root();
  assert.ok(root.indefinite);
  assert.equal(root.end, input.length);
  const [explicit] = r.children(root);
  const [octets] = r.children(explicit!);
  assert.equal(Buffer.from(r.octets(octets!)).toString(), "abc");
  assert.equal(walk(r, root), 6);
});

test("OBJECT IDENTIFIERs must be canonical", () => {
  const oid = (s: string) => {
    const r = new BerReader(hex(s));
    return r.oidHex(r.root());
  };
  assert.equal(oid("06 09 2a 86 48 86 f7 0d 01 07 02"), "2a864886f70d010702");
  assert.throws(() => oid("06 02 80 01"), BerError); // leading 0x80
  assert.throws(() => oid("06 02 2a 86"), BerError); // ends inside a subidentifier
  assert.throws(() => oid("06 00"), BerError);
  assert.throws(() => oid("04 01 2a"), BerError);
});

test("malformed encodings throw BerError", () => {
  fails(hex(""), /input ended/);
  fails(hex("30"), /truncated length/);
  fails(hex("30 05 02 01"), /overruns/);
  fails(hex("30 03 02 02 01"), /overruns/); // child longer than its parent
  fails(hex("30 82 01"), /truncated length/);
  fails(hex("30 85 00 00 00 00 01"), /too large/);
  fails(hex("30 ff"), /too large/);
  fails(hex("1f"), /truncated tag/);
  fails(hex("1f 80 01 00"), /non-minimal tag/);
  fails(hex("1f 05 00"), /low tag number/);
  fails(hex("1f ff ff ff ff 7f 00"), /tag number too large/);
  fails(hex("04 80 00 00"), /primitive/);
  fails(hex("30 80 02 01 05"), /end-of-contents/);
  fails(hex("30 80 02 01 05 00"), /end-of-contents/);
  fails(hex("30 80 00 01 00 00"), /end-of-contents/);
  fails(hex("30 02 00 00"), /end-of-contents/); // EOC inside a definite length
  fails(hex("30 00 00"), /trailing/);
  assert.throws(() => {
    const r = new BerReader(hex("24 03 02 01 05"));
    r.octets(r.root());
  }, /OCTET STRING segment/);
  const deep = Buffer.concat([Buffer.alloc(40, 0x30).map((_, i) => (i % 2 ? 0x80 : 0x30)), Buffer.alloc(40)]);
  fails(deep, /too deep/, 8);
});

test("garbage, truncations and bit flips only ever throw BerError", () => {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  const sample = hex(
    "30 80 06 09 2a 86 48 86 f7 0d 01 07 02 a0 80 30 80 02 01 01 31 0b 30 09 06 05 2b 0e 03 02 1a 05 00" +
      " 30 80 06 09 2a 86 48 86 f7 0d 01 07 01 00 00 a0 82 00 04 30 02 05 00 31 00 00 00 00 00 00 00",
  );
  const inputs: Buffer[] = [];
  for (let n = 0; n <= sample.length; n++) inputs.push(sample.subarray(0, n));
  for (let i = 0; i < 2000; i++) {
    const copy = Buffer.from(sample);
    copy[Math.floor(random() * copy.length)]! ^= 1 << Math.floor(random() * 8);
    inputs.push(copy);
    inputs.push(Buffer.from(Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256))));
  }
  for (const input of inputs) {
    try {
      const r = new BerReader(input);
      const root = r.root();
      walk(r, root);
      if (is(root, UNIVERSAL, TAG_OCTET_STRING)) r.octets(root);
    } catch (err) {
      assert.ok(err instanceof BerError, `${input.toString("hex")}: ${String(err)}`);
    }
  }
  const r = new BerReader(sample);
  assert.equal(r.root().end, sample.length);
});
