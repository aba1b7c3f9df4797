// The device request path against hostile callers (issue #11 items 3-5):
// --cert-header believed only from trusted proxies, identity settled before a
// body is held, the unidentified body budget, and the connection cap.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { createCa, escapedPemHeader, issueDeviceIdentity, signMdmBody } from "../src/identity/testing/pki.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { CHECKIN_TYPE, COMMAND_TYPE, eventually, identity, plist, rawPut } from "./support/mdm.ts";
import { RawConnection } from "./support/raw-http.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const authenticate = (udid: string) => plist({ MessageType: "Authenticate", UDID: udid, Topic: "com.apple.mgmt.x", SerialNumber: "S" });
const udid = () => randomUUID().toUpperCase();
/** A non-loopback address of this machine, to be a peer that is not 127.0.0.1. */
const lanAddress = Object.values(os.networkInterfaces())
  .flat()
  .find((i) => i && i.family === "IPv4" && !i.internal)?.address;

async function withServer(args: string[], fn: (server: TestServer, fleet: TestFleet) => Promise<void>): Promise<void> {
  const server = await startTestServer(args);
  const fleet = await testFleet(server.url);
  try {
    await fn(server, fleet);
  } finally {
    fleet.close();
    await server.stop();
  }
}

describe("--cert-header is believed only from a trusted proxy", () => {
  test("a peer outside --trust-proxy presenting a device certificate is refused (400, logged); Mdm-Signature still works", async () => {
    await withServer(["--trust-proxy", "10.1.2.3,192.168.0.0/16"], async (server, fleet) => {
      const id = await identity(fleet);
      const r = await rawPut(fleet.transport, "/checkin", authenticate(udid()), { auth: { kind: "header", identity: id } });
      assert.equal(r.status, 400);
      assert.match(r.text, /certificate header from a peer that is not a trusted proxy/);
      // The line names the peer that bypassed the proxy.
      assert.ok(
        server.logs.some((l) => /device request refused/.test(l) && /not a trusted proxy/.test(l) && /"remote":"127\.0\.0\.1"/.test(l)),
      );
      // The same certificate, proving itself with a signature, is fine from anywhere.
      const s = await rawPut(fleet.transport, "/checkin", authenticate(udid()), { auth: { kind: "signature", identity: id } });
      assert.equal(s.status, 200);
    });
  });

  test("--trust-proxy naming the peer: the header is believed", async () => {
    await withServer(["--trust-proxy", "127.0.0.1"], async (_server, fleet) => {
      const id = await identity(fleet);
      const r = await rawPut(fleet.transport, "/checkin", authenticate(udid()), { auth: { kind: "header", identity: id } });
      assert.equal(r.status, 200);
    });
  });

  test("without --trust-proxy only loopback peers are believed", {
    skip: lanAddress ? false : "no non-loopback IPv4 address",
  }, async () => {
    await withServer(["--listen", `${lanAddress}:0`], async (server, fleet) => {
      assert.ok(server.url.includes(lanAddress!));
      const id = await identity(fleet);
      const r = await rawPut(fleet.transport, "/checkin", authenticate(udid()), { auth: { kind: "header", identity: id } });
      assert.equal(r.status, 400);
      assert.match(r.text, /not a trusted proxy/);
    });
  });
});

