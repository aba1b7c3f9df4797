// The console's common commands (src/console/commands.ts): the fields a
// device's platform requires, and the question each command asks before it
// is queued.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { commandFields, COMMON_COMMANDS, commonCommand } from "../src/console/commands.ts";

describe("the console's common commands", () => {
  const lock = commonCommand("DeviceLock")!;

  test("a Mac's Lock needs its PIN (it unlocks the Mac); another platform's does not", () => {
    assert.deepEqual(commandFields(lock, {}, "macOS"), { errors: ["PIN (macOS: six digits) is required on macOS"] });
    assert.deepEqual(commandFields(lock, { PIN: "12345" }, "macOS"), { errors: ["PIN (macOS: six digits) is not in the expected form"] });
    assert.deepEqual(commandFields(lock, { PIN: "123456" }, "macOS"), { fields: { PIN: "123456" } });
    assert.deepEqual(commandFields(lock, {}, "iOS"), { fields: {} });
    // A device whose platform its facts do not tell: the server and the device decide.
    assert.deepEqual(commandFields(lock, {}, null), { fields: {} });
  });

  test("only a command that cannot be undone says so before it is queued; each other asks in its own words", () => {
    const confirms = Object.fromEntries(COMMON_COMMANDS.filter((c) => c.confirm).map((c) => [c.requestType, c.confirm!]));
    assert.deepEqual(Object.keys(confirms), ["DeviceLock", "RestartDevice", "ShutDownDevice", "EraseDevice"]);
    for (const [type, question] of Object.entries(confirms)) {
      assert.equal(/cannot be undone/.test(question), type === "EraseDevice", `${type}: ${question}`);
    }
    assert.match(confirms.DeviceLock!, /^Lock/);
    assert.match(confirms.RestartDevice!, /^Restart/);
    assert.match(confirms.ShutDownDevice!, /^Shut/);
  });
});
