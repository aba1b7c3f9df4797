// The store's records (camelCase, epoch milliseconds) as the API's JSON
// (snake_case, RFC 3339 UTC strings): http/wire.ts says what each looks like.

import type { CommandHistoryEntry, CommandResult, QueuedCommand } from "../store/commands.ts";
import type { DirectoryUser } from "../store/directory.ts";
import type { Enrollment } from "../store/enrollments.ts";
import type { StoredEvent } from "../store/events.ts";
import type { PushCertInfo } from "../store/push.ts";
import type { HeldCertificate, RebindHold } from "../store/rebinds.ts";
import type { UserSession } from "../store/user-sessions.ts";
import type {
  CommandHistoryJson,
  CommandResultJson,
  EnrollmentJson,
  EventJson,
  HeldCertificateJson,
  PushCertJson,
  QueuedCommandJson,
  RebindHoldJson,
  Time,
  UserJson,
  UserSessionJson,
} from "./wire.ts";

/** Epoch milliseconds as an RFC 3339 UTC time (`2026-12-03T12:00:00.000Z`). */
export function time(ms: number | string): Time {
  return new Date(Number(ms)).toISOString();
}

export function timeOrNull(ms: number | string | null | undefined): Time | null {
  return ms === null || ms === undefined ? null : time(ms);
}

export function enrollmentJson(e: Enrollment): EnrollmentJson {
  return {
    id: e.id,
    device_id: e.deviceId,
    type: e.type,
    user_id: e.userId,
    user_short_name: e.userShortName,
    user_long_name: e.userLongName,
    enabled: e.enabled,
    topic: e.topic,
    push_token: e.pushToken,
    push_magic: e.pushMagic,
    token_update_count: e.tokenUpdateCount,
    awaiting_configuration: e.awaitingConfiguration,
    serial_number: e.serialNumber,
    model: e.model,
    model_name: e.modelName,
    product_name: e.productName,
    platform: e.platform,
    device_name: e.deviceName,
    os_version: e.osVersion,
    build_version: e.buildVersion,
    created_at: time(e.createdAt),
    updated_at: time(e.updatedAt),
    last_seen_at: timeOrNull(e.lastSeenAt),
  };
}

export function queuedCommandJson(c: QueuedCommand): QueuedCommandJson {
  return {
    command_uuid: c.commandUuid,
    request_type: c.requestType,
    status: c.status,
    not_now_count: c.notNowCount,
    created_at: time(c.createdAt),
    updated_at: time(c.updatedAt),
  };
}

/** `result` is the report already turned into JSON (http/plist-json.ts). */
export function commandHistoryJson(c: CommandHistoryEntry): CommandHistoryJson {
  return { ...queuedCommandJson(c), active: c.active };
}

export function commandResultJson(r: CommandResult, result: Record<string, unknown> | null): CommandResultJson {
  return {
    enrollment_id: r.enrollmentId,
    status: r.status,
    active: r.active,
    not_now_count: r.notNowCount,
    updated_at: time(r.updatedAt),
    result,
  };
}

export function eventJson(e: StoredEvent): EventJson {
  return {
    id: e.id,
    at: time(e.at),
    type: e.type,
    enrollment_id: e.enrollmentId,
    detail: e.detail && snakeKeys(e.detail, DATA_KEYED.get(e.type)),
  };
}

/**
 * The maps in an event's detail whose keys are data, not field names: shown
 * as recorded, as the webhook sends them. update.feed_changed's releases and
 * newest are keyed by the feed's platforms (iOS, macOS, visionOS), as GET
 * /v1/updates/feed names them; snake_case made them i_os and mac_os.
 */
const DATA_KEYED: ReadonlyMap<string, ReadonlySet<string>> = new Map([["update.feed_changed", new Set(["releases", "newest"])]]);

/**
 * An event's detail with snake_case keys at every depth. Orchard writes them
 * so; events recorded by earlier versions (`serialNumber`, `shortName`) are
 * shown the same way. Details hold only Orchard's own facts, never a device's
 * plist, so no key is Apple's; a map keyed by data (`keep`, top-level keys
 * of the detail) is left as it is.
 */
function snakeKeys(detail: Record<string, unknown>, keep?: ReadonlySet<string>): Record<string, unknown> {
  const snake = (k: string) => k.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
  const convert = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(convert)
      : v !== null && typeof v === "object"
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [snake(k), convert(x)]))
        : v;
  return Object.fromEntries(Object.entries(detail).map(([k, x]) => [snake(k), keep?.has(k) ? x : convert(x)]));
}

export function rebindHoldJson(h: RebindHold): RebindHoldJson {
  return {
    cert_fingerprint: h.certFingerprint,
    held_at: time(h.heldAt),
    attempts: h.attempts,
    pushed_at: timeOrNull(h.pushedAt),
    approved_at: timeOrNull(h.approvedAt),
  };
}

export function heldCertificateJson(c: HeldCertificate): HeldCertificateJson {
  return {
    cert_fingerprint: c.certFingerprint,
    first_held_at: time(c.firstHeldAt),
    last_held_at: time(c.lastHeldAt),
    attempts: c.attempts,
  };
}

export function userJson(u: DirectoryUser): UserJson {
  return {
    short_name: u.shortName,
    guid: u.guid,
    full_name: u.fullName,
    state: u.state,
    digests: u.digests.map((d) => ({ realm: d.realm, algorithm: d.algorithm })),
    created_at: time(u.createdAt),
    updated_at: time(u.updatedAt),
  };
}

/** Never the token hash: only what the operator needs to see a login's state. */
export function userSessionJson(s: UserSession): UserSessionJson {
  return {
    enrollment_id: s.enrollmentId,
    device_id: s.deviceId,
    user_id: s.userId,
    short_name: s.shortName,
    state: s.state,
    challenged_at: timeOrNull(s.challengedAt),
    token_issued_at: timeOrNull(s.tokenIssuedAt),
    token_last_used_at: timeOrNull(s.tokenLastUsedAt),
    updated_at: time(s.updatedAt),
  };
}

export function pushCertJson(c: PushCertInfo): PushCertJson {
  return {
    topic: c.topic,
    not_before: time(c.notBefore),
    not_after: time(c.notAfter),
    fingerprint: c.fingerprint,
    created_at: time(c.createdAt),
    updated_at: time(c.updatedAt),
  };
}
