// The API contract: GET /v1/openapi.json describes exactly the routes the
// server registers, and real answers (successes and errors, on both stores)
// validate against the schemas it documents for them.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import { ERROR_CODES } from "../src/errors.ts";
import { OPENAPI } from "../src/http/openapi.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist, identity, plist, RawDevice } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

type Responses = Record<string, { content?: Record<string, { schema: object }> }>;
type Doc = typeof OPENAPI & { paths: Record<string, Record<string, { responses: Responses }>> };
const doc = OPENAPI as Doc;
const METHODS = ["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"] as const;

/**
 * Every method and path Fastify registered, from printRoutes' tree (one tree
 * per method, so routes sharing a node stay apart), as `GET /v1/users/{short_name}`.
 * HEAD is left out: Fastify answers it wherever GET is (the document says so).
 */
function registeredRoutes(server: TestServer): Set<string> {
  const routes = new Set<string>();
  for (const method of METHODS) {
    const stack: string[] = [];
    for (const line of server.app.printRoutes({ method, commonPrefix: false }).split("\n")) {
      const m = /^(.*?)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
      if (!m) continue;
      const depth = m[1]!.length / 4;
      stack.length = depth;
      stack.push(m[2]!);
      if (m[3]?.split(", ").includes(method)) routes.add(`${method} ${stack.join("").replace(/:([A-Za-z_]+)/g, "{$1}")}`);
    }
  }
  return routes;
}

function documentedRoutes(): Set<string> {
  const routes = new Set<string>();
  for (const [path, ops] of Object.entries(doc.paths)) for (const method of Object.keys(ops)) routes.add(`${method.toUpperCase()} ${path}`);
  return routes;
}

const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
ajv.addSchema({ $id: "orchard", components: doc.components });

/** Asserts that a JSON answer is what the document says this route answers with this status. */
function assertDocumented(method: string, path: string, r: { status: number; json: unknown; text: string }): void {
  const op = doc.paths[path]?.[method.toLowerCase()];
  assert.ok(op, `${method} ${path} is not documented`);
  const response = op.responses[String(r.status)];
  assert.ok(response, `${method} ${path} answered ${r.status}, which is not documented: ${r.text}`);
  const schema = response.content?.["application/json"]?.schema;
  assert.ok(schema, `${method} ${path} ${r.status} has no JSON schema`);
  const validate = ajv.compile(rebase(schema));
  assert.ok(validate(r.json), `${method} ${path} ${r.status}: ${ajv.errorsText(validate.errors)}\n${r.text}`);
}

/** The document's `#/components/...` references, resolved against the schema added above. */
function rebase(schema: object): object {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"orchard#/components/'));
}

