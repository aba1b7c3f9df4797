import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";

/**
 * HTTP Basic auth for the operator API: any user name, the API key as the
 * password. Compared as SHA-256 digests in constant time, so neither the
 * key's length nor its prefix leaks through timing.
 */
export function apiKeyGuard(apiKey: string) {
  const expected = createHash("sha256").update(apiKey).digest();
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const header = req.headers.authorization;
    let given = "";
    if (header?.startsWith("Basic ")) {
      const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
      given = decoded.slice(decoded.indexOf(":") + 1);
    }
    const digest = createHash("sha256").update(given).digest();
    if (!timingSafeEqual(digest, expected) || given.length === 0) {
      req.log.info({ url: req.url }, "API request without a valid API key");
      return reply
        .code(401)
        .header("www-authenticate", 'Basic realm="orchard"')
        .type("application/json")
        .send(JSON.stringify({ error: "missing or wrong API key" }));
    }
  };
}
