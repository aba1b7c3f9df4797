import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { loggableUrl, sendError } from "./errors.ts";
import type { ApiFailureLimiter } from "./limits.ts";

export interface SecretGuardOptions {
  /** Any of these is accepted (the API key; /enroll also its enrollment token). */
  secrets: string[];
  /** Also accept a secret in this query parameter (`/enroll?token=`), besides the HTTP Basic password. */
  queryParam?: string;
  limiter?: ApiFailureLimiter;
  /** What is refused, for the log: "API request", "enrollment profile". */
  what: string;
  /** What failed, in the 429: "API key attempts". */
  failures: string;
  /** The 401's reason. */
  missing: string;
  /** Send `WWW-Authenticate: Basic` with the 401 (not for links opened in a browser). */
  basicChallenge: boolean;
}

/**
 * HTTP Basic auth: any user name, a secret as the password (or, with
 * queryParam, in the query). Compared as SHA-256 digests in constant time, so
 * neither a secret's length nor its prefix leaks through timing. With a
 * limiter, an address past its failures gets 429 until its window ends.
 */
export function secretGuard(o: SecretGuardOptions) {
  const expected = o.secrets.map(sha256);
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const now = Date.now();
    if (o.limiter && tooManyFailures(req, reply, o.limiter, o.what, o.failures)) return reply;
    const given: string[] = [];
    const header = req.headers.authorization;
    if (header?.startsWith("Basic ")) {
      const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
      given.push(decoded.slice(decoded.indexOf(":") + 1));
    }
    const fromQuery = o.queryParam === undefined ? undefined : (req.query as Record<string, unknown>)[o.queryParam];
    if (typeof fromQuery === "string") given.push(fromQuery);
    const ok = given.some((g) => g.length > 0 && expected.some((e) => timingSafeEqual(sha256(g), e)));
    if (!ok) {
      o.limiter?.fail(req.ip, now);
      req.log.info({ url: loggableUrl(req.url), remote: req.ip }, `${o.what} without a valid ${o.queryParam ? `${o.queryParam} or API key` : "API key"}`);
      if (o.basicChallenge) void reply.header("www-authenticate", 'Basic realm="orchard"');
      sendError(req, reply, 401, o.missing);
      return reply;
    }
    o.limiter?.succeed(req.ip);
  };
}

/** The operator API's guard: the API key as the Basic password. */
export function apiKeyGuard(apiKey: string, limiter?: ApiFailureLimiter) {
  return secretGuard({ secrets: [apiKey], limiter, what: "API request", failures: "API key attempts", missing: "missing or wrong API key", basicChallenge: true });
}

/**
 * Answers 429 with Retry-After when the client's address is past its failures
 * (and says so in the log); false when it may go on.
 */
export function tooManyFailures(req: FastifyRequest, reply: FastifyReply, limiter: ApiFailureLimiter, what: string, failures: string): boolean {
  const wait = limiter.blockedFor(req.ip, Date.now());
  if (wait === 0) return false;
  req.log.info({ url: loggableUrl(req.url), remote: req.ip, retryAfter: wait }, `${what} refused: too many failed ${failures}`);
  void reply.header("retry-after", String(wait));
  sendError(req, reply, 429, `too many failed ${failures} from this address; retry in ${wait} s`);
  return true;
}

function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}
