// An ABM server's enrollment settings, as the operator writes them (JSON):
// what the enrollment URL demands before it answers a profile (a minimum OS
// per platform, Platform SSO) and the initial set a device awaiting
// configuration gets before DeviceConfigured. Checked whole before storing.
import { BadRequest } from "../errors.ts";
import { parsePlistDict, PlistError, type PlistDict } from "../plist/index.ts";

/** Platforms Apple's softwareupdate.required answer exists for (iOS 17, macOS 14); iPadOS is iOS's. */
export const MIN_OS_PLATFORMS = ["macos", "ios", "ipados"] as const;
export type MinOsPlatform = (typeof MIN_OS_PLATFORMS)[number];

export interface MinimumOs {
  osVersion: string;
  buildVersion?: string;
}

export interface PlatformSso {
  profileUrl: string;
  packageManifestUrl: string;
  authUrl: string;
}

export interface EnrollmentSettings {
  minimumOs: Partial<Record<MinOsPlatform, MinimumOs>>;
  platformSso?: PlatformSso;
  /** Command plists (XML), each queued for the device with a CommandUUID of its own. */
  initialCommands: string[];
  /** DDM sets assigned to the device when it awaits configuration. */
  initialDdmSets: string[];
  /** A failed initial command still sends DeviceConfigured (true) or holds the device in Setup Assistant (false). */
  releaseOnFailure: boolean;
}

export const NO_SETTINGS: EnrollmentSettings = { minimumOs: {}, initialCommands: [], initialDdmSets: [], releaseOnFailure: true };

const MAX_COMMANDS = 50;
const MAX_COMMAND_BYTES = 256 * 1024;
const VERSION = /^\d{1,3}(\.\d{1,3}){0,2}$/;
const BUILD = /^[0-9]{1,3}[A-Z][0-9]{1,5}[a-z]?$/;
const SET_NAME = /^[A-Za-z0-9._:-]{1,128}$/;
const KEYS = ["minimum_os", "platform_sso", "initial_commands", "initial_ddm_sets", "release_on_failure"];

const invalid = (why: string) => new BadRequest(`enrollment settings: ${why}`, "invalid_ade_settings");
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The settings from the operator's JSON (snake_case keys), checked; throws BadRequest invalid_ade_settings. */
export function checkSettings(input: unknown): EnrollmentSettings {
  if (!isObject(input)) throw invalid("the body must be a JSON object");
  for (const key of Object.keys(input)) if (!KEYS.includes(key)) throw invalid(`unknown key ${JSON.stringify(key.slice(0, 64))}`);
  const out: EnrollmentSettings = { minimumOs: {}, initialCommands: [], initialDdmSets: [], releaseOnFailure: true };
  if (input.minimum_os !== undefined && input.minimum_os !== null) {
    if (!isObject(input.minimum_os)) throw invalid("minimum_os must be an object of platforms");
    for (const [platform, v] of Object.entries(input.minimum_os)) {
      if (!(MIN_OS_PLATFORMS as readonly string[]).includes(platform))
        throw invalid(`minimum_os: platform ${JSON.stringify(platform.slice(0, 32))} is not one of ${MIN_OS_PLATFORMS.join(", ")}`);
      if (!isObject(v)) throw invalid(`minimum_os.${platform} must be {"os_version": "15.4", "build_version"?: "24E248"}`);
      for (const k of Object.keys(v))
        if (k !== "os_version" && k !== "build_version") throw invalid(`minimum_os.${platform}: unknown key ${k}`);
      if (typeof v.os_version !== "string" || !VERSION.test(v.os_version))
        throw invalid(`minimum_os.${platform}.os_version must be like 15.4 or 17.5.1`);
      if (v.build_version !== undefined && (typeof v.build_version !== "string" || !BUILD.test(v.build_version)))
        throw invalid(`minimum_os.${platform}.build_version must be a build like 24E248`);
      out.minimumOs[platform as MinOsPlatform] = { osVersion: v.os_version, buildVersion: v.build_version as string | undefined };
    }
  }
  if (input.platform_sso !== undefined && input.platform_sso !== null) {
    const p = input.platform_sso;
    if (!isObject(p)) throw invalid("platform_sso must be an object");
    for (const k of Object.keys(p))
      if (!["profile_url", "package_manifest_url", "auth_url"].includes(k)) throw invalid(`platform_sso: unknown key ${k.slice(0, 64)}`);
    out.platformSso = {
      profileUrl: httpsUrl(p.profile_url, "platform_sso.profile_url"),
      packageManifestUrl: httpsUrl(p.package_manifest_url, "platform_sso.package_manifest_url"),
      authUrl: httpsUrl(p.auth_url, "platform_sso.auth_url"),
    };
  }
  if (input.initial_commands !== undefined) {
    const list = input.initial_commands;
    if (!Array.isArray(list) || list.length > MAX_COMMANDS)
      throw invalid(`initial_commands must be a list of at most ${MAX_COMMANDS} command plists`);
    list.forEach((c, i) => {
      if (typeof c !== "string" || Buffer.byteLength(c) > MAX_COMMAND_BYTES)
        throw invalid(`initial_commands[${i}] must be a command plist (XML text) of at most 256 KiB`);
      requestTypeOf(c, `initial_commands[${i}]`);
      out.initialCommands.push(c);
    });
  }
  if (input.initial_ddm_sets !== undefined) {
    const sets = input.initial_ddm_sets;
    if (!Array.isArray(sets) || sets.length > MAX_COMMANDS || sets.some((s) => typeof s !== "string" || !SET_NAME.test(s)))
      throw invalid("initial_ddm_sets must be a list of DDM set names");
    out.initialDdmSets = [...new Set(sets as string[])];
  }
  if (input.release_on_failure !== undefined) {
    if (typeof input.release_on_failure !== "boolean") throw invalid("release_on_failure must be true or false");
    out.releaseOnFailure = input.release_on_failure;
  }
  return out;
}

