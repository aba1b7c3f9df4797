// Enrollment with Orchard alone: GET /enroll and `orchard profile enroll`,
// the device CA trusted next to --ca, and a device that enrolls with the
// identity its profile carries.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { runWith } from "../src/cli/client-commands.ts";
import { cliContext } from "./support/cli.ts";
import { createCa, issueDeviceIdentity, pkiIdentity, type PkiIdentity } from "../src/identity/testing/pki.ts";
import { issuePushCertificate, issueServerCertificate } from "../src/identity/testing/push-cert.ts";
import { parsePlistDict, type PlistDict } from "../src/plist/index.ts";
import { readPkcs12 } from "../src/identity/pkcs12.ts";
import { ScepRefused, ScepTestClient } from "../src/scep/testing/client.ts";
import { SimDevice } from "../src/sim/device.ts";
import { Transport } from "../src/sim/transport.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const TOPIC = "com.apple.mgmt.External.orchard-enroll-test";
const TOKEN = "enrollment-token-0123456789";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-enrollment-"));
const pushCa = await createCa({ commonName: "Test Apple Push CA" });
const pushCert = await issuePushCertificate(pushCa, { topic: TOPIC });
/** A CA that is not Orchard's: given as --ca, so trust is not "any". */
const otherCa = await createCa({ commonName: "Some Other Device CA" });
const otherCaFile = path.join(tmp, "other-ca.pem");
fs.writeFileSync(otherCaFile, otherCa.certPem);

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const payloads = (profile: PlistDict) => profile.PayloadContent as PlistDict[];
const payload = (profile: PlistDict, type: string) => payloads(profile).find((p) => p.PayloadType === type);

/** An identity from a PKCS#12 the profile carries, usable by a SimDevice. */
function identityFromPkcs12(p12: Buffer, passphrase: string): PkiIdentity {
  const { certificates, keys } = readPkcs12(p12, passphrase);
  const cert = certificates.map((der) => new X509Certificate(der)).find((c) => !c.ca)!;
  return pkiIdentity(cert, { privateKey: createPrivateKey({ key: keys[0]!, format: "der", type: "pkcs8" }), publicKey: cert.publicKey });
}

