// The small rules of the device request path: whose certificate header is
// believed, the unidentified body budget, the default connection cap, and the flags.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BodyBudget } from "./body-budget.ts";
import { defaultMaxConnections } from "./connection-cap.ts";
import { trustedProxy } from "./trusted-proxy.ts";

test("no --trust-proxy: the certificate header is believed from loopback peers only", () => {
  const trusts = trustedProxy(false, "loopback");
  for (const a of ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]) assert.equal(trusts(a), true, a);
  for (const a of ["192.0.2.2", "10.0.0.1", "::ffff:10.0.0.1", "fd00::2", undefined]) assert.equal(trusts(a), false, String(a));
  // The same value read for X-Forwarded-*: nothing is believed.
  assert.equal(trustedProxy(false, "none")("127.0.0.1"), false);
});

test("--trust-proxy LIST: exactly those addresses and ranges (IPv4-mapped included), loopback no longer implied", () => {
  const trusts = trustedProxy(["10.1.2.3", "192.168.0.0/16", "fd00::/8"], "loopback");
  for (const a of ["10.1.2.3", "::ffff:10.1.2.3", "192.168.44.5", "fd00::2"]) assert.equal(trusts(a), true, a);
  for (const a of ["127.0.0.1", "::1", "10.1.2.4", "192.169.0.1"]) assert.equal(trusts(a), false, a);
});

test("--trust-proxy true: every peer", () => {
  assert.equal(trustedProxy(true, "loopback")("203.0.113.9"), true);
});

test("the body budget reserves and releases, and refuses what would pass it", () => {
  const b = new BodyBudget(100);
  assert.equal(b.take(60), true);
  assert.equal(b.take(41), false);
  assert.equal(b.inUse, 60);
  assert.equal(b.take(40), true);
  b.release(60);
  assert.equal(b.take(50), true);
  assert.equal(b.inUse, 90);
});

test("the default --max-connections leaves descriptors for the rest of the process", () => {
  assert.equal(defaultMaxConnections(1024), 896);
  assert.equal(defaultMaxConnections(65536), 58983);
  assert.equal(defaultMaxConnections(256), 128);
  assert.equal(defaultMaxConnections(64), 16);
  assert.ok(defaultMaxConnections() >= 16);
});
