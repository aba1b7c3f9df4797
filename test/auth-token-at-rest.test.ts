// A network user's AuthToken is a live secret kept only as a hash
// (docs/architecture.md): the messages Orchard keeps as the device sent them
// (a command report, the last TokenUpdate, the Authenticate) are stored
// without it, so an auditor reading a command's result never sees it; and
// migration 27 takes it out of the rows stored before. Both stores.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { openStore } from "../src/store/index.ts";
import { challengeParams, digestResponse } from "./support/digest-client.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist } from "./support/mdm.ts";
import { createTestDatabase, forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const REALM = "at-rest";

/** An XML plist as a Mac writes it, with an AuthToken element in it. */
function message(authToken: string, rest: string): Buffer {
  return Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n` +
      `<plist version="1.0">\n<dict>\n\t<key>AuthToken</key>\n\t<string>${authToken}</string>\n${rest}</dict>\n</plist>\n`,
  );
}

await forEachBackend("AuthTokens at rest", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  before(async () => {
    server = await startTestServer(["--digest-realm", REALM], backend);
    fleet = await testFleet(server.url);
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  test("a network user's command result, as an auditor reads it, and the TokenUpdate kept: no AuthToken", async () => {
    const mac = await fleet.device();
    await mac.enroll();
    const guid = randomUUID().toUpperCase();
    assert.equal((await server.api("PUT", "/v1/users/atrest", { password: "secret", guid })).status, 201);
    const first = await mac.checkin("UserAuthenticate", { UserID: guid });
    const { nonce } = challengeParams(first.plist!.DigestChallenge as string);
    const second = await mac.checkin("UserAuthenticate", {
      UserID: guid,
      DigestResponse: digestResponse({ username: "atrest", password: "secret", realm: REALM, nonce: nonce! }),
    });
    const authToken = second.plist!.AuthToken as string;
    assert.ok(authToken && authToken.length > 20, "a token was issued");
    const user = { userId: guid, shortName: "atrest", authToken };
    assert.equal((await mac.userTokenUpdate(user)).status, 200);
    const channel = `${mac.udid}:${guid}`;
    const uuid = randomUUID().toUpperCase();
    const queued = await server.api("PUT", `/v1/enqueue/${encodeURIComponent(channel)}?nopush=1`, commandPlist("ProfileList", uuid));
    assert.equal(queued.status, 200, queued.text);
    assert.equal((await mac.report("Idle", mac.userKeys(user))).status, 200);
    const ack = await mac.report("Acknowledged", { ...mac.userKeys(user), CommandUUID: uuid, ProfileList: [] });
    assert.equal(ack.status, 200);

    assert.equal(
      (await server.api("POST", "/v1/operators", { name: "at-rest-auditor", role: "auditor", password: "auditor password 12345" })).status,
      201,
    );
    const token = (await server.api("POST", "/v1/tokens", { operator: "at-rest-auditor", label: "at rest" })).json.token as string;
    const read = await fetch(`${server.url}/v1/commands/${uuid}`, { headers: { authorization: `Bearer ${token}` } });
    const text = await read.text();
    assert.equal(read.status, 200, text);
    const result = JSON.parse(text).results[0];
    assert.equal(result.status, "Acknowledged");
    assert.deepEqual(result.result.ProfileList, [], "the rest of the result is shown");
    assert.equal(result.result.UserID, guid);
    assert.ok(!("AuthToken" in result.result), JSON.stringify(result.result));
    assert.ok(!text.includes(authToken), "the auditor never sees the token");

    const stored = await server.store.db.get<{ result: Buffer }>("SELECT result FROM command_queue WHERE command_uuid = ?", [uuid]);
    assert.ok(!Buffer.from(stored!.result).includes(authToken));
    const kept = await server.store.db.get<{ m: Buffer }>("SELECT token_update_message AS m FROM enrollments WHERE id = ?", [channel]);
    const tokenUpdate = Buffer.from(kept!.m).toString();
    assert.ok(!tokenUpdate.includes(authToken) && !tokenUpdate.includes("<key>AuthToken</key>"), tokenUpdate);
    assert.match(tokenUpdate, /<key>MessageType<\/key>\s*<string>TokenUpdate<\/string>/, "the rest of the message stays");
    // The token still works: only its copies are gone.
    assert.equal((await mac.report("Idle", mac.userKeys(user))).status, 200);
  });

  test("migration 27 takes the AuthToken out of the rows stored before, and changes no other row", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-auth-token-scrub-"));
    const database = backend === "postgres" ? await createTestDatabase() : undefined;
    const url = database?.url ?? `sqlite:${path.join(dir, "orchard.db")}`;
    const token = "c2VjcmV0LXRva2VuLW9mLWEtbmV0d29yay11c2Vy";
    const withToken = message(token, "\t<key>Status</key>\n\t<string>Acknowledged</string>\n");
    const without = message("x", "")
      .toString()
      .replace(/\t<key>AuthToken<\/key>\n\t<string>x<\/string>\n/, "");
    const plain = Buffer.from(`${without}<!-- ${"a".repeat(100)} -->`);
    try {
      const old = await openStore(url, dir);
      const now = Date.now();
      const sql = [
        [
          "INSERT INTO devices (id, serial_number, cert_fingerprint, authenticate_message, authenticated_at, created_at) VALUES (?, 'S1', 'fp', ?, ?, ?)",
          ["MAC-1", plain, now, now],
        ],
        [
          `INSERT INTO enrollments (id, device_id, type, enabled, topic, push_token, push_magic, token_update_message, created_at, updated_at)
           VALUES (?, 'MAC-1', ?, 1, 't', 'aa', 'm', ?, ?, ?)`,
          ["MAC-1", "Device", plain, now, now],
        ],
        [
          `INSERT INTO enrollments (id, device_id, type, user_id, enabled, topic, push_token, push_magic, token_update_message, created_at, updated_at)
           VALUES (?, 'MAC-1', 'User', 'U', 1, 't', 'aa', 'm', ?, ?, ?)`,
          ["MAC-1:U", withToken, now, now],
        ],
        ["INSERT INTO commands (command_uuid, request_type, command, created_at) VALUES ('C1', 'ProfileList', ?, ?)", [plain, now]],
        [
          "INSERT INTO command_queue (enrollment_id, command_uuid, status, active, result, created_at, updated_at) VALUES ('MAC-1:U', 'C1', 'Acknowledged', 0, ?, ?, ?)",
          [withToken, now, now],
        ],
        [
          "INSERT INTO command_queue (enrollment_id, command_uuid, status, active, result, created_at, updated_at) VALUES ('MAC-1', 'C1', 'Acknowledged', 0, ?, ?, ?)",
          [plain, now, now],
        ],
      ] as const;
      for (const [s, params] of sql) await old.db.run(s, params as never);
      // As a store before migration 27 was.
      await old.db.run("DELETE FROM schema_migrations WHERE version = 27");
      await old.close();

      const store = await openStore(url, dir);
      try {
        const results = await store.db.all<{ enrollment_id: string; result: Buffer }>(
          "SELECT enrollment_id, result FROM command_queue ORDER BY enrollment_id",
        );
        assert.deepEqual(Buffer.from(results[0]!.result), plain, "a row without a token is as it was");
        const scrubbed = Buffer.from(results[1]!.result).toString();
        assert.ok(!scrubbed.includes(token) && !scrubbed.includes("AuthToken"), scrubbed);
        assert.equal(scrubbed, withToken.toString().replace(`<key>AuthToken</key>\n\t<string>${token}</string>\n\t`, ""));
        const tokenUpdates = await store.db.all<{ id: string; m: Buffer }>(
          "SELECT id, token_update_message AS m FROM enrollments ORDER BY id",
        );
        assert.deepEqual(Buffer.from(tokenUpdates[0]!.m), plain);
        assert.ok(!Buffer.from(tokenUpdates[1]!.m).includes(token));
        assert.ok((await store.db.get("SELECT 1 AS x FROM schema_migrations WHERE version = 27")) !== undefined);
      } finally {
        await store.close();
      }
    } finally {
      await database?.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
