// A network user's channel echoes the AuthToken Orchard issued in every
// request: the webhook's raw_payload (and the outbox row) must not carry it,
// while the rest of the device's bytes stay as sent.
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { test } from "node:test";
import { escapedPemHeader } from "../src/identity/testing/pki.ts";
import { parsePlistDict, serializePlist, type PlistDict } from "../src/plist/index.ts";
import { challengeParams, digestResponse } from "./support/digest-client.ts";
import { testFleet } from "./support/fleet.ts";
import { CHECKIN_TYPE, COMMAND_TYPE, identity, waitFor } from "./support/mdm.ts";
import { startTestServer } from "./support/server.ts";
import { WebhookReceiver } from "./support/webhook-receiver.ts";

const REALM = "rev.test";
test("the AuthToken Orchard issued never reaches a webhook body or the outbox; the rest of raw_payload is the device's bytes", async () => {
  const receiver = await WebhookReceiver.start();
  const server = await startTestServer(["--digest-realm", REALM, "--webhook-url", receiver.url, "--webhook-backoff", "50ms"]);
  const fleet = await testFleet(server.url);
  try {
    const id = await identity(fleet, "rev-mac");
    const udid = randomUUID().toUpperCase();
    const headers = { "x-client-cert": escapedPemHeader(id.certPem) };
    const send = async (body: PlistDict, path = "/checkin", type = CHECKIN_TYPE) => {
      const res = await fleet.transport.send({
        method: "PUT",
        path,
        headers: { "content-type": type, ...headers },
        body: Buffer.from(serializePlist({ UDID: udid, ...body })),
      });
      assert.equal(res.status, 200, res.body.toString());
      return res.body.length && res.body[0] === 0x3c ? parsePlistDict(res.body) : undefined;
    };
    await send({ MessageType: "Authenticate", Topic: "com.apple.mgmt.External.x", SerialNumber: "REV1" });
    await send({ MessageType: "TokenUpdate", Topic: "com.apple.mgmt.External.x", Token: randomBytes(32), PushMagic: "M" });
    const password = "pw-" + randomBytes(8).toString("hex");
    const guid = randomUUID().toUpperCase();
    assert.equal((await server.api("PUT", "/v1/users/net1", { password, guid, full_name: "Net One" })).status, 201);
    const user = { UserID: guid, UserShortName: "net1", UserLongName: "Net One" };
    const nonce = challengeParams((await send({ MessageType: "UserAuthenticate", ...user }))!.DigestChallenge as string).nonce!;
    const good = digestResponse({ username: "net1", password, realm: REALM, nonce });
    const token = (await send({ MessageType: "UserAuthenticate", ...user, DigestResponse: good }))!.AuthToken as string;
    assert.ok(token.length > 20);
    await send({
      MessageType: "TokenUpdate",
      Topic: "com.apple.mgmt.External.x",
      Token: randomBytes(32),
      PushMagic: "UM",
      ...user,
      AuthToken: token,
    });
    await send({ MessageType: "DeclarativeManagement", Endpoint: "tokens", ...user, AuthToken: token });
    await send({ Status: "Idle", ...user, AuthToken: token }, "/mdm", COMMAND_TYPE);
    await waitFor("events", () => receiver.received.filter((r) => r.json.topic === "mdm.Connect").length >= 1);
    const leaking = receiver.received.filter((r) => {
      const inner = r.json.checkin_event ?? r.json.acknowledge_event;
      return inner && Buffer.from(inner.raw_payload, "base64").toString("utf8").includes(token);
    });
    assert.deepEqual(
      leaking.map((r) => r.json.topic),
      [],
      "the AuthToken Orchard issued is in webhook bodies",
    );
    // The user channel's events arrived, with everything else the device sent.
    const dm = receiver.received.find((r) => r.json.topic === "mdm.DeclarativeManagement");
    assert.ok(dm, "the user channel's DeclarativeManagement event");
    const raw = parsePlistDict(Buffer.from(dm.json.checkin_event.raw_payload, "base64"));
    assert.equal(raw.Endpoint, "tokens");
    assert.equal(raw.UserID, guid);
    assert.equal(raw.AuthToken, undefined);
    // Nor in an outbox row still waiting (none should be, once delivered: check the table whatever it holds).
    const rows = await server.store.db.all<{ body: string }>("SELECT body FROM webhook_outbox");
    for (const r of rows) {
      const inner = JSON.parse(r.body).checkin_event ?? JSON.parse(r.body).acknowledge_event;
      if (inner) assert.ok(!Buffer.from(inner.raw_payload, "base64").toString("utf8").includes(token));
    }
  } finally {
    fleet.close();
    await server.stop();
    await receiver.down();
  }
});
