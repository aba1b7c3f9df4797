import assert from "node:assert/strict";
import { constants, generateKeyPair, publicEncrypt, randomBytes, randomInt, type KeyObject } from "node:crypto";
import { before, describe, test } from "node:test";
import { promisify } from "node:util";
import { decryptPkcs1v15, syntheticMessage } from "./rsa-pkcs1.ts";

const keygen = promisify(generateKeyPair);
type Pair = { publicKey: KeyObject; privateKey: KeyObject };

const encrypt = (pub: KeyObject, m: Buffer) => publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, m);

describe("RSAES-PKCS1-v1_5 decryption with implicit rejection", () => {
  let keys: Pair[];
  before(async () => {
    // Key sizes a SCEP CA may have; several keys so that moduli of every shape are met.
    const sizes = [1024, 1024, 1024, 1536, 2048, 2048];
    keys = await Promise.all(sizes.map((modulusLength) => keygen("rsa", { modulusLength, publicExponent: 0x10001 })));
  });

  test("decrypts what node's publicEncrypt (PKCS#1 v1.5) encrypts, for many keys and messages", () => {
    let n = 0;
    for (const { publicKey, privateKey } of keys) {
      const k = publicKey.asymmetricKeyDetails!.modulusLength! / 8;
      for (let i = 0; i < 60; i++) {
        // The content-key lengths SCEP meets (DES, AES-128, 3DES/AES-192, AES-256) and others up to the maximum.
        const length = i < 40 ? [8, 16, 24, 32][i % 4]! : randomInt(1, k - 11 + 1);
        const m = randomBytes(length);
        assert.deepEqual(decryptPkcs1v15(privateKey, encrypt(publicKey, m), length), m);
        n++;
      }
      // Zero bytes in the message are message, not padding.
      const zeros = Buffer.alloc(16);
      assert.deepEqual(decryptPkcs1v15(privateKey, encrypt(publicKey, zeros), 16), zeros);
    }
    assert.ok(n >= 300);
  });

  test("a wrong padding gives a deterministic stand-in of the expected length, never an error", () => {
    const { publicKey, privateKey } = keys[0]!;
    const k = 128;
    const cases: Buffer[] = [
      randomBytes(k), // random numbers (mostly below the modulus): padding almost surely wrong
      Buffer.alloc(k), // zero
      Buffer.alloc(k, 0xff), // above the modulus
      randomBytes(k - 1), // too short
      randomBytes(k + 1), // too long
      Buffer.alloc(0),
    ];
    for (const c of cases) {
      const a = decryptPkcs1v15(privateKey, c, 16);
      assert.equal(a.length, 16);
      assert.deepEqual(decryptPkcs1v15(privateKey, c, 16), a, "the same ciphertext gives the same stand-in");
      assert.deepEqual(a, syntheticMessage(privateKey, c, 16));
    }
    // Different ciphertexts, different stand-ins; another key, another stand-in.
    const c1 = randomBytes(k);
    const c2 = randomBytes(k);
    assert.notDeepEqual(decryptPkcs1v15(privateKey, c1, 16), decryptPkcs1v15(privateKey, c2, 16));
    assert.notDeepEqual(syntheticMessage(privateKey, c1, 16), syntheticMessage(keys[1]!.privateKey, c1, 16));
    // A correctly padded message of another length is rejected the same way.
    const m = randomBytes(24);
    const c = encrypt(publicKey, m);
    const got = decryptPkcs1v15(privateKey, c, 16);
    assert.deepEqual(got, syntheticMessage(privateKey, c, 16));
    assert.notDeepEqual(got, m.subarray(8));
  });

  test("a corrupted ciphertext never throws and yields a 16-byte result", () => {
    const { publicKey, privateKey } = keys[2]!;
    const m = randomBytes(16);
    const c = encrypt(publicKey, m);
    for (let i = 0; i < 200; i++) {
      const bad = Buffer.from(c);
      bad[randomInt(bad.length)] ^= 1 << randomInt(8);
      const out = decryptPkcs1v15(privateKey, bad, 16);
      assert.equal(out.length, 16);
      assert.notDeepEqual(out, m);
    }
  });

  test("the stand-in is what a correct padding of a random key looks like: a full-length key", () => {
    const { privateKey } = keys[0]!;
    for (const length of [8, 24, 32, 100]) {
      const s = syntheticMessage(privateKey, randomBytes(128), length);
      assert.equal(s.length, length);
    }
  });

  test("refuses a public key or an impossible length (programming errors, not input errors)", () => {
    const { publicKey, privateKey } = keys[0]!;
    assert.throws(() => decryptPkcs1v15(publicKey, randomBytes(128), 16), /private key/);
    assert.throws(() => decryptPkcs1v15(privateKey, randomBytes(128), 128 - 10), /cannot carry/);
    assert.throws(() => decryptPkcs1v15(privateKey, randomBytes(128), 0), /cannot carry/);
  });
});
