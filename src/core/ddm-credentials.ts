// DDM credential templates (docs/declarative-management.md "Credentials from
// Orchard's CA"). An operator stores a named template; a
// com.apple.asset.credential.scep declaration names it with
// `orchard:credential/scep/<name>`; each device that downloads it gets the
// SCEP credential JSON Apple describes (declarative/declarations/assets/
// credentials/scep.yaml) with the template rendered for that device and a
// fresh single-use challenge bound to it. What the challenge may buy (the
// rendered subject, names and key) is recorded with it: the credential CA
// issues exactly that, and refuses a request that asks for anything else.
import { BadRequest } from "../errors.ts";
import { isObject } from "../protocol/ddm.ts";
import type { CredentialDeviceFacts, CredentialRequest } from "../store/ddm-credentials.ts";

/** The template as Orchard stores it (snake_case, Orchard's API). */
export interface CredentialTemplate {
  kind: "scep";
  /** The issuing CA: Orchard's credential CA, the only one so far. */
  ca: "orchard";
  /** Apple's Subject as pairs, one attribute per RDN, with {{variables}}. */
  subject: Array<[string, string]>;
  subject_alt_names: Partial<Record<SanKey, string>>;
  /** RSA modulus bits. */
  key_size: 2048 | 4096;
  /** Apple's Key Usage: 1 signing, 4 encryption, 5 both. */
  key_usage: 1 | 4 | 5;
  /** Extended key usages: names (clientAuth, serverAuth, emailProtection) or dotted OIDs. */
  extended_key_usages: string[];
  /** Lifetime of an issued certificate. */
  days: number;
}

/** What one device may ask for with its challenge: the template rendered for it. */
export type RenderedCredential = CredentialRequest;

/** The device facts a template may name. */
export interface CredentialVariables {
  udid: string;
  serial_number: string | null;
  /** Why a fact the device has may not go into a certificate: a template naming it is refused (MissingVariable). */
  withheld?: { serial_number?: string };
}

/**
 * A device's variables from what the store knows of it. Its serial number is its claim (any device may send
 * Authenticate again, with its own certificate, naming another's serial), so a certificate names it only if
 * no other enrolled device reported it too, or if the device's identity certificate was issued for that serial
 * by ADE enrollment (core/ade-identity.ts keeps an ADE serial to that certificate). Otherwise a device could
 * get, from the CA that RADIUS and VPN servers trust, a certificate naming another device (hostile review).
 */
export function credentialVariables(udid: string, facts: CredentialDeviceFacts): CredentialVariables {
  const shared = facts.serialNumber !== null && !facts.serialBoundByAde && facts.serialAlsoEnrolledAs !== undefined;
  return {
    udid,
    serial_number: facts.serialNumber,
    ...(shared ? { withheld: { serial_number: SHARED_SERIAL } } : {}),
  };
}

/** The refusal of a serial number that another enrolled device reported too (the device is not told which). */
const SHARED_SERIAL =
  "is also reported by another enrolled device, and Automated Device Enrollment does not bind it to this one: " +
  "an operator removes the enrollment that does not hold it (docs/declarative-management.md, credentials)";

type SanKey = "dns_name" | "rfc822_name" | "uri" | "nt_principal_name";
/** Each of Orchard's SAN keys: Apple's key in the credential JSON, and the certificate's GeneralName type. */
const SANS: Record<SanKey, { apple: string; type: "dns" | "email" | "url" | "upn" }> = {
  dns_name: { apple: "dNSName", type: "dns" },
  rfc822_name: { apple: "rfc822Name", type: "email" },
  uri: { apple: "uniformResourceIdentifier", type: "url" },
  nt_principal_name: { apple: "ntPrincipalName", type: "upn" },
};
const EKU_NAMES: Record<string, string> = {
  clientAuth: "1.3.6.1.5.5.7.3.2",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  emailProtection: "1.3.6.1.5.5.7.3.4",
};
const SUBJECT_KEYS = /^(C|L|ST|O|OU|CN|[0-2](\.(0|[1-9][0-9]{0,8})){1,20})$/;
const VARIABLE = /\{\{\s*([a-z_]+)\s*\}\}/g;
/** What a device fact may be to go into a certificate: a UDID or a serial number, nothing a name could be widened with. */
const DEVICE_FACT = /^[A-Za-z0-9-]{1,64}$/;
const KNOWN_VARIABLES = new Set(["udid", "serial_number"]);
const TEMPLATE_KEYS = new Set(["kind", "ca", "subject", "subject_alt_names", "key_size", "key_usage", "extended_key_usages", "days"]);
const MAX_VALUE = 256;
export const MAX_CREDENTIAL_DAYS = 825;

