import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { DdmAdmin } from "../core/ddm-admin.ts";
import { BadRequest, NotFound } from "../errors.ts";
import { PLATFORMS, type Platform } from "../protocol/platform.ts";
import type { Store } from "../store/index.ts";
import { idList, truthy } from "./api-routes.ts";
import { addWarnings, jsonObject, onlyKeys } from "./request-helpers.ts";
import type { DdmBulkAssignResult, DeclarationCheckJson } from "./wire.ts";
import { time } from "./wire-map.ts";

// Declarative Device Management's operator API: KMFDDM's paths, methods,
// status codes and bodies (its openapi.yaml), so that tools written for
// KMFDDM work unchanged against Orchard. Those bodies are KMFDDM's shapes
// (Apple's PascalCase declarations, KMFDDM's keys), the one exception to
// Orchard's snake_case (docs/api.md). Orchard's own route beside them
// (/v1/set-compliance) speaks Orchard's JSON.
//
// KMFDDM answers a change with 204 and "nothing changed" with 304, and so do
// these routes. (KMFDDM's openapi.yaml words PUT /v1/declarations the other
// way round; its code, and all its other routes, answer 204 for a change.)

export interface DdmRouteOptions {
  store: Store;
  admin: DdmAdmin;
}

/** Status paths in KMFDDM's form: `.StatusItems.device.operating-system.version`. */
const STATUS_ITEMS = ".StatusItems.";
const MAX_ERRORS = 1000;
/** Ids per bulk assignment request, and room for that many of about 150 characters (a user channel is "UDID:UserGUID"). */
export const MAX_BULK_ASSIGN_IDS = 100_000;
const BULK_ASSIGN_BODY_BYTES = 16 * 1024 * 1024;
/** The body of POST /v1/declarations/validate at most (PUT /v1/declarations takes --report-body-limit). */
export const VALIDATE_BODY_BYTES = 1024 * 1024;

