import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { ConfigError, parseServeArgs } from "../src/config.ts";
import { mintNonce } from "../src/digest/index.ts";
import { issueDeviceIdentity } from "../src/identity/testing/pki.ts";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { SimDevice, type SimUser } from "../src/sim/device.ts";
import { RoundRobin, Transport, type Sender } from "../src/sim/transport.ts";
import { challengeParams, digestResponse } from "./support/digest-client.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { type Backend, createTestDatabase, forEachBackend, postgresReachable } from "./support/postgres.ts";
import { runOrchard } from "./support/cli.ts";
import { sample } from "./support/metrics.ts";
import { commandPlist } from "./support/mdm.ts";
import { WebhookReceiver } from "./support/webhook-receiver.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const REALM = "fusion.home";
/** A Shared iPad user's UserID. */
const SHARED_IPAD_USER = "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF";

interface Login {
  challenge: string;
  nonce: string;
  authToken: string;
}

/** Both UserAuthenticate steps, answering the challenge with the given password. */
async function login(
  d: SimDevice,
  user: SimUser,
  password: string,
  opts: { method?: string; algorithm?: "MD5" | "SHA-256" | "MD5-sess"; qop?: boolean } = {},
): Promise<Login> {
  const first = await d.checkin("UserAuthenticate", { UserID: user.userId });
  assert.equal(first.status, 200, first.body.toString());
  const challenge = first.plist!.DigestChallenge as string;
  const { nonce, realm } = challengeParams(challenge);
  const response = digestResponse({ username: user.shortName, password, realm: realm!, nonce: nonce!, ...opts });
  const second = await d.checkin("UserAuthenticate", { UserID: user.userId, DigestResponse: response });
  assert.equal(second.status, 200);
  return { challenge, nonce: nonce!, authToken: second.plist!.AuthToken as string };
}

function newUser(shortName: string): SimUser & { guid: string } {
  const guid = randomUUID().toUpperCase();
  return { userId: guid, guid, shortName, longName: `${shortName} Long` };
}

