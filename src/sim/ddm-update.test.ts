import assert from "node:assert/strict";
import { test } from "node:test";
import { DdmChannel, type DdmSend } from "./ddm.ts";

// A simulated Mac that installs an OS update tells its owner, whose
// DeviceInformation answers must then give the new version (walkthrough: the
// next answer said the old one, and the update went overdue again).
test("an installed update is told to onInstalled with its version and build", async () => {
  const declarations: Record<string, object> = {
    "declaration/activation/act": {
      Type: "com.apple.activation.simple",
      Identifier: "act",
      ServerToken: "a1",
      Payload: { StandardConfigurations: ["upd"] },
    },
    "declaration/configuration/upd": {
      Type: "com.apple.configuration.softwareupdate.enforcement.specific",
      Identifier: "upd",
      ServerToken: "u1",
      Payload: { TargetOSVersion: "15.2", TargetBuildVersion: "24C101", TargetLocalDateTime: "2030-01-01T00:00:00" },
    },
  };
  const send: DdmSend = async (endpoint) => {
    const json = (o: unknown) => ({ status: 200, body: Buffer.from(JSON.stringify(o)) });
    if (endpoint === "tokens") return json({ SyncTokens: { DeclarationsToken: "t1", Timestamp: "2026-12-05T00:00:00Z" } });
    if (endpoint === "declaration-items")
      return json({
        DeclarationsToken: "t1",
        Declarations: {
          Activations: [{ Identifier: "act", ServerToken: "a1" }],
          Configurations: [{ Identifier: "upd", ServerToken: "u1" }],
          Assets: [],
          Management: [],
        },
      });
    if (endpoint === "status") return { status: 200, body: Buffer.alloc(0) };
    const d = declarations[endpoint];
    return d ? json(d) : { status: 404, body: Buffer.alloc(0) };
  };
  const installed: Array<[string, string]> = [];
  const facts = {
    udid: "U",
    serialNumber: "S",
    family: "macOS" as const,
    osVersion: "14.6",
    buildVersion: "23G80",
    model: "Mac14,2",
    modelName: "MacBook Air",
  };
  const channel = new DdmChannel(facts, { onInstalled: (v, b) => installed.push([v, b]) });
  await channel.sync(send);
  assert.equal(await channel.advanceUpdate(send), true, "downloading -> installing");
  assert.deepEqual(installed, []);
  assert.equal(await channel.advanceUpdate(send), true, "installing -> installed");
  assert.deepEqual(installed, [["15.2", "24C101"]]);
});
