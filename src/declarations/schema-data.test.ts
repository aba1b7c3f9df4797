// The compiled schema's own shape. Whether it is what scripts/compile-ddm-schema.ts
// makes of Apple's YAML cannot be checked here (the YAML is not in the repo);
// that it is whole and well formed can.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { SCHEMA } from "./schema-data.ts";
import { DECLARATION_FAMILIES, type KeySchema } from "./schema-types.ts";
import { DECLARATION_TYPES, REQUEST_TYPES, SCHEMA_SOURCE, STATUS_ITEMS } from "./index.ts";

const VALUE_TYPES = new Set(["string", "integer", "real", "boolean", "dictionary", "array", "data", "date", "any"]);
const SCALAR_OF: Record<string, string> = { string: "string", integer: "number", real: "number", boolean: "boolean" };

/** Every problem in one key schema and what it holds, by path. */
function problems(k: KeySchema, where: string): string[] {
  const out: string[] = [];
  const known = new Set(["key", "type", "required", "values", "min", "max", "keys", "anyKey", "open", "items"]);
  for (const field of Object.keys(k)) if (!known.has(field)) out.push(`${where}: unknown field ${field}`);
  if (!VALUE_TYPES.has(k.type)) out.push(`${where}: type ${k.type}`);
  if (k.required !== undefined && k.required !== true) out.push(`${where}: required is not true`);
  if (k.values !== undefined) {
    if (!Array.isArray(k.values) || k.values.length === 0) out.push(`${where}: values empty`);
    else if (!k.values.every((v) => typeof v === SCALAR_OF[k.type] && (k.type !== "integer" || Number.isInteger(v))))
      out.push(`${where}: values do not fit type ${k.type}`);
  }
  for (const bound of [k.min, k.max]) if (bound !== undefined && typeof bound !== "number") out.push(`${where}: a bound is not a number`);
  if ((k.min !== undefined || k.max !== undefined) && k.type !== "integer" && k.type !== "real") out.push(`${where}: range on ${k.type}`);
  if (k.min !== undefined && k.max !== undefined && k.min > k.max) out.push(`${where}: min > max`);
  if (k.type === "dictionary") {
    if (k.open && (k.keys || k.anyKey)) out.push(`${where}: open and described`);
    if (!k.open && !k.keys) out.push(`${where}: a dictionary without keys`);
    const seen = new Set<string>();
    for (const sub of k.keys ?? []) {
      // Apple's names are plain (one has a space: "External Path"); none is ANY or a name Object.prototype has.
      if (typeof sub.key !== "string" || !/^[A-Za-z0-9][A-Za-z0-9 _.-]*$/.test(sub.key) || sub.key === "ANY" || sub.key in Object.prototype)
        out.push(`${where}: key name ${JSON.stringify(sub.key)}`);
      if (seen.has(sub.key)) out.push(`${where}: key ${sub.key} twice`);
      seen.add(sub.key);
      out.push(...problems(sub, `${where}.${sub.key}`));
    }
    if (k.anyKey) out.push(...problems(k.anyKey, `${where}.ANY`));
  } else if (k.keys || k.anyKey || k.open) out.push(`${where}: subkeys on ${k.type}`);
  if (k.items) {
    if (k.type !== "array") out.push(`${where}: items on ${k.type}`);
    out.push(...problems(k.items, `${where}[]`));
  }
  return out;
}

test("every declaration type has a family, a title and a well-formed payload schema", () => {
  assert.ok(SCHEMA.declarations.length >= 30, `only ${SCHEMA.declarations.length} types`);
  const found: string[] = [];
  for (const d of SCHEMA.declarations) {
    if (!DECLARATION_FAMILIES.includes(d.family)) found.push(`${d.type}: family ${d.family}`);
    if (!d.type.startsWith(`com.apple.${d.family}.`)) found.push(`${d.type}: not in its family ${d.family}`);
    if (typeof d.title !== "string" || d.title === "") found.push(`${d.type}: no title`);
    if (d.payload.type !== "dictionary") found.push(`${d.type}: payload is ${d.payload.type}`);
    found.push(...problems(d.payload, `${d.type} Payload`));
  }
  assert.deepEqual(found, []);
  const types = SCHEMA.declarations.map((d) => d.type);
  assert.deepEqual(types, [...new Set(types)].sort(), "types unique and sorted");
  for (const family of DECLARATION_FAMILIES)
    assert.ok(
      SCHEMA.declarations.some((d) => d.family === family),
      `no ${family}`,
    );
});

