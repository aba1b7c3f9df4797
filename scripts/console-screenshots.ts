// Screenshots of the console's main pages for docs/console.md, over a small
// simulated fleet: node --import tsx scripts/console-screenshots.ts
// (needs chromium; writes docs/console/*.png).
import path from "node:path";
import { randomUUID } from "node:crypto";
import { AdeStandin } from "../test/support/ade-standin.ts";
import { launchBrowser } from "../test/support/browser.ts";
import { seedAdeServer, seedAwaiting } from "../test/support/console-seed.ts";
import { testFleet } from "../test/support/fleet.ts";
import { identity, RawDevice } from "../test/support/mdm.ts";
import { startTestServer } from "../test/support/server.ts";

const OUT = path.join(import.meta.dirname, "..", "docs", "console");
const standin = await new AdeStandin().start();
const server = await startTestServer(["--ade-url", standin.url, "--ade-sync-interval", "0"]);
const fleet = await testFleet(server.url);
try {
  const devices = [];
  for (let i = 0; i < 8; i++) {
    const d = await fleet.device({ platform: i % 3 === 2 ? "iOS" : "macOS" });
    await d.enroll();
    devices.push(d);
  }
  const mac = devices[0]!;
  await server.api("PUT", `/v1/enqueue/${mac.udid}`, plistCommand("DeviceInformation"));
  const sent = await mac.report("Idle");
  await mac.report("Acknowledged", {
    CommandUUID: String(sent.plist?.CommandUUID),
    QueryResponses: { DeviceName: "Finance MacBook", OSVersion: "14.6", IsSupervised: true, AvailableDeviceCapacity: 118.4 },
  });
  await server.api("PUT", `/v1/enqueue/${mac.udid}`, plistCommand("ProfileList"));
  const real = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
  await real.enroll({ ProductName: "Mac14,2", DeviceName: "Reception iMac" });
  await new RawDevice(fleet.transport, await identity(fleet), real.udid).authenticate({ ProductName: "Mac14,2" });
  for (const [name, full] of [
    ["alice", "Alice Martin"],
    ["bob", "Bob Chen"],
  ])
    await server.api("PUT", `/v1/users/${name}`, { password: `${name}-password-1`, full_name: full });
  await server.api("PUT", "/v1/declarations", {
    Type: "com.apple.configuration.passcode.settings",
    Identifier: "com.example.passcode",
    Payload: { MinimumLength: 8 },
  });
  await server.api("PUT", "/v1/set-declarations/macs?declaration=com.example.passcode");
  await server.api("POST", "/v1/ddm/sets/macs/enrollments", { platform: "macOS" });
  await server.api("POST", "/v1/operators", { name: "admin", role: "admin", password: "screenshot-password-1" });
  await server.api("POST", "/v1/operators", { name: "dana", role: "operator", password: "screenshot-password-2" });
  await server.api("POST", "/v1/operators", { name: "audit", role: "auditor", password: "screenshot-password-3" });
  await server.api("POST", "/v1/tokens", { label: "inventory export", role: "auditor", operator: "admin", expires_in: "30d" });
  // OS updates: a policy for every Mac, a pinned one for the iPhones.
  await server.api("PUT", "/v1/updates/policies/every-mac", { platform: "macOS", mode: "latest", deadline_days: 7 });
  await server.api("PUT", "/v1/updates/policies/iphones", {
    platform: "iOS",
    mode: "version",
    target_os_version: "18.2",
    target_local_date_time: "2027-01-15T19:00:00",
  });
  // ADE: an ABM server with devices synced, two Macs awaiting configuration.
  await seedAdeServer(server, standin, "main", 12);
  await seedAwaiting(server, { serial: "C02ADE00001", server: "main", udid: devices[3]!.udid, steps: 4, done: 2 });
  await seedAwaiting(server, { serial: "C02ADE00002", server: "main", udid: devices[4]!.udid, steps: 3, done: 0 });

  const browser = await launchBrowser();
  const shots: Array<[string, string, number?]> = [
    ["signin", ""],
    ["fleet", "#/fleet"],
    ["devices", "#/devices"],
    ["device", `#/device/${mac.udid}`],
    ["rebind", `#/device/${real.udid}`],
    ["users", "#/users"],
    ["updates", "#/updates"],
    ["ade", "#/ade"],
    ["operators", "#/operators"],
    ["ddm", "#/ddm?declaration=com.example.passcode&set=macs"],
    ["events", "#/events"],
    ["audit", "#/audit"],
    ["devices-tablet", "#/devices", 768],
  ];
  for (const [name, where, width] of shots) {
    const { page, context } = await browser.page({ width: width ?? 1280, height: 800 });
    await page.goto(`${server.url}/ui/`);
    if (name !== "signin") {
      await page.getByLabel("Name").fill("admin");
      await page.getByLabel("Password").fill("screenshot-password-1");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("navigation", { name: "Pages" }).waitFor();
      await page.goto(`${server.url}/ui/${where}`);
      await page.locator("main h1").waitFor();
      if (name === "device") await page.getByRole("button", { name: "Show result" }).first().click();
    } else await page.getByLabel("Name").waitFor();
    await page.waitForLoadState("networkidle");
    await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: name !== "device" });
    await context.close();
    process.stdout.write(`docs/console/${name}.png\n`);
  }
  await browser.close();
} finally {
  fleet.close();
  await server.stop();
  await standin.stop();
}

function plistCommand(requestType: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>${requestType}</string></dict><key>CommandUUID</key><string>${randomUUID()}</string></dict></plist>`;
}
