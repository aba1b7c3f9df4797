import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { OrchardError } from "../errors.ts";
import { checkProfile, SKIP_KEYS } from "./profile.ts";

const example = JSON.parse(
  fs.readFileSync(path.join(import.meta.dirname, "../../test/fixtures/ade/dep-profile.example.json"), "utf8"),
) as Record<string, unknown>;
const refused = (
  input: unknown,
  pattern: RegExp,
  o: { name: string; publicUrl?: string } = { name: "p", publicUrl: "https://mdm.example.org" },
) =>
  assert.throws(
    () => checkProfile(input, o),
    (err: unknown) => err instanceof OrchardError && err.code === "invalid_ade_profile" && pattern.test(err.message),
  );

test("NanoDEP's example profile: every key is one Orchard takes, except devices (assigned through the API)", () => {
  refused(example, /unknown key "devices"/);
  const { devices: _devices, configuration_web_url: _web, ...rest } = example;
  const checked = checkProfile(rest, { name: "x" });
  assert.equal(checked.profile_name, "(Required) Human readable name");
  assert.equal(checked.url, "https://mymdm.example.org/mdm/enroll");
  assert.deepEqual(checked.skip_setup_items, ["AppleID", "Android"]);
});

test("defaults, types, skip keys, certificates and the supervision rule", () => {
  assert.deepEqual(checkProfile({}, { name: "lab", publicUrl: "https://mdm.example.org/orchard" }), {
    profile_name: "lab",
    url: "https://mdm.example.org/orchard/ade/enroll",
  });
  refused({}, /give url/, { name: "lab" });
  refused({ skip_setup_items: ["AppleID", "Nope"] }, /"Nope" is not one of Apple's skip keys/);
  refused({ is_supervised: 1 }, /is_supervised must be true or false/);
  refused({ anchor_certs: ["bm90IGEgY2VydA=="] }, /DER certificate/);
  refused({ url: "ftp://x" }, /https/);
  refused({ is_supervised: false, is_mdm_removable: false }, /only with is_supervised/);
  refused([], /JSON object/);
  refused({ constructor: 1 }, /unknown key/);
  assert.ok(SKIP_KEYS.has("Welcome") && SKIP_KEYS.has("iCloudStorage") && SKIP_KEYS.size === 46);
});
