import { randomBytes } from "node:crypto";
import { Forbidden, NotFound } from "../errors.ts";
import type { DeclarativeManagementMessage } from "../protocol/checkin.ts";
import { decodeStatusReport, parseEndpoint, type DdmEndpoint, type StatusReport } from "../protocol/ddm.ts";
import { tokensResponse } from "../protocol/ddm-tokens.ts";
import { MAX_CHANNEL_STATUS_VALUES } from "../store/ddm-status.ts";
import type { Store } from "../store/index.ts";
import { changesTargeting, type DeviceFactsListener, fromStatusValues } from "./inventory.ts";
import type { CheckinReply, MdmRequest } from "./service.ts";

const JSON_TYPE = "application/json";

/** The most errors or changed declarations one report's events list (they always give the count). */
const MAX_LISTED = 50;

/**
 * Called with each status report, in the transaction that stores it (after
 * it is stored): a feature above the core that reads DDM status (OS update
 * compliance, updates/service.ts) writes its state and events with it.
 */
export type DdmStatusHook = (tx: Store, enrollmentId: string, report: StatusReport, now: number) => Promise<void>;

/** The bytes of declaration-items answers kept at most; past it they are forgotten and composed again. */
const MAX_KEPT_BYTES = 8 * 1024 * 1024;

/** Told the Endpoint of each DeclarativeManagement request that names a valid one (metrics). */
export type DdmRequestObserver = (endpoint: DdmEndpoint["kind"]) => void;

/**
 * Declarative Device Management served by Orchard itself (without --dm-url):
 * a DeclarativeManagement check-in's Endpoint answered from the store, on the
 * device channel and on every user channel alike (each channel is its own
 * enrollment id, with its own sets and its own status).
 */
export class DdmService {
  /** declaration-items answers by DeclarationsToken (one per combination of sets and their contents). */
  private readonly itemsAnswers = new Map<string, Buffer>();
  private itemsBytes = 0;

  constructor(
    private readonly store: Store,
    private readonly observe: DdmRequestObserver = () => {},
    private readonly onStatus?: DdmStatusHook,
    /** Told when a status report changed the device's targeting facts (a new OS version). */
    private readonly onDeviceFacts?: DeviceFactsListener,
  ) {}

  async checkIn(req: MdmRequest, msg: DeclarativeManagementMessage): Promise<CheckinReply> {
    const endpoint = parseEndpoint(msg.endpoint);
    this.observe(endpoint.kind);
    const id = msg.channel.id;
    switch (endpoint.kind) {
      case "tokens": {
        const t = await this.store.ddm.channelTokens(id);
        return json(tokensResponse(t.token, t.changedAt));
      }
      case "declaration-items":
        return { kind: "raw", status: 200, contentType: JSON_TYPE, body: await this.declarationItems(id) };
      case "declaration": {
        const d = await this.store.ddm.channelDeclaration(id, endpoint.declarationKind, endpoint.identifier);
        if (!d)
          throw new NotFound(
            `no ${endpoint.declarationKind} declaration ${JSON.stringify(endpoint.identifier.slice(0, 128))} for this enrollment`,
          );
        // The stored Payload is JSON text already (JSON.stringify wrote it): put in as it is, not parsed and written again.
        const body = `{"Type":${JSON.stringify(d.type)},"Identifier":${JSON.stringify(d.identifier)},"ServerToken":${JSON.stringify(d.serverToken)},"Payload":${d.payload}}`;
        return { kind: "raw", status: 200, contentType: JSON_TYPE, body: Buffer.from(body) };
      }
      case "status":
        return this.status(req, msg);
    }
  }

  /**
   * The declaration-items answer. Its content follows from the channel's sets
   * and their tokens, which its DeclarationsToken hashes: channels with the
   * same token get the same bytes, composed once and kept (a change to a set
   * makes a new token, so nothing kept can be stale, with any number of
   * processes). The token is read before the items: if a change lands in
   * between, the answer pairs the newer items with the older token, and the
   * device, seeing the newer token at its next tokens request, syncs again.
   */
  private async declarationItems(id: string): Promise<Buffer> {
    const t = await this.store.ddm.channelTokens(id);
    const kept = this.itemsAnswers.get(t.token);
    if (kept) return kept;
    const items = await this.store.ddm.declarationItems(id);
    const declarations = { Activations: [] as Item[], Configurations: [] as Item[], Assets: [] as Item[], Management: [] as Item[] };
    const lists = {
      activation: declarations.Activations,
      configuration: declarations.Configurations,
      asset: declarations.Assets,
      management: declarations.Management,
    };
    for (const i of items) lists[i.kind].push({ Identifier: i.identifier, ServerToken: i.serverToken });
    const body = Buffer.from(JSON.stringify({ Declarations: declarations, DeclarationsToken: t.token }));
    // Kept only when nothing changed while the items were read.
    if ((await this.store.ddm.channelTokens(id)).token === t.token) {
      if (this.itemsBytes + body.length > MAX_KEPT_BYTES) {
        this.itemsAnswers.clear();
        this.itemsBytes = 0;
      }
      this.itemsAnswers.set(t.token, body);
      this.itemsBytes += body.length;
    }
    return body;
  }

