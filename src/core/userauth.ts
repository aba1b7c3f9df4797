import { createHash } from "node:crypto";
import { canonicalGuid } from "./user-guid.ts";
import { Declined } from "../errors.ts";
import {
  baseHash,
  buildChallenge,
  checkNonce,
  DigestError,
  formatOffers,
  mintNonce,
  nonceIdOf,
  offerMismatch,
  parseDigestResponse,
  parseOffers,
  verifyDigestResponse,
  type DigestAlgorithm,
  type DigestResponse,
  type Offer,
} from "../digest/index.ts";
import type { UserAuthenticateMessage } from "../protocol/checkin.ts";
import type { DirectoryEntry, DirectoryState } from "../store/directory.ts";
import type { EventDetail } from "../store/event-types.ts";
import type { Store } from "../store/index.ts";
import type { EntryState } from "../store/logins.ts";
import type { ChallengeRecord } from "../store/user-sessions.ts";
import { recordCheckin } from "./webhook.ts";
import { authTokenMatches, hashAuthToken, newAuthToken } from "./auth-token.ts";
import { KeyWindow } from "./key-window.ts";
import { OneAtATime } from "./one-at-a-time.ts";
import type { UserAuthenticator } from "./core.ts";
import type { CheckinReply, MdmRequest } from "./service.ts";

/** Why a digest response was refused: in the log and the event, never to the Mac. */
export type FailureCause =
  | "rate-limited"
  | "rate-limited-mac"
  | "rate-limited-user"
  | "rate-limited-messages"
  | "resent"
  | "malformed"
  | "realm-mismatch"
  | "algorithm-not-offered"
  | "qop-not-offered"
  | "nonce-malformed"
  | "nonce-foreign"
  | "nonce-expired"
  | "nonce-future"
  | "nonce-replayed"
  | "no-challenge"
  | "unknown-user"
  | "guid-mismatch"
  | "declined-user"
  | "no-digest"
  | "wrong-password";

class Refused extends Error {
  constructor(
    readonly reason: FailureCause,
    readonly shortName?: string,
    /** The response's algorithm and qop, for the log line of algorithm-not-offered and qop-not-offered. */
    readonly algorithm?: DigestAlgorithm,
    readonly qop?: string,
  ) {
    super(reason);
  }
}

// A fixed HA1 to verify against when the user is unknown, so that an unknown
// user costs the same work as a wrong password.
const DUMMY_HA1 = { MD5: "0".repeat(32), "SHA-256": "0".repeat(64) };

/**
 * Failures that are not counted again: attempts refused unchecked by the
 * limits (counting them would let a Mac past its limit keep adding to the
 * per-user count), and a response resent as it was.
 */
const UNCOUNTED: ReadonlySet<FailureCause> = new Set(["rate-limited", "rate-limited-mac", "rate-limited-user", "resent"]);

/**
 * The ceilings of failures per Mac (any users) and per user (any Macs), in
 * multiples of --userauth-max-failures, the limit per (user, Mac). Since one
 * Mac adds at most that limit for a user, the per-user ceiling needs this
 * many Macs; past either, only Macs the user logged in on before may try.
 */
export const WIDE_FAILURE_FACTOR = 4;

/**
 * The window of --userauth-max-messages: the UserAuthenticate messages
 * (either step) one Mac may send in it before the rest are refused with
 * nothing written. A login takes two, and each message writes an event (a
 * first step for a new UserID a session row too), so a Mac sending them as
 * fast as it can must not write rows at its request rate. The default, 60,
 * is a login every 10 seconds for 5 minutes.
 */
export const MESSAGE_WINDOW_MS = 5 * 60_000;

/** The --userauth-* settings (README flag table). */
export interface UserAuthOptions {
  /** What a user without a directory entry gets: a challenge, a zero-length challenge, or 410 (see policyFor). */
  policy: "digest" | "zero-length" | "decline";
  realm: string;
  qop: boolean;
  md5SessChallenge: boolean;
  nonceTtlMs: number;
  /** HTTP methods besides the request's that HA2 may have used. */
  extraMethods: string[];
  /** Failures per (user, Mac) within failureWindowMs before attempts are refused unchecked. */
  maxFailures: number;
  failureWindowMs: number;
  /** UserAuthenticate messages per Mac per MESSAGE_WINDOW_MS before the rest are refused unwritten; 0: no limit. */
  maxMessagesPerMac: number;
}

