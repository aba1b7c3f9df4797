import { test } from "node:test";
import assert from "node:assert/strict";
import { computeHA1, computeResponse, parseDigestResponse, verifyDigestResponse } from "./index.ts";

const NONCE = "8BrAkk4GZgrG2XaDLMSSSo89VenjV5E8Se73z98RvSW7Rs";
const apple = (hash: string) =>
  parseDigestResponse(`Digest username="net1",realm="fusion.home",nonce="${NONCE}", uri="/",response="${hash}"`);
const ha1 = computeHA1("MD5", "net1", "fusion.home", "secret");
const PUT_HASH = "8569891541179e8171078ae8c3b0757a";
const GET_HASH = "83bbad99c92866a743641c39ad9ac6d2";

test("methods [PUT] accepts the PUT response and rejects the GET one", () => {
  assert.deepEqual(verifyDigestResponse({ response: apple(PUT_HASH), ha1, methods: ["PUT"] }), { ok: true, method: "PUT" });
  assert.deepEqual(verifyDigestResponse({ response: apple(GET_HASH), ha1, methods: ["PUT"] }), { ok: false });
});

test("methods [PUT, GET] accepts the GET response and reports GET", () => {
  assert.deepEqual(verifyDigestResponse({ response: apple(GET_HASH), ha1, methods: ["PUT", "GET"] }), { ok: true, method: "GET" });
  assert.deepEqual(verifyDigestResponse({ response: apple(PUT_HASH), ha1, methods: ["PUT", "GET"] }), { ok: true, method: "PUT" });
});

test("wrong password, uppercase hash in input, and uppercase ha1", () => {
  const wrong = computeHA1("MD5", "net1", "fusion.home", "Secret");
  assert.deepEqual(verifyDigestResponse({ response: apple(PUT_HASH), ha1: wrong, methods: ["PUT", "GET"] }), { ok: false });
  assert.deepEqual(verifyDigestResponse({ response: apple(PUT_HASH.toUpperCase()), ha1, methods: ["PUT"] }), { ok: true, method: "PUT" });
  assert.deepEqual(verifyDigestResponse({ response: apple(PUT_HASH), ha1: ha1.toUpperCase(), methods: ["PUT"] }), {
    ok: true,
    method: "PUT",
  });
});

test("one flipped hex digit is rejected", () => {
  const flipped = PUT_HASH.slice(0, -1) + (PUT_HASH.endsWith("a") ? "b" : "a");
  assert.deepEqual(verifyDigestResponse({ response: apple(flipped), ha1, methods: ["PUT"] }), { ok: false });
});

test("SHA-256-sess with qop round trip through the parser", () => {
  const sha = computeHA1("SHA-256", "net1", "fusion.home", "secret");
  const fields = { algorithm: "SHA-256-sess" as const, nonce: "abc", cnonce: "xyz", nc: "00000002", qop: "auth" as const, uri: "/" };
  const hash = computeResponse({ ...fields, ha1: sha, method: "PUT" });
  const parsed = parseDigestResponse(
    `Digest username="net1", realm="fusion.home", nonce="abc", uri="/", algorithm=SHA-256-sess, qop=auth, nc=00000002, cnonce="xyz", response="${hash}"`,
  );
  assert.deepEqual(verifyDigestResponse({ response: parsed, ha1: sha, methods: ["PUT"] }), { ok: true, method: "PUT" });
  // An MD5-length HA1 for a SHA-256 response is a configuration error.
  assert.throws(() => verifyDigestResponse({ response: parsed, ha1, methods: ["PUT"] }), TypeError);
});

test("hand-built response of the wrong length fails instead of throwing", () => {
  const response = { ...apple(PUT_HASH), response: PUT_HASH.slice(0, 30) };
  assert.deepEqual(verifyDigestResponse({ response, ha1, methods: ["PUT"] }), { ok: false });
});

test("bad arguments throw TypeError", () => {
  assert.throws(() => verifyDigestResponse({ response: apple(PUT_HASH), ha1, methods: [] }), TypeError);
  assert.throws(() => verifyDigestResponse({ response: apple(PUT_HASH), ha1: "not-hex", methods: ["PUT"] }), TypeError);
});
