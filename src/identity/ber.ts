// A small, strict BER TLV reader for the Mdm-Signature fast path (fast-signature.ts).
// It only finds element boundaries: definite and indefinite lengths, multi-byte tags,
// long-form lengths, segmented (constructed) OCTET STRINGs. Every element must fit in
// its container, depth is bounded, and on any malformed input it throws BerError and
// nothing else (out-of-range reads are checked, never left to yield `undefined`).

export class BerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BerError";
  }
}

export const UNIVERSAL = 0;
export const CONTEXT = 2;
export const TAG_INTEGER = 2;
export const TAG_BIT_STRING = 3;
export const TAG_OCTET_STRING = 4;
export const TAG_NULL = 5;
export const TAG_OID = 6;
export const TAG_SEQUENCE = 16;
export const TAG_SET = 17;

export interface Tlv {
  /** 0 universal, 1 application, 2 context-specific, 3 private. */
  readonly cls: number;
  readonly constructed: boolean;
  readonly tag: number;
  /** Offset of the first identifier octet. */
  readonly start: number;
  readonly contentStart: number;
  /** End of the contents, before the end-of-contents octets of an indefinite form. */
  readonly contentEnd: number;
  /** End of the whole element, end-of-contents octets included. */
  readonly end: number;
  readonly indefinite: boolean;
  readonly depth: number;
  /** Children of an indefinite-length element, found while looking for its end. */
  readonly kids?: readonly Tlv[];
}

// Far deeper than any CMS SignedData we walk (~8 levels), shallow enough that
// hostile nesting costs nothing.
const DEFAULT_MAX_DEPTH = 32;
// Tag numbers and lengths above these never occur in a signature header.
const MAX_TAG_OCTETS = 4;
const MAX_LENGTH_OCTETS = 4;

export class BerReader {
  readonly buf: Uint8Array;
  readonly maxDepth: number;

  constructor(buf: Uint8Array, maxDepth = DEFAULT_MAX_DEPTH) {
    this.buf = buf;
    this.maxDepth = maxDepth;
  }

  /** The one element that spans the whole buffer (no trailing bytes). */
  root(): Tlv {
    const tlv = this.read(0, this.buf.length, 0);
    if (tlv.end !== this.buf.length) throw new BerError("trailing data after the outer element");
    return tlv;
  }

  /** The element at `pos`, which must end by `limit`. */
  read(pos: number, limit: number, depth: number): Tlv {
    const buf = this.buf;
    if (depth > this.maxDepth) throw new BerError("nesting too deep");
    if (limit > buf.length) throw new BerError("limit beyond input");
    let p = pos;
    if (p >= limit) throw new BerError("element expected, input ended");
    const first = buf[p++]!;
    const cls = first >> 6;
    const constructed = (first & 0x20) !== 0;
    let tag = first & 0x1f;
    if (tag === 0x1f) {
      // High-tag-number form: base-128, no leading 0x80, only for numbers >= 31.
      tag = 0;
      for (let n = 0; ; n++) {
        if (p >= limit) throw new BerError("truncated tag");
        if (n === MAX_TAG_OCTETS) throw new BerError("tag number too large");
        const b = buf[p++]!;
        if (n === 0 && b === 0x80) throw new BerError("non-minimal tag number");
        tag = tag * 128 + (b & 0x7f);
        if ((b & 0x80) === 0) break;
      }
      if (tag < 31) throw new BerError("high-tag-number form for a low tag number");
    }
    if (cls === UNIVERSAL && tag === 0) throw new BerError("unexpected end-of-contents");

    if (p >= limit) throw new BerError("truncated length");
    const l0 = buf[p++]!;
    if (l0 === 0x80) {
      if (!constructed) throw new BerError("indefinite length on a primitive element");
      return this.#readIndefinite(pos, p, limit, depth, cls, tag);
    }
    let length = l0;
    if (l0 > 0x80) {
      const count = l0 & 0x7f;
      if (count > MAX_LENGTH_OCTETS) throw new BerError("length too large"); // also 0xff, reserved
      if (p + count > limit) throw new BerError("truncated length");
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + buf[p++]!;
    }
    if (length > limit - p) throw new BerError("element overruns its container");
    const end = p + length;
    return { cls, constructed, tag, start: pos, contentStart: p, contentEnd: end, end, indefinite: false, depth };
  }

