// Operator accounts, personal API tokens and the audit log (issue #16), on
// both stores: scrypt hashes, the last admin kept, tokens shown once and
// capped by role, expired and revoked tokens refused, one audit entry per
// change (none per read), no secret in any of them.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { hashPassword, verifyPassword } from "../src/core/password.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const PASSWORD = "operators test password";

describe("scrypt password hashes", () => {
  test("verify the right password only, carry their parameters, and differ each time (salted)", async () => {
    const hash = await hashPassword(PASSWORD);
    assert.match(hash, /^\$scrypt\$ln=16,r=8,p=2\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    assert.equal(await verifyPassword(PASSWORD, hash), true);
    assert.equal(await verifyPassword(PASSWORD + " ", hash), false);
    assert.notEqual(await hashPassword(PASSWORD), hash);
    // A hash with other (readable) parameters still verifies: they are read from it.
    assert.equal(
      await verifyPassword("x", "$scrypt$ln=40,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$" + "A".repeat(43)),
      false,
      "out-of-bounds cost refused",
    );
    assert.equal(await verifyPassword("x", "not a hash"), false);
  });
});

function bearer(server: TestServer, token: string, method: string, path: string, body?: object) {
  return fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  }).then(async (res) => ({ status: res.status, json: (await res.json().catch(() => undefined)) as any }));
}

