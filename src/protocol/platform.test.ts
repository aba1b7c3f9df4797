import assert from "node:assert/strict";
import { test } from "node:test";
import { PLATFORM_PREFIXES, platformOf } from "./platform.ts";

const CASES: Array<[string | null, string | null, string | null]> = [
  ["MacBookPro18,3", "MacBook Pro", "macOS"],
  ["Mac14,2", null, "macOS"],
  ["iMac21,1", null, "macOS"],
  ["Macmini9,1", null, "macOS"],
  ["VirtualMac2,1", null, "macOS"],
  ["iPhone15,4", "iPhone", "iOS"],
  ["iPad13,18", "iPad", "iPadOS"],
  ["AppleTV14,1", null, "tvOS"],
  ["RealityDevice14,1", null, "visionOS"],
  [null, "MacBook Air", "macOS"],
  [null, "iPad", "iPadOS"],
  [null, null, null],
  ["", "", null],
  ["Toaster1,1", "Toaster", null],
  // A lower-case or embedded name is not Apple's form.
  ["imac21,1", null, null],
  ["MyiPhone", null, null],
];

test("platformOf reads the platform from ProductName, else ModelName", () => {
  for (const [product, model, expected] of CASES) assert.equal(platformOf(product, model), expected, `${product} / ${model}`);
});

test("prefixes hold nothing SQL would read as a pattern or a quote", () => {
  for (const [prefix] of PLATFORM_PREFIXES) assert.match(prefix, /^[A-Za-z]+$/);
});
