// The OpenAPI 3.1 description of every route Orchard's Fastify app serves,
// served at GET /v1/openapi.json. The schemas under components are the
// shapes of http/wire.ts written as JSON Schema (2020-12, as OpenAPI 3.1
// uses). test/openapi.test.ts keeps this true: every registered route is
// here and every route here is registered, and real answers validate against
// their schemas (additionalProperties: false, so a new key must be added here).
// The device endpoints (check-in, server URL) are plain node:http, not part
// of this API; they speak Apple's MDM protocol.

import { changesOwnDdm } from "./ddm-forwarded.ts";
import { ERROR_CODES } from "../errors.ts";
import { ddmOpenApi } from "./openapi-ddm.ts";
import { updatesOpenApi } from "./openapi-updates.ts";
import { operatorsOpenApi } from "./openapi-operators.ts";
import { inventoryOpenApi } from "./openapi-inventory.ts";
import { VERSION } from "../version.ts";
import { PLATFORMS } from "../protocol/platform.ts";

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const str: Schema = { type: "string" };
const nullableStr: Schema = { type: ["string", "null"] };
const int: Schema = { type: "integer", minimum: 0 };
const bool: Schema = { type: "boolean" };
const time: Schema = ref("Time");
const nullableTime: Schema = { anyOf: [ref("Time"), { type: "null" }] };
const arrayOf = (items: Schema): Schema => ({ type: "array", items });

/** A network user's properties, as GET answers them (never a digest). */
const USER: Record<string, Schema> = {
  short_name: str,
  guid: nullableStr,
  full_name: nullableStr,
  state: { type: "string", enum: ["managed", "declined"] },
  digests: arrayOf(object({ realm: str, algorithm: { type: "string", enum: ["MD5", "SHA-256"] } })),
  created_at: time,
  updated_at: time,
};

/** An object with exactly these properties, all present (nullable ones are null, not absent). */
function object(properties: Record<string, Schema>, o: { optional?: string[]; description?: string } = {}): Schema {
  const optional = new Set(o.optional ?? []);
  return {
    type: "object",
    ...(o.description ? { description: o.description } : {}),
    properties,
    required: Object.keys(properties).filter((k) => !optional.has(k)),
    additionalProperties: false,
  };
}

/** A cursor-paged list: `{ <key>: [...], next_cursor }`. */
function page(key: string, item: string): Schema {
  const next_cursor = { ...nullableStr, description: "the cursor of the next page; null on the last" };
  return object({ [key]: arrayOf(ref(item)), next_cursor });
}

const ENROLLMENT_TYPES = ["Device", "User", "SharediPadUser", "UserEnrollmentDevice", "UserEnrollmentUser"];
const QUEUE_STATUSES = ["Queued", "Discarded", "Acknowledged", "Error", "CommandFormatError", "NotNow"];

