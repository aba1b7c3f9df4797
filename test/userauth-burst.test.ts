// A burst of digest responses from one Mac, the right password among wrong ones:
// no more guesses are checked than --userauth-max-failures allows, and the right
// one, sent after the limit was reached, gets no AuthToken. (On PostgreSQL,
// responses answered concurrently each read the failure counts before any of
// them wrote one: a review got a token for the 16th guess against a limit of 3,
// and a script like this test had 4 to 8 guesses checked before core/userauth.ts
// answered a Mac's responses one at a time. Whether the race shows here depends
// on timing: under the test runner it did not always.)
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { challengeParams, digestResponse } from "./support/digest-client.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const LIMIT = 3;
const GUESSES = 30;
const RIGHT_AT = 15;

await forEachBackend("a burst of guesses from one Mac", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  before(async () => {
    server = await startTestServer(
      ["--digest-realm", "r", "--digest-extra-methods", "", "--userauth-max-failures", String(LIMIT)],
      backend,
    );
    fleet = await testFleet(server.url);
  });
  after(async () => {
    fleet?.close();
    await server?.stop(); // stop, not close: drops its PostgreSQL database and removes its data dir
  });

  test("is checked one guess at a time: the limit holds and the right password past it gets no token", async () => {
    const mac = await fleet.device();
    await mac.enroll();
    const guid = randomUUID().toUpperCase();
    assert.equal((await server.api("PUT", "/v1/users/victim", { password: "the right one", guid })).status, 201);
    // A challenge per guess: each resets the session to challenged, and every nonce stays valid.
    const nonces: string[] = [];
    for (let i = 0; i < GUESSES; i++) {
      const first = await mac.checkin("UserAuthenticate", { UserID: guid });
      nonces.push(challengeParams(first.plist!.DigestChallenge as string).nonce!);
    }
    const responses = nonces.map((nonce, i) =>
      digestResponse({ username: "victim", password: i === RIGHT_AT ? "the right one" : `guess ${i}`, realm: "r", nonce }),
    );
    const replies = await Promise.all(responses.map((r) => mac.checkin("UserAuthenticate", { UserID: guid, DigestResponse: r })));
    assert.deepEqual(
      replies.map((r) => r.status),
      responses.map(() => 200),
    );
    assert.equal(replies[RIGHT_AT]!.plist!.AuthToken, "", "no token past the limit");
    const events = await server.api(
      "GET",
      `/v1/events?type=userauth.failed&enrollment=${encodeURIComponent(`${mac.udid}:${guid}`)}&limit=100`,
    );
    const causes: Record<string, number> = {};
    for (const e of events.json.events) causes[e.detail.cause] = (causes[e.detail.cause] ?? 0) + 1;
    assert.equal(causes["wrong-password"], LIMIT, JSON.stringify(causes));
    assert.equal(causes["rate-limited"], GUESSES - LIMIT, JSON.stringify(causes));
  });
});
