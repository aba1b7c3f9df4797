// The store's outage errors, as the HTTP layer answers them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { StoreUnavailable, storeError } from "../store/unavailable.ts";
import { statusOf } from "./errors.ts";

const coded = (code: string, message = "x") => Object.assign(new Error(message), { code });

test("an outage answers 503 with Retry-After; other errors keep their status", () => {
  const outage = storeError(coded("57P01"));
  assert.ok(outage instanceof StoreUnavailable);
  assert.equal(storeError(outage), outage, "classified once");
  assert.deepEqual(statusOf(outage), { status: 503, reason: "store unavailable", code: "store_unavailable", retryAfterSeconds: 5 });
  assert.deepEqual(statusOf(coded("23505")), { status: 500, reason: "internal error", code: "internal_error" });
  // Only what the store rethrew is classified: the same message from elsewhere is a 500.
  assert.deepEqual(statusOf(new Error("Connection terminated")), { status: 500, reason: "internal error", code: "internal_error" });
});
