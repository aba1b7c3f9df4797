import { Forbidden } from "../errors.ts";
import type { CheckinMessage } from "../protocol/checkin.ts";
import type { Channel } from "../protocol/enrollment.ts";
import type { CommandReport } from "../protocol/report.ts";
import { isForeignKeyViolation } from "../store/db.ts";
import type { Store } from "../store/index.ts";
import type { Pusher } from "./push.ts";
import type { CheckinReply, Log, MdmRequest, MdmService } from "./service.ts";

/** How long a confirmed (device, certificate) binding is trusted without reading the store. */
const CONFIRMED_TTL_MS = 10_000;
const MAX_CONFIRMED = 100_000;
/** Held re-bindings push a device's current identity at most this often, whichever certificates are held. */
const HELD_PUSH_INTERVAL_MS = 60 * 60 * 1000;
/** Held re-bindings of a device make at most one enrollment.rebind_held event and warn line this often (with a count). */
const HELD_NOTE_INTERVAL_MS = 60 * 60 * 1000;

/** Why an Authenticate with another certificate than the bound one was let through. */
type RebindReason = "not_enrolled" | "silence" | "approved" | "any";

/** Who may re-bind an enrolled device to another identity certificate (--rebind, docs/enrolling-devices.md, Re-enrollment). */
export interface RebindPolicy {
  /** held: a new certificate for an enrolled device waits; any: every Authenticate re-binds (as the peers do). */
  policy: "held" | "any";
  /** After this long without a word from the device's current identity, a held Authenticate asks for a push. */
  afterSilenceMs: number;
  /** A push APNs accepted and the current identity left unanswered this long: the held certificate is bound. */
  pushGraceMs: number;
}

/**
 * Where a device stands on the way to a re-binding after silence:
 * - `live`: its current identity talked within --rebind-after-silence;
 * - `push_due`: silent that long, but no push accepted by APNs since then (the next held Authenticate asks for one);
 * - `grace`: such a push was accepted at `pushedAt` and is unanswered, until `until`;
 * - `ready`: that push has been unanswered for --rebind-push-grace: the next held certificate's Authenticate re-binds.
 * A device that answers the push is `live` again: it keeps its binding.
 */
export type SilenceState = { state: "live" | "push_due" } | { state: "grace" | "ready"; pushedAt: number; until: number };

export function silenceState(rebind: RebindPolicy, lastContactAt: number, pushedAt: number | null | undefined, now: number): SilenceState {
  if (now - lastContactAt < rebind.afterSilenceMs) return { state: "live" };
  // Only a push sent once the silence was long enough counts, and only while nothing answered it.
  if (pushedAt == null || pushedAt - lastContactAt < rebind.afterSilenceMs) return { state: "push_due" };
  const until = pushedAt + rebind.pushGraceMs;
  return { state: now >= until ? "ready" : "grace", pushedAt, until };
}

export interface CertBindingOptions {
  rebind: RebindPolicy;
  /** Wakes the current identity of a device whose re-binding is held, so that a live device proves it is. */
  pusher?: Pusher;
}