  #readIndefinite(start: number, contentStart: number, limit: number, depth: number, cls: number, tag: number): Tlv {
    const buf = this.buf;
    const kids: Tlv[] = [];
    let p = contentStart;
    for (;;) {
      if (p + 2 > limit) throw new BerError("missing end-of-contents");
      if (buf[p] === 0 && buf[p + 1] === 0) break;
      const kid = this.read(p, limit, depth + 1);
      kids.push(kid);
      p = kid.end;
    }
    return { cls, constructed: true, tag, start, contentStart, contentEnd: p, end: p + 2, indefinite: true, depth, kids };
  }

  /** The elements inside a constructed element. */
  children(tlv: Tlv): readonly Tlv[] {
    if (!tlv.constructed) throw new BerError("primitive element has no children");
    if (tlv.kids) return tlv.kids;
    const kids: Tlv[] = [];
    for (let p = tlv.contentStart; p < tlv.contentEnd; ) {
      const kid = this.read(p, tlv.contentEnd, tlv.depth + 1);
      kids.push(kid);
      p = kid.end;
    }
    return kids;
  }

  /** The exact encoded bytes of the element (a view, not a copy). */
  bytes(tlv: Tlv): Uint8Array {
    return this.buf.subarray(tlv.start, tlv.end);
  }

  /** The contents of a primitive element (a view). */
  content(tlv: Tlv): Uint8Array {
    if (tlv.constructed) throw new BerError("constructed element where a primitive one is required");
    return this.buf.subarray(tlv.contentStart, tlv.contentEnd);
  }

  /** An OCTET STRING's value; BER lets a sender split it into nested segments. */
  octets(tlv: Tlv): Uint8Array {
    if (!is(tlv, UNIVERSAL, TAG_OCTET_STRING)) throw new BerError("OCTET STRING expected");
    if (!tlv.constructed) return this.content(tlv);
    const parts: Uint8Array[] = [];
    this.#collectSegments(tlv, parts);
    return Buffer.concat(parts);
  }

  #collectSegments(tlv: Tlv, parts: Uint8Array[]): void {
    for (const kid of this.children(tlv)) {
      if (!is(kid, UNIVERSAL, TAG_OCTET_STRING)) throw new BerError("OCTET STRING segment expected");
      if (kid.constructed) this.#collectSegments(kid, parts);
      else parts.push(this.content(kid));
    }
  }

  /**
   * An OBJECT IDENTIFIER's contents as hex, after checking it is canonical (no
   * leading 0x80 in a subidentifier, last octet ends a subidentifier), so equal
   * OIDs always give equal strings.
   */
  oidHex(tlv: Tlv): string {
    if (!is(tlv, UNIVERSAL, TAG_OID) || tlv.constructed) throw new BerError("OBJECT IDENTIFIER expected");
    const c = this.content(tlv);
    if (c.length === 0) throw new BerError("empty OBJECT IDENTIFIER");
    let startOfSubid = true;
    for (const b of c) {
      if (startOfSubid && b === 0x80) throw new BerError("non-minimal OBJECT IDENTIFIER");
      startOfSubid = (b & 0x80) === 0;
    }
    if (!startOfSubid) throw new BerError("truncated OBJECT IDENTIFIER");
    return Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString("hex");
  }
}

/** Whether the element has this class and tag number (either form). */
export function is(tlv: Tlv, cls: number, tag: number): boolean {
  return tlv.cls === cls && tlv.tag === tag;
}
