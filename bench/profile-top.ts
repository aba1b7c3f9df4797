// Where a server spent its CPU, from a V8 .cpuprofile (bench --profile writes
// them; node --cpu-prof too): top functions by self time, and Orchard's own
// functions (src/) by inclusive time. Idle samples are left out: percentages
// are of the time the thread was busy.
//
//   node --import tsx bench/profile-top.ts FILE.cpuprofile [N]
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface TopFunction {
  name: string;
  where: string;
  ms: number;
  /** Share of busy (non-idle) time, in %. */
  pct: number;
}

export interface ProfileSummary {
  busyMs: number;
  /** Functions by self time. */
  self: TopFunction[];
  /** Functions under src/ by inclusive time (self plus callees). */
  inclusive: TopFunction[];
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export function summarizeProfile(file: string, n = 20): ProfileSummary {
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
  const label = (node: ProfileNode) => {
    const f = node.callFrame;
    const name = f.functionName || "(anonymous)";
    // Under tsx the line numbers are those of the transpiled code, in the bundle the bundle's: the file is what helps.
    const where = f.url ? (bundledSource(f.url, f.lineNumber) ?? shorten(f.url)) : "";
    return { key: `${name}\0${where}`, name, where, ours: where.startsWith("src/") };
  };
  const self = new Map<string, { name: string; where: string; us: number }>();
  const inclusive = new Map<string, { name: string; where: string; us: number }>();
  let busy = 0;
  // A sample lasts until the next one: sample i gets timeDeltas[i + 1].
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(profile.samples[i]!);
    if (us <= 0 || !node || node.callFrame.functionName === "(idle)") continue;
    busy += us;
    const l = label(node);
    add(self, l, us);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = label(byId.get(id)!);
      if (!frame.ours || seen.has(frame.key)) continue;
      seen.add(frame.key);
      add(inclusive, frame, us);
    }
  }
  const top = (m: Map<string, { name: string; where: string; us: number }>) =>
    [...m.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, n)
      .map((e) => ({ name: e.name, where: e.where, ms: Math.round(e.us / 1000), pct: busy ? Math.round((e.us / busy) * 1000) / 10 : 0 }));
  return { busyMs: Math.round(busy / 1000), self: top(self), inclusive: top(inclusive) };
}

function add(
  m: Map<string, { name: string; where: string; us: number }>,
  l: { key: string; name: string; where: string },
  us: number,
): void {
  const e = m.get(l.key);
  if (e) e.us += us;
  else m.set(l.key, { name: l.name, where: l.where, us });
}

const bundles = new Map<string, { line: number; file: string }[]>();

/**
 * A function of a bundle (dist/*.mjs, made by bin/bundle.js; or the dist/orchard.mjs of
 * another revision's tree, --baseline-orchard): the source file it came from, found by
 * the `// src/....ts` line esbuild writes before each module.
 */
function bundledSource(url: string, lineNumber: number): string | undefined {
  if (!url.startsWith("file://") || !url.endsWith(".mjs")) return undefined;
  if (!shorten(url).startsWith("dist/") && !url.endsWith("/dist/orchard.mjs")) return undefined;
  let index = bundles.get(url);
  if (!index) {
    index = [];
    try {
      const lines = fs.readFileSync(fileURLToPath(url), "utf8").split("\n");
      lines.forEach((text, line) => {
        const m = /^\/\/ ((?:src|bench)\/\S+\.ts)$/.exec(text);
        if (m) index!.push({ line, file: m[1]! });
      });
    } catch {
      // The bundle was rebuilt or removed since: the bundle's name is all there is.
    }
    bundles.set(url, index);
  }
  let found: string | undefined;
  for (const m of index) {
    if (m.line > lineNumber) break;
    found = m.file;
  }
  return found;
}

function shorten(url: string): string {
  let p = url.startsWith("file://") ? fileURLToPath(url) : url;
  if (p.startsWith(ROOT + path.sep)) p = path.relative(ROOT, p);
  return p.replace(/^node_modules\//, "nm/");
}

/** Two columns of text: by self time, and src/ functions by inclusive time. */
export function profileTable(self: TopFunction[], inclusive: TopFunction[]): string {
  const cell = (f: TopFunction | undefined) => (f ? `${f.pct.toFixed(1).padStart(5)}% ${`${f.name} ${f.where}`.slice(0, 62)}` : "");
  const left = ["self time (% of busy)", ...self.map(cell)];
  const right = ["src/ inclusive time (% of busy)", ...inclusive.map(cell)];
  const width = Math.max(...left.map((s) => s.length));
  return Array.from(
    { length: Math.max(left.length, right.length) },
    (_, i) => `${(left[i] ?? "").padEnd(width)}  |  ${right[i] ?? ""}`,
  ).join("\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const [file, count] = process.argv.slice(2);
  if (!file) {
    process.stderr.write("usage: node --import tsx bench/profile-top.ts FILE.cpuprofile [N]\n");
    process.exit(2);
  }
  const s = summarizeProfile(file, Number(count ?? 25));
  process.stdout.write(`${s.busyMs} ms busy\n${profileTable(s.self, s.inclusive)}\n`);
}
