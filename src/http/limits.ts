import type { Socket } from "node:net";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { BadRequest } from "../errors.ts";
import { LineThrottle } from "../core/line-throttle.ts";

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
 * Wrong secrets (API key, enrollment token, SCEP challenge) per client
 * address, and from all addresses together. It only throttles what is
 * wrong: a guard checks the secret first and lets the right one through
 * whatever this says, so a guesser sharing the operator's address (or
 * choosing an address to blame) cannot lock the operator out.
 *
 * - Per address: past `maxFailures` wrong secrets within `windowMs` (a fixed
 *   window from the first), the address's wrong secrets get 429 until the
 *   window ends. IPv6 addresses count per /64, what one host is usually
 *   given. At most `maxAddresses` windows are kept (expired ones, then the
 *   oldest, make room).
 * - All addresses together (a guesser with many addresses, or one that
 *   evicts its own window): a bucket of `GLOBAL_BURST` x `maxFailures` wrong
 *   secrets refilled at `maxFailures` per window, one address's pace.
 *
 * A right secret never resets a count: it would renew the budget of a
 * guesser sharing the operator's address at each of the operator's calls.
 * In memory, per process: N processes allow N times the limits.
 */
export class ApiFailureLimiter {
  private readonly failures = new Map<string, { count: number; since: number }>();
  private readonly globalCapacity: number;
  private globalTokens: number;
  private globalAt = 0;
  /** Refusals past the limit: a line a second at most, with their count. */
  private readonly refusals = new LineThrottle();

  constructor(
    readonly maxFailures: number,
    readonly windowMs: number,
    private readonly maxAddresses = 10_000,
    /** Whether the budget for all keys together applies (false: each key's own count only). */
    private readonly budgetForAll = true,
  ) {
    this.globalCapacity = GLOBAL_BURST * maxFailures;
    this.globalTokens = this.globalCapacity;
  }

  /** Seconds until a wrong secret from the address is heard again (per address or for everyone), or 0 when it is now. */
  blockedFor(address: string, now: number): number {
    const key = addressKey(address);
    let wait = 0;
    const entry = this.failures.get(key);
    if (entry && now - entry.since >= this.windowMs) this.failures.delete(key);
    else if (entry && entry.count >= this.maxFailures) wait = entry.since + this.windowMs - now;
    this.refill(now);
    if (this.budgetForAll && this.globalTokens < 1) wait = Math.max(wait, ((1 - this.globalTokens) * this.windowMs) / this.maxFailures);
    return wait > 0 ? Math.max(1, Math.ceil(wait / 1000)) : 0;
  }

  /**
   * Whether to log a refusal (429) now: at most one line a second, which
   * says how many were refused since the last (a guesser past its limit
   * could otherwise write a log line per request). 0: do not log.
   */
  refusalsToLog(now: number): number {
    return this.refusals.count(now);
  }

  /**
   * A slow check of a secret under this limit (a password's hash): past the
   * key's limit it is not run, and the answer is the wait in seconds.
   * Otherwise it is counted as a failure before it runs, so that checks in
   * flight at once cannot all pass the limit, and given back when the check
   * passed (a truthy result) or did not finish.
   */
  async check<T>(key: string, run: () => Promise<T>): Promise<{ wait: number } | { result: T }> {
    const now = Date.now();
    const wait = this.blockedFor(key, now);
    if (wait > 0) return { wait };
    this.fail(key, now);
    let result: T;
    try {
      result = await run();
    } catch (err) {
      this.giveBack(key, Date.now());
      throw err;
    }
    if (result) this.giveBack(key, Date.now());
    return { result };
  }

  /** Takes back a failure check() counted ahead. */
  private giveBack(address: string, now: number): void {
    this.refill(now);
    if (this.budgetForAll) this.globalTokens = Math.min(this.globalCapacity, this.globalTokens + 1);
    const entry = this.failures.get(addressKey(address));
    if (entry && now - entry.since < this.windowMs && entry.count > 0) entry.count--;
  }

  /** Counts a wrong secret (call it only when blockedFor said 0). */
  fail(address: string, now: number): void {
    this.refill(now);
    if (this.budgetForAll) this.globalTokens = Math.max(0, this.globalTokens - 1);
    const key = addressKey(address);
    const entry = this.failures.get(key);
    if (entry && now - entry.since < this.windowMs) {
      entry.count++;
      return;
    }
    if (entry) this.failures.delete(key);
    if (this.failures.size >= this.maxAddresses) this.evict(now);
    this.failures.set(key, { count: 1, since: now });
  }

  private refill(now: number): void {
    if (now > this.globalAt) {
      this.globalTokens = Math.min(this.globalCapacity, this.globalTokens + ((now - this.globalAt) * this.maxFailures) / this.windowMs);
      this.globalAt = now;
    }
  }

  /** Drops expired windows, then the oldest, so the map stays bounded. */
  private evict(now: number): void {
    for (const [key, entry] of this.failures) {
      if (now - entry.since >= this.windowMs) this.failures.delete(key);
    }
    while (this.failures.size >= this.maxAddresses) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined) break;
      this.failures.delete(oldest);
    }
  }
}

/** The budget of wrong secrets from all addresses together, in multiples of one address's. */
export const GLOBAL_BURST = 10;

/** What one client is counted as: an IPv4 address, or an IPv6 address's /64 (IPv4-mapped IPv6 as IPv4). */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(":")) return address;
  const [head, tail] = address.split("%")[0]!.toLowerCase().split("::", 2) as [string, string | undefined];
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? left : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  if (groups.length < 4 || groups.slice(0, 4).some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return address;
  return (
    groups
      .slice(0, 4)
      .map((g) => g.replace(/^0+(?=.)/, ""))
      .join(":") + "::/64"
  );
}

/**
 * The API's routes read single query values; `?a=1&a=2` would hand them an
 * array (and the store a value it cannot bind: a 500). A NUL (`%00`) in a
 * query value or a path parameter cannot be stored by PostgreSQL (a 500
 * there too). Both are refused as a 400. A route whose config says
 * `repeatedQuery: true` (KMFDDM's /v1/notify?id=A&id=B) reads arrays itself:
 * there each of the values is checked.
 */
export async function plainRequestStrings(req: FastifyRequest): Promise<void> {
  const repeated = (req.routeOptions.config as { repeatedQuery?: boolean } | undefined)?.repeatedQuery === true;
  for (const [where, values] of [
    ["query parameter", req.query],
    ["path parameter", req.params],
  ] as const) {
    if (!values || typeof values !== "object") continue;
    for (const [name, value] of Object.entries(values as Record<string, unknown>)) {
      const label = `${where} ${JSON.stringify(name.slice(0, 64))}`;
      const list = repeated && where === "query parameter" && Array.isArray(value) ? (value as unknown[]) : [value];
      for (const v of list) {
        if (typeof v !== "string") throw new BadRequest(`${label} must be given once`);
        if (v.includes("\0")) throw new BadRequest(`${label} contains a NUL character`);
      }
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
      socket.write(
        `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${reason.length + 1}\r\nConnection: close\r\n\r\n${reason}\n`,
      );
    }
    socket.destroy();
  };
}
