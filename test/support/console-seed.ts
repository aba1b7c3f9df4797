// Data for the console's pages that a simulated fleet does not make by
// itself: an ABM server (through the ADE stand-in, test/support/ade-standin.ts)
// with devices synced, ADE devices awaiting configuration, an OS update
// policy. Used by test/console.test.ts and scripts/console-screenshots.ts.
import assert from "node:assert/strict";
import type { AdeStandin } from "./ade-standin.ts";
import type { TestServer } from "./server.ts";

/** An ABM server `name` with a token from the stand-in and `devices` devices synced. */
export async function seedAdeServer(server: TestServer, standin: AdeStandin, name: string, devices: number): Promise<string[]> {
  const added = await server.api("PUT", `/v1/ade/servers/${name}`, { common_name: `Orchard ${name}` });
  assert.equal(added.status, 201, added.text);
  const token = await server.api("PUT", `/v1/ade/servers/${name}/token`, standin.issueToken(added.json.certificate_pem));
  assert.equal(token.status, 200, token.text);
  const serials = standin.addDevices(devices);
  const sync = await server.api("POST", `/v1/ade/servers/${name}/sync`);
  assert.equal(sync.status, 200, sync.text);
  return serials;
}

/**
 * An ADE device awaiting configuration, as the enrollment URL and its
 * TokenUpdate would leave it: `done` of `steps` initial commands answered.
 * The device `udid` is enrolled already (DeviceConfigured is queued to it on release).
 */
export async function seedAwaiting(
  server: TestServer,
  e: { serial: string; server: string; udid: string; steps: number; done: number },
): Promise<void> {
  const now = Date.now();
  const store = server.store;
  await store.adeEnrollments.served(
    { serialNumber: e.serial, serverName: e.server, udid: e.udid, product: "Mac14,2", osVersion: "15.1" },
    now,
  );
  const steps = Array.from({ length: e.steps }, (_, i) => `ade-step-seed-${e.serial}-${i}`);
  assert.ok(await store.adeEnrollments.start(e.serial, { steps, releaseOnFailure: true, configuredCommand: null }, now));
  for (let i = 0; i < e.done; i++) assert.ok(await store.adeEnrollments.stepDone(e.serial, false, now));
}
