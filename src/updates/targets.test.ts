import assert from "node:assert/strict";
import { test } from "node:test";
import type { StoredPolicy } from "../store/software-updates.ts";
import { FeedError, parseFeed, type Release } from "./feed.ts";
import { complianceOf, deadlineAt, targetFor } from "./targets.ts";

// A Mac in Apple's feed: macOS releases list Macs by their software update
// device id (board ids such as J413AP, Mac-... for Intel Macs), the value of
// the softwareupdate.device-id status item and DeviceInformation's
// SoftwareUpdateDeviceID, not by the model identifier (Mac14,2).
const MAC_RELEASES: Release[] = [
  { version: "15.2", build: "24C101", postedOn: "2024-12-11", expiresOn: null, devices: ["J413AP", "J414sAP", "VMA2MACOSAP"] },
  { version: "14.7.2", build: "23H311", postedOn: "2024-12-11", expiresOn: null, devices: ["J413AP", "Mac-B4831CEBD52A0C4C"] },
];

const policy = (p: Partial<StoredPolicy>): StoredPolicy => ({
  name: "p",
  platform: "macOS",
  scope: "all",
  scopeSet: null,
  mode: "latest",
  targetOsVersion: null,
  targetBuildVersion: null,
  targetLocalDateTime: null,
  deadlineDays: 7,
  deadlineTime: "19:00:00",
  detailsUrl: null,
  settings: null,
  createdAt: 0,
  updatedAt: 0,
  ...p,
});

test("a Mac is matched by its software update device id (board id) as Apple's feed lists Macs", () => {
  const facts = { productType: "Mac14,2", softwareUpdateDeviceId: "J413AP", osVersion: "15.1" };
  assert.deepEqual(targetFor(policy({}), facts, MAC_RELEASES), {
    kind: "target",
    target: { osVersion: "15.2", buildVersion: "24C101", localDateTime: "2024-12-18T19:00:00" },
  });
  // An Intel Mac whose newest release is 14.7.2: a "version" policy for 15.2 gives it that one.
  const intel = { productType: "MacBookPro16,1", softwareUpdateDeviceId: "Mac-B4831CEBD52A0C4C", osVersion: "14.6" };
  const v = policy({ mode: "version", targetOsVersion: "15.2", targetLocalDateTime: "2025-01-10T12:00:00", deadlineDays: null });
  assert.deepEqual(targetFor(v, intel, MAC_RELEASES), {
    kind: "target",
    target: { osVersion: "14.7.2", buildVersion: "23H311", localDateTime: "2025-01-10T12:00:00" },
  });
  // The model identifier alone still matches where the feed lists it (iPhones, iPads).
  assert.equal(targetFor(policy({}), { productType: "J413AP", osVersion: "15.1" }, MAC_RELEASES).kind, "target");
  assert.equal(targetFor(policy({}), { productType: "Mac14,2", osVersion: "15.1" }, MAC_RELEASES).kind, "no_release");
});

const feed = (release: Record<string, unknown>) =>
  JSON.stringify({
    PublicAssetSets: {
      macOS: [{ ProductVersion: "15.2", Build: "24C101", PostingDate: "2024-12-11", SupportedDevices: ["J413AP"], ...release }],
    },
  });

test("a feed with a PostingDate or ExpirationDate that is no calendar date is refused (targets add days to it)", () => {
  for (const bad of [{ PostingDate: "2024-02-30" }, { PostingDate: "2024-13-01" }, { ExpirationDate: "2025-00-10" }]) {
    assert.throws(() => parseFeed(feed(bad)), FeedError, JSON.stringify(bad));
  }
  assert.equal(parseFeed(feed({ PostingDate: "2024-02-29" })).macOS?.[0]?.postedOn, "2024-02-29");
});

// The deadline is TargetLocalDateTime, a time on the device's own clock.

const HOUR = 3_600_000;

test("a deadline in an unknown time zone passes when it has passed everywhere: UTC-12", () => {
  const deadline = "2030-01-10T19:00:00";
  const utc = Date.parse("2030-01-10T19:00:00Z");
  assert.equal(deadlineAt(deadline), utc + 12 * HOUR);
  assert.equal(deadlineAt(deadline, null), utc + 12 * HOUR);
  assert.equal(deadlineAt(deadline, "Not/AZone"), utc + 12 * HOUR, "a zone the runtime does not know counts as unknown");
  const target = { osVersion: "15.3", deadlineAt: deadlineAt(deadline) };
  const facts = {
    enrollmentId: "M",
    platform: "macOS",
    productType: "Mac14,2",
    softwareUpdateDeviceId: null,
    osVersion: "15.2",
    buildVersion: null,
    timeZone: null,
    status: { installState: "none", pendingVersion: null, failureReason: null, failureCount: null },
  };
  // At 19:00 UTC the deadline has passed in London, not yet in Honolulu or on Baker Island: pending.
  assert.equal(complianceOf(target, false, facts, facts.status, utc).state, "pending");
  assert.equal(complianceOf(target, false, facts, facts.status, utc + 12 * HOUR - 1).state, "pending");
  assert.equal(complianceOf(target, false, facts, facts.status, utc + 12 * HOUR).state, "overdue");
});

