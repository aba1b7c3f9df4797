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

/**
 * GET /v1/fleet: the fleet at a glance, for the console's overview. Three
 * grouped passes over enrollments (100,000 channels: bench/run.ts console).
 */
export function registerFleetRoutes(app: FastifyInstance, o: { store: Store }): void {
  app.get("/v1/fleet", async (): Promise<FleetJson> => {
    const now = Date.now();
    const [byType, notSeen, os] = await Promise.all([
      o.store.stats.enrollmentsByType(),
      o.store.stats.notSeenSince(NOT_SEEN_DAYS.map((d) => now - d * DAY_MS)),
      o.store.stats.osVersions(OS_VERSIONS),
    ]);
    return {
      enrollments: byType.map((r) => ({ type: r.type as EnrollmentType, platform: r.platform as Platform | null, count: r.count })),
      not_seen: notSeen.map((r, i) => ({ days: NOT_SEEN_DAYS[i]!, since: time(r.since), count: r.count })),
      os_versions: os.map((r) => ({ platform: r.platform as Platform | null, os_version: r.osVersion, count: r.count })),
    };
  });
}
