import { compareVersions, isVersion } from "./versions.ts";

// Apple's software lookup feed (https://gdmf.apple.com/v2/pmv): the OS
// releases Apple publishes, by platform, each with the devices that can run
// it. Both PublicAssetSets (what anyone may install) and AssetSets (what
// MDM may push, older releases included) are read and merged. A feed that
// is not in Apple's shape is refused whole, naming what is wrong: the last
// good copy stays in use (updates/service.ts).

/** One OS release as the feed lists it. */
export interface Release {
  version: string;
  build: string;
  /** YYYY-MM-DD, Apple's PostingDate. */
  postedOn: string;
  /** YYYY-MM-DD, Apple's ExpirationDate (null when absent). */
  expiresOn: string | null;
  /** Product types (Mac14,2, iPhone15,2) and board ids, as Apple lists them. */
  devices: string[];
}

/** Releases by the feed's platform key (iOS, macOS, visionOS, ...), newest first. */
export type Releases = Record<string, Release[]>;

/** The feed's list for each of Orchard's platforms: iPads are in Apple's iOS list. */
export const FEED_KEYS: Record<string, string> = {
  macOS: "macOS",
  iOS: "iOS",
  iPadOS: "iOS",
  tvOS: "tvOS",
  watchOS: "watchOS",
  visionOS: "visionOS",
};

export class FeedError extends Error {}

const MAX_RELEASES = 5000;
const MAX_DEVICES = 5000;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const PLATFORM_KEY = /^[A-Za-z][A-Za-z0-9]{0,31}$/;

/** Reads the feed's JSON text: its releases by platform, or a FeedError naming what is not in Apple's shape. */
export function parseFeed(text: string): Releases {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new FeedError("the feed is not JSON");
  }
  if (!isObject(json)) throw new FeedError("the feed is not a JSON object");
  if (json.PublicAssetSets === undefined && json.AssetSets === undefined)
    throw new FeedError("the feed has neither PublicAssetSets nor AssetSets");
  const merged = new Map<string, Map<string, Release>>();
  let count = 0;
  for (const setName of ["PublicAssetSets", "AssetSets"] as const) {
    const sets = json[setName];
    if (sets === undefined) continue;
    if (!isObject(sets)) throw new FeedError(`${setName} is not an object`);
    for (const [platform, list] of Object.entries(sets)) {
      if (!PLATFORM_KEY.test(platform)) throw new FeedError(`${setName} has a platform key that is not a name`);
      if (!Array.isArray(list)) throw new FeedError(`${setName}.${platform} is not an array`);
      let byId = merged.get(platform);
      if (!byId) merged.set(platform, (byId = new Map()));
      for (const [i, item] of list.entries()) {
        if (++count > MAX_RELEASES) throw new FeedError(`the feed lists more than ${MAX_RELEASES} releases`);
        const r = release(item, `${setName}.${platform}[${i}]`);
        const key = `${r.version} ${r.build}`;
        const had = byId.get(key);
        if (had) had.devices = [...new Set([...had.devices, ...r.devices])];
        else byId.set(key, r);
      }
    }
  }
  const out: Releases = {};
  for (const [platform, byId] of [...merged].sort(([a], [b]) => a.localeCompare(b))) {
    out[platform] = [...byId.values()].sort(newestFirst);
  }
  return out;
}

/** Newest version first; one version's builds by posting date, newest first, then by build. */
export function newestFirst(a: Release, b: Release): number {
  return compareVersions(b.version, a.version) || b.postedOn.localeCompare(a.postedOn) || b.build.localeCompare(a.build);
}

function release(item: unknown, where: string): Release {
  if (!isObject(item)) throw new FeedError(`${where} is not an object`);
  const { ProductVersion: version, Build: build, PostingDate: posted, ExpirationDate: expires, SupportedDevices: devices } = item;
  if (typeof version !== "string" || !isVersion(version)) throw new FeedError(`${where}: ProductVersion is not a version`);
  if (typeof build !== "string" || !/^[0-9A-Za-z]{1,24}$/.test(build)) throw new FeedError(`${where}: Build is not a build number`);
  if (!isDate(posted)) throw new FeedError(`${where}: PostingDate is not a date (YYYY-MM-DD)`);
  if (expires !== undefined && !isDate(expires)) throw new FeedError(`${where}: ExpirationDate is not a date (YYYY-MM-DD)`);
  if (
    !Array.isArray(devices) ||
    devices.length > MAX_DEVICES ||
    devices.some((d) => typeof d !== "string" || d.length === 0 || d.length > 64)
  )
    throw new FeedError(`${where}: SupportedDevices is not a list of device names`);
  return {
    version,
    build,
    postedOn: posted,
    expiresOn: (expires as string | undefined) ?? null,
    devices: [...new Set(devices as string[])],
  };
}

/** YYYY-MM-DD naming a day of the calendar: deadlines are counted from it (2024-02-30 would move, 2024-13-01 not count). */
function isDate(v: unknown): v is string {
  if (typeof v !== "string" || !DATE.test(v)) return false;
  const t = Date.parse(`${v}T00:00:00Z`);
  return Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