await forEachBackend("operator accounts, tokens and the audit log", (backend) => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer([], backend);
    for (const [name, role] of [
      ["root", "admin"],
      ["olga", "operator"],
      ["avi", "auditor"],
    ]) {
      const r = await server.api("POST", "/v1/operators", { name, role, password: PASSWORD });
      assert.equal(r.status, 201, r.text);
    }
  });
  after(() => server.stop());

  test("accounts: names, passwords and roles are checked; a name is taken once; the last admin stays", async () => {
    assert.equal((await server.api("POST", "/v1/operators", { name: "bad name", role: "admin", password: PASSWORD })).status, 400);
    assert.equal((await server.api("POST", "/v1/operators", { name: "shorty", role: "admin", password: "short" })).status, 400);
    assert.equal((await server.api("POST", "/v1/operators", { name: "rolex", role: "root", password: PASSWORD })).status, 400);
    assert.equal((await server.api("POST", "/v1/operators", { name: "olga", role: "admin", password: PASSWORD })).status, 409);
    const list = await server.api("GET", "/v1/operators");
    assert.deepEqual(
      list.json.operators.map((o: { name: string; role: string }) => `${o.name}:${o.role}`),
      ["avi:auditor", "olga:operator", "root:admin"],
    );
    assert.ok(!list.text.includes("scrypt"), "no hash in the list");
    assert.equal((await server.api("PATCH", "/v1/operators/root", { role: "operator" })).status, 409, "the last admin");
    assert.equal((await server.api("PATCH", "/v1/operators/root", { disabled: true })).status, 409);
    assert.equal((await server.api("DELETE", "/v1/operators/root")).status, 409);
    assert.equal((await server.api("PATCH", "/v1/operators/nobody", { role: "operator" })).status, 404);
  });

  test("tokens: shown once, stored hashed, role at most the owner's, used as Bearer, last use recorded", async () => {
    const made = await server.api("POST", "/v1/tokens", { operator: "olga", label: "ci", expires_in: "30d" });
    assert.equal(made.status, 201, made.text);
    assert.match(made.json.token, /^orchard_pat_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.equal(made.json.role, "operator");
    assert.equal(made.json.last_used_at, null);
    const days = (Date.parse(made.json.expires_at) - Date.now()) / 86_400_000;
    assert.ok(days > 29.9 && days <= 30, String(days));
    const listed = await server.api("GET", "/v1/tokens?operator=olga");
    assert.ok(!listed.text.includes(made.json.token) && !("token" in listed.json.tokens[0]), "the token is not shown again");

    const raised = await server.api("POST", "/v1/tokens", { operator: "olga", label: "x", role: "admin" });
    assert.equal(raised.status, 403, "no token above its owner's role");

    const used = await bearer(server, made.json.token, "PUT", "/v1/users/tokenuser", { password: "network user password" });
    assert.equal(used.status, 201);
    const after = await server.api("GET", "/v1/tokens?operator=olga");
    assert.ok(after.json.tokens.find((t: { id: string }) => t.id === made.json.id).last_used_at !== null);

    // A token cannot make tokens (a leaked one would outlive its revocation in them); an operator makes its own,
    // lower tokens signed in; an auditor token cannot change anything.
    const minted = await bearer(server, made.json.token, "POST", "/v1/tokens", { label: "read only", role: "auditor" });
    assert.equal(minted.status, 403);
    assert.match(JSON.stringify(minted.json), /cannot make tokens/);
    const own = await server.api("POST", "/v1/tokens", { operator: "olga", label: "read only", role: "auditor" });
    assert.equal(own.status, 201);
    assert.equal(own.json.operator, "olga");
    assert.equal((await bearer(server, own.json.token, "PUT", "/v1/users/tokenuser2", { password: "network user password" })).status, 403);
    assert.equal((await bearer(server, own.json.token, "GET", "/v1/users")).status, 200);
    assert.equal((await bearer(server, made.json.token, "POST", "/v1/tokens", { label: "y", operator: "avi" })).status, 403);
    // Someone else's tokens are not an operator's to see.
    assert.equal((await bearer(server, made.json.token, "GET", "/v1/tokens?operator=avi")).status, 403);
  });

  test("tokens: revoked, expired, or of a disabled or demoted owner, they stop at once", async () => {
    const a = (await server.api("POST", "/v1/tokens", { operator: "olga", label: "revoke me" })).json;
    assert.equal((await bearer(server, a.token, "GET", "/v1/me")).status, 200);
    const revoked = await bearer(server, a.token, "DELETE", `/v1/tokens/${a.id}`);
    assert.equal(revoked.status, 200);
    assert.ok(revoked.json.revoked_at);
    assert.equal((await bearer(server, a.token, "GET", "/v1/me")).status, 401);

    const b = (await server.api("POST", "/v1/tokens", { operator: "avi", label: "short", expires_in: "1s" })).json;
    assert.equal((await bearer(server, b.token, "GET", "/v1/me")).status, 200);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await bearer(server, b.token, "GET", "/v1/me")).status, 401);

    const c = (await server.api("POST", "/v1/tokens", { operator: "olga", label: "owner changes" })).json;
    assert.equal((await server.api("PATCH", "/v1/operators/olga", { role: "auditor" })).status, 200);
    assert.equal((await bearer(server, c.token, "GET", "/v1/me")).json.role, "auditor", "capped by the owner's role today");
    const listed = (await server.api("GET", "/v1/tokens?operator=olga")).json.tokens.find((t: { id: string }) => t.id === c.id);
    assert.deepEqual([listed.role, listed.effective_role], ["operator", "auditor"], "the listing says the role it acts with");
    assert.equal((await server.api("PATCH", "/v1/operators/olga", { role: "operator", disabled: true })).status, 200);
    assert.equal((await bearer(server, c.token, "GET", "/v1/me")).status, 401);
    assert.equal((await server.api("PATCH", "/v1/operators/olga", { disabled: false })).status, 200);
    assert.equal((await bearer(server, c.token, "GET", "/v1/me")).json.role, "operator");
    assert.equal(
      (await server.api("GET", "/v1/tokens?operator=olga")).json.tokens.find((t: { id: string }) => t.id === c.id).effective_role,
      "operator",
    );
    assert.equal((await server.api("POST", "/v1/tokens", { operator: "olga", label: "long", expires_in: "400d" })).status, 400);
  });

  test("the audit log: an entry per change with who, what, objects, address and result; none for reads; no secrets", async () => {
    const t = (await server.api("POST", "/v1/tokens", { operator: "olga", label: "audit" })).json;
    const before = (await server.api("GET", "/v1/audit?limit=1")).json.entries[0]?.id ?? 0;
    await bearer(server, t.token, "GET", "/v1/users");
    await bearer(server, t.token, "GET", "/v1/enrollments");
    // A POST that only checks (the console's declaration editor calls it as the operator types) is a read.
    const check = { Type: "com.apple.configuration.management.test", Identifier: "audit.check", Payload: { Echo: "x" } };
    assert.equal((await bearer(server, t.token, "POST", "/v1/declarations/validate", check)).status, 200);
    const secretPassword = "the network user's secret password";
    assert.equal((await bearer(server, t.token, "PUT", "/v1/users/audited", { password: secretPassword })).status, 201);
    assert.equal((await bearer(server, t.token, "POST", "/v1/operators", { name: "eve", role: "admin", password: PASSWORD })).status, 403);
    assert.equal((await server.api("PATCH", "/v1/operators/avi", { password: "avi's brand new password" })).status, 200);
    const res = await fetch(server.url + "/v1/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "avi", password: "a wrong password here" }),
    });
    assert.equal(res.status, 401);

    const log = await server.api("GET", "/v1/audit");
    const fresh = log.json.entries.filter((e: { id: number }) => e.id > before).reverse();
    const brief = fresh.map((e: any) => `${e.actor} ${e.credential} ${e.action} ${e.method} ${e.route} ${e.objects.join(",")} ${e.status}`);
    assert.deepEqual(brief, [
      `olga token:${t.id} user.put PUT /v1/users/:short_name audited 201`,
      // Refused before its body was read: no objects.
      `olga token:${t.id} operator.add POST /v1/operators  403`,
      "api-key api-key operator.change PATCH /v1/operators/:name avi 200",
      "anonymous password session.sign_in POST /v1/session  401",
    ]);
    assert.ok(fresh.every((e: { address: string; at: string }) => e.address === "127.0.0.1" && !Number.isNaN(Date.parse(e.at))));
    const everything = JSON.stringify(log.json);
    for (const secret of [secretPassword, PASSWORD, "avi's brand new password", "a wrong password here", t.token]) {
      assert.ok(!everything.includes(secret), `no secret in the audit log: ${secret.slice(0, 12)}`);
      assert.ok(!server.logs.some((l) => l.includes(secret)), `no secret in the server's log: ${secret.slice(0, 12)}`);
    }
  });

  test("an id with control characters (a NUL) is refused and still audited, written as \\u0000", async () => {
    const r = await server.api("PUT", "/v1/ddm/assets/a%00b", Buffer.from("x"));
    assert.equal(r.status, 400, r.text);
    const entry = (await server.api("GET", "/v1/audit?action=ddm.asset_put&limit=1")).json.entries[0];
    assert.ok(entry, "the refused change has its entry");
    assert.deepEqual(entry.objects, ["a\\u0000b"]);
    assert.equal(entry.status, 400);
    assert.ok(!server.logs.some((l) => l.includes("audit entry not written")), "no entry was lost");
  });

  test("retention: old audit entries (with their objects), ended sessions and long-ended tokens are deleted", async () => {
    const { store } = server;
    const now = Date.now();
    const old = await store.audit.add({
      at: now - 400 * 86_400_000,
      actor: "root",
      credential: "session",
      action: "user.put",
      method: "PUT",
      route: "/v1/users/:short_name",
      objects: ["retention-old"],
      address: "127.0.0.1",
      status: 201,
    });
    assert.equal((await store.audit.list({ object: "retention-old", limit: 10 }))[0]?.id, old);
    assert.ok((await store.audit.prune(now - 365 * 86_400_000)) >= 1);
    assert.deepEqual(await store.audit.list({ object: "retention-old", limit: 10 }), []);
    const orphans = await store.db.get<{ n: number | string }>("SELECT COUNT(*) AS n FROM audit_objects WHERE entry_id = ?", [old]);
    assert.equal(Number(orphans!.n), 0);
    assert.ok((await store.audit.list({ limit: 1 })).length === 1, "recent entries stay");

    await store.operators.addSession(
      { idHash: "a".repeat(64), operator: "avi", expiresAt: now + 3_600_000, address: null },
      now - 7_200_000,
    );
    await store.operators.addSession({ idHash: "b".repeat(64), operator: "avi", expiresAt: now + 3_600_000, address: null }, now);
    await store.operators.addToken(
      {
        id: "retention0000001",
        operator: "avi",
        label: "old",
        role: "auditor",
        tokenHash: "c".repeat(64),
        expiresAt: now - 40 * 86_400_000,
      },
      now - 50 * 86_400_000,
    );
    await store.operators.prune(now, 3_600_000, now - 30 * 86_400_000);
    assert.equal(await store.operators.session("a".repeat(64)), undefined, "idle past the timeout");
    assert.ok(await store.operators.session("b".repeat(64)));
    assert.equal(await store.operators.token("retention0000001"), undefined);
  });

  test("the audit log filters by who, action, object and time, and pages newest first", async () => {
    const byObject = await server.api("GET", "/v1/audit?object=audited");
    assert.deepEqual(
      byObject.json.entries.map((e: { action: string }) => e.action),
      ["user.put"],
    );
    const byActor = await server.api("GET", "/v1/audit?actor=olga&action=operator.add");
    assert.equal(byActor.json.entries.length, 1);
    const future = await server.api("GET", `/v1/audit?since=${new Date(Date.now() + 60_000).toISOString()}`);
    assert.deepEqual(future.json.entries, []);
    const past = await server.api("GET", `/v1/audit?until=2000-01-01T00:00:00Z`);
    assert.deepEqual(past.json.entries, []);
    const page1 = await server.api("GET", "/v1/audit?limit=2");
    assert.equal(page1.json.entries.length, 2);
    assert.ok(page1.json.entries[0].id > page1.json.entries[1].id);
    const page2 = await server.api("GET", `/v1/audit?limit=2&cursor=${page1.json.next_cursor}`);
    assert.ok(page2.json.entries[0].id < page1.json.entries[1].id);
    assert.equal((await server.api("GET", "/v1/audit?since=yesterday")).status, 400);
    const impossible = await server.api("GET", "/v1/audit?until=2026-02-30T00:00:00Z");
    assert.equal(impossible.status, 400);
    assert.match(impossible.json.error, /^until must be an RFC 3339 time .*names a day or time that does not exist$/);
  });
});

