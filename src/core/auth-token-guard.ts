import { Declined, Forbidden } from "../errors.ts";
import type { CheckinMessage } from "../protocol/checkin.ts";
import type { Channel } from "../protocol/enrollment.ts";
import type { CommandReport } from "../protocol/report.ts";
import type { Store } from "../store/index.ts";
import { authTokenMatches } from "./auth-token.ts";
import type { Coalescer } from "./coalesce.ts";
import { KeyWindow } from "./key-window.ts";
import type { CheckinReply, MdmRequest, MdmService } from "./service.ts";

/**
 * Enforces the outcome of UserAuthenticate on a macOS user's channel: once a
 * digest handshake began, every later check-in and command request of that
 * channel must carry the AuthToken it issued (403 otherwise: never 401, which
 * would unenroll the Mac); a declined user's channel gets 410. Local users
 * (no handshake) and zero-length users pass. A session is looked up whatever
 * type of user channel the message claims: the id is what it guards.
 */
export class AuthTokenGuard implements MdmService {
  /**
   * One userauth.token_refused event per channel and reason a window, saying how many refusals the window before
   * held back: a stale token retried at every poll, or a device sending wrong ones as fast as it can, must not
   * write a row per request. The count is this process's.
   */
  private readonly refusals = new KeyWindow(1, REFUSED_EVENT_INTERVAL_MS);

  constructor(
    private readonly next: MdmService,
    private readonly store: Store,
    private readonly tokenUse: Coalescer,
  ) {}

  async checkIn(req: MdmRequest, msg: CheckinMessage): Promise<CheckinReply> {
    if (msg.messageType !== "UserAuthenticate") await this.check(req, msg.channel, msg.authToken);
    return this.next.checkIn(req, msg);
  }

  async report(req: MdmRequest, report: CommandReport) {
    await this.check(req, report.channel, report.body.AuthToken);
    return this.next.report(req, report);
  }

  private async check(req: MdmRequest, channel: Channel, authToken: unknown): Promise<void> {
    // A Shared iPad user's channel too: its id is `UDID:UserShortName`, so a Mac naming the network user's GUID
    // as its short name reaches that user's channel id (review). A User Enrollment user's id holds no `:`.
    if (channel.type !== "User" && channel.type !== "SharediPadUser") return;
    // A Mac has no Shared iPad users: such a channel from one can only be a way onto a network user's id before
    // that user's first login (review).
    if (channel.type === "SharediPadUser" && (await this.store.enrollments.platformOf(channel.deviceId)) === "macOS") {
      req.log.info({ enrollmentId: channel.id }, "Shared iPad user channel from a Mac: refused");
      throw new Forbidden("a Mac has no Shared iPad users");
    }
    const session = await this.store.userSessions.get(channel.id);
    if (!session || session.state === "zero-length") return;
    if (session.state === "declined") throw new Declined("this user is not managed");
    if (session.state === "authenticated" && authTokenMatches(authToken, session.tokenHash)) {
      this.tokenUse.mark(channel.id, req.now);
      return;
    }
    const reason =
      authToken === undefined
        ? "missing"
        : session.state === "revoked"
          ? "revoked"
          : session.state === "challenged"
            ? "no token issued"
            : "wrong or stale";
    req.log.info({ enrollmentId: channel.id, reason }, "AuthToken refused");
    const { passes, heldBackBefore: repeated = 0 } = this.refusals.take(`${channel.id}\n${reason}`, req.now);
    if (passes) {
      await this.store.events.add({ type: "userauth.token_refused", enrollmentId: channel.id, detail: { reason, repeated } }, req.now);
    }
    throw new Forbidden(authToken === undefined ? "this user's channel requires its AuthToken" : "AuthToken is not valid for this user");
  }
}

/** At most one userauth.token_refused event per channel and reason in this time (the rest counted in the next). */
export const REFUSED_EVENT_INTERVAL_MS = 5 * 60_000;
