// XML property list codec for MDM traffic (protocol brief §2.2, §9.17, §10).
// Hand-written for the hot path; strict and safe against hostile input.

export { PlistError } from "./errors.ts";
export { DEFAULT_PLIST_LIMITS, type PlistDict, type PlistLimits, type PlistValue } from "./types.ts";
export { parsePlist, parsePlistDict } from "./parse.ts";
export { serializePlist } from "./serialize.ts";
