// The operator API: auth, enqueue refusals and statuses, listings, health.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import { after, before, describe, test } from "node:test";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { commandPlist, dumpStore as dumpAll, identity, plist, RawDevice } from "./support/mdm.ts";
import { forEachBackend } from "./support/postgres.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

await forEachBackend("operator API", (backend) => {
  let server: TestServer;
  let fleet: TestFleet;
  let devices: RawDevice[];

  before(async () => {
    server = await startTestServer([], backend);
    fleet = await testFleet(server.url);
    devices = [];
    for (let i = 0; i < 5; i++) {
      const d = new RawDevice(fleet.transport, await identity(fleet), `API-DEV-${i}`);
      assert.equal((await d.authenticate({ SerialNumber: `SERIAL-${i}` })).status, 200);
      assert.equal((await d.tokenUpdate()).status, 200);
      devices.push(d);
    }
    // Two user channels on device 0, device 4 checked out.
    await devices[0]!.tokenUpdate({ UserID: "U-A", UserShortName: "a" });
    await devices[0]!.tokenUpdate({ UserID: "U-B", UserShortName: "b" });
    await devices[4]!.checkin("CheckOut");
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  /**
   * Every table, without enrollments.last_seen_at: the set-up check-ins leave
   * last-seen writes pending, and API requests never touch them (the device-side
   * tests in bad-input.test.ts check those).
   */
  async function dumpStore(store: typeof server.store) {
    const dump = await dumpAll(store);
    dump.enrollments = dump.enrollments!.map((row: any) => ({ ...row, last_seen_at: undefined }));
    return dump;
  }

  function call(method: string, urlPath: string, o: { auth?: string | null; body?: Buffer } = {}) {
    const headers: Record<string, string> = {};
    if (o.auth !== null)
      headers.authorization = o.auth ?? "Basic " + Buffer.from("anyone:test-api-key-0123456789abcdef").toString("base64");
    return fetch(server.url + urlPath, { method, headers, body: o.body ? new Uint8Array(o.body) : undefined });
  }

  /** Refused with this status and reason, and the store did not change. */
  async function refused(method: string, urlPath: string, status: number, reason: RegExp, body?: Buffer) {
    const before = await dumpStore(server.store);
    const r = await server.api(method, urlPath, body);
    assert.equal(r.status, status, r.text);
    assert.match(r.json.error, reason);
    assert.deepEqual(await dumpStore(server.store), before);
    return r;
  }

  describe("API key", () => {
    test("a missing or wrong key is 401 with a Basic challenge; any user name with the key passes", async () => {
      const basic = (user: string, pass: string) => "Basic " + Buffer.from(`${user}:${pass}`).toString("base64");
      const paths: Array<[string, string]> = [
        ["GET", "/v1/enrollments"],
        ["GET", `/v1/enrollments/${devices[0]!.udid}`],
        ["PUT", `/v1/enqueue/${devices[0]!.udid}`],
        ["GET", `/v1/queue/${devices[0]!.udid}`],
        ["DELETE", `/v1/queue/${devices[0]!.udid}`],
        ["GET", "/v1/commands/X"],
        ["GET", "/v1/events"],
      ];
      const before = await dumpStore(server.store);
      for (const [method, p] of paths) {
        for (const auth of [
          null,
          basic("orchard", "wrong"),
          basic("orchard", ""),
          "Bearer test-api-key-0123456789abcdef",
          basic("", "test-api-key-0123456789abcdefX"),
        ]) {
          const r = await call(method, p, { auth, body: method === "PUT" ? commandPlist("DeviceInformation") : undefined });
          assert.equal(r.status, 401, `${method} ${p} with ${auth}`);
          assert.equal(r.headers.get("www-authenticate"), 'Basic realm="orchard"');
          assert.deepEqual(await r.json(), { error: "missing or wrong API key", code: "unauthorized" });
        }
      }
      for (const auth of ["Basic !!!", "Basic " + Buffer.from("test-api-key-0123456789abcdef").toString("base64")]) {
        const r = await call("PUT", `/v1/enqueue/${devices[0]!.udid}`, { auth, body: commandPlist("DeviceInformation") });
        assert.equal(r.status, 400, `malformed Basic credentials ${auth}`);
        assert.match((await r.json()).error, /malformed Basic credentials/);
      }
      assert.deepEqual(await dumpStore(server.store), before, "nothing was queued");
      // A same-origin page's fetch (the console's, its cookie expired) is not challenged: the browser's password
      // prompt would come up over the page's own sign-in. The API opened in the browser still is.
      for (const [dest, site, challenged] of [
        ["empty", "same-origin", false],
        ["document", "same-origin", true],
        ["empty", "cross-site", true],
      ] as const) {
        const r = await fetch(`${server.url}/v1/enrollments`, { headers: { "sec-fetch-dest": dest, "sec-fetch-site": site } });
        assert.equal(r.status, 401);
        assert.equal(r.headers.get("www-authenticate"), challenged ? 'Basic realm="orchard"' : null, `${dest} ${site}`);
      }
      for (const user of ["", "orchard", "nanomdm"]) {
        const r = await call("GET", "/v1/enrollments?limit=1", { auth: basic(user, "test-api-key-0123456789abcdef") });
        assert.equal(r.status, 200, user);
      }
    });

    test("GET /healthz and /version answer without a key", async () => {
      const h = await call("GET", "/healthz", { auth: null });
      assert.equal(h.status, 200);
      assert.deepEqual(await h.json(), { status: "ok" });
      const v = await call("GET", "/version", { auth: null });
      assert.equal(v.status, 200);
      const pkg = JSON.parse(fs.readFileSync(new URL("../package.json", import.meta.url), "utf8"));
      assert.deepEqual(await v.json(), { version: pkg.version });
    });

    test("unknown routes are 404", async () => {
      assert.equal((await call("GET", "/nope")).status, 404);
      assert.equal((await call("GET", "/v1/nope", { auth: null })).status, 404);
    });
  });

  describe("enqueue refusals", () => {
    test("a body that is not a command plist is 400", async () => {
      const id = devices[1]!.udid;
      await refused("PUT", `/v1/enqueue/${id}`, 400, /^the body must be a command plist$/);
      await refused(
        "PUT",
        `/v1/enqueue/${id}`,
        400,
        /^command is not a valid plist: /,
        Buffer.from('{"Command":{"RequestType":"DeviceInformation"}}'),
      );
      await refused("PUT", `/v1/enqueue/${id}`, 400, /^command is not a valid plist: /, plist({ a: 1 }).subarray(0, 40));
      await refused("PUT", `/v1/enqueue/${id}`, 400, /^command plist has no Command dict$/, plist({ CommandUUID: "X1" }));
      await refused(
        "PUT",
        `/v1/enqueue/${id}`,
        400,
        /^command plist has no Command dict$/,
        plist({ CommandUUID: "X1", Command: "DeviceInformation" }),
      );
      await refused("PUT", `/v1/enqueue/${id}`, 400, /^Command has no RequestType$/, plist({ CommandUUID: "X1", Command: {} }));
      await refused(
        "PUT",
        `/v1/enqueue/${id}`,
        400,
        /^Command has no RequestType$/,
        plist({ CommandUUID: "X1", Command: { RequestType: "" } }),
      );
      await refused(
        "PUT",
        `/v1/enqueue/${id}`,
        400,
        /^Command has no RequestType$/,
        plist({ CommandUUID: "X1", Command: { RequestType: 3 } }),
      );
      await refused(
        "PUT",
        `/v1/enqueue/${id}`,
        400,
        /^CommandUUID must be/,
        plist({ CommandUUID: "a b", Command: { RequestType: "DeviceInformation" } }),
      );
      await refused(
        "PUT",
        `/v1/enqueue/${id}`,
        400,
        /^CommandUUID must be/,
        plist({ CommandUUID: 42, Command: { RequestType: "DeviceInformation" } }),
      );
      await refused(
        "PUT",
        `/v1/enqueue/${id}`,
        400,
        /^CommandUUID must be/,
        plist({ CommandUUID: "", Command: { RequestType: "DeviceInformation" } }),
      );
      for (const dots of [".", ".."]) {
        await refused(
          "PUT",
          `/v1/enqueue/${id}`,
          400,
          /not only dots/,
          plist({ CommandUUID: dots, Command: { RequestType: "DeviceInformation" } }),
        );
      }
      // A RequestType is a short word: a long or odd one is refused, not stored and logged whole.
      for (const requestType of ["R".repeat(129), "Device Information", "Device<Information>"]) {
        await refused(
          "PUT",
          `/v1/enqueue/${id}`,
          400,
          /^RequestType must be/,
          plist({ CommandUUID: "X2", Command: { RequestType: requestType } }),
        );
      }
    });

    test("a duplicate CommandUUID is 409 and queues nothing", async () => {
      const id = randomUUID().toUpperCase();
      assert.equal(
        (await server.api("PUT", `/v1/enqueue/${devices[1]!.udid}?nopush=1`, commandPlist("DeviceInformation", id))).status,
        200,
      );
      await refused(
        "PUT",
        `/v1/enqueue/${devices[2]!.udid}?nopush=1`,
        409,
        new RegExp(`^a command with CommandUUID ${id} already exists$`),
        commandPlist("ProfileList", id),
      );
      const r = await server.api("GET", `/v1/commands/${id}`);
      assert.equal(r.json.request_type, "DeviceInformation");
      assert.deepEqual(
        r.json.results.map((x: any) => x.enrollment_id),
        [devices[1]!.udid],
      );
      await server.api("DELETE", `/v1/queue/${devices[1]!.udid}`);
    });

    test("only unknown enrollment ids: 404, nothing stored", async () => {
      const before = await dumpStore(server.store);
      const id = randomUUID().toUpperCase();
      const r = await server.api("PUT", "/v1/enqueue/NOPE-1,NOPE-2?nopush=1", commandPlist("DeviceInformation", id));
      assert.equal(r.status, 404);
      assert.deepEqual(r.json, {
        command_uuid: id,
        request_type: "DeviceInformation",
        status: { "NOPE-1": { command_error: "unknown enrollment" }, "NOPE-2": { command_error: "unknown enrollment" } },
      });
      assert.deepEqual(await dumpStore(server.store), before);
      assert.equal((await server.api("GET", `/v1/commands/${id}`)).status, 404);
    });

    test("known and unknown ids: 207 with nopush, 500 when every id failed somehow", async () => {
      const known = devices[2]!.udid;
      const a = randomUUID().toUpperCase();
      const r = await server.api("PUT", `/v1/enqueue/${known},NOPE-3?nopush=1`, commandPlist("DeviceInformation", a));
      assert.equal(r.status, 207);
      assert.deepEqual(r.json, {
        command_uuid: a,
        request_type: "DeviceInformation",
        status: { "NOPE-3": { command_error: "unknown enrollment" } },
        no_push: true,
      });
      assert.deepEqual(
        (await server.api("GET", `/v1/queue/${known}`)).json.commands.map((c: any) => c.command_uuid),
        [a],
      );

      const b = randomUUID().toUpperCase();
      const p = await server.api("PUT", `/v1/enqueue/${known},NOPE-3`, commandPlist("DeviceInformation", b));
      assert.equal(p.status, 500);
      assert.deepEqual(p.json.status, {
        "NOPE-3": { command_error: "unknown enrollment" },
        [known]: { push_error: "no push certificate is configured" },
      });
      assert.deepEqual(
        (await server.api("GET", `/v1/queue/${known}`)).json.commands.map((c: any) => c.command_uuid),
        [a, b],
      );

      const del = await server.api("DELETE", `/v1/queue/${known},NOPE-3`);
      assert.deepEqual(del.json, { removed: 2 });
      assert.equal(del.headers.get("orchard-warning"), 'enrollment "NOPE-3": no such enrollment');
    });

    test("a long list of ids fits in the path", async () => {
      const unknown = Array.from({ length: 300 }, () => randomUUID().toUpperCase());
      const a = randomUUID().toUpperCase();
      const r = await server.api(
        "PUT",
        `/v1/enqueue/${[devices[3]!.udid, ...unknown].join(",")}?nopush=1`,
        commandPlist("DeviceInformation", a),
      );
      assert.equal(r.status, 207, r.text.slice(0, 200));
      assert.equal(Object.keys(r.json.status).length, 300);
      const del = await server.api("DELETE", `/v1/queue/${[...unknown, devices[3]!.udid].join(",")}`);
      assert.deepEqual(del.json, { removed: 1 });
      // The first 20 unknown ids by name, the rest counted.
      const warnings = del.headers.get("orchard-warning")!.split(", ");
      assert.equal(warnings.length, 21);
      assert.equal(warnings[0], `enrollment "${unknown[0]}": no such enrollment`);
      assert.equal(warnings[20], "280 more warnings not shown");
    });

    test("a RequestType Apple's schema does not know is queued, with an orchard-warning and a log line; a known one has none", async () => {
      const known = devices[3]!.udid;
      const typo = randomUUID().toUpperCase();
      const r = await server.api("PUT", `/v1/enqueue/${known}?nopush=1`, commandPlist("DeviceInfomation", typo));
      assert.equal(r.status, 200);
      // NanoMDM's answer as ever; the warning is Orchard's extra.
      assert.deepEqual(r.json, { command_uuid: typo, request_type: "DeviceInfomation", status: {}, no_push: true });
      assert.match(
        r.headers.get("orchard-warning")!,
        /^RequestType "DeviceInfomation": not a command Apple's schema knows \(iOS [\d.]+\/macOS [\d.]+\); queued all the same/,
      );
      assert.ok(server.logs.some((l) => /command enqueued with a warning/.test(l) && l.includes(typo) && /DeviceInfomation/.test(l)));
      // The ids in a JSON body: the same.
      const bulk = await server.api("POST", "/v1/enqueue?nopush=1", { ids: [known], command: commandPlist("ProfileLists").toString() });
      assert.equal(bulk.status, 200, bulk.text);
      assert.match(bulk.headers.get("orchard-warning")!, /^RequestType "ProfileLists": not a command/);
      assert.deepEqual(
        (await server.api("GET", `/v1/queue/${known}`)).json.commands.map((c: any) => c.request_type),
        ["DeviceInfomation", "ProfileLists"],
      );
      const ok = await server.api("PUT", `/v1/enqueue/${known}?nopush=1`, commandPlist("DeviceInformation"));
      assert.equal(ok.headers.get("orchard-warning"), null);
      await server.api("DELETE", `/v1/queue/${known}`);
    });

    test("repeated ids in the path count once", async () => {
      const known = devices[3]!.udid;
      const a = randomUUID().toUpperCase();
      const r = await server.api("PUT", `/v1/enqueue/${known},${known}?nopush=1`, commandPlist("DeviceInformation", a));
      assert.equal(r.status, 200);
      assert.equal((await server.api("GET", `/v1/queue/${known}`)).json.commands.length, 1);
      await server.api("DELETE", `/v1/queue/${known}`);
    });
  });

  describe("queues", () => {
    test("an id that names no enrollment (mistyped, lowercase) is 404, not an empty queue or history; the store is unchanged", async () => {
      for (const id of ["NOPE-Q", devices[1]!.udid.toLowerCase()]) {
        await refused("GET", `/v1/queue/${id}`, 404, /^no such enrollment$/);
        await refused("DELETE", `/v1/queue/${id}`, 404, /^no such enrollment$/);
        // The command history likewise: not an empty list, on its first page or past its last.
        await refused("GET", `/v1/enrollments/${id}/commands`, 404, /^no such enrollment$/);
        await refused("GET", `/v1/enrollments/${id}/commands?cursor=1`, 404, /^no such enrollment$/);
      }
      await refused("DELETE", "/v1/queue/NOPE-Q,NOPE-R", 404, /^no id names an enrollment$/);
      // An enrollment with nothing queued: an empty queue, as before.
      const empty = await server.api("GET", `/v1/queue/${devices[1]!.udid}`);
      assert.equal(empty.status, 200);
      assert.deepEqual(empty.json, { enrollment_id: devices[1]!.udid, commands: [] });
      const noHistory = await server.api("GET", `/v1/enrollments/${devices[1]!.udid}/commands`);
      assert.deepEqual([noHistory.status, noHistory.json], [200, { commands: [], next_cursor: null }]);
      const cleared = await server.api("DELETE", `/v1/queue/${devices[1]!.udid}`);
      assert.deepEqual([cleared.status, cleared.json, cleared.headers.get("orchard-warning")], [200, { removed: 0 }, null]);
    });
  });

  describe("enrollments listing", () => {
    test("GET /v1/enrollments/{id} shows the channel; unknown is 404", async () => {
      const e = await server.api("GET", `/v1/enrollments/${devices[0]!.udid}:U-A`);
      assert.equal(e.status, 200);
      assert.equal(e.json.type, "User");
      assert.equal(e.json.user_short_name, "a");
      assert.equal(e.json.serial_number, "SERIAL-0");
      const missing = await server.api("GET", "/v1/enrollments/NOPE");
      assert.equal(missing.status, 404);
      assert.deepEqual(missing.json, { error: "no such enrollment", code: "not_found" });
      assert.equal((await server.api("GET", "/v1/commands/NOPE")).status, 404);
    });

    test("cursor pagination walks every enrollment once, in id order", async () => {
      const all = await server.api("GET", "/v1/enrollments?limit=1000");
      const ids: string[] = all.json.enrollments.map((e: any) => e.id);
      assert.deepEqual(ids, ["API-DEV-0", "API-DEV-0:U-A", "API-DEV-0:U-B", "API-DEV-1", "API-DEV-2", "API-DEV-3", "API-DEV-4"]);
      assert.equal(all.json.next_cursor, null);

      const walked: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r: any = await server.api("GET", `/v1/enrollments?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
        assert.equal(r.status, 200);
        assert.ok(r.json.enrollments.length <= 3);
        walked.push(...r.json.enrollments.map((e: any) => e.id));
        cursor = r.json.next_cursor;
        pages++;
      } while (cursor !== null && pages < 10);
      assert.deepEqual(walked, ids);
      assert.equal(pages, 3);
    });

    test("filters: type, enabled, serial, device", async () => {
      const ids = async (q: string) => (await server.api("GET", `/v1/enrollments?${q}`)).json.enrollments.map((e: any) => e.id);
      assert.deepEqual(await ids("type=User"), ["API-DEV-0:U-A", "API-DEV-0:U-B"]);
      assert.deepEqual(await ids("type=Device&enabled=false"), ["API-DEV-4"]);
      assert.deepEqual(await ids("enabled=0"), ["API-DEV-4"]);
      assert.deepEqual(await ids("enabled=true&type=Device"), ["API-DEV-0", "API-DEV-1", "API-DEV-2", "API-DEV-3"]);
      assert.deepEqual(await ids("serial=SERIAL-2"), ["API-DEV-2"]);
      assert.deepEqual(await ids("serial=SERIAL-0&type=User"), ["API-DEV-0:U-A", "API-DEV-0:U-B"]);
      assert.deepEqual(await ids("device=API-DEV-0"), ["API-DEV-0", "API-DEV-0:U-A", "API-DEV-0:U-B"]);
      assert.deepEqual(await ids("serial=NO-SUCH-SERIAL"), []);
    });

    test("bad listing parameters are 400", async () => {
      await refused("GET", "/v1/enrollments?type=Laptop", 400, /^type must be one or more \(comma-separated\) of /);
      await refused("GET", "/v1/enrollments?limit=0", 400, /^limit must be/);
      await refused("GET", "/v1/enrollments?limit=abc", 400, /^limit must be/);
      await refused("GET", "/v1/enrollments?limit=1001", 400, /^limit must be/);
      await refused("GET", "/v1/events?since=yesterday", 400, /^since must be/);
      // A day February does not have: refused, not rolled over to March 2 as JavaScript's Date does.
      await refused(
        "GET",
        "/v1/events?since=2026-02-30T00:00:00Z",
        400,
        /^since must be an RFC 3339 time .*2026-02-30T00:00:00Z names a day/,
      );
      await refused("GET", "/v1/enrollments?seen_before=2026-04-31T00:00:00Z", 400, /^seen_before must be an RFC 3339 time/);
      await refused("GET", "/v1/events?cursor=x", 400, /^cursor must be/);
    });

    test("events: filtered by enrollment and type, with a cursor", async () => {
      const r = await server.api("GET", "/v1/events?enrollment=API-DEV-4");
      assert.deepEqual(
        r.json.events.map((e: any) => e.type),
        ["device.authenticated", "enrollment.enrolled", "device.checked_out"],
      );
      const page = await server.api("GET", "/v1/events?enrollment=API-DEV-4&limit=2");
      assert.equal(page.json.events.length, 2);
      const rest = await server.api("GET", `/v1/events?enrollment=API-DEV-4&cursor=${page.json.next_cursor}`);
      assert.deepEqual(
        rest.json.events.map((e: any) => e.type),
        ["device.checked_out"],
      );
    });
  });
});
