// The token exchange with Apple Business Manager (ABM/ASM): Orchard makes an
// RSA key pair and a self-signed certificate; the admin uploads the
// certificate to ABM for an "MDM server" and downloads the server token
// (.p7m), S/MIME encrypted to that certificate; Orchard decrypts it with the
// key and reads the OAuth1 credentials (as NanoDEP's tokenpki does).
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, webcrypto, X509Certificate } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { BadRequest } from "../errors.ts";
import { CmsError, decryptEnvelope, parseEnvelopedData } from "../identity/cms.ts";
import { certFingerprint } from "../identity/index.ts";
import { SmimeError, smimeContent, smimeInnerText } from "../identity/smime.ts";
import type { OAuth1Credentials } from "./oauth1.ts";

const wc = webcrypto as unknown as Crypto;
const DAY_MS = 86_400_000;

export interface TokenKeyPair {
  certPem: string;
  keyPem: string;
  fingerprint: string;
  notAfter: number;
}

/** The OAuth1 credentials of a server token, and when Apple says they expire. */
export interface ServerToken extends OAuth1Credentials {
  /** Milliseconds; Apple's access_token_expiry. */
  accessTokenExpiry: number;
}

/** A 2048-bit RSA key and a self-signed certificate for it (key encipherment), as NanoDEP makes them. */
export async function makeTokenKeyPair(commonName: string, days = 365): Promise<TokenKeyPair> {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const alg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;
  const keys = {
    privateKey: await wc.subtle.importKey("pkcs8", new Uint8Array(privateKey.export({ type: "pkcs8", format: "der" })), alg, true, [
      "sign",
    ]),
    publicKey: await wc.subtle.importKey("spki", new Uint8Array(publicKey.export({ type: "spki", format: "der" })), alg, true, ["verify"]),
  };
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: "01" + randomBytes(8).toString("hex"),
      name: new x509.Name([{ CN: [commonName] }]),
      notBefore: new Date(now - 10 * 60_000),
      notAfter: new Date(now + days * DAY_MS),
      keys,
      signingAlgorithm: alg,
      extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.digitalSignature, true)],
    },
    wc,
  );
  const certPem = cert.toString("pem") + "\n";
  const parsed = new X509Certificate(certPem);
  return { certPem, keyPem, fingerprint: certFingerprint(parsed), notAfter: Date.parse(parsed.validTo) };
}

/**
 * Decrypts a server token (.p7m) with the certificate and key it was
 * encrypted to, and reads its OAuth1 credentials. Every problem is a 400
 * `invalid_ade_token` whose message names no secret.
 */
export function decryptServerToken(p7m: Buffer, certPem: string, keyPem: string): ServerToken {
  let inner: string;
  try {
    const env = parseEnvelopedData(smimeContent(p7m));
    // ABM names the certificate it encrypted to: a token for another key is told apart for sure, not by its padding.
    inner = smimeInnerText(decryptEnvelope(env, new X509Certificate(certPem), createPrivateKey(keyPem), true).content);
  } catch (err) {
    if (err instanceof SmimeError) throw new BadRequest(err.message, "invalid_ade_token");
    if (err instanceof CmsError) {
      const why =
        err.kind === "cannot-decrypt"
          ? "it does not decrypt with this ABM server's key: download the token of the MDM server that holds this server's certificate"
          : err.message;
      throw new BadRequest(`the server token cannot be read: ${why}`, "invalid_ade_token");
    }
    throw err;
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(inner) as Record<string, unknown>;
  } catch {
    throw new BadRequest("the decrypted server token is not JSON", "invalid_ade_token");
  }
  const field = (name: string): string => {
    const v = json[name];
    if (typeof v !== "string" || v === "") throw new BadRequest(`the server token has no ${name}`, "invalid_ade_token");
    return v;
  };
  const expiry = Date.parse(field("access_token_expiry"));
  if (Number.isNaN(expiry)) throw new BadRequest("the server token's access_token_expiry is not a time", "invalid_ade_token");
  return {
    consumerKey: field("consumer_key"),
    consumerSecret: field("consumer_secret"),
    accessToken: field("access_token"),
    accessSecret: field("access_secret"),
    accessTokenExpiry: expiry,
  };
}

/** The public key of a PEM private key, for checks. */
export function publicKeyOf(keyPem: string): string {
  return createPublicKey(keyPem).export({ type: "spki", format: "pem" }).toString();
}
