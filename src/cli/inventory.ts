import { durationMs } from "../duration.ts";
import type {
  InventoryDeviceJson,
  InventoryRecordJson,
  InventorySubscriptionList,
  InventorySubscriptionResult,
  InventoryValueJson,
} from "../http/wire.ts";
import { ApiError, errorCode, errorReason } from "./api-client.ts";
import {
  CliError,
  connect,
  noArgs,
  parseCommand,
  positiveInt,
  printJson,
  printList,
  runSubcommand,
  UsageError,
  type CliContext,
  type ClientCommand,
} from "./command.ts";
import { fetchPages, PAGE_OPTIONS } from "./paging.ts";
import { formatTable, formatTime, printable, type Cell } from "./table.ts";

// `orchard inventory`: the device inventory (GET /v1/inventory, one
// device's record with each field's source) and the built-in DDM status
// subscription per platform that keeps it filled. docs/inventory.md.

const PLATFORM_USAGE = "macOS|iOS|iPadOS|tvOS|watchOS|visionOS";

export const inventoryCommand: ClientCommand = {
  name: "inventory",
  summary: "the device inventory: list and filter devices, one device's record, the status subscription per platform",
  usage: [
    `inventory list [--platform P] [--model M] [--os-version V] [--os-version-below V] [--serial S] [--user U]`,
    `  [--last-seen-before T] [--last-seen-after T] [--update-state none|waiting|downloading|prepared|installing|failed]`,
    `  [--limit N] [--cursor ID] [--all]`,
    "  filters combine; --model is a model identifier (Mac14,2) or name (MacBook Air); --os-version-below 15.2 compares",
    "  number by number; T is an RFC 3339 time or a duration ago (30d); --user a user channel's short name or user id",
    `inventory show <device id>`,
    "  every known field with the message it was learned from (authenticate, device-information, security-info, ddm-status) and when",
    `inventory subscribe --platform ${PLATFORM_USAGE}`,
    "  the built-in DDM set orchard.inventory.<platform> (a status subscription for the inventory's status items) goes to",
    "  every device channel of the platform enrolled now and to each that enrolls later: their status reports fill the inventory",
    `inventory unsubscribe --platform ${PLATFORM_USAGE}`,
    `inventory subscriptions`,
  ],
  run: (args, ctx) =>
    runSubcommand(args, ctx, {
      list,
      show,
      subscribe: (a, c) => subscribe(a, c, true),
      unsubscribe: (a, c) => subscribe(a, c, false),
      subscriptions,
    }),
};

async function list(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    platform: { type: "string" },
    model: { type: "string" },
    "os-version": { type: "string" },
    "os-version-below": { type: "string" },
    serial: { type: "string" },
    user: { type: "string" },
    "last-seen-before": { type: "string" },
    "last-seen-after": { type: "string" },
    "update-state": { type: "string" },
    ...PAGE_OPTIONS,
  });
  noArgs(positionals);
  const limit = positiveInt("--limit", values.limit);
  const query = {
    platform: values.platform,
    model: values.model,
    os_version: values["os-version"],
    os_version_below: values["os-version-below"],
    serial: values.serial,
    user: values.user,
    last_seen_before: moment(values["last-seen-before"], "--last-seen-before"),
    last_seen_after: moment(values["last-seen-after"], "--last-seen-after"),
    update_state: values["update-state"],
    limit: limit?.toString(),
  };
  const page = await fetchPages<"devices", InventoryDeviceJson>(connect(values, ctx), ctx, "/v1/inventory", "devices", query, {
    all: values.all,
    cursor: values.cursor,
  });
  return printList(
    ctx,
    values.json,
    page,
    page.devices,
    "no devices",
    ["DEVICE", "PLATFORM", "MODEL", "OS", "SERIAL", "USERS", "UPDATE", "LAST SEEN"],
    (d) => [
      d.device_id,
      text(d.platform),
      text(d.product_name) ?? text(d.model_name),
      d.os_version && d.build_version ? `${text(d.os_version)} (${text(d.build_version)})` : text(d.os_version),
      text(d.serial_number),
      d.users.map((u) => u.user_short_name ?? u.user_id).join(",") || null,
      updateCell(d),
      formatTime(d.last_seen_at),
    ],
  );
}

