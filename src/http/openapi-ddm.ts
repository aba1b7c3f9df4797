// The OpenAPI description of the Declarative Device Management routes
// (http/ddm-routes.ts), merged into http/openapi.ts. KMFDDM's routes keep
// KMFDDM's shapes (Apple's PascalCase declarations, KMFDDM's status keys);
// /v1/set-compliance is Orchard's own, in snake_case.

type Schema = Record<string, unknown>;

/** openapi.ts's builders, handed in (importing them here would be a cycle). */
export interface OpenApiBuilders {
  ref(name: string): Schema;
  object(properties: Record<string, Schema>, o?: { optional?: string[]; description?: string }): Schema;
  param(name: string, where: "path" | "query", description: string, schema?: Schema): unknown;
  op(tag: string, summary: string, responses: Record<string, unknown>, extra?: Record<string, unknown>): unknown;
  ok(name: string, description?: string): unknown;
  error(description: string): unknown;
  json(schema: Schema): unknown;
}

const str: Schema = { type: "string" };
const bool: Schema = { type: "boolean" };
const count: Schema = { type: "integer", minimum: 0 };
const arrayOf = (items: Schema): Schema => ({ type: "array", items });
/** KMFDDM's per-enrollment maps: `{ "<enrollment id>": [ ... ] }`. */
const byEnrollment = (item: Schema): Schema => ({ type: "object", additionalProperties: arrayOf(item) });