test("the types Orchard relies on are there, with the keys it relies on", () => {
  const byType = new Map(SCHEMA.declarations.map((d) => [d.type, d]));
  for (const type of [
    "com.apple.activation.simple",
    "com.apple.configuration.passcode.settings",
    "com.apple.configuration.softwareupdate.enforcement.specific",
    "com.apple.configuration.softwareupdate.settings",
    "com.apple.configuration.management.status-subscriptions",
    "com.apple.configuration.legacy",
    "com.apple.configuration.legacy.interactive",
    "com.apple.asset.data",
    "com.apple.asset.credential.identity",
    "com.apple.asset.credential.scep",
    "com.apple.management.server-capabilities",
  ])
    assert.ok(byType.has(type), type);
  const data = byType.get("com.apple.asset.data")!.payload;
  const reference = data.keys!.find((k) => k.key === "Reference")!;
  assert.deepEqual(
    reference.keys!.map((k) => k.key),
    ["DataURL", "ContentType", "Size", "Hash-SHA-256"],
  );
  assert.equal(byType.get("com.apple.configuration.legacy")!.payload.keys!.find((k) => k.key === "ProfileURL")!.required, true);
});

test("the public lists follow the data", () => {
  assert.deepEqual(
    DECLARATION_TYPES,
    SCHEMA.declarations.map((d) => ({ type: d.type, family: d.family, title: d.title })),
  );
  assert.ok(Object.isFrozen(DECLARATION_TYPES) && Object.isFrozen(DECLARATION_TYPES[0]));
  assert.deepEqual(SCHEMA_SOURCE, { source: "apple/device-management", release: "iOS 18.2/macOS 15.2" });
});

test("status item names are sorted, unique and include the ones the protocol needs", () => {
  assert.deepEqual(STATUS_ITEMS, [...new Set(STATUS_ITEMS)].sort());
  for (const name of STATUS_ITEMS) assert.match(name, /^[a-z0-9-]+(\.[a-z0-9-]+)+$/, name);
  for (const name of [
    "device.operating-system.version",
    "device.identifier.serial-number",
    "management.declarations",
    "management.client-capabilities",
  ])
    assert.ok(STATUS_ITEMS.includes(name), name);
  assert.ok(Object.isFrozen(STATUS_ITEMS));
});

test("Apple's licence is beside the data, with the source named", () => {
  const licence = fs.readFileSync(path.join(import.meta.dirname, "LICENSE-apple-device-management.txt"), "utf8");
  assert.match(licence, /Copyright © 2022-2024 Apple Inc\./);
  assert.match(licence, /Permission is hereby granted, free of charge/);
  assert.match(licence, /github\.com\/apple\/device-management/);
  assert.match(licence, /iOS 18\.2 \/ macOS 15\.2/);
});

test("command RequestTypes are sorted, unique, Apple's names, and include the ones Orchard sends", () => {
  assert.deepEqual(REQUEST_TYPES, [...new Set(REQUEST_TYPES)].sort());
  for (const name of REQUEST_TYPES) assert.match(name, /^[A-Z][A-Za-z]+$/, name);
  for (const name of ["DeviceInformation", "SecurityInfo", "DeclarativeManagement", "DeviceConfigured", "ProfileList", "CertificateList"])
    assert.ok(REQUEST_TYPES.includes(name), name);
  assert.ok(Object.isFrozen(REQUEST_TYPES));
});
