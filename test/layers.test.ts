// The layers of src/ and what each may import: the one table, kept true by
// parsing every import of every file (type-only and dynamic ones too), and
// shown as it is in docs/architecture.md. A layer reaches only down: every
// layer in a row stands above the layers it names.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";

/**
 * Bottom first. A folder is named with its slash, a file at the top of src/
 * by its name. A row may also name one file of a lower folder ("http/wire.ts"):
 * that file, not the rest of its layer. A test file beside its subject
 * (*.test.ts) follows its folder's row too, and may also use test/support/.
 */
export const LAYERS: ReadonlyArray<readonly [layer: string, mayImport: readonly string[], what: string]> = [
  ["errors.ts", [], "the errors every layer throws, with their HTTP status"],
  ["version.ts", [], "the version Orchard reports"],
  ["duration.ts", [], "durations as operators write them (5m, 90d)"],
  ["url-credentials.ts", [], "a URL's user and password as HTTP Basic authentication (the clients' requests)"],
  ["heap-bounds.ts", [], "V8's heap sized for a server: young generation held at 8 MB semi-spaces, old growth 50%"],
  ["plist/", [], "XML property list codec"],
  ["digest/", [], "HTTP Digest: challenges, responses, nonces, htdigest"],
  ["identity/", [], "crypto formats (DER, BER, CMS, PKCS#12) and device identity"],
  ["declarations/", [], "DDM declarations checked against Apple's schema (compiled from its YAML)"],
  ["protocol/", ["plist/", "errors.ts"], "check-in and command messages, typed and validated; channels"],
  ["store/", ["protocol/", "errors.ts"], "the Store: SQLite and PostgreSQL"],
  [
    "core/",
    ["store/", "protocol/", "declarations/", "digest/", "plist/", "url-credentials.ts", "errors.ts"],
    "the MDM service and its wrappers",
  ],
  ["push/", ["core/", "store/", "identity/", "plist/", "errors.ts"], "APNs and push certificates"],
  ["webhook/", ["store/", "url-credentials.ts", "errors.ts"], "webhook delivery: the outbox POSTed to a receiver"],
  ["enroll/", ["identity/", "plist/", "errors.ts"], "device CA, enrollment profiles, profile signing"],
  ["scep/", ["enroll/", "store/", "identity/", "errors.ts"], "the SCEP CA (RFC 8894)"],
  [
    "ade/",
    ["store/", "identity/", "plist/", "errors.ts"],
    "Automated Device Enrollment: ABM tokens, Apple's device assignment API, sync, DEP profiles, the enrollment URL's MachineInfo",
  ],
  [
    "updates/",
    ["core/", "store/", "protocol/", "declarations/", "url-credentials.ts", "errors.ts"],
    "OS updates through DDM: Apple's software lookup feed, update policies, targets, compliance",
  ],
  [
    "http/",
    [
      "updates/",
      "ade/",
      "scep/",
      "enroll/",
      "push/",
      "core/",
      "store/",
      "protocol/",
      "declarations/",
      "identity/",
      "digest/",
      "plist/",
      "duration.ts",
      "version.ts",
      "errors.ts",
    ],
    "device endpoints, the API, SCEP's routes; errors become statuses",
  ],
  [
    "console/",
    ["http/wire.ts", "http/warning-header.ts"],
    "the web console: a browser client of the API (bundled by http/console-routes.ts)",
  ],
  ["sim/", ["scep/", "identity/", "digest/", "plist/"], "the fleet simulator (a client of the server)"],
  ["config.ts", ["updates/", "ade/", "push/", "webhook/", "core/", "duration.ts"], "orchard serve's flags and environment"],
  [
    "server.ts",
    [
      "config.ts",
      "http/",
      "updates/",
      "ade/",
      "scep/",
      "enroll/",
      "push/",
      "webhook/",
      "core/",
      "declarations/",
      "store/",
      "identity/",
      "plist/",
      "heap-bounds.ts",
      "errors.ts",
    ],
    "wires the layers into a server",
  ],
  [
    "cli/",
    [
      "server.ts",
      "config.ts",
      "sim/",
      "http/",
      "scep/",
      "enroll/",
      "push/",
      "core/",
      "store/",
      "identity/",
      "plist/",
      "duration.ts",
      "errors.ts",
    ],
    "the orchard command",
  ],
];

/** Packages that belong to one layer: the rest of the code reaches them only through it. */
export const PACKAGES: ReadonlyArray<readonly [pkg: string, layers: readonly string[]]> = [
  ["fastify", ["http/", "server.ts"]],
  ["pg", ["store/"]],
  ["better-sqlite3", ["store/"]],
  ["pkijs", ["identity/"]],
  ["prom-client", ["http/"]],
  ["esbuild", ["http/"]],
  ["preact", ["console/"]],
];

const ROOT = path.resolve(import.meta.dirname, "..");
const SRC = path.join(ROOT, "src");

/** The layer a path under src/ belongs to: its first folder, or the file itself. */
function layerOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length === 1 ? rel[0]! : `${rel[0]}/`;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith(".ts") || e.name.endsWith(".tsx") ? [p] : [];
  });
}

/** Every import of a file: import, export ... from, import type, import(). */
function imports(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
}

