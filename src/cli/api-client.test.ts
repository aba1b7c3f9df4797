import assert from "node:assert/strict";
import { test } from "node:test";
import { fetchReason, splitWarnings } from "./api-client.ts";

test("orchard-warning headers split into their warnings, a quoted name with an escaped quote kept whole", () => {
  assert.deepEqual(splitWarnings(null), []);
  assert.deepEqual(splitWarnings('Payload.X: unknown key, Type "com.apple.x": newer than the schema'), [
    "Payload.X: unknown key",
    'Type "com.apple.x": newer than the schema',
  ]);
  // The words the server says (http/ddm-routes.ts): an empty set, then ids that are no enrollment.
  assert.deepEqual(splitWarnings('set "s": holds no declarations; a device gets nothing from it, enrollment "X": no such enrollment'), [
    'set "s": holds no declarations; a device gets nothing from it',
    'enrollment "X": no such enrollment',
  ]);
  // A set name holding a quote is JSON-escaped in its warning (review: it was not split from the next).
  assert.deepEqual(splitWarnings('settings.Foo: unknown key, set "a\\"b": holds no declarations'), [
    "settings.Foo: unknown key",
    'set "a\\"b": holds no declarations',
  ]);
});

test("a server whose certificate this machine does not trust: the reason says how to trust its CA", () => {
  const tls = new TypeError("fetch failed", {
    cause: Object.assign(new Error("self-signed certificate"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" }),
  });
  assert.match(fetchReason(tls), /^DEPTH_ZERO_SELF_SIGNED_CERT: .*NODE_EXTRA_CA_CERTS=ca\.pem$/);
  const refused = new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }) });
  assert.equal(fetchReason(refused), "ECONNREFUSED");
});