/** A credential template's name: as an asset id (safe in a URL path segment). */
export const CREDENTIAL_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

export function checkCredentialName(name: string): void {
  if (!CREDENTIAL_NAME.test(name)) {
    throw new BadRequest(
      `${JSON.stringify(name.slice(0, 64))} is not a valid credential name: 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'`,
      "invalid_parameter",
    );
  }
}

/** Checks an operator's template (400 naming the key) and gives it back whole, defaults filled in. */
export function parseCredentialTemplate(json: unknown): CredentialTemplate {
  if (!isObject(json)) throw bad("a credential template is a JSON object");
  const unknown = Object.keys(json).find((k) => !TEMPLATE_KEYS.has(k));
  if (unknown !== undefined) throw bad(`unknown key ${JSON.stringify(unknown.slice(0, 64))} (known: ${[...TEMPLATE_KEYS].join(", ")})`);
  if (json.kind !== undefined && json.kind !== "scep") throw bad('kind: only "scep" (a com.apple.asset.credential.scep)');
  if (json.ca !== undefined && json.ca !== "orchard") throw bad('ca: only "orchard" (Orchard\'s credential CA)');

  const subject = json.subject;
  if (!Array.isArray(subject) || subject.length === 0 || subject.length > 16) throw bad("subject: 1 to 16 [attribute, value] pairs");
  const pairs = subject.map((pair, i): [string, string] => {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" || typeof pair[1] !== "string") {
      throw bad(`subject[${i}]: a pair of strings, such as ["CN", "{{serial_number}}"]`);
    }
    if (!SUBJECT_KEYS.test(pair[0]))
      throw bad(`subject[${i}]: attribute ${JSON.stringify(pair[0].slice(0, 64))}: C, L, ST, O, OU, CN or a dotted OID`);
    return [pair[0], templateText(pair[1], `subject[${i}]`)];
  });

  const sans: Partial<Record<SanKey, string>> = {};
  if (json.subject_alt_names !== undefined) {
    if (!isObject(json.subject_alt_names)) throw bad("subject_alt_names: an object");
    for (const [key, value] of Object.entries(json.subject_alt_names)) {
      if (!(key in SANS)) throw bad(`subject_alt_names: unknown key ${JSON.stringify(key.slice(0, 64))} (${Object.keys(SANS).join(", ")})`);
      if (typeof value !== "string") throw bad(`subject_alt_names.${key}: a string`);
      sans[key as SanKey] = templateText(value, `subject_alt_names.${key}`);
    }
  }

  const keySize = json.key_size ?? 2048;
  if (keySize !== 2048 && keySize !== 4096) throw bad("key_size: 2048 or 4096 (Orchard issues for no RSA key under 2048 bits)");
  const keyUsage = json.key_usage ?? 5;
  if (keyUsage !== 1 && keyUsage !== 4 && keyUsage !== 5) throw bad("key_usage: 1 (signing), 4 (encryption) or 5 (both)");
  const ekus = json.extended_key_usages ?? ["clientAuth"];
  if (!Array.isArray(ekus) || ekus.length > 8 || ekus.some((e) => typeof e !== "string" || eku(e) === undefined)) {
    throw bad(`extended_key_usages: up to 8 of ${Object.keys(EKU_NAMES).join(", ")} or dotted OIDs`);
  }
  const days = json.days ?? 365;
  if (typeof days !== "number" || !Number.isInteger(days) || days < 1 || days > MAX_CREDENTIAL_DAYS) {
    throw bad(`days: a whole number from 1 to ${MAX_CREDENTIAL_DAYS}`);
  }
  return {
    kind: "scep",
    ca: "orchard",
    subject: pairs,
    subject_alt_names: sans,
    key_size: keySize,
    key_usage: keyUsage,
    extended_key_usages: ekus as string[],
    days,
  };
}

