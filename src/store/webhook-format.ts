import { randomUUID } from "node:crypto";
import { withoutAuthToken } from "../protocol/auth-token-element.ts";
import type { Channel, EnrollmentType } from "../protocol/enrollment.ts";

// Webhook events in NanoMDM's format (its webhook/event.json schema; a copy
// is in test/fixtures/webhook/). Keys are written in the order NanoMDM's Go
// types write them, and optional ones are left out when empty (Go's
// omitempty), so that a consumer of NanoMDM's webhook reads Orchard's as is.

/** NanoMDM's topics: one per check-in message type, and mdm.Connect for command reports. */
export const NANOMDM_TOPICS = [
  "mdm.Authenticate",
  "mdm.TokenUpdate",
  "mdm.CheckOut",
  "mdm.UserAuthenticate",
  "mdm.SetBootstrapToken",
  "mdm.GetBootstrapToken",
  "mdm.Connect",
  "mdm.DeclarativeManagement",
  "mdm.GetToken",
] as const;
export type NanoMdmTopic = (typeof NANOMDM_TOPICS)[number];

/** NanoMDM's enrollment types (the `ids.type` of an event). */
const NANOMDM_TYPES: Record<EnrollmentType, string> = {
  Device: "Device",
  User: "User",
  SharediPadUser: "Shared iPad",
  UserEnrollmentDevice: "User Enrollment (Device)",
  UserEnrollmentUser: "User Enrollment",
};

/** An event ready for the outbox: its id, topic and the exact body every delivery sends. */
export interface WebhookEvent {
  eventId: string;
  topic: string;
  enrollmentId: string | null;
  body: string;
}

/** What the webhook tells of an MDM request: who sent it, what, and the query of its URL. */
export interface MdmEventSource {
  channel: Channel;
  /** The exact bytes the device sent. */
  raw: Buffer;
  urlParams?: Readonly<Record<string, string>>;
}

/** The JSON of the fields every NanoMDM event body shares after its own (enrollment_id, ids, raw_payload). */
function identity(s: MdmEventSource): { enrollmentId?: string; udid?: string; ids: string } {
  const c = s.channel;
  const userEnrollment = c.type === "UserEnrollmentDevice" || c.type === "UserEnrollmentUser";
  const ids =
    `{"id":${JSON.stringify(c.id)}` +
    (c.isUserChannel ? `,"parent_id":${JSON.stringify(c.deviceId)}` : "") +
    `,"type":${JSON.stringify(NANOMDM_TYPES[c.type])}}`;
  return userEnrollment ? { enrollmentId: c.deviceId, ids } : { udid: c.deviceId, ids };
}

function urlParams(p: Readonly<Record<string, string>> | undefined): string {
  if (p === undefined) return "";
  const keys = Object.keys(p);
  return keys.length === 0 ? "" : `,"url_params":${JSON.stringify(p)}`;
}

/**
 * The base64 of the bytes the device sent, less the AuthToken Orchard issued
 * to a network user (a user channel echoes it in every request): the rest of
 * the body stays byte for byte.
 */
export function rawPayload(raw: Buffer): string {
  return withoutAuthToken(raw).toString("base64");
}

function envelope(topic: string, field: string, inner: string, now: number): WebhookEvent {
  const eventId = randomUUID();
  const body = `{"${field}":${inner},"created_at":"${new Date(now).toISOString()}","event_id":"${eventId}","topic":${JSON.stringify(topic)}}`;
  return { eventId, topic, enrollmentId: null, body };
}

/** A check-in's event (checkin_event); token_update_tally for mdm.TokenUpdate. */
export function checkinEvent(topic: NanoMdmTopic, s: MdmEventSource, now: number, tokenUpdateTally?: number): WebhookEvent {
  const id = identity(s);
  const inner =
    "{" +
    (id.enrollmentId !== undefined ? `"enrollment_id":${JSON.stringify(id.enrollmentId)},` : "") +
    `"ids":${id.ids},"raw_payload":"${rawPayload(s.raw)}"` +
    (tokenUpdateTally !== undefined ? `,"token_update_tally":${tokenUpdateTally}` : "") +
    (id.udid !== undefined ? `,"udid":${JSON.stringify(id.udid)}` : "") +
    urlParams(s.urlParams) +
    "}";
  return { ...envelope(topic, "checkin_event", inner, now), enrollmentId: s.channel.id };
}

/** A command report's event (mdm.Connect, acknowledge_event); no command_uuid for Idle. */
export function acknowledgeEvent(s: MdmEventSource, status: string, commandUuid: string | undefined, now: number): WebhookEvent {
  const id = identity(s);
  const inner =
    "{" +
    (commandUuid ? `"command_uuid":${JSON.stringify(commandUuid)},` : "") +
    (id.enrollmentId !== undefined ? `"enrollment_id":${JSON.stringify(id.enrollmentId)},` : "") +
    `"ids":${id.ids},"raw_payload":"${rawPayload(s.raw)}","status":${JSON.stringify(status)}` +
    (id.udid !== undefined ? `,"udid":${JSON.stringify(id.udid)}` : "") +
    urlParams(s.urlParams) +
    "}";
  // NanoMDM puts acknowledge_event first: it sorts before created_at.
  const eventId = randomUUID();
  const body = `{"acknowledge_event":${inner},"created_at":"${new Date(now).toISOString()}","event_id":"${eventId}","topic":"mdm.Connect"}`;
  return { eventId, topic: "mdm.Connect", enrollmentId: s.channel.id, body };
}

/**
 * One of Orchard's own events as a webhook event (an extra topic, off by
 * default): the topic is the event's type, orchard_event holds it as
 * GET /v1/events shows it (its id is given once the row is written, so it is left out).
 */
export function orchardEvent(type: string, enrollmentId: string | undefined, detail: unknown, now: number): WebhookEvent {
  const eventId = randomUUID();
  const at = new Date(now).toISOString();
  const inner = JSON.stringify({ type, enrollment_id: enrollmentId ?? null, at, detail: detail ?? null });
  const body = `{"created_at":"${at}","event_id":"${eventId}","orchard_event":${inner},"topic":${JSON.stringify(type)}}`;
  return { eventId, topic: type, enrollmentId: enrollmentId ?? null, body };
}
