// The operator API's JSON, as the server sends it and the CLI reads it: one
// module both use, so an answer's shape is written down once. Types only: no
// runtime code, and nothing imported but types from lower layers.
//
// The contract (docs/api.md): every key is snake_case; every time is an
// RFC 3339 UTC string with milliseconds (`2026-12-03T12:00:00.000Z`), or
// null; durations and counts are numbers. NanoMDM-compatible routes
// (PUT /v1/enqueue, GET|POST /v1/push, PUT /v1/pushcert) keep NanoMDM's
// shapes, which follow the same rules. http/openapi.ts describes each of these
// shapes as a JSON Schema; test/openapi.test.ts checks real answers against it.

import type { ErrorCode } from "../errors.ts";
import type { ApiResult, EnrollmentResult } from "../core/enqueue.ts";
import type { QueueStatus } from "../store/commands.ts";
import type { DigestHashName, DirectoryState } from "../store/directory.ts";
import type { UserSessionState } from "../store/user-sessions.ts";
import type { EnrollmentType } from "../protocol/enrollment.ts";
import type { Platform } from "../protocol/platform.ts";
import type { AdeSyncDetail } from "../store/event-types.ts";
import type { InventoryField, InventorySource } from "../store/inventory.ts";

export type { ErrorCode } from "../errors.ts";
export type * from "./wire-operators.ts";

/** An RFC 3339 UTC time with milliseconds: `2026-12-03T12:00:00.000Z`. */
export type Time = string;

/** Every API error: the message for people, the stable code for scripts. */
export interface ApiErrorBody {
  error: string;
  code: ErrorCode;
}

/** A cursor-paged list: `{ <key>: [...], next_cursor }` (null on the last page). */
export type Page<K extends string, T> = { [k in K]: T[] } & { next_cursor: string | null };

// --- NanoMDM-compatible -------------------------------------------------

/** PUT /v1/enqueue/{ids} and GET|POST /v1/push/{ids}: NanoMDM's APIResult. */
export type EnqueueResult = ApiResult;
export type PushResult = ApiResult;
/** One id's outcome in an EnqueueResult's `status`. */
export type IdResult = EnrollmentResult;

/** PUT /v1/pushcert. */
export interface PushCertStored {
  topic: string;
  not_after: Time;
}

// --- Enrollments, queues, commands, events -------------------------------

/** GET /v1/enrollments (in a page) and GET /v1/enrollments/{id}. */
export interface EnrollmentJson {
  id: string;
  device_id: string;
  type: EnrollmentType;
  user_id: string | null;
  user_short_name: string | null;
  user_long_name: string | null;
  enabled: boolean;
  topic: string;
  push_token: string;
  push_magic: string;
  token_update_count: number;
  awaiting_configuration: boolean;
  serial_number: string | null;
  model: string | null;
  model_name: string | null;
  product_name: string | null;
  /** Read from product_name (or model_name): macOS, iOS, iPadOS, tvOS, watchOS, visionOS; null when neither tells. */
  platform: Platform | null;
  device_name: string | null;
  os_version: string | null;
  build_version: string | null;
  created_at: Time;
  updated_at: Time;
  last_seen_at: Time | null;
}

export type EnrollmentPage = Page<"enrollments", EnrollmentJson>;

/** DELETE /v1/enrollments/{id}. */
export interface EnrollmentRemoved {
  removed: string;
  /** The id was a device's: it went with every channel it had. */
  device: boolean;
  channels: string[];
  /** Commands that were still queued for them, now gone with their queues. */
  discarded_commands: Array<{ enrollment_id: string; command_uuid: string }>;
}

/** One command in GET /v1/queue/{id}. */
export interface QueuedCommandJson {
  command_uuid: string;
  request_type: string;
  status: QueueStatus;
  not_now_count: number;
  created_at: Time;
  updated_at: Time;
}

/** GET /v1/queue/{id}. */
export interface QueueJson {
  enrollment_id: string;
  commands: QueuedCommandJson[];
}

/** DELETE /v1/queue/{ids}. */
export interface QueueCleared {
  removed: number;
}

/** One enrollment's answer in GET /v1/commands/{uuid}. */
export interface CommandResultJson {
  enrollment_id: string;
  status: QueueStatus;
  active: boolean;
  not_now_count: number;
  updated_at: Time;
  /** The device's latest report as JSON (dates ISO strings, data base64), or null before one. */
  result: Record<string, unknown> | null;
}

/** GET /v1/commands/{uuid}. */
export interface CommandJson {
  command_uuid: string;
  request_type: string;
  created_at: Time;
  results: CommandResultJson[];
}

