// Signing in and out (POST, GET, DELETE /v1/session). The session itself is
// an HttpOnly cookie the script never sees; the CSRF token comes in the
// answer's body and is kept in memory, so a reload asks GET /v1/session again.

import type { Role, SessionJson } from "../http/wire.ts";
import { api, request, setCsrfToken, setSessionEnd } from "./api.ts";

export type { Role, SessionJson } from "../http/wire.ts";

/** The console ends a session this long before its cookie expires (the server's Date header is to the second). */
const END_MARGIN_MS = 5000;

/** A session's answer: its CSRF token kept, and when its cookie expires by this browser's clock (the server's, less their difference). */
async function started(res: Response): Promise<SessionJson> {
  const s = (await res.json()) as SessionJson;
  setCsrfToken(s.csrf_token);
  const serverNow = Date.parse(res.headers.get("date") ?? "");
  const skew = Number.isNaN(serverNow) ? 0 : serverNow - Date.now();
  setSessionEnd(Date.parse(s.expires_at) - skew - END_MARGIN_MS);
  return s;
}

export async function currentSession(): Promise<SessionJson | undefined> {
  try {
    return await started(await request("GET", "/v1/session", undefined, { quiet401: true }));
  } catch {
    return undefined;
  }
}

export async function signIn(name: string, password: string): Promise<SessionJson> {
  return started(await request("POST", "/v1/session", { name, password }, { quiet401: true }));
}

export async function signOut(): Promise<void> {
  try {
    await api("DELETE", "/v1/session", undefined, { quiet401: true });
  } finally {
    setCsrfToken(undefined);
    setSessionEnd(undefined);
  }
}

/** May this role change things (queue, approve, add)? Auditors read only; the server enforces it, the console only hides buttons. */
export function canChange(role: Role): boolean {
  return role === "admin" || role === "operator";
}

/** Push certificates and accounts are the admin's (http/route-roles.ts). */
export function isAdmin(role: Role): boolean {
  return role === "admin";
}
