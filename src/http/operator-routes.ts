import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { checkOperatorName, checkRole, csrfTokenOf, effectiveRole, type OperatorAuth } from "../core/operator-auth.ts";
import { passwordProblem } from "../core/password.ts";
import { durationMs } from "../duration.ts";
import { BadRequest, Forbidden, NotFound, OrchardError } from "../errors.ts";
import type { Store } from "../store/index.ts";
import type { Operator, OperatorToken } from "../store/operators.ts";
import { sendTooMany } from "./api-auth.ts";
import { sendError } from "./errors.ts";
import { addressKey, type ApiFailureLimiter } from "./limits.ts";
import {
  cookieValue,
  CSRF_HEADER,
  KNOWN_COOKIE,
  KNOWN_MAX_AGE_SECONDS,
  knownNames,
  knownValue,
  SESSION_COOKIE,
  sameText,
} from "./operator-auth.ts";
import { jsonObject, nextCursor, onlyKeys, optionalString, pageSize } from "./request-helpers.ts";
import type { MeJson, OperatorJson, OperatorPage, OperatorRemoved, SessionJson, TokenCreated, TokenJson, TokenPage } from "./wire.ts";
import { time, timeOrNull } from "./wire-map.ts";

/** An account's or a token's JSON is a few hundred bytes. */
const BODY_LIMIT = 16 * 1024;

export interface SessionRouteOptions {
  auth: OperatorAuth;
  /** Wrong passwords per address; past the limit, only browsers that signed in before are heard. */
  limiter: ApiFailureLimiter;
  /** The MAC key of the known-browser cookie (knownBrowserKey). */
  knownKey: Buffer;
  /**
   * Wrong passwords per name from browsers that signed in as it before: the
   * cookie's value for a name never changes, so a copied one must not buy
   * unlimited guesses (review). Only its holders share this count.
   */
  knownLimiter: ApiFailureLimiter;
}

/**
 * Browser sessions: sign in, who am I, sign out (registered outside the API's
 * guard: signing in needs no credential; the others read the cookie here).
 */
