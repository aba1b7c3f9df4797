import { type PlistDict, type PlistValue, serializePlist } from "../plist/index.ts";
import type { AuthenticateMessage } from "../protocol/checkin.ts";
import { PLATFORMS, platformOf } from "../protocol/platform.ts";
import { isTimeZone } from "../protocol/time-zone.ts";
import type { NewCommand } from "../store/commands.ts";
import { INVENTORY_FIELDS, type InventoryField, type InventorySource, type InventoryValues } from "../store/inventory.ts";

// What each message a device sends says for its inventory record
// (store/inventory.ts): the Authenticate facts, a DeviceInformation or
// SecurityInfo result, a DDM status report's values. Pure: the core's
// handlers hand the result to store.inventory.learn in their transaction.
// A value of the wrong type, or text no real device sends (a NUL, a lone
// surrogate, past MAX_TEXT), is left out rather than refused: the message
// itself was valid, only this field is not learned from it.

const MAX_TEXT = 1024;
/** The largest value of an INTEGER column (PostgreSQL's is 32 bits). */
const MAX_INTEGER = 2 ** 31 - 1;

/**
 * Told, after the change committed, that a device channel enrolled or that
 * a fact a feature picks devices by changed (OS updates re-target it at
 * once: updates/service.ts). Never awaited: it must not slow a check-in.
 */
export type DeviceFactsListener = (enrollmentId: string) => void;

/** The fields OS update targets are picked and judged by: a change to one of them re-targets the device. */
const TARGETING_FIELDS: ReadonlySet<InventoryField> = new Set([
  "platform",
  "product_name",
  "model",
  "update_device_id",
  "os_version",
  "build_version",
  // The zone its deadline is judged in (updates/targets.ts deadlineAt).
  "time_zone",
]);

export function changesTargeting(changed: readonly InventoryField[]): boolean {
  return changed.some((f) => TARGETING_FIELDS.has(f));
}

/** The Authenticate facts. */
export function fromAuthenticate(msg: AuthenticateMessage): InventoryValues {
  const v: InventoryValues = {};
  const put = (f: InventoryField, value: unknown) => set(v, f, value);
  put("serial_number", msg.serialNumber);
  put("product_name", msg.productName);
  put("model", msg.model);
  put("model_name", msg.modelName);
  put("device_name", msg.deviceName);
  put("os_version", msg.osVersion);
  put("build_version", msg.buildVersion);
  put("imei", msg.imei);
  put("meid", msg.meid);
  put("platform", platformOf(msg.productName, msg.modelName) ?? undefined);
  return v;
}

/** DeviceInformation's QueryResponses keys, by field. */
const DEVICE_INFORMATION: ReadonlyArray<[string, InventoryField]> = [
  ["SerialNumber", "serial_number"],
  ["ProductName", "product_name"],
  ["Model", "model"],
  ["ModelName", "model_name"],
  ["ModelNumber", "model_number"],
  ["DeviceName", "device_name"],
  ["OSVersion", "os_version"],
  ["BuildVersion", "build_version"],
  ["SupplementalBuildVersion", "supplemental_build_version"],
  ["SupplementalOSVersionExtra", "supplemental_extra_version"],
  ["IMEI", "imei"],
  ["MEID", "meid"],
  ["IsSupervised", "is_supervised"],
  ["DeviceCapacity", "device_capacity"],
  ["AvailableDeviceCapacity", "available_device_capacity"],
  ["WiFiMAC", "wifi_mac"],
  ["BluetoothMAC", "bluetooth_mac"],
  ["SystemIntegrityProtectionEnabled", "system_integrity_protection"],
  // An IANA zone name (Europe/Paris): iOS, iPadOS and tvOS 14+, visionOS 2+; Macs do not report it.
  ["TimeZone", "time_zone"],
  // The id Apple's software lookup feed lists the device by (a Mac's board id: J413AP).
  ["SoftwareUpdateDeviceID", "update_device_id"],
];

