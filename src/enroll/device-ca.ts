// Orchard's own device CA: issues the identity certificates devices get
// through SCEP (or in a PKCS#12 in the enrollment profile), and is trusted
// for device identity next to any --ca. RSA, because SCEP clients encrypt
// their requests to the CA's key with RSA key transport.
import { generateKeyPair, randomBytes, webcrypto, X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import * as x509 from "@peculiar/x509";
import type { Logger } from "pino";
import { certFingerprint } from "../identity/index.ts";

const wc = webcrypto as unknown as Crypto;
const DAY_MS = 24 * 60 * 60 * 1000;
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const SIGNING = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;

export const DEVICE_CA_CERT_FILE = "device-ca.pem";
export const DEVICE_CA_KEY_FILE = "device-ca.key";

export interface IssueRequest {
  /** The subject as DER (a CSR's subject, kept byte for byte). */
  subjectDer: Uint8Array;
  /** SubjectPublicKeyInfo DER of the device's key. */
  publicKeyDer: Uint8Array;
  /** Lifetime; default the CA's configured device certificate lifetime. */
  days?: number;
  /** A credential's profile (credential-ca.ts); without it, a device identity: clientAuth, signature and key encipherment. */
  profile?: CertificateProfile;
}

/** What a certificate of a credential is for, and the names it carries beside its subject. */
export interface CertificateProfile {
  /** KeyUsage bits (@peculiar/x509's KeyUsageFlags). */
  keyUsage: number;
  /** ExtendedKeyUsage OIDs; none: no extension. */
  extendedKeyUsages: string[];
  subjectAltNames: Array<{ type: "dns" | "email" | "url" | "upn"; value: string }>;
}

export class DeviceCa {
  readonly certDer: Buffer;
  readonly certPem: string;
  readonly fingerprint: string;
  private readonly peculiarCert: x509.X509Certificate;
  private signingKey?: Promise<CryptoKey>;

  constructor(
    readonly cert: X509Certificate,
    /** The CA's RSA private key: signs certificates and SCEP replies, decrypts SCEP requests. */
    readonly key: KeyObject,
    private readonly deviceCertDays = 365,
  ) {
    if (key.asymmetricKeyType !== "rsa") throw new Error("the device CA key must be RSA (SCEP clients encrypt to it)");
    if (!cert.ca) throw new Error("the device CA certificate is not a CA (basicConstraints cA is not set)");
    if (!cert.checkPrivateKey(key)) throw new Error("the device CA key does not match its certificate");
    this.certDer = Buffer.from(cert.raw);
    this.certPem = cert.toString();
    this.fingerprint = certFingerprint(cert);
    this.peculiarCert = new x509.X509Certificate(toArrayBuffer(this.certDer));
  }

  /** Issues a device identity certificate (clientAuth, signature and key encipherment), or a credential's (req.profile). */
  async issue(req: IssueRequest): Promise<X509Certificate> {
    const publicKey = await wc.subtle.importKey("spki", toArrayBuffer(req.publicKeyDer), SIGNING, true, ["verify"]).catch(() => {
      throw new Error("the request's public key is not an RSA key");
    });
    const notBefore = new Date(Date.now() - CLOCK_SKEW_MS);
    // Never past the CA's own end: such a certificate would fail its chain check early.
    const notAfter = new Date(Math.min(notBefore.getTime() + (req.days ?? this.deviceCertDays) * DAY_MS, Date.parse(this.cert.validTo)));
    const generated = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serialNumber(),
        subject: new x509.Name(toArrayBuffer(req.subjectDer)),
        issuer: this.peculiarCert.subjectName,
        notBefore,
        notAfter,
        publicKey,
        signingKey: await this.cryptoKey(),
        signingAlgorithm: SIGNING,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          ...profileExtensions(req.profile),
          await x509.SubjectKeyIdentifierExtension.create(publicKey, false, wc),
          await this.authorityKeyId(),
        ],
      },
      wc,
    );
    return new X509Certificate(Buffer.from(generated.rawData));
  }

  private cryptoKey(): Promise<CryptoKey> {
    this.signingKey ??= wc.subtle.importKey("pkcs8", this.key.export({ type: "pkcs8", format: "der" }), SIGNING, false, ["sign"]);
    return this.signingKey;
  }

  /**
   * The CA's own SubjectKeyIdentifier, copied: a CA given with --device-ca-cert
   * may have computed it otherwise than SHA-1 of the key (RFC 7093), and
   * issuer matching (OpenSSL's X509_check_issued) compares the two as bytes.
   */
  private async authorityKeyId(): Promise<x509.Extension> {
    const ski = this.peculiarCert.getExtension(x509.SubjectKeyIdentifierExtension);
    if (ski) return new x509.AuthorityKeyIdentifierExtension(ski.keyId, false);
    const publicKey = await wc.subtle.importKey("spki", this.cert.publicKey.export({ type: "spki", format: "der" }), SIGNING, true, [
      "verify",
    ]);
    return x509.AuthorityKeyIdentifierExtension.create(publicKey, false, wc);
  }

  /** Creates a self-signed CA (RSA-2048, ten years): the device CA, or by its name another (credential-ca.ts). */
  static async create(commonName = `Orchard Device CA (${os.hostname()})`, deviceCertDays?: number): Promise<DeviceCa> {
    const keys = await promisify(generateKeyPair)("rsa", { modulusLength: 2048, publicExponent: 0x10001 });
    const publicKey = await wc.subtle.importKey("spki", keys.publicKey.export({ type: "spki", format: "der" }), SIGNING, true, ["verify"]);
    const signingKey = await wc.subtle.importKey("pkcs8", keys.privateKey.export({ type: "pkcs8", format: "der" }), SIGNING, false, [
      "sign",
    ]);
    const notBefore = new Date(Date.now() - CLOCK_SKEW_MS);
    const name: x509.JsonName = [{ CN: [commonName] }, { O: ["Orchard"] }];
    const generated = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serialNumber(),
        subject: name,
        issuer: name,
        notBefore,
        notAfter: new Date(notBefore.getTime() + 3650 * DAY_MS),
        publicKey,
        signingKey,
        signingAlgorithm: SIGNING,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(
            x509.KeyUsageFlags.keyCertSign |
              x509.KeyUsageFlags.cRLSign |
              x509.KeyUsageFlags.digitalSignature |
              x509.KeyUsageFlags.keyEncipherment,
            true,
          ),
          await x509.SubjectKeyIdentifierExtension.create(publicKey, false, wc),
        ],
      },
      wc,
    );
    return new DeviceCa(new X509Certificate(Buffer.from(generated.rawData)), keys.privateKey, deviceCertDays);
  }

  static fromPem(certPem: string | Buffer, keyPem: string | Buffer, deviceCertDays?: number): DeviceCa {
    return new DeviceCa(new X509Certificate(certPem), createPrivateKey(keyPem), deviceCertDays);
  }
}