export function registerSessionRoutes(app: FastifyInstance, o: SessionRouteOptions): void {
  const { auth } = o;

  app.post("/v1/session", { bodyLimit: BODY_LIMIT }, async (req, reply) => {
    // A form on another site cannot send JSON without asking first (CORS, which Orchard never allows).
    if (!/^application\/json\s*(;|$)/i.test(req.headers["content-type"] ?? "") || req.headers["sec-fetch-site"] === "cross-site") {
      throw new OrchardError(
        415,
        "sign in with a JSON body (Content-Type: application/json) from Orchard's own pages",
        "unsupported_media_type",
      );
    }
    const body = jsonObject(req);
    onlyKeys(body, ["name", "password"]);
    const name = body.name;
    const password = body.password;
    if (typeof name !== "string" || typeof password !== "string")
      throw new BadRequest("name and password are strings", "invalid_parameter");
    // Past its failures, an address's sign-ins are refused unchecked (else a
    // guesser loses nothing: a right guess would still pass), but for a
    // browser that signed in as this name before: the operator's own browser
    // is never held back by a guesser sharing its address. Such browsers have
    // their own count per name.
    const known = knownNames(cookieValue(req.headers.cookie, KNOWN_COOKIE), o.knownKey);
    const isKnown = known.includes(name);
    // The hash queue is shared fairly: per address, or per name for a browser that signed in as it before
    // (a guesser at the operator's address then takes none of the operator's share).
    const signIn = () => auth.signIn(name, password, req.ip, isKnown ? `known:${name}` : `address:${addressKey(req.ip)}`);
    const limiter = isKnown ? o.knownLimiter : o.limiter;
    const checked = await limiter.check(isKnown ? `known ${name}` : req.ip, signIn);
    if ("wait" in checked) {
      sendTooMany(req, reply, checked.wait, "sign-in", "sign-ins", limiter.refusalsToLog(Date.now()));
      return reply;
    }
    const signed = checked.result;
    // A known browser's wrong password counts against its address too (it is heard there again once the window ends).
    if (isKnown && !signed) o.limiter.fail(req.ip, Date.now());
    if (!signed) {
      req.log.info({ remote: req.ip }, "sign-in refused");
      sendError(req, reply, 401, "wrong name or password", "unauthorized");
      return reply;
    }
    const { sessionId, operator } = signed;
    req.actor = { name: operator.name, operator: operator.name, credential: "password", role: operator.role };
    req.log.info({ operator: operator.name, remote: req.ip }, "signed in");
    setSessionCookie(req, reply, sessionId, Math.floor(auth.times.absoluteMs / 1000));
    const secure = req.protocol === "https" ? "; Secure" : "";
    void reply.header(
      "set-cookie",
      `${KNOWN_COOKIE}=${knownValue(known, operator.name, o.knownKey)}; HttpOnly; SameSite=Strict; Path=/v1/session; Max-Age=${KNOWN_MAX_AGE_SECONDS}${secure}`,
    );
    return reply.send(sessionJson(operator.name, operator.role, sessionId, Date.now() + auth.times.absoluteMs, auth));
  });

  app.get("/v1/session", async (req, reply) => {
    const sessionId = cookieValue(req.headers.cookie, SESSION_COOKIE);
    const actor = sessionId === undefined ? undefined : await auth.session(sessionId);
    if (!actor || sessionId === undefined) {
      if (sessionId !== undefined) setSessionCookie(req, reply, "", 0);
      sendError(req, reply, 401, "not signed in", "unauthorized");
      return reply;
    }
    return reply.send(sessionJson(actor.name, actor.role, sessionId, actor.sessionExpiresAt!, auth));
  });

  // Signing out is a change: it takes the CSRF token too (another site must not sign the operator out).
  app.delete("/v1/session", async (req, reply) => {
    const sessionId = cookieValue(req.headers.cookie, SESSION_COOKIE);
    const actor = sessionId === undefined ? undefined : await auth.session(sessionId);
    if (actor && sessionId !== undefined) {
      const given = req.headers[CSRF_HEADER];
      if (typeof given !== "string" || !sameText(given, csrfTokenOf(sessionId))) {
        sendError(req, reply, 403, "signing out needs the session's X-CSRF-Token header", "forbidden");
        return reply;
      }
      req.actor = actor;
      await auth.signOut(actor.sessionIdHash!);
      req.log.info({ operator: actor.name }, "signed out");
    }
    setSessionCookie(req, reply, "", 0);
    return reply.code(204).send();
  });
}

function sessionJson(name: string, role: Operator["role"], sessionId: string, expiresAt: number, auth: OperatorAuth): SessionJson {
  return {
    operator: { name, role },
    csrf_token: csrfTokenOf(sessionId),
    expires_at: time(expiresAt),
    idle_timeout_seconds: Math.floor(auth.times.idleMs / 1000),
  };
}

/**
 * The session cookie: HttpOnly (no script reads it), SameSite=Strict (no
 * other site's page sends it), Path=/ (the console and the API), Secure when
 * the request came over TLS (or a trusted proxy says it did: --trust-proxy).
 * An empty value with Max-Age=0 deletes it.
 */
function setSessionCookie(req: FastifyRequest, reply: FastifyReply, value: string, maxAgeSeconds: number): void {
  const secure = req.protocol === "https" ? "; Secure" : "";
  void reply.header("set-cookie", `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeSeconds}${secure}`);
  void reply.header("cache-control", "no-store");
}

export interface OperatorRouteOptions {
  store: Store;
  auth: OperatorAuth;
  /** Wrong current passwords of PUT /v1/me/password, per account: no unthrottled way to try an account's password. */
  passwordChanges: ApiFailureLimiter;
}

