// The web console (docs/console.md) in a real browser: Debian's chromium
// driven by playwright-core. The console signs in with an operator's session
// (POST /v1/session) like any browser; there is no other way in. Each action
// is checked through the API afterwards.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test, type TestContext } from "node:test";
import type { SimDevice } from "../src/sim/device.ts";
import { AdeStandin } from "./support/ade-standin.ts";
import { hasChromium, launchBrowser, type TestBrowser } from "./support/browser.ts";
import { seedAdeServer, seedAwaiting } from "./support/console-seed.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { identity, RawDevice } from "./support/mdm.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const XSS_NAME = "<img src=x onerror=alert(1)>";
const ADMIN = { name: "console-admin", password: "console-admin-password-1" };
const OPERATOR = { name: "console-operator", password: "console-operator-password-1" };
const AUDITOR = { name: "console-auditor", password: "console-auditor-password-1" };
/** The buttons a read-only page may show: reading, paging, one's own tokens and password. */
const READ_BUTTONS = new Set(["Search", "Find", "Previous", "Next", "Show result", "Hide result", "Create token", "Change password"]);

describe("the web console", { skip: hasChromium() ? false : "no chromium at /usr/bin/chromium" }, () => {
  let server: TestServer;
  let fleet: TestFleet;
  let browser: TestBrowser;
  /** Whether this build has operators' sessions (POST /v1/session). */
  let sessions = false;
  const macs: SimDevice[] = [];
  let evil: RawDevice;
  let held: { udid: string; fingerprint: string };
  let standin: AdeStandin;
  const ADE_SERIAL = "C02CONSOLE01";

  before(async () => {
    standin = await new AdeStandin().start();
    server = await startTestServer(["--ade-url", standin.url, "--ade-sync-interval", "0"]);
    fleet = await testFleet(server.url);
    for (const platform of ["macOS", "macOS", "iOS"] as const) {
      const d = await fleet.device({ platform });
      await d.enroll();
      if (platform === "macOS") macs.push(d);
    }
    evil = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await evil.enroll({ DeviceName: XSS_NAME, ProductName: "Mac14,2", OSVersion: "14.6" });
    // A device whose UDID another certificate claims: held for the operator's approval.
    const real = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await real.enroll({ ProductName: "Mac14,2" });
    const other = new RawDevice(fleet.transport, await identity(fleet), real.udid);
    assert.equal((await other.authenticate({ ProductName: "Mac14,2" })).status, 403);
    const state = await server.api("GET", `/v1/enrollments/${real.udid}/rebind`);
    held = { udid: real.udid, fingerprint: state.json.held_certificates[0].cert_fingerprint };
    sessions = (await fetch(`${server.url}/v1/session`)).status !== 404;
    if (sessions) {
      await addOperator(server, ADMIN.name, "admin", ADMIN.password);
      await addOperator(server, OPERATOR.name, "operator", OPERATOR.password);
      await addOperator(server, AUDITOR.name, "auditor", AUDITOR.password);
    }
    // ADE: an ABM server with 3 devices synced, and one Mac awaiting configuration (1 of 3 steps done).
    await seedAdeServer(server, standin, "console-abm", 3);
    await seedAwaiting(server, { serial: ADE_SERIAL, server: "console-abm", udid: macs[1]!.udid, steps: 3, done: 1 });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    fleet?.close();
    await server?.stop();
    await standin?.stop();
  });

  test("served at /ui with a strict Content-Security-Policy and no inline script or style", async () => {
    const root = await fetch(`${server.url}/`, { redirect: "manual" });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get("location"), "/ui/");
    const page = await fetch(`${server.url}/ui/`);
    assert.equal(page.status, 200);
    const csp = page.headers.get("content-security-policy") ?? "";
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"]) {
      assert.ok(csp.includes(directive), `CSP has ${directive}: ${csp}`);
    }
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(page.headers.get("x-frame-options"), "DENY");
    const html = await page.text();
    // Scripts only by src, styles only by link: nothing inline for the CSP to forbid.
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/);
    assert.doesNotMatch(html, /<style|\sstyle=|\son[a-z]+=/i);
    const src = /<script type="module" src="([^"]+)"/.exec(html)?.[1];
    assert.ok(src, html);
    const js = await fetch(server.url + src);
    assert.equal(js.status, 200);
    assert.match(js.headers.get("content-type") ?? "", /javascript/);
    assert.match(js.headers.get("cache-control") ?? "", /immutable/);
    const css = await fetch(`${server.url}/ui/app.css`);
    assert.match(css.headers.get("content-type") ?? "", /text\/css/);
  });

  test("the sign-in page: labelled controls reached by the keyboard; a wrong password is refused", async (t) => {
    const { page, problems, context } = await browser.page();
    try {
      await page.goto(`${server.url}/ui/`);
      const name = page.getByLabel("Name");
      await name.waitFor();
      await name.focus();
      await page.keyboard.type(ADMIN.name);
      await page.keyboard.press("Tab");
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), "password");
      await page.keyboard.type("not-the-password");
      await page.keyboard.press("Enter");
      await page.getByRole("alert").waitFor();
      if (!sessions) t.diagnostic("no /v1/session in this build: the refusal is its 404");
      assert.equal(await page.getByLabel("Password").inputValue(), "", "the password field is emptied after a refusal");
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  /** A signed-in page, or the test skipped when this build has no operators' sessions yet. */
  async function signedIn(t: TestContext, o: { width?: number; as?: { name: string; password: string } } = {}) {
    if (!sessions) {
      t.skip("no operator sessions (POST /v1/session) in this build");
      return undefined;
    }
    const s = await browser.page(o);
    await s.page.goto(`${server.url}/ui/`);
    await s.page.getByLabel("Name").fill((o.as ?? ADMIN).name);
    await s.page.getByLabel("Password").fill((o.as ?? ADMIN).password);
    await s.page.getByRole("button", { name: "Sign in" }).click();
    await s.page.getByRole("navigation", { name: "Pages" }).waitFor();
    return s;
  }

  test("a device named like markup is shown as text, and nothing runs", async (t) => {
    const s = await signedIn(t);
    if (!s) return;
    const { page, problems, context } = s;
    try {
      for (const where of [`#/devices?q=${encodeURIComponent("onerror")}`, `#/device/${evil.udid}`]) {
        await page.goto(`${server.url}/ui/${where}`);
        await page.getByText(XSS_NAME).first().waitFor();
        assert.equal(await page.locator('img[src="x"]').count(), 0, "the name became an element");
      }
      assert.deepEqual(problems, [], "no dialog, page error or CSP violation");
    } finally {
      await context.close();
    }
  });

  test("walk every page, queue a command and read its result, approve a re-binding, add a user, assign a set", async (t) => {
    const s = await signedIn(t);
    if (!s) return;
    const { page, problems, context } = s;
    try {
      // Fleet: the macOS count links to the filtered device list.
      await page.getByRole("heading", { name: "Devices by platform" }).waitFor();
      const macCount = (await server.api("GET", "/v1/enrollments?platform=macOS&type=Device")).json.enrollments.length;
      await page
        .getByRole("link", { name: String(macCount), exact: true })
        .first()
        .click();
      await page.waitForURL(/#\/devices\?platform=macOS/);
      await page.locator("table.list tbody tr").first().waitFor();
      assert.equal(await page.locator("table.list tbody tr").count(), macCount);

      // The inventory's filters: macOS below version 100 is every Mac the inventory knows a version of.
      await page.getByLabel("OS version below").fill("100");
      await page.getByRole("button", { name: "Search" }).click();
      await page.waitForURL(/os_below=100/);
      const below = (await server.api("GET", "/v1/inventory?platform=macOS&os_version_below=100")).json.devices.length;
      assert.ok(below > 0);
      await page
        .locator("table.list tbody tr")
        .nth(below - 1)
        .waitFor();
      assert.equal(await page.locator("table.list tbody tr").count(), below);

      // Devices: search by serial, open the device.
      const sim = macs[0]!;
      const mac = (await server.api("GET", `/v1/enrollments/${sim.udid}`)).json;
      await page.goto(`${server.url}/ui/#/devices`);
      await page.getByLabel("Search serial, UDID, name or user").fill(mac.serial_number.toLowerCase());
      await page.getByRole("button", { name: "Search" }).click();
      await page.waitForURL(/q=/);
      await page.getByRole("link", { name: mac.device_name }).click();
      await page.getByRole("heading", { name: mac.device_name, level: 1 }).waitFor();
      // Its inventory: each field with where and when it was learned.
      const inventory = page.getByRole("region", { name: "Inventory" });
      const serialRow = inventory.getByRole("row", { name: /serial_number/ });
      await serialRow.waitFor();
      assert.match((await serialRow.textContent()) ?? "", new RegExp(`${mac.serial_number}.*Authenticate`));

      // Queue DeviceInformation from its form; the API shows it queued.
      await page.getByRole("combobox", { name: /^Command/ }).selectOption("DeviceInformation");
      await page.getByRole("button", { name: "Queue", exact: true }).click();
      await page.getByRole("status").filter({ hasText: "Queued DeviceInformation" }).waitFor();
      const queued = (await server.api("GET", `/v1/queue/${sim.udid}`)).json.commands;
      assert.deepEqual(
        queued.map((c: { request_type: string }) => c.request_type),
        ["DeviceInformation"],
      );
      // The device answers; the result is shown as structured data.
      const sent = await sim.report("Idle");
      assert.equal(sent.plist?.CommandUUID, queued[0].command_uuid);
      await sim.report("Acknowledged", {
        CommandUUID: queued[0].command_uuid,
        QueryResponses: { DeviceName: "Answered Mac", OSVersion: "14.6" },
      });
      await page.reload();
      await page.getByRole("button", { name: "Show result" }).first().click();
      await page.locator(".result dt", { hasText: "QueryResponses" }).waitFor();
      await page.locator(".result dd", { hasText: "Answered Mac" }).first().waitFor();

      // A command queued, then the queue cleared.
      await page.getByRole("combobox", { name: /^Command/ }).selectOption("ProfileList");
      await page.getByRole("button", { name: "Queue", exact: true }).click();
      await page.getByRole("status").filter({ hasText: "Queued ProfileList" }).waitFor();
      await page.getByRole("button", { name: "Clear the queue" }).click();
      await page.getByRole("status").filter({ hasText: "Queue cleared: 1" }).waitFor();
      assert.deepEqual((await server.api("GET", `/v1/queue/${sim.udid}`)).json.commands, []);

      // A held re-binding, approved.
      await page.goto(`${server.url}/ui/#/device/${held.udid}`);
      await page.getByRole("heading", { name: "Held re-binding" }).waitFor();
      await page.getByRole("button", { name: "Approve" }).click();
      await page.getByRole("status").filter({ hasText: "Approved" }).waitFor();
      const rebind = (await server.api("GET", `/v1/enrollments/${held.udid}/rebind`)).json;
      assert.equal(rebind.held.cert_fingerprint, held.fingerprint);
      assert.ok(rebind.held.approved_at);

      // A network user added, then declined.
      await page.getByRole("link", { name: "Network users" }).click();
      await page.getByLabel("Short name").fill("carol");
      await page.getByLabel("Full name").fill("Carol <i>C</i>");
      await page.getByLabel("Password").fill("carol-password-1");
      await page.getByRole("button", { name: "Save user" }).click();
      await page.getByRole("status").filter({ hasText: "Saved carol" }).waitFor();
      const carol = await server.api("GET", "/v1/users/carol");
      assert.equal(carol.status, 200);
      assert.equal(carol.json.full_name, "Carol <i>C</i>");
      await page.getByRole("button", { name: "Decline carol" }).click();
      await page.getByRole("status").filter({ hasText: "carol is now declined" }).waitFor();
      assert.equal((await server.api("GET", "/v1/users/carol")).json.state, "declined");

      // DDM: the server's schema errors appear as the declaration is typed; saved once valid; a set made and assigned.
      await page.getByRole("link", { name: "Declarations" }).click();
      await page.getByRole("link", { name: "New declaration" }).click();
      const editor = page.getByLabel("Declaration (JSON: Type, Identifier, Payload)");
      await editor.fill(
        '{"Type": "com.apple.configuration.passcode.settings", "Identifier": "com.example.console", "Payload": {"MinimumLength": "six"}}',
      );
      await page.locator("#check ul.error li").first().waitFor();
      assert.match((await page.locator("#check").textContent()) ?? "", /MinimumLength/);
      assert.equal(await page.getByRole("button", { name: "Save" }).isDisabled(), true);
      await editor.fill(
        '{"Type": "com.apple.configuration.passcode.settings", "Identifier": "com.example.console", "Payload": {"MinimumLength": 6}}',
      );
      await page.locator("#check .ok").waitFor();
      await page.getByRole("button", { name: "Save" }).click();
      // A new declaration, once saved, opens as itself.
      await page.getByRole("heading", { name: "com.example.console" }).waitFor();
      assert.equal((await server.api("GET", "/v1/declarations/com.example.console")).status, 200);
      await page.getByLabel("New set's name").fill("console-set");
      await page.getByLabel("Its first declaration").selectOption("com.example.console");
      await page.getByRole("button", { name: "Make set" }).click();
      await page.getByRole("heading", { name: "Set console-set" }).waitFor();
      await page.getByLabel(/Assign to an enrollment id/).fill(sim.udid);
      await page.getByRole("button", { name: "Assign" }).click();
      await page
        .getByRole("status")
        .filter({ hasText: `console-set assigned to ${sim.udid}` })
        .waitFor();
      assert.deepEqual((await server.api("GET", `/v1/enrollment-sets/${sim.udid}`)).json, ["console-set"]);
      // A mistyped id is assigned all the same (it may enroll later), and the server's warning is shown as one.
      await page.getByLabel(/Assign to an enrollment id/).fill("NO-SUCH-UDID");
      await page.getByRole("button", { name: "Assign" }).click();
      await page.getByRole("alert").filter({ hasText: 'enrollment "NO-SUCH-UDID": no such enrollment' }).waitFor();
      assert.equal((await server.api("DELETE", "/v1/enrollment-sets-all/NO-SUCH-UDID")).status < 300, true);

      // OS updates: a policy made from its form, its compliance linking to the device list, edited, removed.
      await page.getByRole("link", { name: "OS updates" }).click();
      await page.getByRole("button", { name: "New policy" }).click();
      const form = page.getByRole("form", { name: "Update policy" });
      await form.getByLabel("Name").fill("console-macs");
      await form.locator('select[name="platform"]').selectOption("macOS");
      await form.getByLabel("Deadline (days after Apple posts)").fill("7");
      await form.getByRole("button", { name: "Save policy" }).click();
      await page.getByRole("status").filter({ hasText: "Created console-macs" }).waitFor();
      const policy = (await server.api("GET", "/v1/updates/policies/console-macs")).json;
      assert.equal(policy.platform, "macOS");
      assert.equal(policy.deadline_days, 7);
      const compliance = (await server.api("GET", "/v1/updates/policies/console-macs/compliance")).json;
      const [state, count] = Object.entries(compliance.counts as Record<string, number>).find(([, n]) => n > 0)!;
      const row = page.getByRole("row", { name: /console-macs/ });
      await row.locator(`a[href$="compliance=${state}"]`).click();
      await page.waitForURL(new RegExp(`policy=console-macs&compliance=${state}`));
      await page
        .locator("table.list tbody tr")
        .nth(count - 1)
        .waitFor();
      assert.equal(await page.locator("table.list tbody tr").count(), count);
      assert.equal(await page.locator("table.list tbody tr", { hasText: state.replace(/_/g, " ") }).count(), count);
      await page.getByRole("link", { name: "OS updates" }).click();
      await page.getByRole("button", { name: "Edit console-macs" }).click();
      await form.getByLabel("Deadline (days after Apple posts)").fill("3");
      // A mistake is the server's 400, shown as it said it.
      await form.getByLabel("At (device's local time)").fill("7pm");
      await form.getByRole("button", { name: "Save policy" }).click();
      await form.getByRole("alert").filter({ hasText: "deadline_time" }).waitFor();
      await form.getByLabel("At (device's local time)").fill("18:30:00");
      await form.getByRole("button", { name: "Save policy" }).click();
      // The save says this policy's own devices, and shows what the server warned of.
      await page.getByRole("status").filter({ hasText: "Saved console-macs" }).waitFor();
      const reach = (await server.api("GET", "/v1/updates/policies/console-macs/compliance")).json.total;
      await page
        .getByRole("status")
        .filter({ hasText: `Saved console-macs. ${reach} device(s)` })
        .waitFor();
      await page.getByRole("button", { name: "Edit console-macs" }).click();
      await form.getByLabel(/^Settings/).fill('{"Notifications": true, "NoSuchKey": 1}');
      await form.getByRole("button", { name: "Save policy" }).click();
      await page
        .getByRole("alert")
        .filter({ hasText: /Saved with warnings: settings.*NoSuchKey/ })
        .waitFor();
      const edited = (await server.api("GET", "/v1/updates/policies/console-macs")).json;
      assert.deepEqual([edited.deadline_days, edited.deadline_time], [3, "18:30:00"]);
      await page.getByRole("button", { name: "Remove console-macs" }).click();
      await page.getByRole("status").filter({ hasText: "Removed console-macs" }).waitFor();
      assert.equal((await server.api("GET", "/v1/updates/policies/console-macs")).status, 404);
      await page.getByText("fetched").first().waitFor();

      // ADE: the ABM server with its token's days left and devices synced; a Mac awaiting configuration released.
      await page.getByRole("link", { name: "ADE", exact: true }).click();
      const abm = page.getByRole("row", { name: /console-abm/ }).first();
      await abm.getByText(/\d+ days left/).waitFor();
      await abm.getByRole("link", { name: "3", exact: true }).waitFor();
      const waiting = page.getByRole("row", { name: new RegExp(ADE_SERIAL) });
      await waiting.getByText("running step 2/3").waitFor();
      await waiting.getByRole("button", { name: `Release ${ADE_SERIAL}` }).click();
      await page
        .getByRole("status")
        .filter({ hasText: `${ADE_SERIAL} released` })
        .waitFor();
      assert.equal((await server.api("GET", `/v1/ade/enrollments/${ADE_SERIAL}`)).json.state, "releasing");
      const macQueue = (await server.api("GET", `/v1/queue/${macs[1]!.udid}`)).json.commands as Array<{ request_type: string }>;
      assert.ok(macQueue.some((c) => c.request_type === "DeviceConfigured"));

      // Operators: an account added, its role changed, disabled; a token of one's own, shown once, then revoked.
      await page.getByRole("link", { name: "Operators", exact: true }).click();
      await page.getByLabel("New operator's name").fill("console-new");
      await page.getByRole("form", { name: "Add an operator" }).locator('select[name="role"]').selectOption("operator");
      await page.getByLabel("Initial password").fill("console-new-password-1");
      await page.getByRole("button", { name: "Add operator" }).click();
      await page.getByRole("status").filter({ hasText: "Added console-new (operator)" }).waitFor();
      await page.getByLabel("Role of console-new").selectOption("auditor");
      await page.getByRole("status").filter({ hasText: "console-new is now auditor" }).waitFor();
      await page.getByRole("button", { name: "Disable console-new" }).click();
      await page.getByRole("status").filter({ hasText: "console-new is disabled" }).waitFor();
      const added = (await server.api("GET", "/v1/operators/console-new")).json;
      assert.deepEqual([added.role, added.disabled], ["auditor", true]);
      await page.getByLabel("Token label").fill("console script");
      await page.locator('select[name="token_role"]').selectOption("auditor");
      await page.getByRole("button", { name: "Create token" }).click();
      const secret = (await page.locator("code.secret").textContent()) ?? "";
      const me = await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${secret}` } });
      assert.equal(me.status, 200);
      const meJson = await me.json();
      assert.deepEqual([meJson.name, meJson.role], [ADMIN.name, "auditor"]);
      assert.match(meJson.credential, /^token:/);
      await page.getByRole("button", { name: "Revoke console script" }).click();
      await page.getByRole("status").filter({ hasText: "Revoked console script" }).waitFor();
      assert.equal(await page.locator("code.secret").count(), 0, "the token is shown once, not after");
      assert.equal((await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${secret}` } })).status, 401);

      // Enrollment: a SCEP challenge, shown once.
      await page.getByRole("link", { name: "Enrollment" }).click();
      await page.getByRole("button", { name: "New challenge" }).click();
      await page.getByRole("status").filter({ hasText: "Challenge" }).waitFor();

      // Events, live: the approval above is there.
      await page.getByRole("link", { name: "Events" }).click();
      await page.getByRole("cell", { name: "enrollment.rebind_approved" }).first().waitFor();

      // The audit log: every change above, by this operator, each with its objects.
      await page.getByRole("link", { name: "Audit log" }).click();
      await page
        .getByRole("cell", { name: /ddm\.enrollment_set_add/ })
        .first()
        .waitFor();
      const audit = (await server.api("GET", `/v1/audit?actor=${ADMIN.name}&limit=100`)).json.entries as Array<{ action: string }>;
      const actions = new Set(audit.map((e) => e.action));
      for (const action of [
        "session.sign_in",
        "command.enqueue",
        "queue.clear",
        "enrollment.rebind_approve",
        "user.put",
        "ddm.declaration_put",
        "ddm.set_declaration_add",
        "ddm.enrollment_set_add",
        "scep.challenge_create",
        "updates.policy_put",
        "updates.policy_remove",
        "ade.device_release",
        "operator.add",
        "operator.change",
        "token.create",
        "token.revoke",
      ]) {
        assert.ok(actions.has(action), `the audit log has ${action}: ${[...actions].join(", ")}`);
      }

      // Sign out: the session ends, the sign-in page is back.
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByLabel("Password").waitFor();
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test("roles: an auditor sees no change buttons and a forced change is refused as a message; an operator cannot reach accounts", async (t) => {
    const s = await signedIn(t, { as: AUDITOR });
    if (!s) return;
    const { page, problems, context } = s;
    try {
      // Something to change on every page an operator acts on.
      assert.equal(
        (await server.api("PUT", "/v1/updates/policies/role-check", { platform: "iOS", mode: "latest", deadline_days: 5 })).status,
        201,
      );
      for (const where of [
        `device/${macs[0]!.udid}`,
        `device/${held.udid}`,
        "users",
        "ddm?declaration=com.example.console",
        "updates",
        "enrollment",
        "ade",
        "operators",
      ]) {
        await page.goto(`${server.url}/ui/#/${where}`);
        await page.locator("main h1").waitFor();
        await page.waitForLoadState("networkidle");
        const buttons = await page.locator("main button").allInnerTexts();
        const changes = buttons.map((b) => b.trim()).filter((b) => !READ_BUTTONS.has(b));
        assert.deepEqual(changes, [], `#/${where} offers ${changes.join(", ")} to an auditor`);
      }
      assert.equal(await page.getByRole("heading", { name: "Accounts" }).count(), 0);
      await page.getByRole("heading", { name: "Your API tokens" }).waitFor();
    } finally {
      await context.close();
    }
    // An operator's page still shows its buttons when an admin makes them an auditor: the click is refused, as a message.
    const o = await signedIn(t, { as: OPERATOR });
    if (!o) return;
    try {
      await o.page.getByRole("link", { name: "OS updates" }).click();
      await o.page.getByRole("button", { name: "Remove role-check" }).waitFor();
      assert.equal((await server.api("PATCH", `/v1/operators/${OPERATOR.name}`, { role: "auditor" })).status, 200);
      await o.page.getByRole("button", { name: "Remove role-check" }).click();
      await o.page.getByRole("alert").filter({ hasText: "needs the operator role" }).waitFor();
      assert.equal((await server.api("GET", "/v1/updates/policies/role-check")).status, 200, "the policy is still there");
      const refused = (await server.api("GET", `/v1/audit?actor=${OPERATOR.name}&action=updates.policy_remove`)).json.entries;
      assert.deepEqual(
        refused.map((e: { status: number }) => e.status),
        [403],
      );
      assert.equal(await o.page.getByRole("navigation", { name: "Pages" }).count(), 1, "still signed in: the page did not crash");
      assert.equal((await server.api("PATCH", `/v1/operators/${OPERATOR.name}`, { role: "operator" })).status, 200);
      // An operator: no accounts on the page, and the server refuses them with the operator's own session.
      await o.page.getByRole("link", { name: "Operators", exact: true }).click();
      await o.page.getByRole("heading", { name: "Your API tokens" }).waitFor();
      assert.equal(await o.page.getByRole("heading", { name: "Accounts" }).count(), 0);
      assert.equal(await o.page.getByRole("button", { name: "Add operator" }).count(), 0);
      const status = await o.page.evaluate(async () => (await fetch("/v1/operators", { credentials: "same-origin" })).status);
      assert.equal(status, 403);
      assert.deepEqual([...problems, ...o.problems], []);
    } finally {
      await o.context.close();
      await server.api("DELETE", "/v1/updates/policies/role-check");
    }
  });

  test("readable on a tablet: no page wider than the screen", async (t) => {
    const s = await signedIn(t, { width: 768 });
    if (!s) return;
    const { page, problems, context } = s;
    try {
      for (const where of [
        "fleet",
        "devices",
        `device/${macs[0]!.udid}`,
        "users",
        "ddm",
        "updates",
        "enrollment",
        "ade",
        "events",
        "audit",
        "operators",
      ]) {
        await page.goto(`${server.url}/ui/#/${where}`);
        await page.locator("main h1").waitFor();
        await page.waitForLoadState("networkidle");
        const width = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(width <= 768, `#/${where} is ${width}px wide at 768px`);
      }
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});

/** An operator account, made by the admin (the API key) as `orchard operators add` would. */
async function addOperator(server: TestServer, name: string, role: string, password: string): Promise<void> {
  const r = await server.api("POST", "/v1/operators", { name, role, password });
  assert.equal(r.status, 201, r.text);
}
