// The enrollment profile: a configuration profile (XML plist) holding the
// com.apple.mdm payload, the device identity it points at (SCEP or PKCS#12),
// and certificates the device should trust. Pure: the caller supplies URLs,
// topic, identity material and certificates (protocol brief §8; Apple's
// device-management schema for TopLevel, com.apple.security.scep,
// com.apple.security.pkcs12 and com.apple.security.root).
import { randomBytes, randomUUID, X509Certificate } from "node:crypto";
import { readPkcs12, type Pkcs12Contents } from "../identity/pkcs12.ts";
import { serializePlist, type PlistDict } from "../plist/index.ts";

/** AccessRights bits (protocol brief §8): 1 … 4096. */
export const ACCESS_RIGHTS = {
  inspectProfiles: 1,
  installRemoveProfiles: 2,
  deviceLockAndPasscodeRemoval: 4,
  deviceErase: 8,
  queryDeviceInformation: 16,
  queryNetworkInformation: 32,
  inspectProvisioningProfiles: 64,
  installRemoveProvisioningProfiles: 128,
  inspectInstalledApps: 256,
  restrictionQueries: 512,
  securityQueries: 1024,
  manipulateSettings: 2048,
  appManagement: 4096,
} as const;
export const ALL_ACCESS_RIGHTS = 8191;

export const CAPABILITY_PER_USER_CONNECTIONS = "com.apple.mdm.per-user-connections";
export const CAPABILITY_BOOTSTRAP_TOKEN = "com.apple.mdm.bootstraptoken";
export const CAPABILITY_TOKEN = "com.apple.mdm.token";
/** User channels (macOS, Shared iPad) and bootstrap token escrow: both handled by Orchard's core. */
export const DEFAULT_SERVER_CAPABILITIES = [CAPABILITY_PER_USER_CONNECTIONS, CAPABILITY_BOOTSTRAP_TOKEN] as const;

export const DEFAULT_IDENTIFIER_PREFIX = "orchard.enrollment";
export const DEFAULT_DISPLAY_NAME = "Orchard MDM";

export interface ScepIdentity {
  kind: "scep";
  /** The SCEP endpoint (https unless allowHttp). */
  url: string;
  /** The SCEP challenge password the server expects. */
  challenge: string;
  /** The requested subject CN; default "Orchard device <8 hex>". Apple's payload variables are not expanded here. */
  subjectCommonName?: string;
  /** The SCEP "Name" (CA instance selector); default "Orchard". */
  name?: string;
  /** RSA key size the device generates; default 2048. */
  keysize?: 2048 | 4096;
  /** Retries after a PENDING answer; default 3 (Apple's default). */
  retries?: number;
  /** Seconds between retries; default 10 (Apple's default). */
  retryDelay?: number;
}

export interface Pkcs12Identity {
  kind: "pkcs12";
  /** A PKCS#12 file holding one key and its certificate (see issuePkcs12Identity). */
  pkcs12: Uint8Array;
  /** Its password; put into the profile so the device installs it unattended. */
  passphrase: string;
  /** PayloadCertificateFileName; default "orchard-identity.p12". */
  fileName?: string;
}

export interface EnrollmentProfileOptions {
  /** ServerURL: where the device polls for commands. */
  serverUrl: string;
  /** CheckInURL; omitted, the device sends check-ins to ServerURL. */
  checkInUrl?: string;
  /** The push topic: the UID of the MDM push certificate (com.apple.mgmt.…). */
  topic: string;
  identity: ScepIdentity | Pkcs12Identity;
  /**
   * The device CA certificate (DER), installed as a com.apple.security.root
   * payload so the device trusts its identity's chain. Leave it out to
   * install no root from the device CA.
   */
  caCertDer?: Uint8Array;
  /** More certificates to trust, e.g. the private root of the server's TLS chain (DER). */
  trustCertsDer?: Uint8Array[];
  displayName?: string;
  description?: string;
  organization?: string;
  /** Reverse-DNS prefix of every PayloadIdentifier; stable, so a new profile replaces the old one. */
  identifierPrefix?: string;
  /** Default true: every device message carries Mdm-Signature. */
  signMessage?: boolean;
  /** Default 8191 (all rights). */
  accessRights?: number;
  /** Default true: the device sends CheckOut when the profile is removed. */
  checkOutWhenRemoved?: boolean;
  /** Default DEFAULT_SERVER_CAPABILITIES. */
  serverCapabilities?: readonly string[];
  /** UseDevelopmentAPNS: only for a push certificate of the sandbox environment. */
  useDevelopmentApns?: boolean;
  /** Accept http:// URLs (tests only). */
  allowHttp?: boolean;
}

