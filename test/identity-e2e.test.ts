// Device identity end to end: Mdm-Signature, forwarded certificate headers,
// TLS client certificates, the certificate binding, and --ca.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { createCa, issueDeviceIdentity, signMdmBody } from "../src/identity/testing/pki.ts";
import { parsePlistDict } from "../src/plist/index.ts";
import { SimDevice } from "../src/sim/device.ts";
import { Transport } from "../src/sim/transport.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { CHECKIN_TYPE, COMMAND_TYPE, commandPlist, identity, plist, rawPut, RawDevice, type Auth, type RawReply } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

await forEachBackend("device identity", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  /** Every status a device request got in this file: none may be 401. */
  const statuses: number[] = [];

  before(async () => {
    server = await startTestServer([], backend);
    fleet = await testFleet(server.url);
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  async function put(
    urlPath: string,
    body: Buffer,
    auth: Auth,
    contentType = CHECKIN_TYPE,
    transport = fleet.transport,
  ): Promise<RawReply> {
    const r = await rawPut(transport, urlPath, body, { auth, contentType });
    statuses.push(r.status);
    return r;
  }

  const udid = () => randomUUID().toUpperCase();
  const authenticate = (id: string) => plist({ MessageType: "Authenticate", UDID: id, Topic: "com.apple.mgmt.x", SerialNumber: "S" });
  const tokenUpdate = (id: string) =>
    plist({ MessageType: "TokenUpdate", UDID: id, Topic: "com.apple.mgmt.x", Token: Buffer.alloc(32, 2), PushMagic: "pm" });
  const idle = (id: string) => plist({ Status: "Idle", UDID: id });

  describe("Mdm-Signature", () => {
    test("a device that signs every message enrolls, fetches and acknowledges a command", async () => {
      const d = await fleet.device({ mode: { kind: "signature" } });
      await d.enroll();
      const e = await server.api("GET", `/v1/enrollments/${d.udid}`);
      assert.equal(e.json.enabled, true);
      const id = udid();
      assert.equal((await server.api("PUT", `/v1/enqueue/${d.udid}?nopush=1`, commandPlist("DeviceInformation", id))).status, 200);
      const cmd = await d.report("Idle");
      statuses.push(cmd.status);
      assert.equal(cmd.status, 200);
      assert.equal(parsePlistDict(cmd.body).CommandUUID, id);
      const ack = await d.report("Acknowledged", { CommandUUID: id });
      statuses.push(ack.status);
      assert.equal(ack.status, 200);
      assert.equal(ack.body.length, 0);
      assert.equal((await server.api("GET", `/v1/commands/${id}`)).json.results[0].status, "Acknowledged");
    });

    test("a signature over other bytes (the body changed after signing) is 400", async () => {
      const ident = await identity(fleet);
      const id = udid();
      const body = authenticate(id);
      const tampered = Buffer.from(body.toString().replace("<string>S</string>", "<string>T</string>"));
      const r = await put("/checkin", tampered, { kind: "signature", identity: ident, signOver: body });
      assert.equal(r.status, 400);
      assert.match(r.text, /^device identity: /);
      assert.equal((await server.store.enrollments.bindingOf(id))?.fingerprint, undefined);
    });

    test("a signature over the body plus a trailing newline does not verify the body without it", async () => {
      const ident = await identity(fleet);
      const id = udid();
      const body = authenticate(id);
      const r = await put("/checkin", body, { kind: "signature", identity: ident, signOver: Buffer.concat([body, Buffer.from("\n")]) });
      assert.equal(r.status, 400);
    });

    test("a garbage Mdm-Signature header is 400 with a reason", async () => {
      const body = authenticate(udid());
      for (const value of ["not base64 at all!", Buffer.from("hello").toString("base64"), "A".repeat(12_000)]) {
        const r = await rawPut(fleet.transport, "/checkin", body, { auth: { kind: "none" }, headers: { "mdm-signature": value } });
        statuses.push(r.status);
        assert.equal(r.status, 400, value.slice(0, 20));
        assert.match(r.text, /^device identity: .+/);
      }
      // Beyond Node's header limit the HTTP parser itself refuses it (431, or 400 when the
      // header arrives in pieces): still not a 401.
      const huge = await rawPut(fleet.transport, "/checkin", body, {
        auth: { kind: "none" },
        headers: { "mdm-signature": "A".repeat(200_000) },
      });
      statuses.push(huge.status);
      assert.ok(huge.status === 431 || huge.status === 400, `status ${huge.status}`);
    });
  });

  describe("certificate headers", () => {
    test("nginx's escaped PEM and RFC 9440 both identify the device", async () => {
      const ident = await identity(fleet);
      const id = udid();
      assert.equal((await put("/checkin", authenticate(id), { kind: "header", identity: ident, form: "nginx" })).status, 200);
      assert.equal((await put("/checkin", tokenUpdate(id), { kind: "header", identity: ident, form: "rfc9440" })).status, 200);
      const r = await put("/mdm", idle(id), { kind: "header", identity: ident, form: "rfc9440" }, COMMAND_TYPE);
      assert.equal(r.status, 200);
      assert.equal((await server.store.enrollments.bindingOf(id))?.fingerprint, ident.fingerprint);
    });

    test("a header that holds no certificate is 400", async () => {
      for (const value of ["garbage", ":bm90IGEgY2VydA==:", "%ZZ", "-----BEGIN CERTIFICATE-----%0AAAAA%0A-----END CERTIFICATE-----"]) {
        const r = await rawPut(fleet.transport, "/checkin", authenticate(udid()), {
          auth: { kind: "none" },
          headers: { "x-client-cert": value },
        });
        statuses.push(r.status);
        assert.equal(r.status, 400, value);
        assert.match(r.text, /^device identity: /);
      }
    });

    test("the certificate header wins over an Mdm-Signature", async () => {
      const headerIdent = await identity(fleet);
      const signerIdent = await identity(fleet);
      const id = udid();
      const body = authenticate(id);
      const r = await rawPut(fleet.transport, "/checkin", body, {
        auth: { kind: "header", identity: headerIdent },
        headers: { "mdm-signature": await signMdmBody(signerIdent, body) },
      });
      statuses.push(r.status);
      assert.equal(r.status, 200);
      assert.equal((await server.store.enrollments.bindingOf(id))?.fingerprint, headerIdent.fingerprint);
    });
  });

  describe("refusals", () => {
    test("no identity at all is 400 with a reason, for check-ins and reports", async () => {
      const a = await put("/checkin", authenticate(udid()), { kind: "none" });
      assert.equal(a.status, 400);
      assert.equal(a.text, "device identity: no client certificate and no Mdm-Signature header\n");
      const b = await put("/mdm", idle(udid()), { kind: "none" }, COMMAND_TYPE);
      assert.equal(b.status, 400);
      assert.match(b.text, /no client certificate and no Mdm-Signature/);
    });

    test("a certificate bound to another device is refused at Authenticate with 403", async () => {
      const a = new RawDevice(fleet.transport, await identity(fleet), udid());
      await a.enroll();
      const thief = new RawDevice(fleet.transport, a.identity, udid());
      const r = await thief.authenticate();
      statuses.push(r.status);
      assert.equal(r.status, 403);
      assert.equal(r.text, "identity certificate is bound to another device\n");
      assert.doesNotMatch(r.text, /unrecognized/);
      assert.equal((await server.store.enrollments.bindingOf(thief.udid))?.fingerprint, undefined);
    });

    test("a request for device A made with device B's certificate is 403", async () => {
      const a = new RawDevice(fleet.transport, await identity(fleet), udid());
      const b = new RawDevice(fleet.transport, await identity(fleet), udid());
      await a.enroll();
      await b.enroll();
      const asB = new RawDevice(fleet.transport, b.identity, a.udid);
      for (const r of [
        await asB.report("Idle"),
        await asB.tokenUpdate({ PushMagic: "stolen" }),
        await asB.checkin("GetBootstrapToken"),
        await asB.checkin("CheckOut"),
        await asB.tokenUpdate({ UserID: "U", UserShortName: "u" }),
      ]) {
        statuses.push(r.status);
        assert.equal(r.status, 403);
        assert.equal(r.text, "identity certificate does not match the one bound to this device\n");
      }
      const e = await server.api("GET", `/v1/enrollments/${a.udid}`);
      assert.equal(e.json.push_magic, "PUSH-MAGIC");
      assert.equal(e.json.enabled, true);
      assert.equal((await server.api("GET", `/v1/enrollments/${a.udid}:U`)).status, 404);
    });

    test("a device that never authenticated is 403 for everything but Authenticate", async () => {
      const d = new RawDevice(fleet.transport, await identity(fleet), udid());
      for (const r of [
        await d.tokenUpdate(),
        await d.report("Idle"),
        await d.checkin("SetBootstrapToken", { BootstrapToken: Buffer.from("x") }),
      ]) {
        statuses.push(r.status);
        assert.equal(r.status, 403);
        assert.equal(r.text, "device is not enrolled: Authenticate first\n");
      }
      assert.equal((await server.store.enrollments.bindingOf(d.udid))?.fingerprint, undefined);
    });
  });

  describe("--ca", () => {
    let caServer: TestServer;
    let caDir: string;
    let transport: Transport;
    before(async () => {
      caDir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-ca-"));
      const caFile = path.join(caDir, "ca.pem");
      fs.writeFileSync(caFile, fleet.ca.certPem);
      caServer = await startTestServer(["--ca", caFile], backend);
      transport = new Transport(caServer.url);
    });
    after(async () => {
      transport.close();
      await caServer.stop();
      fs.rmSync(caDir, { recursive: true, force: true });
    });

    test("a device of the configured CA enrolls; one from another CA gets 400", async () => {
      const ours = new RawDevice(transport, await identity(fleet), udid());
      await ours.enroll();
      assert.equal((await caServer.api("GET", `/v1/enrollments/${ours.udid}`)).json.enabled, true);

      const otherCa = await createCa({ commonName: "Somebody Else's CA" });
      const stranger = await issueDeviceIdentity(otherCa, { commonName: "stranger", keyPair: fleet.key });
      const id = udid();
      for (const auth of [{ kind: "header", identity: stranger } as const, { kind: "signature", identity: stranger } as const]) {
        const r = await put("/checkin", authenticate(id), auth, CHECKIN_TYPE, transport);
        assert.equal(r.status, 400);
        assert.equal(r.text, "device identity: certificate is not issued by a trusted CA\n");
      }
      assert.equal((await caServer.store.enrollments.bindingOf(id))?.fingerprint, undefined);

      // A CA certificate presented as a device identity is refused too.
      const r = await put("/checkin", authenticate(id), { kind: "header", identity: fleet.ca }, CHECKIN_TYPE, transport);
      assert.equal(r.status, 400);
    });

    test("an expired certificate from the right CA gets 400", async () => {
      const expired = await issueDeviceIdentity(fleet.ca, {
        commonName: "expired",
        keyPair: fleet.key,
        notBefore: new Date(Date.now() - 10 * 86400_000),
        notAfter: new Date(Date.now() - 86400_000),
      });
      const r = await put("/checkin", authenticate(udid()), { kind: "header", identity: expired }, CHECKIN_TYPE, transport);
      assert.equal(r.status, 400);
      assert.match(r.text, /expired/);
    });
  });

  describe("TLS client certificates (--tls-cert, --tls-key)", () => {
    let tlsServer: TestServer;
    let dir: string;
    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-tls-"));
      const serverCert = await issueDeviceIdentity(fleet.ca, {
        commonName: "127.0.0.1",
        keyPair: fleet.key,
        extendedKeyUsages: ["1.3.6.1.5.5.7.3.1"],
      });
      fs.writeFileSync(path.join(dir, "server.pem"), serverCert.certPem);
      fs.writeFileSync(path.join(dir, "server.key"), serverCert.keyPem);
      tlsServer = await startTestServer(["--tls-cert", path.join(dir, "server.pem"), "--tls-key", path.join(dir, "server.key")], backend);
    });
    after(async () => {
      await tlsServer.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test("the TLS peer certificate identifies the device", async () => {
      assert.match(tlsServer.url, /^https:/);
      // Fastify's own start-up line too (it took the server for plain HTTP).
      const listening = tlsServer.logs.filter((l) => l.includes("Server listening at"));
      assert.ok(listening.length > 0 && listening.every((l) => l.includes("Server listening at https://")), listening.join("\n"));
      const ident = await identity(fleet);
      const transport = new Transport(tlsServer.url, { cert: ident.certPem, key: ident.keyPem, rejectUnauthorized: false });
      try {
        const d = new SimDevice({ transport, identity: ident, mode: { kind: "tls" } });
        await d.enroll();
        assert.equal((await tlsServer.store.enrollments.bindingOf(d.udid))?.fingerprint, ident.fingerprint);
        const r = await d.report("Idle");
        statuses.push(r.status);
        assert.equal(r.status, 200);
        // The same TLS connection cannot speak for another device.
        const other = new SimDevice({ transport, identity: ident, mode: { kind: "tls" } });
        const stolen = await other.authenticate();
        statuses.push(stolen.status);
        assert.equal(stolen.status, 403);
      } finally {
        transport.close();
      }
      // Without a client certificate: no identity.
      const anonymous = new Transport(tlsServer.url, { rejectUnauthorized: false });
      try {
        const r = await rawPut(anonymous, "/checkin", authenticate(udid()), { auth: { kind: "none" } });
        statuses.push(r.status);
        assert.equal(r.status, 400);
      } finally {
        anonymous.close();
      }
    });
  });

  describe("never 401", () => {
    test("no device request in this file was answered 401", () => {
      assert.ok(statuses.length >= 30, `only ${statuses.length} statuses recorded`);
      assert.ok(statuses.includes(400) && statuses.includes(403) && statuses.includes(200));
      assert.equal(statuses.filter((s) => s === 401).length, 0);
    });
  });
});