const schemas: Record<string, Schema> = {
  Time: {
    type: "string",
    format: "date-time",
    pattern: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$",
    description: "an RFC 3339 UTC time with milliseconds",
    examples: ["2026-12-03T12:00:00.000Z"],
  },
  Error: object(
    {
      error: { ...str, description: "what went wrong, for people; may be reworded" },
      code: { type: "string", enum: [...ERROR_CODES], description: "stable and machine-readable: never renamed or reused" },
    },
    { description: "every API error (any 4xx or 5xx under /v1)" },
  ),
  IdResult: object(
    {
      push_result: { ...str, description: "the apns-id of the push" },
      push_error: str,
      command_error: str,
    },
    { optional: ["push_result", "push_error", "command_error"], description: "one id's outcome (NanoMDM)" },
  ),
  ApiResult: object(
    {
      status: { type: "object", additionalProperties: ref("IdResult"), description: "per enrollment id" },
      no_push: bool,
      push_error: str,
      command_error: str,
      command_uuid: str,
      request_type: str,
      pushed: { ...int, description: 'a push to all ({"all": true}): channels pushed' },
      failed: { ...int, description: "a push to all: channels not pushed (status lists the first 1,000)" },
      truncated: { ...bool, description: "a push to all: more failed than status lists" },
    },
    {
      optional: ["status", "no_push", "push_error", "command_error", "command_uuid", "request_type", "pushed", "failed", "truncated"],
      description: "NanoMDM's APIResult; a push to all adds counts, and its status holds only failures",
    },
  ),
  PushCertStored: object({ topic: str, not_after: time }, { description: "NanoMDM's answer to PUT /v1/pushcert" }),
  Enrollment: object({
    id: { ...str, description: "the device's UDID, or UDID:UserID for a user channel (NanoMDM's ids)" },
    device_id: str,
    type: { type: "string", enum: ENROLLMENT_TYPES },
    user_id: nullableStr,
    user_short_name: nullableStr,
    user_long_name: nullableStr,
    enabled: bool,
    topic: str,
    push_token: str,
    push_magic: str,
    token_update_count: int,
    awaiting_configuration: bool,
    serial_number: nullableStr,
    model: nullableStr,
    model_name: nullableStr,
    product_name: nullableStr,
    platform: { anyOf: [{ type: "string", enum: [...PLATFORMS] }, { type: "null" }], description: "read from product_name or model_name" },
    device_name: nullableStr,
    os_version: nullableStr,
    build_version: nullableStr,
    created_at: time,
    updated_at: time,
    last_seen_at: nullableTime,
  }),
  EnrollmentPage: page("enrollments", "Enrollment"),
  QueuedCommand: object({
    command_uuid: str,
    request_type: str,
    status: { type: "string", enum: QUEUE_STATUSES },
    not_now_count: int,
    created_at: time,
    updated_at: time,
  }),
  Queue: object({ enrollment_id: str, commands: arrayOf(ref("QueuedCommand")) }),
  CommandHistoryEntry: object({
    command_uuid: str,
    request_type: str,
    status: { type: "string", enum: QUEUE_STATUSES },
    not_now_count: int,
    created_at: time,
    updated_at: time,
    active: { ...bool, description: "still in the queue (Queued, or NotNow to be sent again)" },
  }),
  CommandHistoryPage: page("commands", "CommandHistoryEntry"),
  Fleet: object({
    enrollments: arrayOf(
      object({
        type: { type: "string", enum: ENROLLMENT_TYPES },
        platform: { type: ["string", "null"], enum: [...PLATFORMS, null] },
        count: int,
      }),
    ),
    not_seen: arrayOf(
      object(
        { days: int, since: time, count: int },
        { description: "enabled device channels not seen since `since` (days ago), or never: GET /v1/enrollments?seen_before=" },
      ),
    ),
    os_versions: arrayOf(
      object(
        { platform: { type: ["string", "null"], enum: [...PLATFORMS, null] }, os_version: nullableStr, count: int },
        { description: "device channels by the version each last reported (the inventory's, as GET /v1/inventory?os_version= finds it)" },
      ),
    ),
  }),
  QueueCleared: object({ removed: { ...int, description: "queued commands removed" } }),
  CommandResult: object({
    enrollment_id: str,
    status: { type: "string", enum: QUEUE_STATUSES },
    active: { ...bool, description: "still to be sent (queued, or NotNow)" },
    not_now_count: int,
    updated_at: time,
    result: { type: ["object", "null"], description: "the device's latest report as JSON (dates as RFC 3339, data as base64)" },
  }),
  Command: object({ command_uuid: str, request_type: str, created_at: time, results: arrayOf(ref("CommandResult")) }),
  Event: object({
    id: { type: "integer" },
    at: time,
    type: { ...str, description: "e.g. enrollment.enrolled, push.sent, userauth.token_refused" },
    enrollment_id: nullableStr,
    detail: { type: ["object", "null"], description: "facts about the event, snake_case keys; never a secret" },
  }),
  EventPage: page("events", "Event"),
  EventTypeList: object({ event_types: arrayOf(object({ type: str, about: str })) }),
  WebhookStatus: object({
    enabled: { ...bool, description: "false without --webhook-url on the process that answered" },
    url: { ...nullableStr, description: "--webhook-url without credentials or query" },
    topics: arrayOf(str),
    backlog: { ...int, description: "events not delivered yet (every process's)" },
    retrying: { ...int, description: "of them, those that failed at least once" },
    oldest_created_at: nullableTime,
    oldest_age_seconds: { type: "number", minimum: 0 },
    delivered: int,
    failed: { ...int, description: "failed attempts, each retried" },
    dropped: { ...int, description: "events dropped past --webhook-max-backlog or --webhook-max-age" },
    last_delivered_at: nullableTime,
    last_failure: {
      anyOf: [
        object({ at: time, status: { type: ["integer", "null"] }, error: str, event_id: nullableStr, topic: nullableStr }),
        { type: "null" },
      ],
    },
  }),
  WebhookRetried: object({ retried: int }),
  RebindHold: object({
    cert_fingerprint: str,
    held_at: time,
    attempts: int,
    pushed_at: nullableTime,
    approved_at: nullableTime,
  }),
  BulkEnqueueBody: object(
    {
      ids: { ...arrayOf(str), minItems: 1, maxItems: 10_000 },
      command: { ...str, description: "the command plist as text" },
      command_base64: { ...str, description: "or its bytes in base64 (a binary plist)" },
    },
    { optional: ["command", "command_base64"] },
  ),
  BulkPushBody: {
    anyOf: [
      object({ ids: { ...arrayOf(str), minItems: 1, maxItems: 10_000 } }),
      object({ all: { type: "boolean", const: true, description: "every enabled channel, read from the store a page at a time" } }),
    ],
  },
  RebindSilence: object(
    {
      state: { type: "string", enum: ["live", "push_due", "grace", "ready"] },
      pushed_at: time,
      until: time,
    },
    { optional: ["pushed_at", "until"] },
  ),
  HeldCertificate: object({ cert_fingerprint: str, first_held_at: time, last_held_at: time, attempts: int }),
  RebindState: object({
    device_id: str,
    cert_fingerprint: str,
    last_contact_at: time,
    silence: ref("RebindSilence"),
    held: { anyOf: [ref("RebindHold"), { type: "null" }] },
    held_certificates: arrayOf(ref("HeldCertificate")),
  }),
  RebindApproved: object({ device_id: str, cert_fingerprint: str, approved: ref("RebindHold") }),
  RebindBody: object({ fingerprint: { ...str, description: "SHA-256 of the certificate to approve, 64 hex digits (colons allowed)" } }),
  UserPutBody: object(
    {
      password: { type: "string", minLength: 1, maxLength: 1024, description: "stored only as digests for the server's realm" },
      guid: { type: ["string", "null"], description: "the user's GUID (compared case-insensitively); null clears it" },
      full_name: { type: ["string", "null"], minLength: 1, maxLength: 256 },
      state: { type: "string", enum: ["managed", "declined"] },
    },
    { optional: ["password", "guid", "full_name", "state"] },
  ),
  User: object(USER),
  UserSaved: object({
    ...USER,
    sessions_ended: {
      ...int,
      description: "sessions ended by this change: AuthTokens of an earlier password, or every session of a user now declined",
    },
  }),
  UserPage: page("users", "User"),
  UserRemoved: object({ removed: str, sessions_revoked: int }),
  EnrollmentRemoved: object({
    removed: str,
    device: { type: "boolean", description: "the id was a device's: it went with every channel it had" },
    channels: arrayOf(str),
    discarded_commands: arrayOf(object({ enrollment_id: str, command_uuid: str })),
  }),
  UserImport: object({
    realm: { ...str, description: "the realm whose lines were imported" },
    server_realm: str,
    created: int,
    updated: int,
    sessions_ended: { ...int, description: "AuthTokens ended because a line changed a user's password" },
    file_realms: arrayOf(object({ realm: str, lines: int })),
    other_realms: arrayOf(object({ username: str, realm: str })),
    errors: arrayOf(object({ line: int, reason: str })),
  }),
  UserSession: object({
    enrollment_id: str,
    device_id: str,
    user_id: str,
    short_name: nullableStr,
    state: { type: "string", enum: ["challenged", "authenticated", "zero-length", "declined", "revoked"] },
    challenged_at: nullableTime,
    token_issued_at: nullableTime,
    token_last_used_at: nullableTime,
    updated_at: time,
  }),
  UserSessionPage: page("sessions", "UserSession"),
  PushCert: object({ topic: str, not_before: time, not_after: time, fingerprint: str, created_at: time, updated_at: time }),
  PushCertList: object({ push_certs: arrayOf(ref("PushCert")) }),
  PushCertRemoved: object({ removed: str }),
  ScepChallengeBody: object({ ttl: { ...str, description: "a duration such as 10m (1s to 30d)" } }, { optional: ["ttl"] }),
  ScepChallenge: object({ challenge: str, expires_at: time }),
  DdmAsset: object(
    {
      id: str,
      content_type: str,
      size: int,
      sha256: { type: "string", pattern: "^[0-9a-f]{64}$", description: "lowercase hex SHA-256 of the bytes" },
      reference: { ...str, description: "what a declaration writes as its Reference.DataURL: orchard:asset/<id>" },
      url: { ...nullableStr, description: "where devices download it (with their MDM identity); null without --public-url" },
      created_at: time,
      updated_at: time,
    },
    { description: "a DDM asset (docs/declarative-management.md), never its bytes" },
  ),
  DdmAssetPage: page("assets", "DdmAsset"),
  DdmProfile: object(
    {
      id: str,
      size: int,
      sha256: { type: "string", pattern: "^[0-9a-f]{64}$", description: "lowercase hex SHA-256 of the bytes" },
      signed: { ...bool, description: "CMS-signed (served as uploaded)" },
      payload_identifier: nullableStr,
      payload_display_name: nullableStr,
      reference: { ...str, description: "what a legacy declaration writes as its ProfileURL: orchard:profile/<id>" },
      url: { ...nullableStr, description: "where devices download it (with their MDM identity); null without --public-url" },
      created_at: time,
      updated_at: time,
    },
    { description: "a stored configuration profile (docs/declarative-management.md), never its bytes" },
  ),
  DdmProfilePage: page("profiles", "DdmProfile"),
  DdmFileRemoved: object({ removed: str }),
  DdmCredentialTemplate: object(
    {
      kind: { enum: ["scep"], description: "a com.apple.asset.credential.scep (the default)" },
      ca: { enum: ["orchard"], description: "the issuing CA: Orchard's credential CA (the default, the only one)" },
      subject: {
        type: "array",
        minItems: 1,
        maxItems: 16,
        items: { type: "array", items: str, minItems: 2, maxItems: 2 },
        description:
          "Apple's Subject as [attribute, value] pairs, one per RDN: C, L, ST, O, OU, CN or a dotted OID; values may hold {{udid}} and {{serial_number}}",
        examples: [
          [
            ["CN", "{{serial_number}}"],
            ["O", "Example"],
          ],
        ],
      },
      subject_alt_names: object(
        { dns_name: str, rfc822_name: str, uri: str, nt_principal_name: str },
        { optional: ["dns_name", "rfc822_name", "uri", "nt_principal_name"], description: "each with {{variables}} like the subject" },
      ),
      key_size: { enum: [2048, 4096], description: "RSA bits; default 2048" },
      key_usage: { enum: [1, 4, 5], description: "Apple's Key Usage: 1 signing, 4 encryption, 5 both (the default)" },
      extended_key_usages: { ...arrayOf(str), description: "clientAuth (the default), serverAuth, emailProtection or dotted OIDs" },
      days: { ...int, minimum: 1, maximum: 825, description: "lifetime of an issued certificate; default 365" },
    },
    {
      optional: ["kind", "ca", "subject_alt_names", "key_size", "key_usage", "extended_key_usages", "days"],
      description: "a DDM credential template (docs/declarative-management.md)",
    },
  ),
  DdmCredential: object(
    {
      name: str,
      kind: { enum: ["scep"] },
      template: ref("DdmCredentialTemplate"),
      revision: { type: "string", pattern: "^[0-9a-f]{64}$", description: "SHA-256 of the template; in the device URL" },
      reference: {
        ...str,
        description: "what a com.apple.asset.credential.scep writes as its Reference.DataURL: orchard:credential/scep/<name>",
      },
      url: {
        ...nullableStr,
        description: "where devices download their credential JSON (with their MDM identity); null without --public-url",
      },
      created_at: time,
      updated_at: time,
    },
    { description: "a DDM credential template" },
  ),
  DdmCredentialPage: page("credentials", "DdmCredential"),
  AdeServer: object({
    name: { ...str, description: "the local name of an ABM/ASM MDM server" },
    certificate_pem: { ...str, description: "the certificate to upload at ABM for this MDM server" },
    certificate_not_after: time,
    token_expiry: { ...nullableTime, description: "the server token's access_token_expiry; null before a token is uploaded" },
    token_uploaded_at: nullableTime,
    consumer_key: { ...nullableStr, description: "the token's consumer key (an identifier, not a secret)" },
    server_uuid: nullableStr,
    server_name: { ...nullableStr, description: "the MDM server's name at ABM (GET /account)" },
    org_name: nullableStr,
    phase: { type: "string", enum: ["fetch", "sync"], description: "fetch until the first full device list is in, then sync" },
    last_sync_at: nullableTime,
    last_sync_error: nullableStr,
    default_profile: { ...nullableStr, description: "the profile new devices get after a sync" },
    devices: { ...int, description: "devices assigned to this server in ABM (removed ones not counted)" },
    enrolled: { ...int, description: "of those, the ones enrolled in Orchard (by serial number)" },
    created_at: time,
    updated_at: time,
  }),
  AdeServerList: object({ servers: arrayOf(ref("AdeServer")) }),
  AdeServerBody: object(
    { common_name: { ...str, minLength: 1, maxLength: 64 }, days: { type: "integer", minimum: 1, maximum: 3650 } },
    { optional: ["common_name", "days"] },
  ),
  AdeSync: object({
    server: str,
    phase: { type: "string", enum: ["fetch", "sync"] },
    pages: int,
    fetched: { ...int, description: "devices of the full list (fetch phase)" },
    added: int,
    modified: int,
    deleted: int,
    assigned: { ...int, description: "devices given the default profile" },
    assign_failed: int,
    cursor_reset: { anyOf: [{ type: "string", enum: ["INVALID_CURSOR", "EXPIRED_CURSOR"] }, { type: "null" }] },
  }),
  AdeDevice: object({
    server: str,
    serial_number: str,
    model: nullableStr,
    description: nullableStr,
    color: nullableStr,
    asset_tag: nullableStr,
    os: nullableStr,
    device_family: nullableStr,
    profile_status: { ...nullableStr, description: "Apple's: empty, assigned, pushed or removed" },
    profile_uuid: nullableStr,
    profile_assign_time: nullableTime,
    profile_push_time: nullableTime,
    device_assigned_by: nullableStr,
    device_assigned_date: nullableTime,
    op_type: { ...nullableStr, description: "the last sync operation: added, modified or deleted" },
    op_date: nullableTime,
    removed: { ...bool, description: "ABM no longer assigns it to this server" },
    enrolled: { ...bool, description: "a device with this serial number is enrolled" },
    first_seen_at: time,
    updated_at: time,
  }),
  AdeDevicePage: page("devices", "AdeDevice"),
  AdeProfile: object({
    server: str,
    name: str,
    profile: { type: "object", description: "the DEP profile in Apple's keys, as sent to Apple" },
    profile_uuid: { ...nullableStr, description: "Apple's, once defined; null until the profile is first assigned" },
    defined_at: nullableTime,
    default: bool,
    created_at: time,
    updated_at: time,
  }),
  AdeProfileList: object({ profiles: arrayOf(ref("AdeProfile")) }),
  AdeProfileBody: {
    type: "object",
    description:
      "Apple's DEP profile keys: profile_name (default: the name), url (default: <--public-url>/ade/enroll), configuration_web_url, " +
      "is_supervised, is_mandatory, is_mdm_removable, await_device_configured, auto_advance_setup, allow_pairing, is_multi_user, " +
      "is_return_to_service, do_not_use_profile_from_backup, skip_setup_items (Apple's skip keys), anchor_certs, supervising_host_certs, " +
      "department, support_phone_number, support_email_address, language, region, org_magic",
  },
  AdeDefaultProfileBody: object({ profile: { ...nullableStr, description: "a profile's name, or null for none" } }),
  AdeAssignBody: object({ serials: { ...arrayOf(str), minItems: 1, maxItems: 1000 } }),
  AdeAssign: object({
    profile_uuid: str,
    devices: {
      type: "object",
      additionalProperties: { type: "string" },
      description: "Apple's answer per serial: SUCCESS, NOT_ACCESSIBLE, FAILED, THROTTLED",
    },
  }),
  AdeSettings: object({
    minimum_os: {
      type: "object",
      additionalProperties: ref("AdeMinimumOs"),
      description: "per platform (macos, ios, ipados): below it, a device that can update is answered 403 softwareupdate.required",
    },
    platform_sso: {
      anyOf: [object({ profile_url: str, package_manifest_url: str, auth_url: str }), { type: "null" }],
      description: "macOS 26: answer 403 com.apple.psso.required to a device that can set up Platform SSO in Setup Assistant",
    },
    initial_commands: { ...arrayOf(str), description: "command plists (XML) queued, in order, when a device awaits configuration" },
    initial_ddm_sets: { ...arrayOf(str), description: "DDM sets assigned to the device when it awaits configuration" },
    release_on_failure: { ...bool, description: "a failed initial command still sends DeviceConfigured (default true)" },
  }),
  AdeMinimumOs: object({ os_version: str, build_version: str }, { optional: ["build_version"] }),
  AdeSettingsBody: {
    type: "object",
    description:
      "AdeSettings' keys, each optional: a key left out is its default (no minimum, no Platform SSO, no initial set, release_on_failure true)",
  },
  AdeEnrollment: object({
    serial_number: str,
    server: str,
    udid: str,
    product: nullableStr,
    os_version: nullableStr,
    build_version: nullableStr,
    state: { type: "string", enum: ["profile_served", "running", "releasing", "configured", "failed"] },
    progress: { ...str, description: "in words: waiting, running step n/m, releasing, configured, failed: reason" },
    step_total: int,
    steps_done: int,
    steps_failed: int,
    release_on_failure: bool,
    error: nullableStr,
    served_at: time,
    started_at: nullableTime,
    released_at: nullableTime,
    configured_at: nullableTime,
    updated_at: time,
  }),
  AdeEnrollmentPage: page("enrollments", "AdeEnrollment"),
  Removed: object({ removed: str }),
  Health: object({ status: { type: "string", enum: ["ok", "store unavailable"] } }),
  Version: object({ version: str }),
};

