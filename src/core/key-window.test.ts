import assert from "node:assert/strict";
import { test } from "node:test";
import { KeyWindow } from "./key-window.ts";

test("the first `limit` of a window pass, the rest are counted, and the next window says how many", () => {
  const w = new KeyWindow(2, 1000);
  assert.deepEqual(w.take("mac", 0), { passes: true, heldBack: 0, heldBackBefore: 0 });
  assert.deepEqual(w.take("mac", 10), { passes: true, heldBack: 0 });
  assert.deepEqual(w.take("mac", 20), { passes: false, heldBack: 1 });
  assert.deepEqual(w.take("mac", 999), { passes: false, heldBack: 2 });
  assert.deepEqual(w.take("other", 999), { passes: true, heldBack: 0, heldBackBefore: 0 }, "each key has its own window");
  assert.deepEqual(w.take("mac", 1000), { passes: true, heldBack: 0, heldBackBefore: 2 });
  assert.deepEqual(w.take("mac", 1001), { passes: true, heldBack: 0 });
  assert.equal(w.take("mac", 1002).passes, false);
});

test("past maxKeys the key whose window began first is forgotten, the others kept", () => {
  const w = new KeyWindow(1, 1000, 2);
  w.take("a", 0);
  assert.equal(w.take("a", 1).passes, false);
  w.take("b", 2);
  w.take("c", 3); // the third key: a, the oldest window, is forgotten
  assert.equal(w.take("b", 4).passes, false, "b kept its window");
  assert.equal(w.take("a", 5).passes, true, "a starts over");
});
