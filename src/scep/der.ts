// A minimal DER writer for the few CMS structures SCEP replies need, and the
// OIDs SCEP uses. Reading goes through the strict BER reader of src/identity
// (ber.ts); writing is this: every builder returns complete DER elements, so
// the bytes that get signed are exactly the bytes that get sent.

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
export function setOf(...items: Uint8Array[]): Buffer {
  const sorted = items.map((i) => Buffer.from(i)).sort(Buffer.compare);
  return tlv(0x31, Buffer.concat(sorted));
}

/** [n] EXPLICIT (constructed context tag around one element). */
export const explicit = (n: number, ...items: Uint8Array[]): Buffer => tlv(0xa0 | n, Buffer.concat(items));

/** [n] IMPLICIT of a primitive element (the contents keep, the tag changes). */
export const implicitPrimitive = (n: number, content: Uint8Array): Buffer => tlv(0x80 | n, content);

export const octetString = (bytes: Uint8Array): Buffer => tlv(0x04, bytes);
export const nullValue = (): Buffer => Buffer.from([0x05, 0x00]);
export const printableString = (text: string): Buffer => tlv(0x13, Buffer.from(text, "latin1"));

/** A non-negative INTEGER from its magnitude (big-endian, any leading zeros). */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  let bytes = Buffer.from(magnitude.subarray(i));
  if (bytes.length === 0) bytes = Buffer.from([0]);
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

export const smallInteger = (n: number): Buffer => unsignedInteger(Buffer.from([n]));

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

export const OIDS = {
  data: "1.2.840.113549.1.7.1",
  signedData: "1.2.840.113549.1.7.2",
  envelopedData: "1.2.840.113549.1.7.3",
  contentType: "1.2.840.113549.1.9.3",
  messageDigest: "1.2.840.113549.1.9.4",
  signingTime: "1.2.840.113549.1.9.5",
  challengePassword: "1.2.840.113549.1.9.7",
  extensionRequest: "1.2.840.113549.1.9.14",
  rsaEncryption: "1.2.840.113549.1.1.1",
  // SCEP's signed attributes (RFC 8894 3.2.1), under VeriSign's arc.
  scepMessageType: "2.16.840.1.113733.1.9.2",
  scepPkiStatus: "2.16.840.1.113733.1.9.3",
  scepFailInfo: "2.16.840.1.113733.1.9.4",
  scepSenderNonce: "2.16.840.1.113733.1.9.5",
  scepRecipientNonce: "2.16.840.1.113733.1.9.6",
  scepTransactionId: "2.16.840.1.113733.1.9.7",
  scepFailInfoText: "2.16.840.1.113733.1.9.8",
} as const;

export type Digest = "sha1" | "sha256" | "sha384" | "sha512";

export const DIGEST_OIDS: Record<Digest, string> = {
  sha1: "1.3.14.3.2.26",
  sha256: "2.16.840.1.101.3.4.2.1",
  sha384: "2.16.840.1.101.3.4.2.2",
  sha512: "2.16.840.1.101.3.4.2.3",
};

/** Digest algorithm OIDs (contents hex) to node's hash names. */
export const DIGESTS = new Map<string, Digest>(Object.entries(DIGEST_OIDS).map(([name, dotted]) => [oidHex(dotted), name as Digest]));

/** RSA signature algorithm OIDs (contents hex) to the hash they sign with. */
export const RSA_SIGNATURES = new Map<string, Digest>([
  [oidHex("1.2.840.113549.1.1.5"), "sha1"],
  [oidHex("1.2.840.113549.1.1.11"), "sha256"],
  [oidHex("1.2.840.113549.1.1.12"), "sha384"],
  [oidHex("1.2.840.113549.1.1.13"), "sha512"],
]);