const json = (schema: Schema) => ({ "application/json": { schema } });
const ok = (name: string, description = "OK") => ({ description, content: json(ref(name)) });
const error = (description: string) => ({ description, content: json(ref("Error")) });

/** The errors any /v1 route may answer. */
const COMMON_ERRORS = {
  "400": error("bad input: the reason in error, the kind in code"),
  "401": error("no credential (API key, token, session cookie), or a wrong or ended one (code unauthorized)"),
  "403": error(
    "the caller's role may not call this route, a change made with the session cookie lacks its X-CSRF-Token, or another site asked for a change (code forbidden)",
  ),
  "429": error("too many failed API key attempts from this address (code rate_limited); see Retry-After"),
  "503": error("the store is unavailable (code store_unavailable); see Retry-After"),
};
const NOT_FOUND = { "404": error("no such thing (code not_found)") };
const TOO_LARGE = { "413": error("the body is too large (code payload_too_large)") };

const param = (name: string, where: "path" | "query", description: string, schema: Schema = str) => ({
  name,
  in: where,
  required: where === "path",
  description,
  schema,
});
const IDS = param("ids", "path", "enrollment ids, comma-separated (at most 10,000)");
const PAGING = [
  param("limit", "query", "page size", { type: "integer", minimum: 1, maximum: 1000, default: 100 }),
  param("cursor", "query", "the next_cursor of the previous page"),
];
const FORCE = param(
  "force",
  "query",
  "1: accept a new topic while devices are enrolled under another, or a certificate that expires before the stored one of its topic",
  {
    type: "string",
    enum: ["1", "true", "yes"],
  },
);
const ID = param("id", "path", "enrollment id");
const ADE_SERVER = param("name", "path", "the ABM server's local name");
const CREDENTIAL_NAME = param("name", "path", "the template's name: 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'");
const ADE_PROFILE = param("profile", "path", "the DEP profile's local name");
const ADE_SERIAL = param("serial", "path", "the device's serial number");
const SHORT_NAME = param("short_name", "path", "the user's short name");
const DEVICE_ID = param("id", "path", "device id (UDID)");
const PASSPHRASE = {
  name: "X-Passphrase",
  in: "header",
  required: false,
  description: "the PKCS#12's or encrypted key's passphrase",
  schema: str,
};
/** A request body of this media type: a string (a plist, PEM, htdigest text) or binary. */
const body = (type: string, description?: string, binary = false) => ({
  [type]: { schema: { type: "string", ...(binary ? { contentEncoding: "binary" } : {}), ...(description ? { description } : {}) } },
});

