// Compares bench results, per backend and scenario.
//
//   node --import tsx bench/compare.ts OLD NEW
//   npm run bench -- --compare OLD        (compares the run just made)
//
// OLD and NEW are each a results spec (resolveResultsSpec):
//   - a file: a per-scenario file (bench/results/2026-11-26-idle.json) or an
//     older combined one (bench/results/2026-11-25-5.json);
//   - a date prefix (bench/results/2026-11-26): all of that day's
//     per-scenario files, <prefix>-<scenario>.json; when there are none,
//     the day's last combined file (<prefix>.json, <prefix>-2.json, ...);
//   - a directory: the same for the latest day that has files in it.
// Files written before the bench knew backends (a top-level `scenarios`) are
// read as one backend, named after their parameters.storage.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

/** The medians compare() reads. */
export interface Medians {
  reqPerSec?: number;
  serverCpuPer1k?: number;
  otherCpuPct?: number;
  roundTripsPerSec?: number;
  loginsPerSec?: number;
}

export interface ResultsView {
  label: string;
  /** backend -> scenario -> medians */
  backends: Map<string, Map<string, Medians>>;
}

interface ScenarioJson {
  median?: Medians;
}

/** Reads a results file (this bench's JSON, any version). */
export function readResults(file: string): ResultsView {
  return viewResults(JSON.parse(fs.readFileSync(file, "utf8")), file);
}

/** A per-scenario file: <date>-<scenario>.json (the scenario starts with a letter; combined files end in -<n> or nothing). */
const PER_SCENARIO = /^(\d{4}-\d{2}-\d{2})-([a-z][a-z0-9-]*)\.json$/;
/** The bench's scenarios in its own order (bench/run.ts), for merging files; unknown names go last. */
const SCENARIO_ORDER = ["floor", "idle", "tokenupdate", "roundtrip", "login", "enroll", "scale", "push"];
const COMBINED = /^(\d{4}-\d{2}-\d{2})(?:-(\d+))?\.json$/;

/** The files a spec names (see the top of this file); throws when there are none. */
export function resolveResultsSpec(spec: string): string[] {
  if (fs.existsSync(spec) && fs.statSync(spec).isFile()) return [spec];
  let dir: string;
  let day: string;
  if (fs.existsSync(spec) && fs.statSync(spec).isDirectory()) {
    dir = spec;
    const days = fs.readdirSync(dir).flatMap((f) => {
      const m = PER_SCENARIO.exec(f) ?? COMBINED.exec(f);
      return m ? [m[1]!] : [];
    });
    if (days.length === 0) throw new Error(`no results files in ${spec}`);
    day = days.sort().at(-1)!;
  } else {
    dir = path.dirname(spec);
    day = path.basename(spec).replace(/\.json$/, "");
    if (!fs.existsSync(dir)) throw new Error(`no directory ${dir}`);
  }
  const names = fs.readdirSync(dir);
  // The per-scenario files of that prefix, in the bench's order (floor first: the others' floor rows come from it when files of different runs mix).
  const rank = (f: string) => {
    const i = SCENARIO_ORDER.indexOf(f.slice(day.length + 1, -".json".length));
    return i === -1 ? SCENARIO_ORDER.length : i;
  };
  const perScenario = names
    .filter((f) => f.startsWith(`${day}-`) && /^[a-z][a-z0-9-]*\.json$/.test(f.slice(day.length + 1)))
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  if (perScenario.length > 0) return perScenario.map((f) => path.join(dir, f));
  const combined = names
    .flatMap((f) => {
      if (f === `${day}.json`) return [{ f, n: 1 }];
      const m = f.startsWith(`${day}-`) ? /^(\d+)\.json$/.exec(f.slice(day.length + 1)) : null;
      return m ? [{ f, n: Number(m[1]) }] : [];
    })
    .sort((a, b) => a.n - b.n);
  if (combined.length > 0) return [path.join(dir, combined.at(-1)!.f)];
  throw new Error(`no results file ${spec}, and no ${path.join(dir, day)}-<scenario>.json or ${path.join(dir, day)}[-N].json`);
}

