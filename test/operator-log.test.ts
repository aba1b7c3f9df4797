// The log says what an operator looks for, one info line each: a device
// enrolled or checked out, a network user logged in or refused (with the
// cause), a command answered (with its status). Never a secret.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { challengeParams, digestResponse } from "./support/digest-client.ts";
import { testFleet } from "./support/fleet.ts";
import { commandPlist } from "./support/mdm.ts";
import { startTestServer } from "./support/server.ts";

test("one info line for each thing an operator looks for", async () => {
  const server = await startTestServer(["--log-level", "info", "--digest-realm", "fusion.home"]);
  const fleet = await testFleet(server.url);
  try {
    const mac = await fleet.device();
    await mac.enroll();
    const uuid = randomUUID().toUpperCase();
    assert.equal((await server.api("PUT", `/v1/enqueue/${mac.udid}?nopush=1`, commandPlist("DeviceInformation", uuid))).status, 200);
    assert.equal((await mac.report("Idle")).status, 200);
    assert.equal((await mac.report("Acknowledged", { CommandUUID: uuid })).status, 200);

    const guid = randomUUID().toUpperCase();
    assert.equal((await server.api("PUT", "/v1/users/net1", { password: "right", guid })).status, 201);
    const user = { userId: guid, shortName: "net1", longName: "Net One" };
    const logins: string[] = [];
    for (const password of ["wrong", "right"]) {
      const first = await mac.checkin("UserAuthenticate", { UserID: guid });
      const { nonce, realm } = challengeParams(first.plist!.DigestChallenge as string);
      const response = digestResponse({ username: user.shortName, password, realm: realm!, nonce: nonce! });
      const second = await mac.checkin("UserAuthenticate", { UserID: guid, DigestResponse: response });
      logins.push(second.plist!.AuthToken as string, response);
    }
    assert.equal((await mac.checkin("CheckOut")).status, 200);

    const lines = server.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const one = (msg: string) => {
      const found = lines.filter((l) => l.msg === msg);
      assert.equal(found.length, 1, `one "${msg}" line: ${found.length}`);
      assert.equal(found[0]!.level, 30, `"${msg}" is info`);
      return found[0]!;
    };
    assert.equal(one("device authenticated (enrolling)").enrollmentId, mac.udid);
    assert.deepEqual(pick(one("enrolled"), "enrollmentId", "type"), { enrollmentId: mac.udid, type: "Device" });
    assert.deepEqual(pick(one("command answered"), "enrollmentId", "commandUuid", "status"), {
      enrollmentId: mac.udid,
      commandUuid: uuid,
      status: "Acknowledged",
    });
    assert.deepEqual(pick(one("network user refused"), "cause", "shortName"), { cause: "wrong-password", shortName: "net1" });
    assert.deepEqual(pick(one("network user logged in"), "enrollmentId", "shortName"), {
      enrollmentId: `${mac.udid}:${guid}`,
      shortName: "net1",
    });
    assert.equal(one("device checked out (management profile removed)").enrollmentId, mac.udid);

    const text = server.logs.join("\n");
    for (const secret of [...logins.filter(Boolean), "test-api-key-0123456789abcdef"])
      assert.ok(!text.includes(secret), "no AuthToken, digest response or key in the log");
  } finally {
    fleet.close();
    await server.stop();
  }
});

function pick(o: Record<string, unknown>, ...keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}
