// A small SCEP client (RFC 8894) for the tests and the simulator: GetCACaps,
// GetCACert, PKCSReq with a challenge password, RenewalReq signed with an
// existing identity. What it returns is a PkiIdentity (src/identity/testing/pki.ts),
// ready for a SimDevice. The lower-level builders are exported so tests can
// make requests a well-behaved client would not.
import { randomBytes, sign, webcrypto, X509Certificate, type KeyObject } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { generateKeyPair, pkiIdentity, type KeyPair, type PkiIdentity } from "../../identity/testing/pki.ts";
import {
  buildEnvelopedData,
  certSubjectDer,
  decryptEnvelope,
  findSignerCertificate,
  parseEnvelopedData,
  parseSignedData,
  verifySigner,
  type CipherName,
} from "../../identity/cms.ts";
import { algorithm, integer, nullValue, oid, printableString, sequence, setOf, tlv } from "../../identity/der.ts";
import { OIDS, type Digest } from "../../identity/oids.ts";
import { decodeCertRep, encodePkiRequest, FailInfo, MessageType, PkiStatus, type CertRep } from "../message.ts";

const wc = webcrypto as unknown as Crypto;
const DAY_MS = 86_400_000;

const SIGNATURE_OIDS: Record<Digest, string> = {
  sha1: "1.2.840.113549.1.1.5",
  sha256: "1.2.840.113549.1.1.11",
  sha384: "1.2.840.113549.1.1.12",
  sha512: "1.2.840.113549.1.1.13",
};

/** The server said FAILURE (or answered something that is not a CertRep). */
export class ScepRefused extends Error {
  constructor(
    message: string,
    /** failInfo of a CertRep FAILURE, by name (badRequest, badMessageCheck, ...). */
    readonly failInfo?: string,
    readonly httpStatus?: number,
  ) {
    super(message);
    this.name = "ScepRefused";
  }
}

export interface SubjectPart {
  /** Attribute type OID (CN 2.5.4.3, O 2.5.4.10, OU 2.5.4.11, C 2.5.4.6). */
  type: string;
  value: string;
}

/** A Name: one attribute per RDN, UTF8String values (PrintableString for C). */
export function subjectName(parts: SubjectPart[]): Buffer {
  return sequence(
    ...parts.map((p) =>
      setOf(sequence(oid(p.type), p.type === "2.5.4.6" ? printableString(p.value) : tlv(0x0c, Buffer.from(p.value, "utf8")))),
    ),
  );
}

export const commonNameSubject = (cn: string): Buffer => subjectName([{ type: "2.5.4.3", value: cn }]);

export interface CsrOptions {
  key: KeyPair;
  subjectDer: Buffer;
  challenge?: string;
  digest?: Digest;
}

/** A PKCS#10 request signed with its key, with an optional challengePassword attribute. */
export function buildCsr(o: CsrOptions): Buffer {
  const digest = o.digest ?? "sha256";
  const spki = o.key.publicKey.export({ type: "spki", format: "der" });
  const attrs =
    o.challenge === undefined ? [] : [sequence(oid(OIDS.challengePassword), setOf(tlv(0x0c, Buffer.from(o.challenge, "utf8"))))];
  const info = sequence(integer(0), o.subjectDer, spki, tlv(0xa0, Buffer.concat(attrs)));
  const signature = sign(digest, info, o.key.privateKey);
  return sequence(info, algorithm(SIGNATURE_OIDS[digest], nullValue()), tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
}

/** A short-lived self-signed certificate for the key: the signer of a first request (RFC 8894 2.3). */
export async function selfSignedSigner(key: KeyPair, commonName = "SCEP SIGNER"): Promise<X509Certificate> {
  const alg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  const keys = {
    privateKey: await wc.subtle.importKey("pkcs8", key.privateKey.export({ type: "pkcs8", format: "der" }), alg, false, ["sign"]),
    publicKey: await wc.subtle.importKey("spki", key.publicKey.export({ type: "spki", format: "der" }), alg, true, ["verify"]),
  };
  const notBefore = new Date(Date.now() - 5 * 60_000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: "01" + randomBytes(8).toString("hex"),
      name: [{ CN: [commonName] }],
      notBefore,
      notAfter: new Date(notBefore.getTime() + DAY_MS),
      keys,
      signingAlgorithm: alg,
      extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true)],
    },
    wc,
  );
  return new X509Certificate(Buffer.from(cert.rawData));
}