/** A DeviceInformation command asking for these query keys; its result feeds the inventory (fromCommandResult). */
export function deviceInformationCommand(commandUuid: string, queries: readonly string[]): NewCommand {
  const command = serializePlist({ Command: { RequestType: "DeviceInformation", Queries: [...queries] }, CommandUUID: commandUuid });
  return { commandUuid, requestType: "DeviceInformation", command: Buffer.from(command) };
}

/**
 * What a command result says for the inventory: a DeviceInformation result
 * (QueryResponses) or a SecurityInfo one; undefined for any other (a cheap
 * look at the report's keys: no store read for every other result).
 */
export function fromCommandResult(body: PlistDict): { requestType: string; source: InventorySource; values: InventoryValues } | undefined {
  const queries = dict(body.QueryResponses);
  if (queries) return { requestType: "DeviceInformation", source: "device-information", values: fromDeviceInformation(queries) };
  const security = dict(body.SecurityInfo);
  if (security) return { requestType: "SecurityInfo", source: "security-info", values: fromSecurityInfo(security) };
  return undefined;
}

export function fromDeviceInformation(q: PlistDict): InventoryValues {
  const v: InventoryValues = {};
  for (const [key, f] of DEVICE_INFORMATION) set(v, f, q[key]);
  if (typeof q.ProductName === "string" || typeof q.ModelName === "string") {
    set(v, "platform", platformOf(text(q.ProductName), text(q.ModelName)) ?? undefined);
  }
  return v;
}

export function fromSecurityInfo(s: PlistDict): InventoryValues {
  const v: InventoryValues = {};
  set(v, "filevault_enabled", s.FDE_Enabled);
  set(v, "passcode_present", s.PasscodePresent);
  set(v, "passcode_compliant", s.PasscodeCompliant);
  set(v, "system_integrity_protection", s.SystemIntegrityProtectionEnabled);
  set(v, "firewall_enabled", dict(s.FirewallSettings)?.FirewallEnabled);
  const status = dict(s.ManagementStatus);
  set(v, "enrolled_via_dep", status?.EnrolledViaDEP);
  set(v, "user_approved_enrollment", status?.UserApprovedEnrollment);
  return v;
}

/** DDM status items (Apple's declarative/status), by field. */
const STATUS_ITEMS: ReadonlyArray<[string, InventoryField]> = [
  ["device.identifier.serial-number", "serial_number"],
  ["device.model.identifier", "product_name"],
  ["device.model.family", "model_family"],
  ["device.model.marketing-name", "marketing_name"],
  ["device.model.number", "model_number"],
  ["device.operating-system.version", "os_version"],
  ["device.operating-system.build-version", "build_version"],
  ["device.operating-system.marketing-name", "os_marketing_name"],
  ["device.operating-system.supplemental.build-version", "supplemental_build_version"],
  ["device.operating-system.supplemental.extra-version", "supplemental_extra_version"],
  ["softwareupdate.install-state", "update_install_state"],
  ["softwareupdate.device-id", "update_device_id"],
  ["softwareupdate.beta-enrollment", "update_beta_enrollment"],
  ["diskmanagement.filevault.enabled", "filevault_enabled"],
  ["passcode.is-compliant", "passcode_compliant"],
  ["passcode.is-present", "passcode_present"],
];

/**
 * Dictionary items whose keys are fields: a report carries the whole
 * dictionary, so a key it leaves out is none now (no failure reason once
 * the update succeeded, no target date unless one is enforced).
 */
const STATUS_DICTIONARIES: ReadonlyArray<[string, ReadonlyArray<[string, InventoryField]>]> = [
  [
    "softwareupdate.pending-version",
    [
      ["os-version", "update_pending_version"],
      ["build-version", "update_pending_build"],
      ["target-local-date-time", "update_target_local_date_time"],
    ],
  ],
  [
    "softwareupdate.failure-reason",
    [
      ["count", "update_failure_count"],
      ["reason", "update_failure_reason"],
      ["timestamp", "update_failure_at"],
    ],
  ],
];

