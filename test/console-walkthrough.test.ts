// What a walkthrough of the web console found, each checked in a real
// browser (Debian's chromium through playwright-core, as test/console.test.ts)
// over a small simulated fleet: Macs on a dozen OS versions, an iPhone,
// Orchard's own inventory declarations, an operator of each role.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { Page } from "playwright-core";
import type { SimDevice } from "../src/sim/device.ts";
import { hasChromium, launchBrowser, type TestBrowser } from "./support/browser.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { identity, RawDevice } from "./support/mdm.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const ADMIN = { name: "walk-admin", password: "walk-admin-password-1" };
const OPERATOR = { name: "walk-operator", password: "walk-operator-password-1" };
const AUDITOR = { name: "walk-auditor", password: "walk-auditor-password-1" };
type Who = typeof ADMIN;
/** Macs on as many OS versions: more than the fleet page shows at first. */
const VERSIONS = 12;

describe("the web console, as a walkthrough found it", { skip: hasChromium() ? false : "no chromium at /usr/bin/chromium" }, () => {
  let server: TestServer;
  let fleet: TestFleet;
  let browser: TestBrowser;
  let mac: SimDevice;
  let iphone: SimDevice;

  before(async () => {
    server = await startTestServer();
    fleet = await testFleet(server.url);
    mac = await fleet.device({ platform: "macOS" });
    await mac.enroll();
    iphone = await fleet.device({ platform: "iOS" });
    await iphone.enroll();
    // Macs on 12 versions (14.6 is the simulated Mac's), enrolled before GET /v1/fleet is first read (it keeps an answer 10 s).
    for (let i = 1; i < VERSIONS; i++) {
      const d = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
      await d.enroll({ ProductName: "Mac14,2", OSVersion: `13.${i}`, DeviceName: `Mac on 13.${i}` });
    }
    // Orchard's own declarations, with the longest identifiers a Declarations page lists.
    assert.equal((await server.api("PUT", "/v1/inventory-subscriptions/macOS")).status, 200);
    for (const [who, role] of [
      [ADMIN, "admin"],
      [OPERATOR, "operator"],
      [AUDITOR, "auditor"],
    ] as const) {
      const r = await server.api("POST", "/v1/operators", { name: who.name, role, password: who.password });
      assert.equal(r.status, 201, r.text);
    }
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    fleet?.close();
    await server?.stop();
  });

  async function signedIn(o: { as?: Who; width?: number } = {}) {
    const s = await browser.page({ width: o.width });
    await s.page.goto(`${server.url}/ui/`);
    await signIn(s.page, o.as ?? ADMIN);
    return s;
  }
  async function signIn(page: Page, who: Who) {
    await page.getByLabel("Name").fill(who.name);
    await page.getByLabel("Password").fill(who.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("banner").getByRole("navigation", { name: "Pages" }).waitFor();
  }

  test("Declarations: a new set's first declaration is the one chosen, and nothing is chosen before the operator does", async () => {
    for (const id of ["com.example.walk-a", "com.example.walk-b"])
      assert.equal((await server.api("PUT", "/v1/declarations", JSON.parse(declaration(id, 8)))).status, 204);
    const { page, problems, context } = await signedIn();
    try {
      await page.goto(`${server.url}/ui/#/ddm`);
      await page.getByRole("link", { name: "com.example.walk-b" }).waitFor();
      await page.getByLabel("New set's name").fill("walk-set");
      const first = page.getByLabel("Its first declaration");
      assert.equal(await first.inputValue(), "", "nothing chosen");
      const make = page.getByRole("button", { name: /^Make set/ });
      assert.equal(await make.isDisabled(), true);
      assert.equal(await make.textContent(), "Make set (choose its first declaration)");
      // Not the declaration that sorts first (com.example.walk-a): the one chosen.
      await first.selectOption("com.example.walk-b");
      assert.equal(await make.textContent(), "Make set");
      await make.click();
      await page.getByRole("heading", { name: "Set walk-set" }).waitFor();
      assert.deepEqual((await server.api("GET", "/v1/set-declarations/walk-set")).json, ["com.example.walk-b"]);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});

function declaration(identifier: string, minimumLength: number): string {
  return JSON.stringify({
    Type: "com.apple.configuration.passcode.settings",
    Identifier: identifier,
    Payload: { MinimumLength: minimumLength },
  });
}