export interface PkiRequestParts {
  messageType: number;
  csrDer: Buffer;
  signer: { cert: X509Certificate; key: KeyObject };
  recipient: X509Certificate;
  cipher?: CipherName;
  digest?: Digest;
  transactionId?: string;
  senderNonce?: Buffer;
}

/** A complete pkiMessage: the CSR enveloped for the CA, signed by the requester. */
export function buildPkiRequest(p: PkiRequestParts): { der: Buffer; transactionId: string; senderNonce: Buffer } {
  const transactionId = p.transactionId ?? randomBytes(16).toString("hex");
  const senderNonce = p.senderNonce ?? randomBytes(16);
  const envelope = buildEnvelopedData(p.csrDer, p.recipient, p.cipher ?? "aes-256-cbc");
  const der = encodePkiRequest({
    messageType: p.messageType,
    transactionId,
    senderNonce,
    digest: p.digest ?? "sha256",
    envelope,
    signer: p.signer,
  });
  return { der, transactionId, senderNonce };
}

export interface ReadCertRepOptions {
  ca: X509Certificate;
  /** The requester's certificate and key, to decrypt a SUCCESS. */
  signer: { cert: X509Certificate; key: KeyObject };
  transactionId: string;
  senderNonce: Buffer;
}

/**
 * Checks a CertRep (signed by the CA, our transaction, our nonce) and returns
 * the issued certificate; a FAILURE throws ScepRefused with its failInfo.
 */
export function readCertRep(body: Buffer, o: ReadCertRepOptions): { rep: CertRep; cert: X509Certificate } {
  const rep = decodeCertRep(body);
  const signerCert = findSignerCertificate(rep.signedData, rep.signer);
  if (!signerCert || !Buffer.from(signerCert.cert.raw).equals(Buffer.from(o.ca.raw)))
    throw new Error("the CertRep is not signed by the CA certificate");
  verifySigner(rep.signer, o.ca.publicKey, rep.envelope ?? Buffer.alloc(0));
  if (rep.transactionId !== o.transactionId) throw new Error("the CertRep answers another transaction");
  if (!rep.recipientNonce?.equals(o.senderNonce)) throw new Error("the CertRep's recipientNonce is not our senderNonce");
  if (rep.status === PkiStatus.FAILURE) {
    const name = Object.entries(FailInfo).find(([, v]) => v === rep.failInfo)?.[0] ?? String(rep.failInfo);
    throw new ScepRefused(`the SCEP server refused the request: ${name}`, name);
  }
  if (rep.status !== PkiStatus.SUCCESS) throw new Error(`unexpected pkiStatus ${rep.status}`);
  if (!rep.envelope) throw new Error("a SUCCESS without a pkcsPKIEnvelope");
  const { content } = decryptEnvelope(parseEnvelopedData(rep.envelope), o.signer.cert, o.signer.key);
  const certs = parseSignedData(content).certificates.map((der) => new X509Certificate(der));
  const cert = certs.find((c) => c.checkIssued(o.ca) && !c.ca);
  if (!cert) throw new Error("the CertRep carries no certificate issued by the CA");
  return { rep, cert };
}

export interface RequestOptions {
  /** Default sha256. */
  digest?: Digest;
  /** Default aes-256-cbc. */
  cipher?: CipherName;
  /** Default POST (the server advertises POSTPKIOperation). */
  method?: "GET" | "POST";
}

export interface EnrollOptions extends RequestOptions {
  challenge: string;
  commonName?: string;
  /** The whole subject, instead of the common name alone. */
  subjectDer?: Buffer;
  /** A key to certify; default a new RSA-2048 key. */
  key?: KeyPair;
}