/**
 * The macOS UserAuthenticate handshake (brief 4.4, 5.3): a real HTTP Digest
 * challenge, the response checked against the directory, an AuthToken issued.
 * Every failure looks the same to the Mac: 200 with an empty AuthToken.
 */
/** Counts UserAuthenticate outcomes once committed (/metrics); cause is a FailureCause, for failed only. */
export type UserAuthObserver = (outcome: UserAuthOutcome, cause?: FailureCause) => void;
export type UserAuthOutcome = "already_authenticated" | "declined" | "zero_length" | "challenged" | "authenticated" | "failed";

export class UserAuthService implements UserAuthenticator {
  constructor(
    private readonly store: Store,
    private readonly config: UserAuthOptions,
    /** The HMAC key for nonces, shared by every process through the store. */
    private readonly nonceSecret: Buffer,
    private readonly observe: UserAuthObserver = () => {},
  ) {
    this.challengeWhen = new Set(
      (["none", "managed", "declined"] as const).filter((s) => this.policyFor(s === "none" ? undefined : s) === "digest"),
    );
    this.messages = new KeyWindow(config.maxMessagesPerMac || Infinity, MESSAGE_WINDOW_MS);
    const sess: Offer[] = config.md5SessChallenge ? [{ algorithm: "MD5-sess", qop: true }] : [];
    this.offers = formatOffers([{ algorithm: "MD5", qop: config.qop }, ...sess]);
    this.unrecorded = [{ algorithm: "MD5", qop: true }, ...sess];
  }

  /**
   * What challengeReply offers, as its session records it: MD5 (DigestChallenge
   * names none, which means MD5), with qop="auth" under --digest-qop, and
   * MD5-sess with qop="auth" where DigestMD5SessChallenge is sent. A response
   * is held to what its own challenge offered (offeredFor), whichever process
   * sent it: any other algorithm is refused (a digest of another hash must not
   * be a way in), and so is qop where that challenge offered none.
   */
  private readonly offers: string;

  /**
   * What a response to a challenge its session does not record is held to, as
   * before the sessions recorded it: MD5 (with or without qop) and MD5-sess
   * where this process sends it. Such a response answers a challenge sent
   * before the upgrade, or by an older process, or one a newer challenge replaced.
   */
  private readonly unrecorded: readonly Offer[];

  /** The entry states ("none": no entry) whose policy is a challenge: those LoginStore.challenge may begin. */
  private readonly challengeWhen: ReadonlySet<EntryState>;

  /** Per Mac (device id), its digest responses answered one at a time in this process (see answer). */
  private readonly answering = new OneAtATime();

  /** Per Mac (device id), its UserAuthenticate messages in this window (maxMessagesPerMac). */
  private readonly messages: KeyWindow;

  async userAuthenticate(req: MdmRequest, msg: UserAuthenticateMessage): Promise<CheckinReply> {
    const response = msg.digestResponse;
    const take = this.messages.take(msg.channel.deviceId, req.now);
    if (!take.passes) {
      // The first refusal of a window says so; the rest are counted in the next window's first line.
      if (take.heldBack === 1) {
        req.log.warn(
          { deviceId: msg.channel.deviceId, limit: this.config.maxMessagesPerMac, windowSeconds: MESSAGE_WINDOW_MS / 1000 },
          "UserAuthenticate messages from this Mac past the limit: refused, nothing written, until the window ends",
        );
      }
      this.observe("failed", "rate-limited-messages");
      // A first step is declined (410: the Mac asks again at the next login); a response gets the empty AuthToken of every failure.
      if (response === undefined) throw new Declined("too many UserAuthenticate messages from this Mac");
      return { kind: "plist", body: { AuthToken: "" } };
    }
    if (take.heldBackBefore) {
      req.log.warn(
        { deviceId: msg.channel.deviceId, refused: take.heldBackBefore },
        "UserAuthenticate messages refused in the window before",
      );
    }
    return response === undefined ? this.challenge(req, msg) : this.answer(req, msg, response);
  }

