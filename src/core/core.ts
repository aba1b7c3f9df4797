import { BadRequest, Declined, Forbidden } from "../errors.ts";
import type {
  AuthenticateMessage,
  CheckinMessage,
  CheckinMessageOf,
  CheckinMessageType,
  DeclarativeManagementMessage,
  GetTokenMessage,
  SetBootstrapTokenMessage,
  TokenUpdateMessage,
  UserAuthenticateMessage,
} from "../protocol/checkin.ts";
import type { CommandReport } from "../protocol/report.ts";
import type { PendingCommand, ResultStatus } from "../store/commands.ts";
import type { Store } from "../store/index.ts";
import type { AdeSetup } from "./ade-setup.ts";
import type { DeclarativeManagement } from "./declarative.ts";
import type { DdmService } from "./ddm.ts";
import type { Coalescer } from "./coalesce.ts";
import type { CheckinReply, MdmRequest, MdmService } from "./service.ts";
import { changesTargeting, type DeviceFactsListener, fromAuthenticate, fromCommandResult } from "./inventory.ts";
import { recordCheckin, recordReport } from "./webhook.ts";

/** Answers GetToken for one TokenServiceType with the TokenData bytes. */
export type TokenService = (req: MdmRequest, msg: GetTokenMessage) => Promise<Buffer>;

/** Answers UserAuthenticate; the core alone declines every network user. */
export interface UserAuthenticator {
  userAuthenticate(req: MdmRequest, msg: UserAuthenticateMessage): Promise<CheckinReply>;
}

export interface CoreOptions {
  store: Store;
  /** Last-seen times, written in batches off the request path. */
  lastSeen: Coalescer;
  userAuth?: UserAuthenticator;
  tokenServices?: ReadonlyMap<string, TokenService>;
  /** Forwards DeclarativeManagement check-ins to --dm-url; without it, `ddm` answers them. */
  declarative?: DeclarativeManagement;
  /** Declarative Device Management served natively (core/ddm.ts). */
  ddm?: DdmService;
  /** ADE await configuration: the initial set at AwaitingConfiguration, DeviceConfigured after it (core/ade-setup.ts). */
  adeSetup?: AdeSetup;
  /** Told of each command report, to push again later after a NotNow (push/notnow.ts). */
  notNow?: { afterReport(enrollmentId: string, status: string, hasNext: boolean, now: number): Promise<void> };
  /** Told when a device channel first enrolls, or its Authenticate or DeviceInformation changes its targeting facts. */
  onDeviceFacts?: DeviceFactsListener;
}

/** One handler per MessageType, each given its own typed message. */
type Handlers = { [T in CheckinMessageType]: (req: MdmRequest, msg: CheckinMessageOf<T>) => Promise<CheckinReply> };

const EMPTY: CheckinReply = { kind: "empty" };
/** The most command UUIDs a device.queue_discarded event lists (it always gives the count). */
const MAX_LISTED_COMMANDS = 100;
/** Check-ins whose handlers change nothing in the store: their webhook event is written once they are answered. */
const RECORDED_AFTER: ReadonlySet<CheckinMessageType> = new Set(["GetToken", "DeclarativeManagement"]);

/** The MDM service itself: what each message means for the store. */
export class CoreService implements MdmService {
  private readonly handlers: Handlers;

  constructor(private readonly o: CoreOptions) {
    this.handlers = {
      Authenticate: (req, msg) => this.authenticate(req, msg),
      TokenUpdate: (req, msg) => this.tokenUpdate(req, msg),
      CheckOut: (req, msg) => this.checkOut(req, msg),
      UserAuthenticate: (req, msg) =>
        o.userAuth ? o.userAuth.userAuthenticate(req, msg) : Promise.reject(new Declined("network users are not managed")),
      SetBootstrapToken: (req, msg) => this.setBootstrapToken(req, msg),
      GetBootstrapToken: (req, msg) => this.getBootstrapToken(req, msg),
      GetToken: (req, msg) => this.getToken(req, msg),
      DeclarativeManagement: (req, msg) => this.declarativeManagement(req, msg),
      ReturnToService: async () => ({ kind: "plist", body: { ReturnToService: { Enabled: false } } }),
    };
  }

  async checkIn(req: MdmRequest, msg: CheckinMessage): Promise<CheckinReply> {
    // The table pairs each type with its handler; TypeScript cannot follow the pairing through the lookup.
    const handler = this.handlers[msg.messageType] as (req: MdmRequest, msg: CheckinMessage) => Promise<CheckinReply>;
    const reply = await handler(req, msg);
    if (RECORDED_AFTER.has(msg.messageType)) await recordCheckin(this.o.store, req, msg);
    // Only a request that was answered counts as seen: a refused one changes nothing.
    this.o.lastSeen.mark(msg.channel.id, req.now);
    return reply;
  }