/** Each of GET /v1/enrollments/{id}/commands: one of a channel's commands, queued or answered. */
export interface CommandHistoryJson {
  command_uuid: string;
  request_type: string;
  status: QueueStatus;
  /** Still in the queue (Queued, or NotNow to be sent again). */
  active: boolean;
  not_now_count: number;
  created_at: Time;
  updated_at: Time;
}

/** GET /v1/enrollments/{id}/commands: newest first. */
export type CommandHistoryPage = Page<"commands", CommandHistoryJson>;

/** GET /v1/fleet: the fleet at a glance (the console's overview). */
export interface FleetJson {
  /** Channels by type and platform (null: the device's facts do not tell). */
  enrollments: Array<{ type: EnrollmentType; platform: Platform | null; count: number }>;
  /** Enabled device channels not seen for this many days, or never (GET /v1/enrollments?seen_before=). */
  not_seen: Array<{ days: number; since: Time; count: number }>;
  /** Device channels by platform and OS version, the most common first (at most 50). */
  os_versions: Array<{ platform: Platform | null; os_version: string | null; count: number }>;
}

/** POST /v1/declarations/validate: what PUT /v1/declarations would say of this declaration; nothing is stored. */
export interface DeclarationCheckJson {
  valid: boolean;
  /** Against Apple's schema; `path` is a JSON path into the declaration ("" for the whole). */
  errors: Array<{ path: string; message: string }>;
  warnings: string[];
}

/** GET /v1/events (in a page). */
export interface EventJson {
  id: number;
  at: Time;
  type: string;
  enrollment_id: string | null;
  /** Facts about the event, snake_case keys; never a secret. */
  detail: Record<string, unknown> | null;
}

export type EventPage = Page<"events", EventJson>;

/** GET /v1/event-types: the catalogue of the events Orchard records. */
export interface EventTypeList {
  event_types: Array<{ type: string; about: string }>;
}

// --- Webhook -------------------------------------------------------------

/** GET /v1/webhook: the outbox (shared by every process) and its deliveries. */
export interface WebhookStatusJson {
  /** False without --webhook-url on the process that answered (nothing is written then). */
  enabled: boolean;
  /** --webhook-url without credentials or query. */
  url: string | null;
  topics: string[];
  /** Events not delivered yet. */
  backlog: number;
  /** Of them, those that failed at least once and wait for a retry. */
  retrying: number;
  oldest_created_at: Time | null;
  oldest_age_seconds: number;
  delivered: number;
  /** Failed attempts (each is retried). */
  failed: number;
  /** Events dropped past --webhook-max-backlog or --webhook-max-age. */
  dropped: number;
  last_delivered_at: Time | null;
  last_failure: { at: Time; status: number | null; error: string; event_id: string | null; topic: string | null } | null;
}

/** POST /v1/webhook/retry. */
export interface WebhookRetried {
  /** Events waiting for a retry that were made due now. */
  retried: number;
}

// --- Re-binding ----------------------------------------------------------

/** A certificate held for a device, waiting for (or given) the operator's approval. */
export interface RebindHoldJson {
  cert_fingerprint: string;
  held_at: Time;
  attempts: number;
  pushed_at: Time | null;
  approved_at: Time | null;
}

/** Where a device stands on the way to a re-binding after silence (src/core/cert-binding.ts silenceState). */
export interface RebindSilenceJson {
  state: "live" | "push_due" | "grace" | "ready";
  /** The accepted push the current identity has left unanswered (grace, ready). */
  pushed_at?: Time;
  /** When the grace ends (grace) or ended (ready). */
  until?: Time;
}

/** A distinct certificate held for a device since its last binding. */
export interface HeldCertificateJson {
  cert_fingerprint: string;
  first_held_at: Time;
  last_held_at: Time;
  attempts: number;
}

/** GET /v1/enrollments/{id}/rebind. */
export interface RebindStateJson {
  device_id: string;
  cert_fingerprint: string;
  last_contact_at: Time;
  silence: RebindSilenceJson;
  held: RebindHoldJson | null;
  held_certificates: HeldCertificateJson[];
}

/** POST /v1/enrollments/{id}/rebind. */
export interface RebindApprovedJson {
  device_id: string;
  cert_fingerprint: string;
  approved: RebindHoldJson;
}

// --- Network users ---------------------------------------------------------

/** PUT /v1/users/{short_name}'s body: every field optional. */
export interface UserPutBody {
  password?: string;
  guid?: string | null;
  full_name?: string | null;
  state?: DirectoryState;
}

