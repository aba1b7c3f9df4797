// Ids, names and keys that are also the names of Object.prototype's members
// ("__proto__", "constructor", "prototype") on every API route and in device
// check-ins: each is an ordinary value or a clear 4xx, Object.prototype stays
// as it was (the server runs in this process, so the test can look), and
// later requests get their usual answers.
import os from "node:os";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import type { TestFleet } from "./support/fleet.ts";
import { commandPlist, identity, plist, rawPut, RawDevice, serverWithDevice } from "./support/mdm.ts";
import type { TestServer } from "./support/server.ts";

const NAMES = ["__proto__", "constructor", "prototype"] as const;

/** The own properties of the objects every lookup in the process falls back to. */
function prototypes(): Record<string, string[]> {
  return {
    object: Object.getOwnPropertyNames(Object.prototype).sort(),
    objectCtor: Object.getOwnPropertyNames(Object).sort(),
    functionProto: Object.getOwnPropertyNames(Function.prototype).sort(),
    array: Object.getOwnPropertyNames(Array.prototype).sort(),
  };
}

let server: TestServer;
let fleet: TestFleet;
let dev: RawDevice;
let stop: () => Promise<void>;
const before0 = prototypes();

before(async () => {
  ({ server, fleet, dev, stop } = await serverWithDevice());
});
after(async () => {
  await stop?.();
});

function assertClean(where: string): void {
  const empty = {} as Record<string, unknown>;
  for (const key of ["push_error", "push_result", "command_error", "x", "state", "ttl", "error"]) {
    assert.equal(empty[key], undefined, `${where}: ({}).${key} is set`);
  }
  assert.deepEqual(prototypes(), before0, `${where}: a prototype changed`);
}

/** Any answer but a 5xx (a refusal is fine: what matters is that nothing leaked). */
function notServerError(r: { status: number; text: string }, what: string): void {
  assert.ok(r.status < 500, `${what}: ${r.status} ${r.text}`);
}

test("ids on enqueue, push and queue routes", async () => {
  for (const name of NAMES) {
    const ids = encodeURIComponent(`${name},${dev.udid}`);
    const e = await server.api("PUT", `/v1/enqueue/${ids}?nopush=1`, commandPlist("DeviceInformation"));
    assert.equal(e.status, 207, e.text);
    assert.deepEqual(e.json.status[name], { command_error: "unknown enrollment" });
    const e2 = await server.api("PUT", `/v1/enqueue/${ids}`, commandPlist("DeviceInformation"));
    assert.ok(e2.status === 207 || e2.status === 500, e2.text);
    assert.deepEqual(e2.json.status[name], { command_error: "unknown enrollment" });
    for (const method of ["POST", "GET"]) {
      const p = await server.api(method, `/v1/push/${encodeURIComponent(name)}`);
      assert.equal(p.status, 500, p.text);
      assert.equal(Object.keys(p.json.status).join(), name);
      assert.equal(typeof p.json.status[name].push_error, "string");
    }
    notServerError(await server.api("GET", `/v1/queue/${encodeURIComponent(name)}`), "GET queue");
    notServerError(await server.api("DELETE", `/v1/queue/${encodeURIComponent(name)}`), "DELETE queue");
    assertClean(`ids ${name}`);
  }
});

test("enrollments, commands and events by name, and as query parameters", async () => {
  for (const name of NAMES) {
    const n = encodeURIComponent(name);
    assert.equal((await server.api("GET", `/v1/enrollments/${n}`)).status, 404);
    assert.equal((await server.api("GET", `/v1/commands/${n}`)).status, 404);
    for (const q of [`${n}=1`, `device=${n}`, `serial=${n}`, `cursor=${n}`, `type=${n}`, `enabled=${n}`]) {
      notServerError(await server.api("GET", `/v1/enrollments?${q}`), `enrollments?${q}`);
    }
    for (const q of [`${n}=1`, `enrollment=${n}`, `type=${n}`, `cursor=${n}`, `${n}[x]=1`]) {
      notServerError(await server.api("GET", `/v1/events?${q}`), `events?${q}`);
    }
    notServerError(await server.api("GET", `/v1/users?cursor=${n}&${n}=1`), "users?cursor");
    notServerError(await server.api("GET", `/v1/user-sessions?device=${n}&${n}=1`), "user-sessions");
    assertClean(`query ${name}`);
  }
});