  /** Step 1: decline, manage without a token, or challenge. */
  private async challenge(req: MdmRequest, msg: UserAuthenticateMessage): Promise<CheckinReply> {
    const { id: enrollmentId, deviceId } = msg.channel;
    const userId = msg.userId;
    const base = { enrollmentId, deviceId, userId };
    // Only a message with an AuthToken can be one of an authenticated user: without one, no need to read the session.
    const session = msg.authToken ? await this.store.userSessions.get(enrollmentId) : undefined;
    // Apple's server answers a message that already carries the user's valid
    // AuthToken with a zero-length challenge and keeps the token.
    if (session?.state === "authenticated" && authTokenMatches(msg.authToken, session.tokenHash)) {
      await this.store.transaction((s) =>
        event(s, req, msg, { type: "userauth.already_authenticated", detail: { short_name: session.shortName ?? undefined } }),
      );
      this.observe("already_authenticated");
      return { kind: "plist", body: { DigestChallenge: "" } };
    }
    // The nonce is minted before the session is written, which records it and what its challenge offers.
    const nonce = mintNonce({ secret: this.nonceSecret, udid: deviceId, userId, now: req.now });
    const challenge: ChallengeRecord = { nonceId: nonceIdOf(nonce), offers: this.offers };
    // The common case, a challenge, in one statement (the entry read with the write) where the outbox needs none of it;
    // otherwise that read's entry decides below, and nothing was written.
    const fast =
      this.challengeWhen.size > 0 && this.outboxWantsNone("userauth.challenged")
        ? await this.store.logins.challenge(
            { ...base, guid: canonicalGuid(userId), shortName: msg.userShortName, challenge },
            this.challengeWhen,
            req.now,
          )
        : undefined;
    if (fast?.challenged) {
      this.observe("challenged");
      return this.challengeReply(nonce);
    }
    const user = fast ? fast.entry : await this.directoryUser(userId, msg.userShortName);
    const policy = this.policyFor(user?.state);
    const shortName = user?.shortName;
    // The new state and its event commit together: one statement where the webhook outbox needs neither.
    const begin = (state: "declined" | "zero-length" | "challenged", type: UserAuthEvent) =>
      this.outboxWantsNone(type)
        ? this.store.logins.begin({ ...base, state, shortName, challenge }, { type, detail: { short_name: shortName } }, req.now)
        : this.store.transaction(async (s) => {
            await s.userSessions.begin({ ...base, state, shortName, challenge }, req.now);
            await event(s, req, msg, { type, detail: { short_name: shortName } });
          });
    if (policy === "decline") {
      await begin("declined", "userauth.declined");
      this.observe("declined");
      throw new Declined("this user is not managed");
    }
    if (policy === "zero-length") {
      await begin("zero-length", "userauth.zero_length");
      this.observe("zero_length");
      return { kind: "plist", body: { DigestChallenge: "" } };
    }
    await begin("challenged", "userauth.challenged");
    this.observe("challenged");
    return this.challengeReply(nonce);
  }

  /** The digest challenge (and the MD5-sess one if configured) with the nonce minted for this Mac and user; see `offers`. */
  private challengeReply(nonce: string): CheckinReply {
    const body: Record<string, string> = {
      DigestChallenge: buildChallenge({ nonce, realm: this.config.realm, qop: this.config.qop }),
    };
    if (this.config.md5SessChallenge) {
      body.DigestMD5SessChallenge = buildChallenge({ nonce, realm: this.config.realm, qop: true, algorithm: "MD5-sess" });
    }
    return { kind: "plist", body };
  }