  /** A status report: decoded whole before anything is stored, then stored with its events in one transaction. */
  private async status(req: MdmRequest, msg: DeclarativeManagementMessage): Promise<CheckinReply> {
    const report = decodeStatusReport(msg.data);
    const id = msg.channel.id;
    // A user channel's status is kept once the channel is enrolled (its TokenUpdate): otherwise a device
    // could make up user ids and grow the store by a channel's bounds each. (The device channel is its binding.)
    if (msg.channel.isUserChannel && (await this.store.enrollments.deviceOfChannel(id)) !== msg.channel.deviceId) {
      req.log.info({ enrollmentId: id, deviceId: msg.channel.deviceId }, "DDM status report for a user channel not enrolled: refused");
      throw new Forbidden("this user channel is not enrolled: its TokenUpdate comes first");
    }
    const statusId = randomBytes(8).toString("hex");
    let retarget = false;
    const outcome = await this.store.transaction(async (tx) => {
      const outcome = await tx.ddmStatus.record(id, report, msg.data!.toString("utf8"), statusId, req.now);
      // The device channel's status items are the device's (a user channel's are its user's).
      if (!msg.channel.isUserChannel)
        retarget = changesTargeting(await tx.inventory.learn(msg.channel.deviceId, fromStatusValues(report.values), "ddm-status", req.now));
      for (const c of outcome.changes) {
        const d = c.now;
        await tx.events.add(
          {
            type: "ddm.declaration_status_changed",
            enrollmentId: id,
            detail: {
              identifier: d.identifier,
              kind: d.kind,
              server_token: d.serverToken,
              active: d.active,
              valid: d.valid,
              previous_active: c.before?.active ?? null,
              previous_valid: c.before?.valid ?? null,
              reason_codes: reasonCodes(d.reasons),
              status_id: statusId,
            },
          },
          req.now,
        );
      }
      if (report.errors.length > 0) {
        await tx.events.add(
          {
            type: "ddm.status_errors",
            enrollmentId: id,
            detail: {
              count: report.errors.length,
              status_items: report.errors.slice(0, MAX_LISTED).map((e) => e.statusItem),
              status_id: statusId,
            },
          },
          req.now,
        );
      }
      await this.onStatus?.(tx, id, report, req.now);
      return outcome;
    });
    if (retarget) this.onDeviceFacts?.(id);
    if (outcome.refusedValues > 0) {
      req.log.warn(
        { enrollmentId: id, statusId, refused: outcome.refusedValues, max: MAX_CHANNEL_STATUS_VALUES },
        "DDM status report: new status paths refused, the channel holds the most status values it may",
      );
    }
    req.log.info(
      {
        enrollmentId: id,
        statusId,
        fullReport: report.fullReport,
        declarations: report.declarations.length,
        values: report.values.length,
        errors: report.errors.length,
        changed: outcome.changes.length,
        unknownDeclarations: outcome.unknownDeclarations,
      },
      "DDM status report stored",
    );
    return { kind: "empty" };
  }
}

interface Item {
  Identifier: string;
  ServerToken: string;
}

function json(body: unknown): CheckinReply {
  return { kind: "raw", status: 200, contentType: JSON_TYPE, body: Buffer.from(JSON.stringify(body)) };
}

/** The codes of a declaration's reasons (their descriptions and details stay in the status API). */
function reasonCodes(reasons: unknown[] | null): string[] {
  if (!reasons) return [];
  return reasons
    .slice(0, MAX_LISTED)
    .map((r) =>
      typeof r === "object" && r !== null && typeof (r as { code?: unknown }).code === "string" ? (r as { code: string }).code : "unknown",
    );
}
