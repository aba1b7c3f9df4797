// DEP profiles as the operator writes them: Apple's keys (godep ProfileJson,
// NanoDEP's docs/dep-profile.example.json), checked before they are stored so
// Apple's terse refusals are the exception. The url defaults to Orchard's
// enrollment URL for ADE under --public-url (served in phase 2).
import { X509Certificate } from "node:crypto";
import { BadRequest } from "../errors.ts";

/** The path the profile's url points at under --public-url (phase 2 serves it). */
export const ADE_ENROLL_PATH = "/ade/enroll";

/**
 * Apple's skip keys (Setup Assistant panes), from Apple's device-management
 * repository, other/skipkeys.yaml (MIT licence, Copyright © 2022-2024 Apple Inc.;
 * https://github.com/apple/device-management). Update with that file.
 */
export const SKIP_KEYS: ReadonlySet<string> = new Set([
  "Accessibility",
  "ActionButton",
  "Android",
  "Appearance",
  "AppleID",
  "AppStore",
  "Biometric",
  "CameraButton",
  "DeviceToDeviceMigration",
  "Diagnostics",
  "DisplayTone",
  "EnableLockdownMode",
  "FileVault",
  "HomeButtonSensitivity",
  "iCloudDiagnostics",
  "iCloudStorage",
  "iMessageAndFaceTime",
  "Intelligence",
  "Keyboard",
  "Location",
  "MessagingActivationUsingPhoneNumber",
  "OnBoarding",
  "Passcode",
  "Payment",
  "Privacy",
  "Restore",
  "RestoreCompleted",
  "ScreenSaver",
  "Safety",
  "ScreenTime",
  "SIMSetup",
  "Siri",
  "SoftwareUpdate",
  "SpokenLanguage",
  "TapToSetup",
  "TermsOfAddress",
  "TOS",
  "TVHomeScreenSync",
  "TVProviderSignIn",
  "TVRoom",
  "UpdateCompleted",
  "Wallpaper",
  "WatchMigration",
  "WebContentFiltering",
  "Welcome",
  "Zoom",
]);

type Kind = "string" | "boolean" | "strings" | "certs";

/** The profile keys Orchard takes, with their kind (devices are assigned through the API, not here). */
const KEYS: Record<string, Kind> = {
  profile_name: "string",
  url: "string",
  configuration_web_url: "string",
  allow_pairing: "boolean",
  auto_advance_setup: "boolean",
  await_device_configured: "boolean",
  is_supervised: "boolean",
  is_mandatory: "boolean",
  is_mdm_removable: "boolean",
  is_multi_user: "boolean",
  is_return_to_service: "boolean",
  do_not_use_profile_from_backup: "boolean",
  anchor_certs: "certs",
  supervising_host_certs: "certs",
  skip_setup_items: "strings",
  department: "string",
  support_phone_number: "string",
  support_email_address: "string",
  language: "string",
  region: "string",
  org_magic: "string",
};

const invalid = (why: string) => new BadRequest(`DEP profile: ${why}`, "invalid_ade_profile");

/**
 * The profile as it will be sent to Apple: the keys checked, profile_name
 * defaulting to the local name and url to Orchard's ADE enrollment URL.
 */
export function checkProfile(input: unknown, o: { name: string; publicUrl?: string }): Record<string, unknown> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) throw invalid("the body must be a JSON object");
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    const kind = Object.hasOwn(KEYS, key) ? KEYS[key] : undefined;
    if (kind === undefined) {
      const hint = key === "devices" ? " (assign devices with POST .../assign)" : "";
      throw invalid(`unknown key ${JSON.stringify(key)}${hint}`);
    }
    if (value === null) continue;
    if (kind === "boolean" && typeof value !== "boolean") throw invalid(`${key} must be true or false`);
    if (kind === "string" && (typeof value !== "string" || value.length > 2048)) throw invalid(`${key} must be a string`);
    if ((kind === "strings" || kind === "certs") && (!Array.isArray(value) || value.some((v) => typeof v !== "string"))) {
      throw invalid(`${key} must be a list of strings`);
    }
    if (kind === "certs") for (const c of value as string[]) checkCert(key, c);
    out[key] = value;
  }
  for (const item of (out.skip_setup_items as string[] | undefined) ?? []) {
    if (!SKIP_KEYS.has(item)) throw invalid(`skip_setup_items: ${JSON.stringify(item)} is not one of Apple's skip keys`);
  }
  out.profile_name ??= o.name;
  if (out.url === undefined) {
    if (!o.publicUrl) throw invalid("give url, or start Orchard with --public-url so it defaults to Orchard's ADE enrollment URL");
    out.url = o.publicUrl + ADE_ENROLL_PATH;
  }
  for (const key of ["url", "configuration_web_url"]) {
    const v = out[key];
    if (v === undefined) continue;
    let url: URL;
    try {
      url = new URL(v as string);
    } catch {
      throw invalid(`${key} is not a URL`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") throw invalid(`${key} must be an https:// (or http://) URL`);
  }
  if (out.is_mdm_removable === false && out.is_supervised === false)
    throw invalid("is_mdm_removable can be false only with is_supervised true");
  return out;
}

function checkCert(key: string, b64: string): void {
  try {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new Error();
    new X509Certificate(Buffer.from(b64, "base64"));
  } catch {
    throw invalid(`${key}: each entry must be a DER certificate in base64`);
  }
}