/** The command's RequestType; throws invalid_ade_settings when the plist is not a command. */
export function requestTypeOf(plist: string, what = "command"): string {
  let dict: PlistDict;
  try {
    dict = parsePlistDict(Buffer.from(plist));
  } catch (err) {
    if (err instanceof PlistError) throw invalid(`${what} is not a valid plist: ${err.message}`);
    throw err;
  }
  const command = dict.Command;
  if (!isObject(command) || Buffer.isBuffer(command) || command instanceof Date) throw invalid(`${what} has no Command dict`);
  const type = (command as PlistDict).RequestType;
  if (typeof type !== "string" || type === "") throw invalid(`${what}: Command has no RequestType`);
  if (type === "DeviceConfigured") throw invalid(`${what}: DeviceConfigured is sent by Orchard after the initial set`);
  return type;
}

function httpsUrl(v: unknown, what: string): string {
  if (typeof v !== "string") throw invalid(`${what} must be an https:// URL`);
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw invalid(`${what} is not a URL`);
  }
  if (url.protocol !== "https:") throw invalid(`${what} must be an https:// URL`);
  return v;
}

/** The stored settings (written by toJson from checked input); null: none. */
export function readSettings(json: string | null): EnrollmentSettings {
  if (json === null) return NO_SETTINGS;
  return checkSettings(JSON.parse(json));
}

/** The settings in the operator's JSON shape (what is stored and what the API answers). */
export function settingsJson(s: EnrollmentSettings): Record<string, unknown> {
  const minimum_os: Record<string, unknown> = {};
  for (const [p, m] of Object.entries(s.minimumOs)) {
    minimum_os[p] = { os_version: m.osVersion, ...(m.buildVersion ? { build_version: m.buildVersion } : {}) };
  }
  return {
    minimum_os,
    platform_sso: s.platformSso
      ? { profile_url: s.platformSso.profileUrl, package_manifest_url: s.platformSso.packageManifestUrl, auth_url: s.platformSso.authUrl }
      : null,
    initial_commands: s.initialCommands,
    initial_ddm_sets: s.initialDdmSets,
    release_on_failure: s.releaseOnFailure,
  };
}
