import { test } from "node:test";
import assert from "node:assert/strict";
import { buildChallenge, parseDigestChallenge } from "./index.ts";

const NONCE = "8BrAkk4GZgrG2XaDLMSSSo89VenjV5E8Se73z98RvSW7Rs";

test("default output is exactly Apple's shape", () => {
  assert.equal(
    buildChallenge({ nonce: NONCE, realm: "fusion.home" }),
    'Digest nonce="8BrAkk4GZgrG2XaDLMSSSo89VenjV5E8Se73z98RvSW7Rs",realm="fusion.home"',
  );
});

test("qop and algorithm variants", () => {
  assert.equal(buildChallenge({ nonce: "n1", realm: "r", qop: true }), 'Digest nonce="n1",realm="r",qop="auth"');
  assert.equal(buildChallenge({ nonce: "n1", realm: "r", algorithm: "MD5" }), 'Digest nonce="n1",realm="r",algorithm=MD5');
  assert.equal(
    buildChallenge({ nonce: "n1", realm: "r", qop: true, algorithm: "MD5-sess" }),
    'Digest nonce="n1",realm="r",qop="auth",algorithm=MD5-sess',
  );
  assert.equal(buildChallenge({ nonce: "n1", realm: "r", algorithm: "SHA-256" }), 'Digest nonce="n1",realm="r",algorithm=SHA-256');
});

test("round trip through parseDigestChallenge", () => {
  assert.deepEqual(parseDigestChallenge(buildChallenge({ nonce: NONCE, realm: "fusion.home" })), {
    nonce: NONCE,
    realm: "fusion.home",
    algorithm: "MD5",
  });
  assert.deepEqual(parseDigestChallenge(buildChallenge({ nonce: "a-b_c", realm: "Orchard MDM", qop: true, algorithm: "SHA-256-sess" })), {
    nonce: "a-b_c",
    realm: "Orchard MDM",
    algorithm: "SHA-256-sess",
    qop: "auth",
  });
});

test("parseDigestChallenge reads qop lists, opaque and stale", () => {
  const c = parseDigestChallenge('Digest realm="r", qop="auth-int, auth", nonce="n", opaque="o", stale=TRUE');
  assert.deepEqual(c, { realm: "r", nonce: "n", algorithm: "MD5", qop: "auth", opaque: "o", stale: true });
  assert.throws(() => parseDigestChallenge('Digest realm="r", nonce="n", qop="auth-int"'), { reason: "bad-qop" });
  assert.throws(() => parseDigestChallenge('Digest realm="r"'), { reason: "missing-param" });
});

test("unsafe realm or nonce is a TypeError", () => {
  for (const bad of ['a"b', "a\\b", "a\nb", "a\u0000b", "a\u007fb", ""]) {
    assert.throws(() => buildChallenge({ nonce: bad, realm: "r" }), TypeError);
    assert.throws(() => buildChallenge({ nonce: "n", realm: bad }), TypeError);
  }
  assert.throws(() => buildChallenge({ nonce: "n", realm: "r", algorithm: "SHA1" as never }), TypeError);
  // -sess without qop could never be answered.
  assert.throws(() => buildChallenge({ nonce: "n", realm: "r", algorithm: "MD5-sess" }), TypeError);
});
