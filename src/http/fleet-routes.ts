import type { FastifyInstance } from "fastify";
import type { EnrollmentType } from "../protocol/enrollment.ts";
import type { Platform } from "../protocol/platform.ts";
import type { Store } from "../store/index.ts";
import type { FleetJson } from "./wire.ts";
import { time } from "./wire-map.ts";

/** The "not seen for" columns of the overview, in days; each links to GET /v1/enrollments?seen_before=. */
export const NOT_SEEN_DAYS = [1, 7, 30] as const;
const DAY_MS = 86_400_000;
const OS_VERSIONS = 50;
/** The overview's passes read every enrollment: one answer serves every console for this long (each process its own). */
const CACHE_MS = 10_000;

/**
 * GET /v1/fleet: the fleet at a glance, for the console's overview. Three
 * grouped passes over enrollments (about a second for 100,000 on a busy
 * 2-core machine, bench/console.ts), so an answer is kept CACHE_MS.
 */
export function registerFleetRoutes(app: FastifyInstance, o: { store: Store }): void {
  let cached: { at: number; answer: Promise<FleetJson> } | undefined;
  app.get("/v1/fleet", async (): Promise<FleetJson> => {
    const now = Date.now();
    if (cached && now - cached.at < CACHE_MS) return cached.answer;
    const answer = fleet(o.store, now);
    cached = { at: now, answer };
    answer.catch(() => (cached = undefined));
    return answer;
  });
}

async function fleet(store: Store, now: number): Promise<FleetJson> {
  const [byType, notSeen, os] = await Promise.all([
    store.stats.enrollmentsByType(),
    store.stats.notSeenSince(NOT_SEEN_DAYS.map((d) => now - d * DAY_MS)),
    store.stats.osVersions(OS_VERSIONS),
  ]);
  return {
    enrollments: byType.map((r) => ({ type: r.type as EnrollmentType, platform: r.platform as Platform | null, count: r.count })),
    not_seen: notSeen.map((r, i) => ({ days: NOT_SEEN_DAYS[i]!, since: time(r.since), count: r.count })),
    os_versions: os.map((r) => ({ platform: r.platform as Platform | null, os_version: r.osVersion, count: r.count })),
  };
}
