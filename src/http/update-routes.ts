import type { FastifyInstance } from "fastify";
import { BadRequest, NotFound } from "../errors.ts";
import { PLATFORMS } from "../protocol/platform.ts";
import type { StoredPolicy, UpdateDeviceRow } from "../store/software-updates.ts";
import { FEED_KEYS } from "../updates/feed.ts";
import type { FeedInfo, ReconcileResult, SoftwareUpdates } from "../updates/service.ts";
import { COMPLIANCE_STATES } from "../updates/targets.ts";
import { addWarnings, jsonObject, nextCursor, pageSize } from "./request-helpers.ts";
import type {
  UpdateApplyJson,
  UpdateComplianceJson,
  UpdateDeviceJson,
  UpdateDevicePage,
  UpdateFeedJson,
  UpdateFeedRefreshJson,
  UpdatePolicyDetailJson,
  UpdatePolicyJson,
  UpdatePolicyList,
  UpdatePolicySaved,
  UpdateReleasesJson,
} from "./wire.ts";
import { time, timeOrNull } from "./wire-map.ts";

// OS updates through DDM (src/updates/, docs/software-updates.md): the
// software lookup feed, update policies, and where each device stands.

const POLICY_BODY_LIMIT = 16 * 1024 * 1024;

export function registerUpdateRoutes(app: FastifyInstance, o: { updates: SoftwareUpdates }): void {
  const { updates } = o;
  type Named = { Params: { name: string } };

  app.get("/v1/updates/feed", async (): Promise<UpdateFeedJson> => feedJson(await updates.feedInfo()));

  app.post("/v1/updates/feed/refresh", async (): Promise<UpdateFeedRefreshJson> => {
    const r = await updates.refresh(Date.now());
    return { ...feedJson(r), refreshed: r.refreshed, changed: r.changed };
  });

  app.get<{ Querystring: { platform?: string } }>("/v1/updates/releases", async (req): Promise<UpdateReleasesJson> => {
    const platform = req.query.platform;
    if (platform !== undefined && !(PLATFORMS as readonly string[]).includes(platform))
      throw new BadRequest(`platform must be one of ${PLATFORMS.join(", ")}`, "invalid_parameter");
    const all = await updates.releases();
    const keys = platform === undefined ? Object.keys(all) : [FEED_KEYS[platform]!];
    const releases: UpdateReleasesJson["releases"] = {};
    for (const k of keys) {
      releases[k] = (all[k] ?? []).map((r) => ({
        version: r.version,
        build: r.build,
        posted_on: r.postedOn,
        expires_on: r.expiresOn,
        devices: r.devices,
      }));
    }
    return { releases };
  });

  app.get("/v1/updates/policies", async (): Promise<UpdatePolicyList> => {
    const policies = await updates.policies();
    return { policies: await Promise.all(policies.map((p) => policyJson(p, updates))) };
  });

  app.put<Named>("/v1/updates/policies/:name", { bodyLimit: POLICY_BODY_LIMIT }, async (req, reply): Promise<UpdatePolicySaved> => {
    const { created, result, reach, warnings } = await updates.putPolicy(req.params.name, jsonObject(req), Date.now());
    addWarnings(req, reply, { policy: req.params.name }, warnings, "update policy saved with a warning");
    const policy = (await updates.policy(req.params.name))!;
    void reply.code(created ? 201 : 200);
    return { policy: await policyJson(policy, updates), created, applied: applyJson(result), reach, warnings };
  });

  app.get<Named>("/v1/updates/policies/:name", async (req): Promise<UpdatePolicyDetailJson> => {
    const policy = await updates.policy(req.params.name);
    if (!policy) throw new NotFound("no such update policy");
    return { ...(await policyJson(policy, updates)), listed_ids: policy.scope === "ids" ? await updates.policyIds(policy.name) : null };
  });

  app.delete<Named>("/v1/updates/policies/:name", async (req): Promise<{ removed: string; applied: UpdateApplyJson }> => {
    const result = await updates.deletePolicy(req.params.name, Date.now());
    return { removed: req.params.name, applied: applyJson(result) };
  });

  app.get<Named>("/v1/updates/policies/:name/compliance", async (req): Promise<UpdateComplianceJson> => {
    const c = await updates.compliance(req.params.name);
    return { policy: c.policy.name, total: c.total, counts: c.counts };
  });

  app.get<Named & { Querystring: { state?: string; limit?: string; cursor?: string } }>(
    "/v1/updates/policies/:name/devices",
    async (req): Promise<UpdateDevicePage> => {
      const { state, cursor } = req.query;
      if (state !== undefined && !(COMPLIANCE_STATES as readonly string[]).includes(state))
        throw new BadRequest(`state must be one of ${COMPLIANCE_STATES.join(", ")}`, "invalid_parameter");
      if (!(await updates.policy(req.params.name))) throw new NotFound("no such update policy");
      const limit = pageSize(req.query.limit);
      const rows = await updates.policyDevices(req.params.name, state, cursor ?? "", limit);
      return { devices: rows.map(deviceJson), next_cursor: nextCursor(rows, limit, (r) => r.enrollmentId) };
    },
  );

  app.get<{ Params: { id: string } }>("/v1/updates/devices/:id", async (req): Promise<UpdateDeviceJson> => {
    const row = await updates.device(req.params.id);
    if (!row) throw new NotFound("no update policy reaches this enrollment (or it is not re-targeted yet)");
    return deviceJson(row);
  });

  app.post("/v1/updates/apply", async (req): Promise<UpdateApplyJson> => {
    const result = await updates.reconcile(Date.now());
    req.log.info(applyJson(result), "software update targets applied on request");
    return applyJson(result);
  });
}

function feedJson(f: FeedInfo): UpdateFeedJson {
  return {
    url: f.url,
    fetched_at: timeOrNull(f.fetchedAt),
    attempted_at: timeOrNull(f.attemptedAt),
    error: f.error,
    error_at: timeOrNull(f.errorAt),
    releases: f.releases,
  };
}

async function policyJson(p: StoredPolicy, updates: SoftwareUpdates): Promise<UpdatePolicyJson> {
  return {
    name: p.name,
    platform: p.platform,
    enrollments: p.scope === "all" ? "all" : p.scope === "set" ? { set: p.scopeSet! } : { ids: await updates.policyIdCount(p.name) },
    mode: p.mode,
    deadline_days: p.deadlineDays,
    deadline_time: p.deadlineTime,
    target_os_version: p.targetOsVersion,
    target_build_version: p.targetBuildVersion,
    target_local_date_time: p.targetLocalDateTime,
    details_url: p.detailsUrl,
    settings: p.settings === null ? null : (JSON.parse(p.settings) as Record<string, unknown>),
    created_at: time(p.createdAt),
    updated_at: time(p.updatedAt),
  };
}

function applyJson(r: ReconcileResult): UpdateApplyJson {
  return { devices: r.devices, targeted: r.targeted, targets: r.targets, changed: r.changed, released: r.released, skipped: r.skipped };
}

function deviceJson(r: UpdateDeviceRow): UpdateDeviceJson {
  return {
    enrollment_id: r.enrollmentId,
    policy: r.policy,
    state: r.state,
    reason: r.reason,
    target:
      r.targetSet && r.osVersion && r.localDateTime
        ? { os_version: r.osVersion, build_version: r.buildVersion, local_date_time: r.localDateTime, set: r.targetSet }
        : null,
    updated_at: time(r.updatedAt),
  };
}
