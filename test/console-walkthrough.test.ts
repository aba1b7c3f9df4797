// What a walkthrough of the web console found, each checked in a real
// browser (Debian's chromium through playwright-core, as test/console.test.ts)
// over a small simulated fleet: Macs on a dozen OS versions, an iPhone,
// Orchard's own inventory declarations, an operator of each role.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { Page, Route } from "playwright-core";
import type { SimDevice } from "../src/sim/device.ts";
import { hasChromium, launchBrowser, type TestBrowser } from "./support/browser.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist, identity, RawDevice } from "./support/mdm.ts";
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

  test("Declarations: Save waits for the server's check of the text as it stands", async () => {
    const { page, problems, context } = await signedIn();
    // The server's checks are held until released: what the page does before one comes back.
    let holding = true;
    const held: Route[] = [];
    await page.route("**/v1/declarations/validate", (r) => void (holding ? held.push(r) : r.continue()));
    const release = async () => {
      holding = false;
      for (const r of held.splice(0)) await r.continue();
    };
    try {
      await page.goto(`${server.url}/ui/#/ddm?new=1`);
      const editor = page.getByLabel("Declaration (JSON: Type, Identifier, Payload)");
      const save = page.getByRole("button", { name: "Save" });
      await editor.waitFor();
      await page.waitForTimeout(800);
      assert.equal(held.length, 1, "the check was asked");
      assert.equal(await save.isDisabled(), true, "no check came back yet");
      await release();
      await page.locator("#check .ok").waitFor();
      await until(async () => !(await save.isDisabled()));
      // The text changes: the old text's valid check does not enable Save for the new one.
      holding = true;
      await editor.fill(declaration("com.example.walk-c", 6));
      await page.waitForTimeout(800);
      assert.equal(held.length, 1);
      assert.equal(await save.isDisabled(), true, "the valid check was of the text before");
      await release();
      await until(async () => !(await save.isDisabled()));
      await save.click();
      await page.getByRole("heading", { name: "com.example.walk-c" }).waitFor();
      assert.equal((await server.api("GET", "/v1/declarations/com.example.walk-c")).json.Payload.MinimumLength, 6);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test("Fleet: the counts link to the lists they count, and the versions left out are said", async () => {
    const { page, problems, context } = await signedIn();
    try {
      const versions = page.getByRole("region", { name: "OS versions" });
      await versions.getByRole("row").nth(1).waitFor();
      // 13 versions (the Macs' and the iPhone's): 10 shown, the rest said, and shown on asking.
      assert.equal(await versions.locator("tbody tr").count(), 10);
      await versions.getByText("and 3 more versions (3 devices).").waitFor();
      await versions.getByRole("button", { name: "Show all" }).click();
      assert.equal(await versions.locator("tbody tr").count(), VERSIONS + 1);
      // A version's count is a link to the devices on it.
      const row = versions.getByRole("row", { name: /macOS 13\.7 1/ });
      await row.getByRole("link", { name: "1", exact: true }).click();
      await page.waitForURL(/#\/devices\?.*os_version=13\.7/);
      await page.getByRole("link", { name: "Mac on 13.7" }).waitFor();
      assert.equal(await page.locator("table.list tbody tr").count(), 1);
      assert.equal(await page.getByLabel("OS version", { exact: true }).inputValue(), "13.7");
      // User channels link to the user channels.
      await page.getByRole("link", { name: "Fleet" }).click();
      await page
        .getByRole("row", { name: /User channels/ })
        .getByRole("link")
        .click();
      await page.waitForURL(/#\/devices\?kind=users/);
      assert.equal(await page.getByLabel("Channels").inputValue(), "users");
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test("Fleet: no push certificate and no update policy: only a role that can upload or make one is offered to", async () => {
    for (const [who, links] of [
      [ADMIN, ["Upload one", "Make one"]],
      [OPERATOR, ["Make one"]],
      [AUDITOR, []],
    ] as const) {
      const { page, problems, context } = await signedIn({ as: who });
      try {
        await page.getByText("No push certificate").waitFor();
        await page.getByText("No update policy").waitFor();
        for (const link of ["Upload one", "Make one"]) {
          const offered = (links as readonly string[]).includes(link);
          assert.equal(await page.getByRole("link", { name: link }).count(), offered ? 1 : 0, `${who.name}: ${link}`);
        }
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    }
  });

  test("a device: the command history follows the queue, with no reload", async () => {
    const { page, problems, context } = await signedIn();
    try {
      await page.goto(`${server.url}/ui/#/device/${mac.udid}`);
      await page.getByRole("combobox", { name: /^Command/ }).selectOption("SecurityInfo");
      await page.getByRole("button", { name: "Queue", exact: true }).click();
      await page.getByRole("status").filter({ hasText: "Queued SecurityInfo" }).waitFor();
      const history = page.getByRole("region", { name: "Command history" });
      const row = history.getByRole("row", { name: /SecurityInfo/ });
      await row.getByText("waiting").waitFor();
      // The device answers (its DDM sync first); the queue's poll finds it empty, and the history follows.
      let sent = await mac.report("Idle");
      while ((sent.plist?.Command as { RequestType?: string } | undefined)?.RequestType === "DeclarativeManagement")
        sent = await mac.report("Acknowledged", { CommandUUID: String(sent.plist?.CommandUUID) });
      assert.equal((sent.plist?.Command as { RequestType?: string } | undefined)?.RequestType, "SecurityInfo");
      await mac.report("Acknowledged", { CommandUUID: String(sent.plist?.CommandUUID), SecurityInfo: { PasscodePresent: true } });
      await page.getByText("Nothing queued.").waitFor({ timeout: 12_000 });
      await row.getByRole("button", { name: "Show result" }).waitFor({ timeout: 3_000 });
      assert.equal(await row.getByRole("cell", { name: "Acknowledged" }).count(), 1);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test("a device: a Mac's Lock needs its PIN, an iPhone's does not, and the question is about locking", async () => {
    const { page, problems, context } = await signedIn();
    const questions: string[] = [];
    page.on("dialog", (d) => void questions.push(d.message()));
    try {
      await page.goto(`${server.url}/ui/#/device/${mac.udid}`);
      await page.getByRole("combobox", { name: /^Command/ }).selectOption("DeviceLock");
      const pin = page.getByLabel("PIN (macOS: six digits)");
      assert.equal(await pin.evaluate((e) => (e as HTMLInputElement).required), true);
      // No PIN: nothing asked, nothing queued.
      await page.getByRole("button", { name: "Queue", exact: true }).click();
      await page.waitForTimeout(300);
      assert.deepEqual(questions, []);
      assert.deepEqual((await server.api("GET", `/v1/queue/${mac.udid}`)).json.commands, []);
      await pin.fill("123456");
      await page.getByRole("button", { name: "Queue", exact: true }).click();
      await page.getByRole("status").filter({ hasText: "Queued DeviceLock" }).waitFor();
      assert.equal(questions.length, 1);
      assert.match(questions[0]!, /^Lock this device/);
      assert.doesNotMatch(questions[0]!, /cannot be undone/);
      const queued = (await server.api("GET", `/v1/queue/${mac.udid}`)).json.commands as Array<{ request_type: string }>;
      assert.deepEqual(
        queued.map((c) => c.request_type),
        ["DeviceLock"],
      );
      assert.equal((await server.api("DELETE", `/v1/queue/${mac.udid}`)).status, 200);
      await page.goto(`${server.url}/ui/#/device/${iphone.udid}`);
      await page.getByRole("combobox", { name: /^Command/ }).selectOption("DeviceLock");
      assert.equal(await page.getByLabel("PIN (macOS: six digits)").evaluate((e) => (e as HTMLInputElement).required), false);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test("a device: a failed push is an alert, not a success, and so is a queued command's", async () => {
    const { page, problems, context } = await signedIn();
    try {
      await page.goto(`${server.url}/ui/#/device/${iphone.udid}`);
      // No push certificate: the push fails.
      await page.getByRole("button", { name: "Push" }).click();
      await page.getByRole("alert").filter({ hasText: "The push failed: no push certificate" }).waitFor();
      assert.equal(await page.getByRole("status").filter({ hasText: /push/i }).count(), 0, "no success says the push failed");
      // Queued, and its push failed: the queueing is a success, the push a warning.
      await page.getByRole("combobox", { name: /^Command/ }).selectOption("ProfileList");
      await page.getByRole("button", { name: "Queue", exact: true }).click();
      await page.getByRole("status").filter({ hasText: "Queued ProfileList" }).waitFor();
      await page.getByRole("alert").filter({ hasText: "The command waits until the device checks in" }).waitFor();
      assert.doesNotMatch((await page.getByRole("status").allTextContents()).join(" "), /push/i);
      assert.equal((await server.api("DELETE", `/v1/queue/${iphone.udid}`)).status, 200);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test("a device: a raw command's RequestType Apple's schema does not know is queued with the server's warning, an alert", async () => {
    const { page, problems, context } = await signedIn();
    try {
      await page.goto(`${server.url}/ui/#/device/${iphone.udid}`);
      await page.getByRole("combobox", { name: /^Command/ }).selectOption("raw");
      await page.getByLabel("Command plist (XML)").fill(commandPlist("DeviceInfomation").toString());
      await page.getByRole("button", { name: "Queue", exact: true }).click();
      await page.getByRole("status").filter({ hasText: "Queued DeviceInfomation" }).waitFor();
      // The server's orchard-warning, as the other forms show theirs; the failed push beside it (no push certificate).
      const alert = page.getByRole("alert").filter({ hasText: `RequestType "DeviceInfomation": not a command Apple's schema knows` });
      await alert.waitFor();
      assert.match((await alert.textContent()) ?? "", /queued all the same.*The push failed: no push certificate/);
      // A command Apple's schema knows: no such warning.
      await page.getByLabel("Command plist (XML)").fill(commandPlist("DeviceInformation").toString());
      await page.getByRole("button", { name: "Queue", exact: true }).click();
      await page.getByRole("status").filter({ hasText: "Queued DeviceInformation" }).waitFor();
      assert.equal(await page.getByRole("alert").filter({ hasText: "Apple's schema" }).count(), 0);
      assert.equal((await server.api("DELETE", `/v1/queue/${iphone.udid}`)).status, 200);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test("a device removed while its page is open: the page says it is not enrolled, and stops showing its queue", async () => {
    const gone = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await gone.enroll({ ProductName: "Mac14,2", OSVersion: "14.6", DeviceName: "Mac to remove" });
    const { page, problems, context } = await signedIn();
    try {
      await page.goto(`${server.url}/ui/#/device/${gone.udid}`);
      // Its queue and history as read (the DeclarativeManagement of Orchard's inventory subscription).
      const queue = page.getByRole("region", { name: "Queue" });
      await queue.getByRole("cell", { name: /DeclarativeManagement/ }).waitFor();
      await page
        .getByRole("region", { name: "Command history" })
        .getByRole("cell", { name: /DeclarativeManagement/ })
        .waitFor();
      assert.equal((await server.api("DELETE", `/v1/enrollments/${gone.udid}`)).status, 200);
      // The queue's next poll (every 5 s) is 404: the page reads the device's channels again and says so.
      await page.getByRole("alert").filter({ hasText: "This device is not enrolled: it was removed" }).waitFor({ timeout: 12_000 });
      assert.equal(await queue.count(), 0);
      assert.equal(await page.getByRole("region", { name: "Command history" }).count(), 0);
      assert.equal(await page.getByText("no such enrollment").count(), 0, "no raw API error");
      // Opened afresh, and a channel the address names that the device does not have.
      await page.reload();
      await page.getByRole("alert").filter({ hasText: "This device is not enrolled" }).waitFor();
      await page.goto(`${server.url}/ui/#/device/${mac.udid}?channel=${encodeURIComponent(`${mac.udid}:NO-SUCH-USER`)}`);
      await page
        .getByRole("alert")
        .filter({ hasText: `Channel ${mac.udid}:NO-SUCH-USER is not enrolled` })
        .waitFor();
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
      // Gone whatever happened above: the tests after this one count the Macs.
      await server.api("DELETE", `/v1/enrollments/${gone.udid}`);
    }
  });

  test("an update policy's devices are listed with their names and serial numbers", async () => {
    assert.equal(
      (await server.api("PUT", "/v1/updates/policies/walk-macs", { platform: "macOS", mode: "latest", deadline_days: 7 })).status,
      201,
    );
    const { page, problems, context } = await signedIn();
    try {
      const devices = (await server.api("GET", "/v1/updates/policies/walk-macs/devices?limit=100")).json.devices as Array<{
        enrollment_id: string;
      }>;
      assert.equal(devices.length, VERSIONS);
      await page.goto(`${server.url}/ui/#/devices?policy=walk-macs`);
      await page
        .locator("table.list tbody tr")
        .nth(VERSIONS - 1)
        .waitFor();
      for (const d of devices) {
        const e = (await server.api("GET", `/v1/enrollments/${d.enrollment_id}`)).json;
        const row = page.locator("table.list tbody tr", { has: page.getByRole("link", { name: e.device_name, exact: true }) });
        assert.equal(await row.count(), 1, e.device_name);
        assert.equal(await row.locator("td").nth(1).textContent(), e.serial_number);
        assert.match((await row.getByRole("link").getAttribute("href")) ?? "", new RegExp(`#/device/${e.device_id}$`));
      }
      // The list's pager is its own landmark, not a second "Pages" beside the site's navigation.
      const landmarks = await page.getByRole("navigation").evaluateAll((navs) => navs.map((n) => n.getAttribute("aria-label")));
      assert.deepEqual(landmarks, ["Pages", "Pagination"]);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
      await server.api("DELETE", "/v1/updates/policies/walk-macs");
    }
  });

  test("tables keep their words at 390, 768 and 1280 px: short values on one line, wide tables scrolled in their own box", async () => {
    for (const width of [390, 768, 1280]) {
      const { page, problems, context } = await signedIn({ width });
      try {
        for (const where of [
          "audit",
          `device/${mac.udid}`,
          "ddm?declaration=com.example.walk-b&set=walk-set",
          "events",
          "fleet",
          "devices",
        ]) {
          await page.goto(`${server.url}/ui/#/${where}`);
          await page.locator("main table tbody tr").first().waitFor();
          await page.waitForLoadState("networkidle");
          const at = `#/${where} at ${width}px`;
          const pageWidth = await page.evaluate(() => document.documentElement.scrollWidth);
          assert.ok(pageWidth <= width, `${at} is ${pageWidth}px wide`);
          // A header, a number, a time, an address or a status is never broken across lines (the audit log's
          // When, From and Result by their place, whatever their class).
          // (No named function inside evaluate: tsx would wrap it in a helper the page does not have.)
          const broken = await page.evaluate(() =>
            [
              ...document.querySelectorAll(
                "main thead th, main td.num, main td time, main td.nowrap, table.audit td:nth-child(1), table.audit td:nth-child(5), table.audit td:nth-child(6)",
              ),
            ]
              .filter((e) => {
                // The lines its text takes: the distinct tops of its range's boxes.
                const r = document.createRange();
                r.selectNodeContents(e);
                return new Set([...r.getClientRects()].filter((b) => b.width > 0).map((b) => Math.round(b.top))).size > 1;
              })
              .map((e) => e.textContent),
          );
          assert.deepEqual(broken, [], `${at}: short values broken`);
        }
        if (width === 390) {
          // A phone: the audit log and a device's inventory keep every word whole (the table scrolls instead).
          for (const [where, table] of [
            ["audit", "table.audit"],
            [`device/${mac.udid}`, "table.inventory"],
          ]) {
            await page.goto(`${server.url}/ui/#/${where}`);
            await page.locator(`${table} tbody tr`).first().waitFor();
            const words = await page.evaluate((t) => {
              // Each run of letters and digits outside code (an id may break anywhere), on one line or not.
              const out: string[] = [];
              const walk = document.createTreeWalker(document.querySelector(t)!, NodeFilter.SHOW_TEXT);
              for (let n = walk.nextNode(); n; n = walk.nextNode()) {
                if (n.parentElement?.closest("code")) continue;
                for (const m of (n.textContent ?? "").matchAll(/[A-Za-z0-9]+/g)) {
                  const r = document.createRange();
                  r.setStart(n, m.index);
                  r.setEnd(n, m.index + m[0].length);
                  const tops = new Set([...r.getClientRects()].filter((b) => b.width > 0).map((b) => Math.round(b.top)));
                  if (tops.size > 1) out.push(m[0]);
                }
              }
              return out;
            }, table);
            assert.deepEqual(words, [], `#/${where} at 390px breaks words`);
            assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 390);
          }
        }
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    }
  });

  test("a session that ends says so on the sign-in page, at the server's word or at its cookie's expiry; Sign out does not", async () => {
    const { page, problems, context } = await signedIn({ as: OPERATOR });
    try {
      await page.getByRole("heading", { name: "Fleet" }).waitFor();
      // Disabled by an admin: the operator's sessions end, and the page's next request answers 401.
      assert.equal((await server.api("PATCH", `/v1/operators/${OPERATOR.name}`, { disabled: true })).status, 200);
      await page.getByRole("link", { name: "Devices" }).click();
      await page.getByRole("status").filter({ hasText: "Your session ended; sign in again." }).waitFor();
      assert.equal((await server.api("PATCH", `/v1/operators/${OPERATOR.name}`, { disabled: false })).status, 200);
      await signIn(page, OPERATOR);
      await page.getByRole("heading", { name: "Devices" }).waitFor();
      assert.equal(await page.getByText("Your session ended").count(), 0);
      // Signed out: the sign-in page, with nothing to explain.
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByLabel("Password").waitFor();
      await page.waitForTimeout(300);
      assert.equal(await page.getByText("Your session ended").count(), 0);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
    // At --session-max-age (12 h) the browser drops the cookie, and a request without one would meet the
    // server's Basic challenge (the browser's own password prompt): the console ends the session itself first.
    const s = await browser.page();
    try {
      await s.page.clock.install();
      await s.page.goto(`${server.url}/ui/`);
      await signIn(s.page, OPERATOR);
      await s.page.getByRole("heading", { name: "Fleet" }).waitFor();
      await s.page.clock.fastForward("12:00:00");
      await s.page.getByRole("status").filter({ hasText: "Your session ended; sign in again." }).waitFor();
      assert.deepEqual(s.problems, []);
    } finally {
      await s.context.close();
    }
  });
});

/** Waits until `f` says yes (5 s at most). */
async function until(f: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (await f()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail("not in 5 s");
}

function declaration(identifier: string, minimumLength: number): string {
  return JSON.stringify({
    Type: "com.apple.configuration.passcode.settings",
    Identifier: identifier,
    Payload: { MinimumLength: minimumLength },
  });
}
