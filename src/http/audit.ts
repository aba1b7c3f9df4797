import { StoreUnavailable } from "../store/unavailable.ts";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { BadRequest } from "../errors.ts";
import type { Store } from "../store/index.ts";
import type { AuditEntry, NewAuditEntry } from "../store/audit.ts";
import { isSafeMethod } from "./operator-auth.ts";
import { nextCursor, pageSize } from "./request-helpers.ts";
import { READ_ONLY_POSTS, routeRule } from "./route-roles.ts";
import { timeParam } from "./time-param.ts";
import { parseStrictJson } from "./strict-json.ts";
import type { AuditEntryJson, AuditPage } from "./wire.ts";
import { time } from "./wire-map.ts";

/**
 * Body keys whose values name what a change is about. Only these are read:
 * a body's other fields (passwords, tokens, payloads) never reach the log.
 */
const OBJECT_KEYS = ["ids", "id", "name", "operator", "short_name", "Identifier", "identifier", "serial_number", "serial_numbers"];
/** Objects kept per entry: a bulk enqueue may name 10,000 enrollments. */
const MAX_OBJECTS = 500;
const MAX_OBJECT_CHARS = 256;
/** Bodies larger than this are not read for ids (a command plist, an asset). */
const MAX_BODY_READ = 1024 * 1024;

/**
 * Writes the audit log: one entry for every answered request to a route that
 * changes something (its `action` in http/route-roles.ts; a change nobody
 * declared is written under its method and route). Written as the answer
 * goes out (onSend: whoever sees the answer can find its entry), with its
 * status, whatever the route did: refused (403, 400) or done. A request the
 * guard refused was not read, so its body's ids are not in its entry.
 * Requests refused for want of a credential are not entries (they are not
 * anyone's); a failed sign-in is, as `anonymous`.
 */
export function registerAuditHook(app: FastifyInstance, store: Store): void {
  const entryOf = (req: FastifyRequest, status: number): NewAuditEntry | undefined => {
    const route = req.routeOptions.url;
    if (route === undefined || !route.startsWith("/v1/")) return undefined;
    const rule = routeRule(req.method, route);
    const readOnly = isSafeMethod(req.method) || READ_ONLY_POSTS.has(`${req.method} ${route}`);
    const action = rule?.action ?? (readOnly ? undefined : `${req.method} ${route}`);
    if (action === undefined) return undefined;
    const actor = req.actor;
    // Without a caller, only a sign-in is an entry (a failed one, as anonymous):
    // a sign-out with no session changed nothing, and anyone could send it.
    if (actor === undefined && !(rule?.role === "public" && req.method === "POST")) return undefined;
    return {
      at: Date.now(),
      actor: actor?.name ?? "anonymous",
      credential: actor?.credential ?? "password",
      action,
      method: req.method,
      route,
      // A failed sign-in's name may be a password typed in the wrong box: only a known caller's body is read.
      objects: auditObjects(req, actor !== undefined),
      address: req.ip ?? null,
      status,
    };
  };
  // A change a known caller may make is written before it runs, with status 0,
  // and settled as its answer goes out: a crash in between leaves the entry
  // (status 0: no answer was sent), never a change nobody can find. If the
  // entry cannot be written, the change is not made (the error is the answer).
  app.addHook("preHandler", async (req) => {
    if (req.actor === undefined) return;
    const entry = entryOf(req, 0);
    if (entry) req.auditEntryId = await store.audit.add(entry);
  });
  app.addHook("onSend", async (req, reply, payload) => {
    try {
      if (req.auditEntryId !== undefined) await store.audit.settle(req.auditEntryId, reply.statusCode);
      else {
        // Refused before the handler (a role too low, bad input, a sign-in): written now.
        const entry = entryOf(req, reply.statusCode);
        if (entry) await store.audit.add(entry);
      }
    } catch (err) {
      // A change refused in a store outage (503) has no entry either: a warning, as the outage's other lines. One
      // that was made and whose entry stays unsettled is an error.
      if (err instanceof StoreUnavailable && reply.statusCode >= 400)
        req.log.warn({ route: req.routeOptions.url, status: reply.statusCode }, "audit entry not written: store unavailable");
      else req.log.error({ err, route: req.routeOptions.url }, "audit entry not written");
    }
    return payload;
  });
}

declare module "fastify" {
  interface FastifyRequest {
    /** The audit entry written as this change started (http/audit.ts). */
    auditEntryId?: number;
  }
}

/** The ids a change names: its path parameters (comma lists split), and the id-like keys of a JSON body. */
export function auditObjects(req: FastifyRequest, readBody: boolean): string[] {
  const objects: string[] = [];
  const add = (value: unknown) => {
    if (typeof value === "string" && value !== "") objects.push(printable(value.slice(0, MAX_OBJECT_CHARS)));
  };
  for (const value of Object.values((req.params ?? {}) as Record<string, unknown>)) {
    if (typeof value === "string") for (const part of value.split(",")) add(part.trim());
  }
  const body = req.body;
  if (readBody && Buffer.isBuffer(body) && body.length > 0 && body.length <= MAX_BODY_READ && body[0] === 0x7b) {
    let parsed: unknown;
    try {
      parsed = parseStrictJson(body.toString("utf8"));
    } catch {
      parsed = undefined;
    }
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      for (const key of OBJECT_KEYS) {
        const value = (parsed as Record<string, unknown>)[key];
        if (Array.isArray(value)) for (const v of value) add(v);
        else add(value);
      }
    }
  }
  const unique = [...new Set(objects)];
  if (unique.length <= MAX_OBJECTS) return unique;
  return [...unique.slice(0, MAX_OBJECTS), `+${unique.length - MAX_OBJECTS} more`];
}

/** GET /v1/audit: the log, newest first, filtered (registered behind the API's guard). */
export function registerAuditRoutes(app: FastifyInstance, store: Store): void {
  app.get<{ Querystring: Record<string, string> }>("/v1/audit", async (req): Promise<AuditPage> => {
    const q = req.query;
    const limit = pageSize(q.limit);
    const since = timeParam(q.since, "since");
    const until = timeParam(q.until, "until");
    const before = q.cursor === undefined ? undefined : Number(q.cursor);
    if (before !== undefined && !Number.isInteger(before)) throw new BadRequest("cursor must be an entry id", "invalid_parameter");
    const entries = await store.audit.list({
      actor: q.actor,
      credential: q.credential,
      action: q.action,
      object: q.object,
      since,
      until,
      before,
      limit,
    });
    return { entries: entries.map(auditJson), next_cursor: nextCursor(entries, limit, (e) => e.id) };
  });
}

export function auditJson(e: AuditEntry): AuditEntryJson {
  return {
    id: e.id,
    at: time(e.at),
    actor: e.actor,
    credential: e.credential,
    action: e.action,
    method: e.method,
    route: e.route,
    objects: e.objects,
    address: e.address,
    status: e.status,
  };
}

/**
 * Control characters written as \uXXXX: an id a request made up may hold a
 * NUL, which PostgreSQL's text refuses (the entry would be lost), and the
 * audit log is read on terminals.
 */
function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
