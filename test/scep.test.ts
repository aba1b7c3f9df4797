// SCEP end to end against a real Orchard: micromdm's scepclient (Debian's
// `scep` package, v2.1.0) and Orchard's own test client, on both store
// backends. Without scepclient its tests skip, except in CI
// (ORCHARD_TEST_REQUIRE_POSTGRES=1), where they fail.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  X509Certificate,
} from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { scepCommand } from "../src/cli/scep.ts";
import { cliContext } from "./support/cli.ts";
import { generateKeyPair, pkiIdentity, type PkiIdentity } from "../src/identity/testing/pki.ts";
import { SCEP_CAPABILITIES } from "../src/scep/index.ts";
import {
  buildCsr,
  buildPkiRequest,
  commonNameSubject,
  readCertRep,
  ScepRefused,
  ScepTestClient,
  selfSignedSigner,
} from "../src/scep/testing/client.ts";
import { MessageType } from "../src/scep/message.ts";
import { SimDevice } from "../src/sim/device.ts";
import { Transport } from "../src/sim/transport.ts";
import { sleep } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const REQUIRED = process.env.ORCHARD_TEST_REQUIRE_POSTGRES === "1";
const SCEPCLIENT = findInPath("scepclient");
const needsScepclient = { skip: SCEPCLIENT || REQUIRED ? false : "scepclient is not installed (Debian/Ubuntu: apt-get install scep)" };

if (!SCEPCLIENT && REQUIRED) {
  test("scepclient is installed (required when ORCHARD_TEST_REQUIRE_POSTGRES=1)", () => {
    assert.fail("scepclient not found in PATH: install the Debian package scep");
  });
}

const HEADER_MODE = { kind: "header", header: "x-client-cert" } as const;
// The default challenge lifetime is tiny so that expiry can be tested; the
// other tests ask for challenges that live ten minutes.
const TINY_TTL_MS = 300;

