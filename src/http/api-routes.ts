import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { enqueueCommand } from "../core/enqueue.ts";
import type { Pusher } from "../core/push.ts";
import { BadRequest, NotFound } from "../errors.ts";
import { parsePlist, type PlistLimits } from "../plist/index.ts";
import type { EnrollmentType } from "../protocol/enrollment.ts";
import { PLATFORMS, type Platform } from "../protocol/platform.ts";
import { isEventType, unknownEventTypeMessage } from "../store/event-types.ts";
import type { Store } from "../store/index.ts";
import { addWarnings, headerSafe, nextCursor, pageSize } from "./request-helpers.ts";
import { OPENAPI } from "./openapi.ts";
import { timeParam } from "./time-param.ts";
import { plistToJson } from "./plist-json.ts";
import type {
  CommandHistoryPage,
  CommandJson,
  EnqueueResult,
  EnrollmentJson,
  EnrollmentPage,
  EnrollmentRemoved,
  EventPage,
  QueueCleared,
  QueueJson,
} from "./wire.ts";
import { commandHistoryJson, commandResultJson, enrollmentJson, eventJson, queuedCommandJson, time } from "./wire-map.ts";

const ENROLLMENT_TYPES: readonly EnrollmentType[] = ["Device", "User", "SharediPadUser", "UserEnrollmentDevice", "UserEnrollmentUser"];
const MAX_IDS = 10_000;
const MAX_SEARCH = 200;
/** The most channels and discarded commands an enrollment.removed event lists (it always gives the counts). */
const MAX_LISTED = 50;
/** The most ids a DELETE /v1/queue warns of by name (it counts the rest). */
const MAX_WARNED = 20;

type PlistJson = Record<string, unknown>;

export interface ApiOptions {
  store: Store;
  pusher: Pusher;
  /** Told the id of a device an operator removed (AppOptions.forgetDevice). */
  forgetDevice?: (deviceId: string) => void;
  commandBodyLimit: number;
  /** The caps results were parsed with on the way in (so they parse again here). */
  plistLimits?: Partial<PlistLimits>;
}

