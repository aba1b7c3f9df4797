import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { DURATION_EXAMPLES, durationMs } from "../duration.ts";
import type { DeviceCa } from "../enroll/device-ca.ts";
import { BadRequest } from "../errors.ts";
import type { ScepChallenges } from "../scep/challenges.ts";
import { ScepMalformed } from "../scep/message.ts";
import { CredentialScepService } from "../scep/credential-service.ts";
import { SCEP_CAPABILITIES, ScepFailure, ScepService } from "../scep/service.ts";
import type { Store } from "../store/index.ts";
import { sendTooMany } from "./api-auth.ts";
import { bodyBuffer } from "./api-routes.ts";
import type { ApiFailureLimiter } from "./limits.ts";
import { DuplicateKey, jsonSyntaxDetail, parseStrictJson } from "./strict-json.ts";

export interface ScepDeps {
  store: Store;
  deviceCa: DeviceCa;
  /** The credential CA: its SCEP endpoint, /scep/credential, for DDM credentials; absent: none. */
  credentialCa?: DeviceCa;
  /** Refused requests per client address (both endpoints). */
  limiter: ApiFailureLimiter;
}

/** Where DDM credentials are requested (scep/credential-service.ts), beside the device identities' /scep. */
export const CREDENTIAL_SCEP_PATH = "/scep/credential";

/** What answers a PKIOperation: the device CA's ScepService or the credential CA's service. */
interface PkiAnswerer {
  pkiOperation(body: Buffer, log: FastifyRequest["log"], onRefused?: () => void, throttled?: boolean): Promise<Buffer>;
}

/** A pkiMessage is 2-10 KB; anything far larger is not one. */
export const MAX_PKI_MESSAGE_BYTES = 64 * 1024;
const MAX_TTL_MS = 30 * 24 * 60 * 60 * 1000;

interface ScepQuery {
  operation?: string;
  message?: string;
}

/**
 * The public SCEP endpoints (devices reach them without the API key): /scep
 * on the device CA, where a PKCSReq is authorised by its challenge password
 * and a RenewalReq by the device certificate that signs it; and
 * /scep/credential on the credential CA, for DDM credentials, where a PKCSReq
 * is authorised by a challenge a device got in its credential JSON.
 */
export function registerScepRoutes(app: FastifyInstance, deps: ScepDeps): void {
  registerScepEndpoint(app, "/scep", new ScepService({ store: deps.store, deviceCa: deps.deviceCa }), deps.deviceCa, deps.limiter);
  if (deps.credentialCa) {
    const service = new CredentialScepService({ store: deps.store, ca: deps.credentialCa });
    registerScepEndpoint(app, CREDENTIAL_SCEP_PATH, service, deps.credentialCa, deps.limiter);
  }
}

/** One SCEP endpoint: GetCACaps, GetCACert (this CA), PKIOperation by GET or POST. */
function registerScepEndpoint(app: FastifyInstance, path: string, service: PkiAnswerer, ca: DeviceCa, limiter: ApiFailureLimiter): void {
  const deps = { limiter };

  // Refusals (malformed messages, wrong challenges) count per address and in
  // all: past the limit a refusal is answered 429 without a scep.refused
  // event, so nobody can fill the events table or guess at challenges. As
  // with the API key, the request is judged first: a valid challenge or
  // renewal from a throttled address (a NAT shared with a guesser) succeeds.
  const pkiOperation = async (req: FastifyRequest, reply: FastifyReply, message: () => Buffer) => {
    const wait = deps.limiter.blockedFor(req.ip, Date.now());
    const throttled = wait > 0;
    const refused = () => deps.limiter.fail(req.ip, Date.now());
    try {
      const der = message();
      if (der.length === 0) throw new ScepMalformed("empty message");
      if (der.length > MAX_PKI_MESSAGE_BYTES) throw new ScepMalformed("message too large");
      const answer = await service.pkiOperation(der, req.log, refused, throttled);
      return reply.code(200).type("application/x-pki-message").send(answer);
    } catch (err) {
      if (throttled && (err instanceof ScepMalformed || err instanceof ScepFailure)) {
        sendTooMany(req, reply, wait, "SCEP request", "SCEP requests", deps.limiter.refusalsToLog(Date.now()));
        return reply;
      }
      if (err instanceof ScepMalformed) refused();
      throw err;
    }
  };

  app.get<{ Querystring: ScepQuery }>(path, async (req, reply) => {
    const operation = req.query.operation;
    switch (operation) {
      case "GetCACaps":
        return reply.type("text/plain").send(SCEP_CAPABILITIES.join("\n") + "\n");
      case "GetCACert":
        // One CA, no RA: the certificate itself (RFC 8894 4.2.1.1).
        return reply.type("application/x-x509-ca-cert").send(ca.certDer);
      case "PKIOperation":
        return pkiOperation(req, reply, () => decodeMessageParameter(req.query.message));
      default:
        throw new BadRequest(operation === undefined ? "no SCEP operation given" : "unsupported SCEP operation");
    }
  });

  app.post<{ Querystring: ScepQuery }>(path, { bodyLimit: MAX_PKI_MESSAGE_BYTES }, async (req, reply) => {
    if (req.query.operation !== "PKIOperation") throw new BadRequest(`POST ${path} takes operation=PKIOperation`);
    return pkiOperation(req, reply, () => bodyBuffer(req));
  });
}

