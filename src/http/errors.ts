import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { OrchardError } from "../errors.ts";
import { PlistError } from "../plist/index.ts";
import { IdentityError } from "../identity/index.ts";
import { StoreUnavailable } from "../store/unavailable.ts";

/**
 * The one place where an error becomes an HTTP status. Known errors are 4xx
 * with their reason; anything else is a 500 whose details stay in the log.
 * Nothing here ever produces a 401 for a device: a 401 unenrolls it.
 */
export function statusOf(err: unknown): { status: number; reason: string; retryAfterSeconds?: number } {
  // A database outage: 503, and when to try again (the pool reconnects by itself).
  if (err instanceof StoreUnavailable) return { status: 503, reason: err.message, retryAfterSeconds: err.retryAfterSeconds };
  if (err instanceof OrchardError) return { status: err.status, reason: err.message };
  if (err instanceof PlistError) return { status: 400, reason: `malformed plist: ${err.message}` };
  if (err instanceof IdentityError) return { status: 400, reason: `device identity: ${err.message}` };
  const fe = err as Partial<FastifyError>;
  if (typeof fe.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500 && fe.statusCode !== 401) {
    return { status: fe.statusCode, reason: fe.message ?? "bad request" };
  }
  return { status: 500, reason: "internal error" };
}

/**
 * A URL as it may be logged: the values of query parameters that carry a
 * secret (the enrollment token of /enroll?token=) replaced.
 */
export function loggableUrl(url: string): string {
  return url.includes("?") ? url.replace(/([?&](?:token|api[-_]?key|challenge|password)=)[^&#]*/gi, "$1[redacted]") : url;
}

export function errorHandler(err: unknown, req: FastifyRequest, reply: FastifyReply): void {
  const { status, reason, retryAfterSeconds } = statusOf(err);
  if (err instanceof StoreUnavailable) req.log.warn({ err: err.cause, url: loggableUrl(req.url) }, "store unavailable");
  else if (status >= 500) req.log.error({ err }, "request failed");
  else req.log.info({ status, reason, url: loggableUrl(req.url) }, "request refused");
  if (retryAfterSeconds !== undefined) void reply.header("retry-after", String(retryAfterSeconds));
  sendError(req, reply, status, reason);
}

/** An error answer: JSON `{"error": reason}` on the API, one plain line elsewhere. */
export function sendError(req: FastifyRequest, reply: FastifyReply, status: number, reason: string): void {
  if (req.url.startsWith("/v1/")) void reply.code(status).type("application/json").send(JSON.stringify({ error: reason }));
  else void reply.code(status).type("text/plain; charset=utf-8").send(reason + "\n");
}
