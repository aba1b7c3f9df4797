// Review finding: CSRF through Basic credentials a browser cached. Every 401
// on /v1 challenges Basic, so an admin who once typed the API key into a
// browser has credentials the browser resends by itself, and the server reads
// any Content-Type: a text/plain form on a sibling subdomain (Sec-Fetch-Site:
// same-site), or in a browser without Fetch Metadata, queued EraseDevice.
// These requests are what that browser sent (test/README: the repro).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { seedEnrollments } from "./support/apns.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const KEY = "test-api-key-0123456789abcdef";
const BASIC = "Basic " + Buffer.from(`x:${KEY}`).toString("base64");
const EVIL = "https://evil.example.com";
const PASSWORD = "csrf forms test password 1234";

/**
 * The body of `<form method=POST enctype=text/plain>` with one input whose
 * name ends inside an XML comment: the form's `=` lands in the comment, so
 * the whole body is valid JSON for POST /v1/enqueue.
 */
function formBody(id: string, uuid: string): string {
  const name = `{"ids":["${id}"],"command":"<?xml version=\\"1.0\\"?><plist version=\\"1.0\\"><dict><key>CommandUUID</key><string>${uuid}</string><key>Command</key><dict><key>RequestType</key><string>EraseDevice</string></dict><!--`;
  return `${name}=--></dict></plist>"}`;
}

