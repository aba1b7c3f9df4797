// Declarative Device Management, the device's side of the protocol: the
// Endpoint of a DeclarativeManagement check-in, and the status report its
// Data carries (Apple's declarative/protocol/statusreport.yaml and
// declarative/status/management.declarations.yaml). Pure: no I/O.
import { BadRequest, OrchardError } from "../errors.ts";
import { checkJsonValue } from "./json-value.ts";

/** The four kinds of declaration, as the Endpoint's folder names them (`declaration/<kind>/<identifier>`). */
export const DECLARATION_KINDS = ["activation", "configuration", "asset", "management"] as const;
export type DeclarationKind = (typeof DECLARATION_KINDS)[number];

/** A Type's prefix and the kind it is: `com.apple.configuration.passcode.settings` is a configuration. */
export function kindOfType(type: string): DeclarationKind | undefined {
  for (const kind of DECLARATION_KINDS) if (type.startsWith(`com.apple.${kind}.`) && type.length > `com.apple.${kind}.`.length) return kind;
  return undefined;
}

export type DdmEndpoint =
  | { kind: "tokens" }
  | { kind: "declaration-items" }
  | { kind: "status" }
  | { kind: "declaration"; declarationKind: DeclarationKind; identifier: string };

const MAX_ENDPOINT_LENGTH = 1024;

/**
 * Reads a DeclarativeManagement Endpoint. Anything else (an unknown endpoint,
 * an empty, `.` or `..` segment, an unknown declaration folder) is a 400 naming it.
 */