export interface RenewOptions extends RequestOptions {
  /** The key for the new certificate; default the old one's (RFC 8894 allows either). */
  key?: KeyPair;
}

/** SCEP against one server, e.g. `new ScepTestClient("http://127.0.0.1:9000/scep")`. */
export class ScepTestClient {
  private ca?: X509Certificate;

  private readonly fetch: typeof fetch;

  /** `o.fetch`: another fetch (e.g. one that trusts a test server's TLS certificate). */
  constructor(
    readonly scepUrl: string,
    o: { fetch?: typeof fetch } = {},
  ) {
    this.fetch = o.fetch ?? fetch;
  }

  async caps(): Promise<string[]> {
    const res = await this.fetch(`${this.scepUrl}?operation=GetCACaps`);
    if (res.status !== 200) throw new Error(`GetCACaps answered HTTP ${res.status}`);
    return (await res.text()).split(/\r?\n/).filter(Boolean);
  }

  async caCert(): Promise<X509Certificate> {
    if (this.ca) return this.ca;
    const res = await this.fetch(`${this.scepUrl}?operation=GetCACert`);
    if (res.status !== 200) throw new Error(`GetCACert answered HTTP ${res.status}`);
    this.ca = new X509Certificate(Buffer.from(await res.arrayBuffer()));
    return this.ca;
  }

  /** Sends a pkiMessage; returns the HTTP answer as is. */
  async pkiOperation(der: Buffer, method: "GET" | "POST" = "POST"): Promise<{ status: number; contentType: string; body: Buffer }> {
    const res =
      method === "POST"
        ? await this.fetch(`${this.scepUrl}?operation=PKIOperation`, {
            method: "POST",
            headers: { "content-type": "application/x-pki-message" },
            body: new Uint8Array(der),
          })
        : await this.fetch(`${this.scepUrl}?operation=PKIOperation&message=${encodeURIComponent(der.toString("base64"))}`);
    return { status: res.status, contentType: res.headers.get("content-type") ?? "", body: Buffer.from(await res.arrayBuffer()) };
  }

  /** PKCSReq: a first certificate, with a challenge password. */
  async enroll(o: EnrollOptions): Promise<PkiIdentity> {
    const key = o.key ?? (await generateKeyPair());
    const commonName = o.commonName ?? "scep-test-device";
    const csrDer = buildCsr({ key, subjectDer: o.subjectDer ?? commonNameSubject(commonName), challenge: o.challenge, digest: o.digest });
    const signer = { cert: await selfSignedSigner(key), key: key.privateKey };
    const cert = await this.request(MessageType.PKCSReq, csrDer, signer, o);
    return pkiIdentity(cert, key);
  }

  /** RenewalReq signed with the current identity; the new certificate keeps its subject. */
  async renew(current: PkiIdentity, o: RenewOptions = {}): Promise<PkiIdentity> {
    const key = o.key ?? { privateKey: current.key, publicKey: current.publicKey };
    const csrDer = buildCsr({ key, subjectDer: certSubjectDer(current.cert), digest: o.digest });
    const cert = await this.request(MessageType.RenewalReq, csrDer, { cert: current.cert, key: current.key }, o);
    return pkiIdentity(cert, key);
  }

  private async request(
    messageType: number,
    csrDer: Buffer,
    signer: { cert: X509Certificate; key: KeyObject },
    o: RequestOptions,
  ): Promise<X509Certificate> {
    const ca = await this.caCert();
    const req = buildPkiRequest({ messageType, csrDer, signer, recipient: ca, cipher: o.cipher, digest: o.digest });
    const res = await this.pkiOperation(req.der, o.method);
    if (res.status !== 200)
      throw new ScepRefused(`PKIOperation answered HTTP ${res.status}: ${res.body.toString("utf8").trim()}`, undefined, res.status);
    return readCertRep(res.body, { ca, signer, transactionId: req.transactionId, senderNonce: req.senderNonce }).cert;
  }
}

/** A certificate and its key as the PkiIdentity SimDevice takes. */
