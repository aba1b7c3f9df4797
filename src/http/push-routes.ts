import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { apiStatus, pushInto, statusMap } from "../core/enqueue.ts";
import type { Pusher } from "../core/push.ts";
import { BadRequest, Conflict, NotFound, OrchardError } from "../errors.ts";
import { parsePushCertificate } from "../push/certificate.ts";
import type { PushCertSource } from "../push/certs.ts";
import { newTopicRefusal, olderCertRefusal } from "../push/topic-guard.ts";
import type { Store } from "../store/index.ts";
import { bodyBuffer, idList } from "./api-routes.ts";
import type { PushCertList, PushCertRemoved, PushCertStored, PushResult } from "./wire.ts";
import { pushCertJson } from "./wire-map.ts";

export interface PushRouteOptions {
  store: Store;
  certs: PushCertSource;
  pusher: Pusher;
}

/** The header that carries a PKCS#12 file's (or an encrypted PEM key's) passphrase; never the query string, which ends up in logs. */
export const PASSPHRASE_HEADER = "x-passphrase";
const PUSHCERT_BODY_LIMIT = 1024 * 1024;

/** Push certificates and pushes (registered behind the API key). Keys are never returned. */
export function registerPushRoutes(app: FastifyInstance, o: PushRouteOptions): void {
  const { store, certs } = o;

  // NanoMDM-compatible: `cat push.pem push.key | curl -T - .../v1/pushcert`, whatever the Content-Type; or a .p12.
  // A new topic while devices are enrolled under another, or a certificate that expires before the stored one of its
  // topic, is refused (409) unless ?force=1: see push/topic-guard.ts.
  app.put<{ Querystring: Record<string, string> }>(
    "/v1/pushcert",
    { bodyLimit: PUSHCERT_BODY_LIMIT },
    async (req): Promise<PushCertStored> => {
      const body = bodyBuffer(req);
      if (body.length === 0) {
        throw new BadRequest("the body must be a PEM certificate and its private key, or a PKCS#12 file", "invalid_push_certificate");
      }
      const header = req.headers[PASSPHRASE_HEADER];
      const passphrase = typeof header === "string" ? header : undefined;
      const cert = pushCertificate(body, passphrase);
      const force = req.query.force !== undefined && /^(1|true|yes)$/i.test(req.query.force);
      const refusal = await newTopicRefusal(store.push, cert.topic);
      if (refusal && !force) {
        req.log.warn(
          { topic: cert.topic, fingerprint: cert.fingerprint },
          "push certificate refused: a new topic while devices are enrolled under another",
        );
        throw new Conflict(refusal, "push_topic_change");
      }
      if (refusal) {
        req.log.warn(
          { topic: cert.topic },
          "push certificate for a new topic stored with force=1 while devices are enrolled under another",
        );
      }
      const notAfter = new Date(cert.notAfter).toISOString();
      const older = await olderCertRefusal(store.push, cert.topic, cert.notAfter);
      if (older && !force) {
        req.log.warn(
          { topic: cert.topic, fingerprint: cert.fingerprint, notAfter },
          "push certificate refused: it expires before the stored one of its topic",
        );
        throw new Conflict(older);
      }
      if (older) {
        req.log.warn(
          { topic: cert.topic, fingerprint: cert.fingerprint, notAfter },
          "push certificate that expires before the stored one of its topic stored with force=1",
        );
      }
      const now = Date.now();
      // The certificate and its event commit together.
      const created = await certs.put(cert, now, (created) => ({
        type: "pushcert.uploaded",
        detail: {
          topic: cert.topic,
          not_after: notAfter,
          fingerprint: cert.fingerprint,
          created,
          ...(refusal || older ? { forced: true } : {}),
        },
      }));
      req.log.info({ topic: cert.topic, notAfter, fingerprint: cert.fingerprint, created }, "push certificate stored");
      return { topic: cert.topic, not_after: notAfter };
    },
  );

  app.get("/v1/pushcert", async (): Promise<PushCertList> => {
    const list = await store.push.certs();
    return { push_certs: list.map(pushCertJson) };
  });

  app.delete<{ Params: { topic: string } }>("/v1/pushcert/:topic", async (req): Promise<PushCertRemoved> => {
    const removed = await certs.remove(req.params.topic, { type: "pushcert.removed", detail: { topic: req.params.topic } });
    if (!removed) throw new NotFound("no push certificate for this topic");
    req.log.info({ topic: req.params.topic }, "push certificate removed");
    return { removed: req.params.topic };
  });

  // NanoMDM's push API: status per id with push_result (the apns-id) or push_error.
  const push = async (req: FastifyRequest<{ Params: { ids: string } }>, reply: FastifyReply) => {
    const ids = idList(req.params.ids);
    const result: PushResult = { status: statusMap() };
    await pushInto(o.pusher, ids, result, "api");
    return reply.code(apiStatus(result, ids.length)).send(result);
  };
  app.get("/v1/push/:ids", push);
  app.post("/v1/push/:ids", push);
}

/** The uploaded certificate; whatever is wrong with it is an invalid_push_certificate. */
function pushCertificate(body: Buffer, passphrase: string | undefined) {
  try {
    return parsePushCertificate(body, passphrase);
  } catch (err) {
    if (err instanceof OrchardError && err.status === 400) throw new BadRequest(err.message, "invalid_push_certificate");
    throw err;
  }
}