describe("enrollment profiles", () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer(["--enrollment-token", TOKEN, "--ca", otherCaFile]);
  });
  after(async () => {
    await server.stop();
  });

  const get = (query = "", headers: Record<string, string> = {}) => fetch(`${server.url}/enroll${query}`, { headers });
  const withKey = { authorization: "Basic " + Buffer.from("x:test-api-key-0123456789abcdef").toString("base64") };

  test("without a push certificate: 409 with the reason", async () => {
    const res = await get(`?token=${TOKEN}`);
    assert.equal(res.status, 409);
    assert.match(await res.text(), /no usable push certificate: upload one first/);
  });

  test("no token, a wrong token or a wrong key: 401 saying which (never echoing it), and the profile is not issued", async () => {
    assert.equal((await server.api("PUT", "/v1/pushcert", pushCert.certPem + pushCert.keyPem)).status, 200);
    const before = (await server.api("GET", "/v1/events?type=enrollment.profile")).json.events.length;
    for (const [res, reason] of [
      [await get(), "an enrollment token (?token=) or the API key is required"],
      [await get("?token=wrong-token-0123456789"), "the enrollment token (?token=) or API key given is wrong"],
      [
        await get("", { authorization: "Basic " + Buffer.from("x:nope").toString("base64") }),
        "the enrollment token (?token=) or API key given is wrong",
      ],
    ] as const) {
      assert.equal(res.status, 401);
      const text = await res.text();
      assert.equal(text, `${reason}\n`);
      assert.doesNotMatch(text, /mobileconfig|PayloadContent|wrong-token|nope/);
    }
    assert.equal((await server.api("GET", "/v1/events?type=enrollment.profile")).json.events.length, before);
  });

  test("the token or the API key gets a SCEP profile: MDM payload, URLs, topic, a fresh challenge each time", async () => {
    // X-Forwarded-* count only from a --trust-proxy: here they are ignored.
    const a = await get(`?token=${TOKEN}`, { "x-forwarded-proto": "https", "x-forwarded-host": "evil.example" });
    assert.equal(a.status, 200);
    assert.equal(a.headers.get("content-type"), "application/x-apple-aspen-config");
    assert.match(a.headers.get("content-disposition") ?? "", /attachment; filename="orchard-enroll\.mobileconfig"/);
    const profile = parsePlistDict(Buffer.from(await a.arrayBuffer()));
    const mdm = payload(profile, "com.apple.mdm")!;
    const scep = payload(profile, "com.apple.security.scep")!;
    assert.equal(mdm.ServerURL, `${server.url}/mdm`);
    assert.equal(mdm.CheckInURL, `${server.url}/checkin`);
    assert.equal(mdm.Topic, TOPIC);
    assert.equal(mdm.IdentityCertificateUUID, scep.PayloadUUID);
    assert.equal(mdm.SignMessage, true);
    assert.ok((mdm.ServerCapabilities as string[]).includes("com.apple.mdm.per-user-connections"));
    const content = scep.PayloadContent as PlistDict;
    assert.equal(content.URL, `${server.url}/scep`);
    assert.match(String(content.Challenge), /\S{16,}/);

    const b = await get("", withKey);
    assert.equal(b.status, 200);
    const second = payload(parsePlistDict(Buffer.from(await b.arrayBuffer())), "com.apple.security.scep")!.PayloadContent as PlistDict;
    assert.notEqual(second.Challenge, content.Challenge);
    const events = (await server.api("GET", "/v1/events?type=enrollment.profile")).json.events;
    assert.equal(events.length, 2);
    assert.doesNotMatch(JSON.stringify(events) + server.logs.join("\n"), new RegExp(String(content.Challenge)));
  });

  test("bad parameters: 400 or 404 with a reason", async () => {
    for (const [query, status, reason] of [
      ["&identity=jks", 400, /identity must be scep or pkcs12/],
      [`&cn=${"x".repeat(65)}`, 400, /cn must be/],
      ["&cn=a%0Ab", 400, /cn must be/],
      ["&topic=com.apple.mgmt.nope", 404, /no usable push certificate/],
    ] as const) {
      const res = await get(`?token=${TOKEN}${query}`);
      assert.equal(res.status, status, query);
      assert.match(await res.text(), reason);
    }
  });

  test("a PKCS#12 identity from the device CA: a device enrolls with it though --ca names another CA", async () => {
    const res = await get(`?token=${TOKEN}&identity=pkcs12&cn=pkcs12-device`);
    assert.equal(res.status, 200);
    const p = payload(parsePlistDict(Buffer.from(await res.arrayBuffer())), "com.apple.security.pkcs12")!;
    const identity = identityFromPkcs12(p.PayloadContent as Buffer, String(p.Password));
    assert.match(identity.cert.subject, /CN=pkcs12-device/);
    assert.ok(identity.cert.verify(server.deviceCa.cert.publicKey));

    const transport = new Transport(server.url);
    try {
      const device = new SimDevice({ transport, identity, mode: { kind: "signature" } });
      await device.enroll();
      assert.equal((await server.api("GET", `/v1/enrollments/${device.udid}`)).json.enabled, true);
      assert.equal((await device.report("Idle")).status, 200);

      // The control: a certificate from a CA that is neither --ca nor the device CA.
      const strangerCa = await createCa({ commonName: "Stranger CA" });
      const stranger = new SimDevice({
        transport,
        identity: await issueDeviceIdentity(strangerCa, { commonName: "stranger" }),
        mode: { kind: "signature" },
      });
      const refused = await stranger.authenticate();
      assert.ok(refused.status >= 400 && refused.status < 500 && refused.status !== 401, `status ${refused.status}`);
    } finally {
      transport.close();
    }
  });

  test("a device installs the SCEP profile: its challenge gets a certificate once, and the device enrolls with it", async () => {
    const res = await get(`?token=${TOKEN}&cn=scep-device`);
    const profile = parsePlistDict(Buffer.from(await res.arrayBuffer()));
    const scep = payload(profile, "com.apple.security.scep")!.PayloadContent as PlistDict;
    const client = new ScepTestClient(String(scep.URL));
    const identity = await client.enroll({
      challenge: String(scep.Challenge),
      commonName: String((scep.Subject as string[][][])[0]![0]![1]),
    });
    assert.match(identity.cert.subject, /CN=scep-device/);
    await assert.rejects(client.enroll({ challenge: String(scep.Challenge) }), ScepRefused, "the profile's challenge is single-use");

    const transport = new Transport(server.url);
    try {
      const device = new SimDevice({
        transport,
        identity,
        mode: { kind: "signature" },
        topic: String(payload(profile, "com.apple.mdm")!.Topic),
      });
      await device.enroll();
      const enrollment = (await server.api("GET", `/v1/enrollments/${device.udid}`)).json;
      assert.equal(enrollment.enabled, true);
      assert.equal(enrollment.topic, TOPIC);
      assert.equal((await device.report("Idle")).status, 200);
    } finally {
      transport.close();
    }
  });

  test("orchard profile enroll --out writes the profile, mode 0600", async () => {
    const out = path.join(tmp, "enroll.mobileconfig");
    const ctx = cliContext(server.url, { cwd: tmp });
    assert.equal(await runWith(ctx, "profile", ["enroll", "--out", out]), 0, ctx.stderr);
    assert.equal(fs.statSync(out).mode & 0o777, 0o600);
    assert.equal(payload(parsePlistDict(fs.readFileSync(out)), "com.apple.mdm")!.Topic, TOPIC);
    const bad = cliContext(server.url, { cwd: tmp });
    assert.equal(await runWith(bad, "profile", ["enroll", "--identity", "jks"]), 2);
    assert.match(bad.stderr, /--identity must be scep or pkcs12/);
  });

  test("orchard profile enroll --out keeps an existing file unless --force, which makes it anew with mode 0600", async () => {
    const out = path.join(tmp, "existing.mobileconfig");
    fs.writeFileSync(out, "keep me", { mode: 0o644 });
    const profiles = async () => (await server.api("GET", "/v1/events?type=enrollment.profile&limit=1000")).json.events.length;
    const before = await profiles();
    const kept = cliContext(server.url, { cwd: tmp });
    assert.equal(await runWith(kept, "profile", ["enroll", "--out", "existing.mobileconfig"]), 1);
    assert.equal(kept.stderr, `orchard: ${out} exists: give --force to replace it\n`);
    assert.equal(fs.readFileSync(out, "utf8"), "keep me");
    assert.equal(await profiles(), before, "no profile (no challenge) was issued for a write refused");
    const forced = cliContext(server.url, { cwd: tmp });
    assert.equal(await runWith(forced, "profile", ["enroll", "--out", "existing.mobileconfig", "--force"]), 0, forced.stderr);
    assert.equal(payload(parsePlistDict(fs.readFileSync(out)), "com.apple.mdm")!.Topic, TOPIC);
    assert.equal(fs.statSync(out).mode & 0o777, 0o600, "not the old file's 0644");
  });
});

