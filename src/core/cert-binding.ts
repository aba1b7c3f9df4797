import { Forbidden } from "../errors.ts";
import type { CheckinMessage } from "../protocol/checkin.ts";
import type { CommandReport } from "../protocol/report.ts";
import type { Store } from "../store/index.ts";
import type { CheckinReply, MdmRequest, MdmService } from "./service.ts";

/** How long a confirmed (device, certificate) binding is trusted without reading the store. */
const CONFIRMED_TTL_MS = 10_000;
const MAX_CONFIRMED = 100_000;

/**
 * Binds a device's identity certificate at Authenticate and holds every later
 * request of the device and its user channels to it (brief 2.5). Refusals are
 * 403 with a plain reason: never 401, never com.apple.unrecognized.device.
 *
 * A binding confirmed by the store is remembered for a few seconds, which
 * saves a query on nearly every poll. Only matches are remembered and this
 * process forgets a device at its Authenticate and CheckOut, so the cache can
 * only be wrong when another process re-binds the device: then its previous
 * certificate is still accepted here for at most CONFIRMED_TTL_MS.
 */
export class CertBinding implements MdmService {
  private readonly confirmed = new Map<string, { fingerprint: string; until: number }>();

  constructor(
    private readonly next: MdmService,
    private readonly store: Store,
  ) {}

  async checkIn(req: MdmRequest, msg: CheckinMessage): Promise<CheckinReply> {
    const deviceId = msg.channel.deviceId;
    if (msg.messageType === "Authenticate") {
      this.confirmed.delete(deviceId);
      const owner = await this.store.enrollments.deviceByCertFingerprint(req.certFingerprint);
      if (owner !== undefined && owner !== deviceId) {
        throw new Forbidden("identity certificate is bound to another device");
      }
    } else {
      await this.requireBinding(req, deviceId);
      if (msg.messageType === "CheckOut") this.confirmed.delete(deviceId);
    }
    return this.next.checkIn(req, msg);
  }

  async report(req: MdmRequest, report: CommandReport) {
    await this.requireBinding(req, report.channel.deviceId);
    return this.next.report(req, report);
  }

  private async requireBinding(req: MdmRequest, deviceId: string): Promise<void> {
    const known = this.confirmed.get(deviceId);
    if (known && known.fingerprint === req.certFingerprint && known.until > req.now) return;
    const bound = await this.store.enrollments.certFingerprintOf(deviceId);
    if (bound === undefined) throw new Forbidden("device is not enrolled: Authenticate first");
    if (bound !== req.certFingerprint) throw new Forbidden("identity certificate does not match the one bound to this device");
    if (this.confirmed.size >= MAX_CONFIRMED) this.confirmed.clear();
    this.confirmed.set(deviceId, { fingerprint: bound, until: req.now + CONFIRMED_TTL_MS });
  }
}
