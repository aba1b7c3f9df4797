// Compiles Apple's declarative device management schema (the YAML of
// https://github.com/apple/device-management, MIT) into the data Orchard's
// declaration validator reads at run time: src/declarations/schema-data.ts.
// Only what validation needs is kept (types, presence, rangelist, range,
// subkeys); titles of types; status item names; MDM command RequestTypes. The
// run time needs no YAML.
//
//   node --import tsx scripts/compile-ddm-schema.ts <apple-device-management dir> [out.ts]
//
// The output is formatted with Biome when it is installed. Development only:
// it needs the `yaml` package (a devDependency).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import type {
  DeclarationFamily,
  DeclarationTypeSchema,
  KeySchema,
  NamedKeySchema,
  SchemaData,
  ValueType,
} from "../src/declarations/schema-types.ts";

const FAMILIES: Record<string, DeclarationFamily> = {
  activations: "activation",
  configurations: "configuration",
  assets: "asset",
  management: "management",
};

const TYPES: Record<string, ValueType> = {
  "<string>": "string",
  "<integer>": "integer",
  "<real>": "real",
  "<boolean>": "boolean",
  "<dictionary>": "dictionary",
  "<array>": "array",
  "<data>": "data",
  "<date>": "date",
  "<any>": "any",
};

/** The base keys every declaration has; the validator knows them by heart, so a change here must be looked at. */
const BASE_KEYS = ["Type", "Identifier", "ServerToken", "Payload"];

interface YamlKey {
  key: string;
  type: string;
  presence?: string;
  rangelist?: unknown[];
  range?: { min?: number; max?: number };
  subkeys?: YamlKey[];
  format?: string;
  valuetype?: string;
  subtype?: string;
  repetition?: unknown;
}

/** What the source uses that the validator does not check: printed, so whoever regenerates sees it. */
const ignored = new Map<string, Set<string>>();
function note(what: string, where: string): void {
  if (!ignored.has(what)) ignored.set(what, new Set());
  ignored.get(what)!.add(where);
}

function fail(message: string): never {
  process.stderr.write(`compile-ddm-schema: ${message}\n`);
  process.exit(1);
}

/** A schema file, as far as this script reads it. */
interface YamlDoc {
  title?: string;
  payload?: { declarationtype?: unknown; statusitemtype?: unknown; requesttype?: unknown };
  payloadkeys?: YamlKey[];
}

function readYaml(file: string): YamlDoc | undefined {
  return parse(fs.readFileSync(file, "utf8")) as YamlDoc | undefined;
}

function compileKey(k: YamlKey, where: string): KeySchema {
  const type = TYPES[k.type];
  if (!type) fail(`${where}: unknown type ${JSON.stringify(k.type)}`);
  const out: KeySchema = { type };
  if (k.presence === "required") out.required = true;
  else if (k.presence !== undefined && k.presence !== "optional") fail(`${where}: unknown presence ${JSON.stringify(k.presence)}`);
  if (k.rangelist !== undefined) {
    if (!Array.isArray(k.rangelist) || !k.rangelist.every((v) => ["string", "number", "boolean"].includes(typeof v)))
      fail(`${where}: rangelist is not a list of scalars`);
    out.values = k.rangelist as Array<string | number | boolean>;
  }
  if (k.range !== undefined) {
    if (typeof k.range.min === "number") out.min = k.range.min;
    if (typeof k.range.max === "number") out.max = k.range.max;
  }
  for (const unsupported of ["format", "valuetype", "subtype", "repetition"] as const) {
    if (k[unsupported] !== undefined) note(unsupported, where);
  }
  const subkeys = k.subkeys ?? [];
  if (type === "dictionary") {
    if (subkeys.length === 0) out.open = true;
    else Object.assign(out, compileKeys(subkeys, where));
  } else if (type === "array") {
    if (subkeys.length > 1) fail(`${where}: an array has ${subkeys.length} subkeys (Apple's format allows one)`);
    if (subkeys.length === 1) out.items = compileKey(subkeys[0]!, `${where}[]`);
  } else if (subkeys.length > 0) {
    note("subkeys of a scalar", where);
  }
  return out;
}

/** A dictionary's subkeys: named ones, and the schema of any other key (`ANY`). */
function compileKeys(keys: YamlKey[], where: string): Pick<KeySchema, "keys" | "anyKey"> {
  const named: NamedKeySchema[] = [];
  let anyKey: KeySchema | undefined;
  const seen = new Set<string>();
  for (const k of keys) {
    if (typeof k?.key !== "string" || k.key === "") fail(`${where}: a key without a name`);
    if (seen.has(k.key)) fail(`${where}: key ${k.key} twice`);
    seen.add(k.key);
    if (k.key === "ANY") anyKey = compileKey(k, `${where}.ANY`);
    else named.push({ key: k.key, ...compileKey(k, `${where}.${k.key}`) });
  }
  return anyKey ? { keys: named, anyKey } : { keys: named };
}

function yamlFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? yamlFiles(path.join(dir, e.name)) : e.name.endsWith(".yaml") ? [path.join(dir, e.name)] : []))
    .sort();
}

/** "iOS 18.2/macOS 15.2" from the README's OS table. */
function release(root: string): string {
  const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
  const version = (os: string) => new RegExp(`^\\|\\s*${os}\\s*\\|\\s*([0-9.]+)\\s*\\|`, "m").exec(readme)?.[1];
  const ios = version("iOS");
  const macos = version("macOS");
  if (!ios || !macos) fail("README.md has no OS version table");
  return `iOS ${ios}/macOS ${macos}`;
}

export function compile(root: string): SchemaData {
  const declDir = path.join(root, "declarative", "declarations");
  const statusDir = path.join(root, "declarative", "status");
  if (!fs.existsSync(declDir)) fail(`${declDir} does not exist: give the root of a clone of apple/device-management`);

  const base = readYaml(path.join(declDir, "declarationbase.yaml"));
  const baseKeys = (base?.payloadkeys ?? []).map((k) => k.key);
  if (baseKeys.join() !== BASE_KEYS.join())
    fail(`declarationbase.yaml's keys changed (${baseKeys.join(", ")}): update validate.ts's base rules and this check`);

  const declarations: DeclarationTypeSchema[] = [];
  for (const file of yamlFiles(declDir)) {
    const rel = path.relative(declDir, file);
    const doc = readYaml(file);
    const type = doc?.payload?.declarationtype;
    if (type === "any") continue; // declarationbase.yaml
    if (typeof type !== "string") {
      // assets/credentials/*.yaml: the format of a credential asset's data, not a declaration.
      note("files without a declarationtype (skipped)", rel);
      continue;
    }
    const family = FAMILIES[rel.split(path.sep)[0]!];
    if (!family) fail(`${rel}: not in a family folder`);
    if (!type.startsWith(`com.apple.${family}.`)) fail(`${rel}: type ${type} is not in family ${family}`);
    if (declarations.some((d) => d.type === type)) fail(`${rel}: type ${type} twice`);
    const payload: KeySchema = { type: "dictionary", ...compileKeys(doc?.payloadkeys ?? [], type) };
    declarations.push({ type, family, title: String(doc?.title ?? type), payload });
  }
  declarations.sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));

  const statusItems = yamlFiles(statusDir)
    .map((file) => readYaml(file)?.payload?.statusitemtype)
    .filter((t): t is string => typeof t === "string")
    .sort();

  // MDM commands: only their names (enqueue warns of a RequestType that is none of them).
  const requestTypes = yamlFiles(path.join(root, "mdm", "commands"))
    .map((file) => readYaml(file)?.payload?.requesttype)
    .filter((t): t is string => typeof t === "string")
    .sort();

  return { source: "apple/device-management", release: release(root), declarations, statusItems, requestTypes };
}

function render(data: SchemaData): string {
  return [
    "// Generated by scripts/compile-ddm-schema.ts from Apple's device management schema",
    `// (${data.source}, ${data.release}; MIT: LICENSE-apple-device-management.txt beside this file).`,
    "// Do not edit: regenerate.",
    'import type { SchemaData } from "./schema-types.ts";',
    "",
    `export const SCHEMA: SchemaData = ${JSON.stringify(data, null, 2)};`,
    "",
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = process.argv[2];
  if (!root) fail("usage: compile-ddm-schema.ts <apple-device-management dir> [out.ts]");
  const out = process.argv[3] ?? path.resolve(import.meta.dirname, "../src/declarations/schema-data.ts");
  const data = compile(path.resolve(root));
  fs.writeFileSync(out, render(data));
  try {
    execFileSync("npx", ["biome", "format", "--write", out], { cwd: path.dirname(out), stdio: "ignore" });
  } catch {
    process.stderr.write(`compile-ddm-schema: biome did not format ${out}: run npx biome format --write on it\n`);
  }
  process.stdout.write(
    `${out}: ${data.declarations.length} declaration types, ${data.statusItems.length} status items, ${data.requestTypes.length} command request types, ${fs.statSync(out).size} bytes (${data.release})\n`,
  );
  for (const [what, where] of ignored) process.stdout.write(`not checked: ${what}: ${[...where].join(", ")}\n`);
}
