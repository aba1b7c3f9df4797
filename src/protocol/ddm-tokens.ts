// The tokens of Declarative Device Management (Apple: "servers must compute
// the token over the entire declaration content"). Pure functions; the store
// computes them once per change (store/ddm.ts), never per device request.
import { createHash } from "node:crypto";
import { BadRequest } from "../errors.ts";
import { MAX_JSON_DEPTH } from "./json-value.ts";

/**
 * JSON with every object's keys sorted, at any depth: one text per content,
 * whatever order it was written in. Deeper than MAX_JSON_DEPTH is a 400
 * (checkJsonValue refuses such input first; this keeps the recursion bounded whatever the caller).
 */
export function canonicalJson(value: unknown, depth = 1): string {
  if (typeof value === "object" && value !== null && depth > MAX_JSON_DEPTH)
    throw new BadRequest(`JSON nests deeper than ${MAX_JSON_DEPTH} levels`);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v, depth + 1)).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k], depth + 1)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

const hash = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 32);

/**
 * A declaration's ServerToken: a hash of its whole canonical content (Type,
 * Identifier, Payload), and of how often it was touched (POST .../touch asks
 * for a new token without a change). Same content, same token; any change, a new one.
 */
export function serverToken(declaration: { Type: string; Identifier: string; Payload: unknown }, touched: number): string {
  const content = canonicalJson({ Identifier: declaration.Identifier, Payload: declaration.Payload, Type: declaration.Type });
  return hash(touched === 0 ? content : `${content}\n${touched}`);
}

/** A set's token: a hash of its declarations' (Identifier, ServerToken), sorted by identifier. */
export function setToken(items: ReadonlyArray<{ identifier: string; serverToken: string }>): string {
  const sorted = [...items].sort((a, b) => (a.identifier < b.identifier ? -1 : a.identifier > b.identifier ? 1 : 0));
  return hash(sorted.map((i) => `${JSON.stringify(i.identifier)} ${i.serverToken}`).join("\n"));
}

/**
 * A channel's DeclarationsToken: a hash of its sets' (name, token), sorted by
 * name. It changes whenever a declaration of any of its sets, a set's
 * membership, or the channel's sets change (also, harmlessly, when a
 * declaration another set already gave it is added: one extra sync).
 */
export function declarationsToken(sets: ReadonlyArray<{ name: string; token: string }>): string {
  const sorted = [...sets].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return hash(sorted.map((s) => `${JSON.stringify(s.name)} ${s.token}`).join("\n"));
}

/** The token of a set that holds nothing (a set assigned before any declaration is put in it). */
export const EMPTY_SET_TOKEN = setToken([]);

/** The tokens response (Apple's tokensresponse.yaml): Timestamp in seconds, RFC 3339. */
export function tokensResponse(token: string, changedAt: number): { SyncTokens: { DeclarationsToken: string; Timestamp: string } } {
  return {
    SyncTokens: { DeclarationsToken: token, Timestamp: new Date(Math.floor(changedAt / 1000) * 1000).toISOString().replace(".000Z", "Z") },
  };
}
