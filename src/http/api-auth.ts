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
  /** The 401's reason when no secret was given. */
  missing: string;
  /** The 401's reason when one was given and it is none of the secrets (never the secret itself). */
  wrong: string;
  /** Send `WWW-Authenticate: Basic` with the 401 (not for links opened in a browser). */
  basicChallenge: boolean;
}

/**
 * HTTP Basic auth: any user name, a secret as the password (or, with
 * queryParam, in the query). Compared as SHA-256 digests in constant time, so
 * neither a secret's length nor its prefix leaks through timing.
 *
 * The secret is checked first: a right one always passes, even from an
 * address the limiter throttles, so nobody can lock the operator out by
 * sending wrong keys from the operator's address. A wrong one is counted,
 * or answered 429 once the address (or everyone) is past its failures: the
 * limit slows guessing, and an attacker who guesses right is in anyway, so
 * answering the right key differently is no oracle. A request with no
 * secret at all is 401 and not counted: it guesses nothing.
 */
export function secretGuard(o: SecretGuardOptions) {
  const expected = o.secrets.map(sha256);
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const given: string[] = [];
    const basic = basicPassword(req.headers.authorization);
    if (basic instanceof Error) {
      const where = { url: loggableUrl(req.url), remote: req.ip, reason: basic.message };
      req.log.info(where, `${o.what} refused: malformed Authorization header`);
      sendError(req, reply, 400, basic.message, "malformed_authorization");
      return reply;
    }
    if (basic) given.push(basic);
    const fromQuery = o.queryParam === undefined ? undefined : (req.query as Record<string, unknown>)[o.queryParam];
    if (typeof fromQuery === "string" && fromQuery.length > 0) given.push(fromQuery);
    if (given.some((g) => matchesAny(sha256(g), expected))) return;

    if (given.length > 0 && o.limiter) {
      if (tooManyFailures(req, reply, o.limiter, o.what, o.failures)) return reply;
      o.limiter.fail(req.ip, Date.now());
    }
    const wanted = o.queryParam ? `${o.queryParam} or API key` : "API key";
    // Wrong and missing are told apart: the caller knows whether it sent one, so that says nothing of the secret.
    const wrong = given.length > 0;
    req.log.info({ url: loggableUrl(req.url), remote: req.ip, wrong }, `${o.what} without a valid ${wanted}`);
    if (o.basicChallenge) void reply.header("www-authenticate", 'Basic realm="orchard"');
    sendError(req, reply, 401, wrong ? o.wrong : o.missing, "unauthorized");
    return reply;
  };
}

/**
 * The password of an `Authorization: Basic` header (RFC 7617): undefined when
 * there is none (or another scheme), an Error with the reason when the
 * credentials are not base64 of UTF-8 `user:password`.
 */
export function basicPassword(header: string | undefined): string | undefined | Error {
  const m = header === undefined ? null : /^basic(?: +(.*))?$/is.exec(header.trim());
  if (!m) return undefined;
  const b64 = (m[1] ?? "").trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.replace(/=+$/, "").length % 4 === 1) {
    return new Error("malformed Basic credentials: not base64");
  }
  let decoded: string;
  try {
    decoded = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(b64, "base64"));
  } catch {
    return new Error("malformed Basic credentials: not UTF-8");
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) return new Error("malformed Basic credentials: expected user:password (the API key is the password)");
  const password = decoded.slice(colon + 1);
  return password.length > 0 ? password : undefined;
}

/** Every expected digest is compared, so the time does not tell which secret matched. */
function matchesAny(given: Buffer, expected: Buffer[]): boolean {
  let ok = false;
  for (const e of expected) ok = timingSafeEqual(given, e) || ok;
  return ok;
}

/** The operator API's guard: the API key as the Basic password. */
export function apiKeyGuard(apiKey: string, limiter?: ApiFailureLimiter) {
  return secretGuard({
    secrets: [apiKey],
    limiter,
    what: "API request",
    failures: "API key attempts",
    missing: "missing or wrong API key",
    wrong: "missing or wrong API key",
    basicChallenge: true,
  });
}

/**
 * Answers 429 with Retry-After when a failure from the client's address would
 * not be heard now (it or everyone is past its failures; says so in the
 * log); false when it may be judged. Ask it only for what already failed.
 */
export function tooManyFailures(
  req: FastifyRequest,
  reply: FastifyReply,
  limiter: ApiFailureLimiter,
  what: string,
  failures: string,
): boolean {
  const now = Date.now();
  const wait = limiter.blockedFor(req.ip, now);
  if (wait === 0) return false;
  sendTooMany(req, reply, wait, what, failures, limiter.refusalsToLog(now));
  return true;
}

/**
 * The 429 for a failure not heard now, with Retry-After: `wait` seconds;
 * logged when `refused` (how many since the last such line) is not 0.
 */
export function sendTooMany(req: FastifyRequest, reply: FastifyReply, wait: number, what: string, failures: string, refused = 1): void {
  if (refused > 0)
    req.log.info({ url: loggableUrl(req.url), remote: req.ip, retryAfter: wait, refused }, `${what} refused: too many failed ${failures}`);
  void reply.header("retry-after", String(wait));
  sendError(req, reply, 429, `too many failed ${failures}; retry in ${wait} s`, "rate_limited");
}

function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}
