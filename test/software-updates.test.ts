// OS updates through DDM end to end, on both stores: simulated Macs and
// iPhones of several models enroll, "latest + 7 days" policies give each its
// target from a test feed (test/fixtures/software-updates/pmv.json, made up
// in Apple's shape), a device already current gets no enforcement
// declaration, a new version in the feed moves the targets, the devices'
// status reports move them through the compliance states, and a broken feed
// keeps the last good copy.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import { OPENAPI } from "../src/http/openapi.ts";
import { issueDeviceIdentity } from "../src/identity/testing/pki.ts";
import type { PlistDict } from "../src/plist/index.ts";
import { DdmChannel, type DdmSend } from "../src/sim/ddm.ts";
import { SimDevice } from "../src/sim/device.ts";
import { answerCommand, type DeviceProfile } from "../src/sim/responder.ts";
import { Rng } from "../src/sim/rng.ts";
import { ZONE_ASK_COMMAND_PREFIX } from "../src/updates/zone-ask.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { SOFTWARE_LOOKUP_FIXTURE, startTestServer, type TestServer } from "./support/server.ts";
import { WebhookReceiver } from "./support/webhook-receiver.ts";

const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
ajv.addSchema({ $id: "orchard", components: OPENAPI.components });
type Op = { responses: Record<string, { content?: Record<string, { schema: object }> }> };

/** An answer is what the OpenAPI document says this route answers with this status. */
function assertDocumented(method: string, template: string, r: { status: number; json: unknown; text: string }): void {
  const op = (OPENAPI.paths as unknown as Record<string, Record<string, Op>>)[template]?.[method.toLowerCase()];
  assert.ok(op, `${method} ${template} is not documented`);
  const schema = op.responses[String(r.status)]?.content?.["application/json"]?.schema;
  assert.ok(schema, `${method} ${template} ${r.status} is not documented: ${r.text}`);
  const validate = ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"orchard#/components/')));
  assert.ok(validate(r.json), `${method} ${template} ${r.status}: ${ajv.errorsText(validate.errors)}\n${r.text}`);
}

const ENFORCEMENT = "com.apple.configuration.softwareupdate.enforcement.specific";
const DAY_MS = 86_400_000;

interface TestDevice {
  sim: SimDevice;
  ddm: DdmChannel;
  send: DdmSend;
}

/** Today and today + 7 days (UTC), for the release the test posts "today". */
const today = new Date().toISOString().slice(0, 10);
const inAWeek = new Date(Date.parse(`${today}T00:00:00Z`) + 7 * DAY_MS).toISOString().slice(0, 10);

/** The fixture feed with a new macOS and iOS release posted today (the second feed the server reads). */
function feedWithNewReleases(): string {
  const feed = JSON.parse(fs.readFileSync(SOFTWARE_LOOKUP_FIXTURE, "utf8"));
  feed.PublicAssetSets.macOS.unshift({
    ProductVersion: "15.3",
    Build: "24D60",
    PostingDate: today,
    ExpirationDate: inAWeek,
    SupportedDevices: ["Mac14,2", "Mac15,3"],
  });
  feed.PublicAssetSets.iOS.unshift({
    ProductVersion: "18.3",
    Build: "22D63",
    PostingDate: today,
    SupportedDevices: ["iPhone15,2", "iPhone15,4", "iPhone16,1"],
  });
  return JSON.stringify(feed);
}

