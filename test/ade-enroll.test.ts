// ADE phase 2 end to end, on both stores, with no Apple: the admin makes the
// token key pair, the stand-in (test/support/ade-standin.ts) issues the server
// token, Orchard syncs 5,000 devices in pages and assigns the default profile;
// then a Mac from that list goes through the enrollment URL (a MachineInfo
// signed by a test "Apple device CA"), SCEP, Authenticate, TokenUpdate with
// AwaitingConfiguration, its initial commands and DeviceConfigured. Also the
// refusals: a device not from ABM, tampered or unsigned MachineInfo, a signer
// Apple did not issue, the minimum OS and Platform SSO 403s, and a second
// identity for an ADE serial at Authenticate.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { runWith } from "../src/cli/client-commands.ts";
import { createCa } from "../src/identity/testing/pki.ts";
import { issuePushCertificate } from "../src/identity/testing/push-cert.ts";
import { parsePlistDict, type PlistDict } from "../src/plist/index.ts";
import { ScepTestClient } from "../src/scep/testing/client.ts";
import { PROFILES_PER_SERIAL } from "../src/http/ade-enroll-routes.ts";
import { AdeStandin, AppleDeviceCa, machineInfo } from "./support/ade-standin.ts";
import { cliContext } from "./support/cli.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist, identity, RawDevice } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const TOPIC = "com.apple.mgmt.External.orchard-ade-test";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-ade-enroll-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const pushCert = await issuePushCertificate(await createCa({ commonName: "Test Apple Push CA" }), { topic: TOPIC });
const apple = await AppleDeviceCa.create();
const appleCaFile = path.join(tmp, "apple-device-ca.pem");
fs.writeFileSync(appleCaFile, apple.ca.certPem);

const payload = (profile: PlistDict, type: string) => (profile.PayloadContent as PlistDict[]).find((p) => p.PayloadType === type)!;

