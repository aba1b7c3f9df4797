// The status-values prefix matcher (KMFDDM's LIKE-like prefix) against a
// reference regular expression, and on a pattern that would make a
// backtracking regular expression run for hours.
import assert from "node:assert/strict";
import { test } from "node:test";
import { prefixMatcher } from "./ddm-routes.ts";

function reference(prefix: string): (path: string) => boolean {
  const pattern = prefix
    .split("")
    .map((c) => (c === "%" ? ".*" : c === "_" ? "." : c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  const re = new RegExp(`^${pattern}`, "s");
  return (path) => re.test(path);
}

test("prefix: the same answers as SQL LIKE's prefix reading, on every small pattern over a small alphabet", () => {
  const alphabet = ["a", "b", ".", "%", "_"];
  const patterns: string[] = [""];
  for (let len = 1; len <= 4; len++) {
    for (const p of patterns.filter((x) => x.length === len - 1)) for (const c of alphabet) patterns.push(p + c);
  }
  const paths = ["", "a", "b", "ab", "ba", "a.b", "aab", "abab", "b.a.b", "aaaa", ".", "ab.ba"];
  for (const p of patterns) {
    const mine = prefixMatcher(p);
    const ref = reference(p);
    for (const path of paths) assert.equal(mine(path), ref(path), `prefix ${JSON.stringify(p)} on ${JSON.stringify(path)}`);
  }
  assert.equal(prefixMatcher(undefined)("anything"), true);
});

test("prefix: many % before a missing character answer at once (a backtracking regex would not)", () => {
  const path = `.StatusItems.${"a".repeat(400)}`;
  assert.equal(prefixMatcher(`.StatusItems.${"%a".repeat(40)}%b`)(path), false);
  assert.equal(prefixMatcher(`.StatusItems.${"%a".repeat(40)}`)(path), true);
  assert.equal(prefixMatcher(`${"%%%_".repeat(40)}%b`)(path), false);
});
