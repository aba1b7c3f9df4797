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
  // Nothing else changes.
  assert.equal(loggableUrl("/v1/enrollments?limit=5&tokens=2"), "/v1/enrollments?limit=5&tokens=2");
  assert.equal(loggableUrl("/v1/enrollments"), "/v1/enrollments");
});
