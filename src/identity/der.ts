// A minimal DER writer, the counterpart of the strict BER reader next to it
// (ber.ts). Every builder returns a complete DER element (definite lengths,
// SET OF sorted), so the bytes that get signed are exactly the bytes that get
// sent. Used by the CMS layers (cms.ts), the PKCS#12 writer (pkcs12-write.ts),
// and the enrollment profile signer (src/enroll).

/** One encoded element: identifier octet, length, contents. */
export function tlv(identifier: number, content: Uint8Array): Buffer {
  const n = content.length;
  let header: number[];
  if (n < 0x80) header = [identifier, n];
  else {
    const octets: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) octets.unshift(v & 0xff);
    header = [identifier, 0x80 | octets.length, ...octets];
  }
  return Buffer.concat([Buffer.from(header), content]);
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(0x30, Buffer.concat(items));

/** A SET OF in DER order: the encodings sorted as octet strings (X.690 11.6). */
export const setOf = (...items: Uint8Array[]): Buffer => sortedTlv(0x31, items);

/** A SET OF under another identifier ([n] IMPLICIT SET OF), in DER order. */
export function sortedTlv(identifier: number, items: Uint8Array[]): Buffer {
  const sorted = items.map((i) => Buffer.from(i)).sort(Buffer.compare);
  return tlv(identifier, Buffer.concat(sorted));
}

/** [n] EXPLICIT (constructed context tag around one element). */
export const explicit = (n: number, ...items: Uint8Array[]): Buffer => tlv(0xa0 | n, Buffer.concat(items));

/** [n] IMPLICIT of a primitive element (the contents keep, the tag changes). */
export const implicitPrimitive = (n: number, content: Uint8Array): Buffer => tlv(0x80 | n, content);

/**
 * The same element under another identifier octet: [n] IMPLICIT of an encoded
 * constructed element is `retag(0xa0 | n, element)` (length and contents keep).
 */
export function retag(identifier: number, element: Uint8Array): Buffer {
  const out = Buffer.from(element);
  out[0] = identifier;
  return out;
}

export const octetString = (bytes: Uint8Array): Buffer => tlv(0x04, bytes);
export const nullValue = (): Buffer => Buffer.from([0x05, 0x00]);
export const printableString = (text: string): Buffer => tlv(0x13, Buffer.from(text, "latin1"));

/** BMPString: UTF-16BE code units (PKCS#12 friendlyName). */
export function bmpString(text: string): Buffer {
  const out = Buffer.alloc(text.length * 2);
  for (let i = 0; i < text.length; i++) out.writeUInt16BE(text.charCodeAt(i), i * 2);
  return tlv(0x1e, out);
}

/** A non-negative INTEGER from its magnitude (big-endian, any leading zeros). */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  let bytes = Buffer.from(magnitude.subarray(i));
  if (bytes.length === 0) bytes = Buffer.from([0]);
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

/** A non-negative INTEGER from a number (versions, iteration counts). */
export function integer(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bad INTEGER ${n}`);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return unsignedInteger(Buffer.from(bytes));
}

/** The contents octets of an OBJECT IDENTIFIER given in dotted form. */
export function oidContent(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) throw new Error(`bad OID ${dotted}`);
  const out: number[] = [];
  const subids = [arcs[0]! * 40 + arcs[1]!, ...arcs.slice(2)];
  for (const subid of subids) {
    const chunk: number[] = [subid & 0x7f];
    for (let v = Math.floor(subid / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return Buffer.from(out);
}

export const oid = (dotted: string): Buffer => tlv(0x06, oidContent(dotted));

/** The hex of an OID's contents octets: what BerReader.oidHex returns, for map keys. */
export const oidHex = (dotted: string): string => oidContent(dotted).toString("hex");

/** AlgorithmIdentifier with absent or given parameters. */
export const algorithm = (dotted: string, parameters?: Uint8Array): Buffer =>
  parameters === undefined ? sequence(oid(dotted)) : sequence(oid(dotted), parameters);