await forEachBackend("SCEP", (backend) => {
  let server: TestServer;
  let transport: Transport;
  let tmp: string;
  let caFingerprint: string;
  let scepUrl: string;

  before(async () => {
    server = await startTestServer(["--scep-challenge-ttl", `${TINY_TTL_MS}ms`], backend);
    transport = new Transport(server.url);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-scep-e2e-"));
    caFingerprint = createHash("sha256").update(server.deviceCa.certDer).digest("hex");
    scepUrl = `${server.url}/scep`;
  });
  after(async () => {
    transport.close();
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** A challenge from the API; null: no body, the server's default lifetime. */
  async function challenge(ttl: string | null = "10m"): Promise<string> {
    const r = await server.api("POST", "/v1/scep/challenges", ttl === null ? undefined : { ttl });
    assert.equal(r.status, 201, r.text);
    return r.json.challenge;
  }

  let dirs = 0;
  /** Runs scepclient with its key (and so its csr.pem, client.pem) in `dir`. */
  async function scepclient(dir: string, args: string[]): Promise<{ code: number; output: string }> {
    fs.mkdirSync(dir, { recursive: true });
    return new Promise((resolve) => {
      execFile(
        SCEPCLIENT ?? "scepclient",
        ["-server-url", scepUrl, "-private-key", path.join(dir, "key.pem"), "-debug", ...args],
        { timeout: 15_000 },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
          resolve({ code, output: `${stdout}\n${stderr}` });
        },
      );
    });
  }
  const newDir = () => path.join(tmp, `client-${++dirs}`);

  /** The identity scepclient keeps in dir, as a PkiIdentity for a SimDevice. */
  function scepclientIdentity(dir: string): PkiIdentity {
    const privateKey = createPrivateKey(fs.readFileSync(path.join(dir, "key.pem")));
    return pkiIdentity(new X509Certificate(fs.readFileSync(path.join(dir, "client.pem"))), {
      privateKey,
      publicKey: createPublicKey(privateKey),
    });
  }

  function assertIssuedByDeviceCa(cert: X509Certificate): void {
    assert.ok(cert.verify(server.deviceCa.cert.publicKey), "signed by the device CA");
    assert.ok(cert.checkIssued(server.deviceCa.cert));
    assert.equal(cert.ca, false);
  }

  describe("HTTP surface", () => {
    test("GetCACaps lists what is implemented; GetCACert is the device CA, DER", async () => {
      const caps = await fetch(`${scepUrl}?operation=GetCACaps`);
      assert.equal(caps.status, 200);
      assert.match(caps.headers.get("content-type") ?? "", /^text\/plain/);
      const list = (await caps.text()).trim().split("\n");
      for (const cap of ["AES", "POSTPKIOperation", "SHA-256", "SHA-1", "Renewal", "SCEPStandard", "DES3"])
        assert.ok(list.includes(cap), cap);
      assert.deepEqual(list, [...SCEP_CAPABILITIES]);
      const ca = await fetch(`${scepUrl}?operation=GetCACert`);
      assert.equal(ca.status, 200);
      assert.equal(ca.headers.get("content-type"), "application/x-x509-ca-cert");
      assert.deepEqual(Buffer.from(await ca.arrayBuffer()), server.deviceCa.certDer);
    });

    test("undecodable input is a 400 (never a 500); too large is a 413", async () => {
      const cases: Array<[string, RequestInit | undefined, number]> = [
        ["", undefined, 400],
        ["?operation=GetNextCACert", undefined, 400],
        ["?operation=PKIOperation", undefined, 400],
        ["?operation=PKIOperation&message=%%%", undefined, 400],
        ["?operation=PKIOperation&message=AAAA", undefined, 400],
        ["?operation=PKIOperation", { method: "POST", body: new Uint8Array(Buffer.from("garbage")) }, 400],
        ["?operation=PKIOperation", { method: "POST" }, 400],
        ["?operation=GetCACert", { method: "POST", body: "x" }, 400],
        ["?operation=PKIOperation", { method: "POST", body: new Uint8Array(70 * 1024) }, 413],
        ["?operation=PKIOperation&operation=GetCACaps", undefined, 400],
      ];
      for (const [query, init, status] of cases) {
        const r = await fetch(scepUrl + query, init);
        assert.equal(r.status, status, `${init?.method ?? "GET"} ${query}: ${await r.text()}`);
      }
    });

    test("a key too costly to verify with (its public exponent as long as its modulus) is refused before any use, the challenge right", async () => {
      // A valid RSA key with e and d swapped: each verification with it costs what a private-key operation does.
      const costly = swappedExponentKey(2048);
      const csrDer = buildCsr({ key: costly, subjectDer: commonNameSubject("costly"), challenge: await challenge() });
      const signer = { cert: await selfSignedSigner(costly), key: costly.privateKey };
      const request = buildPkiRequest({ messageType: MessageType.PKCSReq, csrDer, signer, recipient: server.deviceCa.cert });
      const r = await fetch(`${scepUrl}?operation=PKIOperation`, { method: "POST", body: new Uint8Array(request.der) });
      const body = Buffer.from(await r.arrayBuffer());
      assert.ok(r.status === 200 || r.status === 400, `${r.status}: ${body}`);
      if (r.status === 200) {
        assert.throws(
          () =>
            readCertRep(body, { ca: server.deviceCa.cert, signer, transactionId: request.transactionId, senderNonce: request.senderNonce }),
          (e: unknown) => e instanceof ScepRefused,
          "nothing issued",
        );
      }
      assert.ok(
        server.logs.some((l) => l.includes("public exponent is larger than 2^32")),
        "the refusal's reason is logged",
      );
    });

    test("POST /v1/scep/challenges: API key, optional ttl, 201 with the expiry; the CLI prints the challenge alone", async () => {
      const unauthenticated = await fetch(`${server.url}/v1/scep/challenges`, { method: "POST" });
      assert.equal(unauthenticated.status, 401);
      const before = Date.now();
      const r = await server.api("POST", "/v1/scep/challenges", { ttl: "10m" });
      assert.equal(r.status, 201);
      assert.match(r.json.challenge, /^[0-9a-f]{40}$/);
      assert.equal(r.headers.get("cache-control"), "no-store", "a live challenge is kept by no cache");
      const expires = Date.parse(r.json.expires_at);
      assert.ok(expires >= before + 600_000 && expires <= Date.now() + 600_000);
      const byDefault = await server.api("POST", "/v1/scep/challenges");
      assert.ok(Date.parse(byDefault.json.expires_at) <= Date.now() + TINY_TTL_MS);
      for (const bad of [{ ttl: "soon" }, { ttl: 5 }, { ttl: "0s" }, { ttl: "400d" }, { other: 1 }, [1], "not json"]) {
        const res = await server.api("POST", "/v1/scep/challenges", typeof bad === "string" ? bad : bad);
        assert.equal(res.status, 400, JSON.stringify(bad));
      }
      // The challenge is a secret: no log line carries it.
      assert.ok(!server.logs.some((l) => l.includes(r.json.challenge)));

      const ctx = cliContext(server.url);
      assert.equal(await scepCommand.run(["challenge", "--ttl", "10m"], ctx), 0);
      assert.match(ctx.stdout, /^[0-9a-f]{40}\n$/);
      const json = cliContext(server.url);
      assert.equal(await scepCommand.run(["challenge", "--json"], json), 0);
      assert.match(JSON.parse(json.stdout).expires_at, /^\d{4}-/);
      await assert.rejects(scepCommand.run(["challenge", "--ttl", "later"], cliContext(server.url)), /--ttl/);
      await assert.rejects(scepCommand.run(["other"], cliContext(server.url)), /unknown subcommand/);
    });
  });

  describe("scepclient (micromdm, v2.1.0)", () => {
    // What it sends, observed: DES-CBC content encryption whatever the caps
    // say (Go pkcs7's default), SHA-1 digests, sha1WithRSAEncryption.
    test(
      "enrolls with a challenge and the CA's SHA-256 fingerprint; the certificate is the device CA's, with the -cn given",
      needsScepclient,
      async () => {
        const dir = newDir();
        const c = await challenge();
        const r = await scepclient(dir, ["-challenge", c, "-cn", `scep-e2e-${backend}`, "-ca-fingerprint", caFingerprint]);
        assert.equal(r.code, 0, r.output);
        assert.match(r.output, new RegExp(`hash=${caFingerprint}`), "scepclient fetched our CA");
        const cert = new X509Certificate(fs.readFileSync(path.join(dir, "client.pem")));
        assertIssuedByDeviceCa(cert);
        assert.match(cert.subject, new RegExp(`(^|\\n)CN=scep-e2e-${backend}($|\\n)`));
        const key = createPrivateKey(fs.readFileSync(path.join(dir, "key.pem")));
        assert.ok(cert.checkPrivateKey(key));
        const issued = await server.store.scep.certificateByFingerprint(createHash("sha256").update(cert.raw).digest("hex"));
        assert.equal(issued?.requestType, "PKCSReq");
        const line = server.logs.find((l) => l.includes("SCEP certificate issued") && l.includes(cert.serialNumber));
        assert.ok(line);
        assert.equal(JSON.parse(line).cipher, "des-cbc");
        assert.equal(JSON.parse(line).digest, "sha1");
        assert.ok(!server.logs.some((l) => l.includes(c)), "the challenge is never logged");

        // A wrong fingerprint: scepclient finds no CA to encrypt to.
        const wrong = await scepclient(newDir(), ["-challenge", await challenge(), "-ca-fingerprint", "00".repeat(32)]);
        assert.notEqual(wrong.code, 0, wrong.output);
        assert.match(wrong.output, /no selected CA/);
      },
    );

    test("a reused, a wrong and an expired challenge are refused (failInfo badRequest)", needsScepclient, async () => {
      const c = await challenge();
      assert.equal((await scepclient(newDir(), ["-challenge", c, "-cn", "first"])).code, 0);
      const reused = await scepclient(newDir(), ["-challenge", c, "-cn", "second"]);
      assert.notEqual(reused.code, 0, reused.output);
      assert.match(reused.output, /failInfo: badRequest/);

      const wrong = await scepclient(newDir(), ["-challenge", "f".repeat(40), "-cn", "third"]);
      assert.notEqual(wrong.code, 0, wrong.output);
      assert.match(wrong.output, /failInfo: badRequest/);

      const short = await challenge(null); // the server's default lifetime: TINY_TTL_MS
      await sleep(TINY_TTL_MS + 100);
      const expired = await scepclient(newDir(), ["-challenge", short, "-cn", "fourth"]);
      assert.notEqual(expired.code, 0, expired.output);
      assert.match(expired.output, /failInfo: badRequest/);

      const reasons = (await server.store.events.list({ type: "scep.refused", limit: 100 })).map((e) => e.detail?.reason);
      for (const reason of ["challenge password already used", "unknown challenge password", "challenge password expired"]) {
        assert.ok(reasons.includes(reason), reason);
      }
      assert.ok(!server.logs.some((l) => l.includes(c) || l.includes(short)));
    });

    // scepclient v2.1.0 sends RenewalReq (17) when the certificate file
    // (-certificate, default client.pem beside the key) exists, signed with
    // that certificate: a device that renews keeps working, old one refused.
    test("renews with RenewalReq; the enrolled device is rebound to the new certificate", needsScepclient, async () => {
      const dir = newDir();
      assert.equal((await scepclient(dir, ["-challenge", await challenge(), "-cn", "renewing-device"])).code, 0);
      const old = scepclientIdentity(dir);
      const device = new SimDevice({ transport, identity: old, mode: HEADER_MODE });
      await device.enroll();
      assert.equal((await device.report("Idle")).status, 200);

      const r = await scepclient(dir, ["-cn", "renewing-device"]);
      assert.equal(r.code, 0, r.output);
      const renewed = scepclientIdentity(dir);
      assert.notEqual(renewed.fingerprint, old.fingerprint);
      assertIssuedByDeviceCa(renewed.cert);
      assert.equal(renewed.cert.subject, old.cert.subject);
      assert.equal((await server.store.scep.certificateByFingerprint(renewed.fingerprint))?.requestType, "RenewalReq");
      await assertRebound(device, old, renewed);
    });
  });

  describe("Orchard's test client", () => {
    test("enroll by GET (3DES, SHA-1) and POST (AES-128); renew with a new key; the device keeps working without Authenticate", async () => {
      const client = new ScepTestClient(scepUrl);
      assert.deepEqual(await client.caps(), [...SCEP_CAPABILITIES]);
      const key = await generateKeyPair();
      const viaGet = await client.enroll({
        challenge: await challenge(),
        commonName: "get-device",
        method: "GET",
        cipher: "des-ede3-cbc",
        digest: "sha1",
        key,
      });
      assertIssuedByDeviceCa(viaGet.cert);
      await assert.rejects(
        client.enroll({ challenge: "nope", key }),
        (e: unknown) => e instanceof ScepRefused && e.failInfo === "badRequest",
      );

      const first = await client.enroll({ challenge: await challenge(), commonName: `sim-${randomUUID()}`, key, cipher: "aes-128-cbc" });
      assert.equal(first.cert.subject, `CN=${first.commonName}`);
      const device = new SimDevice({ transport, identity: first, mode: HEADER_MODE });
      await device.enroll();
      assert.equal((await device.report("Idle")).status, 200);

      const renewed = await client.renew(first, { key: await generateKeyPair() });
      assertIssuedByDeviceCa(renewed.cert);
      assert.equal(renewed.cert.subject, first.cert.subject);
      const rec = await server.store.scep.certificateByFingerprint(renewed.fingerprint);
      assert.equal(rec?.requestType, "RenewalReq");
      assert.equal(rec?.deviceId, device.udid);
      assert.equal(rec?.renewedFrom, first.fingerprint);
      const events = await server.store.events.list({ type: "scep.renewed", enrollmentId: device.udid, limit: 10 });
      assert.equal(events.length, 1);
      await assertRebound(device, first, renewed);

      // The replaced certificate cannot renew again.
      await assert.rejects(client.renew(first), (e: unknown) => e instanceof ScepRefused && e.failInfo === "badRequest");
    });
  });

  test("a renewal re-binds as before while another certificate's Authenticate for the device is held", async () => {
    const client = new ScepTestClient(scepUrl);
    const key = await generateKeyPair();
    const first = await client.enroll({ challenge: await challenge(), commonName: `sim-${randomUUID()}`, key });
    const device = new SimDevice({ transport, identity: first, mode: HEADER_MODE });
    await device.enroll();
    // Another certificate the server trusts (its own SCEP's) claims the device's UDID: held.
    const stranger = await client.enroll({ challenge: await challenge(), commonName: `stranger-${randomUUID()}`, key });
    const claim = new SimDevice({ transport, identity: stranger, mode: HEADER_MODE, udid: device.udid, serialNumber: device.serialNumber });
    assert.equal((await claim.authenticate()).status, 403);

    const renewed = await client.renew(first, { key: await generateKeyPair() });
    await assertRebound(device, first, renewed);
    const again = new SimDevice({ transport, identity: renewed, mode: HEADER_MODE, udid: device.udid, serialNumber: device.serialNumber });
    assert.equal((await again.authenticate()).status, 200, "the renewed certificate is the device's own");
    assert.equal((await claim.authenticate()).status, 403, "the stranger is still held");
  });

  /**
   * The renewed certificate works for Idle without a new Authenticate, and the
   * old one is refused. Order matters within 10 s of the old certificate's last
   * use: this process's CertBinding remembers a confirmed (device, fingerprint)
   * for up to 10 s (src/core/cert-binding.ts). The new certificate misses that
   * cache and reads the store, which replaces the remembered fingerprint, so the
   * old one is then checked against the store and refused at once. (Presented
   * first, the old certificate could still pass here until the 10 s run out,
   * the bounded staleness that cache accepts; other processes read the store.)
   */
  async function assertRebound(device: SimDevice, old: PkiIdentity, renewed: PkiIdentity): Promise<void> {
    assert.equal((await server.store.enrollments.bindingOf(device.udid))?.fingerprint, renewed.fingerprint);
    const same = { transport, mode: HEADER_MODE, udid: device.udid, serialNumber: device.serialNumber };
    const after = new SimDevice({ ...same, identity: renewed });
    const idle = await after.report("Idle");
    assert.equal(idle.status, 200, idle.body.toString());
    const checkin = await after.checkin("TokenUpdate", { Topic: after.topic, Token: after.pushToken, PushMagic: after.pushMagic });
    assert.equal(checkin.status, 200);
    const before = new SimDevice({ ...same, identity: old });
    const refused = await before.report("Idle");
    assert.equal(refused.status, 403);
    assert.match(refused.body.toString(), /does not match/);
  }
});

function findInPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** An RSA key pair with its exponents swapped: valid, and as costly to verify with as to sign with (review). */
function swappedExponentKey(bits: number): { privateKey: KeyObject; publicKey: KeyObject } {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: bits });
  const jwk = privateKey.export({ format: "jwk" });
  const big = (s: string | undefined) => BigInt(`0x${Buffer.from(s!, "base64url").toString("hex")}`);
  const b64 = (x: bigint) =>
    Buffer.from(x.toString(16).padStart(Math.ceil(x.toString(16).length / 2) * 2, "0"), "hex").toString("base64url");
  const [p, q, d, e] = [big(jwk.p), big(jwk.q), big(jwk.d), big(jwk.e)];
  const swapped = createPrivateKey({
    key: { ...jwk, e: b64(d), d: b64(e), dp: b64(e % (p - 1n)), dq: b64(e % (q - 1n)) },
    format: "jwk",
  });
  return { privateKey: swapped, publicKey: createPublicKey(swapped) };
}