/** The operator API under /v1 (registered behind the API key guard). */
export function registerApiRoutes(app: FastifyInstance, o: ApiOptions): void {
  const { store } = o;

  app.put<{ Params: { ids: string }; Querystring: Record<string, string> }>(
    "/v1/enqueue/:ids",
    { bodyLimit: o.commandBodyLimit },
    async (req, reply) => {
      const raw = bodyBuffer(req);
      if (raw.length === 0) throw new BadRequest("the body must be a command plist", "invalid_command");
      const ids = idList(req.params.ids);
      const { status, result, warnings } = await enqueueCommand(store, o.pusher, ids, raw, truthy(req.query.nopush), Date.now());
      // The ids asked for: status holds entries only for unknown ids and pushes (none with nopush).
      req.log.info({ commandUuid: result.command_uuid, requestType: result.request_type, ids: ids.length, status }, "command enqueued");
      warnOfCommand(req, reply, result, warnings);
      const answer: EnqueueResult = result;
      return reply.code(status).send(answer);
    },
  );

  app.get<{ Querystring: Record<string, string> }>("/v1/enrollments", async (req): Promise<EnrollmentPage> => {
    const q = req.query;
    // One type, or several separated by commas (the console's device list: Device,UserEnrollmentDevice).
    const types = q.type?.split(",");
    if (types !== undefined && !types.every((t) => ENROLLMENT_TYPES.includes(t as EnrollmentType))) {
      throw new BadRequest(`type must be one or more (comma-separated) of ${ENROLLMENT_TYPES.join(", ")}`, "invalid_parameter");
    }
    const seenBefore = timeParam(q.seen_before, "seen_before");
    if (q.q !== undefined && q.q.length > MAX_SEARCH)
      throw new BadRequest(`q is longer than ${MAX_SEARCH} characters`, "invalid_parameter");
    if (q.platform !== undefined && !PLATFORMS.includes(q.platform as Platform)) {
      throw new BadRequest(`platform must be one of ${PLATFORMS.join(", ")}`, "invalid_parameter");
    }
    const limit = pageSize(q.limit);
    const enrollments = await store.enrollments.list({
      platform: q.platform as Platform | undefined,
      type: types?.length === 1 ? (types[0] as EnrollmentType) : (types as EnrollmentType[] | undefined),
      seenBefore,
      search: q.q?.trim(),
      enabled: q.enabled === undefined ? undefined : truthy(q.enabled),
      serialNumber: q.serial,
      deviceId: q.device,
      after: q.cursor,
      limit,
    });
    return { enrollments: enrollments.map(enrollmentJson), next_cursor: nextCursor(enrollments, limit, (e) => e.id) };
  });

  app.get<{ Params: { id: string } }>("/v1/enrollments/:id", async (req): Promise<EnrollmentJson> => {
    const enrollment = await store.enrollments.get(req.params.id);
    if (!enrollment) throw new NotFound("no such enrollment");
    return enrollmentJson(enrollment);
  });

  // A device with all its channels, or one user channel: everything Orchard keeps by their ids; events stay.
  app.delete<{ Params: { id: string } }>("/v1/enrollments/:id", async (req): Promise<EnrollmentRemoved> => {
    const id = req.params.id;
    const now = Date.now();
    const removed = await store.transaction(async (tx) => {
      const r = await tx.enrollments.remove(id, now);
      if (r) {
        const detail = {
          device: r.device,
          channels: r.channels.slice(0, MAX_LISTED),
          channel_count: r.channels.length,
          discarded: r.discarded.slice(0, MAX_LISTED).map((d) => ({ enrollment_id: d.enrollmentId, command_uuid: d.commandUuid })),
          discarded_count: r.discarded.length,
        };
        await tx.events.add({ type: "enrollment.removed", enrollmentId: id, detail }, now);
      }
      return r;
    });
    if (!removed) throw new NotFound("no such device or channel");
    if (removed.device) o.forgetDevice?.(id);
    req.log.info({ enrollmentId: id, channels: removed.channels.length, discarded: removed.discarded.length }, "enrollment removed");
    return {
      removed: id,
      device: removed.device,
      channels: removed.channels,
      discarded_commands: removed.discarded.map((d) => ({ enrollment_id: d.enrollmentId, command_uuid: d.commandUuid })),
    };
  });

  app.get<{ Params: { id: string }; Querystring: Record<string, string> }>(
    "/v1/enrollments/:id/commands",
    async (req): Promise<CommandHistoryPage> => {
      const limit = pageSize(req.query.limit);
      const before = req.query.cursor === undefined ? undefined : Number(req.query.cursor);
      if (before !== undefined && !Number.isSafeInteger(before)) throw new BadRequest("cursor must be a row id", "invalid_parameter");
      const id = req.params.id;
      const commands = await enrolledOr404(store, id, await store.commands.history(id, before, limit));
      return { commands: commands.map(commandHistoryJson), next_cursor: nextCursor(commands, limit, (c) => c.id) };
    },
  );

  app.get<{ Params: { id: string } }>("/v1/queue/:id", async (req): Promise<QueueJson> => {
    const id = req.params.id;
    const commands = await enrolledOr404(store, id, await store.commands.queue(id));
    return { enrollment_id: id, commands: commands.map(queuedCommandJson) };
  });

  // One path template with GET: :id is a comma-separated list here, as in NanoMDM's API. Ids that name no
  // enrollment are a 404 when all are, else an orchard-warning each (the first MAX_WARNED) beside the count.
  app.delete<{ Params: { id: string } }>("/v1/queue/:id", async (req, reply): Promise<QueueCleared> => {
    const ids = idList(req.params.id);
    const known = await store.enrollments.existing(ids);
    if (known.size === 0) throw new NotFound(ids.length === 1 ? "no such enrollment" : "no id names an enrollment");
    const removed = await store.commands.clear(ids.filter((id) => known.has(id)));
    const unknown = ids.filter((id) => !known.has(id));
    req.log.info({ removed, ids: ids.length, unknown: unknown.length }, "queues cleared");
    if (unknown.length > 0) {
      const warnings = unknown.slice(0, MAX_WARNED).map((id) => `enrollment ${JSON.stringify(id)}: no such enrollment`);
      if (unknown.length > MAX_WARNED) warnings.push(`${unknown.length - MAX_WARNED} more warnings not shown`);
      void reply.header("orchard-warning", warnings.map(headerSafe));
    }
    return { removed };
  });

  // ?enrollment=: only that channel's answer (a command sent to many, read from one device's page).
  app.get<{ Params: { uuid: string }; Querystring: Record<string, string> }>("/v1/commands/:uuid", async (req): Promise<CommandJson> => {
    const command = await store.commands.command(req.params.uuid);
    if (!command) throw new NotFound("no such command");
    const results = await store.commands.results(req.params.uuid, req.query.enrollment);
    return {
      command_uuid: command.commandUuid,
      request_type: command.requestType,
      created_at: time(command.createdAt),
      results: results.map((r) => commandResultJson(r, r.result ? (plistToJson(parsePlist(r.result, o.plistLimits)) as PlistJson) : null)),
    };
  });

  app.get<{ Querystring: Record<string, string> }>("/v1/events", async (req): Promise<EventPage> => {
    const q = req.query;
    const limit = pageSize(q.limit);
    const since = timeParam(q.since, "since");
    const after = q.cursor === undefined ? undefined : Number(q.cursor);
    if (after !== undefined && !Number.isInteger(after)) throw new BadRequest("cursor must be an event id", "invalid_parameter");
    if (q.type !== undefined && !isEventType(q.type)) throw new BadRequest(unknownEventTypeMessage("type", q.type), "invalid_parameter");
    if (q.order !== undefined && q.order !== "asc" && q.order !== "desc") {
      throw new BadRequest("order must be asc (oldest first) or desc (newest first)", "invalid_parameter");
    }
    const events = await store.events.list({
      enrollmentId: q.enrollment,
      type: q.type,
      since,
      after,
      limit,
      newestFirst: q.order === "desc",
    });
    return { events: events.map(eventJson), next_cursor: nextCursor(events, limit, (e) => e.id) };
  });

  // This API's own description (http/openapi.ts), behind the API key like the rest of /v1.
  app.get("/v1/openapi.json", async () => OPENAPI);
}

