// A credential of an operator guessing that operator's password through
// PUT /v1/me/password, a flood of password checks starving sign-in, the
// overload answers' log lines, and names the audit log gives non-accounts
// (review of the operator side, findings 1, 6 and 7).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const PASSWORD = "correct horse battery staple";

/** A request from `address` (a trusted proxy's X-Forwarded-For chooses it: each test has its own count). */
async function call(server: TestServer, method: string, path: string, o: { token?: string; address: string; body?: object }) {
  const headers: Record<string, string> = { "x-forwarded-for": o.address };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (o.body) headers["content-type"] = "application/json";
  const res = await fetch(server.url + path, { method, headers, body: o.body ? JSON.stringify(o.body) : undefined });
  const text = await res.text();
  return { status: res.status, text, retryAfter: res.headers.get("retry-after") };
}

const signIn = (server: TestServer, name: string, password: string, address: string) =>
  call(server, "POST", "/v1/session", { address, body: { name, password } });

const changePassword = (server: TestServer, token: string, current: string, address: string) =>
  call(server, "PUT", "/v1/me/password", { token, address, body: { current_password: current, new_password: PASSWORD } });

async function addWithToken(server: TestServer, name: string, role: string): Promise<string> {
  const added = await server.api("POST", "/v1/operators", { name, role, password: PASSWORD });
  assert.equal(added.status, 201, added.text);
  const made = await server.api("POST", "/v1/tokens", { label: "t", operator: name });
  assert.equal(made.status, 201, made.text);
  return made.json.token as string;
}

const count = (statuses: number[]) => statuses.reduce<Record<number, number>>((m, s) => ((m[s] = (m[s] ?? 0) + 1), m), {});

await forEachBackend("operator names the audit log reserves, and names taken ignoring case", (backend) => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer([], backend);
    assert.equal((await server.api("POST", "/v1/operators", { name: "alice", role: "admin", password: PASSWORD })).status, 201);
  });
  after(() => server.stop());

  test("api-key and anonymous (in any case) are no operator names: 400 with the reason", async () => {
    for (const name of ["api-key", "anonymous", "API-KEY", "Anonymous"]) {
      const r = await server.api("POST", "/v1/operators", { name, role: "auditor", password: PASSWORD });
      assert.equal(r.status, 400, `${name}: ${r.text}`);
      assert.equal(r.json.code, "invalid_parameter");
      assert.match(r.json.error, /reserved/);
    }
    assert.equal((await server.api("GET", "/v1/operators/api-key")).status, 404, "nothing was added");
    // Names that only contain them are fine.
    assert.equal((await server.api("POST", "/v1/operators", { name: "api-key-reader", role: "auditor", password: PASSWORD })).status, 201);
  });

  test("a name that differs from an existing one only in case is taken: 409 naming the existing one", async () => {
    for (const name of ["ALICE", "Alice"]) {
      const r = await server.api("POST", "/v1/operators", { name, role: "auditor", password: PASSWORD });
      assert.equal(r.status, 409, `${name}: ${r.text}`);
      assert.equal(r.json.code, "conflict");
      assert.match(r.json.error, /other letter case: alice/);
    }
    const same = await server.api("POST", "/v1/operators", { name: "alice", role: "auditor", password: PASSWORD });
    assert.equal(same.status, 409);
    assert.equal(same.json.error, "an operator has this name");
    const names = (await server.api("GET", "/v1/operators")).json.operators.map((o: { name: string }) => o.name);
    assert.deepEqual(
      names.filter((n: string) => n.toLowerCase() === "alice"),
      ["alice"],
    );
  });
});

await forEachBackend("guessing an operator's password through PUT /v1/me/password", (backend) => {
  let server: TestServer;
  let carol: string;
  before(async () => {
    server = await startTestServer(["--trust-proxy", "127.0.0.1", "--api-max-failures", "3"], backend);
    carol = await addWithToken(server, "carol", "auditor");
  });
  after(() => server.stop());

  test("wrong current passwords count per account, from any address: past the limit 429 with Retry-After, the right one unchecked", async () => {
    const dave = await addWithToken(server, "dave", "auditor");
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await changePassword(server, dave, `guess number ${i} xxxx`, `192.0.2.${30 + i}`)).status);
    assert.deepEqual(statuses, [403, 403, 403, 429, 429]);
    const right = await changePassword(server, dave, PASSWORD, "198.51.100.21");
    assert.equal(right.status, 429, "past the limit the right password is not checked, from another address either");
    assert.ok(Number(right.retryAfter) >= 1, String(right.retryAfter));
    assert.match(JSON.parse(right.text).error, /too many failed password checks/);
    // Another account is not held back, nor is the account's sign-in (its own count, per address).
    assert.equal((await changePassword(server, carol, PASSWORD, "192.0.2.30")).status, 204);
    assert.equal((await signIn(server, "dave", PASSWORD, "192.0.2.30")).status, 200);
  });

  test("strangers' wrong sign-ins, past the budget for all addresses, do not hold back a password change", async () => {
    for (let i = 0; i < 40; i++) await signIn(server, "nobody", `wrong password ${i}`, `203.0.113.${i + 1}`);
    assert.equal((await signIn(server, "carol", "wrong again", "203.0.113.200")).status, 429, "the sign-ins' budget is spent");
    assert.equal((await changePassword(server, carol, PASSWORD, "198.51.100.99")).status, 204);
  });

  test("a new password that breaks the rules is 400 before anything is checked or counted", async () => {
    const address = "192.0.2.23";
    for (let i = 0; i < 5; i++) {
      const r = await call(server, "PUT", "/v1/me/password", {
        token: carol,
        address,
        body: { current_password: `guess ${i}`, new_password: "short" },
      });
      assert.equal(r.status, 400, r.text);
      assert.match(JSON.parse(r.text).error, /new_password: a password has at least 12 characters/);
    }
    assert.equal((await changePassword(server, carol, PASSWORD, address)).status, 204, "nothing was counted");
  });

  test("no password reaches a log line", () => {
    const leaked = server.logs.filter((l) => l.includes("guess number") || l.includes(PASSWORD));
    assert.deepEqual(leaked, []);
  });
});

