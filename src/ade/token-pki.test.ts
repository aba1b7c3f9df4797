import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { X509Certificate } from "node:crypto";
import { test } from "node:test";
import { buildEnvelopedData } from "../identity/cms.ts";
import { buildSmime, buildSmimeInner } from "../identity/smime.ts";
import { decryptServerToken, makeTokenKeyPair } from "./token-pki.ts";

const TOKEN = {
  consumer_key:
    "CK_48dd68d198350f51258e885ce9a5c37ab7f98543c4a697323d75682a6c10a32501cb247e3db08105db868f73f2c972bdb6ae77112aea803b9219eb52689d42e6",
  consumer_secret:
    "CS_34c7b2b531a600d99a0e4edcf4a78ded79b86ef318118c2f5bcfee1b011108c32d5302df801adbe29d446eb78f02b13144e323eb9aad51c79f01e50cb45c3a68",
  access_token:
    "AT_927696831c59ba510cfe4ec1a69e5267c19881257d4bca2906a99d0785b785a6f6fdeb09774954fdd5e2d0ad952e3af52c6d8d2f21c924ba0caf4a031c158b89",
  access_secret:
    "AS_c31afd7a09691d83548489336e8ff1cb11b82b6bca13f793344496a556b1f4972eaff4dde6deb5ac9cf076fdfa97ec97699c34d515947b9cf9ed31c99dded6ba",
  access_token_expiry: "2027-01-01T15:13:11Z",
};

test("a key pair and a self-signed certificate to upload at ABM", async () => {
  const pair = await makeTokenKeyPair("Orchard ADE test", 30);
  const cert = new X509Certificate(pair.certPem);
  assert.equal(cert.subject, "CN=Orchard ADE test");
  assert.equal(cert.issuer, cert.subject);
  assert.ok(cert.checkPrivateKey((await import("node:crypto")).createPrivateKey(pair.keyPem)));
  assert.ok(Math.abs(pair.notAfter - (Date.now() + 30 * 86_400_000)) < 60_000);
  assert.match(pair.fingerprint, /^[0-9a-f]{64}$/);
});

test("a server token made by OpenSSL (S/MIME, BER with indefinite lengths, as ABM's) decrypts to its OAuth1 credentials", async () => {
  const pair = await makeTokenKeyPair("Orchard ADE openssl");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-ade-"));
  try {
    fs.writeFileSync(path.join(dir, "cert.pem"), pair.certPem);
    fs.writeFileSync(path.join(dir, "inner.txt"), buildSmimeInner(JSON.stringify(TOKEN)));
    for (const cipher of ["-aes256", "-des3"]) {
      const p7m = execFileSync("openssl", [
        "smime",
        "-encrypt",
        "-stream",
        cipher,
        "-in",
        path.join(dir, "inner.txt"),
        path.join(dir, "cert.pem"),
      ]);
      assert.match(p7m.toString("latin1"), /Content-Type: application\/(x-)?pkcs7-mime/);
      const token = decryptServerToken(p7m, pair.certPem, pair.keyPem);
      assert.deepEqual(token, {
        consumerKey: TOKEN.consumer_key,
        consumerSecret: TOKEN.consumer_secret,
        accessToken: TOKEN.access_token,
        accessSecret: TOKEN.access_secret,
        accessTokenExpiry: Date.parse(TOKEN.access_token_expiry),
      });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a token for another key, a damaged one, or one without the credentials is a 400 invalid_ade_token naming no secret", async () => {
  const ours = await makeTokenKeyPair("ours");
  const theirs = await makeTokenKeyPair("theirs");
  const make = (json: string, cert = ours.certPem) =>
    buildSmime(buildEnvelopedData(buildSmimeInner(json), new X509Certificate(cert), "aes-256-cbc"));
  const refused = (p7m: Buffer, pattern: RegExp) =>
    assert.throws(
      () => decryptServerToken(p7m, ours.certPem, ours.keyPem),
      (err: Error & { code?: string; status?: number }) => {
        assert.equal(err.code, "invalid_ade_token");
        assert.equal(err.status, 400);
        assert.match(err.message, pattern);
        assert.ok(!err.message.includes("CS_") && !err.message.includes("AS_"), err.message);
        return true;
      },
    );
  refused(make(JSON.stringify(TOKEN), theirs.certPem), /does not decrypt with this ABM server's key/);
  refused(make(JSON.stringify({ ...TOKEN, access_secret: undefined })), /no access_secret/);
  refused(make("not json"), /not JSON/);
  refused(Buffer.from("hello"), /MIME headers|S\/MIME/);
  const good = make(JSON.stringify(TOKEN)).toString("latin1");
  refused(Buffer.from(good.replace("application/pkcs7-mime", "text/plain"), "latin1"), /Content-Type/);
  const b64 = good.split("\r\n\r\n")[1]!.replace(/\s+/g, "");
  const der = Buffer.from(b64, "base64");
  der[der.length - 5]! ^= 0xff;
  refused(buildSmime(der), /cannot be read/);
});
