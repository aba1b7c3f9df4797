import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

// Each case runs in a process of its own: the bounds are V8 flags, global to a process.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MB = 1024 * 1024;

/** Runs boundHeap() (unless `bound` is false) in a fresh node, churns garbage, and returns the largest young and old generation seen. */
function churn(bound: boolean, nodeFlags: string[] = []): { young: number; old: number } {
  const script = `
    import v8 from "node:v8";
    import { boundHeap } from ${JSON.stringify(path.join(ROOT, "src/heap-bounds.ts"))};
    if (${bound}) boundHeap(process.execArgv);
    const space = (name) => v8.getHeapSpaceStatistics().find((s) => s.space_name === name).space_size;
    // Built between turns, as a server's work is: the hold is applied by an observer of each collection, between turns.
    const live = [];
    for (let i = 0; i < 300000; i++) {
      live.push({ i, s: "live" + i });
      if (i % 20000 === 0) await new Promise((r) => setImmediate(r));
    }
    let young = 0, old = 0;
    const ring = new Array(400000);
    for (let i = 0; i < 8e6; i++) {
      ring[i % 400000] = { a: i, b: [i] };
      if (i % 20000 === 0) {
        await new Promise((r) => setImmediate(r));
        young = Math.max(young, space("new_space"));
        old = Math.max(old, space("old_space"));
      }
    }
    console.log(JSON.stringify({ young, old, live: live.length }));
  `;
  const out = execFileSync(process.execPath, [...nodeFlags, "--import", "tsx", "--input-type=module", "-e", script], {
    cwd: ROOT,
    encoding: "utf8",
  });
  return JSON.parse(out.trim().split("\n").pop()!);
}

test("the young generation stops at 8 MB per semi-space and the old one grows by at most half of what survived", () => {
  const unbounded = churn(false);
  const bounded = churn(true);
  assert.ok(unbounded.young > 20 * MB, `V8's own young generation grows past 16 MB here (${unbounded.young})`);
  assert.ok(bounded.young <= 17 * MB, `held at two 8 MB semi-spaces (${bounded.young})`);
  assert.ok(bounded.old < unbounded.old * 0.75, `old generation ${bounded.old} against V8's ${unbounded.old}`);
});

test("flags node was started with win over the bounds", () => {
  const given = churn(true, ["--max-semi-space-size=16"]);
  assert.ok(given.young > 20 * MB, `--max-semi-space-size=16 given: the young generation grows past 16 MB (${given.young})`);
});