/** Accounts (admins), personal tokens (everyone's own), and oneself (registered behind the API's guard). */
export function registerOperatorRoutes(app: FastifyInstance, o: OperatorRouteOptions): void {
  const { store, auth } = o;

  app.get("/v1/me", async (req): Promise<MeJson> => {
    const actor = req.actor!;
    return { name: actor.name, role: actor.role, credential: actor.credential };
  });

  app.put("/v1/me/password", { bodyLimit: BODY_LIMIT }, async (req, reply) => {
    const actor = req.actor!;
    if (actor.operator === undefined) throw new BadRequest("the API key is no account: it has no password", "invalid_parameter");
    const body = jsonObject(req);
    onlyKeys(body, ["current_password", "new_password"]);
    const current = body.current_password;
    const next = body.new_password;
    if (typeof current !== "string" || typeof next !== "string") throw new BadRequest("current_password and new_password are strings");
    // Refused before any hash is spent on it.
    const problem = passwordProblem(next);
    if (problem) throw new BadRequest(`new_password: ${problem}`, "invalid_parameter");
    // Any credential of the account (a token of the lowest role, a session) could otherwise guess its password
    // here without limit: wrong ones count per account, from whatever address, and past the limit nothing is
    // checked (no hash taken from sign-in either) until the window ends.
    // The account's share of the hash queue too, whichever address its guesses come from.
    const operator = actor.operator;
    const checked = await o.passwordChanges.check(`account ${operator}`, () =>
      auth.checkPassword(operator, current, `operator:${operator}`),
    );
    if ("wait" in checked) {
      sendTooMany(req, reply, checked.wait, "password change", "password checks", o.passwordChanges.refusalsToLog(Date.now()));
      return reply;
    }
    if (!checked.result) throw new Forbidden("the current password is wrong");
    await auth.update(operator, { password: next });
    req.log.info({ operator }, "password changed (its sessions ended)");
    return reply.code(204).send();
  });

  app.get<{ Querystring: Record<string, string> }>("/v1/operators", async (req): Promise<OperatorPage> => {
    const limit = pageSize(req.query.limit);
    const operators = await store.operators.list(req.query.cursor, limit);
    return { operators: operators.map(operatorJson), next_cursor: nextCursor(operators, limit, (x) => x.name) };
  });

  app.get<{ Params: { name: string } }>("/v1/operators/:name", async (req): Promise<OperatorJson> => {
    const operator = await store.operators.get(req.params.name);
    if (!operator) throw new NotFound("no such operator");
    return operatorJson(operator);
  });

  app.post("/v1/operators", { bodyLimit: BODY_LIMIT }, async (req, reply) => {
    const body = jsonObject(req);
    onlyKeys(body, ["name", "role", "password"]);
    const name = checkOperatorName(requiredString(body, "name", 64));
    const role = checkRole(body.role);
    const password = requiredString(body, "password", 1024);
    const operator = await auth.add(name, role, password);
    req.log.info({ operator: name, role }, "operator added");
    return reply.code(201).send(operatorJson(operator));
  });

  app.patch<{ Params: { name: string } }>("/v1/operators/:name", { bodyLimit: BODY_LIMIT }, async (req): Promise<OperatorJson> => {
    const body = jsonObject(req);
    onlyKeys(body, ["role", "password", "disabled"]);
    if (Object.keys(body).length === 0) throw new BadRequest("nothing to change: give role, password or disabled");
    const role = body.role === undefined ? undefined : checkRole(body.role);
    const password = body.password === undefined ? undefined : requiredString(body, "password", 1024);
    if (body.disabled !== undefined && typeof body.disabled !== "boolean")
      throw new BadRequest("disabled is true or false", "invalid_parameter");
    const operator = await auth.update(req.params.name, { role, password, disabled: body.disabled as boolean | undefined });
    req.log.info({ operator: operator.name, role, disabled: body.disabled, passwordSet: password !== undefined }, "operator changed");
    return operatorJson(operator);
  });

  app.delete<{ Params: { name: string } }>("/v1/operators/:name", async (req): Promise<OperatorRemoved> => {
    await auth.remove(req.params.name);
    req.log.info({ operator: req.params.name }, "operator removed");
    return { removed: req.params.name };
  });

  // An admin sees every token (or one operator's with ?operator=); anyone else their own.
  app.get<{ Querystring: Record<string, string> }>("/v1/tokens", async (req): Promise<TokenPage> => {
    const actor = req.actor!;
    const limit = pageSize(req.query.limit);
    let operator = req.query.operator;
    if (actor.role !== "admin") {
      if (actor.operator === undefined) return { tokens: [], next_cursor: null };
      if (operator !== undefined && operator !== actor.operator) throw new Forbidden("only admins see other operators' tokens");
      operator = actor.operator;
    }
    const tokens = await store.operators.tokens({ operator, after: req.query.cursor, limit });
    return { tokens: tokens.map(tokenJson), next_cursor: nextCursor(tokens, limit, (t) => t.id) };
  });

  app.post("/v1/tokens", { bodyLimit: BODY_LIMIT }, async (req, reply) => {
    const actor = req.actor!;
    // A leaked token must not be able to mint others (new ones outlive its revocation): tokens are made from a
    // signed-in session (the password) or with the API key.
    if (actor.credential.startsWith("token:"))
      throw new Forbidden("a personal API token cannot make tokens: make them signed in to the console or with the API key");
    const body = jsonObject(req);
    onlyKeys(body, ["label", "role", "expires_in", "operator"]);
    const label = requiredString(body, "label", 128);
    const role = body.role === undefined ? undefined : checkRole(body.role);
    const owner = optionalString(body, "operator", 64) ?? actor.operator;
    if (owner === undefined) throw new BadRequest("the API key is no account: name the token's operator", "invalid_parameter");
    if (owner !== actor.operator && actor.role !== "admin") throw new Forbidden("only admins make tokens for other operators");
    const expiresIn = optionalString(body, "expires_in", 32);
    const ttlMs = expiresIn == null ? undefined : durationMs(expiresIn);
    if (expiresIn != null && ttlMs === undefined)
      throw new BadRequest("expires_in is a duration with its unit, such as 30d or 12h", "invalid_parameter");
    const { secret, token } = await auth.createToken(owner, { label, role, ttlMs, creatorRole: actor.role });
    req.log.info({ tokenId: token.id, operator: owner, role: token.role, expiresAt: time(token.expiresAt) }, "API token created");
    const created: TokenCreated = { ...tokenJson(token), token: secret };
    return reply.code(201).header("cache-control", "no-store").send(created);
  });

  app.delete<{ Params: { id: string } }>("/v1/tokens/:id", async (req): Promise<TokenJson> => {
    const actor = req.actor!;
    const token = await store.operators.token(req.params.id);
    // Someone else's token is not found, the same answer as an unknown id.
    if (!token || (actor.role !== "admin" && token.operator !== actor.operator)) throw new NotFound("no such token");
    await store.operators.revokeToken(token.id, Date.now());
    req.log.info({ tokenId: token.id, operator: token.operator }, "API token revoked");
    return tokenJson((await store.operators.token(token.id))!);
  });
}

function requiredString(body: Record<string, unknown>, key: string, max: number): string {
  const v = optionalString(body, key, max);
  if (v == null) throw new BadRequest(`${key} is required`, "invalid_parameter");
  return v;
}

export function operatorJson(x: Operator): OperatorJson {
  return {
    name: x.name,
    role: x.role,
    disabled: x.disabled,
    created_at: time(x.createdAt),
    updated_at: time(x.updatedAt),
    password_changed_at: time(x.passwordChangedAt),
  };
}

export function tokenJson(t: OperatorToken): TokenJson {
  return {
    id: t.id,
    operator: t.operator,
    label: t.label,
    role: t.role,
    effective_role: effectiveRole(t),
    created_at: time(t.createdAt),
    expires_at: time(t.expiresAt),
    revoked_at: timeOrNull(t.revokedAt),
    last_used_at: timeOrNull(t.lastUsedAt),
  };
}
