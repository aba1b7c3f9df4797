// `orchard webhook status` and `orchard webhook retry` say what each counts:
// the backlog and those of it that failed at least once; retry, every event
// waiting for a later attempt, the ones held back behind a failed event of
// their enrollment included (so it can say more than status's "failed").
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { runWith } from "../src/cli/client-commands.ts";
import { cliContext } from "./support/cli.ts";
import { testFleet } from "./support/fleet.ts";
import { identity, RawDevice, waitFor } from "./support/mdm.ts";
import { startTestServer } from "./support/server.ts";
import { WebhookReceiver } from "./support/webhook-receiver.ts";

test("webhook status counts the backlog and those of it that failed; retry, every waiting event, the held-back ones too", async () => {
  const receiver = await WebhookReceiver.start({ down: true });
  // A backoff of an hour: what failed waits, and stays counted, until retry.
  const server = await startTestServer(["--webhook-url", receiver.url, "--webhook-backoff", "1h", "--webhook-timeout", "2s"]);
  const fleet = await testFleet(server.url);
  let stopped: Promise<void> | undefined;
  try {
    const dev = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await dev.enroll();
    for (let i = 0; i < 3; i++) assert.equal((await dev.report("Idle")).status, 200);
    await waitFor("the events tried", async () => {
      const s = (await server.api("GET", "/v1/webhook")).json;
      return s.backlog === 5 && s.retrying > 0;
    });
    const { retrying } = (await server.api("GET", "/v1/webhook")).json;

    const status = cliContext(server.url);
    assert.equal(await runWith(status, "webhook", ["status"]), 0, status.stderr);
    assert.match(status.stdout, new RegExp(`^backlog: +5 events, ${retrying} of them failed at least once$`, "m"));
    const retry = cliContext(server.url);
    assert.equal(await runWith(retry, "webhook", ["retry"]), 0, retry.stderr);
    const m = /^(\d+) events? made due now \(those that failed, and the events held back behind them\)\n$/.exec(retry.stdout);
    assert.ok(m, retry.stdout);
    assert.ok(Number(m[1]) >= retrying && Number(m[1]) <= 5, retry.stdout);
    // The delivery loop pauses up to 30 s while every batch fails; a stop between two pauses waited out the next
    // one (30 s every time here). Not a speed check: a bound far from both.
    const stopping = Date.now();
    stopped = server.stop();
    await stopped;
    assert.ok(Date.now() - stopping < 15_000, `stopped in ${Date.now() - stopping} ms`);
  } finally {
    fleet.close();
    await (stopped ?? server.stop());
    await receiver.down();
  }
});