/** GET|PUT /v1/users/{short_name}, and each of GET /v1/users. */
export interface UserJson {
  short_name: string;
  guid: string | null;
  full_name: string | null;
  state: DirectoryState;
  /** Realm and hash of each digest held; never the digests themselves. */
  digests: Array<{ realm: string; algorithm: DigestHashName }>;
  created_at: Time;
  updated_at: Time;
}

/** PUT /v1/users/{short_name}: the user, and the sessions the change ended. */
export interface UserSaved extends UserJson {
  /** AuthTokens of an earlier password, or every session of a user now declined. */
  sessions_ended: number;
}

export type UserPage = Page<"users", UserJson>;

/** DELETE /v1/users/{short_name}. */
export interface UserRemoved {
  removed: string;
  sessions_revoked: number;
}

/** POST /v1/users/import. */
export interface UserImportJson {
  realm: string;
  server_realm: string;
  created: number;
  updated: number;
  /** AuthTokens ended because a line changed a user's password. */
  sessions_ended: number;
  file_realms: Array<{ realm: string; lines: number }>;
  other_realms: Array<{ username: string; realm: string }>;
  errors: Array<{ line: number; reason: string }>;
}

/** Each of GET /v1/user-sessions: a login's state, never its token. */
export interface UserSessionJson {
  enrollment_id: string;
  device_id: string;
  user_id: string;
  short_name: string | null;
  state: UserSessionState;
  challenged_at: Time | null;
  token_issued_at: Time | null;
  token_last_used_at: Time | null;
  updated_at: Time;
}

export type UserSessionPage = Page<"sessions", UserSessionJson>;

// --- Push certificates, SCEP ------------------------------------------------

/** Each of GET /v1/pushcert: never the key. */
export interface PushCertJson {
  topic: string;
  not_before: Time;
  not_after: Time;
  fingerprint: string;
  created_at: Time;
  updated_at: Time;
}

/** GET /v1/pushcert. */
export interface PushCertList {
  push_certs: PushCertJson[];
}

/** DELETE /v1/pushcert/{topic}. */
export interface PushCertRemoved {
  removed: string;
}

/** POST /v1/scep/challenges. */
export interface ScepChallengeJson {
  challenge: string;
  expires_at: Time;
}

// --- DDM assets and stored profiles (docs/declarative-management.md) ---------------------

/** GET, PUT /v1/ddm/assets/{id}: an asset, never its bytes. */
export interface DdmAssetJson {
  id: string;
  content_type: string;
  size: number;
  /** Lowercase hex SHA-256 of the bytes (what a declaration's Hash-SHA-256 becomes). */
  sha256: string;
  /** What a declaration writes as its Reference.DataURL: `orchard:asset/<id>`. */
  reference: string;
  /** Where devices download it; null without --public-url. */
  url: string | null;
  created_at: Time;
  updated_at: Time;
}

export type DdmAssetPage = Page<"assets", DdmAssetJson>;

/** GET, PUT /v1/ddm/profiles/{id}: a stored profile, never its bytes. */
export interface DdmProfileJson {
  id: string;
  size: number;
  sha256: string;
  signed: boolean;
  payload_identifier: string | null;
  payload_display_name: string | null;
  /** What a legacy declaration writes as its ProfileURL: `orchard:profile/<id>`. */
  reference: string;
  url: string | null;
  created_at: Time;
  updated_at: Time;
}

export type DdmProfilePage = Page<"profiles", DdmProfileJson>;

/** GET, PUT /v1/ddm/credentials/{name}: a credential template (docs/declarative-management.md). */
export interface DdmCredentialJson {
  name: string;
  kind: "scep";
  /** The template as Orchard checked it, defaults filled in. */
  template: Record<string, unknown>;
  /** Lowercase hex SHA-256 of the template: in the device URL, so a changed template syncs its devices. */
  revision: string;
  /** What a com.apple.asset.credential.scep writes as its Reference.DataURL: `orchard:credential/scep/<name>`. */
  reference: string;
  url: string | null;
  created_at: Time;
  updated_at: Time;
}

export type DdmCredentialPage = Page<"credentials", DdmCredentialJson>;

/** DELETE /v1/ddm/assets/{id}, /v1/ddm/profiles/{id}, /v1/ddm/credentials/{name}. */
export interface DdmFileRemoved {
  removed: string;
}

