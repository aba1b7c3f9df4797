// The OpenAPI description of the OS update routes (http/update-routes.ts),
// merged into http/openapi.ts (docs/software-updates.md).
import type { OpenApiBuilders } from "./openapi-ddm.ts";

type Schema = Record<string, unknown>;

const str: Schema = { type: "string" };
const nullableStr: Schema = { type: ["string", "null"] };
const count: Schema = { type: "integer", minimum: 0 };
const bool: Schema = { type: "boolean" };
const arrayOf = (items: Schema): Schema => ({ type: "array", items });
const PLATFORMS = ["macOS", "iOS", "iPadOS", "tvOS", "watchOS", "visionOS"];
const STATES = ["up_to_date", "pending", "downloading", "installing", "failed", "overdue", "not_reporting", "no_release"];

export function updatesOpenApi(b: OpenApiBuilders): { schemas: Record<string, Schema>; paths: Record<string, Record<string, unknown>> } {
  const { ref, object, param, op, ok, error, json } = b;
  const nullableTime: Schema = { anyOf: [ref("Time"), { type: "null" }] };
  const feed = {
    url: { ...str, description: "where the feed is read (no credentials or query)" },
    fetched_at: { ...nullableTime, description: "when the good copy in use was read; null: never" },
    attempted_at: nullableTime,
    error: { ...nullableStr, description: "the last attempt's error (the good copy stays in use); null after a good read" },
    error_at: nullableTime,
    releases: { type: "object", additionalProperties: count, description: "releases per feed platform (iOS, macOS, ...)" },
  };
  const policyFields = {
    platform: { enum: PLATFORMS },
    enrollments: {
      description: '"all" (device channels of the platform), {"set": a DDM set\'s enrollments} or {"ids": [...]} (in answers: their count)',
      anyOf: [
        { const: "all" },
        object({ set: str }),
        object({ ids: { anyOf: [{ ...arrayOf(str), minItems: 1, maxItems: 100000 }, count] } }),
      ],
    },
    mode: { enum: ["latest", "version"], description: "latest: the newest release for each model; version: target_* as given" },
    deadline_days: { type: ["integer", "null"], minimum: 0, maximum: 365, description: "latest: days after Apple's PostingDate" },
    deadline_time: { ...nullableStr, description: "latest: hh:mm:ss, device-local (default 19:00:00)" },
    target_os_version: { ...nullableStr, examples: ["15.2"] },
    target_build_version: nullableStr,
    target_local_date_time: { ...nullableStr, description: "yyyy-mm-ddThh:mm:ss, device-local, no zone" },
    details_url: nullableStr,
    settings: { type: ["object", "null"], description: "a com.apple.configuration.softwareupdate.settings Payload" },
  };
  const schemas: Record<string, Schema> = {
    UpdateFeed: object(feed),
    UpdateFeedRefresh: object({
      ...feed,
      refreshed: { ...bool, description: "false: this attempt failed (error says why)" },
      changed: { ...bool, description: "the releases changed: devices were re-targeted" },
    }),
    UpdateReleases: object({
      releases: {
        type: "object",
        additionalProperties: arrayOf(
          object({
            version: str,
            build: str,
            posted_on: { ...str, description: "YYYY-MM-DD" },
            expires_on: nullableStr,
            devices: arrayOf(str),
          }),
        ),
      },
    }),
    UpdatePolicyBody: {
      type: "object",
      additionalProperties: false,
      required: ["platform", "mode"],
      properties: policyFields,
      description: "mode latest needs deadline_days; mode version needs target_os_version and target_local_date_time",
    },
    UpdatePolicy: object({ name: str, ...policyFields, created_at: ref("Time"), updated_at: ref("Time") }),
    UpdatePolicyDetail: object({
      name: str,
      ...policyFields,
      created_at: ref("Time"),
      updated_at: ref("Time"),
      listed_ids: {
        anyOf: [arrayOf(str), { type: "null" }],
        description: 'enrollments {"ids"}: the ids listed, sorted (enrollments.ids is their count); null for "all" or a set',
      },
    }),
    UpdatePolicyList: object({ policies: arrayOf(ref("UpdatePolicy")) }),
    UpdateApply: object({
      devices: { ...count, description: "device channels a policy reaches" },
      targeted: { ...count, description: "of them, with an enforcement declaration" },
      targets: { ...count, description: "distinct targets (one declaration and set each)" },
      changed: { ...count, description: "devices whose policy or target changed (each syncs once)" },
      released: { ...count, description: "devices no policy reaches any more" },
      skipped: { ...bool, description: "another process was re-targeting: this one did nothing" },
    }),
    UpdatePolicySaved: object({
      policy: ref("UpdatePolicy"),
      created: bool,
      applied: ref("UpdateApply"),
      reach: {
        anyOf: [object({ devices: count, targeted: count }), { type: "null" }],
        description: "this policy's devices after it, and of them with a target; null when another process re-targets (applied.skipped)",
      },
      warnings: {
        type: "array",
        items: str,
        description:
          "saved, but may not do what was meant (each also an orchard-warning header): a settings key not in Apple's schema, a DDM set no device holds, a deadline passed in every time zone",
      },
    }),
    UpdatePolicyRemoved: object({ removed: str, applied: ref("UpdateApply") }),
    UpdateCompliance: object({
      policy: str,
      total: count,
      counts: { type: "object", properties: Object.fromEntries(STATES.map((s) => [s, count])), additionalProperties: false },
    }),
    UpdateDevice: object({
      enrollment_id: str,
      policy: str,
      state: { enum: STATES },
      reason: { ...nullableStr, description: "Apple's failure reason, when failed" },
      target: {
        anyOf: [
          object({
            os_version: str,
            build_version: nullableStr,
            local_date_time: str,
            set: { ...str, description: "the built-in DDM set" },
          }),
          { type: "null" },
        ],
      },
      updated_at: ref("Time"),
    }),
    UpdateDevicePage: object({ devices: arrayOf(ref("UpdateDevice")), next_cursor: nullableStr }),
  };
  const tag = "updates";
  const POLICY = param("name", "path", "the policy's name (1 to 40 letters, digits, _ and -)");
  const NOT_FOUND = { "404": error("no such policy (code not_found)") };
  const paths: Record<string, Record<string, unknown>> = {
    "/v1/updates/feed": {
      get: op(tag, "The software lookup feed: the good copy in use, and the last attempt's error", { "200": ok("UpdateFeed") }),
    },
    "/v1/updates/feed/refresh": {
      post: op(tag, "Read the software lookup feed now (a failure keeps the last good copy: refreshed false)", {
        "200": ok("UpdateFeedRefresh"),
      }),
    },
    "/v1/updates/releases": {
      get: op(
        tag,
        "The releases of the feed in use, newest first, by feed platform",
        { "200": ok("UpdateReleases") },
        {
          parameters: [param("platform", "query", "only this platform's list (iPadOS: Apple's iOS list)", { enum: PLATFORMS })],
        },
      ),
    },
    "/v1/updates/policies": { get: op(tag, "The update policies", { "200": ok("UpdatePolicyList") }) },
    "/v1/updates/policies/{name}": {
      put: op(
        tag,
        "Create or replace an update policy; its devices are re-targeted at once. Header orchard-warning: each warning (a settings key not in Apple's schema, kept; a DDM set no device holds; a deadline passed in every time zone)",
        { "200": ok("UpdatePolicySaved", "replaced"), "201": ok("UpdatePolicySaved", "created") },
        {
          parameters: [POLICY],
          requestBody: { required: true, content: json(ref("UpdatePolicyBody")) },
        },
      ),
      get: op(tag, "One update policy, with the ids it lists", { "200": ok("UpdatePolicyDetail"), ...NOT_FOUND }, { parameters: [POLICY] }),
      delete: op(
        tag,
        "Remove an update policy: its devices leave its sets",
        { "200": ok("UpdatePolicyRemoved"), ...NOT_FOUND },
        { parameters: [POLICY] },
      ),
    },
    "/v1/updates/policies/{name}/compliance": {
      get: op(
        tag,
        "How many of a policy's devices are in each state",
        { "200": ok("UpdateCompliance"), ...NOT_FOUND },
        { parameters: [POLICY] },
      ),
    },
    "/v1/updates/policies/{name}/devices": {
      get: op(
        tag,
        "A policy's devices with their target and state",
        { "200": ok("UpdateDevicePage"), ...NOT_FOUND },
        {
          parameters: [
            POLICY,
            param("state", "query", "only devices in this state", { enum: STATES }),
            param("limit", "query", "page size, 1 to 1000 (default 100)"),
            param("cursor", "query", "next_cursor of the page before"),
          ],
        },
      ),
    },
    "/v1/updates/devices/{id}": {
      get: op(
        tag,
        "One device channel's target and state",
        { "200": ok("UpdateDevice"), "404": error("no policy reaches it (code not_found)") },
        {
          parameters: [param("id", "path", "an enrollment id (a device channel)")],
        },
      ),
    },
    "/v1/updates/apply": {
      post: op(tag, "Re-target every policy's devices now (also done every 5 minutes, and at each feed or policy change)", {
        "200": ok("UpdateApply"),
      }),
    },
  };
  return { schemas, paths };
}
