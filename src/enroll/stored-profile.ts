// A configuration profile (.mobileconfig) an operator stores for delivery
// through Declarative Device Management (com.apple.configuration.legacy's
// ProfileURL, src/core/ddm-assets.ts): checked to be a profile, plain or
// CMS-signed, and served as uploaded. Orchard does not re-sign it.
import { BadRequest } from "../errors.ts";
import { CmsError, parseSignedData } from "../identity/cms.ts";
import { oidHex } from "../identity/der.ts";
import { OIDS } from "../identity/oids.ts";
import { PlistError, parsePlist, type PlistDict } from "../plist/index.ts";

export interface StoredProfileFacts {
  /** A CMS SignedData with the profile inside (as Apple Configurator and `security cms -S` write it). */
  signed: boolean;
  payloadIdentifier: string;
  payloadDisplayName: string | null;
}

const BINARY_PLIST = Buffer.from("bplist00");

/**
 * What an uploaded profile says of itself; BadRequest (code invalid_profile)
 * with the reason when it is not a profile: not an XML plist nor a CMS
 * SignedData holding one, not a dictionary, or without the keys every profile
 * has (PayloadType Configuration, PayloadIdentifier, PayloadUUID, PayloadVersion).
 */
export function inspectStoredProfile(bytes: Buffer): StoredProfileFacts {
  if (bytes.length === 0) throw invalid("the body is empty: send the .mobileconfig");
  let plist = bytes;
  let signed = false;
  if (bytes[0] === 0x30) {
    let content: Buffer | undefined;
    try {
      const sd = parseSignedData(bytes);
      if (sd.eContentType !== oidHex(OIDS.data)) throw invalid("a signed profile must hold data (id-data)");
      content = sd.eContent;
    } catch (err) {
      if (err instanceof CmsError) throw invalid(`not a CMS-signed profile: ${err.message}`);
      throw err;
    }
    if (content === undefined || content.length === 0) throw invalid("the signed profile holds no content (a detached signature)");
    plist = content;
    signed = true;
  }
  if (plist.subarray(0, BINARY_PLIST.length).equals(BINARY_PLIST)) {
    throw invalid("a binary plist: convert it to XML first (plutil -convert xml1 profile.mobileconfig)");
  }
  let dict: PlistDict;
  try {
    // Profiles carry certificates and other data inline: no cap below the upload limit itself.
    const value = parsePlist(plist, { maxDataBytes: plist.length, maxStringBytes: plist.length });
    if (typeof value !== "object" || value === null || Array.isArray(value) || Buffer.isBuffer(value) || value instanceof Date) {
      throw invalid("the profile's plist is not a dictionary");
    }
    dict = value as PlistDict;
  } catch (err) {
    if (err instanceof PlistError)
      throw invalid(`not a profile: ${signed ? "the signed content is " : ""}not an XML plist (${err.message})`);
    throw err;
  }
  if (dict.PayloadType !== "Configuration") throw invalid('PayloadType must be "Configuration" (a configuration profile)');
  for (const key of ["PayloadIdentifier", "PayloadUUID"] as const) {
    const v = dict[key];
    if (typeof v !== "string" || v.length === 0) throw invalid(`${key} is missing or not a non-empty string`);
  }
  if (typeof dict.PayloadVersion !== "number" && typeof dict.PayloadVersion !== "bigint") {
    throw invalid("PayloadVersion is missing or not an integer");
  }
  const name = dict.PayloadDisplayName;
  return {
    signed,
    payloadIdentifier: dict.PayloadIdentifier as string,
    payloadDisplayName: typeof name === "string" && name.length > 0 ? name : null,
  };
}

function invalid(reason: string): BadRequest {
  return new BadRequest(`not a configuration profile: ${reason}`, "invalid_profile");
}