describe("the OpenAPI document", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  test("names every registered route, and every route it names is registered", () => {
    const registered = registeredRoutes(server);
    const documented = documentedRoutes();
    assert.ok(registered.has("GET /v1/enrollments") && registered.has("PUT /v1/users/{short_name}"), [...registered].join("\n"));
    assert.deepEqual([...registered].filter((r) => !documented.has(r)).sort(), [], "registered but not documented");
    assert.deepEqual([...documented].filter((r) => !registered.has(r)).sort(), [], "documented but not registered");
  });

  test("docs/api.md's route table names every method and path the document has, and only those", () => {
    // Paths compared with their parameters unnamed ({ids} in the table is {id} in the document) and queries dropped.
    const bare = (p: string) => p.replace(/\{[^}]*\}/g, "{}").replace(/\?.*$/, "");
    const md = fs.readFileSync(path.join(import.meta.dirname, "..", "docs", "api.md"), "utf8");
    const rows = md
      .slice(md.indexOf("## Routes"))
      .split("\n")
      .filter((l) => l.startsWith("| `"));
    // A row's first cell reads "`GET`, `PUT /v1/x`, `/v1/y`": bare methods go with the next path, a bare path
    // takes the methods of the one before.
    const inTable = new Set<string>();
    for (const row of rows) {
      let pending: string[] = [];
      let last: string[] = [];
      for (const [, token] of row.split(" | ")[0]!.matchAll(/`([^`]+)`/g)) {
        const m = /^(?:([A-Z]+) )?(\/\S*)/.exec(token!);
        if (!m) {
          if (/^[A-Z]+$/.test(token!)) pending.push(token!);
          continue;
        }
        const methods = m[1] ? [...pending, m[1]] : pending.length > 0 ? pending : last;
        for (const method of methods) inTable.add(`${method} ${bare(m[2]!)}`);
        last = methods;
        pending = [];
      }
    }
    const inDocument = new Set(
      Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${bare(p)}`)),
    );
    assert.ok(inTable.has("PATCH /v1/operators/{}") && inTable.has("GET /v1/users/{}"), [...inTable].join("\n"));
    assert.deepEqual([...inDocument].filter((r) => !inTable.has(r)).sort(), [], "in the document, not in docs/api.md's table");
    assert.deepEqual([...inTable].filter((r) => !inDocument.has(r)).sort(), [], "in docs/api.md's table, not in the document");
  });

  test("is served at /v1/openapi.json behind the API key, and is OpenAPI 3.1 with HTTP Basic security", async () => {
    const r = await server.api("GET", "/v1/openapi.json");
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, JSON.parse(JSON.stringify(OPENAPI)));
    assert.equal(r.json.openapi, "3.1.0");
    const { type, scheme } = r.json.components.securitySchemes.basic;
    assert.deepEqual({ type, scheme }, { type: "http", scheme: "basic" });
    assert.deepEqual(r.json.security, [{ basic: [] }, { bearer: [] }, { session: [] }]);
    const anonymous = await fetch(server.url + "/v1/openapi.json");
    assert.equal(anonymous.status, 401);
    assertDocumented("GET", "/v1/openapi.json", { status: 401, json: await anonymous.json(), text: "" });
  });

  test("every schema reference resolves and the error codes are the server's", () => {
    for (const name of Object.keys(doc.components.schemas)) ajv.getSchema(`orchard#/components/schemas/${name}`);
    const text = JSON.stringify(doc);
    for (const [, name] of text.matchAll(/"#\/components\/schemas\/([A-Za-z]+)"/g)) assert.ok(name! in doc.components.schemas, name);
    const error = doc.components.schemas.Error as { properties: { code: { enum: string[] } } };
    assert.deepEqual(error.properties.code.enum, [...ERROR_CODES]);
  });
});

