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

/** DELETE /v1/ddm/assets/{id}, /v1/ddm/profiles/{id}. */
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
