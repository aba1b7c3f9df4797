import type { FastifyInstance } from "fastify";
import { syncDetail, type AdeService, type SyncResult } from "../ade/service.ts";
import { checkSettings, readSettings, requestTypeOf, settingsJson, type EnrollmentSettings } from "../ade/settings.ts";
import type { AdeSetup } from "../core/ade-setup.ts";
import { requestTypeWarnings } from "../core/enqueue.ts";
import { ADE_ENROLLMENT_STATES, type AdeEnrollment, type AdeEnrollmentState } from "../store/ade-enrollments.ts";
import { BadRequest, NotFound } from "../errors.ts";
import type { AdeDevice, AdeServerInfo, StoredAdeProfile } from "../store/ade.ts";
import type { Store } from "../store/index.ts";
import { bodyBuffer, truthy } from "./api-routes.ts";
import { ddmForwarded } from "./ddm-forwarded.ts";
import { warnOfEmptySets } from "./ddm-routes.ts";
import { addWarnings, jsonObject, nextCursor, onlyKeys, pageSize } from "./request-helpers.ts";
import type {
  AdeAssignJson,
  AdeDeviceJson,
  AdeDevicePage,
  AdeEnrollmentJson,
  AdeEnrollmentPage,
  AdeSettingsJson,
  AdeProfileJson,
  AdeProfileList,
  AdeServerJson,
  AdeServerList,
  AdeSyncJson,
} from "./wire.ts";
import { time, timeOrNull } from "./wire-map.ts";

export interface AdeRouteOptions {
  store: Store;
  ade: AdeService;
  /** Releases ADE devices (DeviceConfigured) on an operator's word. */
  adeSetup: AdeSetup;
  /** --dm-url: initial DDM sets would be Orchard's own, which no device reads (http/ddm-forwarded.ts). */
  dmUrl?: string;
}

const TOKEN_BODY_LIMIT = 64 * 1024;
const PROFILE_BODY_LIMIT = 256 * 1024;
const SETTINGS_BODY_LIMIT = 4 * 1024 * 1024;