  /**
   * Step 2: check the digest response; an AuthToken, or an empty one. One
   * transaction: the nonce's use, the token or the failure, and the event
   * commit together.
   */
  private answer(req: MdmRequest, msg: UserAuthenticateMessage, raw: string): Promise<CheckinReply> {
    // One response of a Mac at a time in this process: each then reads the failure counts the one before
    // it committed, so a burst of guesses gets no more checked than the limit allows (sent together,
    // they all read the counts before any of them had written a failure).
    return this.answering.run(msg.channel.deviceId, () => this.answerOne(req, msg, raw));
  }

  private async answerOne(req: MdmRequest, msg: UserAuthenticateMessage, raw: string): Promise<CheckinReply> {
    if (this.outboxWantsNone("userauth.authenticated", "userauth.failed")) {
      const reply = await this.answerAccepted(req, msg, raw);
      if (reply) return reply;
    }
    const { id: enrollmentId, deviceId } = msg.channel;
    let cause: FailureCause | undefined;
    const reply = await this.store.transaction(async (s): Promise<CheckinReply> => {
      cause = undefined;
      try {
        const shortName = await this.verify(s, req, msg, raw);
        const token = newAuthToken();
        if (!(await s.userSessions.issueToken(enrollmentId, shortName, hashAuthToken(token), req.now))) {
          throw new Refused("no-challenge", shortName);
        }
        await event(s, req, msg, { type: "userauth.authenticated", detail: { short_name: shortName } });
        req.log.info({ enrollmentId, shortName }, "network user logged in");
        return { kind: "plist", body: { AuthToken: token } };
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        if (!UNCOUNTED.has(err.reason)) await s.userSessions.recordFailure(deviceId, err.shortName, req.now);
        req.log.info(
          { enrollmentId, cause: err.reason, shortName: err.shortName, algorithm: err.algorithm, qop: err.qop },
          "network user refused",
        );
        await event(s, req, msg, { type: "userauth.failed", detail: { cause: err.reason, short_name: err.shortName } });
        cause = err.reason;
        return { kind: "plist", body: { AuthToken: "" } };
      }
    });
    // Counted once committed.
    if (cause === undefined) this.observe("authenticated");
    else this.observe("failed", cause);
    return reply;
  }

  /**
   * Step 2 when the response checks out, in two statements: one read of
   * everything it is checked against, one write of the nonce's use, the token
   * and the event (store/logins.ts). Resolves to undefined for any other
   * case, which answer() then judges and records as ever, in one transaction;
   * nothing was written meanwhile. Unknown users are verified against
   * DUMMY_HA1 here too, so that they cost what a wrong password does.
   */
  private async answerAccepted(req: MdmRequest, msg: UserAuthenticateMessage, raw: string): Promise<CheckinReply | undefined> {
    const { id: enrollmentId, deviceId } = msg.channel;
    let response: DigestResponse;
    try {
      response = parseDigestResponse(raw);
    } catch (err) {
      if (!(err instanceof DigestError)) throw err;
      return undefined;
    }
    const shortName = response.username;
    if (shortName === undefined || response.realm !== this.config.realm) return undefined;
    const nonce = checkNonce({
      secret: this.nonceSecret,
      nonce: response.nonce,
      udid: deviceId,
      userId: msg.userId,
      now: req.now,
      ttlMs: this.config.nonceTtlMs,
    });
    if (!nonce.ok) return undefined;
    const hash = baseHash(response.algorithm);
    const facts = await this.store.logins.answerFacts({
      enrollmentId,
      deviceId,
      shortName,
      since: req.now - this.config.failureWindowMs,
      realm: this.config.realm,
      algorithm: hash,
    });
    // Refused before the digest is computed, as the general path does: it tells which.
    if (offerMismatch(response, this.offeredFor(facts.challenge, nonce.nonceId)) !== undefined) return undefined;
    const result = verifyDigestResponse({ response, ha1: facts.ha1 ?? DUMMY_HA1[hash], methods: this.methodsFor(req) });
    const wide = WIDE_FAILURE_FACTOR * this.config.maxFailures;
    const { failures: f, user } = facts;
    if (f.pair >= this.config.maxFailures || f.device >= wide || f.user >= wide) return undefined;
    if (facts.sessionState !== "challenged" || !user || facts.ha1 === undefined || !result.ok) return undefined;
    if ((user.guid !== null && user.guid !== canonicalGuid(msg.userId)) || user.state === "declined") return undefined;

    const token = newAuthToken();
    const outcome = await this.store.logins.issueToken({
      enrollmentId,
      deviceId,
      shortName,
      tokenHash: hashAuthToken(token),
      nonce: { id: nonce.nonceId, expiresAt: nonce.issuedAt + this.config.nonceTtlMs + 60_000, responseHash: sha256Hex(raw) },
      issued: { type: "userauth.authenticated", detail: { short_name: shortName } },
      refused: { type: "userauth.failed", detail: { cause: "no-challenge", short_name: shortName } },
      limits: { since: req.now - this.config.failureWindowMs, pair: this.config.maxFailures, device: wide, user: wide },
      now: req.now,
    });
    // Resent or replayed, or failures committed meanwhile reached a limit: nothing was written; the general path tells which.
    if (outcome === "nonce-used" || outcome === "limited") return undefined;
    if (result.method !== req.method) {
      req.log.info({ enrollmentId, method: result.method }, "digest matched with an extra method");
    }
    if (outcome === "no-challenge") {
      req.log.info({ enrollmentId, cause: outcome, shortName }, "network user refused");
      this.observe("failed", outcome);
      return { kind: "plist", body: { AuthToken: "" } };
    }
    req.log.info({ enrollmentId, shortName }, "network user logged in");
    this.observe("authenticated");
    return { kind: "plist", body: { AuthToken: token } };
  }