  async report(req: MdmRequest, report: CommandReport): Promise<PendingCommand | null> {
    const id = report.channel.id;
    const store = this.o.store;
    if (report.status !== "Idle") {
      const status = report.status as ResultStatus;
      const record = (s: Store) => s.commands.report(id, report.commandUuid!, status, report.raw, req.now);
      // A DeviceInformation or SecurityInfo result also updates the device's inventory (a look at the result's keys).
      const inventory = report.status === "Acknowledged" ? fromCommandResult(report.body) : undefined;
      const ade = this.o.adeSetup?.wants(report.commandUuid) ? this.o.adeSetup : undefined;
      let retarget = false;
      // The result, its inventory fields, its webhook event and an ADE step's progress commit together;
      // otherwise one statement needs no transaction.
      const outcome =
        store.outbox.wants("mdm.Connect") || inventory || ade
          ? await store.transaction(async (tx) => {
              const o = await record(tx);
              // Only the answer to a command of that type that was queued for this channel.
              if (
                inventory &&
                o === "recorded" &&
                (await tx.commands.command(report.commandUuid!))?.requestType === inventory.requestType
              ) {
                const changed = await tx.inventory.learn(report.channel.deviceId, inventory.values, inventory.source, req.now);
                retarget = changesTargeting(changed);
              }
              await recordReport(tx, req, report);
              if (o === "recorded" && ade) await ade.result(tx, req.log, id, report.commandUuid!, status, req.now);
              return o;
            })
          : await record(store);
      if (retarget) this.o.onDeviceFacts?.(report.channel.deviceId);
      if (outcome !== "recorded") {
        req.log.info({ enrollmentId: id, commandUuid: report.commandUuid, status: report.status, outcome }, "report for no active command");
      } else {
        req.log.info({ enrollmentId: id, commandUuid: report.commandUuid, status: report.status }, "command answered");
      }
    }
    // An Idle changes nothing: its webhook event is one statement of its own.
    else await recordReport(store, req, report);
    const next = (await store.commands.next(id, report.status === "NotNow")) ?? null;
    if (this.o.notNow) await this.o.notNow.afterReport(id, report.status, next !== null, req.now);
    this.o.lastSeen.mark(id, req.now);
    return next;
  }

  private async authenticate(req: MdmRequest, msg: AuthenticateMessage): Promise<CheckinReply> {
    const deviceId = msg.channel.deviceId;
    let retarget = false;
    // The binding, its events and its webhook event commit together.
    const bound = await this.o.store.transaction(async (tx) => {
      const bound = await tx.enrollments.authenticate({
        deviceId,
        topic: msg.topic,
        certFingerprint: req.certFingerprint,
        replaces: req.replaces,
        message: msg.raw,
        now: req.now,
        facts: {
          serialNumber: msg.serialNumber,
          productName: msg.productName,
          model: msg.model,
          modelName: msg.modelName,
          deviceName: msg.deviceName,
          osVersion: msg.osVersion,
          buildVersion: msg.buildVersion,
          imei: msg.imei,
          meid: msg.meid,
        },
      });
      // Another request re-bound the device between the policy's decision and this write: nothing was written.
      if (!bound) throw new Forbidden("the device's identity binding changed meanwhile: send Authenticate again");
      retarget = changesTargeting(await tx.inventory.learn(deviceId, fromAuthenticate(msg), "authenticate", req.now));
      await this.o.adeSetup?.authenticated(tx, req.log, deviceId, req.now);
      await tx.events.add({ type: "device.authenticated", enrollmentId: deviceId, detail: { serial_number: msg.serialNumber } }, req.now);
      if (req.rebound) await tx.events.add({ type: "enrollment.rebound", enrollmentId: deviceId, detail: req.rebound }, req.now);
      if (bound.discarded.length > 0) {
        const commands = bound.discarded
          .slice(0, MAX_LISTED_COMMANDS)
          .map((d) => ({ enrollment_id: d.enrollmentId, command_uuid: d.commandUuid }));
        await tx.events.add(
          { type: "device.queue_discarded", enrollmentId: deviceId, detail: { count: bound.discarded.length, commands } },
          req.now,
        );
      }
      await recordCheckin(tx, req, msg);
      return bound;
    });
    req.log.info({ enrollmentId: deviceId, serialNumber: msg.serialNumber, model: msg.model }, "device authenticated (enrolling)");
    if (retarget) this.o.onDeviceFacts?.(deviceId);
    if (req.rebound) req.log.info({ enrollmentId: deviceId, ...req.rebound }, "device re-bound to a new identity certificate");
    if (bound.discarded.length > 0) {
      req.log.info({ enrollmentId: deviceId, discarded: bound.discarded.length }, "re-enrollment discarded queued commands");
    }
    return EMPTY;
  }