/** ABM servers, their device inventory and DEP profiles (behind the API key). */
export function registerAdeRoutes(app: FastifyInstance, o: AdeRouteOptions): void {
  const { store, ade } = o;
  type Named = { Params: { name: string } };
  type Profiled = { Params: { name: string; profile: string } };

  app.get("/v1/ade/servers", async (): Promise<AdeServerList> => ({ servers: (await store.ade.servers()).map(serverJson) }));

  app.put<Named>("/v1/ade/servers/:name", async (req, reply) => {
    const body = bodyBuffer(req).length ? jsonObject(req) : {};
    onlyKeys(body, ["common_name", "days"]);
    if (
      body.common_name !== undefined &&
      (typeof body.common_name !== "string" || body.common_name.length < 1 || body.common_name.length > 64)
    ) {
      throw new BadRequest("common_name must be a string of 1 to 64 characters", "invalid_parameter");
    }
    if (body.days !== undefined && typeof body.days !== "number") throw new BadRequest("days must be a number", "invalid_parameter");
    const info = await ade.addServer(req.params.name, {
      commonName: body.common_name as string | undefined,
      days: body.days as number | undefined,
    });
    return reply.code(201).send(serverJson(info));
  });

  app.get<Named>("/v1/ade/servers/:name", async (req): Promise<AdeServerJson> => serverJson(await ade.info(req.params.name)));

  app.delete<Named>("/v1/ade/servers/:name", async (req): Promise<{ removed: string }> => {
    await ade.removeServer(req.params.name);
    req.log.info({ server: req.params.name }, "ABM server removed");
    return { removed: req.params.name };
  });

  // The .p7m server token ABM gives for this server's certificate, as downloaded.
  app.put<Named & { Querystring: Record<string, string> }>(
    "/v1/ade/servers/:name/token",
    { bodyLimit: TOKEN_BODY_LIMIT },
    async (req): Promise<AdeServerJson> => {
      const body = bodyBuffer(req);
      if (body.length === 0) throw new BadRequest("the body must be the server token (.p7m) downloaded from ABM", "invalid_ade_token");
      return serverJson(await ade.uploadToken(req.params.name, body, truthy(req.query.force)));
    },
  );

  app.post<Named>("/v1/ade/servers/:name/sync", async (req): Promise<AdeSyncJson> => syncJson(await ade.sync(req.params.name, "api")));

  app.put<Named>("/v1/ade/servers/:name/default-profile", async (req): Promise<AdeServerJson> => {
    const body = jsonObject(req);
    onlyKeys(body, ["profile"]);
    if (body.profile !== null && typeof body.profile !== "string")
      throw new BadRequest("profile must be a profile's name, or null", "invalid_parameter");
    await ade.setDefaultProfile(req.params.name, body.profile as string | null);
    return serverJson(await ade.info(req.params.name));
  });

  app.get<Named>("/v1/ade/servers/:name/profiles", async (req): Promise<AdeProfileList> => {
    const server = await ade.info(req.params.name);
    return { profiles: (await store.ade.profiles(server.name)).map((p) => profileJson(p, server.defaultProfile)) };
  });

  app.put<Profiled & { Querystring: Record<string, string> }>(
    "/v1/ade/servers/:name/profiles/:profile",
    { bodyLimit: PROFILE_BODY_LIMIT },
    async (req, reply) => {
      const { created, profile } = await ade.putProfile(req.params.name, req.params.profile, jsonObject(req), truthy(req.query.default));
      const server = await ade.info(req.params.name);
      req.log.info({ server: server.name, profile: profile.name, created }, "DEP profile stored");
      return reply.code(created ? 201 : 200).send(profileJson(profile, server.defaultProfile));
    },
  );

  app.delete<Profiled>("/v1/ade/servers/:name/profiles/:profile", async (req): Promise<{ removed: string }> => {
    const server = await ade.info(req.params.name);
    if (server.defaultProfile === req.params.profile) await ade.setDefaultProfile(server.name, null);
    if (!(await store.ade.removeProfile(server.name, req.params.profile)))
      throw new NotFound(`ABM server ${server.name} has no profile ${req.params.profile}`);
    return { removed: req.params.profile };
  });

  app.post<Profiled>("/v1/ade/servers/:name/profiles/:profile/assign", async (req): Promise<AdeAssignJson> => {
    const body = jsonObject(req);
    onlyKeys(body, ["serials"]);
    const serials = body.serials;
    if (!Array.isArray(serials) || serials.some((s) => typeof s !== "string" || !/^[A-Za-z0-9]{1,64}$/.test(s))) {
      throw new BadRequest("serials must be a list of serial numbers (letters and digits)", "invalid_parameter");
    }
    const r = await ade.assign(req.params.name, req.params.profile, serials as string[]);
    req.log.info({ server: req.params.name, profile: req.params.profile, devices: serials.length }, "DEP profile assigned");
    return { profile_uuid: r.profileUuid, devices: r.devices };
  });

  app.get<Named>("/v1/ade/servers/:name/enrollment-settings", async (req): Promise<AdeSettingsJson> => {
    const server = await store.ade.server(req.params.name);
    if (!server) throw new NotFound(`no ABM server named ${req.params.name}`);
    return settingsJson(readSettings(server.enrollmentSettings)) as unknown as AdeSettingsJson;
  });

  app.put<Named>(
    "/v1/ade/servers/:name/enrollment-settings",
    { bodyLimit: SETTINGS_BODY_LIMIT },
    async (req, reply): Promise<AdeSettingsJson> => {
      const settings = checkSettings(jsonObject(req));
      if (o.dmUrl !== undefined && settings.initialDdmSets.length > 0) throw ddmForwarded(o.dmUrl, "initial_ddm_sets, Orchard's own sets");
      const json = settingsJson(settings);
      if (!(await store.ade.setEnrollmentSettings(req.params.name, JSON.stringify(json), Date.now())))
        throw new NotFound(`no ABM server named ${req.params.name}`);
      // As PUT /v1/enqueue warns: an initial command whose RequestType Apple's schema does not know (a typo, most often).
      addWarnings(
        req,
        reply,
        { server: req.params.name },
        initialCommandWarnings(settings),
        "ADE initial command Apple's schema does not know",
      );
      await warnOfEmptySets(store, settings.initialDdmSets, req, reply, { server: req.params.name }, "initial_ddm_sets: ");
      req.log.info(
        {
          server: req.params.name,
          minimumOs: Object.keys(settings.minimumOs),
          platformSso: settings.platformSso !== undefined,
          initialCommands: settings.initialCommands.length,
        },
        "ADE enrollment settings stored",
      );
      return json as unknown as AdeSettingsJson;
    },
  );

  app.get<{ Querystring: Record<string, string> }>("/v1/ade/enrollments", async (req): Promise<AdeEnrollmentPage> => {
    const q = req.query;
    const limit = pageSize(q.limit);
    if (q.state !== undefined && !(ADE_ENROLLMENT_STATES as readonly string[]).includes(q.state))
      throw new BadRequest(`state must be one of ${ADE_ENROLLMENT_STATES.join(", ")}`, "invalid_parameter");
    const rows = await store.adeEnrollments.list({
      server: q.server,
      state: q.state as AdeEnrollmentState | undefined,
      after: q.cursor,
      limit,
    });
    return { enrollments: rows.map(enrollmentJson), next_cursor: nextCursor(rows, limit, (r) => r.serialNumber) };
  });

  app.get<{ Params: { serial: string } }>("/v1/ade/enrollments/:serial", async (req): Promise<AdeEnrollmentJson> => {
    const row = await store.adeEnrollments.get(req.params.serial);
    if (!row) throw new NotFound(`no ADE device ${req.params.serial} reached the enrollment URL`);
    return enrollmentJson(row);
  });

  app.post<{ Params: { serial: string } }>("/v1/ade/enrollments/:serial/release", async (req): Promise<AdeEnrollmentJson> => {
    await o.adeSetup.release(store, req.params.serial, Date.now());
    req.log.info({ serialNumber: req.params.serial }, "ADE device released by an operator: DeviceConfigured queued");
    return enrollmentJson((await store.adeEnrollments.get(req.params.serial))!);
  });

  app.get<{ Querystring: Record<string, string> }>("/v1/ade/devices", async (req): Promise<AdeDevicePage> => {
    const q = req.query;
    const limit = pageSize(q.limit);
    const bool = (key: string): boolean | undefined => {
      const v = q[key];
      if (v === undefined) return undefined;
      if (v !== "true" && v !== "false") throw new BadRequest(`${key} must be true or false`, "invalid_parameter");
      return v === "true";
    };
    if (q.cursor !== undefined && !q.cursor.includes("/"))
      throw new BadRequest("cursor must be a next_cursor of this list", "invalid_parameter");
    const devices = await store.ade.devices({
      server: q.server,
      serial: q.serial,
      profileStatus: q.profile_status,
      enrolled: bool("enrolled"),
      removed: bool("removed"),
      after: q.cursor,
      limit,
    });
    return { devices: devices.map(deviceJson), next_cursor: nextCursor(devices, limit, (d) => `${d.serverName}/${d.serialNumber}`) };
  });
}