await forEachBackend("UserAuthenticate with the digest policy", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  let mac: SimDevice;
  let mac2: SimDevice;
  const net1 = newUser("net1");
  const net2 = newUser("net2");

  before(async () => {
    server = await startTestServer(["--digest-realm", REALM, "--digest-extra-methods", "", "--userauth-max-failures", "5"], backend);
    fleet = await testFleet(server.url);
    mac = await fleet.device();
    mac2 = await fleet.device();
    await mac.enroll();
    await mac2.enroll();
    for (const u of [net1, net2]) {
      const r = await server.api("PUT", `/v1/users/${u.shortName}`, { password: "secret", guid: u.guid, full_name: u.longName });
      assert.equal(r.status, 201, r.text);
    }
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  test("Apple's flow: challenge, response, AuthToken, then TokenUpdate and Idle with it", async () => {
    const l = await login(mac, net1, "secret");
    assert.match(l.challenge, /^Digest nonce="[A-Za-z0-9_-]+",realm="fusion\.home"$/);
    assert.equal(Buffer.from(l.authToken, "base64").length, 32);
    const user = { ...net1, authToken: l.authToken };
    assert.equal((await mac.userTokenUpdate(user)).status, 200);
    const idle = await mac.report("Idle", mac.userKeys(user));
    assert.equal(idle.status, 200);
    assert.equal(idle.body.length, 0);
    const enrollment = await server.api("GET", `/v1/enrollments/${mac.udid}:${net1.userId}`);
    assert.equal(enrollment.json.type, "User");
    assert.equal(enrollment.json.user_short_name, "net1");
    const sessions = await server.api("GET", `/v1/user-sessions?device=${mac.udid}`);
    const s = sessions.json.sessions.find((x: { user_id: string }) => x.user_id === net1.userId);
    assert.equal(s.state, "authenticated");
    assert.equal(s.short_name, "net1");
    assert.equal("token_hash" in s || "tokenHash" in s, false);
    assert.ok(!sessions.text.includes(createHash("sha256").update(l.authToken).digest("hex")));
  });

  test("the user channel refuses a missing, wrong or other user's AuthToken with 403, never 401", async () => {
    const l = await login(mac, net1, "secret");
    const good = { ...net1, authToken: l.authToken };
    assert.equal((await mac.report("Idle", mac.userKeys({ ...net1, authToken: undefined }))).status, 403);
    assert.equal((await mac.report("Idle", mac.userKeys({ ...net1, authToken: "bm9wZQ==" }))).status, 403);
    assert.equal((await mac.userTokenUpdate({ ...net1, authToken: undefined })).status, 403);
    assert.equal((await mac.report("Idle", mac.userKeys(good))).status, 200);
    const events = await server.api(
      "GET",
      `/v1/events?enrollment=${encodeURIComponent(`${mac.udid}:${net1.userId}`)}&type=userauth.token_refused`,
    );
    // One event per channel and reason (at most one per 5 minutes; src/core/auth-token-guard.test.ts has the rest).
    const reasons = events.json.events.map((e: { detail: { reason: string } }) => e.detail.reason);
    assert.deepEqual([...new Set(reasons)].sort(), ["missing", "wrong or stale"]);
    assert.equal(reasons.length, 2, "three refusals, two reasons");
  });

  test("a wrong password and an unknown user both get 200 with an empty AuthToken", async () => {
    const scrape = async () => (await server.api("GET", "/v1/metrics")).text;
    const series = (cause: string) => `orchard_userauth_total{outcome="failed",cause="${cause}"}`;
    const before = await scrape();
    assert.equal((await login(mac, net2, "wrong")).authToken, "");
    assert.equal((await login(mac, newUser("nobody"), "secret")).authToken, "");
    const after = await scrape();
    assert.equal(sample(after, series("wrong-password")) - sample(before, series("wrong-password")), 1, "counted in /metrics");
    assert.equal(sample(after, series("unknown-user")) - sample(before, series("unknown-user")), 1);
    const challenged = 'orchard_userauth_total{outcome="challenged"}';
    assert.equal(sample(after, challenged) - sample(before, challenged), 2);
    const events = await server.api("GET", `/v1/events?type=userauth.failed`);
    const causes = events.json.events.map((e: { detail: { cause: string } }) => e.detail.cause);
    assert.ok(causes.includes("wrong-password"));
    assert.ok(causes.includes("unknown-user"));
  });

  test("a replayed response fails, and so does a nonce minted for another Mac", async () => {
    const first = await mac.checkin("UserAuthenticate", { UserID: net2.userId });
    const { nonce } = challengeParams(first.plist!.DigestChallenge as string);
    const response = digestResponse({ username: "net2", password: "secret", realm: REALM, nonce: nonce! });
    const ok = await mac.checkin("UserAuthenticate", { UserID: net2.userId, DigestResponse: response });
    assert.notEqual(ok.plist!.AuthToken, "");
    const replay = await mac.checkin("UserAuthenticate", { UserID: net2.userId, DigestResponse: response });
    assert.equal(replay.plist!.AuthToken, "");

    await mac2.checkin("UserAuthenticate", { UserID: net2.userId });
    const foreign = await mac2.checkin("UserAuthenticate", {
      UserID: net2.userId,
      DigestResponse: digestResponse({
        username: "net2",
        password: "secret",
        realm: REALM,
        nonce: challengeParams((await mac.checkin("UserAuthenticate", { UserID: net2.userId })).plist!.DigestChallenge as string).nonce!,
      }),
    });
    assert.equal(foreign.plist!.AuthToken, "");
  });

  test("an expired nonce fails", async () => {
    const secret = await server.store.settings.getOrCreate("digest-nonce-secret", () => Buffer.alloc(32));
    await mac.checkin("UserAuthenticate", { UserID: net1.userId });
    const stale = mintNonce({ secret, udid: mac.udid, userId: net1.userId, now: Date.now() - 6 * 60_000 });
    const r = await mac.checkin("UserAuthenticate", {
      UserID: net1.userId,
      DigestResponse: digestResponse({ username: "net1", password: "secret", realm: REALM, nonce: stale }),
    });
    assert.equal(r.plist!.AuthToken, "");
    const events = await server.api("GET", `/v1/events?type=userauth.failed`);
    assert.ok(events.json.events.some((e: { detail: { cause: string } }) => e.detail.cause === "nonce-expired"));
  });

  test("a digest computed with GET fails when only PUT is accepted", async () => {
    assert.equal((await login(mac2, net1, "secret", { method: "GET" })).authToken, "");
    assert.notEqual((await login(mac2, net1, "secret", { method: "PUT" })).authToken, "");
  });

  test("a response with an algorithm the challenge did not offer (SHA-256, MD5-sess) is refused, right password or not", async () => {
    // The challenge offers MD5 only: SHA-256 is refused before any digest is read (PUT stores none of that hash).
    assert.equal((await login(mac2, net2, "secret", { algorithm: "SHA-256" })).authToken, "");
    assert.equal((await login(mac2, net2, "secret", { algorithm: "MD5-sess", qop: true })).authToken, "");
    const events = await server.api(
      "GET",
      `/v1/events?type=userauth.failed&enrollment=${encodeURIComponent(`${mac2.udid}:${net2.userId}`)}`,
    );
    assert.deepEqual(
      events.json.events.slice(-2).map((e: { detail: unknown }) => e.detail),
      [
        { cause: "algorithm-not-offered", short_name: "net2" },
        { cause: "algorithm-not-offered", short_name: "net2" },
      ],
    );
    const lines = server.logs.filter((l) => l.includes('"cause":"algorithm-not-offered"'));
    assert.ok(
      lines.some((l) => l.includes('"algorithm":"SHA-256"') && l.includes("network user refused")),
      "the log names the cause",
    );
    assert.notEqual((await login(mac2, net2, "secret")).authToken, "", "MD5, as offered, logs in");
  });

  test("a response with qop to a challenge that offered none is refused (qop-not-offered), right password or not", async () => {
    // RFC 2617 3.2.2: a client sends qop only if the challenge offered it; Apple's challenge offers none.
    assert.equal((await login(mac2, net2, "secret", { qop: true })).authToken, "");
    const events = await server.api(
      "GET",
      `/v1/events?type=userauth.failed&enrollment=${encodeURIComponent(`${mac2.udid}:${net2.userId}`)}`,
    );
    assert.deepEqual(events.json.events.at(-1).detail, { cause: "qop-not-offered", short_name: "net2" });
    const line = server.logs.filter((l) => l.includes('"cause":"qop-not-offered"')).at(-1);
    assert.ok(line?.includes("network user refused") && line.includes('"algorithm":"MD5"') && line.includes('"qop":"auth"'), line);
    assert.notEqual((await login(mac2, net2, "secret")).authToken, "", "without qop, as offered, logs in");
  });

  test("the next login rotates the token: the old one gets 403", async () => {
    const old = await login(mac, net1, "secret");
    assert.equal((await mac.report("Idle", mac.userKeys({ ...net1, authToken: old.authToken }))).status, 200);
    const fresh = await login(mac, net1, "secret");
    assert.notEqual(fresh.authToken, old.authToken);
    assert.equal((await mac.report("Idle", mac.userKeys({ ...net1, authToken: old.authToken }))).status, 403);
    assert.equal((await mac.report("Idle", mac.userKeys({ ...net1, authToken: fresh.authToken }))).status, 200);
  });

  test("a step-1 message carrying the valid AuthToken gets a zero-length challenge and keeps the token", async () => {
    const l = await login(mac, net2, "secret");
    const again = await mac.checkin("UserAuthenticate", { UserID: net2.userId, AuthToken: l.authToken });
    assert.equal(again.plist!.DigestChallenge, "");
    assert.equal((await mac.report("Idle", mac.userKeys({ ...net2, authToken: l.authToken }))).status, 200);
  });

  test("two users on one Mac and one user on two Macs are independent", async () => {
    const a = await login(mac, net1, "secret");
    const b = await login(mac, net2, "secret");
    const c = await login(mac2, net1, "secret");
    assert.equal((await mac.report("Idle", mac.userKeys({ ...net1, authToken: a.authToken }))).status, 200);
    assert.equal((await mac.report("Idle", mac.userKeys({ ...net2, authToken: b.authToken }))).status, 200);
    assert.equal((await mac2.report("Idle", mac2.userKeys({ ...net1, authToken: c.authToken }))).status, 200);
    // Tokens do not cross users or Macs.
    assert.equal((await mac.report("Idle", mac.userKeys({ ...net2, authToken: a.authToken }))).status, 403);
    assert.equal((await mac2.report("Idle", mac2.userKeys({ ...net1, authToken: a.authToken }))).status, 403);
    // A new login of net1 on mac2 leaves net1's token on mac valid.
    await login(mac2, net1, "secret");
    assert.equal((await mac.report("Idle", mac.userKeys({ ...net1, authToken: a.authToken }))).status, 200);
  });

  test("a GUID is validated, and one typed in lower case matches the Mac's upper-case UserID", async () => {
    for (const guid of ["not-a-guid", "16C0477E-EB2F-4B5E-AAFD", "16C0477E-EB2F-4B5E-AAFD-92B2B91C4B1G"]) {
      const r = await server.api("PUT", "/v1/users/badguid", { password: "secret", guid });
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.error, /guid is not a GUID: a GUID is 32 hex digits as 8-4-4-4-12/);
    }
    const lower = newUser("lowerguid");
    const put = await server.api("PUT", `/v1/users/${lower.shortName}`, { password: "secret", guid: lower.guid.toLowerCase() });
    assert.equal(put.status, 201, put.text);
    assert.equal((await server.api("GET", `/v1/users/${lower.shortName}`)).json.guid, lower.guid);
    // The same GUID in another case is the same GUID: another user cannot take it.
    const taken = await server.api("PUT", "/v1/users/otherguid", { password: "secret", guid: lower.guid.toLowerCase() });
    assert.equal(taken.status, 409, taken.text);
    const { authToken } = await login(mac, lower, "secret");
    assert.ok(authToken.length > 0, "the lower-case GUID entry logs in");
    // A Mac that sends the GUID in lower case is the same user too.
    const { authToken: again } = await login(mac2, { ...lower, userId: lower.guid.toLowerCase() }, "secret");
    assert.ok(again.length > 0);
  });

  test("a command queued for UDID:UserID reaches only that user's channel", async () => {
    const a = await login(mac, net1, "secret");
    const b = await login(mac, net2, "secret");
    const userA = { ...net1, authToken: a.authToken };
    const userB = { ...net2, authToken: b.authToken };
    await mac.userTokenUpdate(userA);
    await mac.userTokenUpdate(userB);
    const cmd = `<plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict></dict></plist>`;
    const q = await server.api("PUT", `/v1/enqueue/${mac.udid}:${net1.userId}?nopush=1`, cmd);
    assert.equal(q.status, 200, q.text);
    assert.equal((await mac.report("Idle")).body.length, 0);
    assert.equal((await mac.report("Idle", mac.userKeys(userB))).body.length, 0);
    const got = await mac.report("Idle", mac.userKeys(userA));
    assert.equal(got.plist!.CommandUUID, q.json.command_uuid);
    assert.equal((await mac.report("Acknowledged", { ...mac.userKeys(userA), CommandUUID: q.json.command_uuid })).status, 200);
  });

  test("a declined directory user gets 410, on UserAuthenticate and on the user's TokenUpdate", async () => {
    const net3 = newUser("net3");
    await server.api("PUT", "/v1/users/net3", { password: "secret", guid: net3.guid, state: "declined" });
    const r = await mac.checkin("UserAuthenticate", { UserID: net3.userId });
    assert.equal(r.status, 410);
    assert.equal((await mac.userTokenUpdate(net3)).status, 410);
  });

  test("after 5 failures the right password fails too, without being checked", async () => {
    const mac3 = await fleet.device();
    await mac3.enroll();
    const net4 = newUser("net4");
    await server.api("PUT", "/v1/users/net4", { password: "secret", guid: net4.guid });
    for (let i = 0; i < 5; i++) assert.equal((await login(mac3, net4, "wrong")).authToken, "");
    assert.equal((await login(mac3, net4, "secret")).authToken, "");
    const events = await server.api(
      "GET",
      `/v1/events?type=userauth.failed&enrollment=${encodeURIComponent(`${mac3.udid}:${net4.userId}`)}`,
    );
    assert.deepEqual(events.json.events.at(-1).detail, { cause: "rate-limited", short_name: "net4" });
  });

  test("a re-enrollment (Authenticate) ends the Mac's AuthTokens", async () => {
    const mac4 = await fleet.device();
    await mac4.enroll();
    const l = await login(mac4, net1, "secret");
    const user = { ...net1, authToken: l.authToken };
    assert.equal((await mac4.report("Idle", mac4.userKeys(user))).status, 200);
    await mac4.enroll();
    assert.equal((await mac4.report("Idle", mac4.userKeys(user))).status, 403);
    const fresh = await login(mac4, net1, "secret");
    assert.equal((await mac4.report("Idle", mac4.userKeys({ ...net1, authToken: fresh.authToken }))).status, 200);
  });

  test("a Mac naming the user's GUID as a Shared iPad user's short name reaches that channel's id, and is refused as the user is", async () => {
    const net5 = newUser("net5");
    await server.api("PUT", "/v1/users/net5", { password: "secret", guid: net5.guid });
    const l = await login(mac, net5, "secret");
    assert.equal((await mac.userTokenUpdate({ ...net5, authToken: l.authToken })).status, 200);
    const channel = `${mac.udid}:${net5.userId}`;
    const q = await server.api("PUT", `/v1/enqueue/${encodeURIComponent(channel)}?nopush=1`, commandPlist("ProfileList"));
    assert.equal(q.status, 200, q.text);
    // UserID all Fs is a Shared iPad user: its channel id is UDID:UserShortName, here the network user's.
    const asIpad = { UserID: SHARED_IPAD_USER, UserShortName: net5.userId };
    const idle = await mac.report("Idle", asIpad);
    assert.equal(idle.status, 403, "the user's command must not reach a message without its AuthToken");
    const update = await mac.checkin("TokenUpdate", { ...asIpad, Topic: mac.topic, Token: Buffer.alloc(32, 7), PushMagic: "EVIL" });
    assert.equal(update.status, 403);
    const enrollment = await server.api("GET", `/v1/enrollments/${encodeURIComponent(channel)}`);
    assert.notEqual(enrollment.json.push_magic, "EVIL");
    assert.equal(enrollment.json.user_short_name, "net5");
    const got = await mac.report("Idle", mac.userKeys({ ...net5, authToken: l.authToken }));
    assert.equal(got.plist!.CommandUUID, q.json.command_uuid);
  });

  test("a channel keeps its type: a Shared iPad TokenUpdate for a local user's UDID:UserID is refused, nothing written", async () => {
    // A Mac whose model is not known (a known Mac's Shared iPad user channels are refused before this).
    const bare = await fleet.device({ facts: { OSVersion: "14.6" } });
    await bare.enroll();
    const local = newUser("local1");
    assert.equal((await bare.userTokenUpdate(local)).status, 200, "a local user: no handshake, no token");
    const channel = `${bare.udid}:${local.userId}`;
    const update = await bare.checkin("TokenUpdate", {
      UserID: SHARED_IPAD_USER,
      UserShortName: local.userId,
      Topic: bare.topic,
      Token: Buffer.alloc(32, 7),
      PushMagic: "EVIL",
    });
    assert.equal(update.status, 403);
    const enrollment = await server.api("GET", `/v1/enrollments/${encodeURIComponent(channel)}`);
    assert.equal(enrollment.json.type, "User");
    assert.notEqual(enrollment.json.push_magic, "EVIL");
  });

  test("a Mac has no Shared iPad users: a Shared iPad user's message from a Mac is a 403, nothing written", async () => {
    const net8 = newUser("net8");
    await server.api("PUT", "/v1/users/net8", { password: "secret", guid: net8.guid });
    const squat = { UserID: SHARED_IPAD_USER, UserShortName: net8.userId, Topic: mac.topic, Token: Buffer.alloc(32, 7) };
    assert.equal((await mac.checkin("TokenUpdate", { ...squat, PushMagic: "EVIL" })).status, 403, "before the user's first login too");
    assert.equal((await server.api("GET", `/v1/enrollments/${encodeURIComponent(`${mac.udid}:${net8.userId}`)}`)).status, 404);
  });

  test("a channel a Mac of unknown model named as a Shared iPad user's, before the user's first login, is taken back by the login", async () => {
    // Its Authenticate named no model: its platform is not known to be macOS.
    const bare = await fleet.device({ facts: { OSVersion: "14.6" } });
    await bare.enroll();
    const net9 = newUser("net9");
    await server.api("PUT", "/v1/users/net9", { password: "secret", guid: net9.guid });
    const channel = `${bare.udid}:${net9.userId}`;
    const squat = { UserID: SHARED_IPAD_USER, UserShortName: net9.userId, Topic: bare.topic, Token: Buffer.alloc(32, 7) };
    assert.equal((await bare.checkin("TokenUpdate", { ...squat, PushMagic: "EVIL" })).status, 200, "no session yet: nothing to check");
    const l = await login(bare, net9, "secret");
    assert.equal((await bare.userTokenUpdate({ ...net9, authToken: l.authToken })).status, 200);
    const enrollment = await server.api("GET", `/v1/enrollments/${encodeURIComponent(channel)}`);
    assert.equal(enrollment.json.type, "User");
    assert.notEqual(enrollment.json.push_magic, "EVIL");
    assert.equal(enrollment.json.user_short_name, "net9");
    const enrolled = await server.api("GET", `/v1/events?enrollment=${encodeURIComponent(channel)}&type=enrollment.enrolled`);
    assert.deepEqual(
      enrolled.json.events.map((e: { detail: { type: string } }) => e.detail.type),
      ["SharediPadUser", "User"],
      "the user's channel enrolls as its own",
    );
    // And the squatter's way back in now needs the user's AuthToken.
    assert.equal((await bare.checkin("TokenUpdate", { ...squat, PushMagic: "EVIL" })).status, 403);
  });

  test("a new password ends the user's AuthTokens at once; the same password again does not", async () => {
    const net6 = newUser("net6");
    await server.api("PUT", "/v1/users/net6", { password: "secret", guid: net6.guid });
    const l = await login(mac, net6, "secret");
    const user = { ...net6, authToken: l.authToken };
    assert.equal((await mac.report("Idle", mac.userKeys(user))).status, 200);
    const same = await server.api("PUT", "/v1/users/net6", { password: "secret" });
    assert.equal(same.json.sessions_ended, 0);
    assert.equal((await mac.report("Idle", mac.userKeys(user))).status, 200, "a script setting the same password logs no one out");
    const changed = await server.api("PUT", "/v1/users/net6", { password: "another" });
    assert.equal(changed.status, 200);
    assert.equal(changed.json.sessions_ended, 1);
    assert.equal((await mac.report("Idle", mac.userKeys(user))).status, 403);
    const fresh = await login(mac, net6, "another");
    assert.equal((await mac.report("Idle", mac.userKeys({ ...net6, authToken: fresh.authToken }))).status, 200);
    // An htdigest line with another password does the same.
    const ha1 = createHash("md5").update(`net6:${REALM}:third`).digest("hex");
    const imported = await server.api("POST", "/v1/users/import", `net6:${REALM}:${ha1}\n`);
    assert.equal(imported.json.sessions_ended, 1, imported.text);
    assert.equal((await mac.report("Idle", mac.userKeys({ ...net6, authToken: fresh.authToken }))).status, 403);
  });

  test("declining a user ends its sessions: its channel gets 410 at once", async () => {
    const net7 = newUser("net7");
    await server.api("PUT", "/v1/users/net7", { password: "secret", guid: net7.guid });
    const l = await login(mac2, net7, "secret");
    const user = { ...net7, authToken: l.authToken };
    assert.equal((await mac2.report("Idle", mac2.userKeys(user))).status, 200);
    const declined = await server.api("PUT", "/v1/users/net7", { state: "declined" });
    assert.equal(declined.json.sessions_ended, 1);
    assert.equal((await mac2.report("Idle", mac2.userKeys(user))).status, 410);
    const sessions = await server.api("GET", `/v1/user-sessions?device=${mac2.udid}`);
    assert.equal(sessions.json.sessions.find((s: { user_id: string }) => s.user_id === net7.userId).state, "declined");
  });

  test("no AuthToken, DigestResponse or digest reaches a log line", () => {
    const text = server.logs.join("\n");
    assert.doesNotMatch(text, /Digest username=/);
    assert.doesNotMatch(text, /response="/);
    assert.doesNotMatch(text, /"AuthToken":"[^"]/);
  });
});

