import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { buildChallenge, checkNonce, mintNonce, NONCE_CLOCK_SKEW_MS, nonceIdOf } from "./index.ts";

const secret = Buffer.from("0123456789abcdef0123456789abcdef");
const udid = "23EB7CD8-5567-5E97-827F-06E4E4C456B2";
const userId = "16C0477E-EB2F-4B5E-AAFD-92B2B91C4B16";
const now = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
const ttlMs = 5 * 60_000;
const mint = () => mintNonce({ secret, udid, userId, now });
const check = (nonce: string, over: Partial<Parameters<typeof checkNonce>[0]> = {}) =>
  checkNonce({ secret, nonce, udid, userId, now, ttlMs, ...over });

test("round trip, shape and uniqueness", () => {
  const nonce = mint();
  assert.match(nonce, /^[A-Za-z0-9_-]+$/);
  assert.ok(nonce.length <= 70, `length ${nonce.length}`);
  const result = check(nonce);
  assert.equal(result.ok, true);
  if (!result.ok) return;
  assert.equal(result.issuedAt, Math.floor(now / 1000) * 1000);
  assert.match(result.nonceId, /^[0-9a-f]{32}$/);
  assert.equal(nonceIdOf(nonce), result.nonceId, "known at minting, as the challenge records it");
  assert.throws(() => nonceIdOf("not a nonce"), TypeError);
  // Same nonce -> same id; fresh nonce -> different nonce and id.
  assert.deepEqual(check(nonce), result);
  const other = mint();
  assert.notEqual(other, nonce);
  const otherResult = check(other);
  assert.ok(otherResult.ok && otherResult.nonceId !== result.nonceId);
  // Usable in a challenge as-is.
  assert.doesNotThrow(() => buildChallenge({ nonce, realm: "fusion.home" }));
});

test("wrong udid, userId or secret -> foreign", () => {
  const nonce = mint();
  assert.deepEqual(check(nonce, { udid: udid.toLowerCase() }), { ok: false, reason: "foreign" });
  assert.deepEqual(check(nonce, { userId: "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF" }), { ok: false, reason: "foreign" });
  assert.deepEqual(check(nonce, { secret: randomBytes(32) }), { ok: false, reason: "foreign" });
  // Moving bytes between udid and userId must not collide.
  const a = mintNonce({ secret, udid: "ab", userId: "c", now });
  assert.deepEqual(checkNonce({ secret, nonce: a, udid: "a", userId: "bc", now, ttlMs }), { ok: false, reason: "foreign" });
});

test("expiry and future, with clock skew", () => {
  const nonce = mint();
  const issued = Math.floor(now / 1000) * 1000;
  assert.equal(check(nonce, { now: issued + ttlMs }).ok, true);
  assert.deepEqual(check(nonce, { now: issued + ttlMs + 1 }), { ok: false, reason: "expired" });
  assert.equal(check(nonce, { now: issued - NONCE_CLOCK_SKEW_MS }).ok, true);
  assert.deepEqual(check(nonce, { now: issued - NONCE_CLOCK_SKEW_MS - 1 }), { ok: false, reason: "future" });
  assert.deepEqual(check(nonce, { now: issued - 1000, clockSkewMs: 0 }), { ok: false, reason: "future" });
});

test("every single-character tamper is rejected", () => {
  const nonce = mint();
  for (let i = 0; i < nonce.length; i++) {
    const c = nonce[i] === "A" ? "B" : "A";
    const tampered = nonce.slice(0, i) + c + nonce.slice(i + 1);
    const result = check(tampered);
    assert.equal(result.ok, false, `position ${i}`);
    // Position 0-1 carry the version byte; elsewhere it is a MAC failure.
    if (i >= 2) assert.deepEqual(result, { ok: false, reason: "foreign" }, `position ${i}`);
  }
});

test("a nonce with a rewritten timestamp is foreign, not fresh", () => {
  const nonce = mint();
  const raw = Buffer.from(nonce, "base64url");
  raw.writeUInt32BE(raw.readUInt32BE(1) + 3600, 1);
  assert.deepEqual(check(raw.toString("base64url")), { ok: false, reason: "foreign" });
});

test("truncated, padded, wrong version and garbage -> malformed, never throws", () => {
  const nonce = mint();
  assert.deepEqual(check(nonce.slice(0, -1)), { ok: false, reason: "malformed" });
  assert.deepEqual(check(nonce.slice(0, 20)), { ok: false, reason: "malformed" });
  assert.deepEqual(check(nonce + "A"), { ok: false, reason: "malformed" });
  assert.deepEqual(check(nonce + "="), { ok: false, reason: "malformed" });
  const raw = Buffer.from(nonce, "base64url");
  raw[0] = 2;
  assert.deepEqual(check(raw.toString("base64url")), { ok: false, reason: "malformed" });
  for (const junk of ["", " ", '"', "x".repeat(10_000), nonce.replace(/./, "+"), nonce.replace(/.$/, "="), "\u0000".repeat(44)]) {
    assert.deepEqual(check(junk), { ok: false, reason: "malformed" });
  }
  assert.deepEqual(check(undefined as never), { ok: false, reason: "malformed" });
  for (let i = 0; i < 500; i++) {
    const garbage = randomBytes(1 + (i % 60)).toString(i % 2 ? "base64url" : "latin1");
    const result = check(garbage);
    assert.equal(result.ok, false);
  }
});

test("server-side misuse throws TypeError", () => {
  assert.throws(() => mintNonce({ secret: Buffer.alloc(8), udid, userId, now }), TypeError);
  assert.throws(() => mintNonce({ secret, udid, userId, now: NaN }), TypeError);
  assert.throws(() => checkNonce({ secret, nonce: mint(), udid, userId, now, ttlMs: 0 }), TypeError);
});