describe("a browser form cannot change anything through /v1", () => {
  let server: TestServer;
  let id: string;
  let bearer: string;
  before(async () => {
    server = await startTestServer();
    id = (await seedEnrollments(server.store, 1, { prefix: "CSRF" }))[0]!.id;
    assert.equal((await server.api("POST", "/v1/operators", { name: "csrf-admin", role: "admin", password: PASSWORD })).status, 201);
    const made = await server.api("POST", "/v1/tokens", { operator: "csrf-admin", label: "csrf test" });
    assert.equal(made.status, 201, made.text);
    bearer = made.json.token;
  });
  after(() => server.stop());

  const queued = async (uuid: string) =>
    Number((await server.store.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM command_queue WHERE command_uuid = ?", [uuid]))!.n);

  test("the repro body is a valid enqueue: without a browser's Origin (curl, the CLI) it queues", async () => {
    // The control: if this stopped queuing, the refusals below would prove nothing.
    const res = await fetch(server.url + "/v1/enqueue?nopush=1", {
      method: "POST",
      headers: { authorization: BASIC, "content-type": "text/plain" },
      body: formBody(id, "CSRF-CONTROL"),
    });
    assert.equal(res.status, 200, await res.text());
    assert.equal(await queued("CSRF-CONTROL"), 1);
  });

  for (const [credential, authorization] of [
    ["Basic API key", () => BASIC],
    ["Basic personal token", () => "Basic " + Buffer.from(`x:${bearer}`).toString("base64")],
    ["Bearer token", () => `Bearer ${bearer}`],
  ] as const) {
    for (const site of ["same-site", undefined, "none"]) {
      test(`${credential}, Origin of another site, text/plain JSON, Sec-Fetch-Site ${site ?? "absent"}: 403, nothing queued`, async () => {
        const uuid = `CSRF-${credential.replaceAll(" ", "-")}-${site ?? "absent"}`;
        const logsBefore = server.logs.length;
        const res = await fetch(server.url + "/v1/enqueue?nopush=1", {
          method: "POST",
          headers: {
            authorization: authorization(),
            "content-type": "text/plain",
            origin: EVIL,
            ...(site === undefined ? {} : { "sec-fetch-site": site }),
          },
          body: formBody(id, uuid),
        });
        const text = await res.text();
        assert.equal(res.status, 403, text);
        assert.equal(JSON.parse(text).code, "forbidden");
        assert.match(JSON.parse(text).error, site === "same-site" ? /another site/ : /browser form/);
        assert.equal(await queued(uuid), 0, "nothing queued");
        assert.ok(
          server.logs.slice(logsBefore).some((l) => l.includes("API change refused")),
          "the refusal is a log line",
        );
      });
    }
  }

  test("every form encoding, and no body at all, is refused with another site's Origin", async () => {
    for (const [contentType, body] of [
      ["application/x-www-form-urlencoded", "a=b"],
      ["multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--\r\n"],
      ["Text/Plain; charset=UTF-8", "{}"],
      [undefined, undefined],
    ] as const) {
      const res = await fetch(server.url + `/v1/push/${id}`, {
        method: "POST",
        headers: { authorization: BASIC, origin: EVIL, ...(contentType === undefined ? {} : { "content-type": contentType }) },
        body,
      });
      assert.equal(res.status, 403, `${contentType}: ${await res.text()}`);
    }
    // A sandboxed frame's form says Origin: null.
    const res = await fetch(server.url + `/v1/queue/${id}`, { method: "DELETE", headers: { authorization: BASIC, origin: "null" } });
    assert.equal(res.status, 403, await res.text());
    assert.equal(await queued("CSRF-CONTROL"), 1, "the queue was not cleared");
  });

  test("a sibling subdomain may not ask for a change in any form: JSON or an <img> GET /v1/push", async () => {
    const json = await fetch(server.url + "/v1/enqueue?nopush=1", {
      method: "POST",
      headers: { authorization: BASIC, "content-type": "application/json", "sec-fetch-site": "same-site" },
      body: formBody(id, "CSRF-SAME-SITE-JSON"),
    });
    assert.equal(json.status, 403, await json.text());
    assert.equal(await queued("CSRF-SAME-SITE-JSON"), 0);
    const img = await fetch(server.url + `/v1/push/${id}`, { headers: { authorization: BASIC, "sec-fetch-site": "same-site" } });
    assert.equal(img.status, 403, await img.text());
    // Reading is no change: a link from a sibling subdomain still opens.
    const read = await fetch(server.url + `/v1/queue/${id}`, { headers: { authorization: BASIC, "sec-fetch-site": "same-site" } });
    assert.equal(read.status, 200, await read.text());
  });

  test("a session cookie without its CSRF token is refused from a form as before", async () => {
    const signed = await fetch(server.url + "/v1/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "csrf-admin", password: PASSWORD }),
    });
    assert.equal(signed.status, 200);
    const cookie = signed.headers
      .getSetCookie()
      .find((c) => c.startsWith("orchard_session="))!
      .split(";")[0]!;
    for (const site of ["same-site", undefined]) {
      const res = await fetch(server.url + "/v1/enqueue?nopush=1", {
        method: "POST",
        headers: { cookie, "content-type": "text/plain", origin: EVIL, ...(site ? { "sec-fetch-site": site } : {}) },
        body: formBody(id, "CSRF-COOKIE"),
      });
      assert.equal(res.status, 403, await res.text());
    }
    assert.equal(await queued("CSRF-COOKIE"), 0);
  });

  test("what the console and scripts send still passes", async () => {
    const own = new URL(server.url).origin;
    // The console (fetch on its own origin): text/plain and bodiless changes, Sec-Fetch-Site same-origin.
    const consoleText = await fetch(server.url + "/v1/enqueue?nopush=1", {
      method: "POST",
      headers: { authorization: BASIC, "content-type": "text/plain; charset=utf-8", origin: own, "sec-fetch-site": "same-origin" },
      body: formBody(id, "CSRF-CONSOLE-TEXT"),
    });
    assert.equal(consoleText.status, 200, await consoleText.text());
    assert.equal(await queued("CSRF-CONSOLE-TEXT"), 1);
    // The console in a browser without Fetch Metadata: its X-CSRF-Token header is one no form can send,
    // and another origin's script could send it only after a CORS preflight the server never grants.
    const noMetadata = await fetch(server.url + `/v1/push/${id}`, {
      method: "POST",
      headers: { authorization: BASIC, origin: own, "x-csrf-token": "any" },
    });
    assert.notEqual(noMetadata.status, 403, await noMetadata.text());
    // JSON with an Origin: a form cannot send it, and another origin's fetch must ask first.
    const json = await fetch(server.url + "/v1/enqueue?nopush=1", {
      method: "POST",
      headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json", origin: own },
      body: formBody(id, "CSRF-JSON"),
    });
    assert.equal(json.status, 200, await json.text());
    // A user's own navigation (Sec-Fetch-Site: none) without an Origin, as curl sends bodies (urlencoded).
    const none = await fetch(server.url + "/v1/enqueue?nopush=1", {
      method: "POST",
      headers: { authorization: BASIC, "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "none" },
      body: formBody(id, "CSRF-NONE"),
    });
    assert.equal(none.status, 200, await none.text());
  });
});
