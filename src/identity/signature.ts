import { createHash, X509Certificate } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { cmsEngine } from "./engine.ts";
import { IdentityError } from "./errors.ts";
import { signerFast, verifyFast } from "./fast-signature.ts";

// A real header is ~2-3 KB; anything far larger is not a device signature.
export const MAX_SIGNATURE_HEADER_LENGTH = 64 * 1024;

const OID_SIGNED_DATA = "1.2.840.113549.1.7.2";
const OID_DATA = "1.2.840.113549.1.7.1";
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function bad(message: string): IdentityError {
  return new IdentityError("bad-signature", message);
}

export interface MdmSignature {
  /** The certificate whose key made the signature: the device identity. */
  signer: X509Certificate;
  /** The other certificates of the SignedData set (possible intermediates for DeviceTrust). */
  certificates: X509Certificate[];
}

/**
 * Verifies an `Mdm-Signature` header (base64 CMS SignedData, detached, over the raw
 * body) and returns the signer's certificate. It does not judge that certificate:
 * run it through DeviceTrust. Throws IdentityError on any failure.
 */
export async function verifyMdmSignature(headerValue: string, body: Buffer): Promise<X509Certificate> {
  return (await verifyMdmSignatureDetailed(headerValue, body)).signer;
}

/** Like verifyMdmSignature, and also hands back the other certificates carried along. */
export async function verifyMdmSignatureDetailed(headerValue: string, body: Buffer): Promise<MdmSignature> {
  const der = decodeSignatureHeader(headerValue);
  // The hand-written path (fast-signature.ts, ~80x faster) answers for the shapes it
  // knows and hands anything else to pkijs, the reference, so the answers are pkijs's.
  return verifyFast(der, body) ?? verifyWithPkijs(der, body);
}

/**
 * The certificate an Mdm-Signature names as its signer, and the others it
 * carries, read from the header alone, before any body: so that trust can
 * judge the caller before the server holds its body. It proves nothing by
 * itself (a device's certificate is public; anyone can copy it into a
 * header): verifyMdmSignatureDetailed must still check the signature over
 * the body. Same rule as the verification (the fast path, else pkijs's rule),
 * so both name the same signer. Throws IdentityError.
 */
export function mdmSignatureSigner(headerValue: string): MdmSignature {
  const der = decodeSignatureHeader(headerValue);
  return signerFast(der) ?? signerWithPkijs(der);
}

/** The pkijs-only verification (the reference the fast path is tested against). */
export async function verifyMdmSignaturePkijs(headerValue: string, body: Buffer): Promise<MdmSignature> {
  return verifyWithPkijs(decodeSignatureHeader(headerValue), body);
}

/** The header's checks and base64 decoding, shared by both paths. */
export function decodeSignatureHeader(headerValue: string): Buffer {
  if (typeof headerValue !== "string" || headerValue.trim() === "") {
    throw new IdentityError("bad-header", "Mdm-Signature header is empty");
  }
  if (headerValue.length > MAX_SIGNATURE_HEADER_LENGTH) {
    throw new IdentityError("bad-header", "Mdm-Signature header is too long");
  }
  // Buffer.from(…, 'base64') silently skips junk, so check the alphabet first.
  const b64 = headerValue.replace(/\s+/g, "");
  if (!BASE64.test(b64) || b64.length % 4 === 1) throw bad("Mdm-Signature is not base64");
  return Buffer.from(b64, "base64");
}

async function verifyWithPkijs(der: Buffer, body: Buffer): Promise<MdmSignature> {
  const { signedData, certBlocks } = parseSignedData(der);
  if (signedData.signerInfos.length !== 1) throw bad("Mdm-Signature must have exactly one signer");
  // With embedded content pkijs would verify that content instead of our body.
  if (signedData.encapContentInfo.eContent !== undefined) throw bad("Mdm-Signature is not detached");
  if (signedData.encapContentInfo.eContentType !== OID_DATA) throw bad("Mdm-Signature content type is not id-data");
  if (body.byteLength === 0) throw bad("request body is empty");

  let result: pkijs.SignedDataVerifyResult;
  try {
    // extendedMode hands back the certificate pkijs actually verified with, so the
    // identity we return is exactly the key that made the signature.
    result = await signedData.verify({ signer: 0, data: toArrayBuffer(body), checkChain: false, extendedMode: true }, cmsEngine);
  } catch {
    throw bad("Mdm-Signature does not verify");
  }
  // Only a literal true counts: pkijs reports a wrong signature as signatureVerified: false.
  if (result.signatureVerified !== true || !result.signerCertificate) throw bad("Mdm-Signature does not verify");

  const index = signedData.certificates?.indexOf(result.signerCertificate) ?? -1;
  const block = certBlocks[index];
  if (index < 0 || block === undefined) throw bad("Mdm-Signature signer certificate not found");
  let signer: X509Certificate;
  try {
    // Original bytes, not a pkijs re-encoding, so the fingerprint matches the TLS path.
    signer = new X509Certificate(Buffer.from(block.valueBeforeDecodeView));
  } catch {
    throw new IdentityError("bad-certificate", "Mdm-Signature signer certificate is malformed");
  }
  const certificates: X509Certificate[] = [];
  certBlocks.forEach((other, i) => {
    if (i === index || other.idBlock.tagClass !== 1) return; // skip the signer and non-X.509 choices
    try {
      certificates.push(new X509Certificate(Buffer.from(other.valueBeforeDecodeView)));
    } catch {
      // An unreadable extra certificate cannot help build a chain; ignore it.
    }
  });
  return { signer, certificates };
}

