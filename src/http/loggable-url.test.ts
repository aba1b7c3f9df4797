// The URLs logged for refused requests: secrets in the query string are replaced, however the name is written.
import assert from "node:assert/strict";
import { test } from "node:test";
import { loggableUrl } from "./errors.ts";

test("secret query values are redacted, with the name percent-encoded, in any case, or not decodable", () => {
  assert.equal(loggableUrl("/enroll?token=SECRET"), "/enroll?token=[redacted]");
  assert.equal(loggableUrl("/enroll?to%6Ben=SECRET"), "/enroll?to%6Ben=[redacted]");
  assert.equal(loggableUrl("/enroll?TOKEN=SECRET&x=1"), "/enroll?TOKEN=[redacted]&x=1");
  assert.equal(
    loggableUrl("/x?a=1&api_key=K&Api-Key=K2&challenge=C&password=P#frag"),
    "/x?a=1&api_key=[redacted]&Api-Key=[redacted]&challenge=[redacted]&password=[redacted]#frag",
  );
  assert.equal(loggableUrl("/x?%E0%A4%A=odd"), "/x?%E0%A4%A=[redacted]", "a name that does not decode");
  // The router takes a query after # as after ? (review): /enroll#token=X reached the guard.
  assert.equal(loggableUrl("/enroll#token=SECRET"), "/enroll#token=[redacted]");
  assert.equal(loggableUrl("/enroll?a=1#&token=SECRET"), "/enroll?a=1#&token=[redacted]");
  assert.equal(loggableUrl("/enroll?a=1#token=SECRET"), "/enroll?a=1#token=[redacted]");
  // A passphrase, key or secret by any spelling (walkthrough: ?passphrase= for X-Passphrase was logged).
  assert.equal(loggableUrl("/v1/pushcert?passphrase=s3cret"), "/v1/pushcert?passphrase=[redacted]");
  assert.equal(
    loggableUrl("/v1/pushcert?force=1&P12_Passphrase=a&pushKey=b&client-secret=c&accessToken=d&key=e&PASS=f&apikey=g"),
    "/v1/pushcert?force=1&P12_Passphrase=[redacted]&pushKey=[redacted]&client-secret=[redacted]&accessToken=[redacted]&key=[redacted]&PASS=[redacted]&apikey=[redacted]",
  );
  // Nothing else changes: the parameters the routes read, and names that only contain a secret word.
  assert.equal(loggableUrl("/v1/enrollments?limit=5&tokens=2"), "/v1/enrollments?limit=5&tokens=2");
  assert.equal(
    loggableUrl("/v1/x?cursor=c&force=1&nopush=1&nonotify=1&platform=macOS&state=s&device=d&realm=r&key_id=k&monkey=m&bypass=b"),
    "/v1/x?cursor=c&force=1&nopush=1&nonotify=1&platform=macOS&state=s&device=d&realm=r&key_id=k&monkey=m&bypass=b",
  );
  assert.equal(loggableUrl("/scep?operation=PKIOperation&message=MII"), "/scep?operation=PKIOperation&message=MII");
  assert.equal(loggableUrl("/v1/enrollments"), "/v1/enrollments");
});