/** Dictionary items kept whole, as JSON. */
const STATUS_JSON: ReadonlyArray<[string, InventoryField]> = [
  ["management.client-capabilities", "client_capabilities"],
  ["softwareupdate.install-reason", "update_install_reason"],
];

/** The status items the inventory reads (what the built-in subscription asks for: core/inventory-subscription.ts). */
export const INVENTORY_STATUS_ITEMS: readonly string[] = [
  ...STATUS_ITEMS.map(([item]) => item),
  ...STATUS_DICTIONARIES.map(([item]) => item),
  ...STATUS_JSON.map(([item]) => item),
  "device.operating-system.family",
].sort();

/** A DDM status report's values (flattened to paths, protocol/ddm.ts) as inventory fields. */
export function fromStatusValues(values: ReadonlyArray<{ path: string; value: unknown }>): InventoryValues {
  const v: InventoryValues = {};
  const byPath = new Map(values.map((x) => [x.path, x.value]));
  for (const [item, f] of STATUS_ITEMS) set(v, f, byPath.get(item));
  const family = byPath.get("device.operating-system.family");
  if (typeof family === "string" && (PLATFORMS as readonly string[]).includes(family)) v.platform = family as InventoryValues["platform"];
  for (const [item, keys] of STATUS_DICTIONARIES) {
    const prefix = `${item}.`;
    if (!values.some((x) => x.path.startsWith(prefix) || x.path === item)) continue;
    for (const [key, f] of keys) {
      const value = byPath.get(prefix + key);
      if (value === undefined) clear(v, f);
      else set(v, f, value);
    }
  }
  for (const [item, f] of STATUS_JSON) {
    const nested = unflatten(values, item);
    if (nested !== undefined) (v as Record<string, unknown>)[f] = nested;
  }
  return v;
}

/** The item's value rebuilt from its flattened paths (`item.a.b`: { a: { b } }); undefined when the report has none. */
function unflatten(values: ReadonlyArray<{ path: string; value: unknown }>, item: string): unknown {
  let out: unknown;
  const prefix = `${item}.`;
  for (const { path, value } of values) {
    if (path === item) return value;
    if (!path.startsWith(prefix)) continue;
    const keys = path.slice(prefix.length).split(".");
    if (out === undefined) out = Object.create(null) as Record<string, unknown>;
    let node = out as Record<string, unknown>;
    for (const key of keys.slice(0, -1)) {
      const next = node[key];
      node =
        typeof next === "object" && next !== null && !Array.isArray(next)
          ? (next as Record<string, unknown>)
          : (node[key] = Object.create(null));
    }
    node[keys.at(-1)!] = value;
  }
  return out;
}

/** Text fields with a stricter form than text: a value outside it is left out like one of the wrong type. */
const TEXT_FORMS: Partial<Record<InventoryField, (value: string) => boolean>> = {
  time_zone: isTimeZone,
};

/** Sets a field when the value has its field's type (see the file's comment). */
function set(v: InventoryValues, f: InventoryField, value: unknown): void {
  const out = v as Record<string, unknown>;
  switch (INVENTORY_FIELDS[f]) {
    case "boolean":
      if (typeof value === "boolean") out[f] = value;
      return;
    case "number":
      if (typeof value === "number" && Number.isFinite(value)) out[f] = value;
      return;
    case "integer":
      if (typeof value === "number" && Number.isInteger(value) && Math.abs(value) <= MAX_INTEGER) out[f] = value;
      return;
    default: {
      const t = text(value);
      if (t !== undefined && (TEXT_FORMS[f]?.(t) ?? true)) out[f] = t;
    }
  }
}

/** The device says there is none now. */
function clear(v: InventoryValues, f: InventoryField): void {
  (v as Record<string, unknown>)[f] = null;
}

function text(value: unknown): string | undefined {
  if (typeof value !== "string" || value.length > MAX_TEXT || value.includes("\0")) return undefined;
  return (value as unknown as { isWellFormed(): boolean }).isWellFormed() ? value : undefined;
}

function dict(v: PlistValue | undefined): PlistDict | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof Date) ? v : undefined;
}