  private async tokenUpdate(req: MdmRequest, msg: TokenUpdateMessage): Promise<CheckinReply> {
    const channel = msg.channel;
    let unlockToken = msg.unlockToken;
    if (unlockToken !== undefined && channel.isUserChannel) {
      req.log.warn({ enrollmentId: channel.id }, "UnlockToken on a user channel: ignored");
      unlockToken = undefined;
    }
    // The token, the enrolled event of a first TokenUpdate and the webhook event commit together.
    const { count, adeStarted } = await this.o.store.transaction(async (tx) => {
      const count = await tx.enrollments.tokenUpdate({
        channel,
        topic: msg.topic,
        pushToken: msg.token.toString("hex"),
        pushMagic: msg.pushMagic,
        unlockToken: unlockToken && unlockToken.length > 0 ? unlockToken : undefined,
        awaitingConfiguration: msg.awaitingConfiguration ?? false,
        userShortName: msg.userShortName,
        userLongName: msg.userLongName,
        notOnConsole: msg.notOnConsole,
        message: msg.raw,
        now: req.now,
      });
      // Another device's channel has this id (CertBinding refuses that first; this closes the race), or a channel
      // of another type: nothing is written.
      if (count === undefined) {
        req.log.warn(
          { enrollmentId: channel.id, deviceId: channel.deviceId, type: channel.type },
          "TokenUpdate for a channel of another device or type: refused",
        );
        throw new Forbidden("this channel belongs to another device or is of another type");
      }
      if (count === 1) {
        await tx.events.add({ type: "enrollment.enrolled", enrollmentId: channel.id, detail: { type: channel.type } }, req.now);
        if (this.o.ddm && !this.o.declarative) {
          // A device of a platform subscribed to the inventory's status items gets that set (core/inventory-subscription.ts).
          if (!channel.isUserChannel) await tx.inventory.assignOnEnrollment(channel.id, channel.deviceId, req.now);
          // Sets assigned to this id before it enrolled: its first sync, due with the enrollment itself.
          await tx.ddm.dueIfAssigned(channel.id, req.now);
        }
      }
      // An ADE device waiting in Setup Assistant: its initial set, in this transaction.
      const adeStarted =
        msg.awaitingConfiguration === true && !channel.isUserChannel && this.o.adeSetup
          ? await this.o.adeSetup.awaiting(tx, req.log, channel.id, req.now)
          : false;
      await recordCheckin(tx, req, msg, count);
      return { count, adeStarted };
    });
    if (count === 1) req.log.info({ enrollmentId: channel.id, type: channel.type }, "enrolled");
    // A device channel that just enrolled gets its OS update target now, not at the next sweep.
    if (count === 1 && !channel.isUserChannel) this.o.onDeviceFacts?.(channel.id);
    if (adeStarted) this.o.adeSetup!.wake(channel.id, req.log);
    return EMPTY;
  }

  private async checkOut(req: MdmRequest, msg: CheckinMessage): Promise<CheckinReply> {
    await this.o.store.transaction(async (tx) => {
      await tx.enrollments.checkOut(msg.channel.deviceId, req.now);
      await tx.events.add({ type: "device.checked_out", enrollmentId: msg.channel.deviceId }, req.now);
      await recordCheckin(tx, req, msg);
    });
    req.log.info({ enrollmentId: msg.channel.deviceId }, "device checked out (management profile removed)");
    return EMPTY;
  }

  private async setBootstrapToken(req: MdmRequest, msg: SetBootstrapTokenMessage): Promise<CheckinReply> {
    const token = msg.bootstrapToken;
    await this.o.store.transaction(async (tx) => {
      await tx.enrollments.setBootstrapToken(msg.channel.deviceId, token && token.length > 0 ? token : null);
      await tx.events.add(
        { type: token && token.length > 0 ? "bootstrap_token.escrowed" : "bootstrap_token.cleared", enrollmentId: msg.channel.deviceId },
        req.now,
      );
      await recordCheckin(tx, req, msg);
    });
    return EMPTY;
  }

  private async getBootstrapToken(req: MdmRequest, msg: CheckinMessage): Promise<CheckinReply> {
    const token = await this.o.store.transaction(async (tx) => {
      const token = await tx.enrollments.bootstrapToken(msg.channel.deviceId);
      await tx.events.add(
        { type: "bootstrap_token.retrieved", enrollmentId: msg.channel.deviceId, detail: { found: token !== undefined } },
        req.now,
      );
      await recordCheckin(tx, req, msg);
      return token;
    });
    return { kind: "plist", body: token ? { BootstrapToken: token } : {} };
  }

  private async getToken(req: MdmRequest, msg: GetTokenMessage): Promise<CheckinReply> {
    const type = msg.tokenServiceType;
    const service = this.o.tokenServices?.get(type);
    // Apple requires 400 for a TokenServiceType the server does not serve.
    if (!service) throw new BadRequest(`unsupported TokenServiceType ${JSON.stringify(type.slice(0, 64))}`);
    return { kind: "plist", body: { TokenData: await service(req, msg) } };
  }

  private async declarativeManagement(req: MdmRequest, msg: DeclarativeManagementMessage): Promise<CheckinReply> {
    if (this.o.declarative) return this.o.declarative.forward(req, msg);
    if (this.o.ddm) return this.o.ddm.checkIn(req, msg);
    throw new BadRequest("declarative management is not served by this server");
  }
}
