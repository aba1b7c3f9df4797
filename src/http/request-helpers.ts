import type { FastifyReply, FastifyRequest } from "fastify";
import { BadRequest } from "../errors.ts";
import { DuplicateKey, jsonSyntaxDetail, parseStrictJson } from "./strict-json.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A text body as UTF-8, refusing invalid bytes rather than turning them into
 * U+FFFD (a password or a short name must be what the operator sent).
 */
export function utf8Body(req: FastifyRequest, what: string): string {
  if (!Buffer.isBuffer(req.body)) return "";
  try {
    return utf8.decode(req.body);
  } catch {
    throw new BadRequest(`${what} is not valid UTF-8`);
  }
}

/**
 * Parses a JSON object body; every field is checked by the route's own rules.
 * A key given twice, at any depth, is refused (strict-json.ts says why).
 */
export function jsonObject(req: FastifyRequest): Record<string, unknown> {
  const raw = utf8Body(req, "the body");
  if (raw.trim() === "") throw new BadRequest("the body is empty: it must be a JSON object", "invalid_json");
  let value: unknown;
  try {
    value = parseStrictJson(raw);
  } catch (err) {
    if (err instanceof DuplicateKey) throw new BadRequest(`the body has a ${err.message}`, "duplicate_json_key");
    const detail = jsonSyntaxDetail(err, raw);
    throw new BadRequest(`the body is not valid JSON${detail === undefined ? "" : `: ${detail}`}`, "invalid_json");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new BadRequest("the body must be a JSON object", "invalid_json");
  }
  return value as Record<string, unknown>;
}

/** Refuses keys a route does not know, so a typo is an error rather than a no-op. */
export function onlyKeys(body: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new BadRequest(`unknown field ${JSON.stringify(unknown[0]!.slice(0, 64))}; allowed: ${allowed.join(", ")}`, "unknown_field");
  }
}

export function optionalString(body: Record<string, unknown>, key: string, max: number): string | null | undefined {
  const v = body[key];
  if (v === undefined || v === null) return v;
  if (typeof v !== "string" || v.length === 0 || v.length > max) throw new BadRequest(`${key} must be a string of 1 to ${max} characters`);
  // PostgreSQL cannot store U+0000 in text (a 500 there), and a lone surrogate
  // would be stored as U+FFFD: neither is in any real name, id or password.
  if (v.includes("\0")) throw new BadRequest(`${key} contains a NUL character`);
  if (!(v as unknown as { isWellFormed(): boolean }).isWellFormed()) throw new BadRequest(`${key} is not valid Unicode (a lone surrogate)`);
  return v;
}

export function pageSize(value: string | undefined): number {
  if (value === undefined) return 100;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new BadRequest("limit must be a whole number from 1 to 1000", "invalid_parameter");
  return n;
}

/** The cursor of the next page: the last item's key when the page is full. */
export function nextCursor<T>(items: readonly T[], limit: number, key: (item: T) => string | number): string | null {
  const last = items.at(-1);
  return items.length === limit && last !== undefined ? String(key(last)) : null;
}

/** A warning as a header value (orchard-warning): no control characters, bounded. */
export function headerSafe(warning: string): string {
  return warning.replace(/[\u0000-\u001f\u007f-\uffff]/g, "?").slice(0, 500);
}

/** Each warning a log line and an orchard-warning header, after those the reply carries already. */
export function addWarnings(
  req: FastifyRequest,
  reply: FastifyReply,
  context: Record<string, unknown>,
  warnings: readonly string[],
  message: string,
): void {
  for (const w of warnings) req.log.warn({ ...context, warning: w }, message);
  if (warnings.length === 0) return;
  const had = reply.getHeader("orchard-warning");
  const before = had === undefined ? [] : Array.isArray(had) ? had.map(String) : [String(had)];
  void reply.header("orchard-warning", [...before, ...warnings.map(headerSafe)]);
}
