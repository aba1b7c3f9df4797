import assert from "node:assert/strict";
import { test } from "node:test";
import { answersTimeZone } from "./zone-ask.ts";

test("the devices asked for their time zone: iOS, iPadOS, tvOS 14 and visionOS 2 or later; never a Mac or a watch", () => {
  for (const [platform, version] of [
    ["iOS", "14.0"],
    ["iOS", "17.5"],
    ["iPadOS", "18.1"],
    ["tvOS", "14"],
    ["visionOS", "2.0"],
    ["iOS", null],
  ] as const) {
    assert.equal(answersTimeZone(platform, version), true, `${platform} ${version}`);
  }
  for (const [platform, version] of [
    ["iOS", "13.7"],
    ["tvOS", "13.4.8"],
    ["visionOS", "1.3"],
    ["macOS", "15.2"],
    ["macOS", null],
    ["watchOS", "11.2"],
    ["", "18.0"],
  ] as const) {
    assert.equal(answersTimeZone(platform, version), false, `${platform} ${version}`);
  }
});