test("a process whose device CA differs from the one already recorded for its database says so at start", async () => {
  // One secret key for all three, as processes on one database need (it opens the credential CA they share).
  const storage = `sqlite:${path.join(tmp, "shared.db")}`;
  const secret = ["--secret-key", "test-secret-key-0123456789abcdef"];
  const first = await startTestServer(["--storage", storage, ...secret]);
  const caCert = path.join(first.dataDir, "device-ca.pem");
  const caKey = path.join(first.dataDir, "device-ca.key");
  const shared = await startTestServer(["--storage", storage, ...secret, "--device-ca-cert", caCert, "--device-ca-key", caKey]);
  const stray = await startTestServer(["--storage", storage, ...secret]);
  try {
    const warned = (s: TestServer) => s.logs.some((l) => l.includes("DEVICE CA IS NOT THE ONE OTHER PROCESSES ON THIS DATABASE USE"));
    assert.equal(warned(first), false);
    assert.equal(warned(shared), false);
    assert.equal(warned(stray), true);
  } finally {
    await stray.stop();
    await shared.stop();
    await first.stop();
  }
});

describe("refused SCEP requests and enrollment tokens are limited per address", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(["--enrollment-token", TOKEN, "--api-max-failures", "3"]);
  });
  after(async () => {
    await server.stop();
  });

  test("after 3 refusals: wrong secrets get 429 with Retry-After on /scep and on /enroll, each counted apart; the right secret still passes", async () => {
    const client = new ScepTestClient(`${server.url}/scep`);
    await assert.rejects(client.enroll({ challenge: "wrong-challenge-0123456789" }), ScepRefused);
    assert.equal((await client.pkiOperation(Buffer.from("not a pkiMessage"))).status, 400);
    await assert.rejects(client.enroll({ challenge: "wrong-challenge-9876543210" }), ScepRefused);
    await assert.rejects(client.enroll({ challenge: "wrong-challenge-5555555555" }), /429/);
    assert.equal((await client.pkiOperation(Buffer.from("not a pkiMessage"))).status, 429);
    assert.equal((await server.api("GET", "/v1/events?type=scep.refused")).json.events.length, 2, "the throttled requests wrote nothing");
    const { challenge } = (await server.api("POST", "/v1/scep/challenges")).json;
    const identity = await client.enroll({ challenge });
    assert.ok(identity.certPem.includes("BEGIN CERTIFICATE"), "a valid challenge from a throttled address is still honoured");

    assert.equal((await fetch(`${server.url}/enroll?token=${TOKEN}`)).status, 409, "SCEP refusals do not block /enroll");
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${server.url}/enroll?token=wrong-token-0123456789`)).status, 401);
    const res = await fetch(`${server.url}/enroll?token=wrong-token-0123456789`);
    assert.equal(res.status, 429);
    assert.match(res.headers.get("retry-after") ?? "", /^\d+$/);
    assert.equal(
      (await fetch(`${server.url}/enroll?token=${TOKEN}`)).status,
      409,
      "the right token passes the guard (409: no push certificate yet)",
    );
  });

  test("the API key in ?token= passes, with a warning that says where URLs are kept; the enrollment token gets none", async () => {
    const warning = "the API key was given in ?token=";
    assert.equal((await fetch(`${server.url}/enroll?token=${TOKEN}`)).status, 409);
    assert.ok(!server.logs.some((l) => l.includes(warning)));
    assert.equal((await fetch(`${server.url}/enroll?token=test-api-key-0123456789abcdef`)).status, 409);
    const line = server.logs.find((l) => l.includes(warning));
    assert.ok(line && !line.includes("test-api-key-0123456789abcdef"), line);
  });
});

describe("behind a trusted proxy (--trust-proxy)", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(["--enrollment-token", TOKEN, "--trust-proxy", "127.0.0.1", "--api-max-failures", "2"]);
    assert.equal((await server.api("PUT", "/v1/pushcert", pushCert.certPem + pushCert.keyPem)).status, 200);
  });
  after(async () => {
    await server.stop();
  });
  const get = (query: string, client: string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/enroll${query}`, { headers: { "x-forwarded-for": client, ...headers } });

  test("the profile's URLs come from X-Forwarded-Proto and -Host", async () => {
    const res = await get(`?token=${TOKEN}`, "198.51.100.7", { "x-forwarded-proto": "https", "x-forwarded-host": "mdm.example.com" });
    assert.equal(res.status, 200);
    const mdm = payload(parsePlistDict(Buffer.from(await res.arrayBuffer())), "com.apple.mdm")!;
    assert.equal(mdm.ServerURL, "https://mdm.example.com/mdm");
  });

  test("failures count per forwarded client address, not per proxy", async () => {
    for (let i = 0; i < 2; i++) assert.equal((await get("?token=wrong-token-0123456789", "203.0.113.1")).status, 401);
    assert.equal((await get("?token=wrong-token-0123456789", "203.0.113.1")).status, 429);
    assert.equal((await get("?token=wrong-token-0123456789", "203.0.113.2")).status, 401);
    assert.equal((await get(`?token=${TOKEN}`, "203.0.113.1")).status, 200, "the right token passes from the throttled address");
  });

  test("a client's own X-Forwarded-For entries cannot choose whom is counted: the right-most untrusted hop is", async () => {
    // What nginx's $proxy_add_x_forwarded_for sends: the client's header, then the address the proxy saw.
    for (let i = 0; i < 2; i++) assert.equal((await get("?token=wrong-token-0123456789", "203.0.113.50, 198.51.100.66")).status, 401);
    assert.equal((await get("?token=wrong-token-0123456789", "203.0.113.50, 198.51.100.66")).status, 429);
    assert.equal(
      (await get("?token=wrong-token-0123456789", "203.0.113.50")).status,
      401,
      "the address the attacker wrote is not throttled",
    );
  });
});