await forEachBackend("OS updates through DDM", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  /** Receives the update.* events (--webhook-topics). */
  let receiver: WebhookReceiver;
  let tmp: string;
  let feedFile: string;
  const d: Record<string, TestDevice> = {};
  let n = 0;

  async function enroll(platform: "macOS" | "iOS", facts: PlistDict, o: { updateFailure?: string } = {}): Promise<TestDevice> {
    const identity = await issueDeviceIdentity(fleet.ca, { commonName: `update-device-${++n}`, keyPair: fleet.key });
    const sim = new SimDevice({ transport: fleet.transport, identity, mode: { kind: "header", header: "x-client-cert" }, platform, facts });
    await sim.enroll();
    const ddm = new DdmChannel(
      {
        udid: sim.udid,
        serialNumber: sim.serialNumber,
        family: platform,
        osVersion: String(facts.OSVersion),
        buildVersion: String(facts.BuildVersion),
        model: String(facts.ProductName),
        modelName: String(facts.ModelName ?? ""),
      },
      o,
    );
    const send: DdmSend = (endpoint, data) => sim.checkin("DeclarativeManagement", { Endpoint: endpoint, ...(data ? { Data: data } : {}) });
    return { sim, ddm, send };
  }

  const mac = (model: string, version: string, build: string) => ({
    ProductName: model,
    Model: model,
    ModelName: "Mac",
    OSVersion: version,
    BuildVersion: build,
  });
  const iphone = (model: string, version: string, build: string) => ({
    ProductName: model,
    ModelName: "iPhone",
    OSVersion: version,
    BuildVersion: build,
  });

  /** The enforcement declarations a device installed on its last sync. */
  const enforced = (t: TestDevice) =>
    [...t.ddm.installed.values()]
      .filter((x) => x.type === ENFORCEMENT)
      .map((x) => [x.payload.TargetOSVersion, x.payload.TargetBuildVersion, x.payload.TargetLocalDateTime]);
  const device = async (t: TestDevice) => (await server.api("GET", `/v1/updates/devices/${t.sim.udid}`)).json;
  /** Polls until check() holds (true), or gives up after 30 s (false): prompt re-targeting runs on a 1 s sweep. */
  const eventually = async (check: () => Promise<boolean>): Promise<boolean> => {
    for (let i = 0; i < 300; i++) {
      if (await check()) return true;
      await new Promise((res) => setTimeout(res, 100));
    }
    return false;
  };
  const events = async (type: string, t?: TestDevice) =>
    (await server.api("GET", `/v1/events?type=${type}&limit=100${t ? `&enrollment=${t.sim.udid}` : ""}`)).json.events;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-updates-"));
    feedFile = path.join(tmp, "pmv.json");
    fs.copyFileSync(SOFTWARE_LOOKUP_FIXTURE, feedFile);
    receiver = await WebhookReceiver.start();
    server = await startTestServer(
      [
        "--software-lookup-url",
        `file:${feedFile}`,
        "--software-lookup-interval",
        "0",
        ...["--webhook-url", receiver.url, "--webhook-topics", "update.*", "--webhook-backoff", "50ms"],
      ],
      backend,
    );
    fleet = await testFleet(server.url);
    d.m1 = await enroll("macOS", mac("Mac14,2", "15.1", "24B83"));
    d.m2 = await enroll("macOS", mac("Mac15,3", "15.2", "24C101"));
    d.m3 = await enroll("macOS", mac("MacBookPro14,1", "13.6", "22G120"));
    d.i1 = await enroll("iOS", iphone("iPhone15,2", "17.5", "21F79"));
    d.i2 = await enroll("iOS", iphone("iPhone10,1", "16.7.10", "20H350"));
  });
  after(async () => {
    fleet?.close();
    await server?.stop();
    await receiver?.down();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test("bad policy input is a 400 naming what is wrong, and stores nothing", async () => {
    const bad: Array<[string, unknown, RegExp]> = [
      ["macs", { platform: "macOS" }, /mode/],
      ["macs", { platform: "Windows", mode: "latest", deadline_days: 7 }, /platform/],
      ["macs", { platform: "macOS", mode: "latest" }, /deadline_days/],
      ["macs", { platform: "macOS", mode: "latest", deadline_days: 7.5 }, /deadline_days/],
      ["macs", { platform: "macOS", mode: "latest", deadline_days: 7, deadline_time: "25:00:00" }, /deadline_time/],
      ["macs", { platform: "macOS", mode: "latest", deadline_days: 7, target_os_version: "15.2" }, /target_os_version/],
      ["macs", { platform: "macOS", mode: "version", target_os_version: "15.2" }, /target_local_date_time/],
      [
        "macs",
        { platform: "macOS", mode: "version", target_os_version: "fifteen", target_local_date_time: "2030-01-01T10:00:00" },
        /target_os_version/,
      ],
      [
        "macs",
        { platform: "macOS", mode: "version", target_os_version: "15.2", target_local_date_time: "2030-02-30T10:00:00" },
        /target_local_date_time/,
      ],
      [
        "macs",
        { platform: "macOS", mode: "version", target_os_version: "15.2", target_local_date_time: "0050-03-29T02:30:00" },
        /target_local_date_time/,
      ],
      ["macs", { platform: "macOS", mode: "latest", deadline_days: 7, enrollments: { ids: [] } }, /enrollments/],
      ["macs", { platform: "macOS", mode: "latest", deadline_days: 7, enrollments: { set: "a", ids: ["b"] } }, /enrollments/],
      ["macs", { platform: "macOS", mode: "latest", deadline_days: 7, settings: { Deferrals: { MajorPeriodInDays: "ten" } } }, /settings/],
      ["macs", { platform: "macOS", mode: "latest", deadline_days: 7, details_url: "javascript:alert(1)" }, /details_url/],
      ["macs", { platform: "macOS", mode: "latest", deadline_days: 7, details_url: "https://it.example/\u0000" }, /details_url/],
      ["macs", { platform: "macOS", mode: "latest", deadline_days: 7, details_url: "https://it.example/a\nb" }, /details_url/],
      ["macs", { platform: "macOS", mode: "latest", deadline_days: 7, colour: "red" }, /colour/],
      ["bad name!", { platform: "macOS", mode: "latest", deadline_days: 7 }, /policy name/],
      ["x".repeat(41), { platform: "macOS", mode: "latest", deadline_days: 7 }, /policy name/],
    ];
    for (const [name, body, reason] of bad) {
      const r = await server.api("PUT", `/v1/updates/policies/${encodeURIComponent(name)}`, body as object);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.match(r.json.error, reason, JSON.stringify(body));
    }
    assert.equal((await server.api("PUT", "/v1/updates/policies/macs", "{not json")).status, 400);
    assert.deepEqual((await server.api("GET", "/v1/updates/policies")).json.policies, []);
    assert.equal((await server.api("GET", "/v1/updates/feed")).json.fetched_at, null, "no policy was stored, so no feed was read");
  });

  test('"latest + 7 days" gives each device the newest release its model runs; a current device gets none', async () => {
    const macs = await server.api("PUT", "/v1/updates/policies/macs", {
      platform: "macOS",
      mode: "latest",
      deadline_days: 7,
      settings: { Notifications: true, Deferrals: { MajorPeriodInDays: 30 } },
    });
    assert.equal(macs.status, 201, macs.text);
    assert.deepEqual(macs.json.applied, { devices: 3, targeted: 2, targets: 2, changed: 3, released: 0, skipped: false });
    const phones = await server.api("PUT", "/v1/updates/policies/iphones", { platform: "iOS", mode: "latest", deadline_days: 7 });
    assert.equal(phones.status, 201, phones.text);
    assert.deepEqual(phones.json.applied, { devices: 5, targeted: 3, targets: 3, changed: 2, released: 0, skipped: false });

    const target = async (t: TestDevice) => (await device(t)).target;
    assert.deepEqual(await target(d.m1!), {
      os_version: "15.2",
      build_version: "24C101",
      local_date_time: "2024-12-18T19:00:00",
      set: (await target(d.m1!)).set,
    });
    assert.equal(await target(d.m2!), null);
    assert.equal((await device(d.m2!)).state, "up_to_date");
    // MacBookPro14,1 cannot run 15.2: the newest it can run.
    assert.equal((await target(d.m3!)).os_version, "13.7.2");
    assert.equal((await target(d.i1!)).os_version, "18.2");
    assert.equal(await target(d.i2!), null, "iPhone10,1 runs the newest release it can");

    for (const t of Object.values(d)) await t.ddm.sync(t.send);
    assert.deepEqual(enforced(d.m1!), [["15.2", "24C101", "2024-12-18T19:00:00"]]);
    assert.deepEqual(enforced(d.m2!), []);
    assert.deepEqual(enforced(d.m3!), [["13.7.2", "22H313", "2024-12-18T19:00:00"]]);
    assert.deepEqual(enforced(d.i1!), [["18.2", "22C152", "2024-12-18T19:00:00"]]);
    assert.deepEqual(enforced(d.i2!), []);
    // Every device of a policy has its status subscription and settings, active.
    const types = [...d.m2!.ddm.installed.values()].map((x) => x.type).sort();
    assert.deepEqual(types, [
      "com.apple.activation.simple",
      "com.apple.configuration.management.status-subscriptions",
      "com.apple.configuration.softwareupdate.settings",
    ]);
    // One declaration per distinct target, whatever the number of devices.
    const ids: string[] = (await server.api("GET", "/v1/declarations")).json;
    assert.equal(ids.filter((id) => id.startsWith("orchard.su.") && !id.endsWith(".a") && /\.[0-9a-f]{10}$/.test(id)).length, 3);

    // The deadlines (Apple's 2024 posting dates + 7 days) have passed: overdue, told once each.
    assert.equal((await device(d.m1!)).state, "overdue");
    const overdue = await events("update.overdue");
    assert.deepEqual(
      overdue.map((e: { enrollment_id: string }) => e.enrollment_id).sort(),
      [d.m1!.sim.udid, d.m3!.sim.udid, d.i1!.sim.udid].sort(),
    );
    assert.equal(overdue.find((e: { enrollment_id: string }) => e.enrollment_id === d.m1!.sim.udid).detail.deadline, "2024-12-18T19:00:00");
    await server.api("POST", "/v1/updates/apply");
    assert.equal((await events("update.overdue")).length, 3, "not told again");
  });

  test("a new version in the feed moves the targets, and the devices sync", async () => {
    fs.writeFileSync(feedFile, feedWithNewReleases());
    const r = await server.api("POST", "/v1/updates/feed/refresh");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.refreshed, true);
    assert.equal(r.json.changed, true);
    // update.feed_changed's maps are keyed by the feed's platforms, as GET /v1/updates/feed names them, in the API and the webhook.
    const changed = (await events("update.feed_changed")).at(-1);
    const detail = { url: r.json.url, releases: r.json.releases, newest: { iOS: "18.3", macOS: "15.3", visionOS: "2.2" } };
    assert.deepEqual(r.json.releases, { iOS: 5, macOS: 5, visionOS: 1 });
    assert.deepEqual(changed.detail, detail);
    assert.equal(
      await eventually(async () => receiver.received.filter((x) => x.json.topic === "update.feed_changed").length === 2),
      true,
      "both feed changes reached the webhook",
    );
    const hooked = receiver.received.filter((x) => x.json.topic === "update.feed_changed").at(-1)!.json.orchard_event;
    assert.deepEqual(hooked.detail, detail);
    const deadline = `${inAWeek}T19:00:00`;
    assert.deepEqual(
      { ...(await device(d.m1!)).target, set: undefined },
      { os_version: "15.3", build_version: "24D60", local_date_time: deadline, set: undefined },
    );
    assert.equal((await device(d.m2!)).target.os_version, "15.3", "the device that was current has a target now");
    assert.equal((await device(d.m2!)).state, "pending", "it reported install-state none: nothing started yet");
    assert.equal((await device(d.m3!)).target.os_version, "13.7.2", "unchanged");
    assert.equal((await device(d.i1!)).target.os_version, "18.3");
    // The old 15.2 declaration went with its set.
    const ids: string[] = (await server.api("GET", "/v1/declarations")).json;
    const targets = await Promise.all(
      ids
        .filter((id) => /^orchard\.su\..*\.[0-9a-f]{10}$/.test(id))
        .map(async (id) => (await server.api("GET", `/v1/declarations/${id}`)).json.Payload.TargetOSVersion),
    );
    assert.deepEqual(targets.sort(), ["13.7.2", "15.3", "18.3"]);
    // The DDM sync queues a DeclarativeManagement command for each device whose target moved.
    for (const t of [d.m1!, d.m2!, d.i1!]) {
      let queued = false;
      for (let i = 0; i < 50 && !queued; i++) {
        const q = (await server.api("GET", `/v1/queue/${t.sim.udid}`)).json;
        queued = JSON.stringify(q).includes("DeclarativeManagement");
        if (!queued) await new Promise((res) => setTimeout(res, 100));
      }
      assert.ok(queued, `${t.sim.udid} got a DeclarativeManagement command`);
    }
    for (const t of Object.values(d)) await t.ddm.sync(t.send);
    assert.deepEqual(enforced(d.m1!), [["15.3", "24D60", deadline]]);
    assert.deepEqual(enforced(d.m2!), [["15.3", "24D60", deadline]]);
  });

  test("status reports move devices through the compliance states", async () => {
    // The sync above started the update (install-state downloading).
    assert.equal((await device(d.m1!)).state, "downloading");
    assert.equal(await d.m1!.ddm.advanceUpdate(d.m1!.send), true);
    assert.equal((await device(d.m1!)).state, "installing");
    assert.equal(await d.m1!.ddm.advanceUpdate(d.m1!.send), true);
    assert.equal((await device(d.m1!)).state, "up_to_date", "it reported 15.3");
    const compliance = (await server.api("GET", "/v1/updates/policies/macs/compliance")).json;
    assert.equal(compliance.total, 3);
    assert.equal(compliance.counts.up_to_date, 1);
    assert.equal(compliance.counts.downloading, 1);
    assert.equal(compliance.counts.overdue, 1);
    // Its report of 15.3 re-targets it at once (no apply, no sweep): out of its target set.
    assert.equal(await eventually(async () => (await device(d.m1!)).target === null), true, "re-targeted after its new OS version");
    // Its row is written first, then its set memberships (service.ts): a sync in between still finds the old set.
    assert.equal(
      await eventually(async () => {
        await d.m1!.ddm.sync(d.m1!.send);
        return enforced(d.m1!).length === 0;
      }),
      true,
      "its enforcement is withdrawn",
    );

    // A Mac whose update fails: failed with Apple's reason, told once.
    const m4 = await enroll("macOS", mac("Mac15,3", "15.1", "24B83"), { updateFailure: "Insufficient storage" });
    // A new Mac gets its target at once (its first TokenUpdate), not at the next full re-targeting.
    assert.equal(await eventually(async () => (await device(m4)).target?.os_version === "15.3"), true, "targeted on enrollment");
    assert.equal((await server.api("POST", "/v1/updates/apply")).json.changed, 0, "nothing left for the full run");
    assert.equal((await device(m4)).state, "not_reporting", "no status report yet");
    await m4.ddm.sync(m4.send);
    assert.equal((await device(m4)).state, "downloading");
    await m4.ddm.advanceUpdate(m4.send);
    assert.deepEqual([(await device(m4)).state, (await device(m4)).reason], ["failed", "Insufficient storage"]);
    const again = {
      StatusItems: { softwareupdate: { "install-state": "failed", "failure-reason": { count: 2, reason: "Insufficient storage" } } },
      Errors: [],
      FullReport: false,
    };
    assert.equal((await m4.send("status", Buffer.from(JSON.stringify(again)))).status, 200);
    const failed = await events("update.failed", m4);
    assert.equal(failed.length, 1, "told once");
    assert.equal(failed[0].detail.reason, "Insufficient storage");
    assert.equal(failed[0].detail.target_os_version, "15.3");
    const devices = (await server.api("GET", "/v1/updates/policies/macs/devices?state=failed")).json;
    assert.deepEqual(
      devices.devices.map((x: { enrollment_id: string }) => x.enrollment_id),
      [m4.sim.udid],
    );
  });

  test("a broken feed keeps the last good copy, and says so", async () => {
    const before = (await server.api("GET", "/v1/updates/feed")).json;
    assert.deepEqual(before.releases, { iOS: 5, macOS: 5, visionOS: 1 });
    for (const [content, reason] of [
      ["{ not json", /not JSON/],
      [JSON.stringify({ PublicAssetSets: { macOS: [{ ProductVersion: "15.4" }] } }), /Build/],
      [undefined, /no such file/],
    ] as const) {
      if (content === undefined) fs.rmSync(feedFile);
      else fs.writeFileSync(feedFile, content);
      const r = await server.api("POST", "/v1/updates/feed/refresh");
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.refreshed, false);
      assert.match(r.json.error, reason);
      assert.deepEqual(r.json.releases, before.releases, "the good copy stays");
      assert.equal(r.json.fetched_at, before.fetched_at);
    }
    assert.equal((await device(d.m2!)).target.os_version, "15.3", "targets unchanged");
    const failed = await events("update.feed_failed");
    assert.equal(failed.length, 3);
    assert.ok(server.logs.some((l) => l.includes("last good copy stays in use")));
    const metrics = (await server.api("GET", "/v1/metrics")).text;
    assert.match(metrics, /orchard_software_lookup_refreshes_total\{outcome="failed"\} 3/);
    assert.match(metrics, /^orchard_software_lookup_age_seconds \d/m, "the good copy's age");
  });

  test("the answers are what the OpenAPI document says", async () => {
    const check = async (method: string, template: string, url: string, body?: object) =>
      assertDocumented(method, template, await server.api(method, url, body));
    await check("GET", "/v1/updates/feed", "/v1/updates/feed");
    await check("POST", "/v1/updates/feed/refresh", "/v1/updates/feed/refresh");
    await check("GET", "/v1/updates/releases", "/v1/updates/releases?platform=iPadOS");
    await check("GET", "/v1/updates/policies", "/v1/updates/policies");
    await check("GET", "/v1/updates/policies/{name}", "/v1/updates/policies/macs");
    await check("GET", "/v1/updates/policies/{name}", "/v1/updates/policies/nope");
    await check("PUT", "/v1/updates/policies/{name}", "/v1/updates/policies/pinned", {
      platform: "macOS",
      mode: "version",
      target_os_version: "15.3",
      target_local_date_time: "2099-01-01T09:00:00",
      enrollments: { ids: [d.m2!.sim.udid] },
      details_url: "https://example.com/updates",
    });
    await check("PUT", "/v1/updates/policies/{name}", "/v1/updates/policies/pinned", { platform: "macOS" });
    await check("GET", "/v1/updates/policies/{name}/compliance", "/v1/updates/policies/macs/compliance");
    await check("GET", "/v1/updates/policies/{name}/devices", "/v1/updates/policies/macs/devices?limit=2");
    await check("GET", "/v1/updates/devices/{id}", `/v1/updates/devices/${d.m2!.sim.udid}`);
    await check("POST", "/v1/updates/apply", "/v1/updates/apply");
    // The list of ids reaches its device before the policy for all.
    const pinned = (await server.api("GET", `/v1/updates/devices/${d.m2!.sim.udid}`)).json;
    assert.deepEqual([pinned.policy, pinned.target.local_date_time], ["pinned", "2099-01-01T09:00:00"]);
    await check("DELETE", "/v1/updates/policies/{name}", "/v1/updates/policies/pinned");
  });

  test("a removed policy takes its devices out of its sets", async () => {
    const r = await server.api("DELETE", "/v1/updates/policies/iphones");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.applied.released, 2);
    assert.equal((await server.api("GET", `/v1/updates/devices/${d.i1!.sim.udid}`)).status, 404);
    assert.deepEqual((await server.api("GET", `/v1/enrollment-sets/${d.i1!.sim.udid}`)).json, []);
    await d.i1!.ddm.sync(d.i1!.send);
    assert.equal(d.i1!.ddm.installed.size, 0);
    assert.equal((await server.api("DELETE", "/v1/updates/policies/iphones")).status, 404);
  });

  test("an iPhone that told its time zone is judged on its own clock; one that did not, and a Mac, in UTC-12", async () => {
    const HOUR = 3_600_000;
    /** Queues a DeviceInformation for the device and answers it with these QueryResponses (other commands queued first: acknowledged). */
    const answerDeviceInformation = async (t: TestDevice, responses: PlistDict) => {
      const q = await server.api(
        "PUT",
        `/v1/enqueue/${t.sim.udid}?nopush=1`,
        commandPlist("DeviceInformation", undefined, { Queries: ["TimeZone"] }),
      );
      assert.equal(q.status, 200, q.text);
      let answered = false;
      for (let reply = await t.sim.report("Idle"); reply.plist; ) {
        const info = (reply.plist.Command as PlistDict).RequestType === "DeviceInformation";
        answered ||= info;
        reply = await t.sim.report("Acknowledged", {
          CommandUUID: reply.plist.CommandUUID!,
          ...(info ? { QueryResponses: responses } : {}),
        });
      }
      assert.ok(answered, "the DeviceInformation was answered");
    };
    const row = async (t: TestDevice) => (await server.store.softwareUpdates.devices([t.sim.udid])).get(t.sim.udid)!;
    // A deadline one hour past on Kiritimati's clock (UTC+14): 13 hours ahead of UTC's wall clock now.
    const local = new Date(Date.now() + 13 * HOUR).toISOString().slice(0, 19);
    const asUtc = Date.parse(`${local}Z`);
    const east = await enroll("iOS", iphone("iPhone15,2", "17.5", "21F79"));
    const unknown = await enroll("iOS", iphone("iPhone15,2", "17.5", "21F79"));
    const m5 = await enroll("macOS", mac("Mac15,3", "15.1", "24B83"));
    // Their enrollments are re-targeted (the Mac by "macs"), so that only a new fact of theirs re-targets them below.
    assert.equal(await eventually(async () => (await device(m5)).policy === "macs"), true);
    const pin = (platform: string, version: string, ids: string[]) =>
      server.api("PUT", `/v1/updates/policies/zones-${platform}`, {
        platform,
        mode: "version",
        target_os_version: version,
        target_local_date_time: local,
        enrollments: { ids },
      });
    assert.equal((await pin("iOS", "18.3", [east.sim.udid, unknown.sim.udid])).status, 201);
    assert.equal((await pin("macOS", "15.3", [m5.sim.udid])).status, 201);
    for (const t of [east, unknown, m5]) {
      assert.deepEqual([(await row(t)).deadlineAt, (await device(t)).state], [asUtc + 12 * HOUR, "not_reporting"], "no zone yet: UTC-12");
    }

    // The iPhone tells its zone: re-targeted at once, its deadline on its own clock, 26 hours before UTC-12's: overdue, told.
    await answerDeviceInformation(east, { TimeZone: "Pacific/Kiritimati" });
    assert.equal(await eventually(async () => (await row(east)).deadlineAt === asUtc - 14 * HOUR), true, "re-judged in its zone");
    // The row first, then its overdue event (the re-target's next step): waited for, then counted.
    assert.equal(await eventually(async () => (await events("update.overdue", east)).length > 0), true, "told it is overdue");
    assert.equal((await device(east)).state, "overdue");
    assert.equal((await events("update.overdue", east)).length, 1);
    // A zone no database knows is not learned; a Mac's zone, were it to give one, is not believed (macOS has no such query).
    await answerDeviceInformation(unknown, { TimeZone: "Pacific/Atlantis" });
    await answerDeviceInformation(m5, { TimeZone: "Pacific/Kiritimati" });
    assert.equal((await server.api("POST", "/v1/updates/apply")).status, 200);
    assert.equal((await row(east)).deadlineAt, asUtc - 14 * HOUR, "the full run judges it in its zone too");
    for (const t of [unknown, m5]) {
      assert.deepEqual([(await row(t)).deadlineAt, (await device(t)).state], [asUtc + 12 * HOUR, "not_reporting"], "still UTC-12");
    }
    assert.equal((await row(unknown)).deadlineAt! - (await row(east)).deadlineAt!, 26 * HOUR, "26 hours earlier in UTC+14");
  });

  test("Orchard asks an iPhone with a deadline for its time zone, once; the simulator's answer puts its deadline in that zone", async () => {
    const row = async (t: TestDevice) => (await server.store.softwareUpdates.devices([t.sim.udid])).get(t.sim.udid)!;
    /** The DeviceInformation commands Orchard queued for a device (its command history: answered ones too). */
    const zoneAsks = async (t: TestDevice) =>
      (await server.api("GET", `/v1/enrollments/${t.sim.udid}/commands?limit=100`)).json.commands.filter(
        (c: { command_uuid: string; request_type: string }) =>
          c.request_type === "DeviceInformation" && c.command_uuid.startsWith(ZONE_ASK_COMMAND_PREFIX),
      );
    const phone = await enroll("iOS", iphone("iPhone15,2", "17.5", "21F79"));
    const mac6 = await enroll("macOS", mac("Mac15,3", "15.1", "24B83"));
    assert.equal(await eventually(async () => (await device(mac6)).policy === "macs"), true);
    assert.deepEqual(await zoneAsks(phone), [], "no policy reaches it yet: not asked");

    // A fixed deadline, 09:00 on Zurich's clock (UTC+1 in January).
    const pin = (localDateTime: string) =>
      server.api("PUT", "/v1/updates/policies/zone-ask", {
        platform: "iOS",
        mode: "version",
        target_os_version: "18.3",
        target_local_date_time: localDateTime,
        enrollments: { ids: [phone.sim.udid] },
      });
    assert.equal((await pin("2030-01-15T09:00:00")).status, 201);
    assert.equal((await row(phone)).deadlineAt, Date.parse("2030-01-15T21:00:00Z"), "no zone yet: UTC-12");
    const asks = await zoneAsks(phone);
    assert.equal(asks.length, 1, "asked once");
    assert.equal(asks[0].status, "Queued");
    const queued = (await server.api("GET", `/v1/commands/${asks[0].command_uuid}`)).json;
    assert.deepEqual(
      queued.results.map((r: { enrollment_id: string }) => r.enrollment_id),
      [phone.sim.udid],
    );
    // Re-targeted to the same target, then to a new one before it answered: the ask still waiting covers both.
    assert.equal((await server.api("POST", "/v1/updates/apply")).status, 200);
    assert.equal((await pin("2030-01-15T09:00:00")).status, 200);
    assert.equal((await pin("2030-01-16T09:00:00")).status, 200);
    assert.equal((await zoneAsks(phone)).length, 1, "not asked again");
    // A Mac never knows the query: not asked.
    assert.deepEqual(await zoneAsks(mac6), []);
    assert.ok((await row(mac6)).deadlineAt !== null, "though it has a deadline");

    // The simulated iPhone answers its queue as the fleet simulator does (src/sim/responder.ts): TimeZone is Europe/Zurich.
    const profile: DeviceProfile = {
      udid: phone.sim.udid,
      serialNumber: phone.sim.serialNumber,
      platform: "iOS",
      facts: phone.sim.facts(),
      wifiMac: "a4:00:00:00:00:01",
      bluetoothMac: "a4:00:00:00:00:02",
      capacity: 128,
      available: 64,
      supervised: false,
      identity: { commonName: phone.sim.udid, der: Buffer.alloc(1) },
      ca: { commonName: "CA", der: Buffer.alloc(1) },
      users: [],
    };
    const rng = new Rng("zone-ask");
    for (let reply = await phone.sim.report("Idle"); reply.plist; ) {
      const answer = answerCommand(reply.plist, profile, rng);
      reply = await phone.sim.report(answer.status, { CommandUUID: reply.plist.CommandUUID!, ...answer.fields });
    }
    const answered = (await zoneAsks(phone))[0];
    assert.deepEqual([answered.status, answered.active], ["Acknowledged", false]);
    const inventory = (await server.api("GET", `/v1/inventory/${phone.sim.udid}`)).json;
    assert.deepEqual([inventory.fields.time_zone?.value, inventory.fields.time_zone?.source], ["Europe/Zurich", "device-information"]);
    assert.equal(
      await eventually(async () => (await row(phone)).deadlineAt === Date.parse("2030-01-16T08:00:00Z")),
      true,
      "its deadline on Zurich's clock",
    );
    assert.equal((await server.api("POST", "/v1/updates/apply")).status, 200);
    assert.equal((await row(phone)).deadlineAt, Date.parse("2030-01-16T08:00:00Z"));
    assert.equal((await zoneAsks(phone)).length, 1, "a device of known zone is not asked");
  });

  test("a failure counts for the target it is about, and is told once per target as policies and the feed come and go", async () => {
    // The walkthrough's: a Mac fails its target; a pilot policy for a newer version is made and removed, the
    // policy for all is removed and made again, a new feed keeps the version. Only the failures it had are told.
    const m7 = await enroll("macOS", mac("Mac15,3", "15.1", "24B83"), { updateFailure: "Insufficient storage" });
    assert.equal(await eventually(async () => (await device(m7)).target?.os_version === "15.3"), true, "targeted on enrollment");
    await m7.ddm.sync(m7.send);
    await m7.ddm.advanceUpdate(m7.send);
    const where = async () => {
      const x = await device(m7);
      return [x.policy, x.target?.os_version, x.state, x.reason];
    };
    const failures = async () =>
      (await events("update.failed", m7)).map((e: { detail: { target_os_version: string } }) => e.detail.target_os_version);
    assert.deepEqual(await where(), ["macs", "15.3", "failed", "Insufficient storage"]);
    assert.deepEqual(await failures(), ["15.3"]);

    // A pilot for 15.4 reaches it: it has not tried 15.4, and its failure of 15.3 is none of 15.4's.
    const pilot = {
      platform: "macOS",
      mode: "version",
      target_os_version: "15.4",
      target_local_date_time: "2099-01-09T19:00:00",
      enrollments: { ids: [m7.sim.udid] },
    };
    assert.equal((await server.api("PUT", "/v1/updates/policies/pilot-macs", pilot)).status, 201);
    assert.deepEqual(await where(), ["pilot-macs", "15.4", "pending", null], "nothing started on 15.4");
    assert.deepEqual(await failures(), ["15.3"], "no failure of 15.4 told");
    // It syncs, tries 15.4 and fails: that one is told.
    await m7.ddm.sync(m7.send);
    assert.deepEqual(await where(), ["pilot-macs", "15.4", "downloading", null]);
    await m7.ddm.advanceUpdate(m7.send);
    assert.deepEqual(await where(), ["pilot-macs", "15.4", "failed", "Insufficient storage"]);
    assert.deepEqual(await failures(), ["15.3", "15.4"]);

    // The pilot removed: back to 15.3, which its report of 15.4 says nothing of; it tries 15.3 again and fails, told already.
    assert.equal((await server.api("DELETE", "/v1/updates/policies/pilot-macs")).status, 200);
    assert.deepEqual(await where(), ["macs", "15.3", "pending", null]);
    await m7.ddm.sync(m7.send);
    await m7.ddm.advanceUpdate(m7.send);
    assert.deepEqual(await where(), ["macs", "15.3", "failed", "Insufficient storage"]);
    assert.deepEqual(await failures(), ["15.3", "15.4"], "15.3's failure not told again");

    // The policy for all removed and made again: its devices' rows go and come back; nothing is told again.
    const overdueBefore = (await events("update.overdue", d.m3!)).length;
    assert.equal(overdueBefore, 1, "MacBookPro14,1 missed its 13.7.2 deadline, told once");
    const macs = (await server.api("GET", "/v1/updates/policies/macs")).json;
    assert.equal((await server.api("DELETE", "/v1/updates/policies/macs")).status, 200);
    assert.equal((await server.api("GET", `/v1/updates/devices/${m7.sim.udid}`)).status, 404);
    const again = await server.api("PUT", "/v1/updates/policies/macs", {
      platform: "macOS",
      mode: "latest",
      deadline_days: macs.deadline_days,
      settings: macs.settings,
    });
    assert.equal(again.status, 201, again.text);
    assert.deepEqual(await where(), ["macs", "15.3", "failed", "Insufficient storage"]);
    assert.deepEqual(await failures(), ["15.3", "15.4"], "not told again");
    assert.equal((await events("update.overdue", d.m3!)).length, 1, "the missed deadline not told again");

    // A feed whose 15.3 has another posting date: the same version with another deadline (another target set).
    const before = (await device(m7)).target;
    const feed = JSON.parse(feedWithNewReleases());
    feed.PublicAssetSets.macOS[0].PostingDate = new Date(Date.now() - DAY_MS).toISOString().slice(0, 10);
    fs.writeFileSync(feedFile, JSON.stringify(feed));
    const refresh = await server.api("POST", "/v1/updates/feed/refresh");
    assert.equal(refresh.json.changed, true, refresh.text);
    const after = (await device(m7)).target;
    assert.equal(after.os_version, "15.3");
    assert.notEqual(after.set, before.set, "a new target set");
    assert.deepEqual(await where(), ["macs", "15.3", "failed", "Insufficient storage"]);
    assert.deepEqual(await failures(), ["15.3", "15.4"], "not told again");
  });

  test("settings keys Apple's schema does not know are kept and warned of (orchard-warning); a wrong type is refused", async () => {
    const body = (settings: object) => ({
      platform: "macOS",
      mode: "version",
      target_os_version: "15.3",
      target_local_date_time: "2099-01-09T19:00:00",
      enrollments: { ids: ["no-such-device"] },
      settings,
    });
    const r = await server.api("PUT", "/v1/updates/policies/misspelt", body({ Deferals: { MajorPeriodInDays: 30 }, Foo: 1 }));
    assert.equal(r.status, 201, r.text);
    const warnings = r.headers.get("orchard-warning") ?? "";
    assert.match(warnings, /settings\.Deferals: unknown key, not in the schema of com\.apple\.configuration\.softwareupdate\.settings/);
    assert.match(warnings, /settings\.Foo: unknown key/);
    assert.ok(server.logs.some((l) => l.includes("update policy saved with a warning") && l.includes("settings.Foo")));
    assert.deepEqual((await server.api("GET", "/v1/updates/policies/misspelt")).json.settings, {
      Deferals: { MajorPeriodInDays: 30 },
      Foo: 1,
    });
    // Nested: a key Apple's Deferrals does not have.
    const nested = await server.api("PUT", "/v1/updates/policies/misspelt", body({ Deferrals: { MajorPeriodInDayz: 30 } }));
    assert.equal(nested.status, 200, nested.text);
    assert.match(nested.headers.get("orchard-warning") ?? "", /^settings\.Deferrals\.MajorPeriodInDayz: unknown key/);
    // Keys the schema knows: no warning; a wrong type: refused, as before.
    const clean = await server.api("PUT", "/v1/updates/policies/misspelt", body({ Deferrals: { MajorPeriodInDays: 30 } }));
    assert.deepEqual(clean.json.warnings, [
      "enrollments.ids: 1 listed id is no enrolled macOS device channel: kept, reaching nothing until one enrolls",
    ]);
    const wrong = await server.api("PUT", "/v1/updates/policies/misspelt", body({ Deferrals: { MajorPeriodInDays: "30" } }));
    assert.equal(wrong.status, 400);
    assert.equal((await server.api("DELETE", "/v1/updates/policies/misspelt")).status, 200);
  });

  test("a policy's answer counts its own devices; a set no device holds and a deadline past are warned of; its ids are shown", async () => {
    const version = (deadline: string, enrollments: object) => ({
      platform: "macOS",
      mode: "version",
      target_os_version: "15.3",
      target_local_date_time: deadline,
      enrollments,
    });
    // Ids no device has: it reaches none, whatever the other policies reach.
    const ids = ["UDID2", "UDID1", "UDID2"];
    const put = await server.api("PUT", "/v1/updates/policies/pilot-macs", version("2099-01-09T19:00:00", { ids }));
    assert.equal(put.status, 201, put.text);
    assert.deepEqual(put.json.reach, { devices: 0, targeted: 0 });
    assert.ok(put.json.applied.devices > 0, "the re-targeting's count is every policy's");
    // Kept, and said: a typo, or a device of another platform, is otherwise a silent 0.
    const idsWarning = "enrollments.ids: 2 listed ids are no enrolled macOS device channel: kept, reaching nothing until one enrolls";
    assert.equal(put.headers.get("orchard-warning"), idsWarning);
    assert.deepEqual(put.json.warnings, [idsWarning]);
    assertDocumented("PUT", "/v1/updates/policies/{name}", put);
    const shown = await server.api("GET", "/v1/updates/policies/pilot-macs");
    assert.deepEqual([shown.json.enrollments, shown.json.listed_ids], [{ ids: 2 }, ["UDID1", "UDID2"]]);
    assertDocumented("GET", "/v1/updates/policies/{name}", shown);
    assert.equal((await server.api("GET", "/v1/updates/policies/macs")).json.listed_ids, null);
    const listed = (await server.api("GET", "/v1/updates/policies")).json.policies.find((p: { name: string }) => p.name === "pilot-macs");
    assert.deepEqual([listed.enrollments, listed.listed_ids], [{ ids: 2 }, undefined], "the list keeps its shape");

    // One of the devices listed: it reaches that one.
    const mine = await server.api("PUT", "/v1/updates/policies/pilot-macs", version("2099-01-09T19:00:00", { ids: [d.m2!.sim.udid] }));
    assert.equal(mine.status, 200, mine.text);
    assert.deepEqual(mine.json.reach, { devices: 1, targeted: 1 });
    assert.deepEqual(mine.json.warnings, []);

    // A set that does not exist, and one that holds declarations but no device: saved, warned of.
    const none = await server.api("PUT", "/v1/updates/policies/pilot-macs", version("2099-01-09T19:00:00", { set: "nosuchset" }));
    assert.equal(none.status, 200, none.text);
    assert.deepEqual(none.json.reach, { devices: 0, targeted: 0 });
    assert.equal(
      none.headers.get("orchard-warning"),
      'enrollments.set "nosuchset": no such DDM set (no declarations, no device holds it): the policy reaches no device',
    );
    assert.ok(server.logs.some((l) => l.includes("update policy saved with a warning") && l.includes("nosuchset")));
    const decl = { Type: "com.apple.configuration.management.test", Identifier: "pilot.test", Payload: { Echo: "hi" } };
    assert.equal((await server.api("PUT", "/v1/declarations", decl)).status, 204);
    assert.equal((await server.api("PUT", "/v1/set-declarations/pilot-set?declaration=pilot.test")).status, 204);
    const empty = await server.api("PUT", "/v1/updates/policies/pilot-macs", version("2099-01-09T19:00:00", { set: "pilot-set" }));
    assert.match(empty.headers.get("orchard-warning") ?? "", /^enrollments\.set "pilot-set": no device holds this DDM set/);
    assert.equal((await server.api("PUT", `/v1/enrollment-sets/${d.m2!.sim.udid}?set=pilot-set`)).status, 204);
    const held = await server.api("PUT", "/v1/updates/policies/pilot-macs", version("2099-01-09T19:00:00", { set: "pilot-set" }));
    assert.equal(held.headers.get("orchard-warning"), null);
    assert.deepEqual(held.json.reach, { devices: 1, targeted: 1 });

    // A deadline that has passed in every time zone; one that has not passed in UTC-12 yet is not said.
    const mac = [d.m2!.sim.udid];
    const past = await server.api("PUT", "/v1/updates/policies/pilot-macs", version("2026-01-09T19:00:00", { ids: mac }));
    assert.equal(past.status, 200, past.text);
    assert.equal(
      past.headers.get("orchard-warning"),
      'target_local_date_time "2026-01-09T19:00:00": this deadline has passed in every time zone: the policy\'s devices not on its target are overdue at once',
    );
    const soon = new Date(Date.now() - 6 * 3_600_000).toISOString().slice(0, 19);
    const recent = await server.api("PUT", "/v1/updates/policies/pilot-macs", version(soon, { ids: mac }));
    assert.equal(recent.headers.get("orchard-warning"), null, "six hours ago in UTC: not yet in UTC-12");
    assert.equal((await server.api("DELETE", "/v1/updates/policies/pilot-macs")).status, 200);
    assert.equal((await server.api("DELETE", `/v1/enrollment-sets/${d.m2!.sim.udid}?set=pilot-set`)).status, 204);
  });
});