/** Builds the enrollment profile as an XML plist (UTF-8 bytes). Fresh PayloadUUIDs every call. */
export function buildEnrollmentProfile(o: EnrollmentProfileOptions): Buffer {
  const allowHttp = o.allowHttp === true;
  const serverUrl = checkUrl(o.serverUrl, "serverUrl", allowHttp);
  const checkInUrl = o.checkInUrl === undefined ? undefined : checkUrl(o.checkInUrl, "checkInUrl", allowHttp);
  const topic = checkTopic(o.topic);
  const accessRights = checkAccessRights(o.accessRights ?? ALL_ACCESS_RIGHTS);
  const capabilities = checkCapabilities(o.serverCapabilities ?? DEFAULT_SERVER_CAPABILITIES);
  const prefix = checkIdentifier(o.identifierPrefix ?? DEFAULT_IDENTIFIER_PREFIX);
  const organization = optionalText(o.organization, "organization");
  const displayName = optionalText(o.displayName, "displayName") ?? DEFAULT_DISPLAY_NAME;

  const payloads: PlistDict[] = [];
  const common = (type: string, suffix: string, name: string, description?: string): PlistDict => ({
    PayloadType: type,
    PayloadVersion: 1,
    PayloadIdentifier: `${prefix}.${suffix}`,
    PayloadUUID: uuid(),
    PayloadDisplayName: name,
    ...(description !== undefined ? { PayloadDescription: description } : {}),
    ...(organization !== undefined ? { PayloadOrganization: organization } : {}),
  });

  if (o.caCertDer !== undefined) {
    const cert = checkCertificate(o.caCertDer, "caCertDer");
    if (!cert.ca) throw new TypeError("caCertDer is not a CA certificate");
    payloads.push({
      ...common("com.apple.security.root", "device-ca", "Orchard device CA", "Issues this device's MDM identity certificate."),
      PayloadCertificateFileName: "orchard-device-ca.cer",
      PayloadContent: Buffer.from(o.caCertDer),
    });
  }
  (o.trustCertsDer ?? []).forEach((der, i) => {
    const cert = checkCertificate(der, `trustCertsDer[${i}]`);
    // com.apple.security.root is an alias of com.apple.security.pkcs1; name by role for readability.
    const selfSigned = cert.issuer === cert.subject && cert.checkIssued(cert);
    payloads.push({
      ...common(
        selfSigned ? "com.apple.security.root" : "com.apple.security.pkcs1",
        `trust.${i + 1}`,
        commonName(cert) ?? `Certificate ${i + 1}`,
      ),
      PayloadCertificateFileName: `orchard-trust-${i + 1}.cer`,
      PayloadContent: Buffer.from(der),
    });
  });

  const identity = identityPayload(o.identity, common, allowHttp);
  payloads.push(identity);

  payloads.push({
    ...common("com.apple.mdm", "mdm", "Device Management", "Enrolls this device with the Orchard MDM server."),
    ServerURL: serverUrl,
    ...(checkInUrl !== undefined ? { CheckInURL: checkInUrl } : {}),
    Topic: topic,
    IdentityCertificateUUID: identity["PayloadUUID"] as string,
    SignMessage: o.signMessage ?? true,
    AccessRights: accessRights,
    CheckOutWhenRemoved: o.checkOutWhenRemoved ?? true,
    ServerCapabilities: [...capabilities],
    ...(o.useDevelopmentApns ? { UseDevelopmentAPNS: true } : {}),
  });

  const profile: PlistDict = {
    PayloadType: "Configuration",
    PayloadVersion: 1,
    PayloadIdentifier: prefix,
    PayloadUUID: uuid(),
    PayloadDisplayName: displayName,
    PayloadDescription: optionalText(o.description, "description") ?? "Enrolls this device in Orchard mobile device management.",
    ...(organization !== undefined ? { PayloadOrganization: organization } : {}),
    // macOS: an MDM enrollment is a device (System) profile. Other platforms ignore the key.
    PayloadScope: "System",
    PayloadContent: payloads,
  };
  return Buffer.from(serializePlist(profile), "utf8");
}

type Common = (type: string, suffix: string, name: string, description?: string) => PlistDict;