/** POST, DELETE /v1/ddm/sets/{set}/enrollments: a set assigned to (or taken from) many enrollments. */
export interface DdmBulkAssignResult {
  set: string;
  /** Given when the request named a platform. */
  platform?: string;
  /** The enrollments the request named (ids, repeats dropped) or the platform's device channels found. */
  enrollments: number;
  /** Those whose sets changed (and that sync, unless nonotify). */
  changed: number;
}

// --- Outside /v1 -------------------------------------------------------------

/** GET /healthz. */
export interface HealthJson {
  status: "ok" | "store unavailable";
}

/** GET /version. */
export interface VersionJson {
  version: string;
}

// --- Automated Device Enrollment (ABM) ---------------------------------------

/** An ABM/ASM "MDM server": never its key or its token's secrets. */
export interface AdeServerJson {
  name: string;
  /** The certificate to upload at ABM for this MDM server (PEM). */
  certificate_pem: string;
  certificate_not_after: Time;
  token_expiry: Time | null;
  token_uploaded_at: Time | null;
  consumer_key: string | null;
  server_uuid: string | null;
  server_name: string | null;
  org_name: string | null;
  phase: "fetch" | "sync";
  last_sync_at: Time | null;
  last_sync_error: string | null;
  default_profile: string | null;
  devices: number;
  enrolled: number;
  created_at: Time;
  updated_at: Time;
}

export interface AdeServerList {
  servers: AdeServerJson[];
}

/** What a fetch or sync did (the ade.sync event's detail, less its trigger). */
export type AdeSyncJson = Omit<AdeSyncDetail, "trigger">;

export interface AdeDeviceJson {
  server: string;
  serial_number: string;
  model: string | null;
  description: string | null;
  color: string | null;
  asset_tag: string | null;
  os: string | null;
  device_family: string | null;
  profile_status: string | null;
  profile_uuid: string | null;
  profile_assign_time: Time | null;
  profile_push_time: Time | null;
  device_assigned_by: string | null;
  device_assigned_date: Time | null;
  op_type: string | null;
  op_date: Time | null;
  removed: boolean;
  enrolled: boolean;
  first_seen_at: Time;
  updated_at: Time;
}

export type AdeDevicePage = Page<"devices", AdeDeviceJson>;

export interface AdeProfileJson {
  server: string;
  name: string;
  /** The profile as sent to Apple (Apple's keys). */
  profile: Record<string, unknown>;
  profile_uuid: string | null;
  defined_at: Time | null;
  default: boolean;
  created_at: Time;
  updated_at: Time;
}

export interface AdeProfileList {
  profiles: AdeProfileJson[];
}

export interface AdeAssignJson {
  profile_uuid: string;
  /** Apple's answer per serial: SUCCESS, NOT_ACCESSIBLE, FAILED or THROTTLED. */
  devices: Record<string, string>;
}

// ---- OS updates through DDM (http/update-routes.ts, docs/software-updates.md)

/** The software lookup feed: the good copy in use, and the last attempt's error (the copy stays). */
export interface UpdateFeedJson {
  url: string;
  fetched_at: Time | null;
  attempted_at: Time | null;
  error: string | null;
  error_at: Time | null;
  /** Releases per feed platform (iOS, macOS, ...). */
  releases: Record<string, number>;
}

export interface UpdateFeedRefreshJson extends UpdateFeedJson {
  /** false: this attempt failed (error says why); the last good copy stays in use. */
  refreshed: boolean;
  /** The releases differ from the copy before: devices were re-targeted. */
  changed: boolean;
}

export interface UpdateReleaseJson {
  version: string;
  build: string;
  posted_on: string;
  expires_on: string | null;
  devices: string[];
}

export interface UpdateReleasesJson {
  releases: Record<string, UpdateReleaseJson[]>;
}

export interface UpdatePolicyJson {
  name: string;
  platform: string;
  enrollments: "all" | { set: string } | { ids: number };
  mode: "latest" | "version";
  deadline_days: number | null;
  deadline_time: string | null;
  target_os_version: string | null;
  target_build_version: string | null;
  target_local_date_time: string | null;
  details_url: string | null;
  settings: Record<string, unknown> | null;
  created_at: Time;
  updated_at: Time;
}

/** One policy as GET /v1/updates/policies/{name} gives it: with the ids it lists. */
export interface UpdatePolicyDetailJson extends UpdatePolicyJson {
  /** enrollments {"ids"}: the ids listed, sorted (enrollments.ids is their count); null for "all" or a set. */
  listed_ids: string[] | null;
}

export interface UpdatePolicyList {
  policies: UpdatePolicyJson[];
}

