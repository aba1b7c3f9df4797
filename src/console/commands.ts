// The common commands the console offers, each with the form of its fields
// (Apple's keys, from the MDM protocol reference). Anything else is sent as a
// raw plist. Adding a command here is all it takes for it to appear.

import type { EnrollmentJson } from "../http/wire.ts";
import type { PlistValue } from "./plist.ts";

/** A device's platform as its enrollment gives it (null: its facts do not tell). */
export type DevicePlatform = EnrollmentJson["platform"];

export type FieldKind = "text" | "number" | "boolean" | "list";

export interface CommandField {
  key: string;
  label: string;
  kind: FieldKind;
  required?: boolean;
  /** Required on these platforms only (DeviceLock's PIN on a Mac). */
  requiredOn?: readonly NonNullable<DevicePlatform>[];
  /** What the form starts with (a list: one item a line). */
  initial?: string | boolean;
  help?: string;
  /** A text field's rule, checked before sending. */
  pattern?: RegExp;
}

export interface CommonCommand {
  requestType: string;
  label: string;
  /** Asks to confirm before queueing, with this question: what the command does to the device, in its own words. */
  confirm?: string;
  fields: CommandField[];
}

const QUERIES = [
  "DeviceName",
  "OSVersion",
  "BuildVersion",
  "ModelName",
  "Model",
  "ProductName",
  "SerialNumber",
  "DeviceCapacity",
  "AvailableDeviceCapacity",
  "IsSupervised",
  "IsActivationLockEnabled",
  "WiFiMAC",
  "TimeZone",
].join("\n");

export const COMMON_COMMANDS: readonly CommonCommand[] = [
  {
    requestType: "DeviceInformation",
    label: "Device information",
    fields: [{ key: "Queries", label: "Queries (one a line)", kind: "list", initial: QUERIES }],
  },
  { requestType: "SecurityInfo", label: "Security information", fields: [] },
  {
    requestType: "InstalledApplicationList",
    label: "Installed applications",
    fields: [{ key: "ManagedAppsOnly", label: "Managed apps only", kind: "boolean", initial: false }],
  },
  { requestType: "ProfileList", label: "Installed profiles", fields: [] },
  { requestType: "CertificateList", label: "Installed certificates", fields: [] },
  { requestType: "AvailableOSUpdates", label: "Available OS updates", fields: [] },
  {
    requestType: "ScheduleOSUpdateScan",
    label: "Scan for OS updates",
    fields: [{ key: "Force", label: "Force a scan now", kind: "boolean", initial: false }],
  },
  {
    requestType: "RemoveProfile",
    label: "Remove a profile",
    fields: [{ key: "Identifier", label: "Profile identifier (PayloadIdentifier)", kind: "text", required: true }],
  },
  {
    requestType: "DeviceLock",
    label: "Lock",
    confirm: "Lock this device now? It stays locked until someone unlocks it: with its passcode, or a Mac with the PIN.",
    fields: [
      {
        key: "PIN",
        label: "PIN (macOS: six digits)",
        kind: "text",
        pattern: /^\d{6}$/,
        requiredOn: ["macOS"],
        help: "Required on a Mac: it unlocks it.",
      },
      { key: "Message", label: "Message on the lock screen", kind: "text" },
      { key: "PhoneNumber", label: "Phone number on the lock screen", kind: "text" },
    ],
  },
  {
    requestType: "RestartDevice",
    label: "Restart",
    confirm: "Restart this device now? Work not saved may be lost.",
    fields: [{ key: "NotifyUser", label: "Let the user save their work first (macOS)", kind: "boolean", initial: false }],
  },
  {
    requestType: "ShutDownDevice",
    label: "Shut down",
    confirm: "Shut this device down now? It stays off until someone turns it on.",
    fields: [],
  },
  {
    requestType: "EraseDevice",
    label: "Erase",
    confirm: "Erase this device? Everything on it is deleted: this cannot be undone.",
    fields: [{ key: "PIN", label: "PIN (macOS: six digits)", kind: "text", pattern: /^\d{6}$/ }],
  },
];

export function commonCommand(requestType: string): CommonCommand | undefined {
  return COMMON_COMMANDS.find((c) => c.requestType === requestType);
}

/** Whether a field must be given for a device of this platform. */
export function isRequired(f: CommandField, platform: DevicePlatform): boolean {
  return Boolean(f.required || (platform && f.requiredOn?.includes(platform)));
}

/** The command's fields from the form's values, or the reasons they cannot be sent to a device of this platform. */
export function commandFields(
  cmd: CommonCommand,
  values: Record<string, string | boolean>,
  platform: DevicePlatform = null,
): { fields: Record<string, PlistValue | undefined> } | { errors: string[] } {
  const fields: Record<string, PlistValue | undefined> = {};
  const errors: string[] = [];
  for (const f of cmd.fields) {
    const v = values[f.key] ?? f.initial ?? (f.kind === "boolean" ? false : "");
    if (f.kind === "boolean") {
      if (v === true) fields[f.key] = true;
      continue;
    }
    const text = String(v).trim();
    if (text === "") {
      if (isRequired(f, platform)) errors.push(`${f.label} is required${f.required ? "" : ` on ${platform}`}`);
      continue;
    }
    if (f.kind === "number") {
      const n = Number(text);
      if (!Number.isFinite(n)) errors.push(`${f.label} must be a number`);
      else fields[f.key] = n;
    } else if (f.kind === "list") {
      fields[f.key] = text
        .split(/[\n,]/)
        .map((s) => s.trim())
        .filter(Boolean);
    } else {
      if (f.pattern && !f.pattern.test(text)) errors.push(`${f.label} is not in the expected form`);
      fields[f.key] = text;
    }
  }
  return errors.length ? { errors } : { fields };
}