interface Operation {
  summary: string;
  tags: string[];
  parameters?: unknown[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
  security?: unknown[];
}

const op = (tag: string, summary: string, responses: Record<string, unknown>, extra: Partial<Operation> = {}): Operation => ({
  summary,
  tags: [tag],
  ...extra,
  responses: { ...responses, ...COMMON_ERRORS },
});

const paths: Record<string, Record<string, Operation>> = {
  "/v1/enqueue/{ids}": {
    put: op(
      "commands",
      "Queue a command plist for enrollments and push them (NanoMDM). Header orchard-warning: a RequestType Apple's schema does not know (queued all the same)",
      enqueueResponses(),
      {
        parameters: [IDS, param("nopush", "query", "queue without pushing")],
        requestBody: { required: true, content: body("application/xml", "a command plist (CommandUUID generated if absent)") },
      },
    ),
  },
  "/v1/enqueue": {
    post: op(
      "commands",
      "Queue a command for a long list of enrollments, the ids in the body (the path holds about 1,500). Header orchard-warning: as PUT /v1/enqueue/{ids}",
      enqueueResponses(),
      {
        parameters: [param("nopush", "query", "queue without pushing")],
        requestBody: { required: true, content: json(ref("BulkEnqueueBody")) },
      },
    ),
  },
  "/v1/push": {
    post: op("commands", "Push a long list of enrollments (the ids in the body), or every enabled one", pushResponses(), {
      requestBody: { required: true, content: json(ref("BulkPushBody")) },
    }),
  },
  "/v1/push/{ids}": {
    get: op("commands", "Push enrollments so they poll for commands (NanoMDM)", pushResponses(), { parameters: [IDS] }),
    post: op("commands", "Push enrollments so they poll for commands (NanoMDM)", pushResponses(), { parameters: [IDS] }),
  },
  "/v1/enrollments": {
    get: op(
      "enrollments",
      "List enrollments, ordered by id",
      { "200": ok("EnrollmentPage") },
      {
        parameters: [
          param("type", "query", "only this enrollment type, or these (comma-separated: Device,UserEnrollmentDevice)", {
            type: "string",
            pattern: `^(${ENROLLMENT_TYPES.join("|")})(,(${ENROLLMENT_TYPES.join("|")}))*$`,
          }),
          param("enabled", "query", "true or false"),
          param("q", "query", "only channels whose serial number, id, device name or user names contain this text (any case; a scan)"),
          param("seen_before", "query", "only channels not seen since this RFC 3339 time, or never"),
          param("serial", "query", "only this serial number"),
          param("device", "query", "only the channels of this device id (UDID)"),
          param("platform", "query", "only the channels of devices of this platform", { type: "string", enum: [...PLATFORMS] }),
          ...PAGING,
        ],
      },
    ),
  },
  "/v1/enrollments/{id}": {
    get: op("enrollments", "One enrollment", { "200": ok("Enrollment"), ...NOT_FOUND }, { parameters: [ID] }),
    delete: op(
      "enrollments",
      "Remove a device with all its channels, or one user channel, and what Orchard keeps for them; events stay",
      { "200": ok("EnrollmentRemoved"), ...NOT_FOUND },
      { parameters: [ID] },
    ),
  },
  "/v1/enrollments/{id}/rebind": {
    get: op(
      "enrollments",
      "A device's bound identity certificate and any certificate held for approval",
      { "200": ok("RebindState"), ...NOT_FOUND },
      { parameters: [DEVICE_ID] },
    ),
    post: op(
      "enrollments",
      "Approve a new identity certificate for a device, named by its fingerprint",
      {
        "200": ok("RebindApproved"),
        "400": error("no fingerprint named, or not 64 hex digits (code invalid_fingerprint)"),
        ...NOT_FOUND,
        "409": error("the device is bound to it already (code rebind_already_bound)"),
      },
      { parameters: [DEVICE_ID], requestBody: { required: true, content: json(ref("RebindBody")) } },
    ),
  },
  "/v1/enrollments/{id}/commands": {
    get: op(
      "commands",
      "An enrollment's commands, queued and answered, newest first (404 for an id that names no enrollment: ids are case-sensitive)",
      { "200": ok("CommandHistoryPage"), ...NOT_FOUND },
      { parameters: [ID, ...PAGING] },
    ),
  },
  "/v1/fleet": {
    get: op("enrollments", "The fleet at a glance: channels by type and platform, devices not seen lately, OS versions", {
      "200": ok("Fleet"),
    }),
  },
  "/v1/queue/{id}": {
    get: op("commands", "An enrollment's queued and answered commands", { "200": ok("Queue"), ...NOT_FOUND }, { parameters: [ID] }),
    delete: op(
      "commands",
      "Remove the queued commands of enrollments. Header orchard-warning: each id that names no enrollment (404 when none does)",
      { "200": ok("QueueCleared"), ...NOT_FOUND },
      {
        parameters: [param("id", "path", "enrollment ids, comma-separated")],
      },
    ),
  },
  "/v1/commands/{uuid}": {
    get: op(
      "commands",
      "A command and each enrollment's answer",
      { "200": ok("Command"), ...NOT_FOUND },
      {
        parameters: [param("uuid", "path", "CommandUUID"), param("enrollment", "query", "only this enrollment's answer")],
      },
    ),
  },
  "/v1/events": {
    get: op(
      "events",
      "The event log, oldest first (or newest first)",
      { "200": ok("EventPage") },
      {
        parameters: [
          param("enrollment", "query", "only this enrollment's events"),
          param("type", "query", "only events of this type (one of GET /v1/event-types; another is a 400)"),
          param("since", "query", "only events at or after this RFC 3339 time"),
          param("order", "query", "asc (oldest first, the default) or desc", { type: "string", enum: ["asc", "desc"] }),
          ...PAGING,
        ],
      },
    ),
  },
  "/v1/event-types": {
    get: op("events", "The catalogue of the event types Orchard records", { "200": ok("EventTypeList") }),
  },
  "/v1/webhook": {
    get: op("events", "The webhook's backlog, deliveries and last failure", { "200": ok("WebhookStatus") }),
  },
  "/v1/webhook/retry": {
    post: op("events", "Retry now every event waiting for a retry", { "200": ok("WebhookRetried") }),
  },
  "/v1/users": {
    get: op("users", "List network users, ordered by short name", { "200": ok("UserPage") }, { parameters: PAGING }),
  },
  "/v1/users/{short_name}": {
    get: op("users", "One network user (never a digest)", { "200": ok("User"), ...NOT_FOUND }, { parameters: [SHORT_NAME] }),
    put: op(
      "users",
      "Create or change a network user",
      {
        "200": ok("UserSaved", "changed"),
        "201": ok("UserSaved", "created"),
        "409": error("another user has this guid (code guid_in_use)"),
        ...TOO_LARGE,
      },
      { parameters: [SHORT_NAME], requestBody: { required: true, content: json(ref("UserPutBody")) } },
    ),
    delete: op(
      "users",
      "Remove a network user and revoke their AuthTokens",
      { "200": ok("UserRemoved"), ...NOT_FOUND },
      {
        parameters: [SHORT_NAME],
      },
    ),
  },
  "/v1/users/import": {
    post: op(
      "users",
      "Import an htdigest file's MD5 digests",
      { "200": ok("UserImport"), ...TOO_LARGE },
      {
        parameters: [param("realm", "query", "import this realm's lines (default: the server's --digest-realm)")],
        requestBody: { required: true, content: body("text/plain", "htdigest lines user:realm:HA1") },
      },
    ),
  },
  "/v1/user-sessions": {
    get: op(
      "users",
      "Network users' logins (never a token)",
      { "200": ok("UserSessionPage") },
      {
        parameters: [param("device", "query", "only this device's sessions"), ...PAGING],
      },
    ),
  },
  "/v1/pushcert": {
    put: op(
      "push",
      "Upload a push certificate with its key (NanoMDM): PEM certificate then key, or PKCS#12",
      {
        "200": ok("PushCertStored"),
        "409": error(
          "a new topic while devices are enrolled under another (code push_topic_change), or a certificate that expires before the stored one of its topic (code conflict)",
        ),
        ...TOO_LARGE,
      },
      {
        parameters: [FORCE, PASSPHRASE],
        requestBody: { required: true, content: { ...body("application/x-pem-file"), ...body("application/x-pkcs12", undefined, true) } },
      },
    ),
    get: op("push", "The push certificates (never a key)", { "200": ok("PushCertList") }),
  },
  "/v1/pushcert/{topic}": {
    delete: op(
      "push",
      "Remove a topic's push certificate",
      { "200": ok("PushCertRemoved"), ...NOT_FOUND },
      {
        parameters: [param("topic", "path", "the push topic")],
      },
    ),
  },
  "/v1/scep/challenges": {
    post: op(
      "enrollment",
      "A new single-use SCEP challenge password",
      { "201": ok("ScepChallenge", "created") },
      {
        requestBody: { required: false, content: json(ref("ScepChallengeBody")) },
      },
    ),
  },
  ...ddmFilePaths("assets", "asset", "DdmAsset", {
    put: body("*/*", "the asset's bytes; their Content-Type is recorded (application/octet-stream without one)", true),
  }),
  ...ddmFilePaths("profiles", "profile", "DdmProfile", {
    put: {
      ...body("application/x-apple-aspen-config", "a .mobileconfig: an XML plist, or CMS-signed", true),
    },
  }),
  "/v1/ddm/credentials": {
    get: op("ddm", "List the DDM credential templates, ordered by name", { "200": ok("DdmCredentialPage") }, { parameters: PAGING }),
  },
  "/v1/ddm/credentials/{name}": {
    put: op(
      "ddm",
      "Store or replace a credential template; the declarations naming it change in the same transaction",
      {
        "200": ok("DdmCredential", "replaced"),
        "201": ok("DdmCredential", "created"),
        "400": error("bad input; a template that breaks a rule (code invalid_credential)"),
      },
      { parameters: [CREDENTIAL_NAME], requestBody: { required: true, content: json(ref("DdmCredentialTemplate")) } },
    ),
    get: op("ddm", "One credential template", { "200": ok("DdmCredential"), ...NOT_FOUND }, { parameters: [CREDENTIAL_NAME] }),
    delete: op(
      "ddm",
      "Remove a credential template",
      { "200": ok("DdmFileRemoved"), ...NOT_FOUND, "409": error("a declaration still names it (code asset_in_use)") },
      { parameters: [CREDENTIAL_NAME] },
    ),
  },
  "/v1/ddm/credential-ca": {
    get: op("ddm", "The credential CA's certificate, PEM (for the services that check the credentials)", {
      "200": { description: "the certificate", content: { "application/x-pem-file": { schema: str } } },
    }),
  },
  "/v1/ade/servers": {
    get: op("ade", "The ABM servers (never a key or a token's secret)", { "200": ok("AdeServerList") }),
  },
  "/v1/ade/servers/{name}": {
    put: op(
      "ade",
      "Add an ABM server: a new key pair and the certificate to upload at ABM",
      { "201": ok("AdeServer", "created"), "409": error("an ABM server of this name exists (code conflict)") },
      { parameters: [ADE_SERVER], requestBody: { required: false, content: json(ref("AdeServerBody")) } },
    ),
    get: op("ade", "One ABM server", { "200": ok("AdeServer"), ...NOT_FOUND }, { parameters: [ADE_SERVER] }),
    delete: op(
      "ade",
      "Remove an ABM server, its inventory and its profiles (nothing changes at Apple)",
      { "200": ok("Removed"), ...NOT_FOUND },
      { parameters: [ADE_SERVER] },
    ),
  },
  "/v1/ade/servers/{name}/token": {
    put: op(
      "ade",
      "Upload the server token (.p7m) ABM gave for this server's certificate",
      {
        "200": ok("AdeServer"),
        "400": error("not a token for this server's key, or no credentials in it (code invalid_ade_token)"),
        ...NOT_FOUND,
        "409": error("a token of another ABM MDM server (code ade_token_change; force=1 replaces it)"),
        ...TOO_LARGE,
      },
      {
        parameters: [ADE_SERVER, param("force", "query", "1: replace a token of another ABM MDM server")],
        requestBody: { required: true, content: body("application/pkcs7-mime", "the .p7m as downloaded (S/MIME text)") },
      },
    ),
  },
  "/v1/ade/servers/{name}/sync": {
    post: op(
      "ade",
      "Sync the server's device list now (the first full fetch, or the changes since the stored cursor), then assign the default profile",
      {
        "200": ok("AdeSync"),
        ...NOT_FOUND,
        "409": error("no token yet (code ade_no_token), or a sync of this server is running (code ade_sync_running)"),
        "502": error("Apple's API failed (code ade_upstream): the cursor of the pages stored is kept"),
      },
      { parameters: [ADE_SERVER] },
    ),
  },
  "/v1/ade/servers/{name}/default-profile": {
    put: op(
      "ade",
      "Choose the profile new devices of this server get after each sync",
      { "200": ok("AdeServer"), ...NOT_FOUND },
      { parameters: [ADE_SERVER], requestBody: { required: true, content: json(ref("AdeDefaultProfileBody")) } },
    ),
  },
  "/v1/ade/servers/{name}/profiles": {
    get: op("ade", "The server's DEP profiles", { "200": ok("AdeProfileList"), ...NOT_FOUND }, { parameters: [ADE_SERVER] }),
  },
  "/v1/ade/servers/{name}/profiles/{profile}": {
    put: op(
      "ade",
      "Store a DEP profile (defined at Apple when first assigned)",
      {
        "200": ok("AdeProfile", "changed"),
        "201": ok("AdeProfile", "created"),
        "400": error("a key Apple does not take, a wrong type, or an unknown skip key (code invalid_ade_profile)"),
        ...NOT_FOUND,
        ...TOO_LARGE,
      },
      {
        parameters: [ADE_SERVER, ADE_PROFILE, param("default", "query", "1: make it the server's default profile")],
        requestBody: { required: true, content: json(ref("AdeProfileBody")) },
      },
    ),
    delete: op(
      "ade",
      "Remove a DEP profile (devices keep it at Apple)",
      { "200": ok("Removed"), ...NOT_FOUND },
      { parameters: [ADE_SERVER, ADE_PROFILE] },
    ),
  },
  "/v1/ade/servers/{name}/profiles/{profile}/assign": {
    post: op(
      "ade",
      "Assign a DEP profile to devices by serial number (defining it at Apple first when needed)",
      {
        "200": ok("AdeAssign"),
        ...NOT_FOUND,
        "409": error("no token yet (code ade_no_token)"),
        "502": error("Apple's API failed (code ade_upstream)"),
      },
      { parameters: [ADE_SERVER, ADE_PROFILE], requestBody: { required: true, content: json(ref("AdeAssignBody")) } },
    ),
  },
  "/v1/ade/servers/{name}/enrollment-settings": {
    get: op("ade", "The server's enrollment settings", { "200": ok("AdeSettings"), ...NOT_FOUND }, { parameters: [ADE_SERVER] }),
    put: op(
      "ade",
      "Replace the server's enrollment settings: minimum OS, Platform SSO, the initial set before DeviceConfigured",
      {
        "200": ok(
          "AdeSettings",
          "stored; header orchard-warning: each initial command whose RequestType Apple's schema does not know, each initial DDM set that holds no declarations",
        ),
        "400": error("an unknown key, a wrong type, or a command that is not a command plist (code invalid_ade_settings)"),
        ...NOT_FOUND,
        ...TOO_LARGE,
      },
      { parameters: [ADE_SERVER], requestBody: { required: true, content: json(ref("AdeSettingsBody")) } },
    ),
  },
  "/v1/ade/enrollments": {
    get: op(
      "ade",
      "ADE devices that reached the enrollment URL, and where each stands (ordered by serial number)",
      { "200": ok("AdeEnrollmentPage") },
      {
        parameters: [
          param("server", "query", "only this ABM server's devices"),
          param("state", "query", "only this state", {
            type: "string",
            enum: ["profile_served", "running", "releasing", "configured", "failed"],
          }),
          ...PAGING,
        ],
      },
    ),
  },
  "/v1/ade/enrollments/{serial}": {
    get: op("ade", "One ADE device's progress", { "200": ok("AdeEnrollment"), ...NOT_FOUND }, { parameters: [ADE_SERIAL] }),
  },
  "/v1/ade/enrollments/{serial}/release": {
    post: op(
      "ade",
      "Send DeviceConfigured now (a device held by a failed initial set, or one an operator will not keep waiting)",
      {
        "200": ok("AdeEnrollment"),
        ...NOT_FOUND,
        "409": error("the device is releasing or configured already (code ade_release_refused)"),
      },
      { parameters: [ADE_SERIAL] },
    ),
  },
  "/v1/ade/devices": {
    get: op(
      "ade",
      "Devices seen from ABM, enrolled or not, ordered by server and serial number",
      { "200": ok("AdeDevicePage") },
      {
        parameters: [
          param("server", "query", "only this ABM server's devices"),
          param("serial", "query", "only this serial number"),
          param("profile_status", "query", "only this profile status (empty, assigned, pushed, removed)"),
          param("enrolled", "query", "true or false", { type: "string", enum: ["true", "false"] }),
          param("removed", "query", "true or false", { type: "string", enum: ["true", "false"] }),
          ...PAGING,
        ],
      },
    ),
  },
  "/v1/openapi.json": {
    get: op("meta", "This document", { "200": { description: "OpenAPI 3.1", content: json({ type: "object" }) } }),
  },
  "/ade/enroll": {
    post: {
      summary: "The ADE enrollment URL a DEP profile points at: a device's signed MachineInfo in, its enrollment profile out",
      tags: ["ade"],
      security: [],
      requestBody: {
        required: false,
        content: body(
          "application/pkcs7-signature",
          "MachineInfo (a plist) in a CMS SignedData; or empty with x-apple-aspen-deviceinfo",
          true,
        ),
      },
      parameters: [
        { name: "x-apple-aspen-deviceinfo", in: "header", required: false, description: "the signed MachineInfo, base64", schema: str },
      ],
      responses: {
        "200": {
          description: "the enrollment profile (SCEP with a single-use challenge bound to the serial number), signed with --profile-signer",
          content: body("application/x-apple-aspen-config", undefined, true),
        },
        "400": textError(
          "not a signed MachineInfo, a signature that does not verify, or (with --ade-device-ca) a signer Apple did not issue",
        ),
        "403": {
          description:
            "a serial number no ABM server assigns to Orchard (text), or Apple's JSON: softwareupdate.required (a minimum OS) or psso.required",
          content: { "text/plain": { schema: str }, ...json({ type: "object" }) },
        },
        "409": textError("no usable push certificate: upload one first"),
        "429": textError("too many refused MachineInfos from this address; see Retry-After"),
      },
    },
  },
  "/enroll": {
    get: {
      summary: "An enrollment profile (.mobileconfig) for one device",
      tags: ["enrollment"],
      security: [{ basic: [] }, { enrollmentToken: [] }],
      parameters: [
        param("identity", "query", "scep (default) or pkcs12", { type: "string", enum: ["scep", "pkcs12"] }),
        param("topic", "query", "the push topic, when there are several"),
        param("cn", "query", "the common name of the device's identity"),
      ],
      responses: {
        "200": {
          description: "the profile, signed with --profile-signer",
          content: body("application/x-apple-aspen-config", undefined, true),
        },
        "401": textError("no enrollment token or API key"),
        "400": textError("bad input, or several push topics: give topic"),
        "404": textError("no usable push certificate for the topic given"),
        "409": textError("no usable push certificate: upload one first"),
        "429": textError("too many failed attempts; see Retry-After"),
        "503": textError("the profile cannot be signed now"),
      },
    },
  },
  "/scep": {
    get: scepOperation("GetCACaps, GetCACert, or PKIOperation with the message base64 in message="),
    post: scepOperation("PKIOperation with the pkiMessage as the body"),
  },
  "/scep/credential": {
    get: scepOperation(
      "DDM credentials from the credential CA (PKCSReq with a credential JSON's challenge): GetCACaps, GetCACert, PKIOperation",
    ),
    post: scepOperation("DDM credentials from the credential CA: PKIOperation with the pkiMessage as the body"),
  },
  "/v1/metrics": {
    get: op("meta", "Prometheus metrics (text exposition format); see docs/monitoring.md", {
      "200": { description: "the metrics", content: { "text/plain": { schema: str } } },
    }),
  },
  "/mdm/assets/{id}": { get: deviceDownload("a DDM asset's bytes, with its recorded Content-Type") },
  "/mdm/profiles/{id}": { get: deviceDownload("a stored profile, as application/x-apple-aspen-config") },
  "/mdm/credentials/scep/{name}": {
    get: {
      ...deviceDownload("the SCEP credential JSON (com.apple.credential.scep) made for this device, with a fresh single-use challenge"),
      parameters: [param("name", "path", "the credential template's name")],
    },
  },
  "/mdm/credentials/ca": {
    get: { ...deviceDownload("the credential CA's certificate, application/pem"), parameters: [] },
  },
  "/healthz": {
    get: {
      summary: "Whether the server can reach its store",
      tags: ["meta"],
      security: [],
      responses: { "200": ok("Health"), "503": { description: "the store is unavailable", content: json(ref("Health")) } },
    },
  },
  "/version": {
    get: { summary: "The server's version", tags: ["meta"], security: [], responses: { "200": ok("Version") } },
  },
  // The web console (docs/console.md): a page and its two files, no data; it signs in and reads /v1.
  "/": { get: consoleFile("Redirects to the console (/ui/)", { "302": { description: "to /ui/" } }) },
  "/ui": { get: consoleFile("Redirects to /ui/", { "301": { description: "to /ui/" } }) },
  "/ui/": {
    get: consoleFile("The console's page (Content-Security-Policy: script-src 'self', no inline script or style)", {
      "200": { description: "the page", content: body("text/html") },
    }),
  },
  "/ui/app.js": {
    get: consoleFile("The console's script, bundled at the first request", {
      "200": { description: "JavaScript", content: body("text/javascript") },
    }),
  },
  "/ui/app.css": { get: consoleFile("The console's style sheet", { "200": { description: "CSS", content: body("text/css") } }) },
};

function consoleFile(summary: string, responses: Record<string, unknown>): Operation {
  return { summary, tags: ["console"], security: [], responses };
}

/** Declarative Device Management's routes (KMFDDM's, and Orchard's set compliance). */
const ddm = ddmOpenApi({ ref, object, param, op, ok, error, json });
/** OS updates through DDM (docs/software-updates.md). */
const updates = updatesOpenApi({ ref, object, param, op, ok, error, json });
const operators = operatorsOpenApi({ ref, object, param, op, ok, error, json, time, nullableTime, paging: PAGING });
/** The device inventory and its status subscription (http/inventory-routes.ts). */
const inventory = inventoryOpenApi({ ref, object, param, op, ok, error, json, paging: PAGING, notFound: NOT_FOUND });

/** PUT /v1/enqueue/{ids} and POST /v1/enqueue answer alike (NanoMDM's APIResult). */
function enqueueResponses(): Record<string, unknown> {
  return {
    "200": ok("ApiResult", "queued (and pushed) for every id"),
    "207": ok("ApiResult", "some ids failed: see status"),
    "404": ok("ApiResult", "no id names a known enrollment: nothing queued"),
    "409": error("a command with this CommandUUID exists (code command_exists)"),
    "500": ok("ApiResult", "every id failed"),
    ...TOO_LARGE,
  };
}

function pushResponses(): Record<string, unknown> {
  return {
    "200": ok("ApiResult", "pushed every id"),
    "207": ok("ApiResult", "some ids failed: see status"),
    "500": ok("ApiResult", "every id failed"),
  };
}

/** The operator's routes of DDM assets or stored profiles (docs/declarative-management.md). */
function ddmFilePaths(plural: string, what: string, schema: string, content: { put: Record<string, unknown> }) {
  const id = param("id", "path", `the ${what}'s id: 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'`);
  const badId = {
    "400": error(
      `bad input; an id that breaks the rule (code invalid_asset_id)${what === "profile" ? ", or not a profile (code invalid_profile)" : ""}`,
    ),
  };
  return {
    [`/v1/ddm/${plural}`]: {
      get: op("ddm", `List the stored ${plural}, ordered by id`, { "200": ok(`${schema}Page`) }, { parameters: PAGING }),
    },
    [`/v1/ddm/${plural}/{id}`]: {
      put: op(
        "ddm",
        `Store or replace a ${what} (the raw bytes as the body)`,
        { "200": ok(schema, "replaced"), "201": ok(schema, "created"), ...badId, ...TOO_LARGE },
        { parameters: [id], requestBody: { required: true, content: content.put } },
      ),
      get: op("ddm", `One ${what} (never its bytes)`, { "200": ok(schema), ...badId, ...NOT_FOUND }, { parameters: [id] }),
      delete: op(
        "ddm",
        `Remove a ${what}`,
        {
          "200": ok("DdmFileRemoved"),
          ...badId,
          ...NOT_FOUND,
          "409": error("a declaration still names it (code asset_in_use)"),
        },
        { parameters: [id] },
      ),
    },
    [`/v1/ddm/${plural}/{id}/data`]: {
      get: op(
        "ddm",
        `The ${what}'s bytes, as devices get them`,
        {
          "200": {
            description: "the bytes",
            content: body(what === "profile" ? "application/x-apple-aspen-config" : "*/*", undefined, true),
          },
          ...badId,
          ...NOT_FOUND,
        },
        { parameters: [id] },
      ),
    },
  };
}

/** A device download: the MDM identity, not the API key (below --server-path, /mdm by default). */
function deviceDownload(summary: string): Operation {
  return {
    summary: `For enrolled devices, with their MDM identity (TLS client certificate, --cert-header from a trusted proxy, or Mdm-Signature): ${summary}`,
    tags: ["ddm"],
    security: [],
    parameters: [param("id", "path", "the asset's or profile's id")],
    responses: {
      "200": { description: "the bytes, with Content-Length and an ETag of their SHA-256", content: body("*/*", undefined, true) },
      "400": textError("an id that breaks the rule"),
      "403": textError("no device identity, an untrusted one, or one not bound to an enrolled device"),
      "404": textError(
        "no such asset or profile, or none that a declaration of the device's channels names (the same answer; to enrolled devices only)",
      ),
      "503": textError("the store is unavailable; see Retry-After"),
    },
  };
}

/** Outside /v1 an error is one plain-text line. */
function textError(description: string) {
  return { description, content: { "text/plain": { schema: str } } };
}

function scepOperation(summary: string): Operation {
  return {
    summary: `SCEP (RFC 8894) for devices: ${summary}`,
    tags: ["enrollment"],
    security: [],
    parameters: [
      param("operation", "query", "the SCEP operation", { type: "string", enum: ["GetCACaps", "GetCACert", "PKIOperation"] }),
      param("message", "query", "PKIOperation over GET: the pkiMessage, base64"),
    ],
    responses: {
      "200": {
        description: "the capabilities, the CA certificate, or a CertRep",
        content: {
          ...body("text/plain"),
          ...body("application/x-x509-ca-cert", undefined, true),
          ...body("application/x-pki-message", undefined, true),
        },
      },
      "400": textError("not a SCEP request"),
      "429": textError("too many refused requests from this address; see Retry-After"),
    },
  };
}

/** The document served at GET /v1/openapi.json. */
export const OPENAPI = {
  openapi: "3.1.0",
  info: {
    title: "Orchard operator API",
    version: VERSION,
    description:
      "Every key is snake_case; every time an RFC 3339 UTC string with milliseconds; durations and counts are numbers. " +
      'Errors under /v1 are {"error": message, "code": stable_code}. NanoMDM-compatible routes (enqueue, push, pushcert) ' +
      "keep NanoMDM's shapes, and KMFDDM-compatible routes (tag ddm) KMFDDM's. HEAD is answered wherever GET is.",
  },
  jsonSchemaDialect: "https://spec.openapis.org/oas/3.1/dialect/base",
  security: [{ basic: [] }, { bearer: [] }, { session: [] }],
  tags: [
    "enrollments",
    "commands",
    "events",
    "users",
    "push",
    "enrollment",
    "ddm",
    "inventory",
    "updates",
    "ade",
    "operators",
    "console",
    "meta",
  ].map((name) => ({ name })),
  paths: withForwardedDdm({ ...paths, ...ddm.paths, ...inventory.paths, ...updates.paths, ...operators.paths }),
  components: {
    schemas: { ...schemas, ...ddm.schemas, ...inventory.schemas, ...updates.schemas, ...operators.schemas },
    securitySchemes: {
      basic: {
        type: "http",
        scheme: "basic",
        description: "any user name; the API key (the admin role) or a personal API token as the password",
      },
      bearer: { type: "http", scheme: "bearer", description: "a personal API token (POST /v1/tokens)" },
      session: {
        type: "apiKey",
        in: "cookie",
        name: "orchard_session",
        description: "a browser session (POST /v1/session); every change also needs the X-CSRF-Token header",
      },
      enrollmentToken: { type: "apiKey", in: "query", name: "token", description: "--enrollment-token, for a link opened on the device" },
    },
  },
} as const;

/** Each change to Orchard's own DDM also answers 409 ddm_forwarded under --dm-url (http/ddm-forwarded.ts). */
function withForwardedDdm<T extends Record<string, Record<string, unknown>>>(all: T): T {
  const forwarded = "with --dm-url, Orchard's own DDM does not take changes (code ddm_forwarded)";
  for (const [p, ops] of Object.entries(all)) {
    for (const [method, operation] of Object.entries(ops)) {
      if (!changesOwnDdm(method, p)) continue;
      const responses = (operation as { responses: Record<string, { description: string } | undefined> }).responses;
      const had = responses["409"];
      responses["409"] = error(had ? `${had.description}; or, ${forwarded}` : forwarded);
    }
  }
  return all;
}
