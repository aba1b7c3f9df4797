import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { computeHA1, computeResponse, computeSessionHA1 } from "./index.ts";

const md5 = (s: string) => createHash("md5").update(s).digest("hex");

const RFC2617 = {
  username: "Mufasa",
  realm: "testrealm@host.com",
  nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
  uri: "/dir/index.html",
  cnonce: "0a4f113b",
  nc: "00000001",
};

test("RFC 2617 §3.5 vector (qop=auth)", () => {
  const ha1 = computeHA1("MD5", RFC2617.username, RFC2617.realm, "Circle Of Life");
  const response = computeResponse({ ...RFC2617, ha1, algorithm: "MD5", qop: "auth", method: "GET" });
  assert.equal(response, "6629fae49393a05397450978507c4ef1");
});

test("RFC 2069 style vector (no qop)", () => {
  const ha1 = computeHA1("MD5", RFC2617.username, RFC2617.realm, "CircleOfLife");
  const response = computeResponse({ ha1, algorithm: "MD5", nonce: RFC2617.nonce, uri: RFC2617.uri, method: "GET" });
  assert.equal(response, "1949323746fe6a43ef61f9606e7febea");
});

test('Apple example parameters, password "secret": PUT and GET differ', () => {
  const ha1 = computeHA1("MD5", "net1", "fusion.home", "secret");
  const base = { ha1, algorithm: "MD5" as const, nonce: "8BrAkk4GZgrG2XaDLMSSSo89VenjV5E8Se73z98RvSW7Rs", uri: "/" };
  assert.equal(computeResponse({ ...base, method: "PUT" }), "8569891541179e8171078ae8c3b0757a");
  assert.equal(computeResponse({ ...base, method: "GET" }), "83bbad99c92866a743641c39ad9ac6d2");
});

const RFC7616 = {
  nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
  cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
  nc: "00000001",
  qop: "auth" as const,
  method: "GET",
  uri: "/dir/index.html",
};

test("RFC 7616 §3.9.1 SHA-256 and MD5 vectors", () => {
  const sha = computeHA1("SHA-256", "Mufasa", "http-auth@example.org", "Circle of Life");
  assert.equal(sha.length, 64);
  assert.equal(
    computeResponse({ ...RFC7616, ha1: sha, algorithm: "SHA-256" }),
    "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
  );
  const md = computeHA1("MD5", "Mufasa", "http-auth@example.org", "Circle of Life");
  assert.equal(computeResponse({ ...RFC7616, ha1: md, algorithm: "MD5" }), "8ca523f5e9506fed4657c9700eebdbec");
});

test("MD5-sess with qop: library vs hand-rolled hashes vs fixed value", () => {
  const ha1 = computeHA1("MD5", RFC2617.username, RFC2617.realm, "Circle Of Life");
  const got = computeResponse({ ...RFC2617, ha1, algorithm: "MD5-sess", qop: "auth", method: "GET" });

  // Independent derivation straight from RFC 2617 §3.2.2.2 (hex HA1, errata 1649).
  const innerHa1 = md5(`${RFC2617.username}:${RFC2617.realm}:Circle Of Life`);
  const sessHa1 = md5(`${innerHa1}:${RFC2617.nonce}:${RFC2617.cnonce}`);
  const ha2 = md5(`GET:${RFC2617.uri}`);
  const expected = md5(`${sessHa1}:${RFC2617.nonce}:${RFC2617.nc}:${RFC2617.cnonce}:auth:${ha2}`);
  assert.equal(got, expected);
  // Also computed separately with Python hashlib.
  assert.equal(got, "8e3825c57e897f5a0dec6c2d4e5059d0");
  assert.equal(computeSessionHA1("MD5", ha1, RFC2617.nonce, RFC2617.cnonce), sessHa1);
  // And it must differ from plain MD5 on the same inputs.
  assert.notEqual(got, computeResponse({ ...RFC2617, ha1, algorithm: "MD5", qop: "auth", method: "GET" }));
});

test("SHA-256-sess matches a separately computed value", () => {
  const ha1 = computeHA1("SHA-256", "Mufasa", "http-auth@example.org", "Circle of Life");
  assert.equal(
    computeResponse({ ...RFC7616, ha1, algorithm: "SHA-256-sess" }),
    "2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7",
  );
});

test("uppercase HA1 gives the same response as lowercase", () => {
  const ha1 = computeHA1("MD5", "net1", "fusion.home", "secret");
  const base = { algorithm: "MD5" as const, nonce: "n", uri: "/", method: "PUT" };
  assert.equal(computeResponse({ ...base, ha1: ha1.toUpperCase() }), computeResponse({ ...base, ha1 }));
});

test("programmer errors throw TypeError", () => {
  const ha1 = computeHA1("MD5", "u", "r", "p");
  assert.throws(() => computeHA1("MD5-sess" as never, "u", "r", "p"), TypeError);
  assert.throws(() => computeResponse({ ha1, algorithm: "MD5-sess", nonce: "n", uri: "/", method: "PUT" }), TypeError);
  assert.throws(() => computeResponse({ ha1, algorithm: "MD5", nonce: "n", uri: "/", method: "PUT", qop: "auth" }), TypeError);
});