describe("the answers match the OpenAPI document", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  test("sessions, accounts, tokens, me and the audit log", async () => {
    const { Ajv2020 } = await import("ajv/dist/2020.js");
    const { OPENAPI } = await import("../src/http/openapi.ts");
    const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
    ajv.addSchema({ $id: "orchard", components: OPENAPI.components });
    const check = (name: string, value: unknown) => {
      const validate = ajv.getSchema(`orchard#/components/schemas/${name}`)!;
      assert.ok(validate(value), `${name}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value)}`);
    };
    const added = await server.api("POST", "/v1/operators", { name: "schema", role: "operator", password: PASSWORD });
    check("Operator", added.json);
    check("OperatorPage", (await server.api("GET", "/v1/operators")).json);
    const signed = await fetch(server.url + "/v1/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "schema", password: PASSWORD }),
    });
    check("Session", await signed.json());
    const token = await server.api("POST", "/v1/tokens", { operator: "schema", label: "schema" });
    check("TokenCreated", token.json);
    check("TokenPage", (await server.api("GET", "/v1/tokens")).json);
    check("Me", (await bearer(server, token.json.token, "GET", "/v1/me")).json);
    check("Token", (await server.api("DELETE", `/v1/tokens/${token.json.id}`)).json);
    check("AuditPage", (await server.api("GET", "/v1/audit")).json);
    check("OperatorRemoved", (await server.api("DELETE", "/v1/operators/schema")).json);
  });
});

