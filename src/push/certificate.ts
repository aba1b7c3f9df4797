import { createHash, createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { BadRequest } from "../errors.ts";
import { looksLikePkcs12, Pkcs12Error, readPkcs12, type Pkcs12Contents } from "../identity/pkcs12.ts";
import { pemBlocks } from "../identity/pem.ts";

/** The subject attribute that holds an MDM push certificate's topic (brief 7.1). */
export const UID_OID = "0.9.2342.19200300.100.1.1";
export const TOPIC_PREFIX = "com.apple.mgmt.";

/** A push certificate and its key, checked: what the store keeps (the key sealed). */
export interface PushCertificate {
  topic: string;
  certPem: string;
  /** PKCS#8 PEM, unencrypted: never logged, never returned. */
  keyPem: string;
  /** Lowercase hex SHA-256 of the certificate's DER. */
  fingerprint: string;
  notBefore: number;
  notAfter: number;
}

const KEY_LABELS = new Set(["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"]);

/**
 * Reads an uploaded push certificate: PEM (the certificate and its key
 * concatenated, in any order, `cat push.pem push.key`) or PKCS#12 (DER, or
 * its base64). The passphrase opens a PKCS#12 file or an encrypted PEM key.
 * Every problem is a BadRequest whose message names it; none quotes the key.
 */
export function parsePushCertificate(body: Buffer, passphrase: string | undefined, now = Date.now()): PushCertificate {
  const text = body.toString("latin1");
  let pair: { cert: X509Certificate; key: KeyObject };
  if (text.includes("-----BEGIN ")) pair = fromPem(text, passphrase);
  else if (looksLikePkcs12(body)) pair = fromPkcs12(body, passphrase);
  else if (/^[A-Za-z0-9+/=\s]+$/.test(text) && looksLikePkcs12(Buffer.from(text, "base64")))
    pair = fromPkcs12(Buffer.from(text, "base64"), passphrase);
  else throw new BadRequest("expected a PEM certificate followed by its unencrypted private key, or a PKCS#12 (.p12) file");
  const { cert, key } = pair;

  const topic = topicOf(cert);
  const notAfter = Date.parse(cert.validTo);
  if (notAfter < now)
    throw new BadRequest(
      `the push certificate of ${topic} expired on ${new Date(notAfter).toISOString()}: renew it at https://identity.apple.com/pushcert`,
    );
  return {
    topic,
    certPem: cert.toString(),
    keyPem: key.export({ type: "pkcs8", format: "pem" }) as string,
    fingerprint: createHash("sha256").update(cert.raw).digest("hex"),
    notBefore: Date.parse(cert.validFrom),
    notAfter,
  };
}

/** The topic in the certificate subject's UID; refused unless it is an MDM topic. */
export function topicOf(cert: X509Certificate): string {
  let uids: string[];
  try {
    uids = new x509.X509Certificate(new Uint8Array(cert.raw)).subjectName.getField(UID_OID);
  } catch {
    throw new BadRequest("cannot read the certificate's subject");
  }
  const topic = uids[0];
  if (!topic) throw new BadRequest("the certificate's subject has no UID (the push topic): is it an MDM push certificate?");
  if (!topic.startsWith(TOPIC_PREFIX) || topic.length > 256 || /[\s\u0000-\u001f]/.test(topic)) {
    throw new BadRequest(`topic ${JSON.stringify(topic.slice(0, 100))} does not start with ${TOPIC_PREFIX}: not an MDM push certificate`);
  }
  return topic;
}

function fromPem(text: string, passphrase: string | undefined): { cert: X509Certificate; key: KeyObject } {
  const certs: X509Certificate[] = [];
  const keys: KeyObject[] = [];
  for (const { label, pem } of pemBlocks(text)) {
    if (label === "CERTIFICATE") {
      try {
        certs.push(new X509Certificate(pem));
      } catch {
        throw new BadRequest("a CERTIFICATE block is not a valid X.509 certificate");
      }
    } else if (KEY_LABELS.has(label)) keys.push(privateKey(pem, passphrase));
  }
  if (certs.length === 0) throw new BadRequest("no CERTIFICATE block found");
  if (keys.length === 0)
    throw new BadRequest("no private key found: send the certificate and its private key together (cat push.pem push.key)");
  return pairUp(certs, keys);
}

function fromPkcs12(der: Buffer, passphrase: string | undefined): { cert: X509Certificate; key: KeyObject } {
  let contents: Pkcs12Contents;
  try {
    contents = readPkcs12(der, passphrase ?? "");
  } catch (err) {
    if (err instanceof Pkcs12Error) {
      // None given, an empty one tried: "wrong passphrase" would mislead.
      if (passphrase === undefined && /passphrase/.test(err.message))
        throw new BadRequest("PKCS#12: the file needs a passphrase, and none was given (the X-Passphrase header)");
      throw new BadRequest(`PKCS#12: ${err.message}`);
    }
    throw err;
  }
  const certs = contents.certificates.map((der) => {
    try {
      return new X509Certificate(der);
    } catch {
      throw new BadRequest("PKCS#12: a certificate in the file is not valid X.509");
    }
  });
  const keys = contents.keys.map((der) => {
    try {
      return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
    } catch {
      throw new BadRequest("PKCS#12: the private key in the file cannot be read");
    }
  });
  if (certs.length === 0) throw new BadRequest("PKCS#12: the file holds no certificate");
  if (keys.length === 0) throw new BadRequest("PKCS#12: the file holds no private key");
  return pairUp(certs, keys);
}

function privateKey(pem: string, passphrase: string | undefined): KeyObject {
  const encrypted = pem.startsWith("-----BEGIN ENCRYPTED PRIVATE KEY-----") || /Proc-Type:\s*4,ENCRYPTED/.test(pem);
  if (encrypted && passphrase === undefined) {
    throw new BadRequest("the private key is encrypted: send it unencrypted, or give its passphrase in the X-Passphrase header");
  }
  try {
    return createPrivateKey({ key: pem, format: "pem", passphrase });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ERR_MISSING_PASSPHRASE")
      throw new BadRequest("the private key is encrypted: send it unencrypted, or give its passphrase in the X-Passphrase header");
    if (encrypted) throw new BadRequest("cannot decrypt the private key: wrong passphrase?");
    throw new BadRequest("the private key cannot be read");
  }
}

/** The certificate that goes with one of the keys (a chain may come along). */
function pairUp(certs: X509Certificate[], keys: KeyObject[]): { cert: X509Certificate; key: KeyObject } {
  for (const cert of certs) {
    for (const key of keys) {
      let matches = false;
      try {
        matches = cert.checkPrivateKey(key);
      } catch {
        matches = false;
      }
      if (matches) return { cert, key };
    }
  }
  throw new BadRequest("the private key does not match the certificate");
}