/** What one re-targeting did. */
export interface UpdateApplyJson {
  devices: number;
  targeted: number;
  targets: number;
  changed: number;
  released: number;
  skipped: boolean;
}

export interface UpdatePolicySaved {
  policy: UpdatePolicyJson;
  created: boolean;
  /** The re-targeting of every policy's devices that followed. */
  applied: UpdateApplyJson;
  /** This policy's devices after it, and of them with a target; null when another process re-targets (applied.skipped). */
  reach: { devices: number; targeted: number } | null;
  /** What was saved but may not do what was meant (also the orchard-warning headers): an unknown settings key, a set no device holds, a deadline passed. */
  warnings: string[];
}

export interface UpdateComplianceJson {
  policy: string;
  total: number;
  /** Devices per state: up_to_date, pending, downloading, installing, failed, overdue, not_reporting, no_release. */
  counts: Record<string, number>;
}

export interface UpdateDeviceJson {
  enrollment_id: string;
  policy: string;
  state: string;
  /** Apple's failure reason, when failed. */
  reason: string | null;
  /** The enforcement target (null: none, the device is current or no release is known for it). */
  target: { os_version: string; build_version: string | null; local_date_time: string; set: string } | null;
  updated_at: Time;
}

export type UpdateDevicePage = Page<"devices", UpdateDeviceJson>;
// --- Inventory -------------------------------------------------------------

/** A user of a device: one of its user channels. */
export interface InventoryUserJson {
  enrollment_id: string;
  user_id: string | null;
  user_short_name: string | null;
  user_long_name: string | null;
}

/** A field's value: text, a boolean, a number, or (client_capabilities, update_install_reason) the item's JSON. */
export type InventoryValueJson = string | number | boolean | Record<string, unknown> | unknown[];

/** GET /v1/inventory (in a page): every field, null when not known. */
export type InventoryDeviceJson = { device_id: string } & { [F in InventoryField]: InventoryValueJson | null } & {
  users: InventoryUserJson[];
  last_seen_at: Time | null;
  updated_at: Time;
};

export type InventoryPage = Page<"devices", InventoryDeviceJson>;

/** One field of a device's full record: its value, and where and when it was learned. */
export interface InventoryFieldJson {
  value: InventoryValueJson;
  /** The message it came from: authenticate, device-information, security-info or ddm-status. */
  source: InventorySource | null;
  learned_at: Time | null;
}

/** GET /v1/inventory/{device_id}: the known fields, each with its source and time. */
export interface InventoryRecordJson {
  device_id: string;
  fields: Partial<Record<InventoryField, InventoryFieldJson>>;
  users: InventoryUserJson[];
  last_seen_at: Time | null;
  updated_at: Time;
}

/** GET /v1/inventory-subscriptions (in a list). */
export interface InventorySubscriptionJson {
  platform: Platform;
  set: string;
  status_items: string[];
  created_at: Time;
}

export interface InventorySubscriptionList {
  subscriptions: InventorySubscriptionJson[];
}

/** PUT or DELETE /v1/inventory-subscriptions/{platform}. */
export interface InventorySubscriptionResult {
  platform: Platform;
  set: string;
  /** The subscription was made (PUT) or ended (DELETE) now; false when it already was. */
  changed: boolean;
  /** Device channels the set was assigned to (or taken from) now. */
  enrollments: number;
  /** Of those, the ones whose sets changed (each syncs). */
  assigned: number;
}
/** An ABM server's enrollment settings (docs/automated-enrollment.md, "Enrollment settings"). */
export interface AdeSettingsJson {
  minimum_os: Record<string, { os_version: string; build_version?: string }>;
  platform_sso: { profile_url: string; package_manifest_url: string; auth_url: string } | null;
  initial_commands: string[];
  initial_ddm_sets: string[];
  release_on_failure: boolean;
}

/** An ADE device on its way from the enrollment URL to DeviceConfigured. */
export interface AdeEnrollmentJson {
  serial_number: string;
  server: string;
  udid: string;
  product: string | null;
  os_version: string | null;
  build_version: string | null;
  state: "profile_served" | "running" | "releasing" | "configured" | "failed";
  /** In words: waiting, running step n/m, releasing, configured, failed (with the reason). */
  progress: string;
  step_total: number;
  steps_done: number;
  steps_failed: number;
  release_on_failure: boolean;
  error: string | null;
  served_at: Time;
  started_at: Time | null;
  released_at: Time | null;
  configured_at: Time | null;
  updated_at: Time;
}

export type AdeEnrollmentPage = Page<"enrollments", AdeEnrollmentJson>;