// GET carries the message base64-encoded in the query (RFC 8894 4.3). Some clients
// leave '+' unescaped, which the query parser turns into a space.
function decodeMessageParameter(value: string | undefined): Buffer {
  if (value === undefined || value === "") throw new ScepMalformed("no message parameter");
  if (value.length > Math.ceil((MAX_PKI_MESSAGE_BYTES * 4) / 3) + 4) throw new ScepMalformed("message too large");
  const b64 = value.replace(/ /g, "+").replace(/[\r\n]/g, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) && !/^[A-Za-z0-9_-]+={0,2}$/.test(b64)) throw new ScepMalformed("message is not base64");
  return Buffer.from(b64, b64.includes("-") || b64.includes("_") ? "base64url" : "base64");
}

/** POST /v1/scep/challenges (behind the API key): a fresh single-use challenge password. */
export function registerScepApiRoutes(api: FastifyInstance, challenges: ScepChallenges): void {
  api.post("/v1/scep/challenges", async (req, reply) => {
    const ttlMs = requestedTtl(bodyBuffer(req));
    const { challenge, expiresAt } = await challenges.create(ttlMs);
    // The challenge itself is a secret: logged never, only its expiry.
    req.log.info({ expiresAt: expiresAt.toISOString() }, "SCEP challenge created");
    // Nor kept by a cache between the operator and Orchard (as a new personal token is not).
    return reply.code(201).header("cache-control", "no-store").send({ challenge, expires_at: expiresAt.toISOString() });
  });
}

function requestedTtl(body: Buffer): number | undefined {
  if (body.length === 0) return undefined;
  let parsed: unknown;
  const text = body.toString("utf8");
  try {
    parsed = parseStrictJson(text);
  } catch (err) {
    if (err instanceof DuplicateKey) throw new BadRequest(`the body has a ${err.message}`);
    const detail = jsonSyntaxDetail(err, text);
    throw new BadRequest(`the body is not valid JSON${detail === undefined ? "" : ` (${detail})`}: send e.g. {"ttl":"10m"}, or nothing`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw new BadRequest('the body must be a JSON object, e.g. {"ttl":"10m"}');
  const unknown = Object.keys(parsed).filter((k) => k !== "ttl");
  if (unknown.length > 0) throw new BadRequest(`unknown field ${JSON.stringify(unknown[0]!.slice(0, 64))}`);
  const ttl = (parsed as { ttl?: unknown }).ttl;
  if (ttl === undefined) return undefined;
  if (typeof ttl !== "string") throw new BadRequest('ttl must be a duration string such as "10m"');
  const ms = durationMs(ttl);
  if (ms === undefined) throw new BadRequest(`ttl ${ttl}: expected a duration with its unit, such as ${DURATION_EXAMPLES}`);
  if (ms < 1000 || ms > MAX_TTL_MS) throw new BadRequest("ttl must be between 1s and 30d");
  return ms;
}
