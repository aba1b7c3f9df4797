// Issue #11 item 1: trust is closed by default. Without --ca Orchard trusts its
// device CA alone; a self-signed or foreign certificate gets 400 (never 401)
// with a reason and a log line. --insecure-accept-any-device-cert is the
// loudly logged lab opt-in. `orchard simulate` with no identity flags still
// enrolls against such a server.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import * as x509 from "@peculiar/x509";
import { runWith } from "../src/cli/client-commands.ts";
import { parseServeArgs } from "../src/config.ts";
import { issueCertificate, pkiIdentity, validity, type KeyPair, type PkiIdentity } from "../src/identity/testing/pki.ts";
import { commonNameSubject } from "../src/scep/testing/client.ts";
import { Transport } from "../src/sim/transport.ts";
import { cliContext } from "./support/cli.ts";
import { testDeviceCa } from "./support/device-ca.ts";
import { RawDevice, rawPut, plist } from "./support/mdm.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

let key: KeyPair;
let selfSigned: PkiIdentity;

before(async () => {
  key = (await testDeviceCa()).key;
  selfSigned = await issueCertificate(
    [{ CN: ["self-signed device"] }],
    key,
    null,
    [new x509.BasicConstraintsExtension(false, undefined, true)],
    validity({}, 30),
  );
});

const udid = () => randomUUID().toUpperCase();

describe("no --ca: the device CA alone", () => {
  let server: TestServer;
  let transport: Transport;
  before(async () => {
    server = await startTestServer([], "sqlite", { testCa: false });
    transport = new Transport(server.url);
  });
  after(async () => {
    transport.close();
    await server?.stop();
  });

  test("a self-signed certificate gets 400 with a reason and a log line, by header and by Mdm-Signature", async () => {
    for (const kind of ["header", "signature"] as const) {
      const id = udid();
      const body = plist({ MessageType: "Authenticate", UDID: id, Topic: "com.apple.mgmt.x" });
      const r = await rawPut(transport, "/checkin", body, { auth: { kind, identity: selfSigned } });
      assert.equal(r.status, 400, kind);
      assert.equal(r.text, "device identity: certificate is not issued by a trusted CA\n");
      assert.equal((await server.store.enrollments.bindingOf(id))?.fingerprint, undefined);
    }
    assert.ok(server.logs.some((l) => l.includes("device request refused") && l.includes("not issued by a trusted CA")));
  });

  test("a certificate from a CA the server was not given gets 400", async () => {
    const { ca } = await testDeviceCa();
    const { issueDeviceIdentity } = await import("../src/identity/testing/pki.ts");
    const foreign = await issueDeviceIdentity(ca, { commonName: "foreign", keyPair: key });
    const r = await new RawDevice(transport, foreign, udid()).authenticate();
    assert.equal(r.status, 400);
    assert.match(r.text, /not issued by a trusted CA/);
  });

  test("a certificate of the device CA enrolls", async () => {
    const cert = await server.deviceCa.issue({
      subjectDer: commonNameSubject("device-ca device"),
      publicKeyDer: key.publicKey.export({ type: "spki", format: "der" }),
    });
    const device = new RawDevice(transport, pkiIdentity(cert, key), udid());
    await device.enroll();
    assert.equal((await server.api("GET", `/v1/enrollments/${device.udid}`)).json.enabled, true);
  });

  test("orchard simulate with no identity flags signs with the device CA in the data dir", async () => {
    const ctx = cliContext(server.url);
    ctx.env.ORCHARD_DATA_DIR = server.dataDir;
    const args = ["--devices", "2", "--duration", "1500ms", "--poll-interval", "200ms", "--no-commands", "--json"];
    assert.equal(await runWith(ctx, "simulate", args), 0, ctx.stderr + ctx.stdout);
    const report = JSON.parse(ctx.stdout);
    assert.equal(report.enrolled, 2);
    assert.equal(report.errors, 0);
    assert.equal(report.identitySource, "ca");
    assert.equal(report.identity, "Mdm-Signature", "signed: read by any server, whatever its --cert-header");
    assert.match(ctx.stderr, /device CA in/);
  });

  test("orchard simulate with no identity flags and no device CA at hand enrolls through SCEP", async () => {
    const ctx = cliContext(server.url);
    ctx.env.ORCHARD_DATA_DIR = "/nonexistent-orchard-data";
    const args = ["--devices", "2", "--duration", "1500ms", "--poll-interval", "200ms", "--no-commands", "--json"];
    assert.equal(await runWith(ctx, "simulate", args), 0, ctx.stderr + ctx.stdout);
    const report = JSON.parse(ctx.stdout);
    assert.equal(report.enrolled, 2);
    assert.equal(report.errors, 0);
    assert.equal(report.identitySource, "scep");
  });
});

describe("--insecure-accept-any-device-cert: the lab opt-in", () => {
  let server: TestServer;
  let transport: Transport;
  before(async () => {
    server = await startTestServer(["--insecure-accept-any-device-cert"]);
    transport = new Transport(server.url);
  });
  after(async () => {
    transport.close();
    await server?.stop();
  });

  test("a self-signed certificate enrolls, and the server warned at start", async () => {
    await new RawDevice(transport, selfSigned, udid()).enroll();
    assert.ok(server.logs.some((l) => l.includes('"level":40') && l.includes("--insecure-accept-any-device-cert")));
  });

  test("the flag's environment variable", () => {
    assert.equal(parseServeArgs([], {}).insecureAcceptAnyDeviceCert, false);
    assert.equal(parseServeArgs([], { ORCHARD_INSECURE_ACCEPT_ANY_DEVICE_CERT: "1" }).insecureAcceptAnyDeviceCert, true);
  });
});
