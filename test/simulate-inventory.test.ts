// `orchard simulate` fills the inventory without a command: with macOS and
// iOS subscribed (orchard inventory subscribe), each simulated device gets
// the built-in status subscription set as it enrolls, syncs it, and reports
// the subscribed status items; the inventory (API and `orchard inventory`)
// shows them learned from ddm-status. Both stores.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { ApiClient } from "../src/cli/api-client.ts";
import { runWith } from "../src/cli/client-commands.ts";
import type { InventoryDeviceJson } from "../src/http/wire.ts";
import { runSimulation, type SimulationReport } from "../src/sim/fleet-sim.ts";
import { cliContext } from "./support/cli.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const API_KEY = "test-api-key-0123456789abcdef";

await forEachBackend("the simulator fills the inventory through the status subscription", (backend) => {
  let server: TestServer;
  let tmp: string;
  let report: SimulationReport;

  const cli = async (...args: string[]) => {
    const ctx = cliContext(server.url);
    const code = await runWith(ctx, "inventory", args);
    return { code, stdout: ctx.stdout, stderr: ctx.stderr };
  };

  before(async () => {
    server = await startTestServer(["--insecure-accept-any-device-cert"], backend);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-sim-inventory-"));
    for (const platform of ["macOS", "iOS"]) {
      const r = await cli("subscribe", "--platform", platform);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^subscribed ${platform}: 0 of 0 device channels got set orchard\\.inventory\\.${platform}\\n$`));
    }
    report = await runSimulation({
      url: server.url,
      api: new ApiClient(new URL(server.url), API_KEY),
      devices: 4,
      platform: "mixed",
      usersPerDevice: 0,
      commands: false,
      durationMs: 6_000,
      pollIntervalMs: 200,
      seed: `sim-inventory-${backend}`,
      caOutDir: path.join(tmp, "ca"),
    });
  });
  after(async () => {
    await server?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test("each device synced the subscription and reported its items, without errors", async () => {
    assert.equal(report.errors, 0, JSON.stringify(report.errorKinds));
    assert.equal(report.requestTypes.DeclarativeManagement?.acknowledged, 4, "one DeclarativeManagement command per device");
    const devices: InventoryDeviceJson[] = (await server.api("GET", "/v1/inventory")).json.devices;
    assert.equal(devices.length, 4);
    for (const d of devices) {
      const r = (await server.api("GET", `/v1/inventory/${d.device_id}`)).json;
      assert.deepEqual([r.fields.update_install_state?.value, r.fields.update_install_state?.source], ["none", "ddm-status"], d.device_id);
      assert.equal(r.fields.update_failure_count?.value, 0);
      assert.equal(r.fields.model_family?.source, "ddm-status");
      assert.deepEqual(r.fields.client_capabilities?.value, { "supported-features": {}, "supported-versions": ["1.0.0"] });
      if (d.platform === "macOS") {
        assert.equal(r.fields.filevault_enabled?.value, true);
        assert.equal(r.fields.passcode_compliant, undefined, "not a macOS status item: not subscribed");
      } else {
        assert.equal(d.platform, "iOS");
        assert.equal(r.fields.passcode_compliant?.value, true);
        assert.equal(r.fields.filevault_enabled, undefined);
      }
      // What Authenticate said and the reports repeat keeps its first source.
      assert.equal(r.fields.os_version.source, "authenticate");
    }
  });

  test("orchard inventory lists, filters and shows them", async () => {
    const list = await cli("list", "--update-state", "none", "--platform", "macOS");
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trimEnd().split("\n");
    assert.match(lines[0]!, /^DEVICE\s+PLATFORM\s+MODEL\s+OS\s+SERIAL\s+USERS\s+UPDATE\s+LAST SEEN$/);
    const macs = (await server.api("GET", "/v1/inventory?platform=macOS")).json.devices as InventoryDeviceJson[];
    assert.equal(lines.length, 1 + macs.length);
    for (const line of lines.slice(1)) assert.match(line, /\smacOS\s.*\snone\s/);

    const one = macs[0]!.device_id;
    const show = await cli("show", one);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^update_install_state\s+none\s+ddm-status\s+\d{4}-\d\d-\d\d /m);
    assert.match(show.stdout, /^os_version\s+\S+\s+authenticate\s/m);

    const json = await cli("list", "--json", "--last-seen-after", "1h");
    assert.equal(JSON.parse(json.stdout).devices.length, 4);
    const bad = await cli("list", "--os-version-below", "fifteen");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /os_version_below must be a version/);

    const subs = await cli("subscriptions");
    assert.match(subs.stdout, /^iOS\s+orchard\.inventory\.iOS\s/m);
    const off = await cli("unsubscribe", "--platform", "iOS");
    assert.equal(off.code, 0, off.stderr);
    const phones = (await server.api("GET", "/v1/inventory?platform=iOS")).json.devices.length;
    assert.equal(off.stdout, `unsubscribed iOS: ${phones} of ${phones} device channels lost set orchard.inventory.iOS\n`);
  });
});
