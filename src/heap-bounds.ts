import diagnostics from "node:diagnostics_channel";
import { PerformanceObserver } from "node:perf_hooks";
import v8 from "node:v8";
import type { Worker } from "node:worker_threads";

/**
 * V8's heap sized for a long-running server rather than for V8's defaults,
 * which let an idle-polling Orchard reach 147 MB of RSS of which 85 MB was
 * young generation and garbage waiting in the old one (BENCHMARKS.md,
 * 2026-12-04 third session):
 *
 * - The young generation stops growing at 8 MB per semi-space (V8's default
 *   limit is 16). `--max-semi-space-size` is read when an isolate starts, so
 *   for this one Orchard steers V8's growth factor instead, which V8 reads
 *   at each scavenge: 2 (V8's own) while one more doubling stays within 8 MB,
 *   1 (no growth) from there. It is set from an observer of collections, one
 *   or two turns after each: a long synchronous stretch of allocations can
 *   still take the young generation to V8's own 16 MB before it is seen.
 *   Worker threads started later read `--max-semi-space-size`, set here too.
 * - The old generation is collected when it has grown 50% past what survived
 *   the last full collection (V8 lets it reach up to four times that).
 *
 * Flags node was started with win: `node --max-semi-space-size=16
 * bin/orchard.js serve` (also in NODE_OPTIONS) keeps V8's young generation,
 * `node --heap-growing-percent=N` its old-generation growth (node refuses
 * that one in NODE_OPTIONS).
 */
const SEMI_SPACE_MB = 8;
const OLD_GROWING_PERCENT = 50;
const WORKER_SEMI_SPACE_MB = 4;
const MB = 1024 * 1024;

let bounded = false;

export function boundHeap(nodeFlags: readonly string[] = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)]): void {
  if (bounded) return;
  bounded = true;
  const given = (flag: string) => nodeFlags.some((f) => f.replace(/_/g, "-").startsWith(flag));
  if (!given("--heap-growing-percent")) v8.setFlagsFromString(`--heap-growing-percent=${OLD_GROWING_PERCENT}`);
  if (given("--max-semi-space-size") || given("--semi-space-growth-factor")) return;
  // Isolates started from now on (the webhook sender's thread) read these at
  // their start: at most 8 MB semi-spaces, and 4 MB from the start, because
  // the growth factor this process holds at 1 would keep them at V8's 1 MB.
  v8.setFlagsFromString(`--max-semi-space-size=${SEMI_SPACE_MB}`);
  v8.setFlagsFromString(`--min-semi-space-size=${WORKER_SEMI_SPACE_MB}`);
  holdYoungGeneration();
  new PerformanceObserver(holdYoungGeneration).observe({ entryTypes: ["gc"] });
  // V8 puts the growth factor, a flag of the whole process, back to 2 for
  // every new isolate: hold it again once any worker thread is up. A scavenge
  // of this thread between that reset and the worker's online can still
  // double the young generation once (seen under load: 16 -> 32 MB; setting
  // the factor every millisecond of the start did not prevent it).
  diagnostics.subscribe("worker_threads", (message) => (message as { worker: Worker }).worker.once("online", holdYoungGeneration));
}

/** The growth factor for a young generation whose semi-space holds `semiSpace` bytes: 2 while doubling stays within the limit. */
export function youngGrowthFactor(semiSpace: number, limit = SEMI_SPACE_MB * MB): 1 | 2 {
  return semiSpace * 2 <= limit ? 2 : 1;
}

function holdYoungGeneration(): void {
  const young = v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
  if (!young) return; // a V8 without that space: nothing to hold
  // One semi-space's capacity. Not space_size: that counts committed memory,
  // which halves when V8 gives back an idle young generation's from-space.
  const semiSpace = young.space_used_size + young.space_available_size;
  // Set at every collection, not only on a change: a new isolate may have reset it.
  v8.setFlagsFromString(`--semi-space-growth-factor=${youngGrowthFactor(semiSpace)}`);
}
