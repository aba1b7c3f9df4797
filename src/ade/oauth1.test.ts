import assert from "node:assert/strict";
import { test } from "node:test";
import { authorizationHeader, hmacSha1Signature, percentEncode, signatureBase } from "./oauth1.ts";

// The worked example of OAuth 1.0a signing that Twitter's developer documentation
// published ("Creating a signature"): its base string inputs and its signature.
test("the HMAC-SHA1 signature of the well-known worked example", () => {
  const url = new URL("https://api.twitter.com/1.1/statuses/update.json?include_entities=true");
  const params: Array<[string, string]> = [
    ["status", "Hello Ladies + Gentlemen, a signed OAuth request!"],
    ["oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"],
    ["oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"],
    ["oauth_signature_method", "HMAC-SHA1"],
    ["oauth_timestamp", "1318622958"],
    ["oauth_token", "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"],
    ["oauth_version", "1.0"],
  ];
  const base = signatureBase("POST", url, params);
  assert.ok(
    base.startsWith("POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue%26oauth_consumer_key"),
  );
  const signature = hmacSha1Signature(base, "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw", "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE");
  assert.equal(signature, "hCtSmYh+iHYCEqBWrE7C7hYmtUk=");
});

test("percent-encoding is RFC 3986's, and the header carries no secret", () => {
  assert.equal(percentEncode("a b!*'()~.-_"), "a%20b%21%2A%27%28%29~.-_");
  const c = { consumerKey: "CK_1", consumerSecret: "CS_secret", accessToken: "AT_1", accessSecret: "AS_secret" };
  const header = authorizationHeader("GET", new URL("https://mdmenrollment.apple.com/session"), c, { nonce: "n", timestamp: 1 });
  assert.match(header, /^OAuth oauth_consumer_key="CK_1", oauth_token="AT_1", oauth_signature_method="HMAC-SHA1", oauth_timestamp="1"/);
  assert.ok(!header.includes("CS_secret") && !header.includes("AS_secret"));
});
