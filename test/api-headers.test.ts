// Review of issue #16: every /v1 answer is on the console's origin, so a body
// a browser would render (an asset an operator uploaded as text/html, an
// error page) must not run script there: it would hold the admin's session
// (GET /v1/session hands out the CSRF token) and could add an admin account.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startTestServer, type TestServer } from "./support/server.ts";

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.stop());

const HTML = "<!doctype html><script>fetch('/v1/session')</script>";

test("an asset uploaded as text/html is served sandboxed with no script allowed", async () => {
  const put = await fetch(server.url + "/v1/ddm/assets/page", {
    method: "PUT",
    headers: {
      authorization: "Basic " + Buffer.from("x:test-api-key-0123456789abcdef").toString("base64"),
      "content-type": "text/html",
    },
    body: HTML,
  });
  assert.equal(put.status, 201, await put.text());
  const res = await fetch(server.url + "/v1/ddm/assets/page/data", {
    headers: { authorization: "Basic " + Buffer.from("x:test-api-key-0123456789abcdef").toString("base64") },
  });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), HTML, "the bytes are served as stored");
  const csp = res.headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /(^|; )sandbox($|;)/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  assert.equal(res.headers.get("content-disposition"), "attachment", "a browser saves it rather than shows it");
});

test("a percent-encoded /v1 (which the router decodes) gets the same walls (hostile review: /%761/... went out bare)", async () => {
  for (const path of ["/%761/ddm/assets/page/data", "/%76%31/ddm/assets/page/data", "/v%31/ddm/assets/page/data"]) {
    const res = await fetch(server.url + path, {
      headers: { authorization: "Basic " + Buffer.from("x:test-api-key-0123456789abcdef").toString("base64") },
    });
    await res.arrayBuffer();
    assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'none'.*sandbox/, `${path} ${res.status}`);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", `${path} ${res.status}`);
  }
});

test("every /v1 answer, errors and refusals included, carries the same walls", async () => {
  for (const [path, auth] of [
    ["/v1/enrollments", true],
    ["/v1/enrollments", false],
    ["/v1/no-such-route", true],
    ["/healthz", false],
    ["/no-such-page", false],
  ] as const) {
    const res = await fetch(server.url + path, {
      headers: auth ? { authorization: "Basic " + Buffer.from("x:test-api-key-0123456789abcdef").toString("base64") } : {},
    });
    await res.arrayBuffer();
    assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'none'.*sandbox/, `${path} ${res.status}`);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", `${path} ${res.status}`);
  }
});
