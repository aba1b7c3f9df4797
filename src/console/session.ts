// Signing in and out (POST, GET, DELETE /v1/session). The session itself is
// an HttpOnly cookie the script never sees; the CSRF token comes in the
// answer's body and is kept in memory, so a reload asks GET /v1/session again.

import type { Role, SessionJson } from "../http/wire.ts";
import { api, setCsrfToken } from "./api.ts";

export type { Role, SessionJson } from "../http/wire.ts";

export async function currentSession(): Promise<SessionJson | undefined> {
  try {
    const s = await api<SessionJson>("GET", "/v1/session", undefined, { quiet401: true });
    setCsrfToken(s.csrf_token);
    return s;
  } catch {
    return undefined;
  }
}

export async function signIn(name: string, password: string): Promise<SessionJson> {
  const s = await api<SessionJson>("POST", "/v1/session", { name, password }, { quiet401: true });
  setCsrfToken(s.csrf_token);
  return s;
}

export async function signOut(): Promise<void> {
  try {
    await api("DELETE", "/v1/session", undefined, { quiet401: true });
  } finally {
    setCsrfToken(undefined);
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