test("a deadline in a known time zone is that zone's wall clock, daylight saving included", () => {
  assert.equal(deadlineAt("2030-01-10T19:00:00", "UTC"), Date.parse("2030-01-10T19:00:00Z"));
  // Winter in New York: UTC-5; summer: UTC-4.
  assert.equal(deadlineAt("2030-01-10T19:00:00", "America/New_York"), Date.parse("2030-01-11T00:00:00Z"));
  assert.equal(deadlineAt("2030-07-10T19:00:00", "America/New_York"), Date.parse("2030-07-10T23:00:00Z"));
  // East of UTC the deadline comes before the same wall-clock time in UTC.
  assert.equal(deadlineAt("2030-07-10T19:00:00", "Asia/Tokyo"), Date.parse("2030-07-10T10:00:00Z"));
  assert.equal(deadlineAt("2030-07-10T19:00:00", "Pacific/Kiritimati"), Date.parse("2030-07-10T05:00:00Z"));
});

test("a release past its ExpirationDate is never a target (Apple no longer signs it)", async () => {
  const { unexpired } = await import("./service.ts");
  const now = Date.parse("2025-02-01T10:00:00Z");
  const kept = unexpired(
    {
      macOS: [
        { ...MAC_RELEASES[0]!, expiresOn: "2025-01-31" },
        { ...MAC_RELEASES[1]!, expiresOn: "2025-02-01" },
      ],
      iOS: [{ version: "18.2", build: "22C152", postedOn: "2024-12-11", expiresOn: null, devices: ["iPhone15,2"] }],
    },
    now,
  );
  assert.deepEqual(
    kept.macOS?.map((r) => r.version),
    ["14.7.2"],
  );
  assert.equal(kept.iOS?.length, 1);
  // With 15.2 expired, a Mac on 15.1 has no newer release left: "latest" gives it none.
  assert.equal(
    targetFor(policy({}), { productType: "Mac14,2", softwareUpdateDeviceId: "J413AP", osVersion: "15.1" }, kept.macOS!).kind,
    "current",
  );
});

test("the install state counts for the target only when its pending version is the target's", () => {
  const now = Date.parse("2030-01-01T00:00:00Z");
  const target = { osVersion: "15.3", deadlineAt: Date.parse("2030-02-01T00:00:00Z") };
  const facts = {
    enrollmentId: "M",
    platform: "macOS",
    productType: "Mac14,2",
    softwareUpdateDeviceId: "J413AP",
    osVersion: "15.1",
    buildVersion: null,
    timeZone: null,
  };
  const state = (installState: string, pendingVersion: string | null, failureReason: string | null = null) => {
    const status = { installState, pendingVersion, failureReason, failureCount: failureReason ? 1 : 0 };
    return complianceOf(target, false, { ...facts, status }, status, now);
  };
  // Its own target: the state as reported.
  assert.deepEqual(state("failed", "15.3", "Insufficient storage"), { state: "failed", reason: "Insufficient storage" });
  assert.equal(state("downloading", "15.3").state, "downloading");
  assert.equal(state("prepared", "15.3").state, "installing");
  assert.equal(state("installing", "15.3.0").state, "installing");
  // A failure, or an update under way, of another version (the target before this one): this one is not started.
  assert.deepEqual(state("failed", "15.2", "Insufficient storage"), { state: "pending", reason: null });
  assert.equal(state("downloading", "15.2").state, "pending");
  assert.equal(state("installing", "15.4").state, "pending");
  // Failed with no pending version: believed, as before (only another version says it is about another update).
  assert.deepEqual(state("failed", null, "Insufficient storage"), { state: "failed", reason: "Insufficient storage" });
  assert.equal(state("downloading", "").state, "downloading");
  assert.equal(state("none", null).state, "pending");
  assert.equal(state("waiting", "15.3").state, "pending");
  // Past the deadline, a failure of another version is no reason to say failed: overdue.
  const late = { installState: "failed", pendingVersion: "15.2", failureReason: "Insufficient storage", failureCount: 1 };
  assert.equal(complianceOf(target, false, { ...facts, status: late }, late, target.deadlineAt).state, "overdue");
});
