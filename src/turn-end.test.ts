import assert from "node:assert/strict";
import { test } from "node:test";
import { atTurnEnd } from "./turn-end.ts";

const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 10));

test("tasks run at the turn's end, in the order asked, after the turn's own code", async () => {
  const order: string[] = [];
  atTurnEnd(() => order.push("first"));
  atTurnEnd(() => order.push("second"));
  order.push("the turn's code");
  await Promise.resolve();
  order.push("its promise reactions");
  await nextTurn();
  assert.deepEqual(order, ["the turn's code", "its promise reactions", "first", "second"]);
});

test("work asked for by the reactions to a task joins the same turn, not the next", async () => {
  const order: string[] = [];
  atTurnEnd(() => {
    // As SQLite's group commit: it settles transactions, whose callers then answer.
    order.push("commit");
    setImmediate(() => order.push("the next turn"));
    void Promise.resolve()
      .then(() => undefined)
      .then(() => atTurnEnd(() => order.push("answer")));
  });
  await nextTurn();
  assert.deepEqual(order, ["commit", "answer", "the next turn"]);
});

test("after a turn, new work books a new one", async () => {
  for (const round of [1, 2, 3]) {
    const done = new Promise<number>((resolve) => atTurnEnd(() => resolve(round)));
    assert.equal(await done, round);
  }
});
