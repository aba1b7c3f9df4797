// A Mac sending UserAuthenticate as fast as it can, for made-up users: each
// message wrote an event and each new UserID a session row (a hostile review
// had 200 requests make 200 of each). Past --userauth-max-messages in 5
// minutes a Mac's messages are refused and write nothing; other Macs go on.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { challengeParams, digestResponse } from "./support/digest-client.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const LIMIT = 6;

await forEachBackend("UserAuthenticate messages per Mac", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  before(async () => {
    server = await startTestServer(["--digest-realm", "r", "--userauth-max-messages", String(LIMIT)], backend);
    fleet = await testFleet(server.url);
  });
  after(async () => {
    fleet?.close();
    await server?.stop();
  });

  const rows = async (deviceId: string) => ({
    sessions: (await server.api("GET", `/v1/user-sessions?device=${encodeURIComponent(deviceId)}&limit=100`)).json.sessions.length,
    events: (await server.api("GET", `/v1/events?type=userauth.challenged&limit=100`)).json.events.filter((e: { enrollment_id: string }) =>
      e.enrollment_id.startsWith(`${deviceId}:`),
    ).length,
  });

  test("past the limit a first step is 410 and a response gets an empty token, with nothing written; another Mac logs in", async () => {
    const flooder = await fleet.device();
    await flooder.enroll();
    for (let i = 0; i < LIMIT; i++) {
      const r = await flooder.checkin("UserAuthenticate", { UserID: randomUUID().toUpperCase() });
      assert.equal(r.status, 200, `message ${i + 1}`);
      assert.ok(r.plist!.DigestChallenge);
    }
    assert.deepEqual(await rows(flooder.udid), { sessions: LIMIT, events: LIMIT });

    const userId = randomUUID().toUpperCase();
    const refused = await flooder.checkin("UserAuthenticate", { UserID: userId });
    assert.equal(refused.status, 410);
    const answer = await flooder.checkin("UserAuthenticate", {
      UserID: userId,
      DigestResponse: digestResponse({ username: "nobody", password: "x", realm: "r", nonce: "bm9uY2U=" }),
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.plist!.AuthToken, "");
    assert.deepEqual(await rows(flooder.udid), { sessions: LIMIT, events: LIMIT }, "nothing written past the limit");
    const failed = await server.api("GET", `/v1/events?type=userauth.failed&enrollment=${encodeURIComponent(`${flooder.udid}:${userId}`)}`);
    assert.equal(failed.json.events.length, 0);
    assert.match(server.logs.join("\n"), /UserAuthenticate messages from this Mac past the limit/);

    // Another Mac has its own window: a real login goes through.
    const guid = randomUUID().toUpperCase();
    assert.equal((await server.api("PUT", "/v1/users/alice", { password: "secret", guid })).status, 201);
    const mac = await fleet.device();
    await mac.enroll();
    const first = await mac.checkin("UserAuthenticate", { UserID: guid });
    assert.equal(first.status, 200);
    const nonce = challengeParams(first.plist!.DigestChallenge as string).nonce!;
    const second = await mac.checkin("UserAuthenticate", {
      UserID: guid,
      DigestResponse: digestResponse({ username: "alice", password: "secret", realm: "r", nonce }),
    });
    assert.match(String(second.plist!.AuthToken), /.+/);
  });
});