/** Reads what a spec names, merging several files: for each backend and scenario the first file that has it counts. */
export function readResultsSpec(spec: string): ResultsView {
  const files = resolveResultsSpec(spec);
  if (files.length === 1) return readResults(files[0]!);
  const views = files.map((f) => readResults(f));
  const backends = new Map<string, Map<string, Medians>>();
  for (const v of views) {
    for (const [backend, scenarios] of v.backends) {
      const into = backends.get(backend) ?? new Map<string, Medians>();
      backends.set(backend, into);
      for (const [name, m] of scenarios) if (!into.has(name)) into.set(name, m);
    }
  }
  const labels = [...new Set(views.map((v) => v.label.replace(/^\S+ /, "")))];
  return { label: `${spec}: ${files.map((f) => path.basename(f)).join(", ")} ${labels.join("; ")}`, backends };
}

export function viewResults(json: any, label: string): ResultsView {
  const backends = new Map<string, Map<string, Medians>>();
  const scenarios = (s: Record<string, ScenarioJson> | undefined) =>
    new Map(Object.entries(s ?? {}).flatMap(([name, v]) => (v?.median ? [[name, v.median] as [string, Medians]] : [])));
  if (json.backends && typeof json.backends === "object") {
    for (const [backend, b] of Object.entries<any>(json.backends)) backends.set(backend, scenarios(b?.scenarios));
  } else if (json.scenarios) {
    const storage = String(json.parameters?.storage ?? "");
    backends.set(/^postgres/i.test(storage) ? "postgres" : "sqlite", scenarios(json.scenarios));
  }
  const p = json.parameters ?? {};
  const when = typeof json.startedAt === "string" ? json.startedAt.slice(0, 16).replace("T", " ") : "?";
  return {
    label: `${label} (${when}, ${p.devices ?? "?"} devices, ${p.runs ?? "?"} run(s) x ${p.durationS ?? "?"} s${p.quick ? ", quick" : ""})`,
    backends,
  };
}

const fmt = (x: number | undefined, digits = 0) =>
  x === undefined || !Number.isFinite(x)
    ? "-"
    : x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

function change(before: number | undefined, now: number | undefined): string {
  if (before === undefined || now === undefined || !Number.isFinite(before) || !Number.isFinite(now) || before === 0) return "-";
  const pct = ((now - before) / before) * 100;
  return `${pct >= 0 ? "+" : ""}${pct.toFixed(1)}%`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ");
  return [line(rows[0]!), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.slice(1).map(line)].join("\n");
}

/**
 * A table per backend present in both: req/s and server CPU s/1k req before
 * and now with the change, and the machine's other load in each (a busier
 * machine lowers req/s; CPU s/1k moves much less).
 */
export function compare(before: ResultsView, now: ResultsView): string {
  const out = [`Compared with ${before.label}`, `now: ${now.label}`];
  let any = false;
  for (const [backend, scenarios] of now.backends) {
    const old = before.backends.get(backend);
    if (!old) {
      out.push("", `${backend}: not in the earlier file`);
      continue;
    }
    const rows = [
      ["scenario", "req/s before", "req/s now", "change", "CPU s/1k before", "CPU s/1k now", "change", "other % before", "other % now"],
    ];
    for (const [name, m] of scenarios) {
      const o = old.get(name);
      if (!o) {
        rows.push([name, "-", fmt(m.reqPerSec), "new", "-", fmt(m.serverCpuPer1k, 3), "new", "-", fmt(m.otherCpuPct)]);
        continue;
      }
      rows.push([
        name,
        fmt(o.reqPerSec),
        fmt(m.reqPerSec),
        change(o.reqPerSec, m.reqPerSec),
        fmt(o.serverCpuPer1k, 3),
        fmt(m.serverCpuPer1k, 3),
        change(o.serverCpuPer1k, m.serverCpuPer1k),
        fmt(o.otherCpuPct),
        fmt(m.otherCpuPct),
      ]);
    }
    any = true;
    out.push("", backend, table(rows));
  }
  if (any)
    out.push(
      "",
      "CPU s/1k is the server's CPU per 1000 requests: lower is better, and it depends far less on the machine's other load than req/s.",
    );
  return out.join("\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [a, b] = process.argv.slice(2);
  if (!a || !b) {
    process.stderr.write(
      "usage: node --import tsx bench/compare.ts OLD NEW   (each a results file, a date prefix such as bench/results/2026-11-26, or a directory)\n",
    );
    process.exit(2);
  }
  try {
    process.stdout.write(compare(readResultsSpec(a), readResultsSpec(b)) + "\n");
  } catch (err) {
    process.stderr.write(`compare: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
