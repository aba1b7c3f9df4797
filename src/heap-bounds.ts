import { PerformanceObserver } from "node:perf_hooks";
import v8 from "node:v8";

/**
 * V8's heap sized for a long-running server rather than for V8's defaults,
 * which let an idle-polling Orchard reach 145 MB of RSS of which 90 MB was
 * young generation and garbage waiting in the old one (BENCHMARKS.md,
 * 2026-12-04 third session):
 *
 * - The young generation stops growing at 8 MB per semi-space (V8's default
 *   limit is 16). `--max-semi-space-size` is read only when node starts, so
 *   `orchard serve` holds the young generation there through the growth
 *   factor, which V8 reads at each scavenge: 1 (no growth) once it is at the
 *   limit, 2 (V8's own) while it is below, e.g. after V8 shrank it when idle.
 *   The factor is set from an observer of collections, which runs between
 *   turns: a long synchronous stretch of allocations can still take the young
 *   generation to V8's own 16 MB before the hold is seen.
 * - The old generation is collected when it has grown 50% past what survived
 *   the last full collection (V8 lets it reach up to four times that).
 *
 * Flags the process was started with win: `node --max-semi-space-size=16
 * bin/orchard.js serve` (or NODE_OPTIONS) keeps V8's young generation as
 * given, `--heap-growing-percent=N` its own old-generation growth.
 */
const SEMI_SPACE_MB = 8;
const OLD_GROWING_PERCENT = 50;

let bounded = false;

export function boundHeap(nodeFlags: readonly string[] = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)]): void {
  if (bounded) return;
  bounded = true;
  const given = (flag: string) => nodeFlags.some((f) => f.replace(/_/g, "-").startsWith(flag));
  if (!given("--heap-growing-percent")) v8.setFlagsFromString(`--heap-growing-percent=${OLD_GROWING_PERCENT}`);
  if (!given("--max-semi-space-size") && !given("--semi-space-growth-factor")) holdYoungGeneration(SEMI_SPACE_MB * 2 * 1024 * 1024);
}

/** Keeps the young generation (two semi-spaces) at most `limit` bytes: no growth from there on. */
function holdYoungGeneration(limit: number): void {
  let held = false;
  const check = () => {
    const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
    if (!young) return; // a V8 without that space: nothing to hold
    // V8 reports a little over the two semi-spaces (16.8 MB for 2 x 8 MB).
    const atLimit = young.space_size >= limit;
    if (atLimit === held) return;
    held = atLimit;
    v8.setFlagsFromString(`--semi-space-growth-factor=${atLimit ? 1 : 2}`);
  };
  check();
  new PerformanceObserver(check).observe({ entryTypes: ["gc"] });
}