/** An enqueued command's warnings (a RequestType Apple's schema does not know): a log line and an orchard-warning header each. */
export function warnOfCommand(req: FastifyRequest, reply: FastifyReply, result: EnqueueResult, warnings: readonly string[]): void {
  const context = { commandUuid: result.command_uuid, requestType: result.request_type };
  addWarnings(req, reply, context, warnings, "command enqueued with a warning");
}

export function bodyBuffer(req: FastifyRequest): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

/** Comma-separated enrollment ids from a path segment. */
export function idList(value: string): string[] {
  return enrollmentIds(
    value
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

/** 1 to MAX_IDS enrollment ids, repeats dropped, order kept: from the path or from a body (bulk-ids.ts). */
export function enrollmentIds(ids: string[]): string[] {
  if (ids.length === 0) throw new BadRequest("no enrollment id given", "invalid_parameter");
  if (ids.length > MAX_IDS) throw new BadRequest(`at most ${MAX_IDS} ids at once`, "too_many_ids");
  return [...new Set(ids)];
}

export function truthy(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on|)$/i.test(value);
}

/**
 * A channel's rows, or 404 when there are none and the id names no enrollment: ids are case-sensitive, and a
 * removed, mistyped or lowercase one is no enrollment, not an empty list. Looked up only for an empty answer.
 */
async function enrolledOr404<T>(store: Store, id: string, rows: T[]): Promise<T[]> {
  if (rows.length === 0 && (await store.enrollments.existing([id])).size === 0) throw new NotFound("no such enrollment");
  return rows;
}
