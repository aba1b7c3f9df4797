import assert from "node:assert/strict";
import { test } from "node:test";
import { splitWarnings } from "./api-client.ts";

test("orchard-warning headers split into their warnings, a quoted name with an escaped quote kept whole", () => {
  assert.deepEqual(splitWarnings(null), []);
  assert.deepEqual(splitWarnings('Payload.X: unknown key, Type "com.apple.x": newer than the schema'), [
    "Payload.X: unknown key",
    'Type "com.apple.x": newer than the schema',
  ]);
  // A set name holding a quote is JSON-escaped in its warning (review: it was not split from the next).
  assert.deepEqual(splitWarnings('settings.Foo: unknown key, set "a\\"b": holds no declarations'), [
    "settings.Foo: unknown key",
    'set "a\\"b": holds no declarations',
  ]);
});
