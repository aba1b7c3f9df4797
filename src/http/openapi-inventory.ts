// The OpenAPI description of the inventory routes (http/inventory-routes.ts),
// merged into http/openapi.ts. The field schemas come from the store's one
// list of fields (INVENTORY_FIELDS), so a new field is described at once.

import { PLATFORMS } from "../protocol/platform.ts";
import { INVENTORY_FIELDS, INVENTORY_SOURCES, UPDATE_INSTALL_STATES } from "../store/inventory.ts";
import type { OpenApiBuilders } from "./openapi-ddm.ts";

type Schema = Record<string, unknown>;

const str: Schema = { type: "string" };
const nullableStr: Schema = { type: ["string", "null"] };
const count: Schema = { type: "integer", minimum: 0 };
const platform: Schema = { type: "string", enum: [...PLATFORMS] };
const KIND_SCHEMA: Record<string, Schema> = {
  text: str,
  boolean: { type: "boolean" },
  number: { type: "number" },
  integer: { type: "integer" },
  json: { type: ["object", "array", "string", "number", "boolean"], description: "the status item's value, as the device reported it" },
};
const orNull = (s: Schema): Schema => ({ anyOf: [s, { type: "null" }] });

export function inventoryOpenApi(b: OpenApiBuilders & { paging: unknown[]; notFound: Record<string, unknown> }): {
  schemas: Record<string, Schema>;
  paths: Record<string, Record<string, unknown>>;
} {
  const { ref, object, param, op, ok, paging, notFound } = b;
  const fields = Object.entries(INVENTORY_FIELDS);
  const PLATFORM = param("platform", "path", "the platform", platform);
  const schemas: Record<string, Schema> = {
    InventoryUser: object(
      { enrollment_id: str, user_id: nullableStr, user_short_name: nullableStr, user_long_name: nullableStr },
      { description: "a user channel of the device" },
    ),
    InventoryDevice: object(
      {
        device_id: { ...str, description: "the device's UDID (or EnrollmentID)" },
        ...Object.fromEntries(fields.map(([f, kind]) => [f, orNull(KIND_SCHEMA[kind]!)])),
        users: { type: "array", items: ref("InventoryUser") },
        last_seen_at: orNull(ref("Time")),
        updated_at: { ...ref("Time"), description: "when a field last changed" },
      },
      { description: "every field of a device's record, null when not known" },
    ),
    InventoryPage: object({
      devices: { type: "array", items: ref("InventoryDevice") },
      next_cursor: { ...nullableStr, description: "the cursor of the next page; null on the last" },
    }),
    InventoryRecord: object({
      device_id: str,
      fields: {
        type: "object",
        description: "the known fields, each with the message it was learned from and when",
        properties: Object.fromEntries(
          fields.map(([f, kind]) => [
            f,
            object({
              value: KIND_SCHEMA[kind]!,
              source: orNull({ type: "string", enum: [...INVENTORY_SOURCES] }),
              learned_at: orNull(ref("Time")),
            }),
          ]),
        ),
        additionalProperties: false,
      },
      users: { type: "array", items: ref("InventoryUser") },
      last_seen_at: orNull(ref("Time")),
      updated_at: ref("Time"),
    }),
    InventorySubscriptionList: object({
      subscriptions: {
        type: "array",
        items: object({ platform, set: str, status_items: { type: "array", items: str }, created_at: ref("Time") }),
      },
    }),
    InventorySubscriptionResult: object({
      platform,
      set: { ...str, description: "the built-in DDM set: orchard.inventory.<platform>" },
      changed: { type: "boolean", description: "subscribed (PUT) or unsubscribed (DELETE) now; false when it already was" },
      enrollments: { ...count, description: "device channels the set was assigned to, or taken from" },
      assigned: { ...count, description: "of those, the ones whose sets changed (each syncs)" },
    }),
  };
  const version = (name: string, description: string) =>
    param(name, "query", description, { type: "string", pattern: "^\\d{1,5}(\\.\\d{1,5}){0,3}$" });
  const paths: Record<string, Record<string, unknown>> = {
    "/v1/inventory": {
      get: op(
        "inventory",
        "List devices' inventory records, ordered by device id; filters combine (AND); an unknown parameter is a 400",
        { "200": ok("InventoryPage") },
        {
          parameters: [
            param("platform", "query", "only devices of this platform", platform),
            param("model", "query", "the model identifier (product_name, e.g. Mac14,2) or the model name (MacBook Air)"),
            version("os_version", "this OS version exactly, as the device reports it"),
            version("os_version_below", "OS versions lower than this one, number by number (9.3 is below 15)"),
            param("serial", "query", "this serial number"),
            param("user", "query", "devices with a user channel of this short name or user id"),
            param("last_seen_before", "query", "last seen before this RFC 3339 time, or never", { type: "string", format: "date-time" }),
            param("last_seen_after", "query", "last seen at or after this RFC 3339 time", { type: "string", format: "date-time" }),
            param("update_state", "query", "softwareupdate.install-state", { type: "string", enum: [...UPDATE_INSTALL_STATES] }),
            ...paging,
          ],
        },
      ),
    },
    "/v1/inventory/{device_id}": {
      get: op(
        "inventory",
        "One device's inventory record, each field with its source and time",
        { "200": ok("InventoryRecord"), ...notFound },
        { parameters: [param("device_id", "path", "device id (UDID)")] },
      ),
    },
    "/v1/inventory-subscriptions": {
      get: op("inventory", "The platforms whose devices get the built-in status subscription", {
        "200": ok("InventorySubscriptionList"),
      }),
    },
    "/v1/inventory-subscriptions/{platform}": {
      put: op(
        "inventory",
        "Subscribe a platform: its device channels get the built-in status subscription set now and when they enroll",
        { "200": ok("InventorySubscriptionResult") },
        { parameters: [PLATFORM] },
      ),
      delete: op(
        "inventory",
        "Unsubscribe a platform: the set is taken from every channel holding it",
        { "200": ok("InventorySubscriptionResult") },
        { parameters: [PLATFORM] },
      ),
    },
  };
  return { schemas, paths };
}
