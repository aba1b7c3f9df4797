// The small rules of the device request path: whose certificate header is
// believed, the unidentified body budget, the default connection cap, and the flags.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BodyBudget, signerShare } from "./body-budget.ts";
import { defaultMaxConnections, refusedAllowance } from "./connection-cap.ts";
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
  assert.equal(b.take(60, "a"), true);
  assert.equal(b.take(41, "b"), false);
  assert.equal(b.inUse, 60);
  assert.equal(b.take(40, "b"), true);
  b.release(60, "a");
  assert.equal(b.take(50, "c"), true);
  assert.equal(b.inUse, 90);
});

test("one signer certificate holds at most its share of the budget; the others still fit", () => {
  const b = new BodyBudget(100, 30);
  assert.equal(b.take(30, "copied-cert"), true);
  assert.equal(b.take(1, "copied-cert"), false);
  assert.equal(b.heldBy("copied-cert"), 30);
  assert.equal(b.take(30, "device-1"), true);
  assert.equal(b.take(30, "device-2"), true);
  b.release(30, "copied-cert");
  assert.equal(b.heldBy("copied-cert"), 0);
  assert.equal(b.take(10, "copied-cert"), true);
  assert.equal(b.inUse, 70);
});

test("a signer's share: an eighth of the budget, at least the largest body twice, at most the budget", () => {
  const MB = 1024 * 1024;
  assert.equal(signerShare(64 * MB, 16 * MB), 32 * MB); // the defaults: one largest report fits
  assert.equal(signerShare(64 * MB, 1 * MB), 8 * MB);
  assert.equal(signerShare(8 * MB, 16 * MB), 8 * MB);
});

test("the default --max-connections leaves descriptors for the rest of the process", () => {
  assert.equal(defaultMaxConnections(1024), 896);
  assert.equal(defaultMaxConnections(65536), 58983);
  assert.equal(defaultMaxConnections(256), 128);
  assert.equal(defaultMaxConnections(64), 16);
  assert.ok(defaultMaxConnections() >= 16);
});

test("refused-but-open connections get a quarter of the headroom left under the descriptor limit", () => {
  assert.equal(refusedAllowance(defaultMaxConnections(256), 256), 32);
  assert.equal(refusedAllowance(defaultMaxConnections(1024), 1024), 32);
  assert.equal(refusedAllowance(defaultMaxConnections(65536), 65536), 1638);
  assert.equal(refusedAllowance(100, undefined), 32);
  // A cap at or above the limit leaves no room: past the cap connections are closed at once.
  assert.equal(refusedAllowance(1000, 128), 0);
});
