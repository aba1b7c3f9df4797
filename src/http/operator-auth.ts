import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { allows, csrfTokenOf, type Actor, type OperatorAuth, TOKEN_PREFIX } from "../core/operator-auth.ts";
import { basicPassword, sendTooMany } from "./api-auth.ts";
import { loggableUrl, sendError } from "./errors.ts";
import type { ApiFailureLimiter } from "./limits.ts";
import { routeRule } from "./route-roles.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** Who is calling, once the API's guard has let the request in (or a sign-in succeeded). */
    actor?: Actor;
  }
}

export const SESSION_COOKIE = "orchard_session";
export const CSRF_HEADER = "x-csrf-token";

/** Methods that change nothing: no CSRF token needed with a cookie. */
export function isSafeMethod(method: string): boolean {
  return method === "GET" || method === "HEAD" || method === "OPTIONS";
}

/** A cookie's value from a Cookie header (RFC 6265: `a=1; b=2`); the first of a repeated name. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * The known-browser cookie: which operators signed in from this browser
 * before, each name with a MAC under the server's key. Sign-in throttling
 * holds back an address's unknown browsers only: a guesser at the operator's
 * address stops being heard, and the operator's own browser still signs in
 * (OWASP's "device cookies"). Path=/v1/session: no other request carries it.
 */
export const KNOWN_COOKIE = "orchard_known";
/** Names one browser remembers (the newest kept). */
const KNOWN_NAMES = 5;
/** A year: the browser is known as long as it keeps the cookie. */
export const KNOWN_MAX_AGE_SECONDS = 366 * 86_400;

/** The MAC key of known-browser cookies, from the server's API key (a key every process shares, and no password). */
export function knownBrowserKey(apiKey: string): Buffer {
  return createHash("sha256").update(`orchard-known-browser\0${apiKey}`).digest();
}

function knownMac(key: Buffer, name: string): string {
  return createHmac("sha256", key).update(name).digest("base64url").slice(0, 22);
}

/** The names a known-browser cookie's value vouches for (entries with a wrong MAC are dropped). */
export function knownNames(value: string | undefined, key: Buffer): string[] {
  if (value === undefined || value.length > 1024) return [];
  const names: string[] = [];
  for (const entry of value.split("~")) {
    const colon = entry.lastIndexOf(":");
    if (colon <= 0) continue;
    const name = entry.slice(0, colon);
    if (sameText(entry.slice(colon + 1), knownMac(key, name))) names.push(name);
  }
  return names.slice(-KNOWN_NAMES);
}

/** The cookie's new value after `name` signed in: its names, this one last. */
export function knownValue(names: string[], name: string, key: Buffer): string {
  const kept = [...names.filter((n) => n !== name), name].slice(-KNOWN_NAMES);
  return kept.map((n) => `${n}:${knownMac(key, n)}`).join("~");
}

export interface ApiGuardOptions {
  apiKey: string;
  auth: OperatorAuth;
  limiter: ApiFailureLimiter;
}

/**
 * The API's guard (every /v1 route but signing in): who is calling, then
 * whether their role may call this route (http/route-roles.ts).
 *
 * Credentials, in order: `Authorization: Bearer <personal token>`; HTTP
 * Basic with the shared API key (the admin role, for NanoMDM-style tools) or
 * a personal token as the password; else the session cookie, which on a
 * change must come with `X-CSRF-Token`. A right credential always passes,
 * whatever the failure limiter says about its address (api-auth.ts says why);
 * a wrong key or token is counted, and past the limit answered 429.
 */
