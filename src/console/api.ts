// The console's one way to the server: the /v1 API, as every other client
// uses it, signed in with the session cookie (HttpOnly: the script never
// sees it). Every request that changes something carries the session's CSRF
// token in X-CSRF-Token; the cookie alone (SameSite=Strict besides) is not
// enough for the server to act.

import { splitWarnings } from "../http/warning-header.ts";
import type { ApiErrorBody } from "../http/wire.ts";

/** An answer other than 2xx: the status, and the server's reason and code when it gave them. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | undefined,
    /** The parsed JSON body, when there was one. */
    readonly body?: unknown,
    /** Its orchard-warning headers (a NanoMDM route's 500 is an answer, and may carry them). */
    readonly warnings: string[] = [],
  ) {
    super(message);
  }
}

let csrfToken: string | undefined;

/** Kept in memory only, from the session's answer (POST or GET /v1/session). */
export function setCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

/** Called when an answer says the session is gone (401): the app shows the sign-in page. */
let onSignedOut: () => void = () => {};
export function whenSignedOut(f: () => void): void {
  onSignedOut = f;
}

/**
 * When the session's cookie expires (its Max-Age, --session-max-age), by
 * this browser's clock. Past it the browser no longer sends the cookie; the
 * server answers such a fetch 401 without a Basic challenge (a browser that sends Sec-Fetch-* says it is a
 * same-origin script's), so the sign-in page would follow anyway, but the
 * console ends the session itself a little before (sessionEndsIn) and
 * sends nothing once it has: no request fails half-way through an action.
 */
let sessionEndsAt: number | undefined;
export function setSessionEnd(at: number | undefined): void {
  sessionEndsAt = at;
}
/** Milliseconds until the session's cookie expires (undefined: no session). */
export function sessionEndsIn(): number | undefined {
  return sessionEndsAt === undefined ? undefined : sessionEndsAt - Date.now();
}

/** A JSON object, text (a plist, a PEM, an htdigest file), or a file's bytes (a PKCS#12). */
export type Body = object | string | Blob | ArrayBuffer | undefined;

/** One request. A JSON object body is sent as JSON; a string as text (a plist, a PEM, an htdigest file). */
export interface RequestOptions {
  contentType?: string;
  /** A 401 is the caller's answer (the session probe, sign-in), not a signal that the session ended. */
  quiet401?: boolean;
  headers?: Record<string, string>;
}

export async function request(method: string, path: string, body?: Body, o: RequestOptions = {}): Promise<Response> {
  if (!o.quiet401 && (sessionEndsIn() ?? 1) <= 0) {
    onSignedOut();
    throw new ApiError(401, "the session has ended; sign in again", "unauthorized");
  }
  const headers: Record<string, string> = { accept: "application/json", ...o.headers };
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["x-csrf-token"] = csrfToken;
  let payload: string | Blob | ArrayBuffer | undefined;
  if (typeof body === "string") {
    payload = body;
    headers["content-type"] = o.contentType ?? "text/plain; charset=utf-8";
  } else if (body instanceof Blob || body instanceof ArrayBuffer) {
    payload = body;
    headers["content-type"] = o.contentType ?? "application/octet-stream";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["content-type"] = "application/json";
  }
  const res = await fetch(path, { method, headers, body: payload, credentials: "same-origin", cache: "no-store" });
  if (res.ok || res.status === 304) return res;
  let reason = `${res.status} ${res.statusText}`;
  let code: string | undefined;
  let parsed: unknown;
  try {
    parsed = await res.json();
    const e = parsed as Partial<ApiErrorBody>;
    if (typeof e.error === "string") reason = e.error;
    if (typeof e.code === "string") code = e.code;
  } catch {
    // Not JSON: the status says enough.
  }
  if (res.status === 401 && !o.quiet401) onSignedOut();
  throw new ApiError(res.status, reason, code, parsed, warningsOf(res));
}

/** The answer's orchard-warning headers: what was done, but may not be what was meant. */
export function warningsOf(res: Response): string[] {
  return splitWarnings(res.headers.get("orchard-warning"));
}

/** A JSON answer (or undefined for 204/304). */
export async function api<T>(method: string, path: string, body?: Body, o: RequestOptions = {}): Promise<T> {
  const res = await request(method, path, body, o);
  if (res.status === 204 || res.status === 304) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/**
 * NanoMDM's routes (enqueue, push) answer 207 or 500 with their per-id
 * APIResult when some or every id failed (a push without a push
 * certificate): that is an answer to read, not an error, unless it is an
 * error body ({"error", "code"}). Its orchard-warning headers come with it
 * (enqueue's for a RequestType Apple's schema does not know).
 */
export async function apiResult<T>(
  method: string,
  path: string,
  body?: Body,
  o: RequestOptions = {},
): Promise<{ status: number; result: T; warnings: string[] }> {
  try {
    const res = await request(method, path, body, o);
    return { status: res.status, result: (await res.json()) as T, warnings: warningsOf(res) };
  } catch (e) {
    const b = e instanceof ApiError ? e.body : undefined;
    if (e instanceof ApiError && typeof b === "object" && b !== null && !("error" in b))
      return { status: e.status, result: b as T, warnings: e.warnings };
    throw e;
  }
}

export const get = <T>(path: string) => api<T>("GET", path);

/** A path segment: an enrollment id, a user's short name, a set's name. */
export const seg = (s: string) => encodeURIComponent(s);

/** A query string from the values that are set. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}
