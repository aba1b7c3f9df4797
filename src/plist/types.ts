// Value model and resource limits shared by the parser and the serializer.

/** `<data>` decodes to a Buffer; `<integer>` outside the safe range to a bigint. */
export type PlistValue = string | number | bigint | boolean | Date | Buffer | PlistValue[] | PlistDict;
export interface PlistDict {
  [key: string]: PlistValue;
}

/** Every limit is checked while parsing, before the offending value is built. */
export interface PlistLimits {
  /** Nesting of dict/array; the top-level container is depth 1. */
  maxDepth: number;
  /** Keys in one dict. */
  maxKeys: number;
  /** Items in one array. */
  maxItems: number;
  /** UTF-8 bytes of one decoded string or key. */
  maxStringBytes: number;
  /** Decoded bytes of one `<data>`. */
  maxDataBytes: number;
  /** Values in the whole document (containers count, keys do not). */
  maxNodes: number;
}

/**
 * Real MDM traffic nests < 10 deep, has dicts of < 100 keys and arrays of a few
 * thousand items (InstalledApplicationList, ProfileList). The caps stop hostile
 * documents from exhausting memory or CPU; the HTTP body limit is the outer
 * bound (a 2M-node document needs >= 14 MB of `<true/>`s).
 * Data is larger than strings because profiles and certificates travel as data.
 */
export const DEFAULT_PLIST_LIMITS: Readonly<PlistLimits> = Object.freeze({
  maxDepth: 32,
  maxKeys: 10_000,
  maxItems: 1_000_000,
  maxStringBytes: 1024 * 1024,
  maxDataBytes: 16 * 1024 * 1024,
  maxNodes: 2_000_000,
});

const LIMIT_NAMES = Object.keys(DEFAULT_PLIST_LIMITS) as (keyof PlistLimits)[];

/** Merges caller overrides; a bad limit is a programmer error (TypeError). */
export function resolveLimits(overrides: Partial<PlistLimits> | undefined): Readonly<PlistLimits> {
  if (overrides === undefined) return DEFAULT_PLIST_LIMITS;
  const out: PlistLimits = { ...DEFAULT_PLIST_LIMITS };
  for (const name of LIMIT_NAMES) {
    const v = overrides[name];
    if (v === undefined) continue;
    // NaN would silently disable every comparison, so refuse it loudly.
    if (typeof v !== "number" || !(v >= 0)) throw new TypeError(`plist limit ${name} must be a number >= 0`);
    out[name] = v;
  }
  return out;
}
