import { test } from "node:test";
import assert from "node:assert/strict";
import { formatOffers, offerMismatch, parseOffers, type Offer } from "./index.ts";

const APPLE: Offer[] = [{ algorithm: "MD5", qop: false }];
const AD: Offer[] = [
  { algorithm: "MD5", qop: false },
  { algorithm: "MD5-sess", qop: true },
];

test("offers round trip through their stored text; unknown parts offer nothing", () => {
  assert.equal(formatOffers(APPLE), "MD5");
  assert.equal(formatOffers(AD), "MD5,MD5-sess/auth");
  assert.deepEqual(parseOffers("MD5,MD5-sess/auth"), AD);
  assert.deepEqual(parseOffers("MD5/auth"), [{ algorithm: "MD5", qop: true }]);
  assert.deepEqual(parseOffers("MD5,SHA-512/auth,MD5/auth-int,MD5/auth/x,md5-sess"), APPLE);
  assert.deepEqual(parseOffers(""), []);
  assert.throws(() => formatOffers([]), TypeError);
});

test("a response keeps to the algorithms offered", () => {
  assert.equal(offerMismatch({ algorithm: "MD5" }, APPLE), undefined);
  assert.equal(offerMismatch({ algorithm: "MD5-sess", qop: "auth" }, APPLE), "algorithm-not-offered");
  assert.equal(offerMismatch({ algorithm: "SHA-256" }, AD), "algorithm-not-offered");
  assert.equal(offerMismatch({ algorithm: "MD5-sess", qop: "auth" }, AD), undefined);
  assert.equal(offerMismatch({ algorithm: "MD5" }, []), "algorithm-not-offered");
});

test("qop only where a challenge of the response's algorithm offered it; none is kept where one did (RFC 2069 clients)", () => {
  assert.equal(offerMismatch({ algorithm: "MD5", qop: "auth" }, APPLE), "qop-not-offered");
  // The MD5-sess challenge's qop is not the MD5 one's.
  assert.equal(offerMismatch({ algorithm: "MD5", qop: "auth" }, AD), "qop-not-offered");
  const withQop: Offer[] = [{ algorithm: "MD5", qop: true }];
  assert.equal(offerMismatch({ algorithm: "MD5", qop: "auth" }, withQop), undefined);
  assert.equal(offerMismatch({ algorithm: "MD5" }, withQop), undefined);
});
