// DeclarativeManagement check-ins relayed to the --dm-url service.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { changesOwnDdm } from "../src/http/ddm-forwarded.ts";
import { OPENAPI } from "../src/http/openapi.ts";
import { Transport } from "../src/sim/transport.ts";
import { policyOf } from "../src/updates/policy.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { dumpStore, identity, RawDevice, sleep } from "./support/mdm.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

interface Seen {
  method: string;
  url: string;
  enrollmentId: string | undefined;
  authorization: string | undefined;
  body: Buffer;
}

let dm: http.Server;
let seen: Seen[] = [];
let server: TestServer;
let fleet: TestFleet;
let dev: RawDevice;

before(async () => {
  dm = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const s: Seen = {
        method: req.method!,
        url: req.url!,
        enrollmentId: req.headers["x-enrollment-id"] as string | undefined,
        authorization: req.headers.authorization,
        body: Buffer.concat(chunks),
      };
      seen.push(s);
      if (req.url!.endsWith("/tokens")) {
        res
          .writeHead(200, { "content-type": "application/json" })
          .end('{"SyncTokens":{"DeclarationsToken":"abc","Timestamp":"2024-01-01T00:00:00Z"}}');
      } else if (req.url!.endsWith("/status")) {
        res.writeHead(204).end();
      } else if (req.url!.includes("/declaration/")) {
        res.writeHead(404, { "content-type": "text/plain" }).end("no such declaration");
      } else {
        res.writeHead(500).end("unexpected");
      }
    });
  });
  await new Promise<void>((r) => dm.listen(0, "127.0.0.1", r));
  const port = (dm.address() as AddressInfo).port;
  // A user and password in --dm-url go as Basic authentication (fetch refuses a URL that holds them).
  server = await startTestServer(["--dm-url", `http://kmfddm:s3cr%2Fet@127.0.0.1:${port}/ddm/`]);
  fleet = await testFleet(server.url);
  dev = new RawDevice(fleet.transport, await identity(fleet), "DDM-DEVICE-1");
  await dev.enroll();
});
after(async () => {
  fleet.close();
  await server.stop();
  await new Promise((r) => dm.close(r));
});