await forEachBackend("ADE enrollment, await configuration and serial-bound identity", (backend) => {
  let server: TestServer;
  let standin: AdeStandin;
  let fleet: TestFleet;
  let serials: string[];

  before(async () => {
    standin = await new AdeStandin().start();
    server = await startTestServer(["--ade-url", standin.url, "--ade-sync-interval", "0", "--ade-device-ca", appleCaFile], backend);
    fleet = await testFleet(server.url);
    assert.equal((await server.api("PUT", "/v1/pushcert", pushCert.certPem + pushCert.keyPem)).status, 200);
  });
  after(async () => {
    fleet.close();
    await server.stop();
    await standin.stop();
  });

  /** POSTs a signed MachineInfo to the enrollment URL. */
  async function enrollUrl(body: Buffer, headers: Record<string, string> = {}) {
    const res = await fetch(`${server.url}/ade/enroll`, {
      method: "POST",
      headers: { "content-type": "application/pkcs7-signature", ...headers },
      body: new Uint8Array(body),
    });
    return { status: res.status, type: res.headers.get("content-type") ?? "", body: Buffer.from(await res.arrayBuffer()) };
  }

  async function signedInfo(serial: string, udid = randomUUID().toUpperCase(), extra: PlistDict = {}) {
    return { udid, der: AppleDeviceCa.sign(machineInfo(serial, udid, extra), await apple.device(udid)) };
  }

  /** A Mac from ABM through the enrollment URL, SCEP, Authenticate and a TokenUpdate awaiting configuration. */
  async function enrollAwaiting(serial: string) {
    const { udid, der } = await signedInfo(serial);
    const scep = payload(parsePlistDict((await enrollUrl(der)).body), "com.apple.security.scep").PayloadContent as PlistDict;
    const mac = new RawDevice(
      fleet.transport,
      await new ScepTestClient(String(scep.URL)).enroll({ challenge: String(scep.Challenge) }),
      udid,
    );
    await mac.authenticate({ SerialNumber: serial, Topic: TOPIC });
    await mac.tokenUpdate({ Topic: TOPIC, AwaitingConfiguration: true });
    return { mac, udid, der };
  }

  async function events(type: string) {
    return (await server.api("GET", `/v1/events?type=${type}`)).json.events as Array<{ enrollment_id: string | null; detail: any }>;
  }

  test("admin to a Mac that enrolls itself: token, 5,000 devices synced, default profile, enrollment URL, SCEP, AwaitingConfiguration, DeviceConfigured", async () => {
    const added = await server.api("PUT", "/v1/ade/servers/main", { common_name: "Orchard ADE test" });
    assert.equal(added.status, 201, added.text);
    assert.equal((await server.api("PUT", "/v1/ade/servers/main/token", standin.issueToken(added.json.certificate_pem))).status, 200);
    const profile = await server.api("PUT", "/v1/ade/servers/main/profiles/lab?default=1", {
      is_supervised: true,
      await_device_configured: true,
      url: `${server.url}/ade/enroll`,
    });
    assert.equal(profile.status, 201, profile.text);
    const settings = await server.api("PUT", "/v1/ade/servers/main/enrollment-settings", {
      initial_commands: [
        commandPlist("DeviceInformation", undefined, { Queries: ["OSVersion"] }).toString(),
        commandPlist("InstallEnterpriseApplication", undefined, { ManifestURL: "https://example.org/app.plist" }).toString(),
      ],
      initial_ddm_sets: ["ade-baseline"],
      release_on_failure: true,
      minimum_os: { macos: { os_version: "14.0" } },
    });
    assert.equal(settings.status, 200, settings.text);
    assert.equal(settings.json.initial_commands.length, 2);

    serials = standin.addDevices(5000);
    const sync = await server.api("POST", "/v1/ade/servers/main/sync");
    assert.equal(sync.status, 200, sync.text);
    assert.equal(sync.json.fetched, 5000);
    assert.equal(sync.json.pages, 5);
    assert.equal(sync.json.assigned, 5000);
    const serial = serials[1234]!;
    assert.equal(standin.device(serial)!.profile_status, "assigned");
    assert.equal(standin.profile(standin.device(serial)!.profile_uuid!)!.url, `${server.url}/ade/enroll`);

    // Setup Assistant: the Mac posts its signed MachineInfo to the profile's url.
    const { udid, der } = await signedInfo(serial, undefined, { MDM_CAN_REQUEST_SOFTWARE_UPDATE: true });
    const res = await enrollUrl(der);
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(res.type, "application/x-apple-aspen-config");
    const enrollProfile = parsePlistDict(res.body);
    const mdm = payload(enrollProfile, "com.apple.mdm");
    assert.equal(mdm.Topic, TOPIC);
    const scep = payload(enrollProfile, "com.apple.security.scep").PayloadContent as PlistDict;
    const identity = await new ScepTestClient(String(scep.URL)).enroll({
      challenge: String(scep.Challenge),
      commonName: `Orchard ADE ${serial}`,
    });
    assert.equal(
      (await server.store.scep.certificateByFingerprint(identity.fingerprint))?.adeSerial,
      serial,
      "the certificate records its serial",
    );
    assert.equal((await server.api("GET", `/v1/ade/enrollments/${serial}`)).json.state, "profile_served");

    const mac = new RawDevice(fleet.transport, identity, udid);
    assert.equal((await mac.authenticate({ SerialNumber: serial, Topic: TOPIC })).status, 200);
    assert.equal((await mac.tokenUpdate({ Topic: TOPIC, AwaitingConfiguration: true })).status, 200);
    let progress = (await server.api("GET", `/v1/ade/enrollments/${serial}`)).json;
    assert.equal(progress.state, "running");
    assert.equal(progress.progress, "running step 1/2");
    assert.deepEqual((await server.api("GET", `/v1/enrollment-sets/${udid}`)).json, ["ade-baseline"]);

    // The Mac polls: its initial commands in order, then DeviceConfigured.
    const seen: string[] = [];
    let reply = await mac.report("Idle");
    for (let i = 0; i < 10 && reply.plist; i++) {
      const uuid = String(reply.plist.CommandUUID);
      const type = String((reply.plist.Command as PlistDict).RequestType);
      seen.push(type);
      if (type === "DeviceConfigured") {
        assert.equal((await server.api("GET", `/v1/ade/enrollments/${serial}`)).json.state, "releasing");
        reply = await mac.report("Acknowledged", { CommandUUID: uuid });
        break;
      }
      // Setup Assistant answers NotNow to DeclarativeManagement; the second initial command fails.
      const status = type === "DeclarativeManagement" ? "NotNow" : type === "InstallEnterpriseApplication" ? "Error" : "Acknowledged";
      reply = await mac.report(status, {
        CommandUUID: uuid,
        ...(status === "Error" ? { ErrorChain: [{ ErrorCode: 12, ErrorDomain: "x" }] } : {}),
      });
      if (type === "DeviceInformation") {
        progress = (await server.api("GET", `/v1/ade/enrollments/${serial}`)).json;
        assert.equal(progress.progress, "running step 2/2");
      }
    }
    const steps = seen.filter((t) => t !== "DeclarativeManagement");
    assert.deepEqual(steps, ["DeviceInformation", "InstallEnterpriseApplication", "DeviceConfigured"]);
    progress = (await server.api("GET", `/v1/ade/enrollments/${serial}`)).json;
    assert.equal(progress.state, "configured");
    assert.equal(progress.steps_failed, 1);
    assert.equal(progress.progress, "configured (1 of 2 steps failed)");

    const served = await events("ade.enrollment_profile_served");
    assert.equal(served.length, 1);
    assert.equal(served[0]!.detail.serial_number, serial);
    assert.equal(served[0]!.detail.apple_ca_verified, true);
    assert.equal((await events("ade.configuration_started"))[0]!.detail.steps, 2);
    const failed = await events("ade.configuration_step_failed");
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.detail.request_type, "InstallEnterpriseApplication");
    assert.equal(failed[0]!.detail.step, 2);
    assert.equal((await events("ade.device_released"))[0]!.detail.by, "orchard");
    assert.equal((await events("ade.device_configured"))[0]!.enrollment_id, udid);
    assert.equal((await server.api("GET", `/v1/ade/devices?serial=${serial}`)).json.devices[0].enrolled, true);

    // A SCEP renewal keeps the certificate bound to the serial; the Mac goes on with it.
    const renewed = await new ScepTestClient(String(scep.URL)).renew(identity);
    assert.equal((await server.store.scep.certificateByFingerprint(renewed.fingerprint))?.adeSerial, serial);
    assert.equal((await new RawDevice(fleet.transport, renewed, udid).report("Idle")).status, 200);

    const ctx = cliContext(server.url, { cwd: tmp });
    assert.equal(await runWith(ctx, "ade", ["enrollments", "--server", "main"]), 0, ctx.stderr);
    assert.match(ctx.stdout, new RegExp(`${serial}.*configured`));
  });

  test("the refusals: not from ABM, tampered, unsigned, garbage, another CA's signer; the header form is taken", async () => {
    const notAbm = await signedInfo("NOTABM000001");
    const res = await enrollUrl(notAbm.der);
    assert.equal(res.status, 403);
    assert.match(res.body.toString(), /not assigned to Orchard in Apple Business Manager/);

    const good = await signedInfo(serials[10]!);
    const tampered = Buffer.from(good.der);
    const at = tampered.indexOf(Buffer.from(serials[10]!));
    assert.ok(at > 0);
    tampered[at + serials[10]!.length - 1] ^= 1; // another serial, same signature
    const t = await enrollUrl(tampered);
    assert.equal(t.status, 400);
    assert.match(t.body.toString(), /MachineInfo: the signature does not verify/);

    const unsigned = await enrollUrl(
      Buffer.from(`<?xml version="1.0"?><plist version="1.0"><dict><key>SERIAL</key><string>${serials[10]}</string></dict></plist>`),
    );
    assert.equal(unsigned.status, 400);
    assert.match(unsigned.body.toString(), /not a CMS SignedData/);
    assert.equal((await enrollUrl(Buffer.from([0x30, 0x80, 0x01]))).status, 400);
    assert.equal((await enrollUrl(Buffer.alloc(0))).status, 400);

    const stranger = await AppleDeviceCa.create("Not Apple");
    const udid = randomUUID().toUpperCase();
    const strangerSigned = AppleDeviceCa.sign(machineInfo(serials[10]!, udid), await stranger.device(udid));
    const s = await enrollUrl(strangerSigned);
    assert.equal(s.status, 400);
    assert.match(s.body.toString(), /does not chain to the Apple device CA/);

    // Some flows send it base64 in x-apple-aspen-deviceinfo with no body.
    const viaHeader = await enrollUrl(Buffer.alloc(0), { "x-apple-aspen-deviceinfo": good.der.toString("base64") });
    assert.equal(viaHeader.status, 200, viaHeader.body.toString());
    assert.ok(
      server.logs.some((l) => l.includes("does not chain to the Apple device CA")),
      "refusals are logged",
    );
    assert.equal((await events("ade.enrollment_profile_served")).length, 2, "refusals record no event");
  });

  test("minimum OS: 403 softwareupdate.required in Apple's shape to a device that can update; Platform SSO: 403 psso.required", async () => {
    const old = await signedInfo(serials[20]!, undefined, {
      OS_VERSION: "13.6.1",
      VERSION: "22G313",
      MDM_CAN_REQUEST_SOFTWARE_UPDATE: true,
    });
    const res = await enrollUrl(old.der);
    assert.equal(res.status, 403);
    assert.match(res.type, /application\/json/);
    const body = JSON.parse(res.body.toString());
    assert.equal(body.code, "com.apple.softwareupdate.required");
    assert.deepEqual(body.details, { OSVersion: "14.0" });
    assert.equal(typeof body.description, "string");
    assert.equal((await events("ade.os_update_required"))[0]!.detail.required_os_version, "14.0");
    // One that cannot be asked to update (no MDM_CAN_REQUEST_SOFTWARE_UPDATE) gets its profile: better managed than stuck.
    assert.equal((await enrollUrl((await signedInfo(serials[21]!, undefined, { OS_VERSION: "13.6.1" })).der)).status, 200);

    const current = await server.api("GET", "/v1/ade/servers/main/enrollment-settings");
    const sso = {
      profile_url: "https://mdm.example.org/psso.mobileconfig",
      package_manifest_url: "https://mdm.example.org/psso.plist",
      auth_url: "https://idp.example.org/auth",
    };
    assert.equal((await server.api("PUT", "/v1/ade/servers/main/enrollment-settings", { ...current.json, platform_sso: sso })).status, 200);
    const capable = await enrollUrl(
      (await signedInfo(serials[22]!, undefined, { OS_VERSION: "26.0", MDM_CAN_REQUEST_PSSO_CONFIG: true })).der,
    );
    assert.equal(capable.status, 403);
    assert.deepEqual(JSON.parse(capable.body.toString()), {
      Code: "com.apple.psso.required",
      Details: { ProfileURL: sso.profile_url, Package: { ManifestURL: sso.package_manifest_url }, AuthURL: sso.auth_url },
    });
    // The second request (after the IdP sign-in) carries the IdP's bearer token: the profile, whether it leaves out
    // MDM_CAN_REQUEST_PSSO_CONFIG or still says it (what the Mac can do has not changed: a 403 again was a loop).
    assert.equal(
      (await enrollUrl((await signedInfo(serials[22]!, undefined, { OS_VERSION: "26.0" })).der, { authorization: "Bearer abc" })).status,
      200,
    );
    const again = await signedInfo(serials[22]!, undefined, { OS_VERSION: "26.0", MDM_CAN_REQUEST_PSSO_CONFIG: true });
    assert.equal((await enrollUrl(again.der, { authorization: "Bearer abc" })).status, 200);
    // A Bearer with no token is no sign-in (review).
    assert.equal((await enrollUrl(again.der, { authorization: "Bearer " })).status, 403);

    const bad = await server.api("PUT", "/v1/ade/servers/main/enrollment-settings", { minimum_os: { windows: { os_version: "11" } } });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, "invalid_ade_settings");
    const badCommand = await server.api("PUT", "/v1/ade/servers/main/enrollment-settings", { initial_commands: ["<plist>nope"] });
    assert.equal(badCommand.json.code, "invalid_ade_settings");
    assert.equal((await server.api("PUT", "/v1/ade/servers/main/enrollment-settings", { ...current.json })).status, 200);
  });

  test("serial-bound identity: another certificate for an ADE serial is refused at Authenticate, as is an ADE certificate for another serial", async () => {
    const serial = serials[1234]!;
    const enrolled = (await server.api("GET", `/v1/ade/enrollments/${serial}`)).json;
    // A certificate from Orchard's SCEP, but through an ordinary challenge: not issued for this serial.
    const { challenge } = (await server.api("POST", "/v1/scep/challenges")).json;
    const other = await new ScepTestClient(`${server.url}/scep`).enroll({ challenge, commonName: "intruder" });
    const sameUdid = new RawDevice(fleet.transport, other, enrolled.udid);
    const r1 = await sameUdid.authenticate({ SerialNumber: serial, Topic: TOPIC });
    assert.equal(r1.status, 403);
    assert.match(r1.text, /Automated Device Enrollment device: the certificate was not issued for this ADE serial/);
    // A new UDID claiming the ADE serial (a device id never enrolled: the re-binding rules would let it in).
    const r2 = await new RawDevice(fleet.transport, other, randomUUID().toUpperCase()).authenticate({ SerialNumber: serial, Topic: TOPIC });
    assert.equal(r2.status, 403);
    // The known UDID without a SerialNumber.
    assert.equal((await sameUdid.checkin("Authenticate", { Topic: TOPIC })).status, 403);

    // An ADE certificate made for another serial does not enroll this one.
    const { udid, der } = await signedInfo(serials[30]!);
    const scep = payload(parsePlistDict((await enrollUrl(der)).body), "com.apple.security.scep").PayloadContent as PlistDict;
    const forOther = await new ScepTestClient(String(scep.URL)).enroll({ challenge: String(scep.Challenge) });
    assert.equal((await new RawDevice(fleet.transport, forOther, udid).authenticate({ SerialNumber: serial, Topic: TOPIC })).status, 403);
    // ... and enrolls its own.
    assert.equal(
      (await new RawDevice(fleet.transport, forOther, udid).authenticate({ SerialNumber: serials[30]!, Topic: TOPIC })).status,
      200,
    );

    // One event per serial, certificate and reason in 5 minutes: the intruder's three refusals make one.
    const refused = await events("ade.identity_refused");
    assert.equal(refused.length, 2);
    assert.equal(refused[0]!.detail.serial_number, serial);
    assert.equal(refused[0]!.detail.repeated, 0);
    assert.equal(refused[1]!.detail.bound_serial, serials[30]);
    // The enrolled Mac itself still gets in.
    assert.equal((await server.api("GET", `/v1/enrollments/${enrolled.udid}`)).json.enabled, true);
  });

  test("release_on_failure false holds the device; an operator releases it; a device not from ABM awaiting configuration is released at once", async () => {
    const current = (await server.api("GET", "/v1/ade/servers/main/enrollment-settings")).json;
    const held = {
      ...current,
      platform_sso: null,
      initial_commands: [commandPlist("InstallEnterpriseApplication").toString()],
      initial_ddm_sets: [],
      release_on_failure: false,
    };
    assert.equal((await server.api("PUT", "/v1/ade/servers/main/enrollment-settings", held)).status, 200);
    const serial = serials[40]!;
    const { mac } = await enrollAwaiting(serial);
    const step = await mac.report("Idle");
    assert.equal((step.plist!.Command as PlistDict).RequestType, "InstallEnterpriseApplication");
    const after = await mac.report("Error", { CommandUUID: step.plist!.CommandUUID as string });
    assert.equal(after.plist, undefined, "no DeviceConfigured: the device is held");
    const state = (await server.api("GET", `/v1/ade/enrollments/${serial}`)).json;
    assert.equal(state.state, "failed");
    assert.match(state.progress, /failed: 1 of 1 initial commands failed/);
    assert.equal((await events("ade.configuration_failed")).at(-1)!.detail.serial_number, serial);

    const ctx = cliContext(server.url, { cwd: tmp });
    assert.equal(await runWith(ctx, "ade", ["release", serial]), 0, ctx.stderr);
    const released = await mac.report("Idle");
    assert.equal((released.plist!.Command as PlistDict).RequestType, "DeviceConfigured");
    await mac.report("Acknowledged", { CommandUUID: released.plist!.CommandUUID as string });
    assert.equal((await server.api("GET", `/v1/ade/enrollments/${serial}`)).json.state, "configured");
    const again = await server.api("POST", `/v1/ade/enrollments/${serial}/release`);
    assert.equal(again.status, 409);
    assert.equal(again.json.code, "ade_release_refused");

    // Not an ABM device (an ordinary enrollment) that says it awaits configuration: DeviceConfigured at once.
    const dev = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await dev.authenticate({ SerialNumber: "PLAIN0000001" });
    await dev.tokenUpdate({ AwaitingConfiguration: true });
    assert.equal(((await dev.report("Idle")).plist!.Command as PlistDict).RequestType, "DeviceConfigured");
    assert.equal((await server.api("PUT", "/v1/ade/servers/main/enrollment-settings", current)).status, 200);
  });

  test("the enrollment URL does not restart a device running its initial set (a replayed MachineInfo, another UDID); its Authenticate does", async () => {
    const current = (await server.api("GET", "/v1/ade/servers/main/enrollment-settings")).json;
    const one = {
      ...current,
      platform_sso: null,
      initial_commands: [commandPlist("DeviceInformation", undefined, { Queries: ["OSVersion"] }).toString()],
      initial_ddm_sets: [],
      release_on_failure: true,
    };
    assert.equal((await server.api("PUT", "/v1/ade/servers/main/enrollment-settings", one)).status, 200);
    const serial = serials[50]!;
    const { mac, udid, der } = await enrollAwaiting(serial);
    assert.equal((await server.api("GET", `/v1/ade/enrollments/${serial}`)).json.state, "running");

    // Anyone who holds the Mac's MachineInfo (or, without --ade-device-ca, anyone who knows its serial) posts it again.
    assert.equal((await enrollUrl(der)).status, 200);
    assert.equal((await enrollUrl((await signedInfo(serial)).der)).status, 200);
    let row = (await server.api("GET", `/v1/ade/enrollments/${serial}`)).json;
    assert.equal(row.state, "running", "an unauthenticated POST does not reset a device's progress");
    assert.equal(row.udid, udid, "nor its UDID");

    // The Mac answers its step and is released as if nothing happened.
    const step = await mac.report("Idle");
    assert.equal((step.plist!.Command as PlistDict).RequestType, "DeviceInformation");
    const released = await mac.report("Acknowledged", { CommandUUID: step.plist!.CommandUUID as string });
    assert.equal((released.plist!.Command as PlistDict).RequestType, "DeviceConfigured");

    // The Mac starts over (Authenticate discards its queue): its set runs again from the start.
    assert.equal((await mac.authenticate({ SerialNumber: serial, Topic: TOPIC })).status, 200);
    assert.equal((await server.api("GET", `/v1/ade/enrollments/${serial}`)).json.state, "profile_served");
    await mac.tokenUpdate({ Topic: TOPIC, AwaitingConfiguration: true });
    row = (await server.api("GET", `/v1/ade/enrollments/${serial}`)).json;
    assert.equal(row.state, "running");
    const again = await mac.report("Idle");
    assert.equal((again.plist!.Command as PlistDict).RequestType, "DeviceInformation");
    const last = await mac.report("Acknowledged", { CommandUUID: again.plist!.CommandUUID as string });
    assert.equal((last.plist!.Command as PlistDict).RequestType, "DeviceConfigured");
    await mac.report("Acknowledged", { CommandUUID: last.plist!.CommandUUID as string });
    assert.equal((await server.api("GET", `/v1/ade/enrollments/${serial}`)).json.state, "configured");
    assert.equal((await server.api("PUT", "/v1/ade/servers/main/enrollment-settings", current)).status, 200);
  });

  test("one enrolled device per serial: a MachineInfo with another UDID changes no enrolled device's record, and that device is refused until an operator removes the first", async () => {
    const serial = serials[60]!;
    const first = await enrollAwaiting(serial);
    const before = (await server.api("GET", `/v1/ade/enrollments/${serial}`)).json;
    assert.equal(before.udid, first.udid);

    // Another UDID for the same serial (a forged MachineInfo without --ade-device-ca; here, a replaced logic board).
    const { udid, der } = await signedInfo(serial);
    const profile = await enrollUrl(der);
    assert.equal(profile.status, 200);
    const row = (await server.api("GET", `/v1/ade/enrollments/${serial}`)).json;
    assert.deepEqual([row.udid, row.state], [first.udid, before.state], "the enrolled device's record is not rewritten");
    const scep = payload(parsePlistDict(profile.body), "com.apple.security.scep").PayloadContent as PlistDict;
    const second = new RawDevice(
      fleet.transport,
      await new ScepTestClient(String(scep.URL)).enroll({ challenge: String(scep.Challenge) }),
      udid,
    );
    const refused = await second.authenticate({ SerialNumber: serial, Topic: TOPIC });
    assert.equal(refused.status, 403);
    assert.match(refused.text, /enrolled as another device/);
    assert.ok(!refused.text.includes(first.udid), "the asking device is not told the enrolled one's UDID");
    const event = (await events("ade.identity_refused")).find((e) => e.enrollment_id === udid)!;
    assert.equal(event.detail.enrolled_as, first.udid);
    // The first Mac itself goes on.
    assert.equal((await first.mac.report("Idle")).status, 200);

    // An operator removes the first: the second enrolls, with a record of its own once it fetches its profile again.
    assert.equal((await server.api("DELETE", `/v1/enrollments/${first.udid}`)).status, 200);
    assert.equal((await server.api("GET", `/v1/ade/enrollments/${serial}`)).status, 404);
    assert.equal((await enrollUrl(der)).status, 200);
    assert.equal((await second.authenticate({ SerialNumber: serial, Topic: TOPIC })).status, 200);
    assert.equal((await server.api("GET", `/v1/ade/enrollments/${serial}`)).json.udid, udid);
  });

  test("at most PROFILES_PER_SERIAL profiles a serial an hour: past it 429 with nothing written; another serial goes on", async () => {
    const serial = serials[70]!;
    const { der } = await signedInfo(serial);
    const statuses: number[] = [];
    for (let i = 0; i < PROFILES_PER_SERIAL + 3; i++) statuses.push((await enrollUrl(der)).status);
    assert.deepEqual(statuses, [...Array(PROFILES_PER_SERIAL).fill(200), 429, 429, 429]);
    const served = (await events("ade.enrollment_profile_served")).filter((e) => e.detail.serial_number === serial);
    assert.equal(served.length, PROFILES_PER_SERIAL);
    assert.equal((await enrollUrl((await signedInfo(serials[71]!)).der)).status, 200);
  });

  test("releasing a device whose profile was served but which never enrolled is 409, not 500", async () => {
    const serial = serials[80]!;
    assert.equal((await enrollUrl((await signedInfo(serial)).der)).status, 200);
    assert.equal((await server.api("GET", `/v1/ade/enrollments/${serial}`)).json.state, "profile_served");
    const r = await server.api("POST", `/v1/ade/enrollments/${serial}/release`);
    assert.equal(r.status, 409, r.text);
    assert.match(r.json.error, /has not enrolled yet/);
  });

  test("a device ABM no longer assigns, found by the full fetch after an expired cursor, is removed: the enrollment URL refuses it", async () => {
    const serial = serials[4000]!;
    const { der } = await signedInfo(serial);
    assert.equal((await enrollUrl(der)).status, 200);
    const before = (await server.api("GET", "/v1/ade/servers/main")).json.devices;
    standin.remove(serial);
    standin.expireCursors();
    const ctx = cliContext(server.url, { cwd: tmp });
    assert.equal(await runWith(ctx, "ade", ["sync", "main"]), 0, ctx.stderr);
    assert.match(ctx.stdout, /fetched 4999 devices, 1 no longer listed \(removed\) \(EXPIRED_CURSOR: fetched again\)/);
    const device = (await server.api("GET", `/v1/ade/devices?serial=${serial}`)).json.devices[0];
    assert.deepEqual([device.removed, device.op_type], [true, "deleted"]);
    assert.equal((await server.api("GET", "/v1/ade/servers/main")).json.devices, before - 1);
    assert.equal((await events("ade.sync")).at(-1)!.detail.deleted, 1);
    const refused = await enrollUrl(der);
    assert.equal(refused.status, 403);
    assert.match(refused.body.toString(), /not assigned to Orchard in Apple Business Manager/);
  });

  test("a device that checked out gives way: its replacement's MachineInfo takes the serial's record, and it enrolls", async () => {
    const serial = serials[90]!;
    const first = await enrollAwaiting(serial);
    assert.equal((await first.mac.checkin("CheckOut", {})).status, 200);
    const { udid, der } = await signedInfo(serial);
    const profile = await enrollUrl(der);
    assert.equal(profile.status, 200);
    assert.equal((await server.api("GET", `/v1/ade/enrollments/${serial}`)).json.udid, udid, "the record follows the new device");
    const scep = payload(parsePlistDict(profile.body), "com.apple.security.scep").PayloadContent as PlistDict;
    const second = new RawDevice(
      fleet.transport,
      await new ScepTestClient(String(scep.URL)).enroll({ challenge: String(scep.Challenge) }),
      udid,
    );
    assert.equal((await second.authenticate({ SerialNumber: serial, Topic: TOPIC })).status, 200);
  });
});
