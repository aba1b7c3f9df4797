// MachineInfo: what a device sends the ADE enrollment URL during Setup
// Assistant (Apple's other/machineinfo.yaml): a plist of UDID, SERIAL,
// PRODUCT, VERSION, OS_VERSION, ... wrapped in a CMS SignedData made with the
// device's Apple-issued identity. In the body (Content-Type
// application/pkcs7-signature) or, in some flows, base64 in the
// x-apple-aspen-deviceinfo header.
import { X509Certificate } from "node:crypto";
import { BadRequest } from "../errors.ts";
import { IdentityError } from "../identity/errors.ts";
import { chainsTo, verifySignedContent, type SignedContent } from "../identity/signed-content.ts";
import { parsePlistDict, PlistError, type PlistDict } from "../plist/index.ts";

export interface MachineInfo {
  udid: string;
  serial: string;
  /** PRODUCT, e.g. MacBookPro18,3 or iPhone15,2. */
  product: string;
  /** VERSION: the build, e.g. 24E248. */
  buildVersion: string;
  /** OS_VERSION (iOS 17, macOS 14 and later). */
  osVersion?: string;
  language?: string;
  /** MDM_CAN_REQUEST_SOFTWARE_UPDATE: the device can be sent softwareupdate.required. */
  canRequestSoftwareUpdate: boolean;
  /** MDM_CAN_REQUEST_PSSO_CONFIG: the device can set up Platform SSO during Setup Assistant (macOS 26). */
  canRequestPsso: boolean;
}

export interface VerifiedMachineInfo {
  info: MachineInfo;
  signer: X509Certificate;
  /** The signer chains to a configured Apple device CA (--ade-device-ca); false when none is configured. */
  chained: boolean;
}

/** The largest MachineInfo Orchard reads (a real one is a few KB). */
export const MAX_MACHINE_INFO_BYTES = 64 * 1024;
const ID = /^[A-Za-z0-9-]{1,64}$/;
const invalid = (why: string) => new BadRequest(`MachineInfo: ${why}`, "invalid_machine_info");

/** Loads the Apple device CA certificates (PEM, one or more) that MachineInfo signers must chain to. */
export function appleDeviceCas(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

/**
 * The signed MachineInfo from the body, or the x-apple-aspen-deviceinfo
 * header: the CMS signature verified over the plist it carries (always),
 * and, when anchors are given, the signer's chain to one of them. Throws
 * BadRequest (invalid_machine_info) with the reason.
 */
export async function readMachineInfo(
  body: Buffer,
  header: string | undefined,
  anchors: readonly X509Certificate[],
): Promise<VerifiedMachineInfo> {
  let der = body;
  if (der.length === 0 && header !== undefined) {
    const b64 = header.replace(/\s+/g, "");
    if (b64.length > (MAX_MACHINE_INFO_BYTES * 4) / 3 + 4 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64))
      throw invalid("x-apple-aspen-deviceinfo is not base64");
    der = Buffer.from(b64, "base64");
  }
  if (der.length === 0) throw invalid("no MachineInfo: the body (or x-apple-aspen-deviceinfo) is empty");
  if (der.length > MAX_MACHINE_INFO_BYTES) throw invalid("too large");
  let signed: SignedContent;
  try {
    signed = await verifySignedContent(der);
  } catch (err) {
    if (err instanceof IdentityError) throw invalid(`${err.message} (a signed MachineInfo is expected)`);
    throw err;
  }
  const chained = anchors.length > 0 && chainsTo(signed.signer, signed.certificates, anchors);
  if (anchors.length > 0 && !chained) throw invalid("the signer does not chain to the Apple device CA (--ade-device-ca)");
  return { info: parseMachineInfo(signed.content), signer: signed.signer, chained };
}

/** The plist inside: UDID, SERIAL, PRODUCT and VERSION required, as Apple's schema says. */
export function parseMachineInfo(plist: Buffer): MachineInfo {
  let d: PlistDict;
  try {
    d = parsePlistDict(plist);
  } catch (err) {
    if (err instanceof PlistError) throw invalid(`the signed content is not a plist: ${err.message}`);
    throw err;
  }
  const str = (key: string, required: boolean): string | undefined => {
    const v = d[key];
    if (v === undefined && !required) return undefined;
    if (typeof v !== "string" || v === "" || v.length > 256) throw invalid(`${key} must be a non-empty string`);
    return v;
  };
  const udid = str("UDID", true)!;
  const serial = str("SERIAL", true)!;
  if (!ID.test(udid)) throw invalid("UDID must be letters, digits and '-'");
  if (!/^[A-Za-z0-9]{1,64}$/.test(serial)) throw invalid("SERIAL must be letters and digits");
  return {
    udid,
    serial,
    product: str("PRODUCT", true)!,
    buildVersion: str("VERSION", true)!,
    osVersion: str("OS_VERSION", false),
    language: str("LANGUAGE", false),
    canRequestSoftwareUpdate: d.MDM_CAN_REQUEST_SOFTWARE_UPDATE === true,
    canRequestPsso: d.MDM_CAN_REQUEST_PSSO_CONFIG === true,
  };
}

/** The platform of a PRODUCT (softwareupdate.required's minimums are per platform). */
export function platformOfProduct(product: string): "macos" | "ios" | "ipados" | "tvos" | "visionos" | "watchos" | undefined {
  if (/^(Mac|iMac|MacBook|Macmini|MacPro|VirtualMac)/.test(product)) return "macos";
  if (/^(iPhone|iPod)/.test(product)) return "ios";
  if (/^iPad/.test(product)) return "ipados";
  if (/^AppleTV/.test(product)) return "tvos";
  if (/^RealityDevice/.test(product)) return "visionos";
  if (/^Watch/.test(product)) return "watchos";
  return undefined;
}

/** -1, 0 or 1: dotted versions compared numerically ("14.10" > "14.9"; "15" = "15.0"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.\s]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.\s]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}
