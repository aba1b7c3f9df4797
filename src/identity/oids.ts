// The OIDs of the CMS layers SCEP uses (cms.ts, csr.ts; the DER writer is der.ts).
import { oidHex } from "./der.ts";

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
