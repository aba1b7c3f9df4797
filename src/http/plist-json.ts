import type { PlistValue } from "../plist/index.ts";

/** A plist value as JSON for the API: dates as ISO strings, data as base64. */
export function plistToJson(value: PlistValue): unknown {
  if (Buffer.isBuffer(value)) return value.toString("base64");
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return value.map(plistToJson);
  if (typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plistToJson(v)]));
  }
  return value;
}
