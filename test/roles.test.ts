// Roles on every API route (issue #16): each registered /v1 route is tried
// with a token of each role; a role below the route's (http/route-roles.ts)
// gets 403, one at or above it never does. A route missing from the table
// fails here, and answers 403 to all but admins at run time.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import Fastify from "fastify";
import pino from "pino";
import { allows, OperatorAuth } from "../src/core/operator-auth.ts";
import { ApiFailureLimiter } from "../src/http/limits.ts";
import { apiGuard } from "../src/http/operator-auth.ts";
import { READ_ONLY_POSTS, ROUTE_ROLES, routeRule } from "../src/http/route-roles.ts";
import { openStore, type Store } from "../src/store/index.ts";
import { ROLES, type Role } from "../src/store/operators.ts";
import { registeredRoutes } from "./support/routes.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const PASSWORD = "roles test password 1234";

describe("the role of every API route", () => {
  let server: TestServer;
  const tokens = new Map<Role, string>();
  before(async () => {
    server = await startTestServer();
    for (const role of ROLES) {
      const name = `roles-${role}`;
      assert.equal((await server.api("POST", "/v1/operators", { name, role, password: PASSWORD })).status, 201);
      const made = await server.api("POST", "/v1/tokens", { operator: name, label: "roles test" });
      assert.equal(made.status, 201, made.text);
      assert.equal(made.json.role, role);
      tokens.set(role, made.json.token);
    }
  });
  after(() => server.stop());

  test("every registered /v1 route has a role, and every role in the table is a registered route", () => {
    const registered = registeredRoutes(server.app).filter((r) => r.url.startsWith("/v1/"));
    assert.ok(registered.length > 50, `${registered.length} routes`);
    const missing = registered.filter((r) => routeRule(r.method, r.url) === undefined).map((r) => `${r.method} ${r.url}`);
    assert.deepEqual(missing, [], "routes without a role in src/http/route-roles.ts");
    const keys = new Set(registered.map((r) => `${r.method} ${r.url}`));
    assert.deepEqual(
      Object.keys(ROUTE_ROLES).filter((k) => !keys.has(k)),
      [],
      "rows of src/http/route-roles.ts that name no route",
    );
    const silentChanges = registered.filter(
      (r) => r.method !== "GET" && !READ_ONLY_POSTS.has(`${r.method} ${r.url}`) && routeRule(r.method, r.url)?.action === undefined,
    );
    assert.deepEqual(silentChanges, [], "changes without an audit action");
  });

  test("each route answers 403 to a role below its own, and never to one at or above it", async () => {
    const routes = registeredRoutes(server.app).filter((r) => r.url.startsWith("/v1/"));
    const wrong: string[] = [];
    let tried = 0;
    // Lowest role first: the admin's calls (which may change things) come last.
    for (const role of ROLES) {
      for (const { method, url } of routes) {
        const rule = routeRule(method, url)!;
        if (rule.role === "public") continue;
        // Made-up ids: the route finds nothing, or refuses the empty body, after the guard let it in.
        const filled = url.replace(/:[A-Za-z_]+/g, "roles-test-nothing");
        const res = await fetch(server.url + filled, {
          method,
          headers: { authorization: `Bearer ${tokens.get(role)}`, ...(method === "GET" ? {} : { "content-type": "application/json" }) },
          body: method === "GET" ? undefined : "{}",
        });
        const text = await res.text();
        tried++;
        const refused = res.status === 403;
        // Tokens are made signed in or with the API key, never with a token (operators.test.ts): refused for every role.
        if (method === "POST" && url === "/v1/tokens") {
          if (!refused) wrong.push(`${role} POST /v1/tokens with a token: ${res.status}, not 403`);
          continue;
        }
        if (refused !== !allows(role, rule.role))
          wrong.push(`${role} ${method} ${url}: ${res.status} (needs ${rule.role}) ${text.slice(0, 120)}`);
        // NanoMDM's push answers 500 with its per-id status when no push went out (here: no push certificate).
        const nanoMdmResult = res.status === 500 && text.startsWith('{"status":');
        if (res.status === 401 || (res.status >= 500 && !nanoMdmResult))
          wrong.push(`${role} ${method} ${url}: ${res.status} ${text.slice(0, 120)}`);
      }
    }
    assert.deepEqual(wrong, []);
    assert.ok(tried > 150, `${tried} requests`);
  });

  test("the shared API key is the admin role; a personal token works as the Basic password too", async () => {
    const basic = (secret: string) => ({ authorization: "Basic " + Buffer.from(`orchard:${secret}`).toString("base64") });
    assert.equal((await fetch(server.url + "/v1/operators", { headers: basic("test-api-key-0123456789abcdef") })).status, 200);
    const me = await fetch(server.url + "/v1/me", { headers: basic(tokens.get("auditor")!) });
    assert.equal(me.status, 200);
    assert.equal(((await me.json()) as { role: string }).role, "auditor");
    assert.equal((await fetch(server.url + "/v1/operators", { headers: basic(tokens.get("operator")!) })).status, 403);
  });
});

describe("a route nobody gave a role", () => {
  let dir: string;
  let store: Store;
  let app: ReturnType<typeof Fastify>;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-roles-"));
    store = await openStore(undefined, dir);
    app = Fastify({ loggerInstance: pino({ level: "silent" }) });
    app.decorateRequest("actor", undefined);
    const auth = new OperatorAuth(store, { idleMs: 60_000, absoluteMs: 3_600_000 });
    app.addHook("onRequest", apiGuard({ apiKey: "test-api-key-0123456789abcdef", auth, limiter: new ApiFailureLimiter(50, 60_000) }));
    app.get("/v1/undeclared", async () => ({ ok: true }));
    await auth.add("undeclared-op", "operator", PASSWORD);
    await auth.add("undeclared-admin", "admin", PASSWORD);
  });
  after(async () => {
    await app.close();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("is the admin's alone", async () => {
    assert.equal(routeRule("GET", "/v1/undeclared"), undefined);
    const auth = new OperatorAuth(store, { idleMs: 60_000, absoluteMs: 3_600_000 });
    const op = await auth.createToken("undeclared-op", { label: "t", creatorRole: "admin" });
    const admin = await auth.createToken("undeclared-admin", { label: "t", creatorRole: "admin" });
    const call = (secret: string) => app.inject({ method: "GET", url: "/v1/undeclared", headers: { authorization: `Bearer ${secret}` } });
    assert.equal((await call(op.secret)).statusCode, 403);
    assert.equal((await call(admin.secret)).statusCode, 200);
    const key = await app.inject({
      method: "GET",
      url: "/v1/undeclared",
      headers: { authorization: "Basic " + Buffer.from("x:test-api-key-0123456789abcdef").toString("base64") },
    });
    assert.equal(key.statusCode, 200);
  });
});
