// DDM assets and stored profiles end to end (docs/declarative-management.md): the
// operator's API on both stores, the download route devices reach with their
// MDM identity, and declarations resolved to that route.
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import http from "node:http";
import { after, before, test } from "node:test";
import { buildEnrollmentProfile } from "../src/enroll/profile.ts";
import { createCa, escapedPemHeader, issueDeviceIdentity, signMdmBody } from "../src/identity/testing/pki.ts";
import type { DeviceIdentity } from "../src/identity/testing/pki.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { identity, RawDevice } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const PUBLIC_URL = "https://mdm.example.test/orchard";
const LIMIT = 64 * 1024;
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

type Auth = { kind: "header" | "signature"; identity: DeviceIdentity } | { kind: "none" };

await forEachBackend("DDM assets and stored profiles", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  let dev: RawDevice;
  let other: RawDevice;
  let profile: Buffer;

  before(async () => {
    server = await startTestServer(["--public-url", PUBLIC_URL, "--asset-body-limit", "64kb"], backend);
    fleet = await testFleet(server.url);
    dev = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    other = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await dev.enroll();
    await other.enroll();
    profile = buildEnrollmentProfile({
      serverUrl: "https://mdm.example.com/mdm",
      topic: "com.apple.mgmt.External.test",
      identity: { kind: "scep", url: "https://mdm.example.com/scep", challenge: "c" },
    });
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  const put = (path: string, body: Buffer, contentType?: string) =>
    fetch(server.url + path, {
      method: "PUT",
      headers: { authorization: auth(), ...(contentType ? { "content-type": contentType } : {}) },
      body: new Uint8Array(body),
    }).then(async (r) => ({ status: r.status, json: JSON.parse(await r.text()) }));
  const auth = () => "Basic " + Buffer.from("orchard:test-api-key-0123456789abcdef").toString("base64");

  /**
   * A declaration naming this file, in a set of its own assigned to this
   * channel: what lets the channel's device download the file. remove() undoes it all.
   */
  let named = 0;
  async function give(kind: "asset" | "profile", id: string, channel: string) {
    const identifier = `com.example.${kind}.${id}.${++named}`;
    const declaration =
      kind === "asset"
        ? { Type: "com.apple.asset.data", Identifier: identifier, Payload: { Reference: { DataURL: `orchard:asset/${id}` } } }
        : { Type: "com.apple.configuration.legacy", Identifier: identifier, Payload: { ProfileURL: `orchard:profile/${id}` } };
    const r = await server.api("PUT", "/v1/declarations?nonotify=1", declaration);
    assert.equal(r.status, 204, r.text);
    const set = `files-${named}`;
    assert.equal((await server.api("PUT", `/v1/set-declarations/${set}?declaration=${identifier}&nonotify=1`)).status, 204);
    assert.equal((await server.api("PUT", `/v1/enrollment-sets/${encodeURIComponent(channel)}?set=${set}&nonotify=1`)).status, 204);
    return {
      identifier,
      async remove() {
        assert.equal((await server.api("DELETE", `/v1/enrollment-sets/${encodeURIComponent(channel)}?set=${set}&nonotify=1`)).status, 204);
        assert.equal((await server.api("DELETE", `/v1/set-declarations/${set}?declaration=${identifier}&nonotify=1`)).status, 204);
        assert.equal((await server.api("DELETE", `/v1/declarations/${identifier}`)).status, 204);
      },
    };
  }

  /** A device's GET of a download path, with this identity. */
  async function deviceGet(path: string, a: Auth) {
    const headers: Record<string, string> = {};
    if (a.kind === "header") headers["x-client-cert"] = escapedPemHeader(a.identity.certPem);
    // Over the empty body; with signed attributes (pkijs signs no empty detached content without them).
    if (a.kind === "signature") headers["mdm-signature"] = await signMdmBody(a.identity, Buffer.alloc(0), { signedAttributes: true });
    const res = await fleet.transport.send({ method: "GET", path, headers });
    return { ...res, text: res.body.toString("utf8") };
  }

  test("assets: PUT creates (201) and replaces (200), GET lists, shows and downloads, DELETE removes", async () => {
    const bytes = Buffer.from("PNG-bytes-of-a-wallpaper");
    const created = await put("/v1/ddm/assets/wallpaper.png", bytes, "image/png");
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.deepEqual(
      { ...created.json, created_at: undefined, updated_at: undefined },
      {
        id: "wallpaper.png",
        content_type: "image/png",
        size: bytes.length,
        sha256: sha256(bytes),
        reference: "orchard:asset/wallpaper.png",
        url: `${PUBLIC_URL}/mdm/assets/wallpaper.png`,
        created_at: undefined,
        updated_at: undefined,
      },
    );
    assert.match(created.json.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const again = await put("/v1/ddm/assets/wallpaper.png", Buffer.from("other bytes"));
    assert.equal(again.status, 200);
    assert.equal(again.json.content_type, "application/octet-stream", "no Content-Type: octet-stream");
    assert.equal(again.json.sha256, sha256(Buffer.from("other bytes")));
    assert.equal(again.json.created_at, created.json.created_at);

    const one = await server.api("GET", "/v1/ddm/assets/wallpaper.png");
    assert.deepEqual(one.json, again.json);
    const data = await fetch(server.url + "/v1/ddm/assets/wallpaper.png/data", { headers: { authorization: auth() } });
    assert.equal(data.status, 200);
    assert.equal(Buffer.from(await data.arrayBuffer()).toString(), "other bytes");

    await put("/v1/ddm/assets/a-first", Buffer.from("1"), "text/plain");
    const page1 = await server.api("GET", "/v1/ddm/assets?limit=1");
    assert.deepEqual(
      page1.json.assets.map((a: { id: string }) => a.id),
      ["a-first"],
    );
    assert.equal(page1.json.next_cursor, "a-first");
    const page2 = await server.api("GET", `/v1/ddm/assets?limit=1&cursor=${page1.json.next_cursor}`);
    assert.deepEqual(
      page2.json.assets.map((a: { id: string }) => a.id),
      ["wallpaper.png"],
    );

    const removed = await server.api("DELETE", "/v1/ddm/assets/a-first");
    assert.deepEqual(removed.json, { removed: "a-first" });
    assert.equal((await server.api("DELETE", "/v1/ddm/assets/a-first")).status, 404);
    assert.equal((await server.api("GET", "/v1/ddm/assets/a-first")).json.code, "not_found");
    assert.equal((await server.api("GET", "/v1/ddm/assets/a-first/data")).status, 404);

    const events = await server.api("GET", "/v1/events?type=ddm.asset.stored");
    assert.ok(events.json.events.some((e: { detail: { id: string; sha256: string } }) => e.detail.sha256 === sha256(bytes)));
    assert.equal((await server.api("GET", "/v1/events?type=ddm.asset.removed")).json.events.length, 1);
  });

  test("profiles: a plain and a signed .mobileconfig round trip; what is not a profile is a 400", async () => {
    const created = await put("/v1/ddm/profiles/enroll-copy", profile, "application/x-apple-aspen-config");
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.equal(created.json.signed, false);
    assert.equal(created.json.sha256, sha256(profile));
    assert.equal(created.json.reference, "orchard:profile/enroll-copy");
    assert.equal(created.json.url, `${PUBLIC_URL}/mdm/profiles/enroll-copy`);
    assert.match(created.json.payload_identifier, /\S/);

    const list = await server.api("GET", "/v1/ddm/profiles");
    assert.deepEqual(
      list.json.profiles.map((p: { id: string }) => p.id),
      ["enroll-copy"],
    );
    const data = await fetch(server.url + "/v1/ddm/profiles/enroll-copy/data", { headers: { authorization: auth() } });
    assert.equal(data.headers.get("content-type"), "application/x-apple-aspen-config");
    assert.deepEqual(Buffer.from(await data.arrayBuffer()), profile);

    for (const [body, reason] of [
      [Buffer.from("not a plist"), /not an XML plist/],
      [Buffer.from("bplist00xyz"), /binary plist/],
      [Buffer.alloc(0), /empty/],
    ] as const) {
      const r = await put("/v1/ddm/profiles/bad", body);
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.match(r.json.error, reason);
    }
    assert.equal((await server.api("GET", "/v1/ddm/profiles/bad")).status, 404, "nothing half-written");
    assert.deepEqual((await server.api("DELETE", "/v1/ddm/profiles/enroll-copy")).json, { removed: "enroll-copy" });
  });

  test("bad ids are a 400 (never a 500): a dot first, a slash, too long, NUL, and an empty one finds no route", async () => {
    for (const id of ["..%2Fetc", ".hidden", "a%2Fb", "x".repeat(129), "a%00b", "sp%20ace", "%C3%A9"]) {
      for (const kind of ["assets", "profiles"]) {
        const r = await put(`/v1/ddm/${kind}/${id}`, Buffer.from("x"));
        assert.equal(r.status, 400, `${kind}/${id}: ${JSON.stringify(r.json)}`);
        const g = await server.api("GET", `/v1/ddm/${kind}/${id}`);
        assert.equal(g.status, 400, `${kind}/${id}`);
        const d = await deviceGet(`/mdm/${kind}/${id}`, { kind: "header", identity: dev.identity });
        assert.equal(d.status, 400, `${kind}/${id}: ${d.text}`);
      }
    }
    const badId = await put("/v1/ddm/assets/.x", Buffer.from("x"));
    assert.equal(badId.json.code, "invalid_asset_id");
    const empty = await put("/v1/ddm/assets/", Buffer.from("x"));
    assert.ok(empty.status === 400 || empty.status === 404, String(empty.status));
  });

  test("too big is a 413 with the limit, by Content-Length or by the bytes sent (chunked); nothing stored", async () => {
    const big = Buffer.alloc(LIMIT + 1, 1);
    const r = await put("/v1/ddm/assets/big", big, "application/zip");
    assert.equal(r.status, 413);
    assert.equal(r.json.code, "payload_too_large");
    assert.match(r.json.error, /--asset-body-limit \(65536 bytes\)/);
    const chunked = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(server.url + "/v1/ddm/profiles/big", {
        method: "PUT",
        headers: { authorization: auth(), "content-type": "application/x-apple-aspen-config" },
      });
      req.on("response", (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode!, text }));
      });
      req.on("error", reject);
      req.write(big.subarray(0, LIMIT / 2));
      req.end(big.subarray(LIMIT / 2));
    });
    assert.equal(chunked.status, 413, chunked.text);
    assert.equal(JSON.parse(chunked.text).code, "payload_too_large");
    assert.equal((await put("/v1/ddm/assets/fits", Buffer.alloc(LIMIT, 1))).status, 201, "exactly the limit fits");
    assert.equal((await server.api("GET", "/v1/ddm/assets/big")).status, 404);
    assert.equal((await server.api("GET", "/v1/ddm/profiles/big")).status, 404);
  });

  test("a form Content-Type (curl's default) or a malformed one is refused", async () => {
    for (const type of ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const r = await put("/v1/ddm/assets/typed", Buffer.from("x"), type);
      assert.equal(r.status, 400, type);
      assert.match(r.json.error, /is a form, not an asset's type/);
    }
    // Fastify refuses what is no media type at all (415) before the route does (400).
    for (const type of ["not a type", "a/b; c", `text/${"x".repeat(300)}`]) {
      const r = await put("/v1/ddm/assets/typed", Buffer.from("x"), type);
      assert.ok(r.status === 400 || r.status === 415, `${type}: ${r.status}`);
    }
    assert.equal((await server.api("GET", "/v1/ddm/assets/typed")).status, 404);
    assert.equal((await put("/v1/ddm/assets/typed", Buffer.from("x"), 'text/plain; charset="utf-8"')).status, 201);
  });

  test("devices: a device gets a file a declaration of one of its channels names; any other file is a 404, as an unknown one", async () => {
    const bytes = Buffer.from(`asset for devices ${randomUUID()}`);
    await put("/v1/ddm/assets/for-devices", bytes, "application/json");
    const asDev = { kind: "header", identity: dev.identity } as const;
    const asOther = { kind: "header", identity: other.identity } as const;
    const unknown = await deviceGet("/mdm/assets/no-such", asDev);
    assert.equal(unknown.status, 404);
    // Stored, but no declaration of either device names it: the same answer as an id that is not stored.
    for (const a of [asDev, asOther]) {
      const r = await deviceGet("/mdm/assets/for-devices", a);
      assert.equal(r.status, 404, r.text);
      assert.equal(r.text, unknown.text);
    }
    assert.ok(server.logs.some((l) => l.includes("DDM file refused: no declaration of this device names it") && l.includes(dev.udid)));
    const given = await give("asset", "for-devices", dev.udid);
    const r = await deviceGet("/mdm/assets/for-devices", asDev);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers["content-type"], "application/json");
    assert.equal(Number(r.headers["content-length"]), bytes.length);
    assert.equal(sha256(r.body), sha256(bytes));
    assert.equal((await deviceGet("/mdm/assets/for-devices", asOther)).status, 404, "the other device holds no declaration naming it");
    // Replaced: the next download is the new bytes (the kept copy is checked against the store).
    const replaced = Buffer.from("replaced bytes");
    await put("/v1/ddm/assets/for-devices", replaced, "application/json");
    assert.deepEqual((await deviceGet("/mdm/assets/for-devices", asDev)).body, replaced);

    // A user channel's declarations count for its device.
    await put("/v1/ddm/profiles/p1", profile);
    assert.equal((await deviceGet("/mdm/profiles/p1", asOther)).status, 404);
    assert.equal((await other.tokenUpdate({ UserID: "FILES-USER", UserShortName: "files" })).status, 200);
    const givenProfile = await give("profile", "p1", `${other.udid}:FILES-USER`);
    const p = await deviceGet("/mdm/profiles/p1", asOther);
    assert.equal(p.status, 200, p.text);
    assert.equal(p.headers["content-type"], "application/x-apple-aspen-config");
    assert.deepEqual(p.body, profile);
    assert.equal((await deviceGet("/mdm/profiles/p1", asDev)).status, 404);

    // The declaration taken away: the file with it. Removed: gone for devices too.
    await given.remove();
    assert.equal((await deviceGet("/mdm/assets/for-devices", asDev)).status, 404);
    await givenProfile.remove();
    await server.api("DELETE", "/v1/ddm/assets/for-devices");
    assert.equal((await deviceGet("/mdm/assets/for-devices", asDev)).status, 404);
  });

  test("strangers get 403 with a reason, the same whether the asset exists or not, and a log line", async () => {
    await put("/v1/ddm/assets/secret", Buffer.from("secret"), "text/plain");
    const notEnrolled = await identity(fleet);
    const otherCa = await createCa({ commonName: "Not Orchard's CA" });
    const untrusted = await issueDeviceIdentity(otherCa, { commonName: "untrusted" });
    const checkedOut = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await checkedOut.enroll();
    await give("asset", "secret", checkedOut.udid);
    assert.equal((await deviceGet("/mdm/assets/secret", { kind: "header", identity: checkedOut.identity })).status, 200);
    assert.equal((await checkedOut.checkin("CheckOut")).status, 200);
    const cases: Array<[string, Auth, RegExp]> = [
      ["no identity", { kind: "none" }, /device identity: no client certificate/],
      ["a trusted certificate of no device", { kind: "header", identity: notEnrolled }, /not bound to an enrolled device/],
      // A GET has no body: a signature over nothing is refused, even an enrolled device's.
      ["a signature of an enrolled device", { kind: "signature", identity: dev.identity }, /Mdm-Signature over an empty body/],
      ["a signature of no device", { kind: "signature", identity: notEnrolled }, /Mdm-Signature over an empty body/],
      ["an untrusted certificate", { kind: "header", identity: untrusted }, /device identity/],
      ["a checked-out device", { kind: "header", identity: checkedOut.identity }, /not bound to an enrolled device/],
    ];
    for (const [what, a, reason] of cases) {
      for (const path of ["/mdm/assets/secret", "/mdm/assets/no-such", "/mdm/profiles/no-such"]) {
        const r = await deviceGet(path, a);
        assert.equal(r.status, 403, `${what} ${path}: ${r.text}`);
        assert.match(r.text, reason, what);
        assert.doesNotMatch(r.text, /secret|no-such/);
      }
    }
    // A device that only authenticated (no TokenUpdate) is not enrolled yet.
    const half = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    assert.equal((await half.authenticate()).status, 200);
    assert.equal((await deviceGet("/mdm/assets/secret", { kind: "header", identity: half.identity })).status, 403);
    // A device's signature of another request's body.
    const copied = await signMdmBody(dev.identity, Buffer.from("a check-in body"));
    const r = await fleet.transport.send({ method: "GET", path: "/mdm/assets/secret", headers: { "mdm-signature": copied } });
    assert.equal(r.status, 403, r.body.toString());
    assert.ok(server.logs.some((l) => /"status":403/.test(l) && /not bound to an enrolled device/.test(l)));
  });

  test("a declaration naming Orchard's files resolves to the download route; its hash is the bytes' and changes with them", async () => {
    const bytes = Buffer.from(`zip ${randomUUID()}`);
    await put("/v1/ddm/assets/tasks.zip", bytes, "application/zip");
    await put("/v1/ddm/profiles/wifi", profile);
    const decl = {
      Type: "com.apple.asset.data",
      Identifier: "com.example.asset.tasks",
      Payload: { Reference: { DataURL: "orchard:asset/tasks.zip" } },
    };
    const resolved = await server.resolveDeclaration(decl);
    const reference = (resolved.Payload as { Reference: Record<string, unknown> }).Reference;
    assert.equal(reference.DataURL, `${PUBLIC_URL}/mdm/assets/tasks.zip`);
    assert.equal(reference.ContentType, "application/zip");
    assert.equal(reference.Size, bytes.length);
    assert.deepEqual((resolved.Payload as { Authentication: unknown }).Authentication, { Type: "MDM" });
    // What the device fetches at that URL (the proxy strips the prefix) hashes to what the declaration says.
    await give("asset", "tasks.zip", dev.udid);
    await give("profile", "wifi", dev.udid);
    const path = String(reference.DataURL).slice(PUBLIC_URL.length);
    const got = await deviceGet(path, { kind: "header", identity: dev.identity });
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), reference["Hash-SHA-256"]);
    assert.equal(got.body.length, reference.Size);

    await put("/v1/ddm/assets/tasks.zip", Buffer.from("new zip"), "application/zip");
    const again = await server.resolveDeclaration(decl);
    assert.notDeepEqual(again, resolved);
    assert.equal((again.Payload as { Reference: Record<string, unknown> }).Reference["Hash-SHA-256"], sha256(Buffer.from("new zip")));

    const legacy = await server.resolveDeclaration({
      Type: "com.apple.configuration.legacy",
      Identifier: "com.example.legacy.wifi",
      Payload: { ProfileURL: "orchard:profile/wifi" },
    });
    const profileUrl = String((legacy.Payload as { ProfileURL: string }).ProfileURL);
    assert.equal(profileUrl, `${PUBLIC_URL}/mdm/profiles/wifi`);
    assert.deepEqual((await deviceGet(profileUrl.slice(PUBLIC_URL.length), { kind: "header", identity: dev.identity })).body, profile);

    await assert.rejects(
      server.resolveDeclaration({ ...decl, Payload: { Reference: { DataURL: "orchard:asset/missing" } } }),
      /orchard:asset\/missing, which is not stored/,
    );
  });

  test("no answer was a 500", () => {
    assert.ok(!server.logs.some((l) => /"level":50/.test(l)), server.logs.filter((l) => /"level":50/.test(l)).join("\n"));
  });
});

test("devices: a certificate header is believed only from a trusted proxy (--trust-proxy)", async () => {
  const server = await startTestServer(["--trust-proxy", "10.9.9.9"]);
  const fleet = await testFleet(server.url);
  try {
    const headers = { "x-client-cert": escapedPemHeader((await identity(fleet)).certPem) };
    const r = await fleet.transport.send({ method: "GET", path: "/mdm/assets/anything", headers });
    assert.equal(r.status, 403);
    assert.match(r.body.toString(), /not a trusted proxy/);
  } finally {
    fleet.close();
    await server.stop();
  }
});
