// SCEP pkiMessages (RFC 8894 3.2, 3.3): the signed attributes that carry the
// message type, transaction id, nonces and status, around the CMS layers.
import { randomBytes, type KeyObject, type X509Certificate } from "node:crypto";
import { BadRequest } from "../errors.ts";
import {
  attribute,
  buildSignedData,
  CmsError,
  parseSignedData,
  singleValue,
  type AttributeValue,
  type ParsedSignedData,
  type ParsedSigner,
} from "../identity/cms.ts";
import { octetString, printableString, tlv } from "../identity/der.ts";
import { OIDS, type Digest } from "../identity/oids.ts";

export const MessageType = {
  CertRep: 3,
  RenewalReq: 17,
  PKCSReq: 19,
  CertPoll: 20,
  GetCert: 21,
  GetCRL: 22,
} as const;

export const PkiStatus = { SUCCESS: 0, FAILURE: 2, PENDING: 3 } as const;
export type PkiStatusValue = (typeof PkiStatus)[keyof typeof PkiStatus];

export const FailInfo = { badAlg: 0, badMessageCheck: 1, badRequest: 2, badTime: 3, badCertId: 4 } as const;
export type FailInfoName = keyof typeof FailInfo;

export function messageTypeName(n: number): string {
  return Object.entries(MessageType).find(([, v]) => v === n)?.[0] ?? String(n);
}

/** Input that is not a SCEP message at all: HTTP 400, since no CertRep can answer it. */
export class ScepMalformed extends BadRequest {
  constructor(message: string) {
    super(`malformed SCEP message: ${message}`);
  }
}

const MAX_TRANSACTION_ID = 256;
const MAX_NONCE = 64;

/** The outer layer of a request: enough to answer it with a CertRep. */
export interface PkiMessage {
  messageType: number;
  transactionId: string;
  senderNonce: Buffer;
  /** The signer's digest algorithm; undefined when it is one we do not know. */
  digest: Digest | undefined;
  signedData: ParsedSignedData;
  signer: ParsedSigner;
}

/** Parses the SignedData and the SCEP attributes; anything unusable is ScepMalformed. */
export function decodePkiMessage(der: Uint8Array): PkiMessage {
  if (der.length === 0) throw new ScepMalformed("empty message");
  let signedData: ParsedSignedData;
  try {
    signedData = parseSignedData(der);
  } catch (err) {
    if (err instanceof CmsError) throw new ScepMalformed(err.message);
    throw err;
  }
  if (signedData.signers.length !== 1) throw new ScepMalformed("a pkiMessage has exactly one signer");
  const signer = signedData.signers[0]!;
  try {
    const messageType = text(singleValue(signer, OIDS.scepMessageType), "messageType");
    if (!/^\d{1,3}$/.test(messageType)) throw new ScepMalformed("messageType is not a number");
    const transactionId = text(singleValue(signer, OIDS.scepTransactionId), "transactionID");
    if (transactionId.length === 0 || transactionId.length > MAX_TRANSACTION_ID || !/^[\x20-\x7e]+$/.test(transactionId)) {
      throw new ScepMalformed("bad transactionID");
    }
    const nonce = singleValue(signer, OIDS.scepSenderNonce);
    if (nonce?.cls !== 0 || nonce.tag !== 4 || nonce.constructed) throw new ScepMalformed("no senderNonce");
    if (nonce.content.length === 0 || nonce.content.length > MAX_NONCE) throw new ScepMalformed("bad senderNonce");
    return { messageType: Number(messageType), transactionId, senderNonce: nonce.content, digest: signer.digest, signedData, signer };
  } catch (err) {
    if (err instanceof CmsError) throw new ScepMalformed(err.message);
    throw err;
  }
}

