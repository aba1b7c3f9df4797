import type { FastifyInstance, FastifyRequest } from "fastify";
import { BadRequest, Conflict, NotFound } from "../errors.ts";
import type { Store } from "../store/index.ts";
import { jsonObject, onlyKeys } from "./request-helpers.ts";
import type { RebindApprovedJson, RebindStateJson } from "./wire.ts";
import { rebindHoldJson, time } from "./wire-map.ts";

const FINGERPRINT = /^[0-9a-f]{64}$/;

/**
 * The operator's side of the re-binding policy (core/cert-binding.ts): see
 * what a device holds, and approve a new identity certificate for it.
 */
export function registerRebindRoutes(app: FastifyInstance, o: { store: Store }): void {
  const { store } = o;

  app.get<{ Params: { id: string } }>("/v1/enrollments/:id/rebind", async (req): Promise<RebindStateJson> => {
    const binding = await store.rebinds.binding(req.params.id);
    if (!binding) throw new NotFound("no such device");
    const hold = await store.rebinds.get(req.params.id);
    return {
      device_id: req.params.id,
      cert_fingerprint: binding.certFingerprint,
      last_contact_at: time(binding.lastContactAt),
      held: hold ? rebindHoldJson(hold) : null,
    };
  });

  // Body (optional): {"fingerprint": "<SHA-256 hex>"}; without it, the certificate held for the device.
  app.post<{ Params: { id: string } }>("/v1/enrollments/:id/rebind", async (req): Promise<RebindApprovedJson> => {
    const deviceId = req.params.id;
    const fingerprint = fingerprintOf(req);
    const binding = await store.rebinds.binding(deviceId);
    if (!binding) throw new NotFound("no such device");
    if (fingerprint !== undefined && fingerprint === binding.certFingerprint) {
      throw new Conflict("the device is bound to this certificate already", "rebind_already_bound");
    }
    const now = Date.now();
    const hold = await store.rebinds.approve(deviceId, fingerprint, now);
    if (!hold) {
      throw new Conflict('no certificate is held for this device: give the one to approve as {"fingerprint": ...}', "rebind_not_held");
    }
    const detail = { old_fingerprint: binding.certFingerprint, new_fingerprint: hold.certFingerprint };
    await store.events.add({ type: "enrollment.rebind_approved", enrollmentId: deviceId, detail }, now);
    req.log.info({ enrollmentId: deviceId, ...detail }, "re-binding approved");
    return { device_id: deviceId, cert_fingerprint: binding.certFingerprint, approved: rebindHoldJson(hold) };
  });
}

/** The fingerprint the body names, normalised; undefined for an empty body or none given. */
function fingerprintOf(req: FastifyRequest): string | undefined {
  if (!Buffer.isBuffer(req.body) || req.body.length === 0) return undefined;
  const body = jsonObject(req);
  onlyKeys(body, ["fingerprint"]);
  const fp = body.fingerprint;
  if (fp === undefined) return undefined;
  if (typeof fp !== "string") throw new BadRequest("fingerprint must be a string", "invalid_fingerprint");
  const normal = fp.replaceAll(":", "").toLowerCase();
  if (!FINGERPRINT.test(normal)) {
    throw new BadRequest("fingerprint must be the certificate's SHA-256, 64 hex digits", "invalid_fingerprint");
  }
  return normal;
}
