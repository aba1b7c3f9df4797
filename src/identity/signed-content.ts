// A CMS SignedData that carries its content (attached): ADE's MachineInfo, which
// a device signs with its Apple-issued identity during Setup Assistant. pkijs
// checks the signature (with or without signed attributes, RSA or ECDSA), the
// chain to an anchor is checked here with node's X509Certificate.
import { type KeyObject, X509Certificate } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { cmsEngine } from "./engine.ts";
import { IdentityError } from "./errors.ts";
import { costlyKeyProblem } from "./key-cost.ts";

const OID_SIGNED_DATA = "1.2.840.113549.1.7.2";
const MAX_CHAIN = 6;

export interface SignedContent {
  /** The encapsulated content, whose signature verified. */
  content: Buffer;
  /** The certificate whose key made the signature. */
  signer: X509Certificate;
  /** The other certificates carried (intermediates toward an anchor). */
  certificates: X509Certificate[];
}

const bad = (message: string) => new IdentityError("bad-signature", message);

/**
 * Verifies a SignedData with exactly one signer over its own content and
 * returns that content and the signer's certificate. It says nothing of who
 * the signer is: see chainsTo. Throws IdentityError.
 */
export async function verifySignedContent(der: Buffer): Promise<SignedContent> {
  let signedData: pkijs.SignedData;
  let certBlocks: asn1js.AsnType[];
  try {
    const asn1 = asn1js.fromBER(toArrayBuffer(der));
    if (asn1.offset === -1 || asn1.offset !== der.byteLength) throw new Error("not BER");
    const contentInfo = new pkijs.ContentInfo({ schema: asn1.result });
    if (contentInfo.contentType !== OID_SIGNED_DATA) throw new Error("not SignedData");
    const sequence = contentInfo.content as asn1js.Sequence;
    const certSet = sequence.valueBlock.value.find((b) => b.idBlock.tagClass === 3 && b.idBlock.tagNumber === 0) as
      | asn1js.Constructed
      | undefined;
    certBlocks = certSet ? certSet.valueBlock.value : [];
    signedData = new pkijs.SignedData({ schema: sequence });
  } catch {
    throw bad("not a CMS SignedData");
  }
  if (signedData.signerInfos.length !== 1) throw bad("the SignedData must have exactly one signer");
  const eContent = signedData.encapContentInfo.eContent;
  if (eContent === undefined) throw bad("the SignedData carries no content");
  // The signer is one of these, and pkijs verifies with its key: each must be readable, and none too costly to
  // verify with (one Node cannot read, pkijs may still verify with: review).
  const readable = certBlocks.map((block) => (block.idBlock.tagClass === 1 ? readCertificate(block) : undefined));
  let result: pkijs.SignedDataVerifyResult;
  try {
    result = await signedData.verify({ signer: 0, checkChain: false, extendedMode: true }, cmsEngine);
  } catch {
    throw bad("the signature does not verify");
  }
  if (result.signatureVerified !== true || !result.signerCertificate) throw bad("the signature does not verify");
  const index = signedData.certificates?.indexOf(result.signerCertificate) ?? -1;
  const certs: X509Certificate[] = [];
  let signer: X509Certificate | undefined;
  readable.forEach((cert, i) => {
    if (cert === undefined) return; // other CertificateChoices
    if (i === index) signer = cert;
    else certs.push(cert);
  });
  if (!signer) throw bad("the signer's certificate is not in the SignedData");
  return { content: Buffer.from(eContent.getValue()), signer, certificates: certs };
}

/**
 * True when the leaf chains to one of the anchors through the carried
 * intermediates: each link's issuer name and signature checked, each
 * certificate within its validity at `now`.
 */
export function chainsTo(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  anchors: readonly X509Certificate[],
  now = new Date(),
): boolean {
  const valid = (c: X509Certificate) => Date.parse(c.validFrom) <= now.getTime() && now.getTime() <= Date.parse(c.validTo);
  const issued = (child: X509Certificate, parent: X509Certificate) => {
    try {
      return child.checkIssued(parent) && costlyKeyProblem(parent.publicKey) === undefined && child.verify(parent.publicKey);
    } catch {
      return false;
    }
  };
  let current = leaf;
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    if (!valid(current)) return false;
    for (const anchor of anchors)
      if (anchor.fingerprint256 === current.fingerprint256 || (issued(current, anchor) && valid(anchor))) return true;
    const next = intermediates.find((c) => c.ca && c !== current && issued(current, c));
    if (!next) return false;
    current = next;
  }
  return false;
}

function toArrayBuffer(buf: Buffer): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}

/** A carried certificate as Node reads it, with a key of bounded cost; else an IdentityError, before any verification. */
function readCertificate(block: asn1js.AsnType): X509Certificate {
  let cert: X509Certificate;
  let key: KeyObject;
  try {
    cert = new X509Certificate(Buffer.from(block.valueBeforeDecodeView));
    key = cert.publicKey; // Node reads the key only when asked: a garbage key throws here
  } catch {
    throw bad("a carried certificate cannot be read");
  }
  const costly = costlyKeyProblem(key);
  if (costly) throw bad(`a carried certificate's key: ${costly}`);
  return cert;
}