/**
 * Binds a device's identity certificate at Authenticate and holds every later
 * request of the device and its user channels to it (brief 2.5). Refusals are
 * 403 with a plain reason: never 401, never com.apple.unrecognized.device.
 *
 * An Authenticate with another certificate for a device that is bound already
 * re-binds it only when the device is not enrolled (it sent CheckOut, or never
 * finished its first enrollment), when its current identity has been silent for
 * --rebind-after-silence and then left a push unanswered for --rebind-push-grace,
 * or when an operator approved that certificate (POST /v1/enrollments/:id/rebind).
 * Otherwise it is held: 403, nothing of the device changed, a push to the
 * current identity and an enrollment.rebind_held event (each at most once an
 * hour per device, whatever certificates alternate). --rebind any re-binds at every Authenticate, as the
 * peers do. docs/enrolling-devices.md, "Re-enrollment", says why.
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
    private readonly o: CertBindingOptions = { rebind: { policy: "held", afterSilenceMs: 7 * 24 * 3600_000, pushGraceMs: 3600_000 } },
  ) {}

  /** Forgets a device's confirmed binding (an operator removed the device): its next request reads the store. */
  forget(deviceId: string): void {
    this.confirmed.delete(deviceId);
  }

  async checkIn(req: MdmRequest, msg: CheckinMessage): Promise<CheckinReply> {
    const deviceId = msg.channel.deviceId;
    if (msg.messageType === "Authenticate") {
      this.confirmed.delete(deviceId);
      const owner = await this.store.enrollments.deviceByCertFingerprint(req.certFingerprint);
      if (owner !== undefined && owner !== deviceId) {
        throw new Forbidden("identity certificate is bound to another device");
      }
      this.refuseChannelOfAnother(req, deviceId, await this.store.enrollments.deviceOfChannel(deviceId));
      const { replaces, reason, unansweredPushAt } = await this.admit(req, deviceId);
      // The core records the enrollment.rebound event with the binding, in its transaction.
      const rebound = reason
        ? {
            old_fingerprint: replaces ?? null,
            new_fingerprint: req.certFingerprint,
            reason,
            ...(unansweredPushAt === undefined ? {} : { unanswered_push_at: unansweredPushAt }),
          }
        : undefined;
      return this.next.checkIn({ ...req, replaces, rebound }, msg);
    }
    await this.requireBinding(req, deviceId);
    await this.requireOwnChannel(req, msg.channel);
    if (msg.messageType === "CheckOut") this.confirmed.delete(deviceId);
    return this.next.checkIn(req, msg);
  }

  async report(req: MdmRequest, report: CommandReport) {
    await this.requireBinding(req, report.channel.deviceId);
    await this.requireOwnChannel(req, report.channel);
    return this.next.report(req, report);
  }

  /**
   * What a failed device request's error means. A write that named a device
   * row gone meanwhile: an operator removed the device after this process
   * last confirmed its binding (remembered for CONFIRMED_TTL_MS, or by
   * another process): refused as a device that is not enrolled, and
   * forgotten here. Any other error, or a missing row while the device is
   * there (a fault), stays what it was. Called by the device endpoints on
   * the error path only: a wrapper around every request cost 5% of a DDM
   * sync's CPU (BENCHMARKS.md, 2026-12-05).
   */
  async refineError(err: unknown, deviceId: string, log: Log): Promise<unknown> {
    if (!isForeignKeyViolation(err) || (await this.store.enrollments.bindingOf(deviceId)) !== undefined) return err;
    this.confirmed.delete(deviceId);
    log.warn({ enrollmentId: deviceId }, "request of a device removed meanwhile: refused");
    return new Forbidden("device is not enrolled: Authenticate first");
  }

  /**
   * A user channel is used only by the device that owns it. `UDID:UserID` and
   * `UDID:UserShortName` carry their device's id (ids hold no `:`), so only a
   * User Enrollment user channel, whose id is the EnrollmentUserID alone, can
   * name a channel of another device: one lookup by primary key, on those
   * channels only (a device channel is the device itself: no query). A channel
   * not stored yet is free (its first TokenUpdate creates it; the store's
   * upsert never takes over another device's row).
   */
  private async requireOwnChannel(req: MdmRequest, channel: Channel): Promise<void> {
    if (channel.type !== "UserEnrollmentUser" || channel.id === channel.deviceId) return;
    const owner = await this.store.enrollments.deviceOfChannel(channel.id);
    if (owner === undefined || owner === channel.deviceId) return;
    req.log.warn({ enrollmentId: channel.id, deviceId: channel.deviceId }, "request for a user channel of another device: refused");
    throw new Forbidden("this user channel belongs to another device");
  }

  /**
   * The re-binding policy for an Authenticate: what the device must still be
   * bound to when the store writes (see MdmRequest.replaces), and why a
   * different certificate may replace it. Throws Forbidden when it is held.
   */
  private async admit(
    req: MdmRequest,
    deviceId: string,
  ): Promise<{ replaces?: string | null; reason?: RebindReason; unansweredPushAt?: number }> {
    const { policy, afterSilenceMs, pushGraceMs } = this.o.rebind;
    const binding = await this.store.rebinds.binding(deviceId);
    if (!binding) return { replaces: policy === "any" ? undefined : null };
    const old = binding.certFingerprint;
    if (old === req.certFingerprint) return { replaces: policy === "any" ? undefined : old };
    if (policy === "any") return { replaces: old, reason: "any" };
    if (!binding.enrolled) return { replaces: old, reason: "not_enrolled" };
    const current = await this.store.rebinds.get(deviceId);
    if (current?.approvedAt != null && current.certFingerprint === req.certFingerprint) return { replaces: old, reason: "approved" };
    // Silence alone never re-binds: an idle device only talks when pushed, so
    // the current identity must also have left a push unanswered (docs/enrolling-devices.md, Re-enrollment).
    const silence = silenceState(this.o.rebind, binding.lastContactAt, current?.pushedAt, req.now);
    if (silence.state === "ready") return { replaces: old, reason: "silence", unansweredPushAt: silence.pushedAt };

    // The hold and its event commit together.
    const held = await this.store.transaction(async (tx) => {
      const { hold, note } = await tx.rebinds.hold(deviceId, req.certFingerprint, req.now, HELD_NOTE_INTERVAL_MS);
      if (!note) return undefined;
      const detail = {
        old_fingerprint: old,
        new_fingerprint: req.certFingerprint,
        attempts: note.attempts,
        attempts_since_binding: hold.attempts,
        silent_ms: req.now - binding.lastContactAt,
        rebind_after_silence_ms: afterSilenceMs,
        silence: silence.state,
      };
      await tx.events.add({ type: "enrollment.rebind_held", enrollmentId: deviceId, detail }, req.now);
      return detail;
    });
    if (held) {
      const detail = held;
      req.log.warn(
        { enrollmentId: deviceId, ...detail },
        "re-binding held: an enrolled device sent Authenticate with another identity certificate",
      );
    }
    // A push out and unanswered is not repeated: a later one would restart the grace.
    if (silence.state !== "grace") await this.pushCurrentIdentity(req, deviceId);
    throw new Forbidden(
      "this device is enrolled with another identity certificate: re-binding held until the device checks out, an operator approves " +
        `this certificate (POST /v1/enrollments/:id/rebind), or the current one has been silent for ${duration(afterSilenceMs)} and then ` +
        `left a push unanswered for ${duration(pushGraceMs)}`,
    );
  }

  /**
   * A held re-binding pushes the device's current identity (at most once per
   * HELD_PUSH_INTERVAL_MS per device): a live device answers, and its contact
   * keeps its binding. Only a push APNs accepted is recorded as one.
   */
  private async pushCurrentIdentity(req: MdmRequest, deviceId: string): Promise<void> {
    const pusher = this.o.pusher;
    if (!pusher || !(await this.store.rebinds.claimPush(deviceId, req.now, HELD_PUSH_INTERVAL_MS))) return;
    const claimedAt = req.now;
    pusher
      .push([deviceId], { trigger: "rebind_held" })
      .then(async (outcomes) => {
        const outcome = outcomes.get(deviceId);
        if (outcome?.pushId) return this.store.rebinds.pushed(deviceId, claimedAt);
        req.log.warn(
          { enrollmentId: deviceId, error: outcome?.error },
          "push to the device's current identity not sent: it does not count toward a re-binding",
        );
      })
      .catch((err: unknown) => {
        req.log.warn({ enrollmentId: deviceId, err: (err as Error).message }, "push to the device's current identity failed");
      });
  }

  private async requireBinding(req: MdmRequest, deviceId: string): Promise<void> {
    const known = this.confirmed.get(deviceId);
    if (known && known.fingerprint === req.certFingerprint && known.until > req.now) return;
    const bound = await this.store.enrollments.bindingOf(deviceId);
    if (bound === undefined) throw new Forbidden("device is not enrolled: Authenticate first");
    if (bound.fingerprint !== req.certFingerprint) throw new Forbidden("identity certificate does not match the one bound to this device");
    this.refuseChannelOfAnother(req, deviceId, bound.channelOwner ?? undefined);
    if (this.confirmed.size >= MAX_CONFIRMED) this.confirmed.clear();
    this.confirmed.set(deviceId, { fingerprint: bound.fingerprint, until: req.now + CONFIRMED_TTL_MS });
  }

  /**
   * A device id that is already a User Enrollment user channel of another
   * device (an EnrollmentUserID has no device prefix): as a device channel it
   * would read and answer that channel's commands and DDM. Refused, at
   * Authenticate and on every request of a device bound before the channel
   * took the id.
   */
  private refuseChannelOfAnother(req: MdmRequest, deviceId: string, channelOwner: string | undefined): void {
    if (channelOwner === undefined || channelOwner === deviceId) return;
    req.log.warn({ enrollmentId: deviceId, owner: channelOwner }, "device id is a user channel of another device: refused");
    throw new Forbidden("this id is a user channel of another device");
  }
}

/** 604800000 -> "7d", 90000 -> "90s": the largest whole unit. */
function duration(ms: number): string {
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
