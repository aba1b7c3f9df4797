import type { EnrollmentType } from "../protocol/enrollment.ts";

// The one catalogue of the events Orchard records (GET /v1/events, `orchard
// events`, and the webhook's extra topics all read it). Each type is one line:
// its name, what it means, and the shape of its detail, whose keys are
// snake_case. A detail holds facts, never a secret: events are shown through
// the API and may leave through the webhook. Adding a type is adding a line.

/** Marks a type's detail shape; the value itself is never read. */
const detail = <T>(): T => undefined as T;
/** A type recorded without a detail. */
const none = detail<undefined>();

type CertDetail = {
  request_type: string;
  subject: string;
  serial: string;
  fingerprint: string;
  not_after: string;
  /** The ADE device serial number the certificate is bound to. */
  ade_serial?: string;
};
type ShortName = { short_name?: string };
type AdeAssignCounts = { success: number; not_accessible: number; failed: number; throttled: number };
/** What one fetch or sync of an ABM server did (also the answer of POST /v1/ade/servers/{name}/sync, less trigger). */
export type AdeSyncDetail = {
  server: string;
  phase: "fetch" | "sync";
  pages: number;
  fetched: number;
  added: number;
  modified: number;
  deleted: number;
  assigned: number;
  assign_failed: number;
  /** INVALID_CURSOR or EXPIRED_CURSOR: the run started over from a full fetch. */
  cursor_reset: string | null;
  /** What started it: schedule, api, ... */
  trigger: string;
};

/** The OS update target a device missed or failed (store/software-updates.ts). */
type UpdateDetail = { policy: string; target_os_version: string; target_build_version: string | null; os_version: string | null };
/** One device of an ade.sync_devices page: Apple's keys, as NanoDEP's dep.SyncDevices carries them. */
export type AdeSyncedDevice = {
  serial_number: string;
  op_type: string | null;
  op_date: string | null;
  model: string | null;
  description: string | null;
  color: string | null;
  os: string | null;
  device_family: string | null;
  profile_status: string | null;
  profile_uuid: string | null;
};

