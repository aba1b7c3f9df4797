// A network user's GUID, as macOS sends it in UserID (upper-case hex). Stored
// and compared in one canonical form, so a directory entry typed in lower
// case still matches the Mac's UserID.

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const GUID_RULE = "a GUID is 32 hex digits as 8-4-4-4-12, e.g. 16C0477E-EB2F-4B5E-AAFD-92B2B91C4B16";

export function isUserGuid(value: string): boolean {
  return GUID.test(value);
}

/** The canonical form (upper case) of a GUID or of a device's UserID. */
export function canonicalGuid(value: string): string {
  return value.toUpperCase();
}
