// Serial-bound identity for ADE devices. The certificate Orchard's SCEP issues
// through a challenge of the ADE enrollment URL records the serial number it
// was made for (store/scep.ts). An Authenticate that speaks for an ADE device
// (its SerialNumber is one an ABM server assigns to Orchard, or its UDID is
// already known for such a serial) is let through only from a certificate
// issued for that serial; and a certificate issued for one serial never
// enrolls another. Someone holding any other trusted certificate cannot take
// an ADE device over, whatever the re-binding policy (core/cert-binding.ts).
import { Forbidden } from "../errors.ts";
import type { AuthenticateMessage, CheckinMessage } from "../protocol/checkin.ts";
import type { CommandReport } from "../protocol/report.ts";
import type { Store } from "../store/index.ts";
import { KeyWindow } from "./key-window.ts";
import { OneAtATime } from "./one-at-a-time.ts";
import type { CheckinReply, MdmRequest, MdmService } from "./service.ts";

export class AdeIdentity implements MdmService {
  /**
   * One ade.identity_refused event per certificate and kind of refusal a window, saying how many refusals the
   * window before held back: a device retrying at every start, or a flood from one certificate, must not write
   * a row per request. Not keyed on the serial claimed, which the asker chooses (each new one would be a new
   * window, and a key held in memory). The count is this process's; every refusal is still a 403 and a log line.
   */
  private readonly refusals = new KeyWindow(1, IDENTITY_REFUSED_EVENT_INTERVAL_MS);

  constructor(
    private readonly next: MdmService,
    private readonly store: Store,
  ) {}

  /** The Authenticates of each ADE serial, one at a time in this process (see checkIn). */
  private readonly authenticating = new OneAtATime();

  async checkIn(req: MdmRequest, msg: CheckinMessage): Promise<CheckinReply> {
    if (msg.messageType !== "Authenticate") return this.next.checkIn(req, msg);
    const bound = (await this.store.scep.certificateByFingerprint(req.certFingerprint))?.adeSerial ?? null;
    const authenticate = async () => {
      await this.check(req, msg, bound);
      return this.next.checkIn(req, msg);
    };
    // Two devices authenticating for one serial at once would each find no other enrolled under it, and both
    // enroll: one at a time, the check and the enrollment together (in this process; processes on one
    // PostgreSQL can still race, docs/reliability.md).
    return bound === null ? authenticate() : this.authenticating.run(bound, authenticate);
  }

  report(req: MdmRequest, report: CommandReport) {
    return this.next.report(req, report);
  }

  /** bound: the ADE serial the caller's certificate was issued for, if any. */
  private async check(req: MdmRequest, msg: AuthenticateMessage, bound: string | null): Promise<void> {
    const deviceId = msg.channel.deviceId;
    const claimed = msg.serialNumber;
    const [claimedIsAde, known] = await Promise.all([
      claimed === undefined ? Promise.resolve(undefined) : this.store.ade.assignedServer(claimed),
      this.store.adeEnrollments.serialOfDevice(deviceId),
    ]);
    let reason: string | undefined;
    /** What kind of refusal, for the event's window (reason holds serials). */
    let kind: "claims-another-serial" | "udid-of-another-serial" | "serial-enrolled-as-another" | "not-issued-for-serial" | undefined;
    let serial: string | undefined;
    /** Said in the log and the event only: the device asking is not told another device's UDID. */
    let enrolledAs: string | undefined;
    if (bound !== null) {
      // A certificate made for one ADE device speaks for that device only.
      if (claimed !== undefined && claimed !== bound) {
        serial = claimed;
        kind = "claims-another-serial";
        reason = `the certificate was issued for serial ${bound}`;
      } else if (known !== undefined && known !== bound) {
        serial = known;
        kind = "udid-of-another-serial";
        reason = `this UDID is ADE serial ${known}; the certificate was issued for ${bound}`;
      } else {
        // One enrolled device per serial: without --ade-device-ca anyone can fetch a serial's profile, and
        // enrolled a second device under it beside the real one (hostile review). A replaced logic board (a
        // new UDID) enrolls once the old device is removed (orchard enrollments remove) or has checked out.
        enrolledAs = await this.store.enrollments.otherDeviceWithSerial(bound, deviceId);
        if (enrolledAs !== undefined) {
          serial = bound;
          kind = "serial-enrolled-as-another";
          reason = `serial ${bound} is enrolled as another device: an operator removes it first if this one replaces it`;
        }
      }
    } else if (claimedIsAde !== undefined || known !== undefined) {
      serial = claimedIsAde !== undefined ? claimed! : known!;
      kind = "not-issued-for-serial";
      reason = "the certificate was not issued for this ADE serial number by Orchard's ADE enrollment";
    }
    if (reason === undefined || serial === undefined || kind === undefined) return;
    // A claimed serial is any string the device sent (up to the plist's string cap): said cut short.
    serial = serial.length > MAX_SAID_SERIAL ? `${serial.slice(0, MAX_SAID_SERIAL)}...` : serial;
    const detail = {
      serial_number: serial,
      fingerprint: req.certFingerprint,
      bound_serial: bound,
      reason,
      ...(enrolledAs === undefined ? {} : { enrolled_as: enrolledAs }),
    };
    const { passes, heldBackBefore: repeated = 0 } = this.refusals.take(`${req.certFingerprint}\n${kind}`, req.now);
    if (passes)
      await this.store.events.add({ type: "ade.identity_refused", enrollmentId: deviceId, detail: { ...detail, repeated } }, req.now);
    req.log.warn(
      { enrollmentId: deviceId, ...detail },
      "Authenticate for an ADE device refused: its identity is bound to its serial number",
    );
    throw new Forbidden(
      `serial number ${serial} is an Automated Device Enrollment device: ${reason} (docs/automated-enrollment.md, serial-bound identity)`,
      "ade_identity_refused",
    );
  }
}

/** At most one ade.identity_refused event per certificate and kind of refusal in this time (the rest counted in the next). */
export const IDENTITY_REFUSED_EVENT_INTERVAL_MS = 5 * 60_000;

/** The longest serial number said in a refusal's event, log line and answer (Apple's are 10 to 12 characters). */
const MAX_SAID_SERIAL = 64;