export function registerDdmRoutes(app: FastifyInstance, o: DdmRouteOptions): void {
  const { store, admin } = o;
  type Q = { Querystring: Record<string, string> };
  type P = { Params: { id: string } };

  app.get("/v1/declarations", async () => store.ddm.declarationIds());

  app.put<Q>("/v1/declarations", async (req, reply) => {
    const body = jsonObject(req);
    const { outcome, serverToken, warnings } = await admin.putDeclaration(body, !truthy(req.query.nonotify), Date.now());
    const identifier = body.Identifier;
    req.log.info({ identifier, outcome, serverToken, warnings: warnings.length }, "DDM declaration stored");
    addWarnings(req, reply, { identifier }, warnings, "DDM declaration accepted with a warning");
    // Orchard's own (KMFDDM answers 204 for both created and changed): what the CLI prints.
    void reply.header("orchard-outcome", outcome);
    return changed(reply, outcome !== "unchanged");
  });

  // Orchard's own: the same checks as PUT, nothing stored (the console calls it as the operator types).
  // Open to the read role and never audited, so its body is kept small: a declaration typed in the
  // editor is kilobytes, and 16 MB bodies parsed and checked on the event loop stalled every device.
  app.post("/v1/declarations/validate", { bodyLimit: VALIDATE_BODY_BYTES }, async (req): Promise<DeclarationCheckJson> => {
    const { errors, warnings } = admin.check(jsonObject(req));
    return { valid: errors.length === 0, errors: errors.slice(0, MAX_ERRORS), warnings };
  });

  app.get<P>("/v1/declarations/:id", async (req) => {
    const d = await store.ddm.declaration(req.params.id);
    if (!d) throw new NotFound("no such declaration");
    // As the operator wrote it (orchard: references kept), so that a GET, edit, PUT round trip keeps them.
    return { Identifier: d.identifier, Type: d.type, Payload: JSON.parse(d.source ?? d.payload) as unknown, ServerToken: d.serverToken };
  });

  app.delete<P>("/v1/declarations/:id", async (req, reply) => {
    const deleted = await admin.deleteDeclaration(req.params.id);
    if (deleted) req.log.info({ identifier: req.params.id }, "DDM declaration deleted");
    return changed(reply, deleted);
  });

  app.post<P & Q>("/v1/declarations/:id/touch", async (req, reply) => {
    if (!(await admin.touch(req.params.id, !truthy(req.query.nonotify), Date.now()))) throw new NotFound("no such declaration");
    req.log.info({ identifier: req.params.id }, "DDM declaration touched");
    return reply.code(204).send();
  });

  app.get("/v1/sets", async () => store.ddm.setNames());

  app.get<P>("/v1/set-declarations/:id", async (req) => store.ddm.setDeclarations(req.params.id));
  for (const [method, add] of [
    ["PUT", true],
    ["DELETE", false],
  ] as const) {
    app.route<P & Q>({
      method,
      url: "/v1/set-declarations/:id",
      handler: async (req, reply) => {
        const declaration = required(req.query.declaration, "declaration");
        const did = await admin.setDeclaration(req.params.id, declaration, add, !truthy(req.query.nonotify), Date.now());
        if (did) req.log.info({ set: req.params.id, declaration, add }, "DDM set changed");
        return changed(reply, did);
      },
    });
    app.route<P & Q>({
      method,
      url: "/v1/enrollment-sets/:id",
      handler: async (req, reply) => {
        const set = required(req.query.set, "set");
        const did = await admin.assign(req.params.id, set, add, !truthy(req.query.nonotify), Date.now());
        if (did) req.log.info({ enrollmentId: req.params.id, set, add }, "DDM enrollment sets changed");
        if (add) {
          const context = { enrollmentId: req.params.id, set };
          await warnOfEmptySets(store, [set], req, reply, context);
          await warnOfUnenrolled(admin, [req.params.id], req, reply, context);
        }
        return changed(reply, did);
      },
    });
  }
  app.get<P>("/v1/enrollment-sets/:id", async (req) => store.ddm.enrollmentSets(req.params.id));

  app.delete<P & Q>("/v1/enrollment-sets-all/:id", async (req, reply) => {
    const did = await admin.unassignAll(req.params.id, !truthy(req.query.nonotify), Date.now());
    if (did) req.log.info({ enrollmentId: req.params.id }, "DDM enrollment sets all removed");
    return changed(reply, did);
  });

  app.get<P>("/v1/declaration-sets/:id", async (req) => store.ddm.declarationSets(req.params.id));

  app.get<P>("/v1/declaration-status/:id", async (req) => {
    const ids = idList(req.params.id);
    const out = byId(ids);
    for (const s of await store.ddmStatus.declarations(ids)) {
      out[s.enrollmentId]!.push({
        identifier: s.identifier,
        active: s.active,
        valid: s.valid,
        "server-token": s.serverToken,
        current: s.serverToken === s.currentToken,
        status_received: time(s.updatedAt),
        ...(s.reasons ? { reasons: s.reasons } : {}),
        status_id: s.statusId,
      });
    }
    return out;
  });

  app.get<P>("/v1/status-errors/:id", async (req) => {
    const ids = idList(req.params.id);
    const out = byId(ids);
    for (const id of ids) {
      for (const e of await store.ddmStatus.errors(id, MAX_ERRORS)) {
        out[id]!.push({ path: STATUS_ITEMS + e.path, error: e.error, timestamp: time(e.at), status_id: e.statusId });
      }
    }
    return out;
  });

  app.get<P & Q>("/v1/status-values/:id", async (req) => {
    const ids = idList(req.params.id);
    const match = prefixMatcher(req.query.prefix);
    const out = byId(ids);
    for (const id of ids) {
      for (const v of await store.ddmStatus.values(id)) {
        const path = STATUS_ITEMS + v.path;
        if (!match(path)) continue;
        out[id]!.push({
          path,
          value: typeof v.value === "string" ? v.value : JSON.stringify(v.value),
          timestamp: time(v.updatedAt),
          status_id: v.statusId,
        });
      }
    }
    return out;
  });

  app.get<P & Q>("/v1/status-report/:id", async (req, reply) => {
    const { index, status_id: statusId } = req.query;
    if (index !== undefined && !/^\d{1,4}$/.test(index)) throw new BadRequest("index must be a whole number", "invalid_parameter");
    const report = await store.ddmStatus.report(req.params.id, statusId !== undefined ? { statusId } : { index: Number(index ?? 0) });
    if (!report) throw new NotFound("no such status report");
    return reply
      .header("last-modified", new Date(report.at).toUTCString())
      .header("x-status-report-id", report.statusId)
      .header("x-status-report-index", String(report.index))
      .type("application/json")
      .send(report.report);
  });

  app.post<Q>("/v1/notify", { config: { repeatedQuery: true } }, async (req, reply) => {
    const q = req.query as Record<string, string | string[] | undefined>;
    const list = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]).filter((s) => s !== "");
    const what = { ids: list(q.id), sets: list(q.set), declarations: list(q.declaration) };
    const due = await admin.notify(what, Date.now());
    req.log.info({ ids: what.ids.length, sets: what.sets.length, declarations: what.declarations.length, due }, "DDM notify");
    return reply.code(204).send();
  });

  // Orchard's own: a set assigned to (POST) or taken from (DELETE) many
  // channels at once, by id or every device channel of a platform enrolled
  // now; one transaction per chunk of ids, each channel that changed syncs once.
  for (const [method, add] of [
    ["POST", true],
    ["DELETE", false],
  ] as const) {
    app.route<{ Params: { set: string }; Querystring: Record<string, string> }>({
      method,
      url: "/v1/ddm/sets/:set/enrollments",
      bodyLimit: BULK_ASSIGN_BODY_BYTES,
      handler: async (req, reply) => {
        const target = assignTarget(jsonObject(req));
        const set = req.params.set;
        const r = await admin.assignMany(set, target, add, !truthy(req.query.nonotify), Date.now());
        req.log.info(
          { set, add, ...("platform" in target ? { platform: target.platform } : {}), enrollments: r.enrollments, changed: r.changed },
          "DDM set assigned in bulk",
        );
        if (add) {
          const context = { set, ...("platform" in target ? { platform: target.platform } : { ids: target.ids.length }) };
          await warnOfEmptySets(store, [set], req, reply, context);
          // A platform's channels are enrolled ones; ids may name any.
          if ("ids" in target) await warnOfUnenrolled(admin, target.ids, req, reply, context);
        }
        const result: DdmBulkAssignResult = { set, ...("platform" in target ? { platform: target.platform } : {}), ...r };
        return result;
      },
    });
  }

  // Orchard's own: per declaration of a set, how many of its channels report it.
  app.get<{ Params: { set: string } }>("/v1/set-compliance/:set", async (req) => {
    const c = await store.ddmStatus.compliance(req.params.set);
    return {
      set: req.params.set,
      enrollments: c.enrollments,
      declarations: c.declarations.map((d) => ({
        identifier: d.identifier,
        server_token: d.serverToken,
        compliant: d.compliant,
        failing: d.failing,
        pending: d.pending,
      })),
    };
  });
}

