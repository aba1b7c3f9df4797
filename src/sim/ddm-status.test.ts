import assert from "node:assert/strict";
import { test } from "node:test";
import { DdmChannel, type DdmSend } from "./ddm.ts";

// A simulated channel reports, beside the declarations it fetched, those whose
// status changed without a new token: a configuration whose activation went
// and came back is active again (walkthrough: it stayed "not referenced").
test("a configuration whose activation comes back is reported active again, in the report that is not full", async () => {
  const declarations: Record<string, object> = {
    "declaration/activation/act": {
      Type: "com.apple.activation.simple",
      Identifier: "act",
      ServerToken: "a1",
      Payload: { StandardConfigurations: ["cfg"] },
    },
    "declaration/configuration/cfg": {
      Type: "com.apple.configuration.management.test",
      Identifier: "cfg",
      ServerToken: "c1",
      Payload: { Echo: "x" },
    },
  };
  let withActivation = true;
  let token = 1;
  const reports: Array<{ FullReport: boolean; configurations: Array<{ identifier: string; active: boolean }> }> = [];
  const json = (o: unknown) => ({ status: 200, body: Buffer.from(JSON.stringify(o)) });
  const send: DdmSend = async (endpoint, data) => {
    if (endpoint === "tokens") return json({ SyncTokens: { DeclarationsToken: `t${token}`, Timestamp: "2026-12-05T00:00:00Z" } });
    if (endpoint === "declaration-items")
      return json({
        DeclarationsToken: `t${token}`,
        Declarations: {
          Activations: withActivation ? [{ Identifier: "act", ServerToken: "a1" }] : [],
          Configurations: [{ Identifier: "cfg", ServerToken: "c1" }],
          Assets: [],
          Management: [],
        },
      });
    if (endpoint === "status") {
      const r = JSON.parse(data!.toString("utf8"));
      reports.push({ FullReport: r.FullReport, configurations: r.StatusItems.management.declarations.configurations });
      return { status: 200, body: Buffer.alloc(0) };
    }
    const d = declarations[endpoint];
    return d ? json(d) : { status: 404, body: Buffer.alloc(0) };
  };
  const channel = new DdmChannel();
  await channel.sync(send);
  withActivation = false;
  token++;
  await channel.sync(send);
  withActivation = true;
  token++;
  await channel.sync(send);
  token++;
  await channel.sync(send);
  assert.deepEqual(
    reports.map((r) => [r.FullReport, r.configurations.map((c) => [c.identifier, c.active])]),
    [
      [true, [["cfg", true]]],
      [true, [["cfg", false]]], // the activation went: a full report
      [false, [["cfg", true]]], // it came back: cfg is restated though its token did not change
      [false, []], // nothing changed
    ],
  );
});
