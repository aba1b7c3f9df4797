// Test PKI for APNs: MDM push certificates (subject UID = the topic, as the
// Apple Push Certificates Portal issues them) and TLS server certificates for
// a local APNs stand-in. Companion to pki.ts, same shapes.
import * as x509 from "@peculiar/x509";
import { generateKeyPair, issueCertificate, validity, type CaIdentity, type KeyPair, type PkiIdentity } from "./pki.ts";

const UID_OID = "0.9.2342.19200300.100.1.1";
const OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const OID_SERVER_AUTH = "1.3.6.1.5.5.7.3.1";

export interface PushCertOptions {
  /** The subject UID; real ones look like com.apple.mgmt.External.<uuid>. */
  topic: string;
  keyPair?: KeyPair;
  notBefore?: Date;
  notAfter?: Date;
}

/** An MDM push certificate like Apple's: `UID=<topic>, CN=APSP:<topic>, C=US`, clientAuth. */
export async function issuePushCertificate(ca: CaIdentity, o: PushCertOptions): Promise<PkiIdentity> {
  const keys = o.keyPair ?? (await generateKeyPair("RSA"));
  return issue(ca, keys, [{ [UID_OID]: [o.topic] }, { CN: [`APSP:${o.topic}`] }, { C: ["US"] }], [OID_CLIENT_AUTH], [], o);
}

/** A TLS server certificate for the given host names and IP addresses. */
export async function issueServerCertificate(ca: CaIdentity, o: { hosts: string[]; keyPair?: KeyPair }): Promise<PkiIdentity> {
  const keys = o.keyPair ?? (await generateKeyPair("RSA"));
  const names = o.hosts.map((h) => (/^[\d.]+$|:/.test(h) ? { type: "ip" as const, value: h } : { type: "dns" as const, value: h }));
  return issue(
    ca,
    keys,
    [{ CN: [o.hosts[0] ?? "localhost"] }],
    [OID_SERVER_AUTH],
    [new x509.SubjectAlternativeNameExtension(names, false)],
    {},
  );
}

/** A leaf for `keys`: signature and key encipherment, these EKUs and extensions, a year by default. */
function issue(
  ca: CaIdentity,
  keys: KeyPair,
  subject: x509.JsonName,
  ekus: string[],
  extra: x509.Extension[],
  o: { notBefore?: Date; notAfter?: Date },
): Promise<PkiIdentity> {
  const extensions = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension(ekus, false),
    ...extra,
  ];
  return issueCertificate(subject, keys, ca, extensions, validity(o, 365));
}