export interface DeviceCaOptions {
  dataDir: string;
  /** --device-ca-cert / --device-ca-key: an existing CA instead of the data dir's. */
  certFile?: string;
  keyFile?: string;
  deviceCertDays?: number;
  log: Pick<Logger, "info" | "warn">;
}

/**
 * The configured device CA, or the data dir's, created at first start. Several
 * processes sharing a data dir may start at once: the key is published with
 * link(), which fails for all but one, and the others wait for its certificate.
 */
export async function loadDeviceCa(o: DeviceCaOptions): Promise<DeviceCa> {
  if (o.certFile || o.keyFile) {
    if (!o.certFile || !o.keyFile) throw new Error("--device-ca-cert and --device-ca-key go together");
    return DeviceCa.fromPem(fs.readFileSync(o.certFile), fs.readFileSync(o.keyFile), o.deviceCertDays);
  }
  const certFile = path.join(o.dataDir, DEVICE_CA_CERT_FILE);
  const keyFile = path.join(o.dataDir, DEVICE_CA_KEY_FILE);
  if (fs.existsSync(keyFile)) return DeviceCa.fromPem(await waitForCert(certFile, keyFile), fs.readFileSync(keyFile), o.deviceCertDays);

  const ca = await DeviceCa.create(undefined, o.deviceCertDays);
  const tmp = path.join(o.dataDir, `.device-ca-${process.pid}-${randomBytes(4).toString("hex")}`);
  fs.writeFileSync(tmp + ".key", ca.key.export({ type: "pkcs8", format: "pem" }) as string, { mode: 0o600 });
  fs.writeFileSync(tmp + ".pem", ca.certPem, { mode: 0o644 });
  try {
    fs.linkSync(tmp + ".key", keyFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    fs.rmSync(tmp + ".key");
    fs.rmSync(tmp + ".pem");
    return DeviceCa.fromPem(await waitForCert(certFile, keyFile), fs.readFileSync(keyFile), o.deviceCertDays); // another process won
  }
  fs.renameSync(tmp + ".pem", certFile);
  fs.rmSync(tmp + ".key");
  o.log.info({ certFile, fingerprint: ca.fingerprint }, "created the device CA");
  return ca;
}

/** The certificate a process that published the key is about to write. */
async function waitForCert(file: string, keyFile: string, timeoutMs = 10_000): Promise<Buffer> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      if (Date.now() > until) {
        throw new Error(
          `${keyFile} exists without ${file} (a first start that was interrupted?): remove ${keyFile} to create a new device CA`,
        );
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function profileExtensions(p: CertificateProfile | undefined): x509.Extension[] {
  if (!p) {
    return [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([OID_CLIENT_AUTH], false),
    ];
  }
  const out: x509.Extension[] = [];
  if (p.keyUsage !== 0) out.push(new x509.KeyUsagesExtension(p.keyUsage, true));
  if (p.extendedKeyUsages.length > 0) out.push(new x509.ExtendedKeyUsageExtension(p.extendedKeyUsages, false));
  if (p.subjectAltNames.length > 0) out.push(new x509.SubjectAlternativeNameExtension(p.subjectAltNames, false));
  return out;
}

function serialNumber(): string {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40; // positive, fixed length
  return serial.toString("hex");
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
