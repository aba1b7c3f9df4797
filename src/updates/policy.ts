import { validateDeclaration } from "../declarations/index.ts";
import { BadRequest } from "../errors.ts";
import { PLATFORMS } from "../protocol/platform.ts";
import type { StoredPolicy } from "../store/software-updates.ts";
import { DEFAULT_DEADLINE_TIME } from "./targets.ts";
import { isVersion } from "./versions.ts";

// An update policy as an operator writes it (PUT /v1/updates/policies/{name},
// `orchard updates policy put`), checked whole before anything is stored:
// every mistake is a 400 naming the field.

export const SETTINGS_TYPE = "com.apple.configuration.softwareupdate.settings";
/** The most ids a policy lists (as a bulk DDM assignment). */
export const MAX_POLICY_IDS = 100_000;
/** Short enough that every declaration identifier made from it stays within Apple's 64 octets. */
const POLICY_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;
const LOCAL_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/;
const TIME = /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$/;
const KEYS = [
  "platform",
  "enrollments",
  "mode",
  "deadline_days",
  "deadline_time",
  "target_os_version",
  "target_build_version",
  "target_local_date_time",
  "details_url",
  "settings",
];

export type PolicyInput = Omit<StoredPolicy, "createdAt" | "updatedAt">;

export function checkPolicyName(name: string): void {
  if (!POLICY_NAME.test(name))
    throw new BadRequest("a policy name is 1 to 40 letters, digits, _ and -, starting with a letter or digit", "invalid_parameter");
}

/**
 * The policy and, for enrollments {"ids": [...]}, its ids (repeats dropped);
 * warnings are said with the answer, never a reason to refuse (settings keys
 * Apple's schema does not know: it lags Apple's releases).
 */
export function policyOf(name: string, body: Record<string, unknown>): { policy: PolicyInput; ids: string[]; warnings: string[] } {
  checkPolicyName(name);
  const unknown = Object.keys(body).find((k) => !KEYS.includes(k));
  if (unknown !== undefined) bad(`unknown field ${JSON.stringify(unknown.slice(0, 64))}; allowed: ${KEYS.join(", ")}`);
  const platform = body.platform;
  if (typeof platform !== "string" || !(PLATFORMS as readonly string[]).includes(platform))
    bad(`platform must be one of ${PLATFORMS.join(", ")}`);
  const { scope, scopeSet, ids } = enrollments(body.enrollments);
  const mode = body.mode;
  const warnings: string[] = [];
  if (mode !== "latest" && mode !== "version") bad('mode must be "latest" (the newest release for each model) or "version"');
  const p: PolicyInput = {
    name,
    platform,
    scope,
    scopeSet,
    mode,
    targetOsVersion: null,
    targetBuildVersion: null,
    targetLocalDateTime: null,
    deadlineDays: null,
    deadlineTime: null,
    detailsUrl: detailsUrl(body.details_url),
    settings: settings(body.settings, warnings),
  };
  if (mode === "latest") {
    for (const k of ["target_os_version", "target_build_version", "target_local_date_time"]) {
      if (body[k] !== undefined) bad(`${k} goes with mode "version", not "latest"`);
    }
    const days = body.deadline_days;
    if (typeof days !== "number" || !Number.isInteger(days) || days < 0 || days > 365)
      bad('mode "latest" needs deadline_days: a whole number of days from 0 to 365 after Apple posts a release');
    p.deadlineDays = days;
    const time = body.deadline_time ?? DEFAULT_DEADLINE_TIME;
    if (typeof time !== "string" || !TIME.test(time)) bad("deadline_time must be hh:mm:ss (the device's local time)");
    p.deadlineTime = time;
  } else {
    for (const k of ["deadline_days", "deadline_time"]) if (body[k] !== undefined) bad(`${k} goes with mode "latest", not "version"`);
    const version = body.target_os_version;
    if (typeof version !== "string" || !isVersion(version)) bad('mode "version" needs target_os_version, such as "15.2"');
    p.targetOsVersion = version;
    const build = body.target_build_version;
    if (build !== undefined && (typeof build !== "string" || !/^[0-9A-Za-z]{1,24}$/.test(build)))
      bad("target_build_version must be a build number such as 24C101");
    p.targetBuildVersion = (build as string | undefined) ?? null;
    const when = body.target_local_date_time;
    if (typeof when !== "string" || !validLocalDateTime(when))
      bad('mode "version" needs target_local_date_time: yyyy-mm-ddThh:mm:ss, the device\'s local time (no zone)');
    p.targetLocalDateTime = when;
  }
  return { policy: p, ids, warnings };
}

