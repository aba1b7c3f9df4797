import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { loggableUrl } from "./errors.ts";
import type { ApiFailureLimiter } from "./limits.ts";

/**
 * HTTP Basic auth for the operator API: any user name, the API key as the
 * password. Compared as SHA-256 digests in constant time, so neither the
 * key's length nor its prefix leaks through timing. With a limiter, an
 * address past its failures gets 429 until its window ends.
 */
export function apiKeyGuard(apiKey: string, limiter?: ApiFailureLimiter) {
  const expected = createHash("sha256").update(apiKey).digest();
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const now = Date.now();
    const wait = limiter?.blockedFor(req.ip, now) ?? 0;
    if (wait > 0) {
      req.log.info({ url: loggableUrl(req.url), remote: req.ip, retryAfter: wait }, "API request refused: too many failed API key attempts");
      return reply
        .code(429)
        .header("retry-after", String(wait))
        .type("application/json")
        .send(JSON.stringify({ error: `too many failed API key attempts from this address; retry in ${wait} s` }));
    }
    const header = req.headers.authorization;
    let given = "";
    if (header?.startsWith("Basic ")) {
      const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
      given = decoded.slice(decoded.indexOf(":") + 1);
    }
    const digest = createHash("sha256").update(given).digest();
    if (!timingSafeEqual(digest, expected) || given.length === 0) {
      limiter?.fail(req.ip, now);
      req.log.info({ url: loggableUrl(req.url), remote: req.ip }, "API request without a valid API key");
      return reply
        .code(401)
        .header("www-authenticate", 'Basic realm="orchard"')
        .type("application/json")
        .send(JSON.stringify({ error: "missing or wrong API key" }));
    }
    limiter?.succeed(req.ip);
  };
}