  /** What the challenge of this nonce offered: as its session recorded it, else `unrecorded`. */
  private offeredFor(recorded: ChallengeRecord | null, nonceId: string): readonly Offer[] {
    return recorded?.nonceId === nonceId ? parseOffers(recorded.offers) : this.unrecorded;
  }

  /** True when the webhook outbox wants none of these events nor mdm.UserAuthenticate: a login's writes need not go through it. */
  private outboxWantsNone(...types: string[]): boolean {
    const outbox = this.store.outbox;
    return !outbox.wants("mdm.UserAuthenticate") && types.every((t) => !outbox.wants(t));
  }

  /** The request's method first, then the extra ones HA2 may have used. */
  private methodsFor(req: MdmRequest): string[] {
    return [req.method, ...this.config.extraMethods.filter((m) => m !== req.method)];
  }

  /** Resolves to the authenticated short name, or throws Refused with the cause. */
  private async verify(s: Store, req: MdmRequest, msg: UserAuthenticateMessage, raw: string): Promise<string> {
    const { id: enrollmentId, deviceId } = msg.channel;
    const userId = msg.userId;
    let response: DigestResponse | undefined;
    try {
      response = parseDigestResponse(raw);
    } catch (err) {
      if (!(err instanceof DigestError)) throw err;
    }
    const shortName = response?.username;
    await this.checkFailures(s, deviceId, shortName, req.now);
    if (!response || shortName === undefined) throw new Refused("malformed");
    if (response.realm !== this.config.realm) throw new Refused("realm-mismatch", shortName);

    const nonce = checkNonce({
      secret: this.nonceSecret,
      nonce: response.nonce,
      udid: deviceId,
      userId,
      now: req.now,
      ttlMs: this.config.nonceTtlMs,
    });
    if (!nonce.ok) throw new Refused(`nonce-${nonce.reason}`, shortName);
    // A nonce answers once, right or wrong: a replay fails on every instance.
    // The same response sent again is a retry, refused but not a new failure.
    const use = await s.userSessions.useNonce(nonce.nonceId, nonce.issuedAt + this.config.nonceTtlMs + 60_000, sha256Hex(raw));
    if (use === "resent") throw new Refused("resent", shortName);
    if (use === "replayed") throw new Refused("nonce-replayed", shortName);
    const session = await s.userSessions.get(enrollmentId);
    if (session?.state !== "challenged") throw new Refused("no-challenge", shortName);
    const mismatch = offerMismatch(response, this.offeredFor(session.challenge, nonce.nonceId));
    if (mismatch !== undefined) throw new Refused(mismatch, shortName, response.algorithm, response.qop ?? "none");

    const user = await s.directory.entry(shortName);
    const hash = baseHash(response.algorithm);
    const ha1 = user ? await s.directory.ha1(shortName, this.config.realm, hash) : undefined;
    const result = verifyDigestResponse({ response, ha1: ha1 ?? DUMMY_HA1[hash], methods: this.methodsFor(req) });
    if (!user) throw new Refused("unknown-user", shortName);
    if (user.guid !== null && user.guid !== canonicalGuid(userId)) throw new Refused("guid-mismatch", shortName);
    if (user.state === "declined") throw new Refused("declined-user", shortName);
    if (ha1 === undefined) throw new Refused("no-digest", shortName);
    if (!result.ok) throw new Refused("wrong-password", shortName);
    if (result.method !== req.method) {
      req.log.info({ enrollmentId, method: result.method }, "digest matched with an extra method");
    }
    return shortName;
  }