/** The table as docs/architecture.md shows it. */
export function layerTable(): string {
  const rows = [...LAYERS]
    .reverse()
    .map(([layer, may, what]) => `| \`${layer}\` | ${may.map((m) => `\`${m}\``).join(", ") || "nothing"} | ${what} |`);
  return ["| layer (top first) | may import | what it holds |", "| --- | --- | --- |", ...rows].join("\n");
}

/** The packages confined to a layer, as docs/architecture.md says it. */
export function packageLine(): string {
  return `Packages kept to their layer: ${PACKAGES.map(([pkg, layers]) => `\`${pkg}\` (${layers.map((l) => `\`${l}\``).join(", ")})`).join(", ")}.`;
}

/** The violations in the files given, one line each: file, import, and why. */
export function violations(files: string[], read = (file: string) => fs.readFileSync(file, "utf8")): string[] {
  const rows = new Map(LAYERS.map(([layer, may]) => [layer, new Set(may)]));
  const out: string[] = [];
  for (const file of files) {
    const rel = path.relative(ROOT, file);
    const isTest = file.endsWith(".test.ts");
    const from = layerOf(file);
    const allowed = rows.get(from);
    if (!allowed) {
      out.push(`${rel}: ${from} is in no row of the layer table (test/layers.test.ts): place it`);
      continue;
    }
    for (const spec of imports(read(file))) {
      if (!spec.startsWith(".")) {
        const pkg = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!;
        const owners = PACKAGES.find(([p]) => p === pkg)?.[1];
        if (owners && !owners.includes(from)) out.push(`${rel}: imports "${spec}": only ${owners.join(", ")} may import ${pkg}`);
        continue;
      }
      const target = path.resolve(path.dirname(file), spec);
      if (target.endsWith(".test.ts")) {
        out.push(`${rel}: imports "${spec}", a test file`);
        continue;
      }
      if (path.relative(SRC, target).startsWith("..")) {
        // Outside src/: only tests may reach test/support/.
        if (!(isTest && target.startsWith(path.join(ROOT, "test", "support") + path.sep))) {
          out.push(`${rel}: imports "${spec}", outside src/`);
        }
        continue;
      }
      const to = layerOf(target);
      if (to === from) continue;
      if (!allowed.has(to) && !allowed.has(path.relative(SRC, target).split(path.sep).join("/")))
        out.push(`${rel}: imports "${spec}": ${from} may not import ${to} (may import: ${[...allowed].join(", ") || "nothing"})`);
    }
  }
  return out;
}

test("each layer imports only layers below it (the table is bottom first)", () => {
  const seen = new Set<string>();
  for (const [layer, may] of LAYERS) {
    // A file of a folder ("http/wire.ts") is below when its folder is.
    for (const m of may) assert.ok(seen.has(m.replace(/^([^/]+\/).+$/, "$1")), `${layer} may import ${m}, which is not below it`);
    assert.ok(!seen.has(layer), `${layer} is in the table twice`);
    seen.add(layer);
  }
});

test("every import in src/ follows the layer table", () => {
  const found = violations(sourceFiles(SRC));
  assert.deepEqual(found, [], `imports that reach up or across:\n${found.join("\n")}`);
});

test("the check names the file and the import that breaks the table", () => {
  const probe = path.join(SRC, "scep", "probe.ts");
  const text =
    'import type { X } from "../http/app.ts";\nexport const y = await import("../config.ts");\nimport "../../test/support/mdm.ts";\n';
  assert.deepEqual(
    violations([probe], () => text),
    [
      'src/scep/probe.ts: imports "../http/app.ts": scep/ may not import http/ (may import: enroll/, store/, identity/, errors.ts)',
      'src/scep/probe.ts: imports "../config.ts": scep/ may not import config.ts (may import: enroll/, store/, identity/, errors.ts)',
      'src/scep/probe.ts: imports "../../test/support/mdm.ts", outside src/',
    ],
  );
  // A test beside its subject: test/support/ yes, an upper layer no.
  const probeTest = path.join(SRC, "store", "probe.test.ts");
  assert.deepEqual(
    violations([probeTest], () => 'import "../../test/support/postgres.ts";\nimport { statusOf } from "../http/errors.ts";\n'),
    ['src/store/probe.test.ts: imports "../http/errors.ts": store/ may not import http/ (may import: protocol/, errors.ts)'],
  );
  assert.deepEqual(
    violations([path.join(SRC, "core", "probe.ts")], () => 'import type { FastifyReply } from "fastify";\nimport pg from "pg";\n'),
    [
      'src/core/probe.ts: imports "fastify": only http/, server.ts may import fastify',
      'src/core/probe.ts: imports "pg": only store/ may import pg',
    ],
  );
  assert.deepEqual(
    violations([path.join(SRC, "newlayer", "x.ts")], () => ""),
    ["src/newlayer/x.ts: newlayer/ is in no row of the layer table (test/layers.test.ts): place it"],
  );
});

test("docs/architecture.md shows the same table", () => {
  const doc = fs.readFileSync(path.join(ROOT, "docs", "architecture.md"), "utf8");
  const start = doc.indexOf("| layer (top first) |");
  assert.ok(start >= 0, "docs/architecture.md has the layer table");
  const end = doc.indexOf("\n\n", start);
  assert.equal(
    doc.slice(start, end === -1 ? undefined : end),
    layerTable(),
    `docs/architecture.md's layer table differs; it should be:\n${layerTable()}`,
  );
  assert.ok(doc.replace(/\s*\n\s*/g, " ").includes(packageLine()), `docs/architecture.md should say, below the table:\n${packageLine()}`);
});