export function parseEndpoint(endpoint: string): DdmEndpoint {
  const shown = JSON.stringify(endpoint.slice(0, 80));
  if (endpoint.length > MAX_ENDPOINT_LENGTH)
    throw new BadRequest(`DeclarativeManagement Endpoint is longer than ${MAX_ENDPOINT_LENGTH} characters`);
  const segments = endpoint.replace(/^\//, "").split("/");
  if (segments.some((s) => s === "" || s === "." || s === ".."))
    throw new BadRequest(`DeclarativeManagement Endpoint ${shown} is not a valid path`);
  if (/[\u0000-\u001f\u007f]/.test(endpoint)) throw new BadRequest("DeclarativeManagement Endpoint contains a control character");
  const [first, folder] = segments;
  if (segments.length === 1 && (first === "tokens" || first === "declaration-items" || first === "status")) return { kind: first };
  if (first === "declaration" && segments.length >= 3) {
    const declarationKind = DECLARATION_KINDS.find((k) => k === folder);
    if (declarationKind === undefined)
      throw new BadRequest(`DeclarativeManagement Endpoint ${shown}: no declaration kind ${JSON.stringify(folder)}`);
    return { kind: "declaration", declarationKind, identifier: segments.slice(2).join("/") };
  }
  throw new BadRequest(`unknown DeclarativeManagement Endpoint ${shown}`);
}

/** One declaration's state as a status report gives it. */
export interface DeclarationStatus {
  identifier: string;
  /** activation, configuration, asset or management (the array it came in). */
  kind: DeclarationKind;
  active: boolean;
  /** valid, invalid or unknown (Apple's values; others are kept as sent). */
  valid: string;
  serverToken: string;
  /** The reasons array as sent, or null. */
  reasons: unknown[] | null;
}

/** A root-level error of a report: the status item it is about and the error object as sent. */
export interface StatusError {
  statusItem: string;
  error: Record<string, unknown>;
}

export interface StatusReport {
  fullReport: boolean;
  declarations: DeclarationStatus[];
  /** Every other status item, flattened to its path (`device.operating-system.version`) and JSON value. */
  values: Array<{ path: string; value: unknown }>;
  errors: StatusError[];
}

/** The largest Data of a status report (a full report of a Mac with many apps is tens of KB). */
export const MAX_STATUS_REPORT_BYTES = 512 * 1024;
/** The most status values one report may carry, and how deep its items may nest. */
export const MAX_STATUS_VALUES = 5000;
/** The most declaration statuses, and root-level errors, one report may carry (400 past them: no device sends that many). */
export const MAX_STATUS_DECLARATIONS = 1000;
export const MAX_STATUS_ERRORS = 100;
const MAX_DEPTH = 24;
const MAX_PATH_LENGTH = 512;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Decodes a status report's Data: JSON, with Apple's shape; a 4xx naming what is wrong, never a partial report. */
export function decodeStatusReport(data: Buffer | undefined): StatusReport {
  if (data === undefined || data.length === 0) throw new BadRequest("DeclarativeManagement status without Data");
  if (data.length > MAX_STATUS_REPORT_BYTES) throw new OrchardError(413, `status report is larger than ${MAX_STATUS_REPORT_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(data));
  } catch {
    throw new BadRequest("status report Data is not JSON (UTF-8)");
  }
  if (!isObject(json)) throw new BadRequest("status report is not a JSON object");
  // Before anything walks it: bounded depth (arrays too), no NUL or lone surrogate to reach the store.
  checkJsonValue(json, "status report");
  const { StatusItems: items, Errors: errors, FullReport: full } = json;
  if (!isObject(items)) throw new BadRequest("status report has no StatusItems object");
  if (errors !== undefined && !Array.isArray(errors)) throw new BadRequest("status report Errors is not an array");
  if (full !== undefined && typeof full !== "boolean") throw new BadRequest("status report FullReport is not a boolean");
  if (errors !== undefined && errors.length > MAX_STATUS_ERRORS)
    throw new BadRequest(`status report has more than ${MAX_STATUS_ERRORS} Errors`);
  const report: StatusReport = { fullReport: full === true, declarations: [], values: [], errors: [] };
  for (const [i, e] of (errors ?? []).entries()) {
    if (!isObject(e) || typeof e.StatusItem !== "string") throw new BadRequest(`status report Errors[${i}] has no StatusItem`);
    report.errors.push({ statusItem: e.StatusItem, error: e });
  }
  flatten(items, "", 0, report);
  return report;
}

function flatten(node: Record<string, unknown>, prefix: string, depth: number, report: StatusReport): void {
  if (depth > MAX_DEPTH) throw new BadRequest(`status report nests deeper than ${MAX_DEPTH} levels`);
  for (const [key, value] of Object.entries(node)) {
    const path = prefix === "" ? key : `${prefix}.${key}`;
    if (path.length > MAX_PATH_LENGTH) throw new BadRequest(`status report path longer than ${MAX_PATH_LENGTH} characters`);
    if (path === "management.declarations") {
      declarations(value, report);
    } else if (isObject(value) && Object.keys(value).length > 0) {
      flatten(value, path, depth + 1, report);
    } else {
      if (report.values.length >= MAX_STATUS_VALUES) throw new BadRequest(`status report has more than ${MAX_STATUS_VALUES} values`);
      report.values.push({ path, value });
    }
  }
}

const ARRAYS: ReadonlyArray<[string, DeclarationKind]> = [
  ["activations", "activation"],
  ["configurations", "configuration"],
  ["assets", "asset"],
  ["management", "management"],
];

function declarations(value: unknown, report: StatusReport): void {
  if (!isObject(value)) throw new BadRequest("status item management.declarations is not an object");
  for (const [key, kind] of ARRAYS) {
    const list = value[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new BadRequest(`management.declarations.${key} is not an array`);
    if (report.declarations.length + list.length > MAX_STATUS_DECLARATIONS)
      throw new BadRequest(`status report has more than ${MAX_STATUS_DECLARATIONS} declarations`);
    for (const [i, d] of list.entries()) {
      const where = `management.declarations.${key}[${i}]`;
      if (!isObject(d)) throw new BadRequest(`${where} is not an object`);
      const { identifier, active, valid } = d;
      const token = d["server-token"];
      if (typeof identifier !== "string" || identifier === "") throw new BadRequest(`${where} has no identifier`);
      if (typeof active !== "boolean") throw new BadRequest(`${where} active is not a boolean`);
      if (typeof valid !== "string") throw new BadRequest(`${where} valid is not a string`);
      if (typeof token !== "string") throw new BadRequest(`${where} has no server-token`);
      if (d.reasons !== undefined && !Array.isArray(d.reasons)) throw new BadRequest(`${where} reasons is not an array`);
      report.declarations.push({
        identifier,
        kind,
        active,
        valid,
        serverToken: token,
        reasons: (d.reasons as unknown[] | undefined) ?? null,
      });
    }
  }
}

/** A JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