// PrintableString as RFC 8894 says; UTF8String and IA5String are accepted as well.
function text(v: AttributeValue | undefined, name: string): string {
  if (!v) throw new ScepMalformed(`no ${name}`);
  if (v.cls !== 0 || v.constructed || ![19, 12, 22].includes(v.tag)) throw new ScepMalformed(`${name} is not a string`);
  return v.content.toString("latin1");
}

// PrintableString as RFC 8894 says, when the text fits its alphabet; a
// transactionID with other characters (sent as UTF8String) goes back as one.
function scepString(value: string): Buffer {
  return /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(value) ? printableString(value) : tlv(0x0c, Buffer.from(value, "utf8"));
}

export interface CertRepOptions {
  transactionId: string;
  /** The request's senderNonce, answered as recipientNonce. */
  recipientNonce: Buffer;
  digest: Digest;
  status: PkiStatusValue;
  failInfo?: FailInfoName;
  /** ContentInfo(EnvelopedData) with the certificate, on SUCCESS. */
  envelope?: Buffer;
  ca: { cert: X509Certificate; key: KeyObject };
}

/** A CertRep signed by the CA (RFC 8894 3.3.2). */
export function encodeCertRep(o: CertRepOptions): Buffer {
  const attributes = [
    attribute(OIDS.scepMessageType, printableString(String(MessageType.CertRep))),
    attribute(OIDS.scepPkiStatus, printableString(String(o.status))),
    attribute(OIDS.scepTransactionId, scepString(o.transactionId)),
    attribute(OIDS.scepSenderNonce, octetString(randomBytes(16))),
    attribute(OIDS.scepRecipientNonce, octetString(o.recipientNonce)),
  ];
  if (o.status === PkiStatus.FAILURE)
    attributes.push(attribute(OIDS.scepFailInfo, printableString(String(FailInfo[o.failInfo ?? "badRequest"]))));
  return buildSignedData({ content: o.envelope, signerCert: o.ca.cert, signerKey: o.ca.key, digest: o.digest, attributes });
}

export interface PkiRequestOptions {
  messageType: number;
  transactionId: string;
  senderNonce: Buffer;
  digest: Digest;
  /** ContentInfo(EnvelopedData) with the CSR. */
  envelope: Buffer;
  signer: { cert: X509Certificate; key: KeyObject };
}

/** A client's pkiMessage (for the test client). */
export function encodePkiRequest(o: PkiRequestOptions): Buffer {
  return buildSignedData({
    content: o.envelope,
    signerCert: o.signer.cert,
    signerKey: o.signer.key,
    digest: o.digest,
    attributes: [
      attribute(OIDS.scepMessageType, printableString(String(o.messageType))),
      attribute(OIDS.scepTransactionId, scepString(o.transactionId)),
      attribute(OIDS.scepSenderNonce, octetString(o.senderNonce)),
    ],
  });
}

export interface CertRep {
  transactionId: string;
  status: number;
  failInfo?: number;
  recipientNonce?: Buffer;
  senderNonce: Buffer;
  digest: Digest | undefined;
  envelope?: Buffer;
  signedData: ParsedSignedData;
  signer: ParsedSigner;
}

/** Reads a CertRep's fields (the caller verifies its signature with verifySigner). */
export function decodeCertRep(der: Uint8Array): CertRep {
  const m = decodePkiMessage(der);
  if (m.messageType !== MessageType.CertRep) throw new ScepMalformed(`expected a CertRep, got messageType ${m.messageType}`);
  const status = Number(text(singleValue(m.signer, OIDS.scepPkiStatus), "pkiStatus"));
  const fail = singleValue(m.signer, OIDS.scepFailInfo);
  const recipient = singleValue(m.signer, OIDS.scepRecipientNonce);
  return {
    transactionId: m.transactionId,
    status,
    failInfo: fail ? Number(text(fail, "failInfo")) : undefined,
    recipientNonce: recipient?.content,
    senderNonce: m.senderNonce,
    digest: m.digest,
    envelope: m.signedData.eContent,
    signedData: m.signedData,
    signer: m.signer,
  };
}