/** Where a device stands, in words. */
export function progressOf(e: AdeEnrollment): string {
  switch (e.state) {
    case "profile_served":
      return "waiting (profile served, not awaiting configuration yet)";
    case "running":
      return `running step ${Math.min(e.stepsDone + 1, e.stepTotal)}/${e.stepTotal}`;
    case "releasing":
      return `releasing (DeviceConfigured queued${e.stepsFailed ? `; ${e.stepsFailed} of ${e.stepTotal} steps failed` : ""})`;
    case "configured":
      return e.stepsFailed ? `configured (${e.stepsFailed} of ${e.stepTotal} steps failed)` : "configured";
    case "failed":
      return `failed: ${e.error ?? "unknown"}`;
  }
}

function enrollmentJson(e: AdeEnrollment): AdeEnrollmentJson {
  return {
    serial_number: e.serialNumber,
    server: e.serverName,
    udid: e.udid,
    product: e.product,
    os_version: e.osVersion,
    build_version: e.buildVersion,
    state: e.state,
    progress: progressOf(e),
    step_total: e.stepTotal,
    steps_done: e.stepsDone,
    steps_failed: e.stepsFailed,
    release_on_failure: e.releaseOnFailure,
    error: e.error,
    served_at: time(e.servedAt),
    started_at: timeOrNull(e.startedAt),
    released_at: timeOrNull(e.releasedAt),
    configured_at: timeOrNull(e.configuredAt),
    updated_at: time(e.updatedAt),
  };
}