// pkijs's own rule (SignedData.verify): the first certificate with the sid's
// issuer and serial, or whose subjectPublicKey's SHA-1 is the sid's key id.
function signerWithPkijs(der: Buffer): MdmSignature {
  const { signedData, certBlocks } = parseSignedData(der);
  if (signedData.signerInfos.length !== 1) throw bad("Mdm-Signature must have exactly one signer");
  if (signedData.encapContentInfo.eContent !== undefined) throw bad("Mdm-Signature is not detached");
  if (signedData.encapContentInfo.eContentType !== OID_DATA) throw bad("Mdm-Signature content type is not id-data");
  const sid = signedData.signerInfos[0]!.sid as pkijs.IssuerAndSerialNumber | asn1js.OctetString;
  const certs = signedData.certificates ?? [];
  let index = -1;
  if (sid instanceof pkijs.IssuerAndSerialNumber) {
    index = certs.findIndex(
      (c) => c instanceof pkijs.Certificate && c.issuer.isEqual(sid.issuer) && c.serialNumber.isEqual(sid.serialNumber),
    );
  } else {
    const keyId = Buffer.from(
      sid.idBlock.isConstructed ? (sid.valueBlock.value[0] as asn1js.OctetString).valueBlock.valueHexView : sid.valueBlock.valueHexView,
    );
    index = certs.findIndex((c) => {
      if (!(c instanceof pkijs.Certificate)) return false;
      return createHash("sha1").update(c.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView).digest().equals(keyId);
    });
  }
  const block = certBlocks[index];
  if (index < 0 || block === undefined) throw bad("Mdm-Signature signer certificate not found");
  const toX509 = (b: asn1js.AsnType) => new X509Certificate(Buffer.from(b.valueBeforeDecodeView));
  let signer: X509Certificate;
  try {
    signer = toX509(block);
  } catch {
    throw new IdentityError("bad-certificate", "Mdm-Signature signer certificate is malformed");
  }
  const certificates: X509Certificate[] = [];
  certBlocks.forEach((other, i) => {
    if (i === index || other.idBlock.tagClass !== 1) return;
    try {
      certificates.push(toX509(other));
    } catch {
      // An unreadable extra certificate cannot help build a chain; ignore it.
    }
  });
  return { signer, certificates };
}

// fromBER accepts the indefinite-length BER that Apple's client sends.
function parseSignedData(der: Buffer): { signedData: pkijs.SignedData; certBlocks: asn1js.AsnType[] } {
  try {
    const asn1 = asn1js.fromBER(toArrayBuffer(der));
    if (asn1.offset === -1) throw new Error("not BER");
    const contentInfo = new pkijs.ContentInfo({ schema: asn1.result });
    if (contentInfo.contentType !== OID_SIGNED_DATA) throw new Error("not SignedData");
    const content = contentInfo.content as asn1js.Sequence;
    // Keep the raw certificate blocks: pkijs maps them 1:1, in order, to signedData.certificates.
    const certSet = content.valueBlock.value.find((b) => b.idBlock.tagClass === 3 && b.idBlock.tagNumber === 0) as
      | asn1js.Constructed
      | undefined;
    const signedData = new pkijs.SignedData({ schema: content });
    return { signedData, certBlocks: certSet ? certSet.valueBlock.value : [] };
  } catch {
    throw bad("Mdm-Signature is not a CMS SignedData");
  }
}

function toArrayBuffer(buf: Buffer): ArrayBuffer {
  // Buffers may share a pooled ArrayBuffer: copy out exactly our bytes.
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}
