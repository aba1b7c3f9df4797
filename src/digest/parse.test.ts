import { test } from "node:test";
import assert from "node:assert/strict";
import { DigestError, MAX_DIGEST_LENGTH, parseDigestResponse, type DigestErrorReason } from "./index.ts";

const NONCE = "8BrAkk4GZgrG2XaDLMSSSo89VenjV5E8Se73z98RvSW7Rs";
const HASH = "84db40bbaf5e0d49cabb0ef7d8cac369";
const APPLE = `Digest username="net1",realm="fusion.home",nonce="${NONCE}", uri="/",response="${HASH}"`;
const APPLE_PARSED = { username: "net1", realm: "fusion.home", nonce: NONCE, uri: "/", response: HASH, algorithm: "MD5" };

/** Asserts a DigestError with this reason whose message leaks none of `secrets`. */
function rejects(input: string, reason: DigestErrorReason, secrets: string[] = [HASH]) {
  let caught: unknown;
  try {
    parseDigestResponse(input);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof DigestError, `expected DigestError for ${JSON.stringify(input.slice(0, 80))}`);
  assert.equal(caught.reason, reason, `reason for ${JSON.stringify(input.slice(0, 80))}: ${caught.message}`);
  for (const s of secrets) assert.ok(!caught.message.includes(s), `message leaks a value: ${caught.message}`);
}

test("Apple's exact example string", () => {
  assert.deepEqual(parseDigestResponse(APPLE), APPLE_PARSED);
});

test("reordered parameters, case-insensitive scheme and names", () => {
  const s = `digest RESPONSE="${HASH}", uri="/", Nonce="${NONCE}", realm="fusion.home", username="net1"`;
  assert.deepEqual(parseDigestResponse(s), APPLE_PARSED);
  assert.deepEqual(parseDigestResponse(APPLE.replace("Digest", "DIGEST")), APPLE_PARSED);
});

test("whitespace everywhere, empty list elements, bare values", () => {
  const s = `  Digest\t ,username = "net1" ,\trealm= "fusion.home",, nonce =${NONCE} , uri = / ,response=${HASH.toUpperCase()} ,  `;
  assert.deepEqual(parseDigestResponse(s), APPLE_PARSED);
});

test("quoted-string escapes in username", () => {
  const r = parseDigestResponse(`Digest username="ne\\"t\\\\1\\x",realm="fusion.home",nonce="${NONCE}",uri="/",response="${HASH}"`);
  assert.equal(r.username, 'ne"t\\1x');
  const comma = parseDigestResponse(`Digest username="a, b=c",realm="r",nonce="n",uri="/",response="${HASH}"`);
  assert.equal(comma.username, "a, b=c");
});

test("qop=auth with nc/cnonce, algorithms, opaque; unknown params ignored", () => {
  const s = `Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=0000000A, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41", algorithm=md5-SESS, foo="bar", charset=UTF-8`;
  assert.deepEqual(parseDigestResponse(s), {
    username: "Mufasa",
    realm: "testrealm@host.com",
    nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
    uri: "/dir/index.html",
    response: "6629fae49393a05397450978507c4ef1",
    algorithm: "MD5-sess",
    qop: "auth",
    nc: "0000000a",
    cnonce: "0a4f113b",
    opaque: "5ccc069c403ebaf9f0171e9517f40e41",
  });
  const sha = "a".repeat(64);
  assert.equal(
    parseDigestResponse(`Digest username="u",realm="r",nonce="n",uri="/",algorithm="sha-256",response="${sha}"`).algorithm,
    "SHA-256",
  );
});

test("junk strings", () => {
  rejects("", "bad-scheme");
  rejects("   ", "bad-scheme");
  rejects("Basic abc", "bad-scheme");
  rejects(`Basic username="net1",realm="r",nonce="n",uri="/",response="${HASH}"`, "bad-scheme");
  rejects(`Digestusername="net1"`, "bad-scheme");
  rejects(`Digest="x"`, "bad-scheme");
  rejects("Digest", "missing-param");
  rejects(`Digest username="net1,realm="fusion.home",nonce="n",uri="/",response="${HASH}`, "malformed");
  rejects(`Digest username="net1" realm="r",nonce="n",uri="/",response="${HASH}"`, "malformed");
  rejects(`Digest username,realm="r",nonce="n",uri="/",response="${HASH}"`, "malformed");
  rejects(`Digest username=,realm="r",nonce="n",uri="/",response="${HASH}"`, "malformed");
  rejects(`Digest ="x",realm="r",nonce="n",uri="/",response="${HASH}"`, "malformed");
  rejects(`Digest username="a\u0001b",realm="r",nonce="n",uri="/",response="${HASH}"`, "malformed");
  rejects(`Digest username="a\\`, "malformed");
});

