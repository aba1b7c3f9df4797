// Declarations checked against Apple's declarative device management schema
// before Orchard stores them: the base keys every declaration has, then, for a
// Type the schema knows, its Payload (required keys, types, allowed values,
// ranges, nested dictionaries and arrays). Pure: the schema is compiled from
// Apple's YAML at development time (schema-data.ts) and turned into lookup
// tables once, when this module loads; a call only walks the declaration.
import { SCHEMA } from "./schema-data.ts";
import { DECLARATION_FAMILIES, type DeclarationFamily, type KeySchema, type SchemaData, type ValueType } from "./schema-types.ts";

export type { DeclarationFamily, SchemaData } from "./schema-types.ts";
export { DECLARATION_FAMILIES } from "./schema-types.ts";

export interface DeclarationError {
  /** Where in the declaration: "Type", "Payload.Deferrals.MajorPeriodInDays", "Payload.StatusItems[2].Name"; "" for the whole. */
  path: string;
  message: string;
}

export interface DeclarationValidation {
  /** Empty when the declaration may be stored. */
  errors: DeclarationError[];
  /** Said to the operator, never a reason to refuse: unknown keys, a Type newer than the schema. */
  warnings: string[];
}

export interface DeclarationTypeInfo {
  type: string;
  family: DeclarationFamily;
  /** Apple's title, e.g. "Passcode:Settings". */
  title: string;
}

/** Where the schema comes from and which release it describes. */
export const SCHEMA_SOURCE: { readonly source: string; readonly release: string } = Object.freeze({
  source: SCHEMA.source,
  release: SCHEMA.release,
});

/** Every declaration type the schema knows, sorted by type. */
export const DECLARATION_TYPES: ReadonlyArray<Readonly<DeclarationTypeInfo>> = Object.freeze(
  SCHEMA.declarations.map((d) => Object.freeze({ type: d.type, family: d.family, title: d.title })),
);

/** Every status item name the schema knows (device.operating-system.version, ...), sorted. */
export const STATUS_ITEMS: readonly string[] = Object.freeze([...SCHEMA.statusItems]);

/** Every MDM command RequestType the schema knows (DeviceInformation, ...), sorted. */
export const REQUEST_TYPES: readonly string[] = Object.freeze([...SCHEMA.requestTypes]);

const TYPE_INFO = new Map(DECLARATION_TYPES.map((t) => [t.type, t]));

/** A known declaration type's family and title; undefined for a type the schema does not have. */
export function declarationType(type: string): Readonly<DeclarationTypeInfo> | undefined {
  return TYPE_INFO.get(type);
}

/** The family a Type belongs to by its name (com.apple.<family>.<name>), known to the schema or not. */
export function declarationFamily(type: string): DeclarationFamily | undefined {
  const m = FAMILY_RE.exec(type);
  return m ? (m[1] as DeclarationFamily) : undefined;
}

/** "path: message", or the message alone for the whole declaration. */
export function formatDeclarationError(e: DeclarationError): string {
  return e.path ? `${e.path}: ${e.message}` : e.message;
}

function unknownTypeWarning(release: string): string {
  return `type not in the schema this server knows (${release} seed); not validated`;
}

/** The warning for an Apple-looking Type the schema does not know (after `Type "<type>": `). */
export const UNKNOWN_TYPE_WARNING = unknownTypeWarning(SCHEMA.release);

/** Past this many errors the walk stops (a huge wrong array is one mistake, said enough times). */
export const MAX_ERRORS = 50;
/** Past this many warnings the rest are counted in one line. */
export const MAX_WARNINGS = 50;

const FAMILY_RE = new RegExp(`^com\\.apple\\.(${DECLARATION_FAMILIES.join("|")})\\.[^.]`);

/** The base keys (declarationbase.yaml); ServerToken is the server's to set, so what a client sends is ignored. */
const BASE_KEYS = new Set(["Type", "Identifier", "ServerToken", "Payload"]);

/** Apple: "The size of this string should not exceed 64 octets." */
const IDENTIFIER_OCTETS = 64;

// --- The schema as lookup tables, built once -------------------------------

