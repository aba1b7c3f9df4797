import { X509Certificate } from "node:crypto";
import { pkiIdentity } from "../identity/testing/pki.ts";
import type { KeyPair, PkiIdentity } from "../identity/testing/pki.ts";
import { MessageType } from "../scep/message.ts";
import { buildCsr, buildPkiRequest, commonNameSubject, readCertRep, selfSignedSigner } from "../scep/testing/client.ts";

/**
 * Device identities from the server's own SCEP (`orchard simulate --scep`),
 * the crypto half: the fleet sends the requests through its paced sender and
 * hands the answers back here. Built from the SCEP test client's parts
 * (src/scep/testing/client.ts) rather than its `enroll()`, so that the work
 * per device is one CSR and one pkiMessage: the devices share one RSA key
 * (generating a key per device would take far longer than the run; the server
 * still issues each device its own certificate, and binds each device to that
 * certificate's fingerprint), and so they share one self-signed signer
 * certificate for that key too (RFC 8894 2.3: a first request is signed with
 * a self-signed certificate of the key to be certified).
 */
export class ScepIdentities {
  private constructor(
    /** The server's device CA, from GetCACert: requests are encrypted to it, answers must be signed by it. */
    readonly ca: X509Certificate,
    private readonly key: KeyPair,
    private readonly signer: { cert: X509Certificate; key: KeyPair["privateKey"] },
  ) {}

  /** `caDer` is the GetCACert answer; `key` the fleet's shared RSA key (SCEP servers take RSA keys only). */
  static async create(caDer: Buffer, key: KeyPair): Promise<ScepIdentities> {
    const ca = parseCaCert(caDer);
    if (key.privateKey.asymmetricKeyType !== "rsa") throw new Error("SCEP needs an RSA device key");
    const signerCert = await selfSignedSigner(key, "Orchard Simulator SCEP signer");
    return new ScepIdentities(ca, key, { cert: signerCert, key: key.privateKey });
  }

  /** A PKCSReq for a certificate with this common name, authorised by a challenge password. */
  request(challenge: string, commonName: string): ScepRequest {
    const csrDer = buildCsr({ key: this.key, subjectDer: commonNameSubject(commonName), challenge });
    const req = buildPkiRequest({ messageType: MessageType.PKCSReq, csrDer, signer: this.signer, recipient: this.ca });
    return { body: req.der, transactionId: req.transactionId, senderNonce: req.senderNonce };
  }

  /**
   * The identity from the CertRep answering `req`. Throws ScepRefused (with
   * its failInfo) for a FAILURE, an Error for an answer that does not check out.
   */
  identity(req: ScepRequest, certRep: Buffer): PkiIdentity {
    const { cert } = readCertRep(certRep, {
      ca: this.ca,
      signer: this.signer,
      transactionId: req.transactionId,
      senderNonce: req.senderNonce,
    });
    return pkiIdentity(cert, this.key);
  }
}

export interface ScepRequest {
  /** The pkiMessage, DER: the body of POST /scep?operation=PKIOperation. */
  body: Buffer;
  transactionId: string;
  senderNonce: Buffer;
}

/** The GetCACert answer: one DER CA certificate with an RSA key (no RA, as Orchard answers). */
export function parseCaCert(der: Buffer): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    throw new Error("GetCACert did not answer a DER certificate (a CA with an RA certificate chain is not supported)");
  }
  if (!cert.ca) throw new Error(`GetCACert answered a certificate that is not a CA (${cert.subject})`);
  if (cert.publicKey.asymmetricKeyType !== "rsa") throw new Error(`the SCEP CA's key is ${cert.publicKey.asymmetricKeyType}, not RSA`);
  return cert;
}
