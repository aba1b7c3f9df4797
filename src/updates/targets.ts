import { zoneFormatter } from "../protocol/time-zone.ts";
import type { DeviceFacts, StoredPolicy, UpdateStatus } from "../store/software-updates.ts";
import type { Release } from "./feed.ts";
import { compareVersions } from "./versions.ts";

// What each device should run, and where it stands: pure functions of a
// policy, the feed's releases for the device's platform (newest first), the
// device's facts and its reported status.

/** An enforcement target: TargetOSVersion, TargetBuildVersion, TargetLocalDateTime. */
export interface Target {
  osVersion: string;
  buildVersion: string | null;
  /** yyyy-mm-ddThh:mm:ss, the device's local time. */
  localDateTime: string;
}

/**
 * What a target is chosen from: the device's model identifier (Mac14,2,
 * iPhone15,2) and, when known, its software update device id
 * (softwareupdate.device-id, DeviceInformation's SoftwareUpdateDeviceID).
 * Apple's feed lists iPhones and iPads by model identifier but Macs by that
 * id (board ids such as J413AP, Mac-... for Intel Macs): a release runs on
 * the device when it lists either.
 */
export type TargetFacts = Pick<DeviceFacts, "productType" | "osVersion"> & { softwareUpdateDeviceId?: string | null };

/** A device's target, or why it has none: it runs the target or newer (current), or the feed knows no release for it. */
export type TargetOutcome = { kind: "target"; target: Target } | { kind: "current" } | { kind: "no_release" };

export const COMPLIANCE_STATES = [
  "up_to_date",
  "pending",
  "downloading",
  "installing",
  "failed",
  "overdue",
  "not_reporting",
  "no_release",
] as const;
export type ComplianceState = (typeof COMPLIANCE_STATES)[number];

const DAY_MS = 86_400_000;

/**
 * The target of one device under one policy. "latest": the newest release
 * listing the device (TargetFacts), deadline_days after its PostingDate at
 * deadline_time. "version": the policy's target; a device the feed says
 * cannot run it gets the newest release it can run (with the policy's
 * deadline), and when the feed does not list the version at all the target
 * is given as the operator wrote it. A device on the target or newer gets none.
 */
export function targetFor(policy: StoredPolicy, facts: TargetFacts, releases: readonly Release[]): TargetOutcome {
  const ids = [facts.productType, facts.softwareUpdateDeviceId].filter((id): id is string => typeof id === "string" && id !== "");
  const runs = (r: Release) => ids.some((id) => r.devices.includes(id));
  const runnable = releases.filter(runs);
  const give = (t: Target): TargetOutcome =>
    compareVersions(facts.osVersion, t.osVersion) >= 0 ? { kind: "current" } : { kind: "target", target: t };
  if (policy.mode === "latest") {
    const newest = runnable[0];
    if (!newest) return { kind: "no_release" };
    return give({
      osVersion: newest.version,
      buildVersion: newest.build,
      localDateTime: `${addDays(newest.postedOn, policy.deadlineDays ?? 0)}T${policy.deadlineTime ?? DEFAULT_DEADLINE_TIME}`,
    });
  }
  const wanted: Target = {
    osVersion: policy.targetOsVersion!,
    buildVersion: policy.targetBuildVersion,
    localDateTime: policy.targetLocalDateTime!,
  };
  const listed = releases.filter((r) => compareVersions(r.version, wanted.osVersion) === 0);
  if (listed.length === 0 || listed.some(runs)) return give(wanted);
  // The feed lists the version, not for this model: the newest this model can run, older than the target.
  const fallback = runnable.find((r) => compareVersions(r.version, wanted.osVersion) < 0);
  if (!fallback) return { kind: "no_release" };
  return give({ osVersion: fallback.version, buildVersion: fallback.build, localDateTime: wanted.localDateTime });
}

export const DEFAULT_DEADLINE_TIME = "19:00:00";

/** The last time zone to reach a local time: UTC-12 (Baker Island), 12 hours behind UTC. */
const LATEST_ZONE_MS = 12 * 3_600_000;

