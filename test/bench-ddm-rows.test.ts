// The ddm bench's rows: all four kinds by default, only those asked for with --ddm-rows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ddmRows } from "../bench/ddm.ts";

test("ddm rows: tokens, items and sync per size, change at the largest size up to 100k; --ddm-rows keeps only the kinds asked for", () => {
  const name = (rows: Array<{ ddm: string; size: number }>) => rows.map((r) => `${r.ddm}-${r.size}`);
  assert.deepEqual(name(ddmRows([1000, 100_000])), [
    "tokens-1000",
    "items-1000",
    "sync-1000",
    "tokens-100000",
    "items-100000",
    "sync-100000",
    "change-100000",
  ]);
  assert.deepEqual(name(ddmRows([1000, 100_000], ["sync"])), ["sync-1000", "sync-100000"]);
  assert.deepEqual(name(ddmRows([1000, 1_000_000], ["change", "tokens"])), ["tokens-1000", "tokens-1000000", "change-1000"]);
});