/** `{"ids": [...]}` or `{"platform": "macOS"}`, exactly one. */
function assignTarget(body: Record<string, unknown>): { ids: string[] } | { platform: Platform } {
  onlyKeys(body, ["ids", "platform"]);
  if ((body.ids === undefined) === (body.platform === undefined)) {
    throw new BadRequest('give "ids" (enrollment ids) or "platform" (macOS, iOS, ...), one of them', "invalid_parameter");
  }
  if (body.platform !== undefined) {
    const platform = body.platform;
    if (typeof platform !== "string" || !(PLATFORMS as readonly string[]).includes(platform)) {
      throw new BadRequest(`"platform" must be one of ${PLATFORMS.join(", ")}`, "invalid_parameter");
    }
    return { platform: platform as Platform };
  }
  const ids = body.ids;
  if (!Array.isArray(ids) || ids.length === 0)
    throw new BadRequest('"ids" must be a non-empty array of enrollment ids', "invalid_parameter");
  for (const id of ids) {
    if (typeof id !== "string" || id === "" || id.includes("\0"))
      throw new BadRequest('"ids" must hold non-empty strings', "invalid_parameter");
  }
  const unique = [...new Set(ids as string[])];
  if (unique.length > MAX_BULK_ASSIGN_IDS) throw new BadRequest(`at most ${MAX_BULK_ASSIGN_IDS} ids at once`, "too_many_ids");
  return { ids: unique };
}

