// Every flow that handles a secret, run with the log captured (at debug
// level), and then: no AuthToken, DigestResponse, password, HA1, bootstrap
// token, unlock token, API key, Mdm-Signature value, push key, device CA key,
// enrollment token, SCEP challenge or PKCS#12 passphrase (in any of the forms
// it travels in) appears in any log line, in any error body, or in any answer
// of the operator API.
import assert from "node:assert/strict";
import { createHash, randomBytes, randomUUID, type KeyObject } from "node:crypto";
import { after, before, test } from "node:test";
import { createCa, escapedPemHeader, signMdmBody } from "../src/identity/testing/pki.ts";
import { issuePushCertificate } from "../src/identity/testing/push-cert.ts";
import { ScepRefused, ScepTestClient } from "../src/scep/testing/client.ts";
import { parsePlistDict, serializePlist, type PlistDict } from "../src/plist/index.ts";
import { challengeParams, digestResponse } from "./support/digest-client.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { CHECKIN_TYPE, COMMAND_TYPE, commandPlist, identity, sleep } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { fetchBody, startTestServer, type TestServer } from "./support/server.ts";

const REALM = "secrets.test";
const ENROLLMENT_TOKEN = "enrollment-token-secret-value";

/** A private key as it could leak: slices of its PKCS#8 DER in base64 and hex. */
function keyForms(key: KeyObject): string[] {
  const der = key.export({ type: "pkcs8", format: "der" });
  return [der.subarray(40, 88).toString("base64"), der.subarray(200, 232).toString("hex")];
}
const md5 = (s: string) => createHash("md5").update(s).digest("hex");
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

