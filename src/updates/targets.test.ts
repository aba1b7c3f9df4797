import assert from "node:assert/strict";
import { test } from "node:test";
import { complianceOf, deadlineAt } from "./targets.ts";

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
    osVersion: "15.2",
    buildVersion: null,
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
