// Orchard's sources bundled into one ES module, dist/orchard.mjs, that plain
// node runs. Running the TypeScript through tsx instead costs 35 to 55 MB of
// RSS for as long as the process lives (tsx's module hooks run in a loader
// thread with a V8 heap of its own) and several seconds of start-up
// (docs/scaling.md, "Memory"). Packages stay imports (resolved from
// node_modules as before); only src/ is bundled. The webhook sender's
// thread gets a small bundle of its own beside it (webhook-sender.mjs).
//
// The bundle carries a stamp of the sources it was built from (each file's
// path, size and mtime, and the build's own version): bin/orchard.js rebuilds
// it when src/ changed, so a checkout runs its current code with no build step.
// `npm run build` builds it ahead (for a read-only install, e.g. the systemd
// unit's /opt/orchard); where it is stale and cannot be written, bin/orchard.js
// runs the sources through tsx as before and says so.
//
//   node bin/bundle.js            build dist/orchard.mjs now
//   node bin/bundle.js --check    exit 0 when it is up to date, 1 when not
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Bump when the build options below change: the stamp then changes and old bundles are rebuilt. */
const BUILD_VERSION = 2;

/** What the bundle exports: the command, and what the bench's server process starts. */
const ENTRY = [
  'export { main } from "./src/cli/main.ts";',
  'export { startServer } from "./src/server.ts";',
  'export { parseServeArgs } from "./src/config.ts";',
].join("\n");

const STAMP_PREFIX = "// orchard bundle ";

/** Where the bundle of the checkout at `root` lives. */
export function bundlePath(root = ROOT) {
  return path.join(root, "dist", "orchard.mjs");
}

/** A hash of what the bundle is built from: every non-test .ts under src/ (path, size, mtime), and the build's version. */
export function sourceStamp(root = ROOT) {
  const hash = crypto.createHash("sha256");
  hash.update(`build ${BUILD_VERSION} esbuild ${esbuildVersion(root)}\n`);
  const walk = (dir) => {
    const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) {
        const st = fs.statSync(p);
        hash.update(`${path.relative(root, p)}\0${st.size}\0${st.mtimeMs}\n`);
      }
    }
  };
  walk(path.join(root, "src"));
  return hash.digest("hex").slice(0, 32);
}

function esbuildVersion(root) {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, "node_modules", "esbuild", "package.json"), "utf8")).version;
  } catch {
    return "?";
  }
}

/** The stamp written on the bundle's first line, or undefined (no bundle). */
export function bundleStamp(file) {
  let fd;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return undefined;
  }
  try {
    const head = Buffer.alloc(STAMP_PREFIX.length + 64);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    const line = head.subarray(0, n).toString("latin1").split("\n")[0];
    return line.startsWith(STAMP_PREFIX) ? line.slice(STAMP_PREFIX.length) : undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Bundles `entry` (a file, or { contents } resolved from `root`) into `outfile`
 * with a linked source map (used under `node --enable-source-maps`). The files
 * are written under temporary names and renamed, so processes starting at the
 * same time never read half a bundle.
 */
export async function bundle({ root = ROOT, entry, outfile, stamp, external = [] }) {
  const esbuild = await import("esbuild");
  try {
    const result = await esbuild.build({
      ...(typeof entry === "string"
        ? { entryPoints: [entry] }
        : { stdin: { contents: entry.contents, resolveDir: root, sourcefile: "orchard-entry.js", loader: "js" } }),
      // Paths in errors and in the bundle's `// src/...` lines are relative to the checkout.
      absWorkingDir: root,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      packages: "external",
      external,
      outfile,
      sourcemap: "linked",
      sourcesContent: false,
      banner: stamp ? { js: STAMP_PREFIX + stamp } : undefined,
      write: false,
      logLevel: "silent",
    });
    fs.mkdirSync(path.dirname(outfile), { recursive: true });
    const tmp = `.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`;
    // The source map first: the bundle (which names it) is renamed into place last.
    const files = [
      ...result.outputFiles.filter((f) => f.path.endsWith(".map")),
      ...result.outputFiles.filter((f) => !f.path.endsWith(".map")),
    ];
    for (const f of files) {
      // esbuild escapes non-ASCII in code but keeps it in comments; one such
      // character makes V8 hold the whole source as two-byte (twice the memory).
      const text = f.path.endsWith(".map")
        ? f.text
        : f.text.replace(/[^\0-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
      fs.writeFileSync(f.path + tmp, text);
      fs.renameSync(f.path + tmp, f.path);
    }
  } finally {
    await esbuild.stop();
  }
}

/**
 * The webhook sender's thread loads this small bundle of its own, beside
 * Orchard's (src/webhook/sender-thread.ts SENDER_BUNDLE names it).
 */
const SENDER_ENTRY = "src/webhook/sender-worker.ts";
const SENDER_BUNDLE = "webhook-sender.mjs";

/** Builds the checkout's bundle of Orchard (the sender's first: Orchard's, with the stamp, is the one checked). */
export async function buildOrchard(root = ROOT) {
  const stamp = sourceStamp(root);
  // A tree from before the sender's thread (the bench's --baseline-orchard builds older revisions) has none.
  if (fs.existsSync(path.join(root, SENDER_ENTRY)))
    await bundle({ root, entry: SENDER_ENTRY, outfile: path.join(path.dirname(bundlePath(root)), SENDER_BUNDLE), stamp });
  await bundle({ root, entry: { contents: ENTRY }, outfile: bundlePath(root), stamp });
}

/**
 * The up-to-date bundle's path, building it first when src/ changed (in a
 * child process, so that this one never loads esbuild), or an Error saying
 * why there is none (a read-only checkout, a build error).
 */
export function ensureOrchardBundle(root = ROOT) {
  const file = bundlePath(root);
  if (bundleStamp(file) === sourceStamp(root)) return file;
  const built = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--root", root], {
    stdio: ["ignore", "ignore", "pipe"],
    encoding: "utf8",
  });
  if (built.status === 0 && bundleStamp(file) === sourceStamp(root)) return file;
  const reason = (built.stderr || built.error?.message || `exit ${built.status}`).trim().split("\n")[0];
  return new Error(`cannot build ${path.relative(root, file)}: ${reason}`);
}

/**
 * Loads the checkout's Orchard: the bundle, or (ORCHARD_RUNTIME=tsx, or no
 * bundle can be built) the TypeScript sources through tsx, with a warning.
 */
export async function loadOrchard(root = ROOT) {
  if (process.env.ORCHARD_RUNTIME !== "tsx") {
    const file = ensureOrchardBundle(root);
    if (typeof file === "string") return import(pathToFileURL(file).href);
    process.stderr.write(`orchard: ${file.message}; running the sources through tsx instead (35 to 55 MB more memory; npm run build)\n`);
  }
  const { register } = await import("tsx/esm/api");
  register();
  return import(pathToFileURL(path.join(root, "src", "cli", "main.ts")).href);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const at = args.indexOf("--root");
  const root = at >= 0 ? path.resolve(args[at + 1]) : ROOT;
  if (args.includes("--check")) {
    process.exit(bundleStamp(bundlePath(root)) === sourceStamp(root) ? 0 : 1);
  }
  try {
    await buildOrchard(root);
  } catch (err) {
    // esbuild's errors name the file and line; a failed write names the path.
    const first = err?.errors?.[0];
    const where = first?.location ? `${first.location.file}:${first.location.line}: ` : "";
    process.stderr.write(`${first ? where + first.text : (err?.message ?? String(err))}\n`);
    process.exit(1);
  }
}