await forEachBackend("a flood of password checks and sign-in", (backend) => {
  let server: TestServer;
  let carol: string;
  before(async () => {
    // A limit far above the flood: what is tested here is the hash queue's share, not the failure count.
    server = await startTestServer(["--trust-proxy", "127.0.0.1", "--api-max-failures", "1000"], backend);
    carol = await addWithToken(server, "carol", "auditor");
    assert.equal((await server.api("POST", "/v1/operators", { name: "alice", role: "admin", password: PASSWORD })).status, 201);
  });
  after(() => server.stop());

  test("one account's flood of password-change guesses cannot keep the operators out: sign-in still answers 200", async () => {
    // 70 guesses at once from many addresses with carol's token: once the queue (2 running + 64 waiting) was full,
    // every sign-in was 503. Now the account holds at most its share; the rest are 503 at once, unhashed.
    const flood = Array.from({ length: 70 }, (_, i) => changePassword(server, carol, `guess ${i} in the flood`, `203.0.113.${i + 1}`));
    await new Promise((r) => setTimeout(r, 50));
    const signIns = await Promise.all(Array.from({ length: 3 }, (_, i) => signIn(server, "alice", PASSWORD, `198.51.100.${i + 1}`)));
    const guesses = (await Promise.all(flood)).map((r) => r.status);
    assert.deepEqual(
      signIns.map((s) => s.status),
      [200, 200, 200],
      signIns.map((s) => s.text).join(" | "),
    );
    const seen = count(guesses);
    assert.ok((seen[403] ?? 0) <= 8, JSON.stringify(seen));
    assert.equal((seen[403] ?? 0) + (seen[503] ?? 0), 70, JSON.stringify(seen));
  });

  test("one address's wrong sign-ins at once: no more are checked than the limit", async () => {
    const limited = await startTestServer(["--trust-proxy", "127.0.0.1", "--api-max-failures", "3"], backend);
    try {
      assert.equal((await limited.api("POST", "/v1/operators", { name: "alice", role: "admin", password: PASSWORD })).status, 201);
      const statuses = (
        await Promise.all(Array.from({ length: 30 }, (_, i) => signIn(limited, "alice", `wrong password ${i}`, "192.0.2.40")))
      ).map((r) => r.status);
      const seen = count(statuses);
      // Each counted as a failure before its hash (given back if right): those in flight at once cannot all
      // pass the check. 30 were checked before; the rest are 429, or 503 past the address's share of the queue.
      assert.ok((seen[401] ?? 0) <= 3, JSON.stringify(seen));
      assert.equal((seen[401] ?? 0) + (seen[429] ?? 0) + (seen[503] ?? 0), 30, JSON.stringify(seen));
      const later = await signIn(limited, "alice", "one more wrong pass", "192.0.2.40");
      assert.equal(later.status, (seen[401] ?? 0) >= 3 ? 429 : 401);
      // A right password given back its count: the address is not held by its own successes.
      for (let i = 0; i < 5; i++) assert.equal((await signIn(limited, "alice", PASSWORD, "192.0.2.41")).status, 200);
    } finally {
      await limited.stop();
    }
  });

  test("the overload answers (503 with Retry-After) are warnings without a stack, at most once a second with their count", () => {
    const lines = server.logs.map((l) => JSON.parse(l) as { level: number; msg: string; refused?: number; err?: unknown });
    assert.deepEqual(
      lines.filter((l) => l.level >= 50),
      [],
      "no error-level line: an overload is no bug",
    );
    const overloads = lines.filter((l) => l.msg === "request refused: overloaded");
    assert.ok(overloads.length >= 1 && overloads.length <= 5, `${overloads.length} lines`);
    assert.ok(
      overloads.every((l) => l.level === 40 && l.err === undefined),
      JSON.stringify(overloads[0]),
    );
    // The count is per process: a line may also count the last second's overloads of the servers before.
    assert.ok(
      overloads.every((l) => (l.refused ?? 0) >= 1),
      JSON.stringify(overloads),
    );
    // The flood's 60-odd 503s came within a second or two: those after the last line wait for the next overload.
  });
});
