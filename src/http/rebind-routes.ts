import type { FastifyInstance, FastifyRequest } from "fastify";
import { silenceState, type RebindPolicy } from "../core/cert-binding.ts";
import { BadRequest, Conflict, NotFound } from "../errors.ts";
import type { Store } from "../store/index.ts";
import { jsonObject, onlyKeys } from "./request-helpers.ts";
import type { RebindApprovedJson, RebindStateJson } from "./wire.ts";
import { heldCertificateJson, rebindHoldJson, time } from "./wire-map.ts";

const FINGERPRINT = /^[0-9a-f]{64}$/;

/**
 * The operator's side of the re-binding policy (core/cert-binding.ts): see
 * what a device holds, and approve a new identity certificate for it.
 */
export function registerRebindRoutes(app: FastifyInstance, o: { store: Store; rebind: RebindPolicy }): void {
  const { store } = o;

  app.get<{ Params: { id: string } }>("/v1/enrollments/:id/rebind", async (req): Promise<RebindStateJson> => {
    const deviceId = req.params.id;
    const binding = await store.rebinds.binding(deviceId);
    if (!binding) throw new NotFound("no such device");
    const hold = await store.rebinds.get(deviceId);
    const silence = silenceState(o.rebind, binding.lastContactAt, hold?.pushedAt, Date.now());
    return {
      device_id: deviceId,
      cert_fingerprint: binding.certFingerprint,
      last_contact_at: time(binding.lastContactAt),
      silence: { state: silence.state, ...("until" in silence ? { pushed_at: time(silence.pushedAt), until: time(silence.until) } : {}) },
      held: hold ? rebindHoldJson(hold) : null,
      held_certificates: (await store.rebinds.heldCertificates(deviceId)).map(heldCertificateJson),
    };
  });

  // Body: {"fingerprint": "<SHA-256 hex>"}, required. The operator approves the
  // certificate they looked at, never "whatever is held now": a later held
  // attempt (anybody's) replaces the held one.
  app.post<{ Params: { id: string } }>("/v1/enrollments/:id/rebind", async (req): Promise<RebindApprovedJson> => {
    const deviceId = req.params.id;
    const fingerprint = fingerprintOf(req);
    const binding = await store.rebinds.binding(deviceId);
    if (!binding) throw new NotFound("no such device");
    if (fingerprint === binding.certFingerprint)
      throw new Conflict("the device is bound to this certificate already", "rebind_already_bound");
    const now = Date.now();
    // The approval and its event commit together.
    const { hold, detail } = await store.transaction(async (tx) => {
      const hold = await tx.rebinds.approve(deviceId, fingerprint, now);
      const held = (await tx.rebinds.heldCertificates(deviceId)).find((c) => c.certFingerprint === fingerprint);
      const detail = { old_fingerprint: binding.certFingerprint, new_fingerprint: fingerprint, held_attempts: held?.attempts ?? 0 };
      await tx.events.add({ type: "enrollment.rebind_approved", enrollmentId: deviceId, detail }, now);
      return { hold, detail };
    });
    req.log.info({ enrollmentId: deviceId, ...detail }, "re-binding approved");
    return { device_id: deviceId, cert_fingerprint: binding.certFingerprint, approved: rebindHoldJson(hold) };
  });
}

/** The fingerprint the body names, normalised. */
function fingerprintOf(req: FastifyRequest): string {
  const missing = 'name the certificate to approve: {"fingerprint": "<SHA-256>"} (GET this URL lists the held ones)';
  if (!Buffer.isBuffer(req.body) || req.body.length === 0) throw new BadRequest(missing, "invalid_fingerprint");
  const body = jsonObject(req);
  onlyKeys(body, ["fingerprint"]);
  const fp = body.fingerprint;
  if (fp === undefined) throw new BadRequest(missing, "invalid_fingerprint");
  if (typeof fp !== "string") throw new BadRequest("fingerprint must be a string", "invalid_fingerprint");
  const normal = fp.replaceAll(":", "").toLowerCase();
  if (!FINGERPRINT.test(normal)) {
    throw new BadRequest("fingerprint must be the certificate's SHA-256, 64 hex digits", "invalid_fingerprint");
  }
  return normal;
}
