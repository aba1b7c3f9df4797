// The OpenAPI description of operator accounts, personal tokens, browser
// sessions and the audit log (http/operator-routes.ts, http/audit.ts),
// merged into http/openapi.ts. The shapes are http/wire-operators.ts's.

import type { OpenApiBuilders } from "./openapi-ddm.ts";

type Schema = Record<string, unknown>;

const str: Schema = { type: "string" };
const nullableStr: Schema = { type: ["string", "null"] };
const bool: Schema = { type: "boolean" };
const int: Schema = { type: "integer", minimum: 0 };
const role: Schema = { type: "string", enum: ["auditor", "operator", "admin"], description: "auditor < operator < admin" };

export function operatorsOpenApi(b: OpenApiBuilders & { time: Schema; nullableTime: Schema; paging: unknown[] }): {
  schemas: Record<string, Schema>;
  paths: Record<string, Record<string, unknown>>;
} {
  const { ref, object, param, op, ok, error, json, time, nullableTime, paging } = b;
  const page = (key: string, item: string) => object({ [key]: { type: "array", items: ref(item) }, next_cursor: nullableStr });
  const NAME = param("name", "path", "the operator's name");
  const schemas: Record<string, Schema> = {
    Session: object(
      {
        operator: object({ name: str, role }),
        csrf_token: { ...str, description: "send it as X-CSRF-Token with every change made with the session cookie" },
        expires_at: { ...time, description: "the session's absolute end (--session-max-age); the idle timeout may end it sooner" },
        idle_timeout_seconds: int,
      },
      { description: "who is signed in (the session itself is the HttpOnly cookie orchard_session)" },
    ),
    SignInBody: object({ name: str, password: str }),
    Me: object({ name: str, role, credential: { ...str, description: "session, token:<id> or api-key" } }),
    PasswordChangeBody: object({ current_password: str, new_password: { ...str, minLength: 12, maxLength: 1024 } }),
    Operator: object({
      name: str,
      role,
      disabled: bool,
      created_at: time,
      updated_at: time,
      password_changed_at: time,
    }),
    OperatorPage: page("operators", "Operator"),
    OperatorAddBody: object({ name: { ...str, pattern: "^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$" }, role, password: str }),
    OperatorChangeBody: object({ role, password: str, disabled: bool }, { optional: ["role", "password", "disabled"] }),
    OperatorRemoved: object({ removed: str }),
    Token: object({
      id: str,
      operator: str,
      label: str,
      role: { ...role, description: "the role it was made with" },
      effective_role: { ...role, description: "the role it acts with now: role, capped by its owner's role today" },
      created_at: time,
      expires_at: time,
      revoked_at: nullableTime,
      last_used_at: { ...nullableTime, description: "minute-grained" },
    }),
    TokenCreated: {
      ...object({
        id: str,
        operator: str,
        label: str,
        role,
        effective_role: role,
        created_at: time,
        expires_at: time,
        revoked_at: nullableTime,
        last_used_at: nullableTime,
        token: { ...str, description: "the token, shown this once: Authorization: Bearer <token>, or the Basic password" },
      }),
    },
    TokenPage: page("tokens", "Token"),
    TokenCreateBody: object(
      {
        label: str,
        role: { ...role, description: "at most the owner's and the caller's role (default: the owner's)" },
        expires_in: { ...str, description: "a duration such as 30d or 12h; default 90d, at most 366d" },
        operator: { ...str, description: "admins only: whose token it is (default: the caller's own)" },
      },
      { optional: ["role", "expires_in", "operator"] },
    ),
    AuditEntry: object({
      id: int,
      at: time,
      actor: { ...str, description: "the operator, api-key, or anonymous (a failed sign-in)" },
      credential: { ...str, description: "session, token:<id>, api-key, or password (a sign-in)" },
      action: str,
      method: str,
      route: { ...str, description: "the route's template, e.g. /v1/users/:short_name" },
      objects: { type: "array", items: str, description: "the ids the change names (path parameters, id keys of a JSON body)" },
      address: nullableStr,
      status: int,
    }),
    AuditPage: page("entries", "AuditEntry"),
  };
  const noContent = (description: string) => ({ description });
  const paths: Record<string, Record<string, unknown>> = {
    "/v1/session": {
      post: op(
        "operators",
        "Sign in: sets the HttpOnly, SameSite=Strict session cookie (Secure over TLS)",
        {
          "200": ok("Session"),
          "401": error("wrong name or password, one answer for both (code unauthorized)"),
          "415": error("not a JSON body, or asked by another site (code unsupported_media_type)"),
          "503": error(
            "too many sign-ins or password checks at once, from this caller or in all (code service_unavailable), or the store is unavailable; see Retry-After",
          ),
        },
        { security: [], requestBody: { required: true, content: json(ref("SignInBody")) } },
      ),
      get: op(
        "operators",
        "The signed-in operator and the session's CSRF token",
        { "200": ok("Session") },
        { security: [{ session: [] }] },
      ),
      delete: op(
        "operators",
        "Sign out: ends the session on the server (with X-CSRF-Token) and deletes the cookie",
        { "204": noContent("signed out"), "403": error("a live session without its X-CSRF-Token (code forbidden)") },
        { security: [{ session: [] }] },
      ),
    },
    "/v1/me": {
      get: op("operators", "Who is calling: name, role, credential", { "200": ok("Me") }),
    },
    "/v1/me/password": {
      put: op(
        "operators",
        "Change one's own password (ends one's sessions)",
        {
          "204": noContent("changed"),
          "400": error("the new password breaks the rules (code invalid_parameter)"),
          "403": error("the current password is wrong: counted like a wrong sign-in (code forbidden)"),
          "429": error("too many wrong passwords from this address: nothing checked until Retry-After (code rate_limited)"),
          "503": error("too many password checks at once (code service_unavailable); see Retry-After"),
        },
        { requestBody: { required: true, content: json(ref("PasswordChangeBody")) } },
      ),
    },
    "/v1/operators": {
      get: op("operators", "Operator accounts, by name (admins)", { "200": ok("OperatorPage") }, { parameters: paging }),
      post: op(
        "operators",
        "Add an operator account (admins)",
        {
          "201": ok("Operator", "added"),
          "400": error("a name that is reserved (api-key, anonymous) or breaks the rules (code invalid_parameter)"),
          "409": error("the name is taken, in any letter case (code conflict)"),
        },
        { requestBody: { required: true, content: json(ref("OperatorAddBody")) } },
      ),
    },
    "/v1/operators/{name}": {
      get: op(
        "operators",
        "One operator account (admins)",
        { "200": ok("Operator"), "404": error("no such operator") },
        { parameters: [NAME] },
      ),
      patch: op(
        "operators",
        "Change an operator's role, password or disabled state (admins); a new password or disabling ends its sessions",
        { "200": ok("Operator"), "404": error("no such operator"), "409": error("the last enabled admin (code conflict)") },
        { parameters: [NAME], requestBody: { required: true, content: json(ref("OperatorChangeBody")) } },
      ),
      delete: op(
        "operators",
        "Remove an operator with its tokens and sessions (admins)",
        { "200": ok("OperatorRemoved"), "404": error("no such operator"), "409": error("the last enabled admin (code conflict)") },
        { parameters: [NAME] },
      ),
    },
    "/v1/tokens": {
      get: op(
        "operators",
        "Personal API tokens: one's own (admins: everyone's, or ?operator=); never the token itself",
        { "200": ok("TokenPage") },
        { parameters: [param("operator", "query", "only this operator's tokens"), ...paging] },
      ),
      post: op(
        "operators",
        "Create a personal API token, shown once",
        { "201": ok("TokenCreated"), "404": error("no such operator"), "409": error("the operator is disabled") },
        { requestBody: { required: true, content: json(ref("TokenCreateBody")) } },
      ),
    },
    "/v1/tokens/{id}": {
      delete: op(
        "operators",
        "Revoke a token (one's own; admins any)",
        { "200": ok("Token"), "404": error("no such token (or another's)") },
        { parameters: [param("id", "path", "the token's id")] },
      ),
    },
    "/v1/audit": {
      get: op(
        "operators",
        "The audit log, newest first: every change asked of the API",
        { "200": ok("AuditPage") },
        {
          parameters: [
            param("actor", "query", "only this operator's (or api-key, anonymous)"),
            param("credential", "query", "only entries made with this credential (token:<id>, session, api-key)"),
            param("action", "query", "only this action (operator.add, command.enqueue, ...)"),
            param("object", "query", "only entries naming this id"),
            param("since", "query", "only entries at or after this RFC 3339 time"),
            param("until", "query", "only entries before this RFC 3339 time"),
            ...paging,
          ],
        },
      ),
    },
  };
  return { schemas, paths };
}
