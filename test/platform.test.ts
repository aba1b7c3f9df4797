// The platform rule in SQL (the migration that fills devices.platform) against the one in TypeScript.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import Database from "better-sqlite3";
import { platformOf, platformSql } from "../src/protocol/platform.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { identity, RawDevice } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const NAMES: Array<[string | null, string | null]> = [
  ["MacBookPro18,3", "MacBook Pro"],
  ["Mac14,2", null],
  ["iMac21,1", null],
  ["VirtualMac2,1", null],
  ["iPhone15,4", "iPhone"],
  ["iPad13,18", "iPad"],
  ["AppleTV14,1", null],
  ["RealityDevice14,1", null],
  [null, "MacBook Air"],
  [null, "Apple TV"],
  [null, null],
  ["Toaster1,1", "Toaster"],
  ["MyiPhone", null],
];

test("the SQL rule agrees with platformOf on every case", () => {
  const db = new Database(":memory:");
  const select = db.prepare(`SELECT ${platformSql("@product", "@model")} AS platform`);
  // SQLite's LIKE ignores ASCII case and PostgreSQL's does not: only Apple's spelling is compared.
  for (const [product, model] of NAMES) {
    const expected = platformOf(product, model);
    assert.equal((select.get({ product, model }) as { platform: string | null }).platform, expected, `${product} / ${model}`);
  }
  db.close();
});

await forEachBackend("enrollments by platform", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  before(async () => {
    server = await startTestServer([], backend);
    fleet = await testFleet(server.url);
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  test("the API lists a platform's enrollments and refuses one it does not know", async () => {
    const mac = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await mac.enroll({ ProductName: "MacBookPro18,3", ModelName: "MacBook Pro" });
    const phone = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await phone.enroll({ ProductName: "iPhone15,4" });
    const bare = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await bare.enroll();

    const ids = async (platform: string) => {
      const r = await server.api("GET", `/v1/enrollments?platform=${platform}`);
      assert.equal(r.status, 200, r.text);
      return r.json.enrollments.map((e: { id: string; platform: string }) => [e.id, e.platform]);
    };
    assert.deepEqual(await ids("macOS"), [[mac.udid, "macOS"]]);
    assert.deepEqual(await ids("iOS"), [[phone.udid, "iOS"]]);
    assert.deepEqual(await ids("tvOS"), []);
    assert.equal((await server.api("GET", `/v1/enrollments/${bare.udid}`)).json.platform, null);

    const bad = await server.api("GET", "/v1/enrollments?platform=Windows");
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, "invalid_parameter");
    assert.match(bad.json.error, /macOS, iOS/);
  });
});
