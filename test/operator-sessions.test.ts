// Browser sessions (issue #16): sign in with name and password, the cookie's
// flags, the CSRF token on every change, sign out, idle and absolute
// timeouts, disabling and password changes ending sessions at once, and
// per-address sign-in throttling that never locks out the right password.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const PASSWORD = "correct horse battery staple";

interface Signed {
  cookie: string;
  csrf: string;
  setCookie: string;
  json: any;
}

export async function signIn(server: TestServer, name: string, password: string, headers: Record<string, string> = {}) {
  const res = await fetch(server.url + "/v1/session", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ name, password }),
  });
  const json = (await res.json()) as any;
  const setCookies = res.headers.getSetCookie();
  const setCookie = setCookies.find((c) => c.startsWith("orchard_session=")) ?? "";
  return {
    status: res.status,
    json,
    headers: res.headers,
    setCookie,
    setCookies,
    cookie: setCookie.split(";")[0]!,
    csrf: json.csrf_token as string,
  };
}

function withCookie(server: TestServer, s: Signed, method: string, path: string, o: { csrf?: string | null; body?: object } = {}) {
  const headers: Record<string, string> = { cookie: s.cookie };
  const csrf = o.csrf === undefined ? s.csrf : o.csrf;
  if (csrf !== null) headers["x-csrf-token"] = csrf;
  if (o.body) headers["content-type"] = "application/json";
  return fetch(server.url + path, { method, headers, body: o.body ? JSON.stringify(o.body) : undefined });
}

