import type { SqlParam } from "./db.ts";

/** Booleans become 1/0: both dialects store them in INTEGER columns. */
export function normalizeParams(params: readonly SqlParam[]): Array<Exclude<SqlParam, boolean>> {
  return params.map((p) => (typeof p === "boolean" ? (p ? 1 : 0) : p));
}