export function ddmOpenApi(b: OpenApiBuilders): { schemas: Record<string, Schema>; paths: Record<string, Record<string, unknown>> } {
  const { ref, object, param, op, ok, error, json } = b;
  const schemas: Record<string, Schema> = {
    DdmNameList: { ...arrayOf(str), description: "declaration identifiers or set names, sorted" },
    DdmDeclaration: object(
      {
        Type: { ...str, description: "com.apple.activation.*, com.apple.configuration.*, com.apple.asset.* or com.apple.management.*" },
        Identifier: str,
        Payload: { type: "object" },
        ServerToken: { ...str, description: "set by Orchard from the content (ignored when given)" },
      },
      { optional: ["ServerToken"], description: "an Apple declaration (KMFDDM's shape)" },
    ),
    DdmDeclarationStatusMap: byEnrollment(
      object(
        {
          identifier: str,
          active: bool,
          valid: { ...str, description: "valid, invalid or unknown, as the device reported" },
          "server-token": str,
          current: { ...bool, description: "the reported server-token is the declaration's current one" },
          status_received: ref("Time"),
          reasons: { type: "array", description: "the device's reasons, as sent" },
          status_id: str,
        },
        { optional: ["reasons"] },
      ),
    ),
    DdmStatusErrorMap: byEnrollment(
      object({
        path: { ...str, examples: [".StatusItems.management.declarations.configurations"] },
        error: { type: "object", description: "the error (or invalid declaration's status) as the device reported it" },
        timestamp: ref("Time"),
        status_id: str,
      }),
    ),
    DdmStatusValueMap: byEnrollment(
      object({
        path: { ...str, examples: [".StatusItems.device.operating-system.version"] },
        value: { ...str, description: "a string as reported; any other value as JSON text" },
        timestamp: ref("Time"),
        status_id: str,
      }),
    ),
    DdmBulkAssign: {
      description: 'exactly one of "ids" and "platform"',
      type: "object",
      additionalProperties: false,
      properties: {
        ids: { ...arrayOf(str), minItems: 1, maxItems: 100000, description: "enrollment ids (device or user channels); repeats dropped" },
        platform: {
          enum: ["macOS", "iOS", "iPadOS", "tvOS", "watchOS", "visionOS"],
          description: "every device channel (type Device) of this platform enrolled now; devices enrolling later are not included",
        },
      },
      oneOf: [{ required: ["ids"] }, { required: ["platform"] }],
    },
    DdmBulkAssignResult: object(
      {
        set: str,
        platform: str,
        enrollments: { ...count, description: "the enrollments named (repeats dropped), or the platform's device channels found" },
        changed: { ...count, description: "those whose sets changed; each syncs once (unless nonotify)" },
      },
      { optional: ["platform"] },
    ),
    DeclarationCheck: object(
      {
        valid: { ...bool, description: "PUT /v1/declarations would store it" },
        errors: arrayOf(object({ path: { ...str, description: "a JSON path into the declaration; empty for the whole" }, message: str })),
        warnings: arrayOf(str),
      },
      { description: "Orchard's own: what PUT /v1/declarations would say of a declaration, nothing stored" },
    ),
    SetCompliance: object({
      set: str,
      enrollments: { ...count, description: "how many enrollments hold the set" },
      declarations: arrayOf(
        object({
          identifier: str,
          server_token: { ...str, description: "the declaration's current ServerToken" },
          compliant: { ...count, description: "enrollments reporting this token active and valid" },
          failing: { ...count, description: "enrollments reporting this token, not active or not valid" },
          pending: { ...count, description: "enrollments that have not reported this token yet" },
        }),
      ),
    }),
  };

  const DECLARATION_ID = param("id", "path", "a declaration's Identifier");
  const SET = param("id", "path", "a set's name");
  const ENROLLMENT = param("id", "path", "an enrollment id");
  const ENROLLMENTS = param("id", "path", "enrollment ids, comma-separated");
  const NONOTIFY = param("nonotify", "query", "1: change without syncing the enrollments it reaches");
  const changed = {
    "204": { description: "changed; the enrollments it reaches sync (unless nonotify)" },
    "304": { description: "nothing changed" },
  };
  const tag = "ddm";
  const names = (summary: string, parameters: unknown[] = []) =>
    op(tag, summary, { "200": ok("DdmNameList") }, parameters.length ? { parameters } : {});

  const paths: Record<string, Record<string, unknown>> = {
    "/v1/declarations": {
      get: names("Declaration identifiers (KMFDDM)"),
      put: op(
        tag,
        "Store a declaration (KMFDDM); its ServerToken is a hash of its content",
        {
          "204": {
            description:
              "stored; the enrollments it reaches sync (unless nonotify). Header orchard-outcome: created or changed; orchard-warning: each warning (a Type newer than Apple's schema, an activation naming declarations not stored)",
          },
          "304": { description: "the same content was stored already (header orchard-outcome: unchanged)" },
          "400": error("not a declaration, or not valid (code invalid_declaration)"),
        },
        { parameters: [NONOTIFY], requestBody: { required: true, content: json(ref("DdmDeclaration")) } },
      ),
    },
    "/v1/declarations/validate": {
      post: op(
        tag,
        "Check a declaration as PUT would (its keys, its Type, Apple's schema) without storing it (Orchard's own)",
        { "200": ok("DeclarationCheck"), "400": error("the body is not a JSON object (code invalid_json)") },
        { requestBody: { required: true, content: json({ type: "object" }) } },
      ),
    },
    "/v1/declarations/{id}": {
      get: op(
        tag,
        "A declaration with its ServerToken (KMFDDM)",
        { "200": ok("DdmDeclaration"), "404": error("no such declaration") },
        { parameters: [DECLARATION_ID] },
      ),
      delete: op(
        tag,
        "Delete a declaration no set holds (KMFDDM)",
        {
          "204": { description: "deleted" },
          "304": { description: "there was none" },
          "409": error("a set holds it (code declaration_in_use)"),
        },
        { parameters: [DECLARATION_ID] },
      ),
    },
    "/v1/declarations/{id}/touch": {
      post: op(
        tag,
        "Give a declaration a new ServerToken without changing it (KMFDDM)",
        { "204": { description: "touched; the enrollments it reaches sync (unless nonotify)" }, "404": error("no such declaration") },
        { parameters: [DECLARATION_ID, NONOTIFY] },
      ),
    },
    "/v1/sets": { get: names("Set names (KMFDDM)") },
    "/v1/set-declarations/{id}": {
      get: names("A set's declarations (KMFDDM)", [SET]),
      put: op(tag, "Put a declaration in a set (KMFDDM)", changed, {
        parameters: [SET, param("declaration", "query", "the declaration's Identifier"), NONOTIFY],
      }),
      delete: op(tag, "Take a declaration out of a set (KMFDDM)", changed, {
        parameters: [SET, param("declaration", "query", "the declaration's Identifier"), NONOTIFY],
      }),
    },
    "/v1/enrollment-sets/{id}": {
      get: names("An enrollment's sets (KMFDDM)", [ENROLLMENT]),
      put: op(
        tag,
        "Assign a set to an enrollment (KMFDDM); header orchard-warning when the set holds no declarations, and when the id is no enrollment (assigned all the same)",
        changed,
        {
          parameters: [ENROLLMENT, param("set", "query", "the set's name"), NONOTIFY],
        },
      ),
      delete: op(tag, "Remove a set from an enrollment (KMFDDM)", changed, {
        parameters: [ENROLLMENT, param("set", "query", "the set's name"), NONOTIFY],
      }),
    },
    "/v1/enrollment-sets-all/{id}": {
      delete: op(tag, "Remove every set from an enrollment (KMFDDM)", changed, { parameters: [ENROLLMENT, NONOTIFY] }),
    },
    "/v1/declaration-sets/{id}": { get: names("The sets holding a declaration (KMFDDM)", [DECLARATION_ID]) },
    "/v1/declaration-status/{id}": {
      get: op(
        tag,
        "What enrollments last reported of their declarations (KMFDDM)",
        { "200": ok("DdmDeclarationStatusMap") },
        { parameters: [ENROLLMENTS] },
      ),
    },
    "/v1/status-errors/{id}": {
      get: op(tag, "Errors enrollments reported, newest first (KMFDDM)", { "200": ok("DdmStatusErrorMap") }, { parameters: [ENROLLMENTS] }),
    },
    "/v1/status-values/{id}": {
      get: op(
        tag,
        "Status values enrollments reported, by path (KMFDDM)",
        { "200": ok("DdmStatusValueMap") },
        {
          parameters: [ENROLLMENTS, param("prefix", "query", "only paths starting so; % matches any run, _ one character (KMFDDM)")],
        },
      ),
    },
    "/v1/status-report/{id}": {
      get: op(
        tag,
        "A raw status report as the enrollment sent it (KMFDDM); headers X-Status-Report-ID, X-Status-Report-Index, Last-Modified",
        { "200": { description: "the report", content: json({ type: "object" }) }, "404": error("no such report") },
        {
          parameters: [
            ENROLLMENT,
            param("index", "query", "0 the newest (default), 1 the one before, ...", { type: "string", pattern: "^[0-9]+$" }),
            param("status_id", "query", "the report's status id"),
          ],
        },
      ),
    },
    "/v1/notify": {
      post: op(
        tag,
        "Sync enrollments: by id, by set, or through their sets by declaration (KMFDDM); repeat a parameter for several",
        { "204": { description: "the enrollments are due for a sync" } },
        {
          parameters: [
            param("id", "query", "an enrollment id"),
            param("set", "query", "a set's name"),
            param("declaration", "query", "a declaration's Identifier"),
          ],
        },
      ),
    },
    "/v1/ddm/sets/{set}/enrollments": Object.fromEntries(
      (["post", "delete"] as const).map((method) => [
        method,
        op(
          tag,
          method === "post"
            ? "Assign a set to many enrollments: by id, or every device channel of a platform (Orchard's own; one chunk per transaction); header orchard-warning when the set holds no declarations, and for ids that are no enrollment (assigned all the same: how many, the first three)"
            : "Take a set from many enrollments: by id, or every device channel of a platform (Orchard's own)",
          { "200": ok("DdmBulkAssignResult"), "400": error("neither or both of ids and platform, a bad id, or too many ids") },
          {
            parameters: [param("set", "path", "the set's name"), NONOTIFY],
            requestBody: { required: true, content: json(ref("DdmBulkAssign")) },
          },
        ),
      ]),
    ),
    "/v1/set-compliance/{set}": {
      get: op(
        tag,
        "Per declaration of a set: how many of its enrollments report it active and valid, failing, or not yet",
        { "200": ok("SetCompliance") },
        {
          parameters: [param("set", "path", "the set's name")],
        },
      ),
    },
  };
  return { schemas, paths };
}