async function show(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  if (positionals.length !== 1 || positionals[0] === "") throw new UsageError("give one device id");
  const id = positionals[0]!;
  const res = await connect(values, ctx).request("GET", `/v1/inventory/${encodeURIComponent(id)}`);
  if (res.status === 404) throw new CliError(`no device ${printable(id)} in the inventory`);
  if (res.status !== 200) throw new ApiError(errorReason(res), res.status, errorCode(res));
  const r = res.json as InventoryRecordJson;
  if (values.json) {
    printJson(ctx, r);
    return 0;
  }
  ctx.out(`device ${printable(r.device_id)}, last seen ${formatTime(r.last_seen_at)}\n`);
  for (const u of r.users)
    ctx.out(`user ${printable(u.user_short_name ?? u.user_id ?? u.enrollment_id)} (${printable(u.enrollment_id)})\n`);
  ctx.out(
    formatTable(
      ["FIELD", "VALUE", "SOURCE", "LEARNED"],
      Object.entries(r.fields).map(([field, f]) => [field, value(f.value), f.source, formatTime(f.learned_at)]),
    ),
  );
  return 0;
}

async function subscribe(args: string[], ctx: CliContext, add: boolean): Promise<number> {
  const { values, positionals } = parseCommand(args, { platform: { type: "string" } });
  noArgs(positionals);
  if (values.platform === undefined) throw new UsageError(`give --platform ${PLATFORM_USAGE}`);
  const res = await connect(values, ctx).request(
    add ? "PUT" : "DELETE",
    `/v1/inventory-subscriptions/${encodeURIComponent(values.platform)}`,
  );
  if (res.status !== 200) throw new ApiError(errorReason(res), res.status, errorCode(res));
  const r = res.json as InventorySubscriptionResult;
  if (values.json) {
    printJson(ctx, r);
    return 0;
  }
  const what = add
    ? r.changed
      ? `subscribed ${r.platform}`
      : `${r.platform} was subscribed already`
    : r.changed
      ? `unsubscribed ${r.platform}`
      : `${r.platform} was not subscribed`;
  const channels = `${r.assigned} of ${r.enrollments} device channels ${add ? "got" : "lost"} set ${printable(r.set)}`;
  ctx.out(`${what}: ${channels}\n`);
  return 0;
}

async function subscriptions(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  noArgs(positionals);
  const r = await connect(values, ctx).get<InventorySubscriptionList>("/v1/inventory-subscriptions");
  return printList(ctx, values.json, r, r.subscriptions, "no platform is subscribed", ["PLATFORM", "SET", "SINCE", "STATUS ITEMS"], (s) => [
    s.platform,
    s.set,
    formatTime(s.created_at),
    s.status_items.length,
  ]);
}

/** An RFC 3339 time as given, or a duration (30d) as that long ago. */
function moment(v: string | undefined, flag: string): string | undefined {
  if (v === undefined) return undefined;
  const ms = durationMs(v);
  if (ms !== undefined) return new Date(Date.now() - ms).toISOString();
  if (!/^\d{4}-\d{2}-\d{2}T/.test(v))
    throw new UsageError(`${flag} must be an RFC 3339 time (2026-12-03T12:00:00Z) or a duration ago (30d)`);
  return v;
}

/** softwareupdate's state, with the pending version when there is one. */
function updateCell(d: InventoryDeviceJson): Cell {
  const state = text(d.update_install_state);
  const pending = text(d.update_pending_version);
  return state && pending ? `${state} ${pending}` : state;
}

function text(v: InventoryValueJson | null): string | null {
  return typeof v === "string" && v !== "" ? printable(v) : null;
}

function value(v: InventoryValueJson): Cell {
  return typeof v === "string" ? printable(v) : typeof v === "object" ? printable(JSON.stringify(v)) : v;
}