function enrollments(v: unknown): { scope: StoredPolicy["scope"]; scopeSet: string | null; ids: string[] } {
  if (v === undefined || v === "all") return { scope: "all", scopeSet: null, ids: [] };
  if (typeof v !== "object" || v === null || Array.isArray(v) || Object.keys(v).length !== 1)
    bad('enrollments must be "all", {"set": "<DDM set>"} or {"ids": ["<enrollment id>", ...]}');
  const o = v as Record<string, unknown>;
  if ("set" in o) {
    if (typeof o.set !== "string" || o.set.length === 0 || o.set.length > 256 || /[\u0000-\u001f\u007f]/.test(o.set))
      bad("enrollments.set must be a DDM set's name");
    return { scope: "set", scopeSet: o.set, ids: [] };
  }
  if ("ids" in o) {
    const ids = o.ids;
    if (!Array.isArray(ids) || ids.length === 0) bad("enrollments.ids must be a non-empty array of enrollment ids");
    for (const id of ids) {
      if (typeof id !== "string" || id.length === 0 || id.length > 256 || /[\u0000-\u001f\u007f]/.test(id))
        bad("enrollments.ids must hold enrollment ids (1 to 256 characters, no control characters)");
    }
    const unique = [...new Set(ids as string[])];
    if (unique.length > MAX_POLICY_IDS) throw new BadRequest(`at most ${MAX_POLICY_IDS} ids in a policy`, "too_many_ids");
    return { scope: "ids", scopeSet: null, ids: unique };
  }
  bad('enrollments must be "all", {"set": "<DDM set>"} or {"ids": [...]}');
}

function detailsUrl(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  let url: URL | undefined;
  try {
    // No control characters: URL would accept a NUL or newline, and it is stored and sent as written.
    url = typeof v === "string" && v.length <= 2048 && !/[\u0000-\u001f\u007f]/.test(v) ? new URL(v) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "https:" && url.protocol !== "http:"))
    bad("details_url must be an http(s) URL of at most 2048 characters, without control characters");
  return v as string;
}

/**
 * The softwareupdate.settings Payload, checked against Apple's schema as a
 * declaration is: a wrong type or value is refused, a key the schema does not
 * know is kept and warned of (settings.Deferals: unknown key ...).
 */
function settings(v: unknown, warnings: string[]): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "object" || Array.isArray(v)) bad("settings must be a softwareupdate.settings Payload object");
  const checked = validateDeclaration({ Type: SETTINGS_TYPE, Identifier: "orchard.policy.settings", Payload: v });
  const { errors } = checked;
  if (errors.length > 0)
    bad(
      `settings: ${errors
        .slice(0, 5)
        .map((e) => `${e.path.replace(/^Payload\.?/, "") || "(payload)"}: ${e.message}`)
        .join("; ")}`,
    );
  for (const w of checked.warnings) warnings.push(w.replace(/^Payload(?=[.[:])/, "settings"));
  const text = JSON.stringify(v);
  if (text.length > 64 * 1024) bad("settings is larger than 64 KB");
  return text;
}

function validLocalDateTime(v: string): boolean {
  const m = LOCAL_DATE_TIME.exec(v);
  if (!m) return false;
  const t = Date.parse(`${v}Z`);
  // Not before 1970: a year below 100 would be read as 19xx where a time zone's wall clock is worked out (targets.ts).
  return Number.isFinite(t) && t >= 0 && new Date(t).toISOString().slice(0, 19) === v;
}

function bad(message: string): never {
  throw new BadRequest(message, "invalid_parameter");
}