describe("UserAuthenticate policies and challenge options", () => {
  test("zero-length: an empty challenge, and the user channel works without a token", async () => {
    const server = await startTestServer(["--userauth", "zero-length"]);
    const fleet = await testFleet(server.url);
    try {
      const mac = await fleet.device();
      await mac.enroll();
      const u = newUser("zl");
      const r = await mac.checkin("UserAuthenticate", { UserID: u.userId });
      assert.equal(r.status, 200);
      assert.equal(r.plist!.DigestChallenge, "");
      assert.equal((await mac.userTokenUpdate(u)).status, 200);
      assert.equal((await mac.report("Idle", mac.userKeys(u))).status, 200);
    } finally {
      fleet.close();
      await server.stop();
    }
  });

  test("decline: 410, unless the directory marks the user managed", async () => {
    const server = await startTestServer(["--userauth", "decline", "--digest-realm", REALM]);
    const fleet = await testFleet(server.url);
    try {
      const mac = await fleet.device();
      await mac.enroll();
      assert.equal((await mac.checkin("UserAuthenticate", { UserID: randomUUID() })).status, 410);
      const u = newUser("vip");
      await server.api("PUT", "/v1/users/vip", { password: "pw", guid: u.guid, state: "managed" });
      assert.notEqual((await login(mac, u, "pw")).authToken, "");
    } finally {
      fleet.close();
      await server.stop();
    }
  });

  test("zero-length: an entry with the user's GUID that is declined gets 410; a managed one is managed without a token, as everyone", async () => {
    const server = await startTestServer(["--userauth", "zero-length", "--digest-realm", REALM]);
    const fleet = await testFleet(server.url);
    try {
      const mac = await fleet.device();
      await mac.enroll();
      const no = newUser("zl-no");
      await server.api("PUT", "/v1/users/zl-no", { guid: no.guid, state: "declined" });
      assert.equal((await mac.checkin("UserAuthenticate", { UserID: no.userId })).status, 410);
      const vip = newUser("zl-vip");
      await server.api("PUT", "/v1/users/zl-vip", { password: "pw", guid: vip.guid });
      assert.equal((await mac.checkin("UserAuthenticate", { UserID: vip.userId })).plist!.DigestChallenge, "");
    } finally {
      fleet.close();
      await server.stop();
    }
  });

  test("an entry without a GUID is not seen at the first message (it names the user by GUID only), only by the response's user name", async () => {
    for (const policy of ["digest", "zero-length", "decline"]) {
      const server = await startTestServer(["--userauth", policy, "--digest-realm", REALM]);
      const fleet = await testFleet(server.url);
      try {
        const mac = await fleet.device();
        await mac.enroll();
        const declined = { userId: randomUUID().toUpperCase(), shortName: "noguid-declined" };
        const managed = { userId: randomUUID().toUpperCase(), shortName: "noguid-managed" };
        await server.api("PUT", "/v1/users/noguid-declined", { password: "pw", state: "declined" });
        await server.api("PUT", "/v1/users/noguid-managed", { password: "pw" });
        const first = await mac.checkin("UserAuthenticate", { UserID: declined.userId });
        const firstManaged = await mac.checkin("UserAuthenticate", { UserID: managed.userId });
        if (policy === "digest") {
          // Challenged like anyone; the response names the entry, which is declined: no token.
          assert.match(first.plist!.DigestChallenge as string, /^Digest nonce="/);
          assert.equal((await login(mac, declined, "pw")).authToken, "");
          const events = await server.api("GET", "/v1/events?type=userauth.failed");
          assert.deepEqual(events.json.events.at(-1).detail, { cause: "declined-user", short_name: "noguid-declined" });
          assert.notEqual((await login(mac, managed, "pw")).authToken, "");
        } else if (policy === "zero-length") {
          assert.equal(first.plist!.DigestChallenge, "", "declined, yet managed without a token");
          assert.equal(firstManaged.plist!.DigestChallenge, "", "not challenged");
        } else {
          assert.equal(first.status, 410);
          assert.equal(firstManaged.status, 410, "managed, yet declined");
        }
      } finally {
        fleet.close();
        await server.stop();
      }
    }
  });

  test("qop and the MD5-sess challenge, answered with MD5-sess", async () => {
    const server = await startTestServer(["--digest-realm", REALM, "--digest-qop", "--digest-md5-sess-challenge"]);
    const fleet = await testFleet(server.url);
    try {
      const mac = await fleet.device();
      await mac.enroll();
      const u = newUser("ad1");
      await server.api("PUT", "/v1/users/ad1", { password: "pw", guid: u.guid });
      const first = await mac.checkin("UserAuthenticate", { UserID: u.userId });
      assert.match(first.plist!.DigestChallenge as string, /^Digest nonce="[^"]+",realm="fusion\.home",qop="auth"$/);
      const sess = first.plist!.DigestMD5SessChallenge as string;
      assert.match(sess, /algorithm=MD5-sess/);
      const { nonce } = challengeParams(sess);
      const response = digestResponse({ username: "ad1", password: "pw", realm: REALM, nonce: nonce!, algorithm: "MD5-sess", qop: true });
      const second = await mac.checkin("UserAuthenticate", { UserID: u.userId, DigestResponse: response });
      assert.notEqual(second.plist!.AuthToken, "");
      // Offered: MD5 and MD5-sess; never SHA-256.
      assert.equal((await login(mac, u, "pw", { algorithm: "SHA-256", qop: true })).authToken, "");
      assert.notEqual((await login(mac, u, "pw", { qop: true })).authToken, "");
      // --digest-qop offers qop; an RFC 2069 answer without it is still taken (RFC 2617 keeps qop optional for those).
      assert.notEqual((await login(mac, u, "pw")).authToken, "");
    } finally {
      fleet.close();
      await server.stop();
    }
  });

  test("an algorithm not offered is refused where the webhook wants the login's events too (the general path)", async () => {
    const receiver = await WebhookReceiver.start();
    const server = await startTestServer(["--digest-realm", REALM, "--webhook-url", receiver.url, "--webhook-topics", "userauth.*"]);
    const fleet = await testFleet(server.url);
    try {
      const mac = await fleet.device();
      await mac.enroll();
      const u = newUser("hooked");
      await server.api("PUT", "/v1/users/hooked", { password: "pw", guid: u.guid });
      assert.equal((await login(mac, u, "pw", { algorithm: "SHA-256" })).authToken, "");
      const events = await server.api("GET", "/v1/events?type=userauth.failed");
      assert.deepEqual(events.json.events.at(-1).detail, { cause: "algorithm-not-offered", short_name: "hooked" });
      assert.equal((await login(mac, u, "pw", { qop: true })).authToken, "");
      const again = await server.api("GET", "/v1/events?type=userauth.failed");
      assert.deepEqual(again.json.events.at(-1).detail, { cause: "qop-not-offered", short_name: "hooked" });
      assert.notEqual((await login(mac, u, "pw")).authToken, "");
    } finally {
      fleet.close();
      await server.stop();
      await receiver.down();
    }
  });

  test("extra methods: a GET digest is accepted when GET is listed, and the log names it", async () => {
    const server = await startTestServer(["--digest-realm", REALM, "--digest-extra-methods", "GET"]);
    const fleet = await testFleet(server.url);
    try {
      const mac = await fleet.device();
      await mac.enroll();
      const u = newUser("getter");
      await server.api("PUT", "/v1/users/getter", { password: "pw", guid: u.guid });
      assert.notEqual((await login(mac, u, "pw", { method: "GET" })).authToken, "");
      assert.ok(server.logs.some((l) => l.includes("digest matched with an extra method") && l.includes('"method":"GET"')));
    } finally {
      fleet.close();
      await server.stop();
    }
  });

  test("an htdigest file imports, and its users log in", async () => {
    const server = await startTestServer(["--digest-realm", REALM]);
    const fleet = await testFleet(server.url);
    try {
      // The format Apache's htdigest tool writes: user:realm:MD5(user:realm:password)
      const line = (user: string, realm: string, pw: string) =>
        `${user}:${realm}:${createHash("md5").update(`${user}:${realm}:${pw}`).digest("hex")}`;
      const file =
        [line("alice", REALM, "wonder"), line("bob", "other.realm", "x"), "broken line", line("carol", REALM, "c")].join("\n") + "\n";
      const r = await server.api("POST", "/v1/users/import", file);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.created, 2);
      assert.deepEqual(r.json.other_realms, [{ username: "bob", realm: "other.realm" }]);
      assert.equal(r.json.errors.length, 1);
      assert.equal((await server.api("GET", "/v1/users/alice")).json.digests[0].realm, REALM);
      const mac = await fleet.device();
      await mac.enroll();
      const alice = { userId: randomUUID().toUpperCase(), shortName: "alice" };
      assert.notEqual((await login(mac, alice, "wonder")).authToken, "");
      assert.equal((await login(mac, alice, "wrong")).authToken, "");
    } finally {
      fleet.close();
      await server.stop();
    }
  });
});