export const EVENT_CATALOGUE = {
  "device.authenticated": { about: "a device sent Authenticate and was (re-)bound", detail: detail<{ serial_number?: string }>() },
  "device.queue_discarded": {
    about: "a re-enrollment ended the commands still queued for the device",
    detail: detail<{ count: number; commands: Array<{ enrollment_id: string; command_uuid: string }> }>(),
  },
  "device.checked_out": { about: "a device sent CheckOut (its management profile was removed)", detail: none },
  "enrollment.enrolled": { about: "a channel's first TokenUpdate since Authenticate", detail: detail<{ type: EnrollmentType }>() },
  "enrollment.rebound": {
    about: "a device was bound to a new identity certificate",
    detail: detail<{ old_fingerprint: string | null; new_fingerprint: string; reason: string; unanswered_push_at?: number }>(),
  },
  "enrollment.rebind_held": {
    about: "an Authenticate with another identity certificate was held (at most one an hour per device)",
    detail: detail<{
      old_fingerprint: string;
      new_fingerprint: string;
      attempts: number;
      attempts_since_binding: number;
      silent_ms: number;
      rebind_after_silence_ms: number;
      silence: string;
    }>(),
  },
  "enrollment.rebind_approved": {
    about: "an operator approved a held identity certificate",
    detail: detail<{ old_fingerprint: string; new_fingerprint: string; held_attempts: number }>(),
  },
  "enrollment.removed": {
    about: "an operator removed a device with its channels, or one user channel (DELETE /v1/enrollments/{id})",
    detail: detail<{
      device: boolean;
      channels: string[];
      channel_count: number;
      discarded: Array<{ enrollment_id: string; command_uuid: string }>;
      discarded_count: number;
    }>(),
  },
  "enrollment.profile": {
    about: "an enrollment profile was handed out",
    detail: detail<{ identity: string; topic: string; signed: boolean; remote: string }>(),
  },
  "bootstrap_token.escrowed": { about: "a device escrowed its bootstrap token (SetBootstrapToken)", detail: none },
  "bootstrap_token.cleared": { about: "a device cleared its bootstrap token (SetBootstrapToken without one)", detail: none },
  "bootstrap_token.retrieved": {
    about: "a device asked for its bootstrap token (GetBootstrapToken)",
    detail: detail<{ found: boolean }>(),
  },
  "userauth.challenged": { about: "a network user was sent a digest challenge", detail: detail<ShortName>() },
  "userauth.declined": { about: "a network user was declined (410)", detail: detail<ShortName>() },
  "userauth.zero_length": { about: "a network user is managed without an AuthToken", detail: detail<ShortName>() },
  "userauth.already_authenticated": { about: "a UserAuthenticate carried the user's valid AuthToken", detail: detail<ShortName>() },
  "userauth.authenticated": { about: "a network user logged in: an AuthToken was issued", detail: detail<{ short_name: string }>() },
  "userauth.failed": { about: "a network user's digest response was refused", detail: detail<{ cause: string; short_name?: string }>() },
  "userauth.token_refused": {
    about: "a user channel's request lacked a valid AuthToken (403); at most one per channel and reason every 5 minutes",
    detail: detail<{ reason: string; repeated: number }>(),
  },
  "push.sent": {
    about: "APNs accepted a push",
    detail: detail<{ topic: string; apns_id: string; trigger: string; attempts: number }>(),
  },
  "push.failed": {
    about:
      "a push to a channel was not sent (APNs refused or did not answer, the enrollment is disabled, the topic's certificate is unusable); none while no push certificate is configured at all",
    detail: detail<{
      topic?: string;
      trigger: string;
      error: string;
      status?: number;
      reason?: string;
      attempts?: number;
      token_dead?: boolean;
      apns_timestamp?: number;
    }>(),
  },
  "pushcert.uploaded": {
    about: "a push certificate was stored",
    detail: detail<{ topic: string; not_after: string; fingerprint: string; created: boolean; forced?: boolean }>(),
  },
  "pushcert.removed": { about: "a push certificate was removed", detail: detail<{ topic: string }>() },
  "pushcert.refused": { about: "APNs refused a push certificate", detail: detail<{ topic: string; status: number; reason: string }>() },
  "pushcert.expiring": {
    about: "a push certificate expires within 30 days (or has expired)",
    detail: detail<{ topic: string; not_after: string; days_left: number; expired: boolean; fingerprint: string }>(),
  },
  "scep.issued": { about: "SCEP issued a device identity certificate", detail: detail<CertDetail>() },
  "scep.renewed": { about: "SCEP renewed a device identity certificate", detail: detail<CertDetail & { renewed_from: string }>() },
  "scep.refused": { about: "SCEP refused a request for a certificate", detail: detail<{ reason: string; transaction_id: string }>() },
  "ddm.declaration_status_changed": {
    about: "a channel's status report changed a declaration's active or valid state (or reported it first)",
    detail: detail<{
      identifier: string;
      kind: string;
      server_token: string;
      active: boolean;
      valid: string;
      previous_active: boolean | null;
      previous_valid: string | null;
      reason_codes: string[];
      status_id: string;
    }>(),
  },
  "ddm.status_errors": {
    about: "a channel's status report carried errors",
    detail: detail<{ count: number; status_items: string[]; status_id: string }>(),
  },
  "ddm.asset.stored": {
    about: "a DDM asset's bytes were stored",
    detail: detail<{ id: string; content_type: string; size: number; sha256: string; created: boolean }>(),
  },
  "ddm.asset.removed": { about: "a DDM asset was removed", detail: detail<{ id: string }>() },
  "ddm.profile.stored": {
    about: "a profile for DDM's legacy configurations was stored",
    detail: detail<{ id: string; size: number; sha256: string; signed: boolean; payload_identifier: string; created: boolean }>(),
  },
  "ddm.profile.removed": { about: "a stored DDM profile was removed", detail: detail<{ id: string }>() },
  "ddm.credential.stored": {
    about: "a DDM credential template was stored",
    detail: detail<{ name: string; kind: string; revision: string; created: boolean }>(),
  },
  "ddm.credential.removed": { about: "a DDM credential template was removed", detail: detail<{ name: string }>() },
  "ddm.credential.issued": {
    about: "the credential CA issued a device a DDM credential's certificate",
    detail: detail<{ credential: string; subject: string; serial: string; fingerprint: string; not_after: string }>(),
  },
  "ddm.credential.refused": {
    about: "the credential CA refused a request for a DDM credential's certificate",
    detail: detail<{ reason: string; transaction_id: string; credential: string | null }>(),
  },
  "ade.server_added": {
    about: "an ABM server was added (its key pair and certificate made)",
    detail: detail<{ server: string; cert_fingerprint: string }>(),
  },
  "ade.token_uploaded": { about: "an ABM server token was stored", detail: detail<{ server: string; token_expiry: string }>() },
  "ade.server_removed": { about: "an ABM server was removed", detail: detail<{ server: string }>() },
  "ade.token_expiring": {
    about: "an ABM server token expires within 30 days (or has expired)",
    detail: detail<{ server: string; token_expiry: string; days_left: number; expired: boolean }>(),
  },
  "ade.profile_assigned": {
    about: "a DEP profile was assigned to devices at Apple",
    detail: detail<{ server: string; profile: string; profile_uuid: string } & AdeAssignCounts>(),
  },
  "ade.sync": { about: "an ABM server's devices were fetched or synced", detail: detail<AdeSyncDetail>() },
  "ade.sync_failed": {
    about: "a fetch or sync of an ABM server's devices failed (its cursor is kept)",
    detail: detail<AdeSyncDetail & { error: string }>(),
  },
  "update.policy_saved": {
    about: "an OS update policy was created or replaced",
    detail: detail<{ policy: string; platform: string; mode: string; scope: string; created: boolean }>(),
  },
  "update.policy_removed": { about: "an OS update policy was removed", detail: detail<{ policy: string }>() },
  "update.feed_changed": {
    about: "the software lookup feed's releases changed (devices are re-targeted)",
    detail: detail<{ url: string; releases: Record<string, number>; newest: Record<string, string | null> }>(),
  },
  "update.feed_failed": {
    about: "a software lookup feed refresh failed (the last good copy stays in use)",
    detail: detail<{ url: string; error: string; last_good_at: string | null }>(),
  },
  "update.failed": {
    about: "a device reported its OS update failed (once per target)",
    detail: detail<UpdateDetail & { reason: string | null; failure_count: number | null }>(),
  },
  "update.overdue": {
    about: "a device missed its OS update deadline (once per target)",
    detail: detail<UpdateDetail & { deadline: string; state: string }>(),
  },
  "ade.sync_devices": {
    about:
      "one page of an ABM server's device list, as NanoDEP's dep.SyncDevices, or after a full fetch the devices it did not list, as deleted (recorded only when the webhook subscribes to it)",
    detail: detail<{ server: string; phase: "fetch" | "sync"; more_to_follow: boolean; devices: AdeSyncedDevice[] }>(),
  },
  "ade.enrollment_profile_served": {
    about: "the ADE enrollment URL answered a device's signed MachineInfo with its enrollment profile",
    detail: detail<{
      server: string;
      serial_number: string;
      product: string;
      os_version: string | null;
      build_version: string;
      apple_ca_verified: boolean;
    }>(),
  },
  "ade.os_update_required": {
    about: "the ADE enrollment URL answered 403 softwareupdate.required: the device is below the minimum OS",
    detail: detail<{
      server: string;
      serial_number: string;
      product: string;
      os_version: string | null;
      required_os_version: string;
      required_build_version: string | null;
    }>(),
  },
  "ade.platform_sso_required": {
    about: "the ADE enrollment URL answered 403 com.apple.psso.required (Platform SSO during Setup Assistant)",
    detail: detail<{ server: string; serial_number: string }>(),
  },
  "ade.configuration_started": {
    about: "an ADE device awaiting configuration got its initial set",
    detail: detail<{ server: string; serial_number: string; steps: number; ddm_sets: string[] }>(),
  },
  "ade.configuration_step_failed": {
    about: "an initial command of an ADE device answered Error or CommandFormatError",
    detail: detail<{ serial_number: string; step: number; of: number; command_uuid: string; request_type: string; status: string }>(),
  },
  "ade.configuration_failed": {
    about: "an ADE device is held in Setup Assistant: initial commands failed (release_on_failure false), or it refused DeviceConfigured",
    detail: detail<{ serial_number: string; reason: string; steps_failed: number }>(),
  },
  "ade.device_released": {
    about: "DeviceConfigured was queued for an ADE device (by Orchard after its initial set, or by an operator)",
    detail: detail<{ serial_number: string; steps_failed: number; by: "orchard" | "operator" }>(),
  },
  "ade.device_configured": {
    about: "an ADE device acknowledged DeviceConfigured: Setup Assistant goes on",
    detail: detail<{ serial_number: string }>(),
  },
  "ade.identity_refused": {
    about:
      "an Authenticate for an ADE device's serial number came from a certificate not issued for that serial, or while another device is enrolled under it (403; at most one per certificate and kind of refusal in 5 minutes, repeated: how many the 5 minutes before held back)",
    detail: detail<{
      serial_number: string;
      fingerprint: string;
      bound_serial: string | null;
      reason: string;
      enrolled_as?: string;
      repeated: number;
    }>(),
  },
  "webhook.dropped": {
    about: "undelivered webhook events were dropped (--webhook-max-backlog or --webhook-max-age)",
    detail: detail<{ count: number; reason: "backlog" | "age"; oldest_created_at: string; newest_created_at: string }>(),
  },
} as const;

export type EventType = keyof typeof EVENT_CATALOGUE;
export type EventDetail<T extends EventType> = (typeof EVENT_CATALOGUE)[T]["detail"];

/** Every catalogue type, in catalogue order. */
export const EVENT_TYPES = Object.keys(EVENT_CATALOGUE) as EventType[];

/** One event to record: a catalogue type with its detail's shape. */
export type NewEvent = {
  [T in EventType]: { type: T; enrollmentId?: string } & ([EventDetail<T>] extends [undefined]
    ? { detail?: undefined }
    : { detail: EventDetail<T> });
}[EventType];

/** True for a type Orchard records. */
export function isEventType(type: string): type is EventType {
  return Object.hasOwn(EVENT_CATALOGUE, type);
}

/** The reason given for an unknown type: the catalogue, listed. */
export function unknownEventTypeMessage(what: string, type: string): string {
  return `unknown ${what} ${JSON.stringify(type.slice(0, 64))}: one of ${EVENT_TYPES.join(", ")}`;
}
