// A database outage is a 503 with Retry-After for devices and the API, never
// a 500, and everything works again when the database is back. PostgreSQL is
// cut through a small TCP proxy in this process (the shared server is never
// restarted); SQLite through another connection holding the write lock.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { PostgresDatabase } from "../src/store/postgres.ts";
import { StoreUnavailable } from "../src/store/unavailable.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist, eventually, identity, RawDevice, serverWithDevice, type RawReply } from "./support/mdm.ts";
import { createTestDatabase, POSTGRES_ADMIN_URL, postgresReachable } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

/** A TCP proxy to PostgreSQL that can be cut (connections reset, port closed) and restored on the same port. */
class CuttableProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  constructor(
    private readonly host: string,
    private readonly targetPort: number,
  ) {}

  async open(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(this.port, "127.0.0.1", resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** Stops accepting (new connections are refused) and resets every open one. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server?.close(() => resolve()) ?? resolve());
    for (const s of this.sockets) s.resetAndDestroy();
    await closed;
  }
}

/** An API call with the answer's headers. */
async function apiCall(server: TestServer, method: string, urlPath: string, body?: string | Buffer) {
  const res = await fetch(server.url + urlPath, {
    method,
    headers: { authorization: "Basic " + Buffer.from("o:test-api-key-0123456789abcdef").toString("base64") },
    body: body === undefined ? undefined : typeof body === "string" ? body : new Uint8Array(body),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** The answer to a request the outage stopped: 503, Retry-After, the reason. */
function deferred(r: { status: number; headers: object; text: string }, what: string): void {
  assert.equal(r.status, 503, `${what}: ${r.status} ${r.text}`);
  const retry = r.headers instanceof Headers ? r.headers.get("retry-after") : (r.headers as Record<string, unknown>)["retry-after"];
  assert.equal(retry, "5", `${what}: Retry-After`);
  assert.match(r.text, /store unavailable/, what);
}

describe("PostgreSQL outage", async () => {
  const available = await postgresReachable();
  let server: TestServer;
  let fleet: TestFleet;
  let proxy: CuttableProxy;
  let database: { url: string; drop(): Promise<void> };
  let dev: RawDevice;

  before(async () => {
    if (!available) return;
    const admin = new URL(POSTGRES_ADMIN_URL);
    proxy = new CuttableProxy(admin.hostname, Number(admin.port || 5432));
    await proxy.open();
    database = await createTestDatabase();
    const url = new URL(database.url);
    url.hostname = "127.0.0.1";
    url.port = String(proxy.port);
    server = await startTestServer(["--storage", url.toString()]);
    fleet = await testFleet(server.url);
    dev = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await dev.enroll();
  });
  after(async () => {
    if (!available) return;
    fleet?.close();
    await server?.stop();
    await proxy?.cut();
    await database?.drop();
  });

  test("devices and the API get 503 + Retry-After during the outage, and everything works after it", {
    skip: !available && "PostgreSQL not reachable",
  }, async () => {
    const before = await server.api("PUT", `/v1/enqueue/${dev.udid}?nopush=1`, commandPlist("DeviceInformation", "BEFORE-OUTAGE"));
    assert.equal(before.status, 200, before.text);
    const logFrom = server.logs.length;

    await proxy.cut();
    const device: Array<[string, () => Promise<RawReply>]> = [
      ["Idle poll", () => dev.report("Idle")],
      ["TokenUpdate", () => dev.tokenUpdate()],
      ["Authenticate", () => dev.authenticate()],
    ];
    for (const [what, send] of device) deferred(await send(), what);
    const api: Array<[string, string, (string | Buffer)?]> = [
      ["GET", "/v1/enrollments"],
      ["GET", `/v1/queue/${dev.udid}`],
      ["PUT", `/v1/enqueue/${dev.udid}?nopush=1`, commandPlist("DeviceInformation", "DURING-OUTAGE")],
      ["PUT", "/v1/users/outage", '{"password":"pw"}'],
      ["GET", "/v1/events"],
    ];
    for (const [method, p, body] of api) {
      const r = await apiCall(server, method, p, body);
      deferred(r, `${method} ${p}`);
      assert.deepEqual(JSON.parse(r.text), { error: "store unavailable", code: "store_unavailable" });
    }
    const health = await fetch(server.url + "/healthz");
    assert.equal(health.status, 503);

    await proxy.open(); // the same port: the pool reconnects by itself
    const polled = await eventually(
      async () => {
        const r = await dev.report("Idle");
        assert.ok(r.status === 200 || r.status === 503, `${r.status} ${r.text}`);
        return r.status === 200 ? r : undefined;
      },
      15_000,
      "the store to come back",
    );
    assert.equal(polled.plist?.CommandUUID, "BEFORE-OUTAGE", "the command queued before the outage is delivered");
    const after = await server.api("PUT", `/v1/enqueue/${dev.udid}?nopush=1`, commandPlist("DeviceInformation", "AFTER-OUTAGE"));
    assert.equal(after.status, 200, after.text);
    assert.equal((await dev.tokenUpdate()).status, 200);
    assert.equal((await server.api("GET", "/v1/commands/DURING-OUTAGE")).status, 404, "the refused enqueue left nothing");

    const lines = server.logs.slice(logFrom).map((l) => JSON.parse(l));
    assert.ok(
      !lines.some((l) => l.msg === "request failed" || l.msg === "device request failed"),
      "no request was logged as a failure (500)",
    );
    assert.ok(
      lines.some((l) => l.msg === "store unavailable"),
      "the API logged the outage",
    );
    assert.ok(
      lines.some((l) => l.msg === "device request deferred" && l.status === 503),
      "the device endpoint logged the outage",
    );
    // A refused change's audit entry cannot be written either: said at warn level, as the outage's other lines.
    assert.ok(lines.some((l) => l.msg === "audit entry not written: store unavailable" && l.level === 40));
    assert.deepEqual(
      lines.filter((l) => l.level >= 50).map((l) => l.msg),
      [],
      "no error-level line for an outage",
    );
  });

  test("connections the server ends (pg_terminate_backend) cost at most 503s, then work again", {
    skip: !available && "PostgreSQL not reachable",
  }, async () => {
    const dbName = new URL(database.url).pathname.slice(1);
    const admin = new pg.Client(POSTGRES_ADMIN_URL);
    await admin.connect();
    try {
      // Fill the pool with idle connections, then end them all under it.
      await Promise.all(Array.from({ length: 8 }, () => server.api("GET", "/v1/enrollments")));
      const ended = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [dbName]);
      assert.ok(ended.rowCount! > 0, "some connection was ended");
    } finally {
      await admin.end();
    }
    const statuses: number[] = [];
    await eventually(
      async () => {
        const results = await Promise.all([dev.report("Idle"), apiCall(server, "GET", "/v1/enrollments")]);
        for (const r of results) {
          statuses.push(r.status);
          if (r.status !== 200) deferred(r, "after pg_terminate_backend");
        }
        return results.every((r) => r.status === 200) ? true : undefined;
      },
      15_000,
      "requests to succeed again",
    );
    assert.ok(!statuses.includes(500), statuses.join());
  });

  test("a connection lost while a transaction holds it between statements is a store error, not a crash", {
    skip: !available && "PostgreSQL not reachable",
  }, async () => {
    const admin = new URL(POSTGRES_ADMIN_URL);
    const cut = new CuttableProxy(admin.hostname, Number(admin.port || 5432));
    await cut.open();
    const url = new URL(database.url);
    url.hostname = "127.0.0.1";
    url.port = String(cut.port);
    const db = await PostgresDatabase.open(url.toString(), 2);
    // Without a listener on the checked-out client, its 'error' is an uncaught exception: the server would die.
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on("uncaughtException", onUncaught);
    try {
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.get("SELECT 1 AS one");
          await cut.cut();
          await new Promise((resolve) => setTimeout(resolve, 200));
          await tx.get("SELECT 2 AS two");
        }),
        StoreUnavailable,
      );
      assert.deepEqual(uncaught, [], "no uncaught exception");
    } finally {
      process.off("uncaughtException", onUncaught);
      await cut.cut(); // again, in case the transaction failed before it: the proxy must not keep the process up
      await db.close().catch(() => {});
    }
  });
});

describe("SQLite write lock held by another process", () => {
  let server: TestServer;
  let dev: RawDevice;
  let stop: () => Promise<void>;

  before(async () => {
    ({ server, dev, stop } = await serverWithDevice());
  });
  after(async () => {
    await stop?.();
  });

  test("a write that waits out the busy timeout is 503 + Retry-After, then works", async () => {
    const file = path.join(server.dataDir, "orchard.db");
    const other = new BetterSqlite3(file, { fileMustExist: true });
    try {
      other.exec("BEGIN IMMEDIATE");
      const r = await apiCall(server, "PUT", "/v1/users/locked", '{"password":"pw"}');
      deferred(r, "PUT /v1/users/locked");
      assert.deepEqual(JSON.parse(r.text), { error: "store unavailable", code: "store_unavailable" });
      deferred(await dev.tokenUpdate(), "TokenUpdate");
    } finally {
      if (other.inTransaction) other.exec("ROLLBACK");
      other.close();
    }
    assert.equal((await server.api("PUT", "/v1/users/locked", '{"password":"pw"}')).status, 201);
    assert.equal((await dev.tokenUpdate()).status, 200);
  });
});