/**
 * When TargetLocalDateTime, a time on the device's own clock, has passed.
 * In a known IANA time zone (iOS's DeviceInformation TimeZone): that zone's
 * wall clock, daylight saving included. Unknown (Macs never report one),
 * the rule is the one a device anywhere agrees with: the deadline has
 * passed once it has passed in every time zone, that is in UTC-12, 12 hours
 * after the same wall-clock time in UTC. So no device is called overdue
 * before its own clock reaches the deadline; one far east of UTC-12 is
 * called overdue up to 26 hours late (UTC+14).
 */
export function deadlineAt(localDateTime: string, timeZone?: string | null): number {
  const asUtc = Date.parse(`${localDateTime}Z`);
  if (!timeZone) return asUtc + LATEST_ZONE_MS;
  // A fleet has a few targets times a few zones; a re-target judges every device (service.ts).
  const key = `${localDateTime} ${timeZone}`;
  let at = zonedDeadlines.get(key);
  if (at === undefined) {
    at = inZone(asUtc, timeZone);
    if (zonedDeadlines.size >= MAX_KEPT) zonedDeadlines.clear();
    zonedDeadlines.set(key, at);
  }
  return at;
}

const MAX_KEPT = 4096;
const zonedDeadlines = new Map<string, number>();

function inZone(asUtc: number, timeZone: string): number {
  const offset = zoneOffsetMs(timeZone, asUtc);
  if (offset === undefined) return asUtc + LATEST_ZONE_MS;
  // The instant whose wall clock in the zone reads localDateTime (twice over: the offset there may differ across a change).
  return asUtc - (zoneOffsetMs(timeZone, asUtc - offset) ?? offset);
}

/** The zone's offset from UTC at an instant (ms); undefined for a zone the runtime does not know. */
function zoneOffsetMs(timeZone: string, at: number): number | undefined {
  const parts = zoneFormatter(timeZone)?.formatToParts(new Date(at));
  if (!parts) return undefined;
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  const wall = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return wall - Math.floor(at / 1000) * 1000;
}

function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

/**
 * Where a device stands against its target: up to date (it runs the target
 * or newer, or has no target because it is current), failed (with Apple's
 * reason), overdue (past the deadline), installing (prepared or
 * installing), downloading, pending (waiting or nothing started yet), not
 * reporting (no softwareupdate.install-state status), or no release.
 *
 * The install state is about the update softwareupdate.pending-version
 * names (Apple's status items: install-state, pending-version, failure-reason
 * describe one update, the one pending): it counts for the target only when
 * that is the target's version. One about another version (a target the
 * device had before, under another policy or an older feed; an update it
 * started itself) says nothing of this target, which the device has not
 * started: pending.
 */
export function complianceOf(
  target: { osVersion: string; deadlineAt: number | null } | null,
  noRelease: boolean,
  facts: DeviceFacts | undefined,
  status: UpdateStatus | undefined,
  now: number,
): { state: ComplianceState; reason: string | null } {
  if (target === null) return { state: noRelease ? "no_release" : "up_to_date", reason: null };
  if (facts && compareVersions(facts.osVersion, target.osVersion) >= 0) return { state: "up_to_date", reason: null };
  const install = status?.installState ?? null;
  const ofTarget = aboutTarget(status, target.osVersion);
  if (install === "failed" && ofTarget) return { state: "failed", reason: status?.failureReason ?? null };
  if (target.deadlineAt !== null && now >= target.deadlineAt) return { state: "overdue", reason: null };
  if (!ofTarget && install !== null && UPDATE_UNDER_WAY.has(install)) return { state: "pending", reason: null };
  if (install === "installing" || install === "prepared") return { state: "installing", reason: null };
  if (install === "downloading") return { state: "downloading", reason: null };
  if (install === "none" || install === "waiting") return { state: "pending", reason: null };
  return { state: "not_reporting", reason: null };
}

/** The install states that describe an update (the pending version's), not the absence of one. */
const UPDATE_UNDER_WAY: ReadonlySet<string> = new Set(["downloading", "prepared", "installing", "failed"]);

/**
 * Whether the device's update status is about this version: its pending-version is it. A status without one is
 * believed (whether every device keeps pending-version beside a failure is not known); only another version
 * says it is about another update.
 */
function aboutTarget(status: UpdateStatus | undefined, osVersion: string): boolean {
  const pending = status?.pendingVersion;
  return typeof pending !== "string" || pending === "" || compareVersions(pending, osVersion) === 0;
}