interface Node {
  type: ValueType;
  values?: ReadonlySet<unknown>;
  /** The allowed values as the message shows them. */
  valuesText?: string;
  min?: number;
  max?: number;
  /** Dictionary: named subkeys (a Map: no key of Object.prototype is ever a schema key). */
  keys?: ReadonlyMap<string, Node>;
  required?: readonly string[];
  anyKey?: Node;
  open: boolean;
  items?: Node;
}

function compileNode(k: KeySchema): Node {
  const node: Node = { type: k.type, open: k.open === true };
  if (k.values) {
    node.values = new Set(k.values);
    node.valuesText = k.values.map((v) => JSON.stringify(v)).join(", ");
  }
  if (k.min !== undefined) node.min = k.min;
  if (k.max !== undefined) node.max = k.max;
  if (k.type === "dictionary") {
    const keys = new Map<string, Node>();
    const required: string[] = [];
    for (const sub of k.keys ?? []) {
      keys.set(sub.key, compileNode(sub));
      if (sub.required) required.push(sub.key);
    }
    node.keys = keys;
    node.required = required;
    if (k.anyKey) node.anyKey = compileNode(k.anyKey);
  }
  if (k.items) node.items = compileNode(k.items);
  return node;
}

// --- The walk ---------------------------------------------------------------

interface Walk {
  errors: DeclarationError[];
  warnings: string[];
  /** Warnings past MAX_WARNINGS, counted. */
  moreWarnings: number;
  type: string;
}

