import type { FastifyInstance } from "fastify";
import { subscribedItems, type InventorySubscriptions } from "../core/inventory-subscription.ts";
import { BadRequest, NotFound } from "../errors.ts";
import { PLATFORMS, type Platform } from "../protocol/platform.ts";
import type { Store } from "../store/index.ts";
import {
  INVENTORY_FIELD_NAMES,
  isFilterVersion,
  UPDATE_INSTALL_STATES,
  type InventoryFilter,
  type InventoryRecord,
} from "../store/inventory.ts";
import { nextCursor, pageSize } from "./request-helpers.ts";
import { timeParam } from "./time-param.ts";
import type {
  InventoryDeviceJson,
  InventoryPage,
  InventoryRecordJson,
  InventorySubscriptionList,
  InventorySubscriptionResult,
  InventoryUserJson,
  InventoryValueJson,
} from "./wire.ts";
import { time, timeOrNull } from "./wire-map.ts";

// The device inventory (store/inventory.ts): the list with its filters, one
// device's full record, and the built-in status subscription per platform
// (core/inventory-subscription.ts) that keeps it filled through DDM.

export interface InventoryRouteOptions {
  store: Store;
  subscriptions: InventorySubscriptions;
}

/** The list's query parameters; any other is refused (a misspelt filter must not list every device). */
const LIST_PARAMETERS = [
  "platform",
  "model",
  "os_version",
  "os_version_below",
  "serial",
  "user",
  "last_seen_before",
  "last_seen_after",
  "update_state",
  "limit",
  "cursor",
];
const MAX_TEXT = 256;

export function registerInventoryRoutes(app: FastifyInstance, o: InventoryRouteOptions): void {
  const { store, subscriptions } = o;

  app.get<{ Querystring: Record<string, string> }>("/v1/inventory", async (req): Promise<InventoryPage> => {
    const limit = pageSize(req.query.limit);
    const devices = await store.inventory.list({ ...listFilter(req.query), limit });
    return { devices: devices.map(deviceJson), next_cursor: nextCursor(devices, limit, (d) => d.deviceId) };
  });

  app.get<{ Params: { device_id: string } }>("/v1/inventory/:device_id", async (req): Promise<InventoryRecordJson> => {
    const r = await store.inventory.get(req.params.device_id);
    if (!r) throw new NotFound("no such device");
    const fields: InventoryRecordJson["fields"] = {};
    for (const f of INVENTORY_FIELD_NAMES) {
      const value = r.values[f];
      if (value === undefined || value === null) continue;
      const learned = r.learned[f];
      fields[f] = { value: value as InventoryValueJson, source: learned?.source ?? null, learned_at: timeOrNull(learned?.at) };
    }
    return {
      device_id: r.deviceId,
      fields,
      users: r.users.map(userJson),
      last_seen_at: timeOrNull(r.lastSeenAt),
      updated_at: time(r.updatedAt),
    };
  });

  app.get(
    "/v1/inventory-subscriptions",
    async (): Promise<InventorySubscriptionList> => ({
      subscriptions: (await subscriptions.list()).map((s) => ({
        platform: s.platform,
        set: s.setName,
        status_items: subscribedItems(s.platform),
        created_at: time(s.createdAt),
      })),
    }),
  );

  for (const [method, add] of [
    ["PUT", true],
    ["DELETE", false],
  ] as const) {
    app.route<{ Params: { platform: string } }>({
      method,
      url: "/v1/inventory-subscriptions/:platform",
      handler: async (req): Promise<InventorySubscriptionResult> => {
        const platform = platformOf(req.params.platform, "the platform");
        const r = add ? await subscriptions.subscribe(platform, Date.now()) : await subscriptions.unsubscribe(platform, Date.now());
        req.log.info({ ...r, add }, add ? "inventory status subscription assigned" : "inventory status subscription removed");
        return r;
      },
    });
  }
}

function listFilter(q: Record<string, string>): Omit<InventoryFilter, "limit"> {
  const unknown = Object.keys(q).find((k) => !LIST_PARAMETERS.includes(k));
  if (unknown !== undefined) {
    throw new BadRequest(
      `unknown parameter ${JSON.stringify(unknown.slice(0, 64))}; the filters are ${LIST_PARAMETERS.join(", ")}`,
      "invalid_parameter",
    );
  }
  const f: Omit<InventoryFilter, "limit"> = {};
  if (q.platform !== undefined) f.platform = platformOf(q.platform, "platform");
  for (const [key, name] of [
    ["os_version", "osVersion"],
    ["os_version_below", "osVersionBelow"],
  ] as const) {
    const v = q[key];
    if (v === undefined) continue;
    if (!isFilterVersion(v)) throw new BadRequest(`${key} must be a version of 1 to 4 numbers such as 15.2 or 18.1.1`, "invalid_parameter");
    f[name] = v;
  }
  if (q.model !== undefined) f.model = plain(q.model, "model");
  if (q.serial !== undefined) f.serialNumber = plain(q.serial, "serial");
  if (q.user !== undefined) f.user = plain(q.user, "user");
  if (q.cursor !== undefined) f.after = plain(q.cursor, "cursor");
  if (q.last_seen_before !== undefined) f.lastSeenBefore = timeParam(q.last_seen_before, "last_seen_before");
  if (q.last_seen_after !== undefined) f.lastSeenAfter = timeParam(q.last_seen_after, "last_seen_after");
  if (q.update_state !== undefined) {
    if (!(UPDATE_INSTALL_STATES as readonly string[]).includes(q.update_state)) {
      throw new BadRequest(`update_state must be one of ${UPDATE_INSTALL_STATES.join(", ")}`, "invalid_parameter");
    }
    f.updateInstallState = q.update_state;
  }
  return f;
}

function platformOf(value: string, what: string): Platform {
  if (!(PLATFORMS as readonly string[]).includes(value))
    throw new BadRequest(`${what} must be one of ${PLATFORMS.join(", ")}`, "invalid_parameter");
  return value as Platform;
}

/** A text filter: 1 to MAX_TEXT characters, none of them NUL (PostgreSQL's text cannot hold it). */
function plain(value: string, key: string): string {
  if (value === "" || value.length > MAX_TEXT || value.includes("\0")) {
    throw new BadRequest(`${key} must be 1 to ${MAX_TEXT} characters, without NUL`, "invalid_parameter");
  }
  return value;
}

function deviceJson(r: InventoryRecord): InventoryDeviceJson {
  const out: Record<string, unknown> = { device_id: r.deviceId };
  for (const f of INVENTORY_FIELD_NAMES) out[f] = r.values[f] ?? null;
  out.users = r.users.map(userJson);
  out.last_seen_at = timeOrNull(r.lastSeenAt);
  out.updated_at = time(r.updatedAt);
  return out as InventoryDeviceJson;
}

function userJson(u: InventoryRecord["users"][number]): InventoryUserJson {
  return { enrollment_id: u.enrollmentId, user_id: u.userId, user_short_name: u.shortName, user_long_name: u.longName };
}
