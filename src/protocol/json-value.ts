// What a JSON value from outside must be before Orchard walks it recursively
// (tokens, flattening, JSON.stringify) or stores it. Pure: no I/O.
import { BadRequest, type ErrorCode } from "../errors.ts";

/** How deep a JSON value from a device or an operator may nest: objects and arrays alike, the value itself being level 1. */
export const MAX_JSON_DEPTH = 32;

type WellFormed = { isWellFormed(): boolean }; // ES2024, present in Node >= 20

/**
 * Checks a parsed JSON value, without recursion: at most `maxDepth` levels
 * of objects and arrays, and no NUL (U+0000) or lone surrogate in any key or
 * string (PostgreSQL refuses the one in text, UTF-8 cannot carry the other).
 * A 400 naming `what` otherwise. Returns the value.
 */
export function checkJsonValue<T>(value: T, what: string, maxDepth = MAX_JSON_DEPTH, code?: ErrorCode): T {
  const stack: Array<{ v: unknown; depth: number }> = [{ v: value, depth: 1 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (typeof v === "string") {
      checkText(v, what, "a string", code);
      continue;
    }
    if (typeof v !== "object" || v === null) continue;
    if (depth > maxDepth) throw new BadRequest(`${what} nests deeper than ${maxDepth} levels`, code);
    if (Array.isArray(v)) {
      for (const item of v) if (typeof item === "object" || typeof item === "string") stack.push({ v: item, depth: depth + 1 });
      continue;
    }
    for (const [key, item] of Object.entries(v as Record<string, unknown>)) {
      checkText(key, what, "a key", code);
      if (typeof item === "object" || typeof item === "string") stack.push({ v: item, depth: depth + 1 });
    }
  }
  return value;
}

function checkText(s: string, what: string, where: string, code: ErrorCode | undefined): void {
  if (s.includes("\u0000")) throw new BadRequest(`${what}: ${where} contains NUL (U+0000)`, code);
  if (!(s as unknown as WellFormed).isWellFormed()) throw new BadRequest(`${what}: ${where} is not valid Unicode (a lone surrogate)`, code);
}
