// DDM credentials from Orchard's credential CA, end to end on both stores
// (docs/declarative-management.md "Credentials from Orchard's CA"): a
// template, a com.apple.asset.credential.scep naming it, the device that holds
// the declaration fetching its JSON with its MDM identity and running SCEP with
// it, and the certificate it gets refused as an MDM identity.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomUUID, X509Certificate } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { escapedPemHeader, type DeviceIdentity } from "../src/identity/testing/pki.ts";
import { ScepRefused, ScepTestClient, subjectName } from "../src/scep/testing/client.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { identity, RawDevice } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const PUBLIC_URL = "https://mdm.example.test/orchard";
const CN = "2.5.4.3";
const O = "2.5.4.10";
const TEMPLATE = {
  subject: [
    ["CN", "{{serial_number}}"],
    ["O", "Example Wi-Fi"],
  ],
  subject_alt_names: { dns_name: "{{udid}}.devices.example.test" },
  key_size: 2048,
  key_usage: 5,
};
const SCEPCLIENT = process.env.PATH?.split(path.delimiter)
  .map((d) => path.join(d, "scepclient"))
  .find((f) => fs.existsSync(f));

await forEachBackend("DDM credentials", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  let a: RawDevice;
  let b: RawDevice;
  const serial = (d: RawDevice) => `SN${d.udid.slice(0, 8)}`; // what RawDevice.authenticate sends

  before(async () => {
    server = await startTestServer(["--public-url", PUBLIC_URL], backend);
    fleet = await testFleet(server.url);
    a = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    b = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await a.enroll();
    await b.enroll();
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  async function deviceGet(urlPath: string, who: DeviceIdentity | undefined) {
    const headers: Record<string, string> = who ? { "x-client-cert": escapedPemHeader(who.certPem) } : {};
    const res = await fleet.transport.send({ method: "GET", path: urlPath, headers });
    return { ...res, text: res.body.toString("utf8") };
  }
  /** Device A's credential JSON (a fresh challenge each time). */
  async function credentialJson(d: RawDevice = a) {
    const r = await deviceGet("/mdm/credentials/scep/wifi", d.identity);
    assert.equal(r.status, 200, r.text);
    return JSON.parse(r.text) as { Type: string; Payload: Record<string, any> };
  }
  const subjectOf = (d: RawDevice) =>
    subjectName([
      { type: CN, value: serial(d) },
      { type: O, value: "Example Wi-Fi" },
    ]);
  const credentialScep = () => new ScepTestClient(`${server.url}/scep/credential`);

  test("a template is checked and stored; a declaration naming it resolves to the device URL with the revision, no Size or hash", async () => {
    const bad = await server.api("PUT", "/v1/ddm/credentials/wifi", { ...TEMPLATE, subject: [["CN", "{{nope}}"]] });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, "invalid_credential");
    assert.match(bad.json.error, /unknown variable \{\{nope\}\}/);
    assert.equal((await server.api("PUT", "/v1/ddm/credentials/wifi", { ...TEMPLATE, key_size: 1024 })).status, 400);

    const created = await server.api("PUT", "/v1/ddm/credentials/wifi", TEMPLATE);
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.reference, "orchard:credential/scep/wifi");
    assert.equal(created.json.url, `${PUBLIC_URL}/mdm/credentials/scep/wifi`);
    assert.deepEqual(created.json.template.extended_key_usages, ["clientAuth"]);
    assert.equal((await server.api("PUT", "/v1/ddm/credentials/wifi", TEMPLATE)).status, 200);

    const decl = {
      Type: "com.apple.asset.credential.scep",
      Identifier: "com.example.credential.wifi",
      Payload: { Reference: { DataURL: "orchard:credential/scep/wifi", Size: 5, "Hash-SHA-256": "00" } },
    };
    assert.equal((await server.api("PUT", "/v1/declarations?nonotify=1", decl)).status, 204);
    const stored = JSON.parse((await server.store.ddm.declaration(decl.Identifier))!.payload);
    assert.deepEqual(stored, {
      Reference: {
        DataURL: `${PUBLIC_URL}/mdm/credentials/scep/wifi?v=${created.json.revision.slice(0, 16)}`,
        ContentType: "application/json",
      },
      Authentication: { Type: "MDM" },
    });
    const caDecl = {
      Type: "com.apple.asset.credential.certificate",
      Identifier: "com.example.credential.ca",
      Payload: { Reference: { DataURL: "orchard:credential/ca" } },
    };
    assert.equal((await server.api("PUT", "/v1/declarations?nonotify=1", caDecl)).status, 204);
    const pem = Buffer.from(server.credentialCa.certPem);
    const caRef = JSON.parse((await server.store.ddm.declaration(caDecl.Identifier))!.payload).Reference;
    assert.deepEqual(caRef, {
      DataURL: `${PUBLIC_URL}/mdm/credentials/ca`,
      ContentType: "application/pem",
      Size: pem.length,
      "Hash-SHA-256": createHash("sha256").update(pem).digest("hex"),
    });

    // A credential reference in the wrong type, or naming no template: refused, nothing stored.
    const wrongType = { ...decl, Type: "com.apple.asset.data", Identifier: "com.example.wrong" };
    assert.equal((await server.api("PUT", "/v1/declarations", wrongType)).json.code, "invalid_asset_reference");
    const missing = { ...decl, Identifier: "com.example.missing", Payload: { Reference: { DataURL: "orchard:credential/scep/none" } } };
    const r = await server.api("PUT", "/v1/declarations", missing);
    assert.equal(r.status, 422);
    assert.equal(r.json.code, "unknown_asset_reference");

    for (const id of [decl.Identifier, caDecl.Identifier]) {
      assert.equal((await server.api("PUT", `/v1/set-declarations/wifi-set?declaration=${id}&nonotify=1`)).status, 204);
    }
    assert.equal((await server.api("PUT", `/v1/enrollment-sets/${a.udid}?set=wifi-set&nonotify=1`)).status, 204);
  });

  test("the device holding it gets its JSON with a fresh challenge; another device 404, a stranger 403", async () => {
    const doc = await credentialJson();
    assert.equal(doc.Type, "com.apple.credential.scep");
    const { Challenge, ...rest } = doc.Payload;
    assert.match(Challenge, /^[0-9a-f]{40}$/);
    assert.deepEqual(rest, {
      URL: `${PUBLIC_URL}/scep/credential`,
      Subject: [[["CN", serial(a)]], [["O", "Example Wi-Fi"]]],
      SubjectAltName: { dNSName: `${a.udid}.devices.example.test` },
      Keysize: 2048,
      "Key Type": "RSA",
      "Key Usage": 5,
    });
    assert.notEqual((await credentialJson()).Payload.Challenge, Challenge, "a new challenge on each download");
    assert.ok(!server.logs.some((l) => l.includes(Challenge)), "the challenge is never logged");

    const other = await deviceGet("/mdm/credentials/scep/wifi", b.identity);
    assert.equal(other.status, 404, other.text);
    assert.equal((await deviceGet("/mdm/credentials/scep/wifi", undefined)).status, 403);
    assert.equal((await deviceGet("/mdm/credentials/ca", b.identity)).status, 404);
    const ca = await deviceGet("/mdm/credentials/ca", a.identity);
    assert.equal(ca.status, 200);
    assert.equal(ca.text, server.credentialCa.certPem);
    const api = await fetch(`${server.url}/v1/ddm/credential-ca`, {
      headers: { authorization: "Basic " + Buffer.from("x:test-api-key-0123456789abcdef").toString("base64") },
    });
    assert.equal(await api.text(), server.credentialCa.certPem);
  });

  test("SCEP with the JSON's challenge: a certificate from the credential CA, with the rendered subject and names; once", async () => {
    const doc = await credentialJson();
    const scep = credentialScep();
    assert.deepEqual(Buffer.from((await scep.caCert()).raw), Buffer.from(server.credentialCa.cert.raw), "GetCACert: the credential CA");
    const got = await scep.enroll({ challenge: doc.Payload.Challenge, subjectDer: subjectOf(a) });
    const cert = got.cert;
    assert.ok(cert.checkIssued(server.credentialCa.cert) && cert.verify(server.credentialCa.cert.publicKey), "issued by the credential CA");
    assert.ok(!cert.verify(server.deviceCa.cert.publicKey), "not by the device CA");
    assert.equal(cert.subject, `CN=${serial(a)}\nO=Example Wi-Fi`);
    assert.equal(cert.subjectAltName, `DNS:${a.udid}.devices.example.test`);
    assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.2"], "extended key usage: clientAuth");

    const events = await server.api("GET", `/v1/events?type=ddm.credential.issued&enrollment=${a.udid}`);
    assert.equal(events.status, 200, events.text);
    const issued = events.json.events.find((e: any) => e.detail.serial === cert.serialNumber.toLowerCase());
    assert.ok(issued, "a ddm.credential.issued event for the device");
    assert.equal(issued.detail.credential, "wifi");

    await assert.rejects(
      credentialScep().enroll({ challenge: doc.Payload.Challenge, subjectDer: subjectOf(a) }),
      (err: unknown) => err instanceof ScepRefused && err.failInfo === "badRequest",
      "a spent challenge is refused",
    );
  });

  test("a challenge handed to another device, or a device-CA challenge: refused", async () => {
    // Device B's subject with a challenge handed to device A.
    const doc = await credentialJson(a);
    await assert.rejects(
      credentialScep().enroll({ challenge: doc.Payload.Challenge, subjectDer: subjectOf(b) }),
      (err: unknown) => err instanceof ScepRefused && err.failInfo === "badRequest",
    );
    const refused = await server.api("GET", "/v1/events?type=ddm.credential.refused");
    assert.ok(
      refused.json.events.some((e: any) => e.enrollment_id === a.udid && /another device/.test(e.detail.reason)),
      JSON.stringify(refused.json.events),
    );
    // A device identity's challenge buys no credential, and a credential's challenge no device identity.
    const deviceChallenge = (await server.api("POST", "/v1/scep/challenges")).json.challenge;
    await assert.rejects(credentialScep().enroll({ challenge: deviceChallenge, subjectDer: subjectOf(a) }), ScepRefused);
    await assert.rejects(
      new ScepTestClient(`${server.url}/scep`).enroll({ challenge: (await credentialJson()).Payload.Challenge }),
      ScepRefused,
    );
  });

  test("a credential certificate is refused as an MDM identity at Authenticate and at Idle", async () => {
    const doc = await credentialJson();
    const got = await credentialScep().enroll({ challenge: doc.Payload.Challenge, subjectDer: subjectOf(a) });
    const impostor = new RawDevice(fleet.transport, got, a.udid);
    const auth = await impostor.authenticate();
    assert.equal(auth.status, 400, auth.text);
    assert.match(auth.text, /credential CA/);
    const idle = await impostor.report("Idle");
    assert.equal(idle.status, 400, idle.text);
    assert.match(idle.text, /credential CA/);
    assert.equal((await deviceGet("/mdm/credentials/scep/wifi", got)).status, 403, "nor at the downloads");
  });

  test("a serial number another enrolled device reported too is not rendered: 409, logged, no challenge; unless ADE binds it", async () => {
    // The attack: device C, enrolled with its own identity and UDID, sends Authenticate again naming device A's serial.
    const c = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await c.enroll();
    assert.equal((await server.api("PUT", `/v1/enrollment-sets/${c.udid}?set=wifi-set&nonotify=1`)).status, 204);
    assert.equal((await c.authenticate({ SerialNumber: serial(a) })).status, 200);
    assert.equal((await c.tokenUpdate()).status, 200);
    const challengesBefore = await server.store.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM credential_challenges");
    for (const d of [c, a]) {
      const r = await deviceGet("/mdm/credentials/scep/wifi", d.identity);
      assert.equal(r.status, 409, r.text);
      assert.match(r.text, /serial_number is also reported by another enrolled device/);
      assert.ok(!r.text.includes(d === a ? c.udid : a.udid), "the device is not told the other device's UDID");
    }
    // The same serial in another letter case is the same serial (RADIUS and VPN policies often match names so).
    const lower = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await lower.enroll();
    assert.equal((await server.api("PUT", `/v1/enrollment-sets/${lower.udid}?set=wifi-set&nonotify=1`)).status, 204);
    assert.equal((await lower.authenticate({ SerialNumber: serial(a).toLowerCase() })).status, 200);
    assert.equal((await lower.tokenUpdate()).status, 200);
    const refused = await deviceGet("/mdm/credentials/scep/wifi", lower.identity);
    assert.equal(refused.status, 409, refused.text);
    assert.equal((await server.api("DELETE", `/v1/enrollments/${lower.udid}`)).status, 200);
    const challengesAfter = await server.store.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM credential_challenges");
    assert.equal(Number(challengesAfter!.n), Number(challengesBefore!.n), "no challenge handed out");
    assert.ok(
      server.logs.some((l) => l.includes("another enrolled device's too") && l.includes(a.udid) && l.includes(c.udid)),
      "a log line names both devices",
    );
    // A template that does not name the serial number is still rendered for the device.
    assert.equal((await server.api("PUT", "/v1/ddm/credentials/wifi", { ...TEMPLATE, subject: [["CN", "{{udid}}"]] })).status, 200);
    assert.equal((await deviceGet("/mdm/credentials/scep/wifi", c.identity)).status, 200);
    assert.equal((await server.api("PUT", "/v1/ddm/credentials/wifi", TEMPLATE)).status, 200);

    // A's identity certificate issued for its serial by ADE enrollment: the serial is A's, whoever else claims it.
    const now = Date.now();
    await server.store.scep.recordCertificate({
      serialNumber: randomUUID().replaceAll("-", ""),
      fingerprint: a.identity.fingerprint,
      subject: "CN=test",
      issuedAt: now,
      notAfter: now + 86_400_000,
      requestType: "PKCSReq",
      transactionId: randomUUID(),
      deviceId: null,
      renewedFrom: null,
      certDer: a.identity.certDer,
      adeSerial: serial(a),
    });
    const doc = await credentialJson(a);
    assert.deepEqual(doc.Payload.Subject[0], [["CN", serial(a)]]);
    assert.equal((await deviceGet("/mdm/credentials/scep/wifi", c.identity)).status, 409, "the claimer is still refused");

    // The claimer removed by an operator: nothing is shared any more.
    assert.equal((await server.api("DELETE", `/v1/enrollments/${c.udid}`)).status, 200);
    await credentialJson(a);
  });

  test("scepclient (micromdm) runs SCEP with the JSON's challenge", {
    skip: SCEPCLIENT ? false : "scepclient is not installed",
  }, async () => {
    const doc = await credentialJson();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-cred-scep-"));
    try {
      // scepclient writes C, O, OU and CN: a template with those four (in another order: attributes are compared as a set).
      const template = {
        ...TEMPLATE,
        subject: [
          ["CN", "{{serial_number}}"],
          ["O", "Example Wi-Fi"],
          ["OU", "MDM"],
          ["C", "US"],
        ],
      };
      assert.equal((await server.api("PUT", "/v1/ddm/credentials/wifi", template)).status, 200);
      const fresh = await credentialJson();
      assert.notEqual(fresh.Payload.Challenge, doc.Payload.Challenge);
      const out = await new Promise<{ code: number; output: string }>((resolve) =>
        execFile(
          SCEPCLIENT!,
          [
            "-server-url",
            `${server.url}/scep/credential`,
            "-private-key",
            path.join(dir, "key.pem"),
            "-challenge",
            fresh.Payload.Challenge,
            "-cn",
            serial(a),
            "-organization",
            "Example Wi-Fi",
            "-ou",
            "MDM",
            "-country",
            "US",
          ],
          { timeout: 15_000 },
          (err, stdout, stderr) => resolve({ code: err ? 1 : 0, output: `${stdout}\n${stderr}` }),
        ),
      );
      assert.equal(out.code, 0, out.output);
      const cert = new X509Certificate(fs.readFileSync(path.join(dir, "client.pem")));
      assert.ok(cert.checkIssued(server.credentialCa.cert));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      assert.equal((await server.api("PUT", "/v1/ddm/credentials/wifi", TEMPLATE)).status, 200);
    }
  });

  test("a changed template changes the declaration's ServerToken in the same transaction; a named template is not removed", async () => {
    const before = (await server.store.ddm.declaration("com.example.credential.wifi"))!;
    const changed = await server.api("PUT", "/v1/ddm/credentials/wifi", { ...TEMPLATE, days: 30 });
    assert.equal(changed.status, 200);
    const after = (await server.store.ddm.declaration("com.example.credential.wifi"))!;
    assert.notEqual(after.serverToken, before.serverToken);
    assert.match(JSON.parse(after.payload).Reference.DataURL, new RegExp(`\\?v=${changed.json.revision.slice(0, 16)}$`));

    const refused = await server.api("DELETE", "/v1/ddm/credentials/wifi");
    assert.equal(refused.status, 409);
    assert.equal(refused.json.code, "asset_in_use");
    const list = await server.api("GET", "/v1/ddm/credentials");
    assert.deepEqual(
      list.json.credentials.map((c: any) => c.name),
      ["wifi"],
    );
    assert.equal((await server.api("PUT", "/v1/ddm/credentials/spare", TEMPLATE)).status, 201);
    assert.deepEqual((await server.api("DELETE", "/v1/ddm/credentials/spare")).json, { removed: "spare" });
    assert.equal((await server.api("GET", "/v1/ddm/credentials/spare")).status, 404);
  });
});