await forEachBackend("UserAuthenticate failure limits: brute force is stopped, no Mac locks a user out elsewhere", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;

  before(async () => {
    server = await startTestServer(["--digest-realm", REALM, "--userauth-max-failures", "3"], backend);
    fleet = await testFleet(server.url);
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  async function mac(): Promise<SimDevice> {
    const d = await fleet.device();
    await d.enroll();
    return d;
  }
  async function user(shortName: string): Promise<SimUser & { guid: string }> {
    const u = newUser(shortName);
    assert.equal((await server.api("PUT", `/v1/users/${shortName}`, { password: "secret", guid: u.guid })).status, 201);
    return u;
  }
  async function causes(d: SimDevice, u: SimUser): Promise<string[]> {
    const r = await server.api("GET", `/v1/events?type=userauth.failed&enrollment=${encodeURIComponent(`${d.udid}:${u.userId}`)}`);
    return r.json.events.map((e: { detail: { cause: string } }) => e.detail.cause);
  }

  test("wrong digests for V from Mac A stop Mac A only: V still logs in on Mac B", async () => {
    const [a, b] = [await mac(), await mac()];
    const v = await user("lock-v");
    for (let i = 0; i < 6; i++) assert.equal((await login(a, v, "wrong")).authToken, "");
    assert.notEqual((await login(b, v, "secret")).authToken, "", "V logs in on Mac B with the right password");
    assert.equal((await login(a, v, "secret")).authToken, "", "Mac A stays stopped for V");
    assert.deepEqual(await causes(a, v), [
      "wrong-password",
      "wrong-password",
      "wrong-password",
      "rate-limited",
      "rate-limited",
      "rate-limited",
      "rate-limited",
    ]);
    assert.notEqual((await login(b, v, "secret")).authToken, "", "and again on Mac B");
  });

  test("a response sent again as it was is refused but not counted again", async () => {
    const a = await mac();
    const v = await user("resend-v");
    const first = await a.checkin("UserAuthenticate", { UserID: v.userId });
    const { nonce } = challengeParams(first.plist!.DigestChallenge as string);
    const wrong = digestResponse({ username: v.shortName, password: "wrong", realm: REALM, nonce: nonce! });
    for (let i = 0; i < 6; i++) {
      const r = await a.checkin("UserAuthenticate", { UserID: v.userId, DigestResponse: wrong });
      assert.equal(r.plist!.AuthToken, "");
    }
    assert.deepEqual(await causes(a, v), ["wrong-password", "resent", "resent", "resent", "resent", "resent"]);
    const other = digestResponse({ username: v.shortName, password: "other", realm: REALM, nonce: nonce! });
    assert.equal((await a.checkin("UserAuthenticate", { UserID: v.userId, DigestResponse: other })).plist!.AuthToken, "");
    assert.equal((await causes(a, v)).at(-1), "nonce-replayed", "another response on a used nonce is still a failure");
    assert.notEqual((await login(a, v, "secret")).authToken, "", "two failures counted, not eight: the right password works");
  });

  test("one Mac guessing many users is stopped for users new to it, not for a user who logged in there before", async () => {
    const [a, b] = [await mac(), await mac()];
    const known = await user("mac-known");
    assert.notEqual((await login(a, known, "secret")).authToken, "");
    for (let u = 0; u < 4; u++) {
      const guessed = newUser(`mac-guess-${u}`);
      for (let i = 0; i < 3; i++) assert.equal((await login(a, guessed, "wrong")).authToken, "");
    }
    const fresh = await user("mac-fresh");
    assert.equal((await login(a, fresh, "secret")).authToken, "", "12 failures on Mac A: a user new to it is refused unchecked");
    assert.equal((await causes(a, fresh)).at(-1), "rate-limited-mac");
    assert.notEqual((await login(a, known, "secret")).authToken, "", "a user who logged in on Mac A before still can");
    assert.notEqual((await login(b, fresh, "secret")).authToken, "", "and the new user logs in on another Mac");
  });

  test("one user guessed at from many Macs: past the ceiling only Macs the user logged in on may try", async () => {
    const home = await mac();
    const v = await user("fleet-v");
    assert.notEqual((await login(home, v, "secret")).authToken, "");
    for (let m = 0; m < 4; m++) {
      const attacker = await mac();
      for (let i = 0; i < 5; i++) assert.equal((await login(attacker, v, "wrong")).authToken, "");
    }
    const fresh = await mac();
    assert.equal((await login(fresh, v, "secret")).authToken, "", "12 failures from 4 Macs: a Mac new to V is refused unchecked");
    assert.equal((await causes(fresh, v)).at(-1), "rate-limited-user");
    assert.notEqual((await login(home, v, "secret")).authToken, "", "V's own Mac is not locked out");
  });
});

describe("UserAuthenticate failure limits across two servers on one PostgreSQL", {
  skip: (await postgresReachable()) ? false : "PostgreSQL not reachable",
}, () => {
  let db: { url: string; drop(): Promise<void> };
  let servers: TestServer[] = [];
  let fleet: TestFleet;
  let transports: Transport[] = [];
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-userauth-mp-"));

  before(async () => {
    db = await createTestDatabase();
    const args = ["--storage", db.url, "--data-dir", dataDir, "--digest-realm", REALM, "--userauth-max-failures", "3"];
    servers = [await startTestServer(args), await startTestServer(args)];
    fleet = await testFleet(servers[0]!.url);
    transports = servers.map((s) => new Transport(s.url));
  });
  after(async () => {
    fleet.close();
    for (const t of transports) t.close();
    for (const s of servers) await s.stop();
    await db?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** A Mac whose requests alternate between the two servers: each login's challenge and response reach different processes. */
  async function alternatingMac(): Promise<SimDevice> {
    const identity = await issueDeviceIdentity(fleet.ca, { commonName: `mp-${randomUUID()}`, keyPair: fleet.key });
    const alternating = new SimDevice({
      transport: new RoundRobin(transports),
      identity,
      mode: { kind: "header", header: "x-client-cert" },
    });
    await alternating.enroll();
    return alternating;
  }

  test("per (user, Mac) counts and resent responses are judged the same by both processes", async () => {
    const a = await alternatingMac();
    const b = await alternatingMac();
    const v = newUser("mp-v");
    assert.equal((await servers[0]!.api("PUT", "/v1/users/mp-v", { password: "secret", guid: v.guid })).status, 201);

    const first = await a.checkin("UserAuthenticate", { UserID: v.userId });
    const { nonce } = challengeParams(first.plist!.DigestChallenge as string);
    const wrong = digestResponse({ username: "mp-v", password: "wrong", realm: REALM, nonce: nonce! });
    for (let i = 0; i < 4; i++)
      assert.equal((await a.checkin("UserAuthenticate", { UserID: v.userId, DigestResponse: wrong })).plist!.AuthToken, "");
    for (let i = 0; i < 2; i++) assert.equal((await login(a, v, "wrong")).authToken, "");
    assert.equal((await login(a, v, "secret")).authToken, "", "three failures, whichever process judged them: Mac A is stopped for V");
    assert.notEqual((await login(b, v, "secret")).authToken, "", "V logs in on Mac B");
  });
});

/**
 * Two processes on one store, as during a rolling restart that turns
 * --digest-md5-sess-challenge and --digest-qop on: "plain" offers MD5 without
 * qop, "ad" also qop and MD5-sess. One Mac's challenge and response can reach
 * either; the response is held to what its own challenge offered.
 */
async function rollingRestart(backend: Backend) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-userauth-rr-"));
  const db = backend === "postgres" ? await createTestDatabase() : undefined;
  const shared = ["--data-dir", dataDir, "--digest-realm", REALM, ...(db ? ["--storage", db.url] : [])];
  const plain = await startTestServer(shared);
  const ad = await startTestServer([...shared, "--digest-qop", "--digest-md5-sess-challenge"]);
  const fleet = await testFleet(plain.url);
  const transports = [new Transport(plain.url), new Transport(ad.url)];
  return {
    plain,
    ad,
    /** A Mac whose next request goes to the server `route.to` names (0: plain, 1: ad). */
    async mac() {
      const identity = await issueDeviceIdentity(fleet.ca, { commonName: `rr-${randomUUID()}`, keyPair: fleet.key });
      const route: Sender & { to: number } = { to: 0, send: (o) => transports[route.to]!.send(o) };
      const d = new SimDevice({ transport: route, identity, mode: { kind: "header", header: "x-client-cert" } });
      await d.enroll();
      return { d, route };
    },
    async close() {
      fleet.close();
      for (const t of transports) t.close();
      await plain.stop();
      await ad.stop();
      await db?.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

await forEachBackend("UserAuthenticate through a rolling restart that changes what challenges offer", (backend) => {
  let rr: Awaited<ReturnType<typeof rollingRestart>>;
  before(async () => {
    rr = await rollingRestart(backend);
  });
  after(async () => {
    await rr?.close();
  });

  /** Challenged by one server, answered at the other (or the same), with the options given; the AuthToken and the last failure's cause. */
  async function handshake(
    from: "plain" | "ad",
    at: "plain" | "ad",
    opts: { algorithm?: "MD5" | "MD5-sess"; qop?: boolean },
    before?: (enrollmentId: string) => Promise<void>,
  ): Promise<{ authToken: string; cause: string | undefined }> {
    const { d, route } = await rr.mac();
    const u = newUser(`rr-${randomUUID().slice(0, 8)}`);
    assert.equal((await rr.plain.api("PUT", `/v1/users/${u.shortName}`, { password: "pw", guid: u.guid })).status, 201);
    route.to = from === "plain" ? 0 : 1;
    const first = await d.checkin("UserAuthenticate", { UserID: u.userId });
    const challenge = (opts.algorithm === "MD5-sess" ? first.plist!.DigestMD5SessChallenge : first.plist!.DigestChallenge) as string;
    const { nonce } = challengeParams(challenge ?? (first.plist!.DigestChallenge as string));
    await before?.(`${d.udid}:${u.userId}`);
    route.to = at === "plain" ? 0 : 1;
    const response = digestResponse({ username: u.shortName, password: "pw", realm: REALM, nonce: nonce!, ...opts });
    const second = await d.checkin("UserAuthenticate", { UserID: u.userId, DigestResponse: response });
    const events = await rr.plain.api("GET", `/v1/events?type=userauth.failed&enrollment=${encodeURIComponent(`${d.udid}:${u.userId}`)}`);
    return { authToken: second.plist!.AuthToken as string, cause: events.json.events.at(-1)?.detail.cause };
  }

  test("MD5-sess answering a challenge that did not offer it is refused by a process that offers it", async () => {
    assert.deepEqual(await handshake("plain", "ad", { algorithm: "MD5-sess", qop: true }), {
      authToken: "",
      cause: "algorithm-not-offered",
    });
    const ok = await handshake("ad", "plain", { algorithm: "MD5-sess", qop: true });
    assert.notEqual(ok.authToken, "", "offered by its challenge: taken by a process that does not offer it");
  });

  test("qop answering a challenge that offered none is refused by a process that offers it, and taken where its challenge did", async () => {
    assert.deepEqual(await handshake("plain", "ad", { qop: true }), { authToken: "", cause: "qop-not-offered" });
    assert.deepEqual(await handshake("plain", "plain", { qop: true }), { authToken: "", cause: "qop-not-offered" });
    assert.notEqual((await handshake("ad", "plain", { qop: true })).authToken, "");
    assert.notEqual((await handshake("ad", "plain", {})).authToken, "", "no qop where it was offered: an RFC 2069 answer");
    assert.notEqual((await handshake("plain", "ad", {})).authToken, "");
  });

  test("a challenge whose session records nothing (written before the upgrade) is held to the receiving process's offers, as before", async () => {
    const forget = (server: TestServer) => (enrollmentId: string) =>
      server.store.db
        .run("UPDATE user_sessions SET challenge_nonce = NULL, challenge_offers = NULL WHERE enrollment_id = ?", [enrollmentId])
        .then(() => {});
    assert.notEqual((await handshake("plain", "ad", { algorithm: "MD5-sess", qop: true }, forget(rr.plain))).authToken, "");
    assert.deepEqual(await handshake("ad", "plain", { algorithm: "MD5-sess", qop: true }, forget(rr.plain)), {
      authToken: "",
      cause: "algorithm-not-offered",
    });
    assert.notEqual((await handshake("plain", "plain", { qop: true }, forget(rr.plain))).authToken, "", "qop was not checked before");
    assert.notEqual((await handshake("ad", "ad", {}, forget(rr.plain))).authToken, "");
  });
});

describe("UserAuthenticate flags", () => {
  test("no failure limit or window of 0, no nonce ttl under 1s, only HTTP methods as extra ones: refused at start naming the flag", () => {
    const refused: Array<[string[], RegExp]> = [
      [
        ["--userauth-max-failures", "0"],
        /^--userauth-max-failures 0: expected a whole number of 1 or more \(this limit cannot be turned off\)$/,
      ],
      [["--userauth-failure-window", "0"], /^--userauth-failure-window must be greater than 0$/],
      [["--digest-nonce-ttl", "0s"], /^--digest-nonce-ttl 0s: expected 1s or more \(a nonce keeps its time in whole seconds\)$/],
      // A nonce's time is in whole seconds: a shorter life could not be told from none.
      [["--digest-nonce-ttl", "500ms"], /^--digest-nonce-ttl 500ms: expected 1s or more \(a nonce keeps its time in whole seconds\)$/],
      [["--digest-nonce-ttl", "0.9s"], /^--digest-nonce-ttl 0.9s: expected 1s or more/],
      [
        ["--digest-extra-methods", "GET,FOO"],
        /^--digest-extra-methods FOO: not an HTTP method; expected some of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, comma-separated$/,
      ],
    ];
    for (const [args, message] of refused) {
      assert.throws(
        () => parseServeArgs(args, {}),
        (err) => err instanceof ConfigError && message.test(err.message),
        args.join(" "),
      );
    }
    assert.throws(() => parseServeArgs([], { ORCHARD_USERAUTH_MAX_FAILURES: "0" }), ConfigError, "from the environment too");

    const ok = parseServeArgs(["--userauth-max-failures", "1", "--digest-extra-methods", " get, Post ", "--digest-nonce-ttl", "5s"], {});
    assert.deepEqual([ok.userAuth.maxFailures, ok.userAuth.extraMethods], [1, ["GET", "POST"]]);
    assert.equal(ok.userAuth.nonceTtlMs, 5000);
    assert.equal(parseServeArgs(["--digest-nonce-ttl", "1000ms"], {}).userAuth.nonceTtlMs, 1000, "1s is the least");
    assert.throws(() => parseServeArgs([], { ORCHARD_DIGEST_NONCE_TTL: "999ms" }), ConfigError, "from the environment too");
    assert.equal(parseServeArgs(["--userauth-max-messages", "0"], {}).userAuth.maxMessagesPerMac, 0, "its 0 is no limit");
  });

  test("orchard serve --userauth-max-failures 0 and --digest-nonce-ttl 500ms exit 2 with one usage line", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-userauth-flags-"));
    try {
      // A server that starts after all is killed, and fails the test rather than holding it.
      const run = await runOrchard(["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--userauth-max-failures", "0"], {
        timeoutMs: 20_000,
      });
      assert.equal(run.code, 2, run.stderr);
      assert.equal(
        run.stderr,
        "orchard: --userauth-max-failures 0: expected a whole number of 1 or more (this limit cannot be turned off)\n",
      );
      const ttl = await runOrchard(["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--digest-nonce-ttl", "500ms"], {
        timeoutMs: 20_000,
      });
      assert.equal(ttl.code, 2, ttl.stderr);
      assert.equal(ttl.stderr, "orchard: --digest-nonce-ttl 500ms: expected 1s or more (a nonce keeps its time in whole seconds)\n");
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
