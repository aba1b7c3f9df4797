import type { Socket } from "node:net";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { BadRequest } from "../errors.ts";

// Limits against hostile clients that are not about one message's content:
// slow requests, repeated API key failures, repeated query parameters.
// The values and their defaults are in docs/reliability.md.

/** A device body that stalled longer than --body-idle-timeout between two pieces. */
export class BodyTimeout extends Error {
  readonly statusCode = 408;
  constructor(ms: number) {
    super(`request body stalled: nothing received for ${ms} ms`);
  }
}

/** A device body past its endpoint's limit (--checkin-body-limit, --report-body-limit). */
export class BodyTooLarge extends Error {
  readonly statusCode = 413;
  constructor(limit: number) {
    super(`body too large: the limit is ${limit} bytes`);
  }
}

/**
 * Failed API key attempts per client address, in a fixed window from the
 * first failure. Past `maxFailures` every request from that address gets 429
 * until the window ends, the right key included: answering the right key
 * differently would turn the limit into an oracle. In memory, per process:
 * several processes each allow `maxFailures`. Behind a reverse proxy every
 * client has the proxy's address, so the limit is then shared by all.
 */
export class ApiFailureLimiter {
  private readonly failures = new Map<string, { count: number; since: number }>();

  constructor(
    readonly maxFailures: number,
    readonly windowMs: number,
    private readonly maxAddresses = 10_000,
  ) {}

  /** Seconds until the address may try again, or 0 when it may now. */
  blockedFor(address: string, now: number): number {
    const entry = this.failures.get(address);
    if (!entry) return 0;
    if (now - entry.since >= this.windowMs) {
      this.failures.delete(address);
      return 0;
    }
    return entry.count >= this.maxFailures ? Math.max(1, Math.ceil((entry.since + this.windowMs - now) / 1000)) : 0;
  }

  fail(address: string, now: number): void {
    const entry = this.failures.get(address);
    if (entry && now - entry.since < this.windowMs) {
      entry.count++;
      return;
    }
    if (entry) this.failures.delete(address);
    if (this.failures.size >= this.maxAddresses) this.evict(now);
    this.failures.set(address, { count: 1, since: now });
  }

  succeed(address: string): void {
    this.failures.delete(address);
  }

  /** Drops expired windows, then the oldest, so the map stays bounded. */
  private evict(now: number): void {
    for (const [address, entry] of this.failures) {
      if (now - entry.since >= this.windowMs) this.failures.delete(address);
    }
    while (this.failures.size >= this.maxAddresses) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined) break;
      this.failures.delete(oldest);
    }
  }
}

/**
 * The API's routes read single query values; `?a=1&a=2` would hand them an
 * array (and the store a value it cannot bind: a 500). A NUL (`%00`) in a
 * query value or a path parameter cannot be stored by PostgreSQL (a 500
 * there too). Both are refused as a 400.
 */
export async function plainRequestStrings(req: FastifyRequest): Promise<void> {
  for (const [where, values] of [["query parameter", req.query], ["path parameter", req.params]] as const) {
    if (!values || typeof values !== "object") continue;
    for (const [name, value] of Object.entries(values as Record<string, unknown>)) {
      const label = `${where} ${JSON.stringify(name.slice(0, 64))}`;
      if (typeof value !== "string") throw new BadRequest(`${label} must be given once`);
      if (value.includes("\0")) throw new BadRequest(`${label} contains a NUL character`);
    }
  }
}

/**
 * Fastify's own refusals before routing (a malformed percent-encoding, a
 * path parameter past its length), answered like every other error: the
 * API's JSON shape, a short reason, never the URL echoed back.
 */
export function frameworkErrorHandler(handler: (err: unknown, req: FastifyRequest, reply: FastifyReply) => void) {
  return (err: FastifyError, req: FastifyRequest, reply: FastifyReply): void => {
    const refusal =
      err.code === "FST_ERR_BAD_URL"
        ? Object.assign(new Error("malformed URL: bad percent-encoding"), { statusCode: 400 })
        : err.code === "FST_ERR_MAX_PARAM_LENGTH"
          ? Object.assign(new Error("a path parameter is too long"), { statusCode: 414 })
          : err;
    handler(refusal, req, reply);
  };
}

/**
 * node:http's errors before a request reaches a handler: a malformed request
 * (400), headers too large (431), a request not complete within
 * --headers-timeout / --request-timeout (408). One log line with the code,
 * never the error itself: a parse error carries the raw bytes, headers and all.
 */
export function clientErrorHandler(log: Logger) {
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    if (err.code === "ECONNRESET" || socket.destroyed) return;
    const status = err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : err.code === "HPE_HEADER_OVERFLOW" ? 431 : 400;
    log.info({ status, code: err.code, remote: socket.remoteAddress }, status === 408 ? "request timed out" : "malformed HTTP request");
    // A response already under way (e.g. a 413 whose body is being drained) must not get a second one.
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) {
      const reason = status === 408 ? "request timeout" : status === 431 ? "request headers too large" : "malformed HTTP request";
      socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${reason.length + 1}\r\nConnection: close\r\n\r\n${reason}\n`);
    }
    socket.destroy();
  };
}
