// Long enrollment id lists (issue #11): the request headers are capped at 64 KB
// (the server holds them for anyone, before the API key), so a list past what
// fits in a path goes in the body: POST /v1/enqueue and POST /v1/push.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { seedEnrollments } from "./support/apns.ts";
import { commandPlist, eventually } from "./support/mdm.ts";
import { RawConnection } from "./support/raw-http.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

describe("enrollment ids in the body", () => {
  let server: TestServer;
  let ids: string[];
  before(async () => {
    server = await startTestServer([]);
    ids = (await seedEnrollments(server.store, 10_000, { prefix: "LONGLIST" })).map((r) => r.id);
  });
  after(() => server.stop());

  test("10,000 ids in a path pass the header cap: 431 with a reason, from the headers", async () => {
    const r = await server.api("PUT", `/v1/enqueue/${ids.join(",")}?nopush=1`, commandPlist("DeviceInformation"));
    assert.equal(r.status, 431);
    assert.match(r.text, /request headers too large/);
  });

  test("a request line still being sent is answered 431 and closed once it passes the cap, not held to its end", async () => {
    const c = new RawConnection(server.url);
    await c.connected;
    // 560 KB of request line, never finished: the server must not wait for (and hold) the rest.
    await c.write(Buffer.from(`GET /scep?operation=GetCACaps&x=${"a".repeat(128 * 1024)}`));
    const a = await c.answer();
    assert.equal(a?.status, 431);
    await eventually(async () => c.closed || undefined, 5000, "connection closed");
    assert.equal(await c.write(Buffer.alloc(432 * 1024, 0x61)), false);
  });

  test("POST /v1/enqueue: 10,000 ids and the command in a JSON body, queued for each", async () => {
    const command = commandPlist("DeviceInformation", "BULK-BODY-1").toString("utf8");
    const r = await server.api("POST", "/v1/enqueue?nopush=1", { ids, command });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(r.json.command_uuid, "BULK-BODY-1");
    assert.equal(r.json.no_push, true);
    const queued = await server.store.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM command_queue WHERE command_uuid = 'BULK-BODY-1'");
    assert.equal(Number(queued!.n), 10_000);
    // A binary or any plist as base64; unknown ids answered per id, as in the path form.
    const b64 = commandPlist("ProfileList", "BULK-BODY-2").toString("base64");
    const mixed = await server.api("POST", "/v1/enqueue?nopush=1", { ids: [ids[0], "NO-SUCH-ID"], command_base64: b64 });
    assert.equal(mixed.status, 207);
    assert.equal(mixed.json.status["NO-SUCH-ID"].command_error, "unknown enrollment");
  });

  test("POST /v1/push: 10,000 ids in a JSON body, one answer per id", async () => {
    const r = await server.api("POST", "/v1/push", { ids });
    // No push certificate here: every id answered with its push_error.
    assert.equal(Object.keys(r.json.status).length, 10_000);
    assert.ok(r.json.status[ids[0]!].push_error);
  });

  test("bad bodies get a 400 with a reason", async () => {
    const command = commandPlist("DeviceInformation").toString("utf8");
    const cases: Array<[string, string | object, RegExp]> = [
      ["/v1/push", "not json", /"the body is not valid JSON"/],
      ["/v1/push", [], /JSON object/],
      ["/v1/push", { ids: [] }, /no enrollment id given/],
      ["/v1/push", { ids: "A,B" }, /non-empty array/],
      ["/v1/push", { ids: ["A", 7] }, /non-empty strings/],
      ["/v1/push", '{"ids": ["A"], "ids": ["B"]}', /duplicate key/],
      ["/v1/push", { ids: Array.from({ length: 10_001 }, (_, i) => `X${i}`) }, /at most 10000 ids/],
      ["/v1/enqueue", { ids: ["A"] }, /command_base64/],
      ["/v1/enqueue", { ids: ["A"], command, command_base64: "AAAA" }, /command_base64/],
      ["/v1/enqueue", { ids: ["A"], command_base64: "!!" }, /base64/],
      ["/v1/enqueue", { ids: [ids[0]], command: "<plist" }, /not a valid plist/],
    ];
    for (const [url, body, reason] of cases) {
      const r = await server.api("POST", url, body);
      assert.equal(r.status, 400, `${url} ${JSON.stringify(body).slice(0, 60)}: ${r.text}`);
      assert.match(r.text, reason);
    }
  });
});