/** 204 when something changed, 304 when nothing did (KMFDDM). */
function changed(reply: FastifyReply, did: boolean): FastifyReply {
  return reply.code(did ? 204 : 304).send();
}

function required(value: string | undefined, name: string): string {
  if (value === undefined || value === "") throw new BadRequest(`the ${name} query parameter is required`, "invalid_parameter");
  return value;
}

/** `{ id: [] }` for each id, without a prototype (an id "__proto__" is an entry like any other). */
function byId(ids: readonly string[]): Record<string, unknown[]> {
  const out = Object.create(null) as Record<string, unknown[]>;
  for (const id of ids) out[id] = [];
  return out;
}

/**
 * KMFDDM's prefix: SQL LIKE-like (`%` any run, `_` one character), matched
 * from the start, case-sensitive. Matched without a regular expression, in
 * time linear in the path for each part between `%`s: the parts are found
 * in order, each at its leftmost place (enough for a prefix, whose end is
 * open), so no pattern can make it backtrack.
 */
export function prefixMatcher(prefix: string | undefined): (path: string) => boolean {
  if (prefix === undefined || prefix === "") return () => true;
  const [head, ...parts] = prefix.split("%");
  const rest = parts.filter((p) => p !== "");
  return (path) => {
    if (!likeAt(path, 0, head!)) return false;
    let at = head!.length;
    for (const part of rest) {
      const found = likeFind(path, at, part);
      if (found < 0) return false;
      at = found + part.length;
    }
    return true;
  };
}

/** Whether `part` (literal characters and `_`) matches `path` at `at`. */
function likeAt(path: string, at: number, part: string): boolean {
  if (at + part.length > path.length) return false;
  for (let i = 0; i < part.length; i++) if (part[i] !== "_" && part[i] !== path[at + i]) return false;
  return true;
}

/** The first place at or after `from` where `part` matches, or -1. */
function likeFind(path: string, from: number, part: string): number {
  if (!part.includes("_")) return path.indexOf(part, from);
  for (let i = from; i + part.length <= path.length; i++) if (likeAt(path, i, part)) return i;
  return -1;
}

/**
 * Sets that hold no declarations, said when they are assigned: a set is its
 * declarations (KMFDDM's model), so assigning one that holds none is allowed
 * (it may be filled later), but it is most often a misspelt name. Each is an
 * orchard-warning header and a log line; `prefix` names where it was given.
 */
export async function warnOfEmptySets(
  store: Store,
  sets: readonly string[],
  req: FastifyRequest,
  reply: FastifyReply,
  context: Record<string, unknown>,
  prefix = "",
): Promise<void> {
  const warnings: string[] = [];
  for (const set of sets) {
    if (!(await store.ddm.setHoldsAny(set)))
      warnings.push(`${prefix}set ${JSON.stringify(set)}: holds no declarations; a device gets nothing from it until it does`);
  }
  addWarnings(req, reply, context, warnings, "DDM set named that holds no declarations");
}

/**
 * Ids a set was assigned to that name no enrollment: allowed (a set may be
 * assigned before the device enrolls), but as often mistyped, so said. Of
 * many (a request may name 100,000), how many and the first few.
 */
async function warnOfUnenrolled(
  admin: DdmAdmin,
  ids: readonly string[],
  req: FastifyRequest,
  reply: FastifyReply,
  context: Record<string, unknown>,
): Promise<void> {
  const missing = await admin.notEnrolled(ids);
  if (missing.length === 0) return;
  const named = missing.slice(0, 3).map((id) => JSON.stringify(id.slice(0, 100)));
  const warning =
    ids.length === 1
      ? `enrollment ${named[0]}: no such enrollment (not enrolled yet, or mistyped): assigned all the same, it gets the set when it enrolls`
      : `ids: ${missing.length} of ${ids.length} name no enrollment (${named.join(", ")}${missing.length > named.length ? ", ..." : ""}): ` +
        "not enrolled yet, or mistyped; assigned all the same, each gets the set when it enrolls";
  addWarnings(req, reply, { ...context, notEnrolled: missing.length }, [warning], "DDM set assigned to ids that are no enrollment");
}
