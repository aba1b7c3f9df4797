import { Forbidden } from "../errors.ts";
import type { CheckinMessage } from "../protocol/checkin.ts";
import type { CommandReport } from "../protocol/report.ts";
import type { Store } from "../store/index.ts";
import type { CheckinReply, MdmRequest, MdmService } from "./service.ts";

/**
 * Binds a device's identity certificate at Authenticate and holds every later
 * request of the device and its user channels to it (brief 2.5). Refusals are
 * 403 with a plain reason: never 401, never com.apple.unrecognized.device.
 */
export class CertBinding implements MdmService {
  constructor(
    private readonly next: MdmService,
    private readonly store: Store,
  ) {}

  async checkIn(req: MdmRequest, msg: CheckinMessage): Promise<CheckinReply> {
    if (msg.messageType === "Authenticate") {
      const owner = await this.store.enrollments.deviceByCertFingerprint(req.certFingerprint);
      if (owner !== undefined && owner !== msg.channel.deviceId) {
        throw new Forbidden("identity certificate is bound to another device");
      }
    } else {
      await this.requireBinding(req, msg.channel.deviceId);
    }
    return this.next.checkIn(req, msg);
  }

  async report(req: MdmRequest, report: CommandReport) {
    await this.requireBinding(req, report.channel.deviceId);
    return this.next.report(req, report);
  }

  private async requireBinding(req: MdmRequest, deviceId: string): Promise<void> {
    const bound = await this.store.enrollments.certFingerprintOf(deviceId);
    if (bound === undefined) throw new Forbidden("device is not enrolled: Authenticate first");
    if (bound !== req.certFingerprint) throw new Forbidden("identity certificate does not match the one bound to this device");
  }
}