await forEachBackend("secrets never reach a log line or an error body", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  /** name -> the forms a secret travels in. */
  const secrets = new Map<string, Set<string>>();
  /** Bodies of every 4xx/5xx answer, device and API, with where they came from. */
  const errorBodies: Array<{ where: string; body: string }> = [];
  /** Bodies of every API answer (none should carry a secret either). */
  const apiBodies: Array<{ where: string; body: string }> = [];

  const secret = (name: string, ...forms: Array<string | string[]>) => {
    const set = secrets.get(name) ?? new Set<string>();
    for (const f of forms.flat()) if (f.length >= 8) set.add(f);
    secrets.set(name, set);
  };
  const bytesSecret = (name: string, b: Buffer) =>
    secret(name, b.toString("base64"), b.toString("hex"), b.toString("hex").toUpperCase(), b.toString("base64url"));

  before(async () => {
    server = await startTestServer(
      ["--digest-realm", REALM, "--userauth-max-failures", "100", "--enrollment-token", ENROLLMENT_TOKEN],
      backend,
    );
    fleet = await testFleet(server.url);
    secret("API key", "test-api-key-0123456789abcdef", Buffer.from("orchard:test-api-key-0123456789abcdef").toString("base64"));
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  async function device(body: PlistDict, o: { path?: string; headers: Record<string, string>; type?: string }) {
    const raw = Buffer.from(serializePlist(body));
    const res = await fleet.transport.send({
      method: "PUT",
      path: o.path ?? "/checkin",
      headers: { "content-type": o.type ?? CHECKIN_TYPE, ...o.headers },
      body: raw,
    });
    const text = res.body.toString("utf8");
    if (res.status >= 400) errorBodies.push({ where: `${body.MessageType ?? body.Status} ${res.status}`, body: text });
    return { status: res.status, text, plist: res.status === 200 && res.body.length > 0 ? parsePlistDict(res.body) : undefined };
  }

  async function api(method: string, urlPath: string, body?: string | Buffer | object, key = "test-api-key-0123456789abcdef") {
    const res = await fetch(server.url + urlPath, {
      method,
      headers: { authorization: "Basic " + Buffer.from(`op:${key}`).toString("base64") },
      body: fetchBody(body),
    });
    const text = await res.text();
    apiBodies.push({ where: `${method} ${urlPath} ${res.status}`, body: text });
    if (res.status >= 400) errorBodies.push({ where: `${method} ${urlPath} ${res.status}`, body: text });
    return { status: res.status, text, json: text ? JSON.parse(text) : undefined };
  }

  test("every flow that carries a secret, the failures included", async () => {
    const id = await identity(fleet, "secrets-mac");
    const udid = randomUUID().toUpperCase();
    const headers = { "x-client-cert": escapedPemHeader(id.certPem) };
    const ok = async (body: PlistDict, o: { path?: string; type?: string } = {}) => {
      const r = await device({ UDID: udid, ...body }, { headers, ...o });
      assert.equal(r.status, 200, `${body.MessageType ?? body.Status}: ${r.text}`);
      return r;
    };

    // Enrollment with an UnlockToken; bootstrap token escrow and retrieval.
    const unlockToken = randomBytes(96);
    const bootstrapToken = randomBytes(64);
    bytesSecret("UnlockToken", unlockToken);
    bytesSecret("BootstrapToken", bootstrapToken);
    await ok({ MessageType: "Authenticate", Topic: "com.apple.mgmt.External.secrets", SerialNumber: "SECRETS1" });
    await ok({
      MessageType: "TokenUpdate",
      Topic: "com.apple.mgmt.External.secrets",
      Token: randomBytes(32),
      PushMagic: "MAGIC",
      UnlockToken: unlockToken,
    });
    await ok({ MessageType: "SetBootstrapToken", BootstrapToken: bootstrapToken });
    const got = await ok({ MessageType: "GetBootstrapToken" });
    assert.ok(Buffer.isBuffer(got.plist!.BootstrapToken) && bootstrapToken.equals(got.plist!.BootstrapToken as Buffer));
    // Refused messages that carry them: wrong types, a binding mismatch.
    await device(
      {
        UDID: udid,
        MessageType: "TokenUpdate",
        Topic: "t",
        Token: randomBytes(32),
        PushMagic: "M",
        UnlockToken: unlockToken.toString("base64"),
      },
      { headers },
    );
    await device({ UDID: udid, MessageType: "SetBootstrapToken", BootstrapToken: bootstrapToken.toString("hex") }, { headers });
    const other = await identity(fleet, "secrets-intruder");
    await device(
      { UDID: udid, MessageType: "SetBootstrapToken", BootstrapToken: bootstrapToken },
      { headers: { "x-client-cert": escapedPemHeader(other.certPem) } },
    );

    // The directory: a user with a password, and an htdigest import.
    const password = `pw-${randomBytes(9).toString("base64url")}`;
    secret("password", password);
    secret("HA1", md5(`net1:${REALM}:${password}`), sha256(`net1:${REALM}:${password}`));
    const guid = randomUUID().toUpperCase();
    assert.equal((await api("PUT", "/v1/users/net1", { password, guid, full_name: "Net One" })).status, 201);
    assert.equal((await api("PUT", "/v1/users/net1", { password: 12345678 })).status, 400);
    assert.equal((await api("PUT", "/v1/users/net1", { password, unknownField: password })).status, 400);
    const importedPassword = `imp-${randomBytes(9).toString("base64url")}`;
    secret("password", importedPassword);
    const importedHa1 = md5(`imp1:${REALM}:${importedPassword}`);
    const otherRealmHa1 = md5(`imp2:elsewhere:${importedPassword}`);
    secret("HA1", importedHa1, otherRealmHa1);
    const file = `imp1:${REALM}:${importedHa1}\nimp2:elsewhere:${otherRealmHa1}\nbroken:${REALM}:${importedHa1}x\nbad line ${importedHa1}\n`;
    assert.equal((await api("POST", "/v1/users/import", file)).status, 200);

    // UserAuthenticate: a failed login (wrong password, malformed), then a good one.
    const user = { UserID: guid, UserShortName: "net1", UserLongName: "Net One" };
    const step1 = async () =>
      challengeParams((await ok({ MessageType: "UserAuthenticate", ...user })).plist!.DigestChallenge as string).nonce!;
    const wrong = digestResponse({ username: "net1", password: "not-the-password", realm: REALM, nonce: await step1() });
    secret("DigestResponse", wrong, /response="([0-9a-f]+)"/.exec(wrong)![1]!);
    assert.equal((await ok({ MessageType: "UserAuthenticate", ...user, DigestResponse: wrong })).plist!.AuthToken, "");
    const malformed = `Digest username="net1",realm="${REALM}",nonce="${await step1()}",response="${md5(password)}"`;
    secret("DigestResponse", malformed, md5(password));
    assert.equal((await ok({ MessageType: "UserAuthenticate", ...user, DigestResponse: malformed })).plist!.AuthToken, "");
    const good = digestResponse({ username: "net1", password, realm: REALM, nonce: await step1() });
    secret("DigestResponse", good, /response="([0-9a-f]+)"/.exec(good)![1]!);
    const token = (await ok({ MessageType: "UserAuthenticate", ...user, DigestResponse: good })).plist!.AuthToken as string;
    assert.ok(token.length > 20);
    secret("AuthToken", token, sha256(token), Buffer.from(token, "base64").toString("hex"));
    // A replay of the good response, the user's channel with and without the token.
    assert.equal((await ok({ MessageType: "UserAuthenticate", ...user, DigestResponse: good })).plist!.AuthToken, "");
    await ok({
      MessageType: "TokenUpdate",
      Topic: "com.apple.mgmt.External.secrets",
      Token: randomBytes(32),
      PushMagic: "UM",
      ...user,
      AuthToken: token,
    });
    await ok({ Status: "Idle", ...user, AuthToken: token }, { path: "/mdm", type: COMMAND_TYPE });
    assert.equal(
      (
        await device(
          { UDID: udid, Status: "Idle", ...user, AuthToken: token.slice(0, -4) + "AAA=" },
          { path: "/mdm", type: COMMAND_TYPE, headers },
        )
      ).status,
      403,
    );
    assert.equal(
      (await device({ UDID: udid, Status: "Idle", ...user, AuthToken: 42 }, { path: "/mdm", type: COMMAND_TYPE, headers })).status,
      403,
    );
    assert.equal((await device({ UDID: udid, Status: "Idle", ...user }, { path: "/mdm", type: COMMAND_TYPE, headers })).status, 403);
    // A new login rotates the token; the old one is refused.
    const again = digestResponse({ username: "net1", password, realm: REALM, nonce: await step1() });
    secret("DigestResponse", again);
    const token2 = (await ok({ MessageType: "UserAuthenticate", ...user, DigestResponse: again })).plist!.AuthToken as string;
    secret("AuthToken", token2, sha256(token2));
    assert.equal(
      (await device({ UDID: udid, Status: "Idle", ...user, AuthToken: token }, { path: "/mdm", type: COMMAND_TYPE, headers })).status,
      403,
    );
    await ok({ Status: "Idle", ...user, AuthToken: token2 }, { path: "/mdm", type: COMMAND_TYPE });
    // A step 1 that carries the valid token keeps it.
    await ok({ MessageType: "UserAuthenticate", ...user, AuthToken: token2 });

    // Mdm-Signature: a signed device, and signatures that fail.
    const sigUdid = randomUUID().toUpperCase();
    const sigId = await identity(fleet, "secrets-signer");
    const signed = async (body: PlistDict, signOver?: Buffer, type = CHECKIN_TYPE, p = "/checkin") => {
      const raw = Buffer.from(serializePlist({ UDID: sigUdid, ...body }));
      const sig = await signMdmBody(sigId, signOver ?? raw);
      secret("Mdm-Signature", sig, sig.slice(sig.length / 2, sig.length / 2 + 48));
      const res = await fleet.transport.send({
        method: "PUT",
        path: p,
        headers: { "content-type": type, "mdm-signature": sig },
        body: raw,
      });
      if (res.status >= 400) errorBodies.push({ where: `signed ${res.status}`, body: res.body.toString() });
      return res.status;
    };
    assert.equal(await signed({ MessageType: "Authenticate", Topic: "com.apple.mgmt.External.secrets" }), 200);
    assert.equal(
      await signed({
        MessageType: "TokenUpdate",
        Topic: "com.apple.mgmt.External.secrets",
        Token: randomBytes(32),
        PushMagic: "S",
        UnlockToken: unlockToken,
      }),
      200,
    );
    assert.equal(await signed({ Status: "Idle" }, undefined, COMMAND_TYPE, "/mdm"), 200);
    assert.equal(await signed({ Status: "Idle" }, Buffer.from("another body"), COMMAND_TYPE, "/mdm"), 400);
    const badSig = (await signMdmBody(sigId, Buffer.from("x"))).slice(0, 200);
    secret("Mdm-Signature", badSig.slice(100, 160));
    const res = await fleet.transport.send({
      method: "PUT",
      path: "/checkin",
      headers: { "content-type": CHECKIN_TYPE, "mdm-signature": badSig },
      body: Buffer.from(serializePlist({ UDID: sigUdid, MessageType: "CheckOut" })),
    });
    assert.equal(res.status, 400);
    errorBodies.push({ where: "truncated signature", body: res.body.toString() });

    // The API: a wrong key (itself a secret: a mistyped key is close to the real one), a queued command, reads.
    secret("API key", "test-api-kez", Buffer.from("op:test-api-kez").toString("base64"));
    assert.equal((await api("GET", "/v1/enrollments", undefined, "test-api-kez")).status, 401);
    assert.equal((await api("PUT", `/v1/enqueue/${udid}?nopush=1`, commandPlist("DeviceInformation"))).status, 200);
    for (const p of [
      `/v1/enrollments/${udid}`,
      `/v1/enrollments/${encodeURIComponent(`${udid}:${guid}`)}`,
      "/v1/enrollments",
      "/v1/users/net1",
      "/v1/users/imp1",
      "/v1/users",
      `/v1/user-sessions?device=${udid}`,
      "/v1/events?limit=1000",
      `/v1/queue/${udid}`,
    ]) {
      assert.equal((await api("GET", p)).status, 200, p);
    }
    // Enrollment: the push key, the enrollment token, SCEP challenges (the API
    // hands a challenge out by design: that one answer is not checked), a
    // profile's PKCS#12 passphrase, and the device CA's key.
    const pushCert = await issuePushCertificate(await createCa({ commonName: "Secrets Push CA" }), {
      topic: "com.apple.mgmt.External.secrets",
    });
    secret("push key", keyForms(pushCert.key));
    secret("device CA key", keyForms(server.deviceCa.key));
    assert.equal((await api("PUT", "/v1/pushcert", pushCert.certPem + pushCert.keyPem)).status, 200);
    secret("enrollment token", ENROLLMENT_TOKEN, "enrollment-token-secretz");
    assert.equal((await enroll("?token=enrollment-token-secretz")).status, 401);
    // Refusals after the token was accepted, and a route that does not exist: the URL is logged, the token is not.
    assert.equal((await enroll(`?token=${ENROLLMENT_TOKEN}&identity=jks`)).status, 400);
    assert.equal((await enroll(`?token=${ENROLLMENT_TOKEN}&topic=com.apple.mgmt.none`)).status, 404);
    assert.equal((await enroll(`?token=${ENROLLMENT_TOKEN}&token=${ENROLLMENT_TOKEN}`)).status, 400);
    assert.equal((await enroll(`/?token=${ENROLLMENT_TOKEN}`)).status, 404);
    const p12Profile = await enroll(`?token=${ENROLLMENT_TOKEN}&identity=pkcs12`);
    assert.equal(p12Profile.status, 200);
    secret("PKCS#12 passphrase", /<key>Password<\/key>\s*<string>([^<]+)<\/string>/.exec(p12Profile.text)![1]!);
    const scepProfile = await enroll(`?token=${ENROLLMENT_TOKEN}`);
    const profileChallenge = /<key>Challenge<\/key>\s*<string>([^<]+)<\/string>/.exec(scepProfile.text)![1]!;
    secret("SCEP challenge", profileChallenge, "wrong-challenge-0123456789");
    const minted = await fetch(`${server.url}/v1/scep/challenges`, {
      method: "POST",
      headers: { authorization: "Basic " + Buffer.from("op:test-api-key-0123456789abcdef").toString("base64") },
    });
    const challenge = ((await minted.json()) as { challenge: string }).challenge;
    secret("SCEP challenge", challenge);
    const scep = new ScepTestClient(`${server.url}/scep`);
    await assert.rejects(scep.enroll({ challenge: "wrong-challenge-0123456789" }), ScepRefused);
    await scep.enroll({ challenge: profileChallenge });
    await scep.enroll({ challenge });
    await assert.rejects(scep.enroll({ challenge }), ScepRefused);
    assert.equal((await api("GET", "/v1/events?type=scep.refused")).json.events.length, 2);

    await sleep(1200); // the coalesced writes and anything logged late
  });

  async function enroll(query: string) {
    const res = await fetch(`${server.url}/enroll${query}`);
    const text = await res.text();
    if (res.status >= 400) errorBodies.push({ where: `GET /enroll ${res.status}`, body: text });
    return { status: res.status, text };
  }

  test("no secret in any log line, error body or API answer", () => {
    assert.ok(server.logs.length > 20, `the log was captured (${server.logs.length} lines)`);
    assert.ok(errorBodies.length > 10, "error bodies were collected");
    assert.ok(secrets.size >= 8);
    const leaks: string[] = [];
    for (const [name, forms] of secrets) {
      for (const form of forms) {
        for (const line of server.logs) if (line.includes(form)) leaks.push(`${name} in a log line: ${line.slice(0, 300)}`);
        for (const e of errorBodies)
          if (e.body.includes(form)) leaks.push(`${name} in the error body of ${e.where}: ${e.body.slice(0, 300)}`);
        for (const a of apiBodies)
          if (a.body.includes(form)) leaks.push(`${name} in the API answer to ${a.where}: ${a.body.slice(0, 300)}`);
      }
    }
    const forms = [...secrets.values()].reduce((n, f) => n + f.size, 0);
    process.stdout.write(
      `# secrets [${backend}]: ${secrets.size} kinds (${forms} forms) checked against ${server.logs.length} log lines, ${errorBodies.length} error bodies, ${apiBodies.length} API answers\n`,
    );
    assert.deepEqual(leaks.slice(0, 10), []);
  });
});