export function apiGuard(o: ApiGuardOptions) {
  const keyDigest = sha256(o.apiKey);
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const rule = req.is404 ? undefined : routeRule(req.method, req.routeOptions.url);
    // A change is any method but GET and HEAD, and a GET with an audit action
    // (GET /v1/push/{ids} pushes, NanoMDM's form): an <img> must not push.
    const changes = !isSafeMethod(req.method) || rule?.action !== undefined;
    // Before any credential: Basic credentials a browser cached (every 401
    // here challenges Basic) and cookies ride along on requests other sites
    // start, so a change a browser may have made for another page is refused
    // whatever it carries.
    const refusal = changes ? browserChangeRefusal(req) : undefined;
    if (refusal !== undefined) {
      req.log.info(
        {
          method: req.method,
          url: loggableUrl(req.url),
          remote: req.ip,
          secFetchSite: req.headers["sec-fetch-site"],
          origin: req.headers.origin?.slice(0, 200),
          contentType: req.headers["content-type"]?.slice(0, 200),
        },
        `API change refused: ${refusal.log}`,
      );
      sendError(req, reply, 403, refusal.reason, "forbidden");
      return reply;
    }
    const found = await identify(req, o, keyDigest);
    if (found instanceof Error) {
      req.log.info(
        { url: loggableUrl(req.url), remote: req.ip, reason: found.message },
        "API request refused: malformed Authorization header",
      );
      sendError(req, reply, 400, found.message, "malformed_authorization");
      return reply;
    }
    if (found.kind === "wrong") {
      const now = Date.now();
      const wait = o.limiter.blockedFor(req.ip, now);
      if (wait > 0) {
        sendTooMany(req, reply, wait, "API request", "API key attempts", o.limiter.refusalsToLog(now));
        return reply;
      }
      o.limiter.fail(req.ip, now);
    }
    if (found.kind !== "actor") {
      req.log.info({ url: loggableUrl(req.url), remote: req.ip, credential: found.kind }, "API request without a valid credential");
      // No Basic challenge where a page's script handles the 401 with its own sign-in page: a browser that came
      // with a session cookie, or a same-origin fetch without one (the console's, its cookie expired). The
      // challenge would bring up the browser's own password prompt over it. A URL opened in the browser still gets it.
      if (found.kind !== "session" && !sameOriginScript(req)) void reply.header("www-authenticate", 'Basic realm="orchard"');
      sendError(
        req,
        reply,
        401,
        found.kind === "session" ? "the session has ended; sign in again" : "missing or wrong API key",
        "unauthorized",
      );
      return reply;
    }
    const actor = found.actor;
    if (actor.credential === "session" && changes) {
      const given = req.headers[CSRF_HEADER];
      if (typeof given !== "string" || !sameText(given, found.csrf!)) {
        req.log.info(
          { method: req.method, url: loggableUrl(req.url), operator: actor.name },
          "API change refused: missing or wrong X-CSRF-Token",
        );
        sendError(req, reply, 403, "a change made with the session cookie needs its X-CSRF-Token header", "forbidden");
        return reply;
      }
    }
    req.actor = actor;
    if (req.is404) return;
    // A route nobody declared is the admin's alone: secure by default.
    const needed = rule === undefined || rule.role === "public" ? "admin" : rule.role;
    if (!allows(actor.role, needed)) {
      req.log.info(
        { method: req.method, route: req.routeOptions.url, actor: actor.name, role: actor.role, needed },
        "API request refused: role",
      );
      sendError(req, reply, 403, `this needs the ${needed} role (${actor.name} has ${actor.role})`, "forbidden");
      return reply;
    }
  };
}

/** Content types an HTML form (or a no-cors fetch) sends without asking the server first; none at all too. */
const FORM_TYPES = new Set(["", "application/x-www-form-urlencoded", "multipart/form-data", "text/plain"]);

/**
 * Why a change may have come from a page the operator did not mean to act
 * through, or undefined. Two browser signals, both absent from curl and the CLI:
 * - `Sec-Fetch-Site` (Fetch Metadata): only `same-origin` (the console) and
 *   `none` (the user's own action) may change anything; `same-site` is a
 *   sibling subdomain, which may host anyone's page.
 * - `Origin` with a body a form can send: browsers without Fetch Metadata
 *   still send `Origin` on a form's POST, and the server reads a JSON body
 *   whatever its Content-Type, so `enctype="text/plain"` can carry JSON.
 *   Passes when the browser says `same-origin`, or with `X-CSRF-Token`: no
 *   form can set that header, and another origin's script can send it only
 *   after a CORS preflight the server never grants. (The console sends it on
 *   every change, with text/plain plists and htdigest files, and bodiless POSTs.)
 */
export function browserChangeRefusal(req: FastifyRequest): { reason: string; log: string } | undefined {
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none") {
    return {
      reason: `a change asked by another site (Sec-Fetch-Site: ${site.slice(0, 40)}) is refused: use the console on this server's own origin, curl or the CLI`,
      log: "asked by another site",
    };
  }
  if (req.headers.origin === undefined || site === "same-origin" || req.headers[CSRF_HEADER] !== undefined) return undefined;
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (!FORM_TYPES.has(type)) return undefined;
  return {
    reason: `a browser form cannot change anything here (Origin ${req.headers.origin.slice(0, 100)} with ${type || "no"} Content-Type): use the console, curl or the CLI`,
    log: "a browser form's request",
  };
}

type Found = { kind: "actor"; actor: Actor; csrf?: string } | { kind: "none" | "wrong" | "session" };

async function identify(req: FastifyRequest, o: ApiGuardOptions, keyDigest: Buffer): Promise<Found | Error> {
  const header = req.headers.authorization;
  const bearer = header === undefined ? null : /^bearer +(\S+)\s*$/i.exec(header.trim());
  if (bearer) {
    const actor = await o.auth.token(bearer[1]!);
    return actor ? { kind: "actor", actor } : { kind: "wrong" };
  }
  const basic = basicPassword(header);
  if (basic instanceof Error) return basic;
  if (basic !== undefined) {
    if (timingSafeEqual(sha256(basic), keyDigest))
      return { kind: "actor", actor: { name: "api-key", credential: "api-key", role: "admin" } };
    const actor = basic.startsWith(TOKEN_PREFIX) ? await o.auth.token(basic) : undefined;
    return actor ? { kind: "actor", actor } : { kind: "wrong" };
  }
  const sessionId = cookieValue(req.headers.cookie, SESSION_COOKIE);
  if (sessionId !== undefined) {
    const actor = await o.auth.session(sessionId);
    return actor ? { kind: "actor", actor, csrf: csrfTokenOf(sessionId) } : { kind: "session" };
  }
  return { kind: "none" };
}

/** Compares two texts in constant time (as SHA-256 digests, so the length does not leak either). */
export function sameText(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** A request a same-origin page's script made (fetch), as the browser labels it; never a navigation. */
function sameOriginScript(req: FastifyRequest): boolean {
  return req.headers["sec-fetch-dest"] === "empty" && req.headers["sec-fetch-site"] === "same-origin";
}
