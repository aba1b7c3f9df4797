import { randomBytes, sign, X509Certificate } from "node:crypto";
import { BerReader } from "../identity/ber.ts";
import { certFingerprint } from "../identity/fingerprint.ts";
import { issueDeviceIdentity, type CaIdentity, type DeviceIdentity, type KeyPair } from "../identity/testing/pki.ts";

/**
 * Device identity certificates for a simulated fleet, fast. The devices share
 * one key pair, so their certificates differ only in serial number and
 * subject: one certificate is issued through pki.ts as a template, and every
 * other one is that TBSCertificate with its own serial number and common
 * name, signed with the CA's key by node:crypto. About 1 ms a certificate
 * with an RSA CA, where the full generator takes 10 to 20 ms.
 */
export class IdentityFactory {
  private constructor(
    private readonly ca: CaIdentity,
    private readonly keyPem: string,
    private readonly publicKey: KeyPair["publicKey"],
    private readonly privateKey: KeyPair["privateKey"],
    /** TBSCertificate parts before the serial number (the version), between serial and subject, and after the subject. */
    private readonly version: Buffer,
    private readonly middle: Buffer,
    private readonly tail: Buffer,
    private readonly signatureAlgorithm: Buffer,
  ) {}

  static async create(ca: CaIdentity, keyPair: KeyPair): Promise<IdentityFactory> {
    const template = await issueDeviceIdentity(ca, { commonName: "orchard-simulator-template", keyPair });
    const r = new BerReader(template.certDer);
    const [tbs, signatureAlgorithm] = r.children(r.root());
    const parts = r.children(tbs!);
    // version [0], serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, extensions [3]
    if (parts.length !== 8) throw new Error(`unexpected template certificate (${parts.length} TBSCertificate fields)`);
    const bytes = (from: number, to: number) => Buffer.concat(parts.slice(from, to).map((p) => r.bytes(p)));
    const factory = new IdentityFactory(
      ca,
      template.keyPem,
      keyPair.publicKey,
      keyPair.privateKey,
      bytes(0, 1),
      bytes(2, 5),
      bytes(6, 8),
      Buffer.from(r.bytes(signatureAlgorithm!)),
    );
    // A certificate made this way must check out exactly like one from the generator.
    const probe = factory.issue("orchard-simulator-probe");
    if (!probe.cert.verify(ca.publicKey) || !probe.cert.checkIssued(ca.cert) || probe.cert.subject !== "CN=orchard-simulator-probe") {
      throw new Error("the fast device certificates do not verify against the CA");
    }
    return factory;
  }

  issue(commonName: string): DeviceIdentity {
    const serial = randomBytes(16);
    serial[0] = (serial[0]! & 0x7f) | 0x40; // positive, fixed length
    const subject = der(0x30, der(0x31, der(0x30, Buffer.concat([OID_COMMON_NAME, der(0x0c, Buffer.from(commonName, "utf8"))]))));
    const tbs = der(0x30, Buffer.concat([this.version, der(0x02, serial), this.middle, subject, this.tail]));
    // SHA-256 as pki.ts signs; PKCS#1 v1.5 for RSA, DER ECDSA-Sig-Value for EC: what X.509 wants.
    const signature = sign("sha256", tbs, this.ca.key);
    const certDer = der(0x30, Buffer.concat([tbs, this.signatureAlgorithm, der(0x03, Buffer.concat([Buffer.from([0]), signature]))]));
    const cert = new X509Certificate(certDer);
    return {
      commonName,
      certPem: cert.toString(),
      certDer,
      keyPem: this.keyPem,
      cert,
      key: this.privateKey,
      publicKey: this.publicKey,
      fingerprint: certFingerprint(cert),
    };
  }
}

/** 2.5.4.3, id-at-commonName, as an encoded OBJECT IDENTIFIER. */
const OID_COMMON_NAME = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]);

/** One DER element: tag, definite length, contents. */
function der(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let head: number[];
  if (n < 0x80) head = [tag, n];
  else if (n < 0x100) head = [tag, 0x81, n];
  else if (n < 0x10000) head = [tag, 0x82, n >> 8, n & 0xff];
  else head = [tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from(head), content]);
}