/**
 * The template for one device: its variables filled in. A variable the
 * device has no value for (a device that sent no SerialNumber) is an Error
 * the caller answers as the device's problem, not the operator's.
 */
export function renderCredential(t: CredentialTemplate, vars: CredentialVariables): RenderedCredential {
  const fill = (text: string) =>
    text.replace(VARIABLE, (_m, name: string) => {
      const value = name === "udid" ? vars.udid : name === "serial_number" ? vars.serial_number : null;
      if (value === null || value === "") throw new MissingVariable(name);
      const withheld = name === "serial_number" ? vars.withheld?.serial_number : undefined;
      if (withheld !== undefined) throw new MissingVariable(name, withheld);
      // The device claims its facts (SerialNumber in its Authenticate): "*" or "a.b" would widen a name it is certified for.
      if (!DEVICE_FACT.test(value)) throw new MissingVariable(name, "is not only letters, digits and '-'");
      return value;
    });
  return {
    subject: t.subject.map(([k, v]) => [k, fill(v)]),
    subjectAltNames: (Object.entries(t.subject_alt_names) as Array<[SanKey, string]>).map(([k, v]) => ({
      type: SANS[k].type,
      value: fill(v),
    })),
    keySize: t.key_size,
    keyUsage: t.key_usage,
    extendedKeyUsages: t.extended_key_usages.map((e) => eku(e)!),
    days: t.days,
  };
}

/** A template names a device fact this device does not have, or has in a form no certificate may carry. */
export class MissingVariable extends Error {
  constructor(
    readonly variable: string,
    why?: string,
  ) {
    super(why === undefined ? `this device has no ${variable} for the template` : `this device's ${variable} ${why}`);
    this.name = "MissingVariable";
  }
}

/**
 * The JSON document a device downloads for a com.apple.asset.credential.scep
 * (Apple's com.apple.credential.scep): Orchard's SCEP URL for credentials, the
 * challenge, and the rendered subject, names and key. CAFingerprint is left
 * out: the device reaches the CA over the same TLS server it trusts for MDM.
 */
export function scepCredentialDocument(r: RenderedCredential, url: string, challenge: string): Record<string, unknown> {
  const payload: Record<string, unknown> = {
    URL: url,
    Challenge: challenge,
    Subject: r.subject.map(([k, v]) => [[k, v]]),
    Keysize: r.keySize,
    "Key Type": "RSA",
    "Key Usage": r.keyUsage,
  };
  if (r.subjectAltNames.length > 0) {
    const byType = new Map(Object.values(SANS).map((s) => [s.type, s.apple]));
    payload.SubjectAltName = Object.fromEntries(r.subjectAltNames.map((s) => [byType.get(s.type)!, s.value]));
  }
  return { Type: "com.apple.credential.scep", Payload: payload };
}

function eku(name: string): string | undefined {
  return EKU_NAMES[name] ?? (/^[0-2](\.(0|[1-9][0-9]{0,8})){1,20}$/.test(name) ? name : undefined);
}

function templateText(value: string, where: string): string {
  if (value.length === 0 || value.length > MAX_VALUE) throw bad(`${where}: 1 to ${MAX_VALUE} characters`);
  if (/[\u0000-\u001f\u007f]/.test(value)) throw bad(`${where}: a control character`);
  for (const m of value.matchAll(VARIABLE)) {
    if (!KNOWN_VARIABLES.has(m[1]!)) throw bad(`${where}: unknown variable {{${m[1]}}} (known: {{udid}}, {{serial_number}})`);
  }
  return value;
}

function bad(message: string): BadRequest {
  return new BadRequest(`credential template: ${message}`, "invalid_credential");
}