describe("identity before the body", () => {
  let server: TestServer;
  let fleet: TestFleet;
  before(async () => {
    // Short deadlines: a server that waited for the body would answer 408, not 400.
    server = await startTestServer([
      "--body-idle-timeout",
      "3s",
      "--request-timeout",
      "10s",
      "--unidentified-body-budget",
      "2mb",
      "--checkin-body-limit",
      "1kb",
    ]);
    fleet = await testFleet(server.url);
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  for (const [name, headers] of [
    ["no identity at all", {}],
    ["a certificate header that holds no certificate", { "x-client-cert": "not-a-certificate" }],
    // Any non-empty Mdm-Signature used to put the body on the budget: one that is not a CMS SignedData is refused from the headers.
    ["an Mdm-Signature that is not a CMS SignedData", { "mdm-signature": "bogus" }],
    ["an Mdm-Signature of base64 garbage", { "mdm-signature": "AAAA" }],
  ] as const) {
    test(`${name}: refused from the headers alone, before any body byte, and the connection closed`, async () => {
      const c = new RawConnection(server.url);
      c.head("PUT", "/mdm", { "content-type": COMMAND_TYPE, "content-length": 16 * 1024 * 1024, ...headers });
      const a = await c.answer();
      assert.equal(a?.status, 400);
      assert.match(a!.body, /^device identity: /);
      assert.equal(a!.headers.connection, "close");
      await eventually(async () => c.closed || undefined, 5000, "connection closed");
    });
  }

  test("a certificate (header or Mdm-Signature signer) that trust refuses (another CA than --ca) is refused before the body", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-ca-"));
    const otherCa = await createCa({ commonName: "Some other CA" });
    fs.writeFileSync(path.join(dir, "ca.pem"), otherCa.certPem);
    const strict = await startTestServer(["--ca", path.join(dir, "ca.pem"), "--body-idle-timeout", "3s"]);
    try {
      const id = await identity(fleet);
      const headers: Record<string, string>[] = [
        { "x-client-cert": escapedPemHeader(id.certPem) },
        { "mdm-signature": await signMdmBody(id, Buffer.from("x")) },
      ];
      for (const header of headers) {
        const c = new RawConnection(strict.url);
        c.head("PUT", "/mdm", { "content-type": COMMAND_TYPE, "content-length": 16 * 1024 * 1024, ...header });
        const a = await c.answer();
        assert.equal(a?.status, 400);
        assert.match(a!.body, /^device identity: certificate is not issued by a trusted CA/);
        c.close();
      }
    } finally {
      await strict.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  /** An Mdm-Signature naming a trusted device (a copy of its certificate) over other bytes: it verifies only after the body. */
  const forged = async () => signMdmBody(await identity(fleet), Buffer.from("other bytes"));

  test("Mdm-Signature requests share the unidentified body budget: past it 503 + Retry-After; freed when done", async () => {
    const big = 800 * 1024;
    const part = 600 * 1024; // two of these pass the budget (2 MB, each byte counted twice)
    const head = { "content-type": COMMAND_TYPE, "content-length": big, "mdm-signature": await forged() };
    const a = new RawConnection(server.url);
    const b = new RawConnection(server.url);
    a.head("PUT", "/mdm", head);
    b.head("PUT", "/mdm", head);
    await Promise.all([a.write(Buffer.alloc(part)), b.write(Buffer.alloc(part))]);
    // Whichever passed the budget is refused (and frees what it held); the other keeps its bytes.
    const answers = new Map([a, b].map((c) => [c, c.answer()] as const));
    const first = await Promise.race([a, b].map((c) => answers.get(c)!.then((r) => ({ r, other: c === a ? b : a }))));
    assert.equal(first.r?.status, 503);
    assert.ok(Number(first.r!.headers["retry-after"]) > 0);
    assert.match(first.r!.body, /unidentified/);
    assert.equal(first.other.hasAnswer, false);
    // The holder finishes its body: its (bogus) signature is refused and the budget freed.
    await first.other.write(Buffer.alloc(big - part));
    const held = await answers.get(first.other);
    assert.equal(held?.status, 400);
    assert.match(held!.body, /device identity/);
    first.other.close();
    const c = new RawConnection(server.url);
    c.head("PUT", "/mdm", head);
    await c.write(Buffer.alloc(big));
    assert.equal((await c.answer())?.status, 400);
    c.close();
    assert.ok(server.logs.some((l) => /device request refused/.test(l) && /"status":503/.test(l) && /unidentified request bodies/.test(l)));
  });

  test("an Mdm-Signature body declared larger than the whole budget is refused at once; one declared but not sent holds none", async () => {
    const signature = await forged();
    const huge = new RawConnection(server.url);
    huge.head("PUT", "/mdm", { "content-type": COMMAND_TYPE, "content-length": 2 * 1024 * 1024, "mdm-signature": signature });
    assert.equal((await huge.answer())?.status, 503);
    huge.close();
    // Ten connections each declaring the whole budget and sending nothing: a signed request still gets through.
    const idle = Array.from({ length: 10 }, () => new RawConnection(server.url));
    for (const c of idle)
      c.head("PUT", "/mdm", { "content-type": COMMAND_TYPE, "content-length": 1024 * 1024, "mdm-signature": signature });
    const id = await identity(fleet);
    const r = await rawPut(fleet.transport, "/checkin", authenticate(udid()), { auth: { kind: "signature", identity: id } });
    assert.equal(r.status, 200);
    for (const c of idle) c.close();
  });

  test("one signer certificate holds at most its share of the budget: a copied certificate cannot lock other signing devices out", async () => {
    // Budget 4 MB, largest body 256 KB: a share is 512 KB (an eighth, and one largest body counted twice).
    const shared = await startTestServer([
      "--unidentified-body-budget",
      "4mb",
      "--report-body-limit",
      "256kb",
      "--checkin-body-limit",
      "1kb",
    ]);
    const sharedFleet = await testFleet(shared.url);
    const conns: RawConnection[] = [];
    try {
      const copied = await signMdmBody(await identity(sharedFleet), Buffer.from("other bytes"));
      const head = { "content-type": COMMAND_TYPE, "content-length": 256 * 1024, "mdm-signature": copied };
      const first = new RawConnection(shared.url);
      conns.push(first);
      first.head("PUT", "/mdm", head);
      await first.write(Buffer.alloc(200 * 1024)); // 400 KB of its 512 KB share, held
      const second = new RawConnection(shared.url);
      conns.push(second);
      second.head("PUT", "/mdm", head);
      await second.write(Buffer.alloc(100 * 1024)); // past the share (the budget has room)
      const refused = await second.answer();
      assert.equal(refused?.status, 503);
      assert.match(refused!.body, /unidentified/);
      assert.equal(first.hasAnswer, false);
      // Another device, signing for real, still gets through.
      const r = await rawPut(sharedFleet.transport, "/mdm", authenticate(udid()), {
        auth: { kind: "signature", identity: await identity(sharedFleet) },
      });
      assert.equal(r.status, 200);
    } finally {
      for (const c of conns) c.close();
      sharedFleet.close();
      await shared.stop();
    }
  });

  test("a body sent to no route is not read: 404 from the headers, connection closed", async () => {
    for (const [method, url] of [
      ["PUT", "/nope"],
      ["POST", "/v1-nope"],
      ["POST", "/v1/nope"],
    ]) {
      const c = new RawConnection(server.url);
      c.head(method!, url!, { "content-type": "application/octet-stream", "content-length": 16 * 1024 * 1024 });
      await c.write(Buffer.alloc(1024));
      const a = await c.answer();
      assert.equal(a?.status, 404, `${method} ${url}`);
      assert.equal(a!.headers.connection, "close");
      if (url!.startsWith("/v1/")) assert.deepEqual(JSON.parse(a!.body), { error: "not found", code: "no_such_route" });
      c.close();
    }
  });

  test("a body sent with another method than the route's is not read: 405 with Allow from the headers, connection closed", async () => {
    // curl --data-binary @cmd.plist sends POST; enqueue is PUT. No API key: the answer comes before the guard.
    for (const [method, url, allow, json] of [
      ["POST", "/v1/enqueue/SOME-UDID", "PUT", true],
      ["POST", "/v1/pushcert", "GET, HEAD, PUT", true],
      ["PUT", "/v1/push", "POST", true],
      ["PUT", "/enroll", "GET, HEAD", false],
      ["POST", "/mdm", "PUT", false],
    ] as const) {
      const c = new RawConnection(server.url);
      c.head(method, url, { "content-type": "application/octet-stream", "content-length": 16 * 1024 * 1024 });
      await c.write(Buffer.alloc(1024));
      const a = await c.answer();
      assert.equal(a?.status, 405, `${method} ${url}: ${a?.body}`);
      assert.equal(a!.headers.allow, allow, `${method} ${url}`);
      assert.equal(a!.headers.connection, "close");
      // Under /v1 the API's JSON error; elsewhere one plain line.
      const reason = json ? JSON.parse(a!.body).error : a!.body;
      if (json) assert.equal(JSON.parse(a!.body).code, "method_not_allowed");
      assert.match(reason, new RegExp(`${method} is not a method of this route: it takes ${allow}`));
      if (method === "POST" && allow.includes("PUT")) assert.match(reason, /-X PUT/);
      c.close();
    }
    assert.ok(server.logs.some((l) => /method not allowed/.test(l) && /"url":"\/v1\/enqueue\/SOME-UDID"/.test(l)));
  });

  test("without a body too: 405 with Allow when another method has the route, 404 when none has", async () => {
    for (const [method, url, status, allow] of [
      ["DELETE", "/v1/enqueue/SOME-UDID", 405, "PUT"],
      ["GET", "/v1/push", 405, "POST"],
      ["GET", "/mdm", 405, "PUT"],
      ["GET", "/checkin?x=1", 405, "PUT"],
      ["DELETE", "/v1/no-such-route", 404, null],
    ] as const) {
      const r = await server.api(method, url);
      assert.equal(r.status, status, `${method} ${url}: ${r.text}`);
      assert.equal(r.headers.get("allow"), allow, `${method} ${url}`);
      if (url.startsWith("/v1/")) assert.equal(r.json.code, status === 405 ? "method_not_allowed" : "no_such_route");
    }
  });

  test("a check-in sent to ServerURL gets the check-in body limit", async () => {
    const c = new RawConnection(server.url);
    c.head("PUT", "/mdm", { "content-type": CHECKIN_TYPE, "content-length": 2048, "mdm-signature": await forged() });
    await c.write(Buffer.alloc(2048));
    const a = await c.answer();
    assert.equal(a?.status, 413);
    assert.match(a!.body, /limit is 1024 bytes/);
    c.close();
  });
});

describe("--max-connections", () => {
  test("past the cap a new connection gets 503 + Retry-After and is closed; a freed slot lets a device through", async () => {
    const server = await startTestServer(["--max-connections", "3"]);
    const fleet = await testFleet(server.url);
    const idle: RawConnection[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = new RawConnection(server.url);
        c.head("GET", "/version", {});
        assert.equal((await c.answer())?.status, 200); // accepted, now an idle keep-alive connection
        idle.push(c);
      }
      const id = await identity(fleet);
      const body = authenticate(udid());
      const device = { "content-type": CHECKIN_TYPE, "content-length": body.length, "x-client-cert": escapedPemHeader(id.certPem) };
      const over = new RawConnection(server.url);
      over.head("PUT", "/checkin", device);
      await over.write(body);
      const refused = await over.answer();
      assert.equal(refused?.status, 503);
      assert.ok(Number(refused!.headers["retry-after"]) > 0);
      assert.equal(refused!.headers.connection, "close");
      await eventually(async () => over.closed || undefined, 5000, "refused connection closed");
      assert.ok(server.logs.some((l) => /connection cap reached/.test(l)));

      idle.shift()!.close();
      // The server notices the close asynchronously: retry until the slot is free.
      const answer = await eventually(
        async () => {
          const c = new RawConnection(server.url);
          c.head("PUT", "/checkin", device);
          await c.write(body);
          const a = await c.answer();
          c.close();
          return a?.status === 503 ? undefined : a;
        },
        10_000,
        "a device request through a freed slot",
      );
      assert.equal(answer?.status, 200);
    } finally {
      for (const c of idle) c.close();
      fleet.close();
      await server.stop();
    }
  });

  test("over TLS the refusal comes after the handshake, as a 503 in the TLS session", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-tls-cap-"));
    const ca = await createCa({ commonName: "Orchard TLS cap test CA" });
    const serverCert = await issueDeviceIdentity(ca, { commonName: "127.0.0.1", extendedKeyUsages: ["1.3.6.1.5.5.7.3.1"] });
    fs.writeFileSync(path.join(dir, "server.pem"), serverCert.certPem);
    fs.writeFileSync(path.join(dir, "server.key"), serverCert.keyPem);
    const server = await startTestServer([
      "--max-connections",
      "1",
      "--tls-cert",
      path.join(dir, "server.pem"),
      "--tls-key",
      path.join(dir, "server.key"),
    ]);
    const first = new RawConnection(server.url);
    try {
      first.head("GET", "/version", {});
      assert.equal((await first.answer())?.status, 200);
      const over = new RawConnection(server.url);
      await over.connected;
      over.head("GET", "/version", {});
      const a = await over.answer();
      assert.equal(a?.status, 503);
      assert.ok(Number(a!.headers["retry-after"]) > 0);
      over.close();
    } finally {
      first.close();
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