test("duplicate parameters, including different case", () => {
  rejects(`${APPLE},response="${HASH}"`, "duplicate-param");
  rejects(`${APPLE},Realm="other"`, "duplicate-param", [HASH, "other", "fusion.home"]);
  rejects(`${APPLE},x-secret-name=1,X-SECRET-NAME=2`, "duplicate-param", [HASH, "x-secret-name", "X-SECRET-NAME"]);
});

test("missing or empty required parameters", () => {
  const parts = { username: '"net1"', realm: '"fusion.home"', nonce: `"${NONCE}"`, uri: '"/"', response: `"${HASH}"` };
  for (const name of Object.keys(parts)) {
    const without = Object.entries(parts)
      .filter(([k]) => k !== name)
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    rejects(`Digest ${without}`, "missing-param");
    const empty = Object.entries(parts)
      .map(([k, v]) => `${k}=${k === name ? '""' : v}`)
      .join(",");
    rejects(`Digest ${empty}`, "missing-param");
  }
});

test("response must be hex of the algorithm length", () => {
  const base = `Digest username="net1",realm="r",nonce="n",uri="/"`;
  const nonHex = "zz" + HASH.slice(2);
  rejects(`${base},response="${nonHex}"`, "bad-response", [nonHex, HASH.slice(2)]);
  rejects(`${base},response="${HASH}0"`, "bad-response");
  rejects(`${base},response="${HASH.slice(0, 31)}"`, "bad-response", [HASH.slice(0, 31)]);
  // An MD5-length hash with SHA-256, and a SHA-256-length one with MD5.
  rejects(`${base},algorithm=SHA-256,response="${HASH}"`, "bad-response");
  rejects(`${base},response="${HASH}${HASH}"`, "bad-response");
});

test("qop, nc, cnonce and algorithm rules", () => {
  const base = `Digest username="u",realm="r",nonce="n",uri="/",response="${HASH}"`;
  rejects(`${base},qop=auth-int,nc=00000001,cnonce="c"`, "bad-qop");
  rejects(`${base},qop=auth,cnonce="c"`, "missing-param");
  rejects(`${base},qop=auth,nc=00000001`, "missing-param");
  rejects(`${base},qop=auth,nc=00000001,cnonce=""`, "missing-param");
  rejects(`${base},qop=auth,nc=1,cnonce="c"`, "bad-nc");
  rejects(`${base},qop=auth,nc=0000000g,cnonce="c"`, "bad-nc");
  rejects(`${base},nc=00000001,cnonce="c"`, "bad-qop");
  rejects(`${base},algorithm=SHA1`, "bad-algorithm");
  rejects(`${base},algorithm=MD5-sess`, "missing-param"); // -sess needs cnonce, hence qop
  rejects(`${base},userhash=true`, "unsupported");
});

test("length bounds", () => {
  const pad = ',x="' + "a".repeat(MAX_DIGEST_LENGTH) + '"';
  rejects(APPLE + pad, "too-long");
  rejects(`${APPLE},x="${"a".repeat(1100)}"`, "too-long");
  rejects(`${APPLE},x=${"a".repeat(1100)}`, "too-long");
  // Just under both bounds is fine.
  assert.equal(parseDigestResponse(`${APPLE},x="${"a".repeat(1000)}"`).username, "net1");
});

test("error messages never contain parameter values", () => {
  const secretUser = "topsecretuser";
  const cases: Array<[string, DigestErrorReason]> = [
    [`Digest username="${secretUser}",realm="r",nonce="n",uri="/",response="${HASH}",response="${HASH}"`, "duplicate-param"],
    [`Digest username="${secretUser}",realm="r",nonce="n",response="${HASH}"`, "missing-param"],
    [`Digest username="${secretUser}",realm="r",nonce="n",uri="/",response="${HASH}",qop=${secretUser}`, "bad-qop"],
    [`Digest username="${secretUser}",realm="r",nonce="n",uri="/",response="${HASH}",algorithm=${secretUser}`, "bad-algorithm"],
    [`Digest username="${secretUser}",realm="r",nonce="n",uri="/",response="${HASH}" junk`, "malformed"],
    [`Digest username="${secretUser}",realm="r",nonce="n",uri="/",response="${HASH}",${secretUser}`, "malformed"],
    [`Digest username="${secretUser}",realm="r",nonce="n",uri="/",response="${HASH}x"`, "bad-response"],
  ];
  for (const [input, reason] of cases) rejects(input, reason, [HASH, secretUser]);
});

test("non-string input is a DigestError, not a crash", () => {
  assert.throws(() => parseDigestResponse(undefined as never), { name: "DigestError", reason: "malformed" });
});
