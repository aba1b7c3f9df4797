import type { FastifyInstance, FastifyRequest } from "fastify";
import type { RebindConfig } from "../config.ts";
import { silenceState } from "../core/cert-binding.ts";
import { BadRequest, Conflict, NotFound } from "../errors.ts";
import type { HeldCertificate, RebindHold } from "../store/rebinds.ts";
import type { Store } from "../store/index.ts";
import { jsonObject, onlyKeys } from "./request-helpers.ts";

const FINGERPRINT = /^[0-9a-f]{64}$/;

/**
 * The operator's side of the re-binding policy (core/cert-binding.ts): see
 * what a device holds, and approve a new identity certificate for it.
 */
export function registerRebindRoutes(app: FastifyInstance, o: { store: Store; rebind: RebindConfig }): void {
  const { store } = o;

  app.get<{ Params: { id: string } }>("/v1/enrollments/:id/rebind", async (req) => {
    const deviceId = req.params.id;
    const binding = await store.rebinds.binding(deviceId);
    if (!binding) throw new NotFound("no such device");
    const hold = await store.rebinds.get(deviceId);
    const silence = silenceState(o.rebind, binding.lastContactAt, hold?.pushedAt, Date.now());
    return {
      device_id: deviceId,
      cert_fingerprint: binding.certFingerprint,
      last_contact_at: binding.lastContactAt,
      silence: { state: silence.state, ...("until" in silence ? { pushed_at: silence.pushedAt, until: silence.until } : {}) },
      held: hold ? holdJson(hold) : null,
      held_certificates: (await store.rebinds.heldCertificates(deviceId)).map(certJson),
    };
  });

  // Body: {"fingerprint": "<SHA-256 hex>"}, required. The operator approves the
  // certificate they looked at, never "whatever is held now": a later held
  // attempt (anybody's) replaces the held one.
  app.post<{ Params: { id: string } }>("/v1/enrollments/:id/rebind", async (req) => {
    const deviceId = req.params.id;
    const fingerprint = fingerprintOf(req);
    const binding = await store.rebinds.binding(deviceId);
    if (!binding) throw new NotFound("no such device");
    if (fingerprint === binding.certFingerprint) throw new Conflict("the device is bound to this certificate already");
    const now = Date.now();
    const hold = await store.rebinds.approve(deviceId, fingerprint, now);
    const held = (await store.rebinds.heldCertificates(deviceId)).find((c) => c.certFingerprint === fingerprint);
    const detail = { old_fingerprint: binding.certFingerprint, new_fingerprint: fingerprint, held_attempts: held?.attempts ?? 0 };
    await store.events.add({ type: "enrollment.rebind_approved", enrollmentId: deviceId, detail }, now);
    req.log.info({ enrollmentId: deviceId, ...detail }, "re-binding approved");
    return { device_id: deviceId, cert_fingerprint: binding.certFingerprint, approved: holdJson(hold) };
  });
}

/** The fingerprint the body names, normalised. */
function fingerprintOf(req: FastifyRequest): string {
  if (!Buffer.isBuffer(req.body) || req.body.length === 0) {
    throw new BadRequest('name the certificate to approve: {"fingerprint": "<SHA-256>"} (GET this URL lists the held ones)');
  }
  const body = jsonObject(req);
  onlyKeys(body, ["fingerprint"]);
  const fp = body.fingerprint;
  if (fp === undefined) throw new BadRequest('name the certificate to approve: {"fingerprint": "<SHA-256>"} (GET this URL lists the held ones)');
  if (typeof fp !== "string") throw new BadRequest("fingerprint must be a string");
  const normal = fp.replaceAll(":", "").toLowerCase();
  if (!FINGERPRINT.test(normal)) throw new BadRequest("fingerprint must be the certificate's SHA-256, 64 hex digits");
  return normal;
}

function holdJson(h: RebindHold) {
  return {
    cert_fingerprint: h.certFingerprint,
    held_at: h.heldAt,
    attempts: h.attempts,
    pushed_at: h.pushedAt,
    approved_at: h.approvedAt,
  };
}

function certJson(c: HeldCertificate) {
  return { cert_fingerprint: c.certFingerprint, first_held_at: c.firstHeldAt, last_held_at: c.lastHeldAt, attempts: c.attempts };
}