describe("X-Forwarded-* from a peer that is not a listed proxy", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(["--enrollment-token", TOKEN, "--trust-proxy", "192.0.2.1"]);
    assert.equal((await server.api("PUT", "/v1/pushcert", pushCert.certPem + pushCert.keyPem)).status, 200);
  });
  after(async () => {
    await server.stop();
  });

  test("are ignored for the profile's URLs, like X-Forwarded-For for the client address", async () => {
    const res = await fetch(`${server.url}/enroll?token=${TOKEN}`, {
      headers: { "x-forwarded-proto": "https", "x-forwarded-host": "evil.example", "x-forwarded-for": "203.0.113.1" },
    });
    assert.equal(res.status, 200);
    const mdm = payload(parsePlistDict(Buffer.from(await res.arrayBuffer())), "com.apple.mdm")!;
    assert.equal(mdm.ServerURL, `${server.url}/mdm`);
    assert.ok(server.logs.some((l) => l.includes("issued an enrollment profile") && l.includes('"remote":"127.0.0.1"')));
  });
});

describe("signed enrollment profiles (--profile-signer)", () => {
  let server: TestServer;
  let signerCa: PkiIdentity;

  before(async () => {
    signerCa = await createCa({ commonName: "Profile Signing Root" });
    const signer = await issueServerCertificate(signerCa, { hosts: ["mdm.example.com"] });
    const signerFile = path.join(tmp, "signer.pem");
    fs.writeFileSync(signerFile, signer.certPem + signer.keyPem);
    server = await startTestServer(["--profile-signer", signerFile, "--public-url", "https://mdm.example.com/orchard"]);
    assert.equal((await server.api("PUT", "/v1/pushcert", pushCert.certPem + pushCert.keyPem)).status, 200);
  });
  after(async () => {
    await server.stop();
  });

  test("openssl cms -verify accepts the profile and returns the plist; --public-url sets every URL", async () => {
    const res = await server.api("GET", "/enroll");
    assert.equal(res.status, 200);
    const signed = Buffer.from(
      await (
        await fetch(`${server.url}/enroll`, {
          headers: { authorization: "Basic " + Buffer.from("x:test-api-key-0123456789abcdef").toString("base64") },
        })
      ).arrayBuffer(),
    );
    const signedFile = path.join(tmp, "signed.mobileconfig");
    const caFile = path.join(tmp, "signer-ca.pem");
    fs.writeFileSync(signedFile, signed);
    fs.writeFileSync(caFile, signerCa.certPem);
    const content = execFileSync("openssl", ["cms", "-verify", "-inform", "DER", "-in", signedFile, "-CAfile", caFile, "-purpose", "any"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const profile = parsePlistDict(content);
    const mdm = payload(profile, "com.apple.mdm")!;
    assert.equal(mdm.ServerURL, "https://mdm.example.com/orchard/mdm");
    assert.equal(mdm.CheckInURL, "https://mdm.example.com/orchard/checkin");
    assert.equal((payload(profile, "com.apple.security.scep")!.PayloadContent as PlistDict).URL, "https://mdm.example.com/orchard/scep");
  });

  test("a signing certificate that has expired: 503 with the reason, not a 500", async () => {
    const day = 86_400_000;
    const expired = await issueDeviceIdentity(signerCa, {
      commonName: "expired signer",
      notBefore: new Date(Date.now() - 30 * day),
      notAfter: new Date(Date.now() - day),
    });
    const file = path.join(tmp, "expired-signer.pem");
    fs.writeFileSync(file, expired.certPem + expired.keyPem);
    const stale = await startTestServer(["--profile-signer", file]);
    try {
      assert.equal((await stale.api("PUT", "/v1/pushcert", pushCert.certPem + pushCert.keyPem)).status, 200);
      const res = await stale.api("GET", "/enroll");
      assert.equal(res.status, 503);
      assert.match(res.text, /cannot be signed now: the profile signing certificate expired/);
    } finally {
      await stale.stop();
    }
  });
});
