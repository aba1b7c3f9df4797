import type { FastifyInstance } from "fastify";
import { apiStatus, enqueueCommand, pushInto, statusMap, type ApiResult } from "../core/enqueue.ts";
import type { Pusher } from "../core/push.ts";
import { BadRequest, OrchardError } from "../errors.ts";
import { NO_CERTIFICATE } from "../push/pusher.ts";
import type { Store } from "../store/index.ts";
import { enrollmentIds, truthy, warnOfCommand } from "./api-routes.ts";
import { jsonObject, onlyKeys } from "./request-helpers.ts";

// Enqueue and push with the enrollment ids in the body. NanoMDM's API names
// them in the path (`PUT /v1/enqueue/ID1,ID2`, `/v1/push/ID1,ID2`), but the
// path is part of the request headers, and those are capped (app.ts,
// MAX_HEADER_BYTES: about 1,500 UUID-style ids) because the server holds them
// for anyone, before any API key is checked. A longer list goes here, in a
// JSON body read only after the API key:
//   POST /v1/enqueue?nopush=1  {"ids": ["ID1", ...], "command": "<?xml ... plist>"}
//   POST /v1/push              {"ids": ["ID1", ...]}
// The answers are those of the path forms. And a push to every enabled
// channel, however many (read from the store a page at a time):
//   POST /v1/push              {"all": true}
// answers counts ("pushed", "failed") and, in "status", only the failures
// (the first 1,000; "truncated" when there were more).

/** Room for 10,000 ids of up to ~100 characters (a user channel is "UDID:UserGUID"). */
const ID_LIST_BODY_BYTES = 1024 * 1024;

export interface BulkIdOptions {
  store: Store;
  pusher: Pusher;
  commandBodyLimit: number;
}

/** POST /v1/enqueue and POST /v1/push (registered behind the API key). */
export function registerBulkIdRoutes(app: FastifyInstance, o: BulkIdOptions): void {
  // A plist in a JSON string grows by its escapes (quotes, newlines): twice the command limit, plus the ids.
  app.post<{ Querystring: Record<string, string> }>(
    "/v1/enqueue",
    { bodyLimit: 2 * o.commandBodyLimit + ID_LIST_BODY_BYTES },
    async (req, reply) => {
      const body = jsonObject(req);
      onlyKeys(body, ["ids", "command", "command_base64"]);
      const ids = idsOf(body);
      const command = commandOf(body);
      if (command.length > o.commandBodyLimit) throw new OrchardError(413, `the command is larger than ${o.commandBodyLimit} bytes`);
      const { status, result, warnings } = await enqueueCommand(o.store, o.pusher, ids, command, truthy(req.query.nopush), Date.now());
      req.log.info({ commandUuid: result.command_uuid, requestType: result.request_type, ids: ids.length, status }, "command enqueued");
      warnOfCommand(req, reply, result, warnings);
      return reply.code(status).send(result);
    },
  );

  app.post("/v1/push", { bodyLimit: ID_LIST_BODY_BYTES }, async (req, reply) => {
    const body = jsonObject(req);
    onlyKeys(body, ["ids", "all"]);
    if (body.all !== undefined) {
      if (body.all !== true || body.ids !== undefined) throw new BadRequest('give "ids" or "all": true, not both', "invalid_parameter");
      const { status, result } = await pushAll(o.pusher);
      req.log.info({ pushed: result.pushed, failed: result.failed, status }, "pushed every enabled channel");
      return reply.code(status).send(result);
    }
    const ids = idsOf(body);
    const result: ApiResult = { status: statusMap() };
    await pushInto(o.pusher, ids, result, "api");
    return reply.code(apiStatus(result, ids.length)).send(result);
  });
}

/** Every enabled channel: 200 all pushed (or none enabled), 207 some failed, 500 none pushed. */
async function pushAll(pusher: Pusher): Promise<{ status: number; result: ApiResult }> {
  const summary = await pusher.pushAll?.({ trigger: "api" });
  if (!summary) return { status: 500, result: { push_error: NO_CERTIFICATE } };
  const status = statusMap();
  for (const f of summary.failures) status[f.id] = { push_error: f.error };
  const result: ApiResult = { pushed: summary.pushed, failed: summary.failed, truncated: summary.truncated, status };
  return { status: summary.failed === 0 ? 200 : summary.pushed > 0 ? 207 : 500, result };
}

/** "ids": non-empty strings (api-routes.ts's rules for the rest: how many, repeats). */
function idsOf(body: Record<string, unknown>): string[] {
  const ids = body.ids;
  if (!Array.isArray(ids)) throw new BadRequest('"ids" must be a non-empty array of enrollment ids', "invalid_parameter");
  for (const id of ids) {
    if (typeof id !== "string" || id.trim() === "" || id.includes("\0"))
      throw new BadRequest('"ids" must hold non-empty strings', "invalid_parameter");
  }
  return enrollmentIds((ids as string[]).map((id) => id.trim()));
}

/** "command": the plist as text, or "command_base64": its bytes (a binary plist), exactly one of them. */
function commandOf(body: Record<string, unknown>): Buffer {
  const { command, command_base64: base64 } = body;
  if ((command === undefined) === (base64 === undefined)) {
    throw new BadRequest('give the command plist as "command" (text) or "command_base64"', "invalid_command");
  }
  if (command !== undefined) {
    if (typeof command !== "string" || command.length === 0)
      throw new BadRequest('"command" must be the command plist as text', "invalid_command");
    return Buffer.from(command, "utf8");
  }
  if (typeof base64 !== "string" || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64))
    throw new BadRequest('"command_base64" must be base64', "invalid_command");
  return Buffer.from(base64, "base64");
}