test("users: short names, body keys and htdigest lines", async () => {
  for (const name of NAMES) {
    const n = encodeURIComponent(name);
    const put = await server.api("PUT", `/v1/users/${n}`, { full_name: "Proto Type", password: "pw" });
    assert.equal(put.status, 201, put.text);
    assert.equal(put.json.short_name, name);
    assert.equal((await server.api("GET", `/v1/users/${n}`)).json.full_name, "Proto Type");
    for (const body of [
      `{"${name}":{"state":"declined","x":1}}`,
      `{"state":"managed","${name}":"x"}`,
      `{"full_name":{"${name}":{"x":1}}}`,
    ]) {
      const r = await server.api("PUT", "/v1/users/proto-body", body);
      assert.equal(r.status, 400, r.text);
    }
    const realm = os.hostname(); // --digest-realm, by default the host name
    const imp = await server.api("POST", "/v1/users/import", `${name}:${realm}:${"ab".repeat(16)}\n${name}:other:${"cd".repeat(16)}\n`);
    assert.equal(imp.status, 200, imp.text);
    assert.equal(imp.json.updated, 1);
    assert.deepEqual(imp.json.other_realms, [{ username: name, realm: "other" }]);
    const del = await server.api("DELETE", `/v1/users/${n}`);
    assert.equal(del.status, 200, del.text);
    assert.equal((await server.api("GET", `/v1/users/${n}`)).status, 404);
    assertClean(`users ${name}`);
  }
});

test("push certificates and SCEP challenges", async () => {
  for (const name of NAMES) {
    assert.equal((await server.api("DELETE", `/v1/pushcert/${encodeURIComponent(name)}`)).status, 404);
    for (const body of [`{"${name}":{"ttl":"1s"}}`, `{"ttl":"10m","${name}":{"x":1}}`]) {
      const r = await server.api("POST", "/v1/scep/challenges", body);
      assert.ok(r.status === 400 || r.status === 404, r.text); // 404: SCEP not enabled in this configuration
    }
    assertClean(`pushcert/scep ${name}`);
  }
});

test("device check-ins: UDIDs, user ids and plist keys", async () => {
  const keys = (v: string) => ({ constructor: v, prototype: { constructor: v, toString: v, valueOf: v } });
  for (const name of NAMES) {
    // An enrolled device whose UDID is the name.
    const d = new RawDevice(fleet.transport, await identity(fleet), name);
    const a = await d.authenticate(name === "__proto__" ? {} : keys("a"));
    assert.equal(a.status, 200, a.text);
    const t = await d.tokenUpdate(name === "__proto__" ? {} : keys("t"));
    assert.equal(t.status, 200, t.text);
    const u = await dev.tokenUpdate({ UserID: name, UserShortName: name, UserLongName: name });
    assert.equal(u.status, 200, u.text);
    const cmd = randomUUID();
    const e = await server.api(
      "PUT",
      `/v1/enqueue/${encodeURIComponent(name)}?nopush=1`,
      commandPlist("DeviceInformation", cmd, { constructor: "c" }),
    );
    assert.equal(e.status, 200, e.text);
    const polled = await d.report("Idle");
    assert.equal(polled.status, 200, polled.text);
    assert.equal(polled.plist?.CommandUUID, cmd);
    const ack = await d.report("Acknowledged", { CommandUUID: cmd, QueryResponses: { constructor: "x", prototype: { toString: "y" } } });
    assert.equal(ack.status, 200, ack.text);
    const c = await server.api("GET", `/v1/commands/${cmd}`);
    assert.equal(c.status, 200, c.text);
    assert.deepEqual(c.json.results[0].result.QueryResponses, { constructor: "x", prototype: { toString: "y" } });
    const en = await server.api("GET", `/v1/enrollments/${encodeURIComponent(name)}`);
    assert.equal(en.status, 200, en.text);
    assertClean(`device ${name}`);
  }
  // A dict key "__proto__" would replace the dict's prototype: the plist parser refuses it.
  const raw = Buffer.from(
    plist({ MessageType: "Authenticate", Topic: "com.apple.mgmt.External.test", UDID: dev.udid, KEY: { push_error: "x" } })
      .toString()
      .replace("<key>KEY</key>", "<key>__proto__</key>"),
  );
  const r = await rawPut(fleet.transport, "/checkin", raw, { auth: { kind: "header", identity: dev.identity } });
  assert.equal(r.status, 400, r.text);
  assert.match(r.text, /forbidden key/);
  assertClean("device __proto__ key");
});

test("afterwards every route answers as usual", async () => {
  const e = await server.api("PUT", `/v1/enqueue/${dev.udid}?nopush=1`, commandPlist("DeviceInformation"));
  assert.equal(e.status, 200, e.text);
  assert.deepEqual(
    { ...e.json, command_uuid: undefined },
    { command_uuid: undefined, request_type: "DeviceInformation", status: {}, no_push: true },
  );
  const p = await server.api("POST", `/v1/push/${dev.udid}`);
  assert.equal(p.status, 500, p.text); // no push certificate: all failed, as before
  assert.deepEqual(Object.keys(p.json.status), [dev.udid]);
  assert.equal((await server.api("GET", "/v1/enrollments")).status, 200);
  assertClean("after");
});