await forEachBackend("the last admin, under concurrent changes", (backend) => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer([], backend);
  });
  after(() => server.stop());

  test("two admins demoted, disabled or removed at once: one of them stays an enabled admin", async () => {
    const changes: Array<[string, (name: string) => Promise<{ status: number }>]> = [
      ["demote", (name) => server.api("PATCH", `/v1/operators/${name}`, { role: "operator" })],
      ["disable", (name) => server.api("PATCH", `/v1/operators/${name}`, { disabled: true })],
      ["remove", (name) => server.api("DELETE", `/v1/operators/${name}`)],
    ];
    for (let round = 0; round < 6; round++) {
      const [what, change] = changes[round % changes.length]!;
      const names = [`race${round}a`, `race${round}b`];
      for (const name of names)
        assert.equal((await server.api("POST", "/v1/operators", { name, role: "admin", password: PASSWORD })).status, 201);
      // Every other admin left from the rounds before is demoted first: these two are the only ones.
      for (const o of (await server.api("GET", "/v1/operators?limit=1000")).json.operators as Array<{
        name: string;
        role: string;
        disabled: boolean;
      }>) {
        if (o.role === "admin" && !o.disabled && !names.includes(o.name)) {
          assert.equal((await server.api("PATCH", `/v1/operators/${o.name}`, { role: "operator" })).status, 200);
        }
      }
      const statuses = (await Promise.all(names.map((n) => change(n)))).map((r) => r.status).sort();
      assert.deepEqual(statuses, [200, 409], `${what}: ${statuses}`);
      const admins = (
        (await server.api("GET", "/v1/operators?limit=1000")).json.operators as Array<{ role: string; disabled: boolean }>
      ).filter((o) => o.role === "admin" && !o.disabled);
      assert.equal(admins.length, 1, what);
    }
  });
});