const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** A key appended to a path: `.Key`, or `["odd key"]` for one that is not a plain name. */
function child(path: string, key: string): string {
  return IDENT_RE.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(short(key))}]`;
}

/** A string cut to a length fit for a message. */
function short(s: string, max = 80): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function isDictionary(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** What a value is, in the schema's words. */
function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  switch (typeof v) {
    case "number":
      return Number.isInteger(v) ? "integer" : "real";
    case "object":
      return "dictionary";
    default:
      return typeof v;
  }
}

function shown(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(short(v)) : String(v);
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function typeMatches(type: ValueType, v: unknown): boolean {
  switch (type) {
    case "string":
    case "date":
      return typeof v === "string";
    case "integer":
      return typeof v === "number" && Number.isInteger(v);
    case "real":
      return typeof v === "number" && Number.isFinite(v);
    case "boolean":
      return typeof v === "boolean";
    case "dictionary":
      return isDictionary(v);
    case "array":
      return Array.isArray(v);
    case "data":
      return typeof v === "string" && BASE64_RE.test(v);
    case "any":
      return v !== null && v !== undefined;
  }
}

function expected(type: ValueType): string {
  switch (type) {
    case "data":
      return "data (a base64 string)";
    case "date":
      return "date (a string)";
    case "any":
      return "a value";
    default:
      return type;
  }
}

function error(w: Walk, path: string, message: string): void {
  if (w.errors.length < MAX_ERRORS) w.errors.push({ path, message });
}

function warn(w: Walk, message: string): void {
  if (w.warnings.length < MAX_WARNINGS) w.warnings.push(message);
  else w.moreWarnings++;
}

function full(w: Walk): boolean {
  return w.errors.length >= MAX_ERRORS;
}

function checkValue(w: Walk, node: Node, v: unknown, path: string): void {
  if (!typeMatches(node.type, v)) {
    error(w, path, `expected ${expected(node.type)}, got ${kindOf(v)}`);
    return;
  }
  if (node.values && !node.values.has(v)) {
    error(w, path, `expected one of ${node.valuesText}, got ${shown(v)}`);
    return;
  }
  if (typeof v === "number") {
    if (node.min !== undefined && v < node.min) {
      error(
        w,
        path,
        node.max !== undefined ? `must be between ${node.min} and ${node.max}, got ${v}` : `must be at least ${node.min}, got ${v}`,
      );
      return;
    }
    if (node.max !== undefined && v > node.max) {
      error(
        w,
        path,
        node.min !== undefined ? `must be between ${node.min} and ${node.max}, got ${v}` : `must be at most ${node.max}, got ${v}`,
      );
      return;
    }
  }
  if (node.type === "dictionary") checkDictionary(w, node, v as Record<string, unknown>, path);
  else if (node.type === "array" && node.items) {
    const items = node.items;
    const list = v as unknown[];
    for (let i = 0; i < list.length && !full(w); i++) checkValue(w, items, list[i], `${path}[${i}]`);
  }
}

function checkDictionary(w: Walk, node: Node, v: Record<string, unknown>, path: string): void {
  if (node.open) return;
  for (const key of node.required!) {
    if (!Object.hasOwn(v, key)) error(w, child(path, key), "required key missing");
  }
  // Object.keys: own keys only; a JSON "__proto__" key is an own key and is looked up in a Map, so it is only ever unknown.
  for (const key of Object.keys(v)) {
    if (full(w)) return;
    const sub = node.keys!.get(key) ?? node.anyKey;
    if (sub) checkValue(w, sub, v[key], child(path, key));
    else warn(w, `${child(path, key)}: unknown key, not in the schema of ${w.type}`);
  }
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * Checks a declaration (the JSON an operator sends) against Apple's schema.
 * Errors mean it must not be stored; warnings are reported with the answer.
 * A Type the schema knows has its Payload checked; an Apple-looking Type it
 * does not know (the schema lags Apple's releases) is accepted with a warning;
 * any other Type is an error. ServerToken is ignored: the server sets it.
 */
export const validateDeclaration: (json: unknown) => DeclarationValidation = createDeclarationValidator(SCHEMA);

/** A validator for the schema given (validateDeclaration is the one for Orchard's schema): the lookup tables are built here, once. */
export function createDeclarationValidator(schema: SchemaData): (json: unknown) => DeclarationValidation {
  const payloads: ReadonlyMap<string, Node> = new Map(schema.declarations.map((d) => [d.type, compileNode(d.payload)]));
  const unknownType = unknownTypeWarning(schema.release);
  return (json) => validate(payloads, unknownType, json);
}

function validate(payloads: ReadonlyMap<string, Node>, unknownType: string, json: unknown): DeclarationValidation {
  const w: Walk = { errors: [], warnings: [], moreWarnings: 0, type: "" };
  if (!isDictionary(json)) {
    error(w, "", `a declaration is a JSON object, got ${kindOf(json)}`);
    return done(w);
  }

  const type = Object.hasOwn(json, "Type") ? json["Type"] : undefined;
  if (type === undefined) error(w, "Type", "required key missing");
  else if (typeof type !== "string") error(w, "Type", `expected string, got ${kindOf(type)}`);

  const identifier = Object.hasOwn(json, "Identifier") ? json["Identifier"] : undefined;
  if (identifier === undefined) error(w, "Identifier", "required key missing");
  else if (typeof identifier !== "string") error(w, "Identifier", `expected string, got ${kindOf(identifier)}`);
  else if (identifier === "") error(w, "Identifier", "must not be empty");
  else if (utf8Length(identifier) > IDENTIFIER_OCTETS)
    warn(w, `Identifier: longer than ${IDENTIFIER_OCTETS} octets, which Apple says it should not exceed`);

  const payload = Object.hasOwn(json, "Payload") ? json["Payload"] : undefined;
  if (payload === undefined) error(w, "Payload", "required key missing");
  else if (!isDictionary(payload)) error(w, "Payload", `expected dictionary, got ${kindOf(payload)}`);

  for (const key of Object.keys(json)) {
    if (!BASE_KEYS.has(key))
      warn(w, `${child("", key).replace(/^\./, "")}: unknown key, not one of Type, Identifier, ServerToken, Payload`);
  }

  if (typeof type === "string") {
    w.type = type;
    const node = payloads.get(type);
    if (node) {
      if (isDictionary(payload)) checkDictionary(w, node, payload, "Payload");
    } else if (FAMILY_RE.test(type)) {
      warn(w, `Type ${JSON.stringify(short(type))}: ${unknownType}`);
    } else {
      error(
        w,
        "Type",
        `unknown declaration type ${JSON.stringify(short(type))}: a Type is com.apple.activation.*, com.apple.configuration.*, com.apple.asset.* or com.apple.management.*`,
      );
    }
  }
  return done(w);
}

function done(w: Walk): DeclarationValidation {
  if (w.errors.length >= MAX_ERRORS) w.warnings.push(`more errors not shown: the check stopped after ${MAX_ERRORS}`);
  if (w.moreWarnings > 0) w.warnings.push(`${w.moreWarnings} more warnings not shown`);
  return { errors: w.errors, warnings: w.warnings };
}