  /**
   * The brute-force limits, checked before the response is: a user on one
   * Mac (--userauth-max-failures per --userauth-failure-window), then one Mac
   * guessing many users and one user guessed at from many Macs (each
   * WIDE_FAILURE_FACTOR times that), which stop only Macs the user never
   * logged in on. No Mac alone can stop a user's logins on another Mac.
   */
  private async checkFailures(s: Store, deviceId: string, shortName: string | undefined, now: number): Promise<void> {
    const max = this.config.maxFailures;
    const f = await s.userSessions.failuresSince(deviceId, shortName, now - this.config.failureWindowMs);
    if (shortName !== undefined && f.pair >= max) throw new Refused("rate-limited", shortName);
    const mac = f.device >= WIDE_FAILURE_FACTOR * max;
    const user = f.user >= WIDE_FAILURE_FACTOR * max;
    if (!mac && !user) return;
    if (shortName !== undefined && (await s.userSessions.hasAuthenticated(deviceId, shortName))) return;
    throw new Refused(mac ? "rate-limited-mac" : "rate-limited-user", shortName);
  }

  /** The directory entry for a UserAuthenticate: by GUID, else by a GUID-less entry's short name. */
  private async directoryUser(userId: string, shortName: string | undefined): Promise<DirectoryEntry | undefined> {
    return this.store.directory.entryForUser(canonicalGuid(userId), shortName);
  }

  /**
   * The server-wide policy, overridden by the user's entry: a declined entry
   * is declined; a managed entry is challenged where the server declines
   * unknown users (under zero-length it is managed without a token, as
   * everyone is: zero-length turns challenges off for all). A first message
   * names the user by GUID only, so a GUID-less entry is seen here only if
   * the Mac also sent UserShortName, which Apple does not document.
   */
  private policyFor(state: DirectoryState | undefined): UserAuthOptions["policy"] {
    if (state === "declined") return "decline";
    if (state === "managed" && this.config.policy === "decline") return "digest";
    return this.config.policy;
  }
}

type UserAuthEvent = "userauth.challenged" | "userauth.declined" | "userauth.zero_length" | "userauth.already_authenticated";

/**
 * The event of a UserAuthenticate, and its webhook event (mdm.UserAuthenticate:
 * what the Mac sent, never the reply with its AuthToken), in the store's transaction.
 */
async function event(
  store: Store,
  req: MdmRequest,
  msg: UserAuthenticateMessage,
  e:
    | { type: UserAuthEvent; detail: EventDetail<UserAuthEvent> }
    | { type: "userauth.authenticated"; detail: EventDetail<"userauth.authenticated"> }
    | { type: "userauth.failed"; detail: EventDetail<"userauth.failed"> },
): Promise<void> {
  await store.events.add({ ...e, enrollmentId: msg.channel.id }, req.now);
  await recordCheckin(store, req, msg);
}

function sha256Hex(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}
