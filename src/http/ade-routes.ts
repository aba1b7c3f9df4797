import type { FastifyInstance } from "fastify";
import { syncDetail, type AdeService, type SyncResult } from "../ade/service.ts";
import { BadRequest, NotFound } from "../errors.ts";
import type { AdeDevice, AdeServerInfo, StoredAdeProfile } from "../store/ade.ts";
import type { Store } from "../store/index.ts";
import { bodyBuffer, truthy } from "./api-routes.ts";
import { jsonObject, nextCursor, onlyKeys, pageSize } from "./request-helpers.ts";
import type {
  AdeAssignJson,
  AdeDeviceJson,
  AdeDevicePage,
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
}

const TOKEN_BODY_LIMIT = 64 * 1024;
const PROFILE_BODY_LIMIT = 256 * 1024;

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
