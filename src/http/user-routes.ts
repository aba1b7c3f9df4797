import type { FastifyInstance } from "fastify";
import { computeHA1, parseHtdigest } from "../digest/index.ts";
import { isShortName, SHORT_NAME_RULE } from "../core/short-name.ts";
import { canonicalGuid, GUID_RULE, isUserGuid } from "../core/user-guid.ts";
import { BadRequest, Conflict, NotFound } from "../errors.ts";
import type { DirectoryState, DirectoryUserUpdate } from "../store/directory.ts";
import type { Store } from "../store/index.ts";
import { jsonObject, nextCursor, onlyKeys, optionalString, pageSize, utf8Body } from "./request-helpers.ts";
import type { UserImportJson, UserJson, UserPage, UserRemoved, UserSaved, UserSessionPage } from "./wire.ts";
import { userJson, userSessionJson } from "./wire-map.ts";

export interface UserRouteOptions {
  store: Store;
  /** The realm of UserAuthenticate challenges: passwords become digests for it. */
  realm: string;
}

/** A user's JSON is a few hundred bytes; far more is not one. */
const USER_BODY_LIMIT = 64 * 1024;

/** The directory of network users, and the state of their logins (registered behind the API key). */
export function registerUserRoutes(app: FastifyInstance, o: UserRouteOptions): void {
  const { store, realm } = o;

  app.put<{ Params: { short_name: string } }>("/v1/users/:short_name", { bodyLimit: USER_BODY_LIMIT }, async (req, reply) => {
    const shortName = checkShortName(req.params.short_name);
    const body = jsonObject(req);
    onlyKeys(body, ["password", "guid", "full_name", "state"]);
    const password = optionalString(body, "password", 1024);
    const givenGuid = optionalString(body, "guid", 128);
    if (givenGuid && !isUserGuid(givenGuid)) throw new BadRequest(`guid is not a GUID: ${GUID_RULE}`, "invalid_guid");
    const guid = givenGuid ? canonicalGuid(givenGuid) : givenGuid;
    const fullName = optionalString(body, "full_name", 256);
    const state = body.state;
    if (state !== undefined && state !== "managed" && state !== "declined") {
      throw new BadRequest("state must be managed or declined", "invalid_parameter");
    }
    if (password === null) throw new BadRequest("password cannot be null");
    if (guid && (await store.directory.guidInUse(guid, shortName))) throw new Conflict("another user has this guid", "guid_in_use");
    const { created, tokensEnded } = await saveUser(
      store,
      {
        shortName,
        guid,
        fullName,
        state: state as DirectoryState | undefined,
        // MD5 alone: no challenge offers another hash (its digest would be a secret kept for nothing).
        digests: password ? [{ realm, algorithm: "MD5", ha1: computeHA1("MD5", shortName, realm, password) }] : undefined,
      },
      Date.now(),
    );
    req.log.info({ shortName, created, passwordSet: password !== undefined, tokensEnded }, "directory user saved");
    const saved: UserSaved = { ...userJson((await store.directory.get(shortName))!), sessions_ended: tokensEnded };
    return reply.code(created ? 201 : 200).send(saved);
  });

  app.get<{ Querystring: Record<string, string> }>("/v1/users", async (req): Promise<UserPage> => {
    const limit = pageSize(req.query.limit);
    const users = await store.directory.list(req.query.cursor, limit);
    return { users: users.map(userJson), next_cursor: nextCursor(users, limit, (u) => u.shortName) };
  });

  app.get<{ Params: { short_name: string } }>("/v1/users/:short_name", async (req): Promise<UserJson> => {
    const user = await store.directory.get(req.params.short_name);
    if (!user) throw new NotFound("no such user");
    return userJson(user);
  });

  app.delete<{ Params: { short_name: string } }>("/v1/users/:short_name", async (req): Promise<UserRemoved> => {
    if (!(await store.directory.remove(req.params.short_name))) throw new NotFound("no such user");
    // A removed user's AuthTokens stop working at once, on every Mac.
    const revoked = await store.userSessions.revokeUser(req.params.short_name, Date.now());
    req.log.info({ shortName: req.params.short_name, revoked }, "directory user removed");
    return { removed: req.params.short_name, sessions_revoked: revoked };
  });

  // Digests are per realm: by default the lines of the server's realm are
  // imported; ?realm= imports another's (usable once --digest-realm is it).
  app.post<{ Querystring: Record<string, string> }>("/v1/users/import", async (req): Promise<UserImportJson> => {
    const wanted = req.query.realm ?? realm;
    if (wanted.length === 0 || wanted.length > 256 || /[\x00-\x1f\x7f"\\]/.test(wanted)) {
      throw new BadRequest("realm must be 1 to 256 characters without control characters, quotes or backslashes", "invalid_parameter");
    }
    const file = utf8Body(req, "the htdigest file");
    // curl --data-binary @missing-file sends nothing: a 200 "created 0" read as a file of no users.
    if (file.trim() === "") throw new BadRequest("the htdigest file is empty: send its lines (user:realm:MD5 digest) as the body");
    const { entries, errors } = parseHtdigest(file);
    const otherRealms: Array<{ username: string; realm: string }> = [];
    const fileRealms = new Map<string, number>();
    let created = 0;
    let updated = 0;
    let sessionsEnded = 0;
    const now = Date.now();
    for (const e of entries) {
      fileRealms.set(e.realm, (fileRealms.get(e.realm) ?? 0) + 1);
      if (e.realm !== wanted) {
        otherRealms.push({ username: e.username, realm: e.realm });
        continue;
      }
      if (!isShortName(e.username)) {
        errors.push({ line: e.line, reason: "bad-char" });
        continue;
      }
      // The line's MD5 digest replaces all the user's digests for the realm (of any hash, as a password does).
      const saved = await saveUser(store, { shortName: e.username, digests: [{ realm: wanted, algorithm: "MD5", ha1: e.ha1 }] }, now);
      if (saved.created) created++;
      else updated++;
      sessionsEnded += saved.tokensEnded;
    }
    req.log.info(
      { realm: wanted, created, updated, sessionsEnded, otherRealms: otherRealms.length, errors: errors.length },
      "htdigest imported",
    );
    return {
      realm: wanted,
      server_realm: realm,
      created,
      updated,
      sessions_ended: sessionsEnded,
      file_realms: [...fileRealms].map(([name, lines]) => ({ realm: name, lines })),
      other_realms: otherRealms,
      errors,
    };
  });

  app.get<{ Querystring: Record<string, string> }>("/v1/user-sessions", async (req): Promise<UserSessionPage> => {
    const limit = pageSize(req.query.limit);
    const sessions = await store.userSessions.list({ deviceId: req.query.device, after: req.query.cursor, limit });
    return {
      sessions: sessions.map(userSessionJson),
      next_cursor: nextCursor(sessions, limit, (s) => s.enrollmentId),
    };
  });
}

/**
 * Saves a directory entry. A new password (its MD5 digest for a realm differs
 * from the one held) ends the user's AuthTokens, and a decline its sessions,
 * in the same transaction: a token got with the old password, or before the
 * decline, must not outlive it (review).
 */
async function saveUser(store: Store, u: DirectoryUserUpdate, now: number): Promise<{ created: boolean; tokensEnded: number }> {
  return store.transaction(async (tx) => {
    const held = new Map<string, string | undefined>();
    for (const d of u.digests ?? []) if (d.algorithm === "MD5") held.set(d.realm, await tx.directory.ha1(u.shortName, d.realm, "MD5"));
    const created = await tx.directory.put(u, now);
    if (u.state === "declined") {
      const guid = u.guid ?? (await tx.directory.entry(u.shortName))?.guid ?? null;
      return { created, tokensEnded: await tx.userSessions.decline(u.shortName, guid, now) };
    }
    const changed = (u.digests ?? []).some((d) => d.algorithm === "MD5" && held.get(d.realm) !== undefined && held.get(d.realm) !== d.ha1);
    return { created, tokensEnded: changed ? await tx.userSessions.revokeTokens(u.shortName, now) : 0 };
  });
}

function checkShortName(value: string): string {
  if (!isShortName(value)) throw new BadRequest(SHORT_NAME_RULE, "invalid_short_name");
  return value;
}
