// The two steps before Apple's Push Certificates Portal: the customer's key and
// CSR, and the MDM vendor's signed push certificate request.
//
// The request format is Apple's "MDM Vendor CSR Signing Overview" (Mobile Device
// Management Protocol Reference; now "Setting up push notifications for your MDM
// customers", developer.apple.com/documentation/devicemanagement), as MicroMDM's
// `mdmctl mdmcert vendor -sign` writes it (pkg/crypto/mdmcertutil/certutil.go):
// an XML plist with three strings,
//   PushCertRequestCSR        the customer CSR, base64 of its DER
//   PushCertCertificateChain  PEM of the vendor certificate, Apple's WWDR intermediate, Apple's root, concatenated
//   PushCertSignature         base64 of an RSA PKCS#1 v1.5 SHA-256 signature over the CSR DER, with the vendor key
// and the whole plist base64-encoded: that text is the file uploaded to the portal.
import { createPrivateKey, sign, webcrypto, X509Certificate, type KeyObject } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { serializePlist } from "../plist/index.ts";
import { looksLikePkcs12, Pkcs12Error, readPkcs12 } from "../identity/pkcs12.ts";
import { pemBlocks } from "../identity/pem.ts";

/** A mistake in the operator's files: the message names it and never quotes a key. */
export class VendorSignError extends Error {}

const EMAIL_OID = "1.2.840.113549.1.9.1";
const RSA_SHA256 = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;

export interface CsrSubject {
  commonName: string;
  email?: string;
  /** Two letters, e.g. US. */
  country?: string;
}

/** A new RSA 2048 key and a CSR for it (PEM both; the key is PKCS#8, unencrypted). */
export async function createPushCsr(subject: CsrSubject): Promise<{ keyPem: string; csrPem: string }> {
  if (!subject.commonName.trim()) throw new VendorSignError("the common name is empty");
  if (subject.country !== undefined && !/^[A-Za-z]{2}$/.test(subject.country)) {
    throw new VendorSignError("the country must be a two-letter code, e.g. US");
  }
  if (subject.email !== undefined && !/^[^\s@]+@[^\s@]+$/.test(subject.email)) {
    throw new VendorSignError(`${JSON.stringify(subject.email)} is not an email address`);
  }
  const crypto = webcrypto as unknown as Crypto;
  const keys = (await crypto.subtle.generateKey({ ...RSA_SHA256, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  // The subject Keychain Access writes (and mdmctl copies): C, CN, emailAddress.
  const name: x509.JsonName = [];
  if (subject.country) name.push({ C: [subject.country.toUpperCase()] });
  name.push({ CN: [subject.commonName] });
  if (subject.email) name.push({ [EMAIL_OID]: [subject.email.toLowerCase()] });
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name, keys, signingAlgorithm: RSA_SHA256 }, crypto);
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return { keyPem: toPem("PRIVATE KEY", pkcs8), csrPem: csr.toString("pem") + "\n" };
}

export interface VendorSignInput {
  /** The customer's CSR, PEM or DER. */
  csr: Buffer;
  /** The MDM vendor certificate (mdm.cer from the developer portal: DER, or PEM). */
  vendorCert: Buffer;
  /** The vendor's private key: PEM (encrypted with the passphrase) or PKCS#12. */
  vendorKey: Buffer;
  passphrase?: string;
  /** The rest of the chain, in order: Apple's WWDR intermediate, then Apple's root (DER or PEM each). */
  chain: Buffer[];
  now?: number;
}

export interface PushCertRequest {
  /** What goes to the portal: the plist, base64. */
  encoded: string;
  plist: string;
  /** The customer CSR's subject, to show the operator whose request this is. */
  csrSubject: string;
}

/** Signs a customer's CSR with the vendor key: the request Apple's Push Certificates Portal takes. */
export async function signPushCertRequest(input: VendorSignInput): Promise<PushCertRequest> {
  const csrDer = readCsr(input.csr);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(new Uint8Array(csrDer));
  } catch {
    throw new VendorSignError("the CSR file is not a certificate signing request (PEM or DER)");
  }
  if (!(await csr.verify(webcrypto as unknown as Crypto))) {
    throw new VendorSignError("the CSR's own signature does not verify: the file is damaged or not a CSR");
  }
  const vendor = readCertificate(input.vendorCert, "the vendor certificate");
  const key = readVendorKey(input.vendorKey, input.passphrase);
  if (key.asymmetricKeyType !== "rsa") {
    throw new VendorSignError("the vendor key is not an RSA key (Apple's MDM vendor certificates are RSA)");
  }
  if (!vendor.checkPrivateKey(key)) throw new VendorSignError("the vendor key does not match the vendor certificate");
  const now = input.now ?? Date.now();
  if (Date.parse(vendor.validTo) < now) {
    const expired = new Date(vendor.validTo).toISOString();
    throw new VendorSignError(`the vendor certificate expired on ${expired}: renew it in the Apple Developer portal`);
  }
  const chain = input.chain.map((c, i) => readCertificate(c, `chain file ${i + 1}`));
  checkChain([vendor, ...chain]);

  const signature = sign("sha256", csrDer, key);
  const plist = serializePlist({
    PushCertRequestCSR: csrDer.toString("base64"),
    PushCertCertificateChain: [vendor, ...chain].map((c) => c.toString()).join(""),
    PushCertSignature: signature.toString("base64"),
  });
  return { encoded: Buffer.from(plist, "utf8").toString("base64"), plist, csrSubject: csr.subject };
}

