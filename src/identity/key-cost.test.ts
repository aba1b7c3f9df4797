import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { test } from "node:test";
import { costlyKeyProblem } from "./key-cost.ts";

test("a usual RSA key, an EC key and an exponent of 2^32 - 1 pass; a longer exponent is refused", () => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  assert.equal(costlyKeyProblem(rsa.publicKey), undefined);
  assert.equal(costlyKeyProblem(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey), undefined);
  const n = rsa.publicKey.export({ format: "jwk" }).n!;
  const withExponent = (e: bigint) => {
    let hex = e.toString(16);
    if (hex.length % 2) hex = `0${hex}`;
    return createPublicKey({ key: { kty: "RSA", n, e: Buffer.from(hex, "hex").toString("base64url") }, format: "jwk" });
  };
  assert.equal(costlyKeyProblem(withExponent(2n ** 32n - 1n)), undefined);
  assert.match(costlyKeyProblem(withExponent(2n ** 32n + 1n)) ?? "", /public exponent is larger than 2\^32/);
  // The private key's own object says the same of its public half.
  assert.equal(costlyKeyProblem(createPublicKey(createPrivateKey(rsa.privateKey.export({ type: "pkcs8", format: "pem" })))), undefined);
});
