import { test } from "node:test";
import assert from "node:assert/strict";
import { BoundedCache } from "./cache.ts";

test("entries expire at expiresAt", () => {
  const cache = new BoundedCache<number>(10);
  cache.set("a", 1, 1000);
  assert.equal(cache.get("a", 999), 1);
  assert.equal(cache.get("a", 1000), undefined);
  assert.equal(cache.size, 0);
});

test("the least recently used entry is evicted at the bound", () => {
  const cache = new BoundedCache<number>(2);
  cache.set("a", 1, Infinity);
  cache.set("b", 2, Infinity);
  assert.equal(cache.get("a"), 1); // a is now the most recent
  cache.set("c", 3, Infinity);
  assert.equal(cache.get("b"), undefined);
  assert.equal(cache.get("a"), 1);
  assert.equal(cache.get("c"), 3);
  assert.equal(cache.size, 2);
});
