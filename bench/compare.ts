// Compares two bench results files, per backend and scenario.
//
//   node --import tsx bench/compare.ts OLD.json NEW.json
//   npm run bench -- --compare OLD.json        (compares the run just made)
//
// Files written before the bench knew backends (a top-level `scenarios`) are
// read as one backend, named after their parameters.storage.
import fs from "node:fs";
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
  return { label: `${label} (${when}, ${p.devices ?? "?"} devices, ${p.runs ?? "?"} run(s) x ${p.durationS ?? "?"} s${p.quick ? ", quick" : ""})`, backends };
}

const fmt = (x: number | undefined, digits = 0) =>
  x === undefined || !Number.isFinite(x) ? "-" : x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

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
    const rows = [["scenario", "req/s before", "req/s now", "change", "CPU s/1k before", "CPU s/1k now", "change", "other % before", "other % now"]];
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
  if (any) out.push("", "CPU s/1k is the server's CPU per 1000 requests: lower is better, and it depends far less on the machine's other load than req/s.");
  return out.join("\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [a, b] = process.argv.slice(2);
  if (!a || !b) {
    process.stderr.write("usage: node --import tsx bench/compare.ts OLD.json NEW.json\n");
    process.exit(2);
  }
  process.stdout.write(compare(readResults(a), readResults(b)) + "\n");
}
