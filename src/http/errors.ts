import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { codeOfStatus, OrchardError, type ErrorCode } from "../errors.ts";
import { PlistError } from "../plist/index.ts";
import { IdentityError } from "../identity/index.ts";
import { StoreUnavailable } from "../store/unavailable.ts";
import { LineThrottle } from "../core/line-throttle.ts";
import type { ApiErrorBody } from "./wire.ts";

/** What an error is answered with: the status, the message and the stable code (http/wire.ts ApiErrorBody). */
export interface ErrorAnswer {
  status: number;
  reason: string;
  code: ErrorCode;
  retryAfterSeconds?: number;
}

/** Fastify's own error codes that have a code of Orchard's. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "payload_too_large",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "unsupported_media_type",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "bad_request",
};

/**
 * The one place where an error becomes an HTTP status. Known errors are 4xx
 * with their reason and code; anything else is a 500 whose details stay in
 * the log. Nothing here ever produces a 401 for a device: a 401 unenrolls it.
 */
export function statusOf(err: unknown): ErrorAnswer {
  // A database outage: 503, and when to try again (the pool reconnects by itself).
  if (err instanceof StoreUnavailable) {
    return { status: 503, reason: err.message, code: err.code, retryAfterSeconds: err.retryAfterSeconds };
  }
  if (err instanceof OrchardError) {
    const retryAfterSeconds = (err as { retryAfterSeconds?: number }).retryAfterSeconds;
    return { status: err.status, reason: err.message, code: err.code, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) };
  }
  if (err instanceof PlistError) return { status: 400, reason: `malformed plist: ${err.message}`, code: "bad_request" };
  if (err instanceof IdentityError) return { status: 400, reason: `device identity: ${err.message}`, code: "bad_request" };
  const fe = err as Partial<FastifyError>;
  if (typeof fe.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500 && fe.statusCode !== 401) {
    const code = (fe.code !== undefined ? FASTIFY_CODES[fe.code] : undefined) ?? codeOfStatus(fe.statusCode);
    return { status: fe.statusCode, reason: fe.message ?? "bad request", code };
  }
  return { status: 500, reason: "internal error", code: "internal_error" };
}

/**
 * A URL as it may be logged: the values of query parameters that carry a
 * secret (the enrollment token of /enroll?token=) replaced. Names are
 * compared percent-decoded, as the routes read them (`?to%6Ben=` is
 * `token`); a name that does not decode is redacted too. The router reads
 * a query after `#` as after `?` (`/enroll#token=`), so `#` starts and
 * separates parameters here as well.
 */
export function loggableUrl(url: string): string {
  const start = url.search(/[?#]/);
  if (start < 0) return url;
  const pieces = url
    .slice(start + 1)
    .split(/([&#])/)
    .map((p) => {
      const eq = p.indexOf("=");
      return eq >= 0 && isSecretParam(p.slice(0, eq)) ? `${p.slice(0, eq)}=[redacted]` : p;
    });
  return `${url.slice(0, start + 1)}${pieces.join("")}`;
}

/**
 * The last word of a query parameter name that may carry a secret:
 * `passphrase`, `api_key`, `Push-Key`, `client_secret`, `accessToken`.
 * No route reads such a parameter (the API's are limit, cursor, force,
 * nopush, platform and the like; SCEP's operation and message), so hiding
 * them costs the logs nothing, and a secret put in the query by mistake
 * (`?passphrase=` for the X-Passphrase header) stays out of them. The last
 * word only: `tokens=2` or `key_id` say nothing secret.
 */
const SECRET_WORDS = new Set(["token", "key", "apikey", "secret", "passphrase", "password", "passwd", "pass", "pwd", "challenge"]);

function isSecretParam(name: string): boolean {
  let decoded: string;
  try {
    decoded = decodeURIComponent(name.replaceAll("+", " ")).trim();
  } catch {
    return true;
  }
  const words = decoded
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  return SECRET_WORDS.has(words.at(-1) ?? "");
}

/** Overload answers: a line a second at most, with their count (per process). */
const overloads = new LineThrottle();

export function errorHandler(err: unknown, req: FastifyRequest, reply: FastifyReply): void {
  const { status, reason, code, retryAfterSeconds } = statusOf(err);
  if (err instanceof StoreUnavailable) req.log.warn({ err: err.cause, url: loggableUrl(req.url) }, "store unavailable");
  else if (status === 503 && retryAfterSeconds !== undefined) {
    // An overload (the password hash queue full) is an expected answer, not a bug, and a stranger can cause
    // one per request: a warning without a stack, at most once a second, with the count.
    const refused = overloads.count(Date.now());
    if (refused > 0)
      req.log.warn(
        { status, reason, url: loggableUrl(req.url), remote: req.ip, retryAfter: retryAfterSeconds, refused },
        "request refused: overloaded",
      );
  } else if (status === 502) {
    // Another service failed (Apple's API): said where it failed, as a warning; no stack, it is not Orchard's bug.
    req.log.warn({ status, reason, url: loggableUrl(req.url) }, "request failed: the service behind it failed");
  } else if (status >= 500) req.log.error({ err }, "request failed");
  else req.log.info({ status, reason, url: loggableUrl(req.url) }, "request refused");
  if (retryAfterSeconds !== undefined) void reply.header("retry-after", String(retryAfterSeconds));
  sendError(req, reply, status, reason, code);
}

/**
 * An error answer: JSON `{"error": reason, "code": code}` on the API (the
 * code defaults to the status's generic one), one plain line elsewhere.
 */
export function sendError(
  req: FastifyRequest,
  reply: FastifyReply,
  status: number,
  reason: string,
  code: ErrorCode = codeOfStatus(status),
): void {
  // The matched route when there is one: the router decodes the path (`/%761/...` is /v1/...).
  if ((req.routeOptions?.url ?? req.url).startsWith("/v1/")) {
    const body: ApiErrorBody = { error: reason, code };
    void reply.code(status).type("application/json").send(JSON.stringify(body));
  } else
    void reply
      .code(status)
      .type("text/plain; charset=utf-8")
      .send(reason + "\n");
}
