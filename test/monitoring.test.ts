// docs/monitoring.md and docs/grafana/orchard.json name only metrics Orchard exports,
// and the metrics table names every metric Orchard exports.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { startTestServer } from "./support/server.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const HISTOGRAM_SERIES = /_(bucket|count|sum)$/;

/** The metric names a text mentions, series suffixes folded to the histogram's name. */
function mentioned(text: string, exported: Set<string>): Set<string> {
  const names = new Set<string>();
  for (const [name] of text.matchAll(/\borchard_[a-z0-9_]+/g)) {
    if (name.endsWith("_")) continue; // a prefix such as orchard_process_*
    names.add(!exported.has(name) && HISTOGRAM_SERIES.test(name) ? name.replace(HISTOGRAM_SERIES, "") : name);
  }
  return names;
}

test("the dashboard and the docs query only metrics Orchard exports; the table names all of Orchard's own", async () => {
  const server = await startTestServer();
  try {
    const r = await server.api("GET", "/v1/metrics");
    assert.equal(r.status, 200);
    const exported = new Set([...r.text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    assert.ok(exported.size > 10, r.text);
    // No software lookup feed read yet: its age has no sample (a 0 would read as a fresh feed).
    assert.ok(exported.has("orchard_software_lookup_age_seconds"));
    assert.doesNotMatch(r.text, /^orchard_software_lookup_age_seconds /m);

    const dashboard = JSON.parse(fs.readFileSync(path.join(ROOT, "docs/grafana/orchard.json"), "utf8"));
    const exprs: string[] = dashboard.panels.flatMap((p: { targets?: Array<{ expr: string }> }) => (p.targets ?? []).map((t) => t.expr));
    assert.ok(exprs.length >= 5, "the dashboard has queries");
    for (const name of mentioned(exprs.join("\n"), exported)) assert.ok(exported.has(name), `dashboard queries ${name}, not exported`);

    const doc = fs.readFileSync(path.join(ROOT, "docs/monitoring.md"), "utf8");
    for (const name of mentioned(doc, exported)) assert.ok(exported.has(name), `docs/monitoring.md names ${name}, not exported`);
    const own = [...exported].filter((n) => !n.startsWith("orchard_process_") && !n.startsWith("orchard_nodejs_"));
    for (const name of own) assert.ok(doc.includes(`| \`${name}\` |`), `docs/monitoring.md's table lacks ${name}`);
  } finally {
    await server.stop();
  }
});