await forEachBackend("real answers match the OpenAPI document", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  let device: RawDevice;
  let commandUuid: string;

  before(async () => {
    server = await startTestServer([], backend);
    fleet = await testFleet(server.url);
    device = new RawDevice(fleet.transport, await identity(fleet), "OPENAPI-DEVICE-1");
    await device.enroll();
    const enqueued = await server.api("PUT", `/v1/enqueue/${device.udid}?nopush=1`, commandPlist("DeviceInformation"));
    assert.equal(enqueued.status, 200, enqueued.text);
    assertDocumented("PUT", "/v1/enqueue/{ids}", enqueued);
    commandUuid = enqueued.json.command_uuid;
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  test("enrollments, queues, commands and events: snake_case keys and RFC 3339 times", async () => {
    const list = await server.api("GET", "/v1/enrollments");
    assertDocumented("GET", "/v1/enrollments", list);
    assert.match(list.json.enrollments[0].created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assertDocumented("GET", "/v1/enrollments/{id}", await server.api("GET", `/v1/enrollments/${device.udid}`));
    assertDocumented("GET", "/v1/queue/{id}", await server.api("GET", `/v1/queue/${device.udid}`));

    const idle = await device.report("Idle");
    assert.equal(idle.status, 200);
    assert.equal((await device.report("Acknowledged", { CommandUUID: commandUuid, QueryResponses: { DeviceName: "d" } })).status, 200);
    const command = await server.api("GET", `/v1/commands/${commandUuid}`);
    assertDocumented("GET", "/v1/commands/{uuid}", command);
    assert.equal(command.json.results[0].status, "Acknowledged");
    assert.equal(command.json.results[0].result.QueryResponses.DeviceName, "d");

    const events = await server.api("GET", "/v1/events?order=desc");
    assertDocumented("GET", "/v1/events", events);
    assert.ok(events.json.events.length > 0);
    const authenticated = events.json.events.find((e: { type: string }) => e.type === "device.authenticated");
    assert.deepEqual(authenticated?.detail, { serial_number: `SN${device.udid.slice(0, 8)}` });

    // The console's reads: one channel's history and answer, the overview, search and filters.
    const history = await server.api("GET", `/v1/enrollments/${device.udid}/commands`);
    assertDocumented("GET", "/v1/enrollments/{id}/commands", history);
    assert.equal(history.json.commands[0].command_uuid, commandUuid);
    assertDocumented("GET", "/v1/commands/{uuid}", await server.api("GET", `/v1/commands/${commandUuid}?enrollment=${device.udid}`));
    const fleetAnswer = await server.api("GET", "/v1/fleet");
    assertDocumented("GET", "/v1/fleet", fleetAnswer);
    assert.equal(fleetAnswer.json.not_seen.length, 3);
    const found = await server.api("GET", `/v1/enrollments?q=${device.udid.slice(2, 10).toLowerCase()}&type=Device,UserEnrollmentDevice`);
    assertDocumented("GET", "/v1/enrollments", found);
    assert.deepEqual(
      found.json.enrollments.map((e: { id: string }) => e.id),
      [device.udid],
    );
    assertDocumented("GET", "/v1/enrollments", await server.api("GET", "/v1/enrollments?seen_before=yesterday"));

    assertDocumented("DELETE", "/v1/queue/{id}", await server.api("DELETE", `/v1/queue/${device.udid}`));
    assertDocumented("GET", "/v1/enrollments/{id}/rebind", await server.api("GET", `/v1/enrollments/${device.udid}/rebind`));
  });

  test("event details have snake_case keys, also those an earlier version wrote in camelCase", async () => {
    const detail = { serialNumber: "OLD-1", commands: [{ commandUuid: "C1", enrollment_id: "E1" }] };
    // As an earlier version wrote it: straight into the table.
    await server.store.db.run("INSERT INTO events (at, type, enrollment_id, detail) VALUES (?, ?, ?, ?)", [
      Date.now(),
      "device.queue_discarded",
      device.udid,
      JSON.stringify(detail),
    ]);
    const r = await server.api("GET", `/v1/events?type=device.queue_discarded&enrollment=${device.udid}`);
    assertDocumented("GET", "/v1/events", r);
    assert.deepEqual(r.json.events[0].detail, { serial_number: "OLD-1", commands: [{ command_uuid: "C1", enrollment_id: "E1" }] });
  });

  test("users, sessions, push certificates, SCEP challenges and the open routes", async () => {
    const alice = { password: "pw", full_name: "Alice A", guid: "6e8b4a32-8a2b-4c1b-9f5e-0c1d2e3f4a5b" };
    const put = await server.api("PUT", "/v1/users/alice", alice);
    assert.equal(put.status, 201, put.text);
    assertDocumented("PUT", "/v1/users/{short_name}", put);
    assert.equal(put.json.full_name, "Alice A");
    assertDocumented("GET", "/v1/users/{short_name}", await server.api("GET", "/v1/users/alice"));
    assertDocumented("GET", "/v1/users", await server.api("GET", "/v1/users"));
    const htdigest = "bob:other-realm:0123456789abcdef0123456789abcdef\n";
    assertDocumented("POST", "/v1/users/import", await server.api("POST", "/v1/users/import", htdigest));
    assertDocumented("GET", "/v1/user-sessions", await server.api("GET", "/v1/user-sessions"));
    assertDocumented("DELETE", "/v1/users/{short_name}", await server.api("DELETE", "/v1/users/alice"));
    assertDocumented("GET", "/v1/pushcert", await server.api("GET", "/v1/pushcert"));
    assertDocumented("POST", "/v1/scep/challenges", await server.api("POST", "/v1/scep/challenges", { ttl: "5m" }));
    assertDocumented("POST", "/v1/push/{ids}", await server.api("POST", `/v1/push/${device.udid}`));
    for (const path of ["/healthz", "/version"]) {
      const res = await fetch(server.url + path);
      assertDocumented("GET", path, { status: res.status, json: await res.json(), text: "" });
    }
  });

  test("DDM assets and stored profiles (docs/declarative-management.md)", async () => {
    const profile = plist({ PayloadType: "Configuration", PayloadIdentifier: "com.example.p", PayloadUUID: "U-1", PayloadVersion: 1 });
    for (const [kind, id, bytes] of [
      ["assets", "openapi-asset", Buffer.from("asset bytes")],
      ["profiles", "openapi-profile", profile],
    ] as const) {
      const created = await server.api("PUT", `/v1/ddm/${kind}/${id}`, bytes);
      assert.equal(created.status, 201, created.text);
      assertDocumented("PUT", `/v1/ddm/${kind}/{id}`, created);
      assertDocumented("PUT", `/v1/ddm/${kind}/{id}`, await server.api("PUT", `/v1/ddm/${kind}/${id}`, bytes));
      assertDocumented("GET", `/v1/ddm/${kind}/{id}`, await server.api("GET", `/v1/ddm/${kind}/${id}`));
      assertDocumented("GET", `/v1/ddm/${kind}`, await server.api("GET", `/v1/ddm/${kind}`));
      assertDocumented("GET", `/v1/ddm/${kind}/{id}`, await server.api("GET", `/v1/ddm/${kind}/.bad`));
      assertDocumented("GET", `/v1/ddm/${kind}/{id}/data`, await server.api("GET", `/v1/ddm/${kind}/no-such/data`));
      assertDocumented("DELETE", `/v1/ddm/${kind}/{id}`, await server.api("DELETE", `/v1/ddm/${kind}/${id}`));
      assertDocumented("DELETE", `/v1/ddm/${kind}/{id}`, await server.api("DELETE", `/v1/ddm/${kind}/${id}`));
    }
    const notProfile = await server.api("PUT", "/v1/ddm/profiles/x", "not a profile");
    assert.equal(notProfile.json.code, "invalid_profile");
    assertDocumented("PUT", "/v1/ddm/profiles/{id}", notProfile);
  });

  test("errors carry the message and a stable code", async () => {
    const cases: Array<[string, string, string, number, string, unknown?]> = [
      ["GET", `/v1/enrollments/NO-SUCH-DEVICE`, "/v1/enrollments/{id}", 404, "not_found"],
      ["GET", "/v1/enrollments?limit=0", "/v1/enrollments", 400, "invalid_parameter"],
      ["GET", "/v1/events?since=yesterday", "/v1/events", 400, "invalid_parameter"],
      ["PUT", "/v1/users/bad%3Aname", "/v1/users/{short_name}", 400, "invalid_short_name", {}],
      ["PUT", "/v1/users/carol", "/v1/users/{short_name}", 400, "invalid_guid", { guid: "not-a-guid" }],
      ["PUT", "/v1/users/carol", "/v1/users/{short_name}", 400, "unknown_field", { fullName: "old casing" }],
      ["PUT", "/v1/users/carol", "/v1/users/{short_name}", 400, "duplicate_json_key", '{"state":"managed","state":"declined"}'],
      ["PUT", "/v1/users/carol", "/v1/users/{short_name}", 400, "invalid_json", "[1"],
      ["PUT", "/v1/users/carol", "/v1/users/{short_name}", 413, "payload_too_large", { guid: "x".repeat(70_000) }],
      ["POST", `/v1/enrollments/${"OPENAPI-DEVICE-1"}/rebind`, "/v1/enrollments/{id}/rebind", 400, "invalid_fingerprint"],
      ["PUT", "/v1/pushcert", "/v1/pushcert", 400, "invalid_push_certificate", "not a certificate"],
      ["PUT", `/v1/enqueue/OPENAPI-DEVICE-1`, "/v1/enqueue/{ids}", 400, "invalid_command", "not a plist"],
    ];
    for (const [method, url, path, status, code, body] of cases) {
      const r = await server.api(method, url, body as string | object | undefined);
      assert.equal(r.status, status, `${method} ${url}: ${r.text}`);
      assert.equal(r.json.code, code, `${method} ${url}: ${r.text}`);
      assert.equal(typeof r.json.error, "string");
      assertDocumented(method, path, r);
    }
    const noRoute = await server.api("GET", "/v1/no-such-route");
    assert.equal(noRoute.status, 404);
    assert.deepEqual(noRoute.json, { error: "not found", code: "no_such_route" });
    const authorization = "Basic " + Buffer.from("x:wrong").toString("base64");
    const wrongKey = await fetch(server.url + "/v1/enrollments", { headers: { authorization } });
    assert.equal(wrongKey.status, 401);
    assert.deepEqual(await wrongKey.json(), { error: "missing or wrong API key", code: "unauthorized" });
  });

  test("DDM (KMFDDM's shapes, and set compliance)", async () => {
    /** A documented answer without a body (204, 304). */
    const noBody = async (method: string, url: string, path: string, status: number, body?: object) => {
      const r = await server.api(method, url, body);
      assert.equal(r.status, status, `${method} ${url}: ${r.text}`);
      assert.ok(doc.paths[path]?.[method.toLowerCase()]?.responses[String(status)], `${method} ${path} ${status} is not documented`);
    };
    const decl = { Type: "com.apple.configuration.management.test", Identifier: "com.example.openapi", Payload: { Echo: "x" } };
    await noBody("PUT", "/v1/declarations", "/v1/declarations", 204, decl);
    await noBody("PUT", "/v1/declarations", "/v1/declarations", 304, decl);
    await noBody("POST", "/v1/declarations/com.example.openapi/touch", "/v1/declarations/{id}/touch", 204);
    await noBody("PUT", "/v1/set-declarations/s1?declaration=com.example.openapi", "/v1/set-declarations/{id}", 204);
    await noBody("PUT", `/v1/enrollment-sets/${device.udid}?set=s1&nonotify=1`, "/v1/enrollment-sets/{id}", 204);
    await noBody("POST", `/v1/notify?id=${device.udid}&set=s1`, "/v1/notify", 204);
    assertDocumented("GET", "/v1/declarations", await server.api("GET", "/v1/declarations"));
    const check = await server.api("POST", "/v1/declarations/validate", { ...decl, Payload: { Echo: 1 } });
    assertDocumented("POST", "/v1/declarations/validate", check);
    assert.equal(check.json.valid, false);
    assertDocumented("POST", "/v1/declarations/validate", await server.api("POST", "/v1/declarations/validate", decl));
    assertDocumented("POST", "/v1/declarations/validate", await server.api("POST", "/v1/declarations/validate", "[1]"));
    assertDocumented("GET", "/v1/declarations/{id}", await server.api("GET", "/v1/declarations/com.example.openapi"));
    assertDocumented("GET", "/v1/declarations/{id}", await server.api("GET", "/v1/declarations/com.example.none"));
    assertDocumented("PUT", "/v1/declarations", await server.api("PUT", "/v1/declarations", { ...decl, Type: "org.example.x" }));
    assertDocumented("DELETE", "/v1/declarations/{id}", await server.api("DELETE", "/v1/declarations/com.example.openapi"));
    const bulk = "/v1/ddm/sets/{set}/enrollments";
    assertDocumented("POST", bulk, await server.api("POST", "/v1/ddm/sets/s2/enrollments?nonotify=1", { ids: [device.udid, "OTHER-1"] }));
    assertDocumented("POST", bulk, await server.api("POST", "/v1/ddm/sets/s2/enrollments", { platform: "macOS" }));
    assertDocumented("DELETE", bulk, await server.api("DELETE", "/v1/ddm/sets/s2/enrollments", { ids: [device.udid, "OTHER-1"] }));
    assertDocumented("DELETE", bulk, await server.api("DELETE", "/v1/ddm/sets/s2/enrollments", { ids: [], platform: "iOS" }));
    assertDocumented("GET", "/v1/sets", await server.api("GET", "/v1/sets"));
    assertDocumented("GET", "/v1/set-declarations/{id}", await server.api("GET", "/v1/set-declarations/s1"));
    assertDocumented("GET", "/v1/enrollment-sets/{id}", await server.api("GET", `/v1/enrollment-sets/${device.udid}`));
    assertDocumented("GET", "/v1/declaration-sets/{id}", await server.api("GET", "/v1/declaration-sets/com.example.openapi"));
    const token = (await server.api("GET", "/v1/declarations/com.example.openapi")).json.ServerToken;
    const report = {
      StatusItems: {
        management: {
          declarations: {
            configurations: [
              { identifier: "com.example.openapi", active: false, valid: "invalid", "server-token": token, reasons: [{ code: "Error.X" }] },
            ],
          },
        },
        device: { "operating-system": { version: "15.1" } },
      },
      Errors: [],
    };
    const status = await device.checkin("DeclarativeManagement", { Endpoint: "status", Data: Buffer.from(JSON.stringify(report)) });
    assert.equal(status.status, 200, status.text);
    const withStatus = await server.api("GET", `/v1/declaration-status/${device.udid}`);
    assertDocumented("GET", "/v1/declaration-status/{id}", withStatus);
    assert.equal(withStatus.json[device.udid][0].current, true);
    assertDocumented("GET", "/v1/status-errors/{id}", await server.api("GET", `/v1/status-errors/${device.udid}`));
    assertDocumented(
      "GET",
      "/v1/status-values/{id}",
      await server.api("GET", `/v1/status-values/${device.udid}?prefix=.StatusItems.device.%25`),
    );
    assertDocumented("GET", "/v1/status-report/{id}", await server.api("GET", `/v1/status-report/${device.udid}`));
    assertDocumented("GET", "/v1/status-report/{id}", await server.api("GET", `/v1/status-report/${device.udid}?index=3`));
    const compliance = await server.api("GET", "/v1/set-compliance/s1");
    assertDocumented("GET", "/v1/set-compliance/{set}", compliance);
    assert.deepEqual(compliance.json.declarations[0], {
      identifier: "com.example.openapi",
      server_token: token,
      compliant: 0,
      failing: 1,
      pending: 0,
    });
    assertDocumented("DELETE", "/v1/declarations/{id}", await server.api("DELETE", "/v1/declarations/com.example.openapi"));
    await noBody("DELETE", "/v1/set-declarations/s1?declaration=com.example.openapi", "/v1/set-declarations/{id}", 204);
    await noBody("DELETE", `/v1/enrollment-sets/${device.udid}?set=s1`, "/v1/enrollment-sets/{id}", 204);
    await noBody("DELETE", `/v1/enrollment-sets-all/${device.udid}`, "/v1/enrollment-sets-all/{id}", 304);
    await noBody("DELETE", "/v1/declarations/com.example.openapi", "/v1/declarations/{id}", 204);
  });

  test("inventory", async () => {
    const report = {
      StatusItems: {
        softwareupdate: { "install-state": "none", "failure-reason": { count: 0 }, "install-reason": { reason: ["manual"] } },
        management: { "client-capabilities": { "supported-versions": ["1.0.0"] } },
      },
      Errors: [],
    };
    const status = await device.checkin("DeclarativeManagement", { Endpoint: "status", Data: Buffer.from(JSON.stringify(report)) });
    assert.equal(status.status, 200, status.text);
    const page = await server.api("GET", "/v1/inventory?limit=1");
    assertDocumented("GET", "/v1/inventory", page);
    assert.equal(page.json.devices[0].update_install_state, "none");
    assertDocumented("GET", "/v1/inventory", await server.api("GET", "/v1/inventory?os_version_below=x"));
    const record = await server.api("GET", `/v1/inventory/${device.udid}`);
    assertDocumented("GET", "/v1/inventory/{device_id}", record);
    assert.deepEqual(record.json.fields.update_install_reason.value, { reason: ["manual"] });
    assertDocumented("GET", "/v1/inventory/{device_id}", await server.api("GET", "/v1/inventory/NOPE"));
    assertDocumented("PUT", "/v1/inventory-subscriptions/{platform}", await server.api("PUT", "/v1/inventory-subscriptions/iOS"));
    assertDocumented("PUT", "/v1/inventory-subscriptions/{platform}", await server.api("PUT", "/v1/inventory-subscriptions/Amiga"));
    assertDocumented("GET", "/v1/inventory-subscriptions", await server.api("GET", "/v1/inventory-subscriptions"));
    assertDocumented("DELETE", "/v1/inventory-subscriptions/{platform}", await server.api("DELETE", "/v1/inventory-subscriptions/iOS"));
  });
});