function identityPayload(identity: ScepIdentity | Pkcs12Identity, common: Common, allowHttp: boolean): PlistDict {
  if (identity?.kind === "scep") {
    const challenge = identity.challenge;
    if (typeof challenge !== "string" || challenge === "") throw new TypeError("the SCEP identity needs a challenge");
    const cn = optionalText(identity.subjectCommonName, "subjectCommonName") ?? `Orchard device ${randomBytes(4).toString("hex")}`;
    const keysize = identity.keysize ?? 2048;
    if (keysize !== 2048 && keysize !== 4096) throw new RangeError("the SCEP key size must be 2048 or 4096");
    return {
      ...common("com.apple.security.scep", "identity", "Device identity (SCEP)", "Requests this device's MDM identity certificate."),
      PayloadContent: {
        URL: checkUrl(identity.url, "identity.url", allowHttp),
        Name: optionalText(identity.name, "identity.name") ?? "Orchard",
        Subject: [[["CN", cn]]],
        Challenge: challenge,
        Keysize: keysize,
        "Key Type": "RSA",
        "Key Usage": 5, // 1 signing | 4 encryption: the identity signs (Mdm-Signature, TLS) and SCEP encrypts to it
        Retries: nonNegative(identity.retries ?? 3, "identity.retries"),
        RetryDelay: nonNegative(identity.retryDelay ?? 10, "identity.retryDelay"),
      },
    };
  }
  if (identity?.kind === "pkcs12") {
    if (!(identity.pkcs12 instanceof Uint8Array) || identity.pkcs12.length === 0) throw new TypeError("the PKCS#12 identity is empty");
    const pkcs12 = Buffer.from(identity.pkcs12);
    if (typeof identity.passphrase !== "string" || identity.passphrase === "")
      throw new TypeError("the PKCS#12 identity needs its passphrase");
    // Fails here, not on the device, when the file or passphrase is wrong.
    let contents: Pkcs12Contents;
    try {
      contents = readPkcs12(pkcs12, identity.passphrase);
    } catch (err) {
      throw new TypeError(`the PKCS#12 identity cannot be opened: ${(err as Error).message}`);
    }
    if (contents.keys.length !== 1 || contents.certificates.length === 0) {
      throw new TypeError(
        `the PKCS#12 identity must hold one key and its certificate (has ${contents.keys.length} keys, ${contents.certificates.length} certificates)`,
      );
    }
    return {
      ...common("com.apple.security.pkcs12", "identity", "Device identity", "This device's MDM identity certificate."),
      PayloadCertificateFileName: optionalText(identity.fileName, "identity.fileName") ?? "orchard-identity.p12",
      PayloadContent: pkcs12,
      Password: identity.passphrase,
    };
  }
  throw new TypeError('the identity must be {kind: "scep", …} or {kind: "pkcs12", …}');
}

function uuid(): string {
  return randomUUID().toUpperCase();
}

function checkUrl(value: string, what: string, allowHttp: boolean): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`${what} is not a URL: ${JSON.stringify(value)}`);
  }
  if (url.protocol !== "https:" && !(allowHttp && url.protocol === "http:")) {
    throw new TypeError(`${what} must be an https:// URL: ${JSON.stringify(value)}`);
  }
  if (url.username || url.password) throw new TypeError(`${what} must not carry credentials`);
  if (url.hash) throw new TypeError(`${what} must not have a #fragment`);
  return value;
}

function checkTopic(topic: string): string {
  if (typeof topic !== "string" || topic.trim() === "") throw new TypeError("the push topic is empty (upload a push certificate first)");
  if (!topic.startsWith("com.apple.mgmt.")) throw new TypeError(`the push topic must begin with com.apple.mgmt.: ${JSON.stringify(topic)}`);
  if (/\s/.test(topic)) throw new TypeError("the push topic must not contain whitespace");
  return topic;
}

/** Apple: not 0; 2 requires 1; 128 requires 64. */
function checkAccessRights(rights: number): number {
  if (!Number.isInteger(rights) || rights < 1 || rights > ALL_ACCESS_RIGHTS)
    throw new RangeError(`AccessRights must be an integer in [1, ${ALL_ACCESS_RIGHTS}]`);
  if (rights & 2 && !(rights & 1)) throw new RangeError("AccessRights: 2 (install/remove profiles) requires 1 (inspect profiles)");
  if (rights & 128 && !(rights & 64))
    throw new RangeError("AccessRights: 128 (install/remove provisioning profiles) requires 64 (inspect them)");
  return rights;
}

function checkCapabilities(capabilities: readonly string[]): string[] {
  const out: string[] = [];
  for (const c of capabilities) {
    if (typeof c !== "string" || !/^com\.apple\.mdm\.[a-z0-9.-]+$/.test(c))
      throw new TypeError(`not a server capability: ${JSON.stringify(c)}`);
    if (!out.includes(c)) out.push(c);
  }
  return out;
}

function checkIdentifier(prefix: string): string {
  if (typeof prefix !== "string" || !/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(prefix)) {
    throw new TypeError(`identifierPrefix must be reverse-DNS style (letters, digits, dashes, dots): ${JSON.stringify(prefix)}`);
  }
  return prefix;
}

function checkCertificate(der: Uint8Array, what: string): X509Certificate {
  try {
    return new X509Certificate(Buffer.from(der));
  } catch {
    throw new TypeError(`${what} is not a DER certificate`);
  }
}

function commonName(cert: X509Certificate): string | undefined {
  return /^CN=(.*)$/m.exec(cert.subject)?.[1];
}

function optionalText(value: string | undefined, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.trim() === "") throw new TypeError(`${what} must be a non-empty string`);
  return value;
}

function nonNegative(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be a non-negative integer`);
  return n;
}