describe("DeclarativeManagement forwarding", () => {
  test("an Endpoint that escapes the service's path is 400 and reaches nothing", async () => {
    // First test: only Authenticate and TokenUpdate came before, whose last-seen
    // times equal what TokenUpdate stored, so the snapshot is stable.
    const before = await dumpStore(server.store);
    seen = [];
    for (const endpoint of ["../admin", "declaration/../../x", "declaration//x", "http://evil/", ""]) {
      const r = await dev.checkin("DeclarativeManagement", { Endpoint: endpoint });
      assert.equal(r.status, 400, endpoint);
      assert.match(r.text, /Endpoint/);
    }
    assert.deepEqual(seen, []);
    await sleep(1100);
    assert.deepEqual(await dumpStore(server.store), before);
  });

  test("tokens: GET without Data, the enrollment id in a header, status and body relayed", async () => {
    seen = [];
    const r = await dev.checkin("DeclarativeManagement", { Endpoint: "tokens" });
    assert.equal(r.status, 200);
    assert.match(String(r.headers["content-type"]), /^application\/json/);
    assert.deepEqual(JSON.parse(r.text), { SyncTokens: { DeclarationsToken: "abc", Timestamp: "2024-01-01T00:00:00Z" } });
    assert.deepEqual(
      seen.map((s) => [s.method, s.url, s.enrollmentId, s.body.length]),
      [["GET", "/ddm/tokens", "DDM-DEVICE-1", 0]],
    );
    assert.equal(seen[0]!.authorization, `Basic ${Buffer.from("kmfddm:s3cr/et").toString("base64")}`);
  });

  test("status: PUT with the Data bytes; a 204 comes back as 204", async () => {
    seen = [];
    const data = Buffer.from(JSON.stringify({ StatusItems: { device: { model: { family: "Mac" } } }, Errors: [] }));
    const r = await dev.checkin("DeclarativeManagement", { Endpoint: "status", Data: data });
    assert.equal(r.status, 204);
    assert.equal(r.body.length, 0);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.method, "PUT");
    assert.equal(seen[0]!.url, "/ddm/status");
    assert.equal(seen[0]!.enrollmentId, "DDM-DEVICE-1");
    assert.ok(seen[0]!.body.equals(data));
  });

  test("a user channel forwards its own enrollment id; a 404 is relayed", async () => {
    assert.equal((await dev.tokenUpdate({ UserID: "DDM-USER", UserShortName: "d" })).status, 200);
    seen = [];
    const r = await dev.checkin("DeclarativeManagement", {
      Endpoint: "declaration/configuration/com.example.missing",
      UserID: "DDM-USER",
      UserShortName: "d",
    });
    assert.equal(r.status, 404);
    assert.equal(r.text, "no such declaration");
    assert.deepEqual(
      seen.map((s) => [s.method, s.url, s.enrollmentId]),
      [["GET", "/ddm/declaration/configuration/com.example.missing", "DDM-DEVICE-1:DDM-USER"]],
    );
  });

  test("a declaration identifier with any characters reaches the service escaped", async () => {
    seen = [];
    const r = await dev.checkin("DeclarativeManagement", { Endpoint: "declaration/configuration/com.example id:1?x" });
    assert.equal(r.status, 404);
    assert.deepEqual(
      seen.map((s) => s.url),
      ["/ddm/declaration/configuration/com.example%20id%3A1%3Fx"],
    );
  });

  test("Orchard's own DDM is off: every change to it is 409 ddm_forwarded, its reads answer, a channel due from before gets no command", async () => {
    const declaration = { Type: "com.apple.configuration.management.test", Identifier: "com.example.own", Payload: { Echo: "x" } };
    // Every operation of the API document that changes Orchard's own DDM or what is built on it.
    const changes = Object.entries(OPENAPI.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) =>
      Object.keys(ops)
        .filter((m) => changesOwnDdm(m, p))
        .map((m) => [m.toUpperCase(), p.replace(/\{[^}]+\}/g, "x")] as const),
    );
    assert.ok(changes.length >= 20, `${changes.length} operations`);
    for (const path of ["/v1/declarations", "/v1/ddm/credentials/x", "/v1/updates/feed/refresh", "/v1/updates/policies/x"])
      assert.ok(
        changes.some(([, p]) => p === path),
        path,
      );
    // The route's pattern decides, not the raw path (%76 is v).
    for (const [method, path] of [...changes, ["PUT", "/%761/declarations"] as const]) {
      const r = await server.api(method, path, declaration);
      assert.equal(r.status, 409, `${method} ${path}: ${r.text}`);
      assert.equal(r.json.code, "ddm_forwarded");
      assert.match(r.json.error, /forwarded to the DDM service at http:\/\/127\.0\.0\.1:\d+ \(--dm-url\)/);
    }
    assert.equal((await server.api("GET", "/v1/declarations")).status, 200);
    assert.equal((await server.api("POST", "/v1/declarations/validate", declaration)).status, 200);
    // ADE's initial DDM sets would be Orchard's own too; the rest of the settings are not.
    assert.equal((await server.api("PUT", "/v1/ade/servers/fwd")).status, 201);
    const settings = (initial_ddm_sets: string[]) => server.api("PUT", "/v1/ade/servers/fwd/enrollment-settings", { initial_ddm_sets });
    assert.equal((await settings(["baseline"])).json.code, "ddm_forwarded");
    assert.equal((await settings([])).status, 200);
    // A channel made due while Orchard served DDM itself (before --dm-url): no sweep claims it.
    await server.store.db.run("INSERT INTO ddm_sync_due (enrollment_id, due_at) VALUES (?, ?)", ["DDM-DEVICE-1", 0]);
    await sleep(1000);
    const due = await server.store.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM ddm_sync_due");
    assert.equal(Number(due?.n), 1);
    const idle = await dev.report("Idle");
    assert.equal(idle.status, 200);
    assert.equal(idle.body.length, 0, "no DeclarativeManagement command queued");
    await server.store.db.run("DELETE FROM ddm_sync_due");
  });

  test("an update policy from before --dm-url re-targets nothing: no sets, no declarations, no time zone asked", async () => {
    const { policy, ids } = policyOf("macs", { platform: "macOS", mode: "latest", deadline_days: 7 });
    await server.store.softwareUpdates.putPolicy(policy, ids, Date.now());
    const mac = new RawDevice(fleet.transport, await identity(fleet), "DDM-FWD-MAC");
    await mac.enroll({ ProductName: "Mac14,2", OSVersion: "14.0", BuildVersion: "23A344" });
    await sleep(1500);
    assert.deepEqual(await server.store.db.all("SELECT set_name FROM ddm_enrollment_sets WHERE enrollment_id = ?", ["DDM-FWD-MAC"]), []);
    assert.deepEqual(await server.store.db.all("SELECT identifier FROM ddm_declarations WHERE identifier LIKE 'orchard.su%'"), []);
    assert.deepEqual(await server.store.db.all("SELECT enrollment_id FROM update_devices"), []);
  });

  test("an unreachable service is 503 with a reason and Retry-After, a warning without a stack", async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const other = await startTestServer(["--dm-url", `http://kmfddm:s3cret@127.0.0.1:${port}/`]);
    const transport = new Transport(other.url);
    try {
      const d = new RawDevice(transport, dev.identity, "DDM-DEVICE-2");
      await d.enroll();
      const r = await d.checkin("DeclarativeManagement", { Endpoint: "tokens" });
      assert.equal(r.status, 503);
      assert.equal(r.text, "declarative management service unreachable\n");
      // Like a store outage: the device tries again later, and it is no bug of Orchard's.
      assert.equal(r.headers["retry-after"], "10");
      const lines = other.logs.map((l) => JSON.parse(l) as { level: number; msg: string; err?: unknown });
      assert.deepEqual(
        lines.filter((l) => l.level >= 50),
        [],
        "no error-level line",
      );
      const said = lines.filter((l) => l.msg === "device request deferred");
      assert.equal(said.length, 1, "one line for the request");
      assert.equal(said[0]!.level, 40);
      assert.match(String(said[0]!.err), /ECONNREFUSED/, "the reason, as text");
      assert.ok(!JSON.stringify(said[0]).includes("    at "), "no stack");
      assert.ok(!other.logs.some((l) => l.includes("s3cret")), "the --dm-url password is in no log line");
    } finally {
      transport.close();
      await other.stop();
    }
  });
});