/** Each certificate is issued (and signed) by the next; the last is a self-signed root. */
function checkChain(certs: X509Certificate[]): void {
  if (certs.length < 3) {
    throw new VendorSignError(
      "give the chain: Apple's WWDR intermediate and Apple's root CA (--chain AppleWWDRCAG3.cer --chain AppleIncRootCertificate.cer); " +
        "the request carries them to the portal",
    );
  }
  for (let i = 0; i < certs.length - 1; i++) {
    const [cert, issuer] = [certs[i]!, certs[i + 1]!];
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
      const what = i === 0 ? "the vendor certificate" : `chain file ${i}`;
      throw new VendorSignError(
        `${what} (${oneLine(cert.subject)}) is not issued by chain file ${i + 1} (${oneLine(issuer.subject)}): ` +
          "give the chain in order, intermediate then root",
      );
    }
  }
  const root = certs[certs.length - 1]!;
  if (!root.checkIssued(root)) {
    throw new VendorSignError(`the last chain file (${oneLine(root.subject)}) is not a root certificate: end it with Apple's root CA`);
  }
}

function readCsr(body: Buffer): Buffer {
  const text = body.toString("latin1");
  if (text.includes("-----BEGIN ")) {
    const block = pemBlocks(text).find((b) => b.label === "CERTIFICATE REQUEST" || b.label === "NEW CERTIFICATE REQUEST");
    if (!block) throw new VendorSignError("no CERTIFICATE REQUEST block in the CSR file");
    return fromPem(block.pem);
  }
  return body;
}

function readCertificate(body: Buffer, what: string): X509Certificate {
  const text = body.toString("latin1");
  let der = body;
  if (text.includes("-----BEGIN ")) {
    const block = pemBlocks(text).find((b) => b.label === "CERTIFICATE");
    if (!block) throw new VendorSignError(`no CERTIFICATE block in ${what}`);
    der = fromPem(block.pem);
  }
  try {
    return new X509Certificate(der);
  } catch {
    throw new VendorSignError(`${what} is not an X.509 certificate (DER or PEM)`);
  }
}

function readVendorKey(body: Buffer, passphrase: string | undefined): KeyObject {
  if (!body.toString("latin1").includes("-----BEGIN ") && looksLikePkcs12(body)) {
    let keys: Buffer[];
    try {
      keys = readPkcs12(body, passphrase ?? "").keys;
    } catch (err) {
      if (err instanceof Pkcs12Error) throw new VendorSignError(`the vendor key (PKCS#12): ${err.message}`);
      throw err;
    }
    if (keys.length !== 1) throw new VendorSignError(`the vendor key file (PKCS#12) holds ${keys.length} private keys, expected one`);
    return createPrivateKey({ key: keys[0]!, format: "der", type: "pkcs8" });
  }
  try {
    return createPrivateKey({ key: body, format: "pem", passphrase });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ERR_MISSING_PASSPHRASE") {
      throw new VendorSignError("the vendor key is encrypted: give its passphrase (--passphrase-stdin)");
    }
    throw new VendorSignError("the vendor key cannot be read (a PEM private key or a PKCS#12 file is expected; wrong passphrase?)");
  }
}

function oneLine(name: string): string {
  return name.replace(/\n/g, ", ");
}

function fromPem(block: string): Buffer {
  return Buffer.from(block.replace(/-----[A-Z0-9 ]+-----/g, "").replace(/\s+/g, ""), "base64");
}

function toPem(label: string, der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