await forEachBackend("operator sessions", (backend) => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(["--session-idle-timeout", "1500ms", "--session-max-age", "1h", "--api-max-failures", "3"], backend);
    const added = await server.api("POST", "/v1/operators", { name: "alice", role: "operator", password: PASSWORD });
    assert.equal(added.status, 201, added.text);
    assert.equal(added.json.name, "alice");
    assert.ok(!added.text.includes("scrypt") && !added.text.includes(PASSWORD), "no hash or password in the answer");
  });
  after(() => server.stop());

  test("signing in sets an HttpOnly SameSite=Strict cookie and answers the operator and a CSRF token", async () => {
    const s = await signIn(server, "alice", PASSWORD);
    assert.equal(s.status, 200, JSON.stringify(s.json));
    assert.deepEqual(s.json.operator, { name: "alice", role: "operator" });
    assert.match(s.json.csrf_token, /^[A-Za-z0-9_-]{43}$/);
    assert.match(s.setCookie, /^orchard_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=3600$/);
    assert.ok(!s.setCookie.includes("Secure"), "no Secure flag over plain HTTP");
    const again = await withCookie(server, s, "GET", "/v1/session");
    assert.equal(again.status, 200);
    assert.deepEqual(((await again.json()) as any).operator, { name: "alice", role: "operator" });
    const enrollments = await withCookie(server, s, "GET", "/v1/enrollments", { csrf: null });
    assert.equal(enrollments.status, 200, "a read needs no CSRF token");
  });

  test("the cookie is Secure when a trusted proxy says the request came over https", async () => {
    const proxied = await startTestServer(["--trust-proxy", "127.0.0.1"], backend);
    try {
      assert.equal((await proxied.api("POST", "/v1/operators", { name: "bob", role: "auditor", password: PASSWORD })).status, 201);
      const s = await signIn(proxied, "bob", PASSWORD, { "x-forwarded-proto": "https" });
      assert.equal(s.status, 200);
      assert.match(s.setCookie, /; Secure$/);
    } finally {
      await proxied.stop();
    }
  });

  test("wrong name and wrong password get the same 401", async () => {
    const wrongPassword = await signIn(server, "alice", "not the password at all");
    const wrongName = await signIn(server, "nobody-here", PASSWORD);
    assert.equal(wrongPassword.status, 401);
    assert.equal(wrongName.status, 401);
    assert.deepEqual(wrongPassword.json, wrongName.json);
    assert.equal(wrongPassword.setCookie, "");
  });

  test("a change with the cookie needs the X-CSRF-Token, and a wrong one is 403", async () => {
    const s = await signIn(server, "alice", PASSWORD);
    const body = { password: "a network user's password" };
    assert.equal((await withCookie(server, s, "PUT", "/v1/users/csrfuser", { csrf: null, body })).status, 403);
    assert.equal((await withCookie(server, s, "PUT", "/v1/users/csrfuser", { csrf: "x".repeat(43), body })).status, 403);
    assert.equal((await server.api("GET", "/v1/users/csrfuser")).status, 404, "nothing was changed");
    assert.equal((await withCookie(server, s, "PUT", "/v1/users/csrfuser", { body })).status, 201);
  });

  test("GET /v1/push/{ids} pushes (NanoMDM's form): with the cookie it needs the CSRF token, and another site may not ask it", async () => {
    const s = await signIn(server, "alice", PASSWORD);
    const noToken = await withCookie(server, s, "GET", "/v1/push/csrf-push-device", { csrf: null });
    assert.equal(noToken.status, 403, await noToken.text());
    const withToken = await withCookie(server, s, "GET", "/v1/push/csrf-push-device");
    assert.notEqual(withToken.status, 403, await withToken.text());
    const crossSite = await fetch(server.url + "/v1/push/csrf-push-device", {
      headers: {
        authorization: "Basic " + Buffer.from("x:test-api-key-0123456789abcdef").toString("base64"),
        "sec-fetch-site": "cross-site",
      },
    });
    assert.equal(crossSite.status, 403, "an <img> on another site must not push with the Basic credentials a browser remembers");
  });

  test("signing out without a session is no audit entry: a stranger cannot fill the audit log", async () => {
    const before = (await server.api("GET", "/v1/audit?action=session.sign_out&limit=500")).json.entries.length;
    for (let i = 0; i < 3; i++) assert.equal((await fetch(server.url + "/v1/session", { method: "DELETE" })).status, 204);
    const bogus = await fetch(server.url + "/v1/session", { method: "DELETE", headers: { cookie: `orchard_session=${"x".repeat(43)}` } });
    assert.equal(bogus.status, 204);
    const entries = (await server.api("GET", "/v1/audit?action=session.sign_out&limit=500")).json.entries;
    assert.equal(entries.length, before, JSON.stringify(entries[0]));
  });

  test("a change another site asks for is refused, whatever the credential", async () => {
    const res = await fetch(server.url + "/v1/users/crosssite", {
      method: "PUT",
      headers: {
        authorization: "Basic " + Buffer.from("x:test-api-key-0123456789abcdef").toString("base64"),
        "sec-fetch-site": "cross-site",
      },
      body: "{}",
    });
    assert.equal(res.status, 403);
    const form = await fetch(server.url + "/v1/session", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "name=alice&password=x",
    });
    assert.equal(form.status, 415, "signing in takes JSON only");
  });

  test("signing out ends the session on the server at once (needs the CSRF token)", async () => {
    const s = await signIn(server, "alice", PASSWORD);
    assert.equal((await withCookie(server, s, "DELETE", "/v1/session", { csrf: null })).status, 403);
    const out = await withCookie(server, s, "DELETE", "/v1/session");
    assert.equal(out.status, 204);
    assert.match(out.headers.get("set-cookie") ?? "", /^orchard_session=; .*Max-Age=0/);
    assert.equal((await withCookie(server, s, "GET", "/v1/session")).status, 401);
    assert.equal((await withCookie(server, s, "GET", "/v1/enrollments")).status, 401);
  });

  test("a session unused past the idle timeout ends; one in use stays", async () => {
    const idle = await signIn(server, "alice", PASSWORD);
    const busy = await signIn(server, "alice", PASSWORD);
    // 1.5 s idle timeout: the busy session is used every 0.4 s (it is written at most every 150 ms), the idle one not at all.
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 400));
      assert.equal((await withCookie(server, busy, "GET", "/v1/session")).status, 200, `busy session, use ${i + 1}`);
    }
    assert.equal((await withCookie(server, idle, "GET", "/v1/session")).status, 401);
  });

  test("a session past its absolute end is over, however busy", async () => {
    const short = await startTestServer(["--session-max-age", "1s"], backend);
    try {
      assert.equal((await short.api("POST", "/v1/operators", { name: "carol", role: "admin", password: PASSWORD })).status, 201);
      const s = await signIn(short, "carol", PASSWORD);
      assert.equal((await withCookie(short, s, "GET", "/v1/session")).status, 200);
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal((await withCookie(short, s, "GET", "/v1/session")).status, 401);
    } finally {
      await short.stop();
    }
  });

  test("disabling an operator or changing the password ends its sessions at once", async () => {
    assert.equal((await server.api("POST", "/v1/operators", { name: "dave", role: "operator", password: PASSWORD })).status, 201);
    const s = await signIn(server, "dave", PASSWORD);
    // Dave's browser from here on (this address is past its failures: unknown browsers are not heard).
    const browser = { cookie: s.setCookies.find((c) => c.startsWith("orchard_known="))!.split(";")[0]! };
    assert.equal((await server.api("PATCH", "/v1/operators/dave", { disabled: true })).status, 200);
    assert.equal((await withCookie(server, s, "GET", "/v1/enrollments")).status, 401);
    assert.equal((await signIn(server, "dave", PASSWORD, browser)).status, 401, "a disabled operator cannot sign in");
    assert.equal((await server.api("PATCH", "/v1/operators/dave", { disabled: false })).status, 200);
    const t = await signIn(server, "dave", PASSWORD, browser);
    assert.equal(t.status, 200);
    assert.equal((await server.api("PATCH", "/v1/operators/dave", { password: "a brand new passphrase" })).status, 200);
    assert.equal((await withCookie(server, t, "GET", "/v1/session")).status, 401);
    assert.equal((await signIn(server, "dave", "a brand new passphrase", browser)).status, 200);
  });

  test("sign-in throttling stops a guesser, and never locks out a browser that signed in before but for its own wrong passwords", async () => {
    // Addresses chosen by X-Forwarded-For from a trusted proxy: each part of the test has its own count.
    const proxied = await startTestServer(["--trust-proxy", "127.0.0.1", "--api-max-failures", "3"], backend);
    try {
      await proxied.api("POST", "/v1/operators", { name: "erin", role: "auditor", password: PASSWORD });
      await proxied.api("POST", "/v1/operators", { name: "frank", role: "auditor", password: PASSWORD });
      const from = (address: string, cookie?: string) => ({ "x-forwarded-for": address, ...(cookie ? { cookie } : {}) });
      // Erin's own browser signed in before: it holds a cookie that says so (for erin only).
      const first = await signIn(proxied, "erin", PASSWORD, from("192.0.2.10"));
      assert.equal(first.status, 200);
      const known = /orchard_known=([^;]*)/.exec(first.setCookies.find((c) => c.startsWith("orchard_known=")) ?? "");
      assert.ok(known, first.setCookies.join(" | "));
      const knownCookie = `orchard_known=${known[1]}`;
      assert.match(
        first.setCookies.find((c) => c.startsWith("orchard_known="))!,
        /HttpOnly; SameSite=Strict; Path=\/v1\/session; Max-Age=\d+/,
      );

      // A guesser at the same address: 3 wrong passwords are heard, then nothing is checked.
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await signIn(proxied, "erin", `wrong password ${i}`, from("192.0.2.10"))).status);
      assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
      const guessed = await signIn(proxied, "erin", PASSWORD, from("192.0.2.10"));
      assert.equal(guessed.status, 429, "the right password from an unknown browser past the limit is not checked: guessing is over");
      assert.ok(Number(guessed.headers.get("retry-after")) > 0);

      // Erin's browser is not held back, at that address or any other.
      assert.equal((await signIn(proxied, "erin", PASSWORD, from("192.0.2.10", knownCookie))).status, 200);
      // Its cookie is for erin alone, and a forged one is nothing.
      assert.equal((await signIn(proxied, "frank", PASSWORD, from("192.0.2.10", knownCookie))).status, 429);
      const forged = `orchard_known=frank:${"A".repeat(22)}`;
      assert.equal((await signIn(proxied, "frank", PASSWORD, from("192.0.2.10", forged))).status, 429);
      // Another address is not held back either.
      assert.equal((await signIn(proxied, "frank", PASSWORD, from("198.51.100.7"))).status, 200);

      // A copied known cookie buys no more guesses than an address: its holders share a count for the name, from anywhere.
      const copied: number[] = [];
      for (let i = 0; i < 4; i++) {
        copied.push((await signIn(proxied, "erin", `wrong password ${i}`, from(`203.0.113.${i + 1}`, knownCookie))).status);
      }
      assert.deepEqual(copied, [401, 401, 401, 429]);
      const right = await signIn(proxied, "erin", PASSWORD, from("203.0.113.9", knownCookie));
      assert.equal(right.status, 429, "past the name's limit a known browser's password is not checked either");
      // A browser without the cookie, at an address with no failures, is still heard.
      assert.equal((await signIn(proxied, "erin", PASSWORD, from("198.51.100.8"))).status, 200);
    } finally {
      await proxied.stop();
    }
  });
});