function serverJson(s: AdeServerInfo): AdeServerJson {
  return {
    name: s.name,
    certificate_pem: s.certPem,
    certificate_not_after: time(s.certNotAfter),
    token_expiry: timeOrNull(s.tokenExpiry),
    token_uploaded_at: timeOrNull(s.tokenUploadedAt),
    consumer_key: s.consumerKey,
    server_uuid: s.serverUuid,
    server_name: s.serverName,
    org_name: s.orgName,
    phase: s.phase,
    last_sync_at: timeOrNull(s.lastSyncAt),
    last_sync_error: s.lastSyncError,
    default_profile: s.defaultProfile,
    devices: s.devices,
    enrolled: s.enrolled,
    created_at: time(s.createdAt),
    updated_at: time(s.updatedAt),
  };
}

function syncJson(r: SyncResult): AdeSyncJson {
  const { trigger: _trigger, ...json } = syncDetail(r, "api");
  return json;
}

function deviceJson(d: AdeDevice): AdeDeviceJson {
  return {
    server: d.serverName,
    serial_number: d.serialNumber,
    model: d.model ?? null,
    description: d.description ?? null,
    color: d.color ?? null,
    asset_tag: d.assetTag ?? null,
    os: d.os ?? null,
    device_family: d.deviceFamily ?? null,
    profile_status: d.profileStatus ?? null,
    profile_uuid: d.profileUuid ?? null,
    profile_assign_time: timeOrNull(d.profileAssignTime),
    profile_push_time: timeOrNull(d.profilePushTime),
    device_assigned_by: d.deviceAssignedBy ?? null,
    device_assigned_date: timeOrNull(d.deviceAssignedDate),
    op_type: d.opType ?? null,
    op_date: timeOrNull(d.opDate),
    removed: d.removed,
    enrolled: d.enrolled,
    first_seen_at: time(d.firstSeenAt),
    updated_at: time(d.updatedAt),
  };
}

function profileJson(p: StoredAdeProfile, defaultProfile: string | null): AdeProfileJson {
  return {
    server: p.serverName,
    name: p.name,
    profile: JSON.parse(p.body) as Record<string, unknown>,
    profile_uuid: p.profileUuid,
    defined_at: timeOrNull(p.definedAt),
    default: p.name === defaultProfile,
    created_at: time(p.createdAt),
    updated_at: time(p.updatedAt),
  };
}

/**
 * The initial commands whose RequestType Apple's schema does not know: stored
 * all the same (the schema lags Apple), each said with where it stands and
 * what its error answer does to the device awaiting configuration.
 */
function initialCommandWarnings(settings: EnrollmentSettings): string[] {
  const then = settings.releaseOnFailure
    ? "released all the same (release_on_failure)"
    : "held in Setup Assistant (release_on_failure is false)";
  return settings.initialCommands.flatMap((plist, i) =>
    requestTypeWarnings(requestTypeOf(plist), {
      at: `initial_commands[${i}]: `,
      outcome: `stored all the same: a device that does not know it answers with an error, and is ${then}`,
    }),
  );
}
