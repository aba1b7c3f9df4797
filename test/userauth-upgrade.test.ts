import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { issueDeviceIdentity } from "../src/identity/testing/pki.ts";
import { SimDevice } from "../src/sim/device.ts";
import { Transport, type Sender } from "../src/sim/transport.ts";
import { openStore } from "../src/store/index.ts";
import { forDialect } from "../src/store/migrations/index.ts";
import { challengeParams, digestResponse } from "./support/digest-client.ts";
import { testFleet } from "./support/fleet.ts";
import { createTestDatabase, forEachBackend } from "./support/postgres.ts";
import { startTestServer } from "./support/server.ts";

const REALM = "fusion.home";

// An upgrade across migrations 29 (what a challenge offered, recorded with its
// session) and 30 (the unused SHA-256 digests deleted), in the middle of a login.
await forEachBackend("UserAuthenticate across the upgrade to recorded challenges", (backend) => {
  test("a login challenged before the upgrade completes after it; the SHA-256 digests are gone, the MD5 ones kept", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-userauth-upgrade-"));
    const database = backend === "postgres" ? await createTestDatabase() : undefined;
    const storage = database?.url ?? `sqlite:${path.join(dir, "orchard.db")}`;
    const args = ["--data-dir", dir, "--storage", storage, "--digest-realm", REALM];
    try {
      const old = await startTestServer(args);
      const fleet = await testFleet(old.url);
      let transport = new Transport(old.url);
      const route: Sender = { send: (o) => transport.send(o) };
      const identity = await issueDeviceIdentity(fleet.ca, { commonName: `up-${randomUUID()}`, keyPair: fleet.key });
      const mac = new SimDevice({ transport: route, identity, mode: { kind: "header", header: "x-client-cert" } });
      await mac.enroll();
      const userId = randomUUID().toUpperCase();
      assert.equal((await old.api("PUT", "/v1/users/up1", { password: "pw", guid: userId })).status, 201);
      const first = await mac.checkin("UserAuthenticate", { UserID: userId });
      const { nonce } = challengeParams(first.plist!.DigestChallenge as string);
      transport.close();
      fleet.close();
      await old.stop();

      // The store as the Orchard before these migrations left it: no record of the challenge, and SHA-256 digests.
      const before = await openStore(storage, dir);
      await before.db.exec(
        forDialect(
          "ALTER TABLE user_sessions DROP COLUMN challenge_nonce; ALTER TABLE user_sessions DROP COLUMN challenge_offers;",
          before.db.dialect,
        ),
      );
      await before.db.run("DELETE FROM schema_migrations WHERE version IN (29, 30)");
      await before.db.run("INSERT INTO directory_digests (short_name, realm, algorithm, ha1) VALUES (?, ?, ?, ?), (?, ?, ?, ?)", [
        "up1",
        REALM,
        "SHA-256",
        "b".repeat(64),
        "up1",
        "other.realm",
        "SHA-256",
        "c".repeat(64),
      ]);
      await before.close();

      const upgraded = await startTestServer(args);
      try {
        transport = new Transport(upgraded.url);
        assert.equal((await upgraded.store.userSessions.get(`${mac.udid}:${userId}`))?.challenge, null, "a row from before: no record");
        const response = digestResponse({ username: "up1", password: "pw", realm: REALM, nonce: nonce! });
        const second = await mac.checkin("UserAuthenticate", { UserID: userId, DigestResponse: response });
        assert.match(second.plist!.AuthToken as string, /^.{44}$/, "the challenge sent before the upgrade is answered after it");
        const user = await upgraded.api("GET", "/v1/users/up1");
        assert.deepEqual(user.json.digests, [{ realm: REALM, algorithm: "MD5" }]);
      } finally {
        transport.close();
        await upgraded.stop();
      }
    } finally {
      await database?.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
