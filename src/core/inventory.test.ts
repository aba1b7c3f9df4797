import assert from "node:assert/strict";
import { test } from "node:test";
import { isTimeZone } from "../protocol/time-zone.ts";
import { changesTargeting, fromCommandResult, fromDeviceInformation } from "./inventory.ts";

test("DeviceInformation's TimeZone is learned as time_zone when it is an IANA zone name", () => {
  assert.equal(fromDeviceInformation({ TimeZone: "Europe/Paris" }).time_zone, "Europe/Paris");
  assert.equal(fromDeviceInformation({ TimeZone: "Pacific/Kiritimati" }).time_zone, "Pacific/Kiritimati");
  assert.equal(fromDeviceInformation({ TimeZone: "UTC" }).time_zone, "UTC");
  const result = fromCommandResult({ QueryResponses: { TimeZone: "America/New_York", OSVersion: "18.2" } });
  assert.deepEqual(result?.values, { time_zone: "America/New_York", os_version: "18.2" });
});

test("a TimeZone that is no zone name, or not text, is left out; the rest of the answer is learned", () => {
  for (const zone of ["Mars/Olympus_Mons", "", "+01:00", "-05:30", "Europe/Paris\u0000", `Europe/${"x".repeat(1100)}`, "\ud800"]) {
    const v = fromDeviceInformation({ TimeZone: zone, DeviceName: "Phone" });
    assert.equal(v.time_zone, undefined, JSON.stringify(zone));
    assert.equal(v.device_name, "Phone");
  }
  for (const zone of [1, true, ["Europe/Paris"], { name: "Europe/Paris" }, Buffer.from("Europe/Paris")]) {
    assert.equal(fromDeviceInformation({ TimeZone: zone }).time_zone, undefined, String(zone));
  }
  assert.equal(isTimeZone("Asia/Tokyo"), true);
  assert.equal(isTimeZone("Asia/Nowhere"), false);
});

test("a new time zone re-targets the device (its update deadline is on that clock)", () => {
  assert.equal(changesTargeting(["time_zone"]), true);
  assert.equal(changesTargeting(["device_name", "available_device_capacity"]), false);
});
