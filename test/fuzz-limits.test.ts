// The limits against hostile clients, each with its 4xx, its log line, and
// the store unchanged: hostile plist documents (with the parser's rules),
// body sizes per endpoint, plist caps from flags, slow clients (slow-loris
// headers and bodies), the API key failure limit, query and JSON checks.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import http from "node:http";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { ConfigError, parseServeArgs } from "../src/config.ts";
import { testFleet, type TestFleet } from "./support/fleet.ts";
import { refusalChanges, snapshot } from "./support/fuzz.ts";
import { COMMAND_TYPE, commandPlist, identity, plist, rawPut, RawDevice, serverWithDevice, sleep } from "./support/mdm.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const xml = (inner: string, prolog = '<?xml version="1.0" encoding="UTF-8"?>\n') => `${prolog}<plist version="1.0">${inner}</plist>\n`;

/** Sends raw bytes on a fresh socket; resolves with what came back and when the server closed it. */
function rawExchange(
  port: number,
  chunks: Array<string | Buffer>,
  gapMs: number,
  giveUpMs: number,
): Promise<{ reply: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, "127.0.0.1");
    let reply = "";
    let i = 0;
    const timer = setInterval(() => {
      if (i < chunks.length && socket.writable) socket.write(chunks[i++]!);
    }, gapMs);
    const done = () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ reply, closedAfterMs: Date.now() - started });
    };
    const giveUp = setTimeout(() => {
      socket.destroy();
      done();
    }, giveUpMs);
    socket.on("data", (d) => (reply += d.toString("latin1")));
    socket.on("close", done);
    socket.on("error", () => {});
  });
}

describe("the limit flags", () => {
  test("defaults, flags and ORCHARD_* variables; a zero timeout or cap is refused", () => {
    const d = parseServeArgs([], {}).limits;
    assert.deepEqual(d, {
      headersTimeoutMs: 20_000,
      requestTimeoutMs: 120_000,
      bodyIdleTimeoutMs: 20_000,
      apiMaxFailures: 50,
      apiFailureWindowMs: 300_000,
      maxConnections: undefined, // derived from the descriptor limit at start
      unidentifiedBodyBudget: 64 * 1024 * 1024,
      plist: { maxDepth: 32, maxKeys: 10_000, maxStringBytes: 1024 * 1024, maxDataBytes: 16 * 1024 * 1024 },
    });
    const e = parseServeArgs(["--plist-max-depth", "8"], {
      ORCHARD_BODY_IDLE_TIMEOUT: "5s",
      ORCHARD_API_MAX_FAILURES: "7",
      ORCHARD_PLIST_MAX_STRING: "64kb",
    }).limits;
    assert.equal(e.bodyIdleTimeoutMs, 5000);
    assert.equal(e.apiMaxFailures, 7);
    assert.equal(e.plist.maxDepth, 8);
    assert.equal(e.plist.maxStringBytes, 65536);
    for (const bad of [
      ["--request-timeout", "0"],
      ["--headers-timeout", "0s"],
      ["--plist-max-depth", "0"],
      ["--api-max-failures", "x"],
    ]) {
      assert.throws(() => parseServeArgs(bad, {}), ConfigError, bad.join(" "));
    }
  });
});

describe("hostile plist documents, with the parser's rules", () => {
  let server: TestServer;
  let fleet: TestFleet;
  let dev: RawDevice;
  let stop: () => Promise<void>;

  before(async () => {
    ({ server, fleet, dev, stop } = await serverWithDevice());
  });
  after(async () => {
    await stop?.();
  });

  const auth = () => ({ kind: "header" as const, identity: dev.identity });
  /** A report's dict around extra XML, so that only the extra part can be at fault. */
  const report = (extra: string) =>
    xml(`<dict><key>Status</key><string>Idle</string><key>UDID</key><string>${dev.udid}</string>${extra}</dict>`);
  const nested = (n: number) => "<array>".repeat(n) + "</array>".repeat(n);
  /** A report whose string value A holds exactly these bytes. */
  const withBytes = (bytes: number[]) => {
    const [head, tail] = report("<key>A</key><string>|</string>").split("|") as [string, string];
    return Buffer.concat([Buffer.from(head), Buffer.from(bytes), Buffer.from(tail)]);
  };

  const cases: Array<{ name: string; body: () => string | Buffer; status: number; reason: RegExp }> = [
    {
      name: "billion laughs (DOCTYPE internal subset)",
      status: 400,
      reason: /DOCTYPE internal subset is not allowed/,
      body: () =>
        xml(
          `<dict><key>Status</key><string>&c;</string></dict>`,
          `<?xml version="1.0"?>\n<!DOCTYPE plist [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>\n`,
        ),
    },
    {
      name: "external entity (XXE) through SYSTEM",
      status: 400,
      reason: /unknown entity reference/,
      body: () =>
        xml(
          `<dict><key>Status</key><string>&xxe;</string></dict>`,
          `<?xml version="1.0"?>\n<!DOCTYPE plist SYSTEM "file:///etc/passwd">\n`,
        ),
    },
    {
      name: "parameter entity",
      status: 400,
      reason: /DOCTYPE internal subset/,
      body: () => xml("<dict/>", `<!DOCTYPE plist [<!ENTITY % p SYSTEM "http://127.0.0.1:1/">%p;]>`),
    },
    {
      name: "an entity declaration outside a DOCTYPE",
      status: 400,
      reason: /entity declarations are not allowed/,
      body: () => `<!ENTITY x "y">${xml("<dict/>", "")}`,
    },
    {
      name: "a processing instruction",
      status: 400,
      reason: /processing instructions are not allowed/,
      body: () => xml("<dict/>", `<?xml version="1.0"?><?xml-stylesheet href="x"?>`),
    },
    {
      name: "a declared encoding other than UTF-8",
      status: 400,
      reason: /unsupported encoding/,
      body: () => xml("<dict/>", `<?xml version="1.0" encoding="ISO-8859-1"?>`),
    },
    {
      name: "UTF-16 with a BOM",
      status: 400,
      reason: /invalid UTF-8|NUL|malformed/,
      body: () => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(report(""), "utf16le")]),
    },
    { name: "invalid UTF-8", status: 400, reason: /invalid UTF-8/, body: () => withBytes([0x61, 0xc3, 0x28]) },
    { name: "an overlong UTF-8 encoding", status: 400, reason: /invalid UTF-8/, body: () => withBytes([0xc0, 0xaf]) },
    { name: "an encoded surrogate", status: 400, reason: /invalid UTF-8/, body: () => withBytes([0xed, 0xa0, 0x80]) },
    { name: "a NUL character", status: 400, reason: /NUL character/, body: () => report("<key>A</key><string>a\u0000b</string>") },
    {
      name: "a character reference to NUL",
      status: 400,
      reason: /invalid code point/,
      body: () => report("<key>A</key><string>&#0;</string>"),
    },
    {
      name: "a character reference to a surrogate",
      status: 400,
      reason: /invalid code point/,
      body: () => report("<key>A</key><string>&#xD800;</string>"),
    },
    {
      name: "an integer of 2^64",
      status: 400,
      reason: /out of 64-bit range/,
      body: () => report("<key>A</key><integer>18446744073709551616</integer>"),
    },
    {
      name: "an integer below -2^63",
      status: 400,
      reason: /out of 64-bit range/,
      body: () => report("<key>A</key><integer>-9223372036854775809</integer>"),
    },
    {
      name: "an integer of 400 digits",
      status: 400,
      reason: /out of 64-bit range/,
      body: () => report(`<key>A</key><integer>${"9".repeat(400)}</integer>`),
    },
    {
      name: "an integer that is not one",
      status: 400,
      reason: /malformed <integer>/,
      body: () => report("<key>A</key><integer>1e10</integer>"),
    },
    {
      name: "a year past 9999",
      status: 400,
      reason: /malformed <date>/,
      body: () => report("<key>A</key><date>10000-01-01T00:00:00Z</date>"),
    },
    { name: "month 13", status: 400, reason: /malformed <date>/, body: () => report("<key>A</key><date>2024-13-01T00:00:00Z</date>") },
    {
      name: "29 February of a common year",
      status: 400,
      reason: /malformed <date>/,
      body: () => report("<key>A</key><date>2023-02-29T00:00:00Z</date>"),
    },
    { name: "hour 24", status: 400, reason: /malformed <date>/, body: () => report("<key>A</key><date>2024-01-01T24:00:00Z</date>") },
    {
      name: "a time zone offset",
      status: 400,
      reason: /malformed <date>/,
      body: () => report("<key>A</key><date>2024-01-01T00:00:00+02:00</date>"),
    },
    {
      name: "base64 with a bad character",
      status: 400,
      reason: /invalid base64 character/,
      body: () => report("<key>A</key><data>YX!w</data>"),
    },
    { name: "base64 with bad padding", status: 400, reason: /bad base64/, body: () => report("<key>A</key><data>AAAA=</data>") },
    { name: "base64 after padding", status: 400, reason: /base64 after padding/, body: () => report("<key>A</key><data>AA==AA==</data>") },
    {
      name: "a duplicate key (refused, never first- or last-wins)",
      status: 400,
      reason: /duplicate key in <dict>/,
      body: () => report(`<key>UDID</key><string>SOMEONE-ELSE</string>`),
    },
    { name: "a __proto__ key", status: 400, reason: /forbidden key/, body: () => report("<key>__proto__</key><dict/>") },
    { name: "nesting 33 deep (the limit is 32)", status: 400, reason: /nesting too deep/, body: () => report(`<key>A</key>${nested(32)}`) },
    {
      name: "10,001 keys in one dict",
      status: 400,
      reason: /too many keys/,
      body: () => report(Array.from({ length: 9_999 }, (_, i) => `<key>k${i}</key><true/>`).join("")),
    },
    { name: "content after </plist>", status: 400, reason: /unexpected content after/, body: () => report("") + "<plist/>" },
    { name: "an unknown element", status: 400, reason: /unknown element/, body: () => report("<key>A</key><foo/>") },
    { name: "an empty body", status: 400, reason: /malformed plist/, body: () => "" },
  ];

  for (const c of cases) {
    test(`${c.name}: ${c.status}`, async () => {
      const before = await snapshot(server.store);
      const body = c.body();
      const r = await rawPut(fleet.transport, "/mdm", Buffer.isBuffer(body) ? body : Buffer.from(body), {
        auth: auth(),
        contentType: COMMAND_TYPE,
      });
      assert.equal(r.status, c.status, r.text);
      assert.match(r.text, c.reason);
      assert.deepEqual(await refusalChanges(server.store, before, await snapshot(server.store)), []);
    });
  }

  test("within the limits: 32 deep, 10,000 keys, a BOM, CDATA and comments parse", async () => {
    for (const extra of [
      `<key>A</key>${nested(31)}`,
      Array.from({ length: 9_998 }, (_, i) => `<key>k${i}</key><true/>`).join(""),
      "<key>A</key><string><![CDATA[x<y]]><!-- c -->z</string>",
    ]) {
      const r = await rawPut(fleet.transport, "/mdm", Buffer.from(report(extra)), { auth: auth(), contentType: COMMAND_TYPE });
      assert.equal(r.status, 200, r.text);
    }
    const bom = await rawPut(fleet.transport, "/mdm", Buffer.from("\ufeff" + report("")), { auth: auth(), contentType: COMMAND_TYPE });
    assert.equal(bom.status, 200, bom.text);
  });

  // Found by fuzzing the parser: sibling dicts at one depth used to share one key
  // counter (src/plist/parse.ts value() popped `stack` but not `keys`/`counts`), so a
  // real InstalledApplicationList of 1,500 apps was refused as "too many keys".
  test("a report of 1,500 apps (sibling dicts with 10,500 keys in all) is accepted", async () => {
    const app = (i: number) =>
      `<dict><key>Identifier</key><string>com.example.app${i}</string><key>Name</key><string>App ${i}</string><key>Version</key><string>1.0</string><key>ShortVersion</key><string>1.0</string><key>BundleSize</key><integer>123456</integer><key>IsValidated</key><true/><key>Installing</key><false/></dict>`;
    const r = await rawPut(
      fleet.transport,
      "/mdm",
      Buffer.from(report(`<key>InstalledApplicationList</key><array>${Array.from({ length: 1500 }, (_, i) => app(i)).join("")}</array>`)),
      { auth: auth(), contentType: COMMAND_TYPE },
    );
    assert.equal(r.status, 200, r.text);
  });

  test("a string past 1 MB and 2,000,001 values are refused by the parser (on /mdm, under its 16 MB body limit)", async () => {
    const big = await rawPut(fleet.transport, "/mdm", Buffer.from(report(`<key>A</key><string>${"a".repeat(1024 * 1024 + 1)}</string>`)), {
      auth: auth(),
      contentType: COMMAND_TYPE,
    });
    assert.equal(big.status, 400);
    assert.match(big.text, /string exceeds size limit/);
    const many = await rawPut(fleet.transport, "/mdm", Buffer.from(report(`<key>A</key><array>${"<true/>".repeat(1_000_001)}</array>`)), {
      auth: auth(),
      contentType: COMMAND_TYPE,
    });
    assert.equal(many.status, 400);
    assert.match(many.text, /too many items in <array>/);
    assert.ok(
      server.logs.some((l) => l.includes('"device request refused"') && l.includes("too many items")),
      "the refusal is logged",
    );
  });
});

describe("body sizes per endpoint and plist caps from flags", () => {
  let server: TestServer;
  let fleet: TestFleet;
  let dev: RawDevice;

  before(async () => {
    server = await startTestServer([
      "--checkin-body-limit",
      "16kb",
      "--report-body-limit",
      "64kb",
      "--plist-max-depth",
      "6",
      "--plist-max-keys",
      "20",
      "--plist-max-string",
      "2kb",
      "--plist-max-data",
      "3kb",
    ]);
    fleet = await testFleet(server.url);
    dev = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await dev.enroll();
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  const auth = () => ({ kind: "header" as const, identity: dev.identity });
  const pad = (n: number) => Array.from({ length: n }, () => "y".repeat(1000));

  test("a check-in is held to --checkin-body-limit on CheckInURL, a report to --report-body-limit on ServerURL", async () => {
    const before = await snapshot(server.store);
    const bigCheckin = plist({ MessageType: "Authenticate", Topic: "t", UDID: dev.udid, Pad: pad(17) });
    const r1 = await rawPut(fleet.transport, "/checkin", bigCheckin, { auth: auth() });
    assert.equal(r1.status, 413);
    assert.match(r1.text, /body too large: the limit is 16384 bytes/);
    const bigReport = plist({ Status: "Idle", UDID: dev.udid, Pad: pad(65) });
    const r2 = await rawPut(fleet.transport, "/mdm", bigReport, { auth: auth(), contentType: COMMAND_TYPE });
    assert.equal(r2.status, 413);
    assert.match(r2.text, /the limit is 65536 bytes/);
    assert.deepEqual(await refusalChanges(server.store, before, await snapshot(server.store)), []);
    // A report between the two limits is fine on ServerURL.
    const midReport = plist({ Status: "Idle", UDID: dev.udid, Pad: pad(17) });
    assert.equal((await rawPut(fleet.transport, "/mdm", midReport, { auth: auth(), contentType: COMMAND_TYPE })).status, 200);
    assert.ok(server.logs.some((l) => l.includes('"device request refused"') && l.includes('"status":413')));
  });

  test("a chunked body past the limit gets its 413 too (read and dropped, not a reset), and the connection still works", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const { port } = new URL(server.url);
    const put = (body: Buffer[], headers: Record<string, string>) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = http.request(
          { host: "127.0.0.1", port, method: "PUT", path: "/mdm", agent, headers: { "content-type": COMMAND_TYPE, ...headers } },
          (res) => {
            let text = "";
            res.on("data", (d) => (text += d));
            res.on("end", () => resolve({ status: res.statusCode!, text }));
          },
        );
        req.on("error", reject);
        for (const b of body) req.write(b);
        req.end();
      });
    const cert = { "x-client-cert": encodeURIComponent(dev.identity.certPem) };
    const chunks = Array.from({ length: 80 }, () => Buffer.alloc(1024, 0x20));
    const r = await put(chunks, cert);
    assert.equal(r.status, 413, r.text);
    const ok = await put([plist({ Status: "Idle", UDID: dev.udid })], cert);
    assert.equal(ok.status, 200, ok.text);
    agent.destroy();
  });

  test("--plist-max-depth, --plist-max-keys, --plist-max-string and --plist-max-data reach the parser", async () => {
    const base = { Status: "Idle", UDID: dev.udid };
    const send = (extra: Record<string, any>) =>
      rawPut(fleet.transport, "/mdm", plist({ ...base, ...extra }), { auth: auth(), contentType: COMMAND_TYPE });
    const deep = (n: number): any => (n === 0 ? "x" : [deep(n - 1)]);
    assert.equal((await send({ A: deep(5) })).status, 200);
    assert.match((await send({ A: deep(6) })).text, /nesting too deep/);
    assert.equal((await send(Object.fromEntries(Array.from({ length: 18 }, (_, i) => [`k${i}`, true])))).status, 200);
    assert.match((await send(Object.fromEntries(Array.from({ length: 19 }, (_, i) => [`k${i}`, true])))).text, /too many keys/);
    assert.equal((await send({ A: "s".repeat(2048) })).status, 200);
    assert.match((await send({ A: "s".repeat(2049) })).text, /string exceeds size limit/);
    assert.equal((await send({ A: Buffer.alloc(3072) })).status, 200);
    assert.match((await send({ A: Buffer.alloc(3073) })).text, /<data> exceeds size limit/);
  });

  test("the API: an enqueue body past --report-body-limit is 413, a user's JSON past 64 KB is 413", async () => {
    const before = await snapshot(server.store);
    const cmd = plist({ Command: { RequestType: "DeviceInformation", Pad: pad(70) } });
    const r = await server.api("PUT", `/v1/enqueue/${dev.udid}?nopush=1`, cmd);
    assert.equal(r.status, 413, r.text);
    const u = await server.api("PUT", "/v1/users/big", { password: "p", full_name: "f", guid: "x".repeat(70_000) });
    assert.equal(u.status, 413, u.text);
    assert.deepEqual(await refusalChanges(server.store, before, await snapshot(server.store)), []);
  });
});

describe("results parse again with the configured caps", () => {
  test("a result deeper than the parser's default depth, accepted under --plist-max-depth 40, is shown by GET /v1/commands", async () => {
    const server = await startTestServer(["--plist-max-depth", "40"]);
    const fleet = await testFleet(server.url);
    try {
      const dev = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
      await dev.enroll();
      assert.equal(
        (await server.api("PUT", `/v1/enqueue/${dev.udid}?nopush=1`, commandPlist("DeviceInformation", "DEEP-RESULT"))).status,
        200,
      );
      const deep = (n: number): any => (n === 0 ? "x" : [deep(n - 1)]);
      assert.equal((await dev.report("Idle")).status, 200);
      assert.equal((await dev.report("Acknowledged", { CommandUUID: "DEEP-RESULT", Deep: deep(36) })).status, 200);
      const r = await server.api("GET", "/v1/commands/DEEP-RESULT");
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.results[0].status, "Acknowledged");
    } finally {
      fleet.close();
      await server.stop();
    }
  });
});

describe("slow clients (slow-loris)", () => {
  let server: TestServer;
  let fleet: TestFleet;
  let dev: RawDevice;
  let port: number;

  before(async () => {
    server = await startTestServer(["--body-idle-timeout", "300ms", "--request-timeout", "2s", "--headers-timeout", "1s"]);
    fleet = await testFleet(server.url);
    dev = new RawDevice(fleet.transport, await identity(fleet), randomUUID().toUpperCase());
    await dev.enroll();
    port = Number(new URL(server.url).port);
  });
  after(async () => {
    fleet.close();
    await server.stop();
  });

  const head = (length: number) =>
    `PUT /mdm HTTP/1.1\r\nHost: x\r\nContent-Type: ${COMMAND_TYPE}\r\nX-Client-Cert: ${encodeURIComponent(dev.identity.certPem)}\r\nContent-Length: ${length}\r\n\r\n`;

  test("a body that stalls gets 408 after --body-idle-timeout and its connection is closed", async () => {
    const before = await snapshot(server.store);
    const body = plist({ Status: "Idle", UDID: dev.udid });
    const { reply, closedAfterMs } = await rawExchange(port, [head(body.length) + body.subarray(0, 20).toString("latin1")], 10, 5000);
    assert.match(reply, /^HTTP\/1\.1 408 /);
    assert.match(reply, /request body stalled/);
    assert.ok(closedAfterMs >= 250 && closedAfterMs < 2000, `closed after ${closedAfterMs} ms`);
    assert.ok(server.logs.some((l) => l.includes('"device request refused"') && l.includes('"status":408')));
    assert.deepEqual(await refusalChanges(server.store, before, await snapshot(server.store)), []);
  });

  test("a body trickled a byte at a time is cut off at --request-timeout with 408", async () => {
    const body = plist({ Status: "Idle", UDID: dev.udid });
    const pieces = [head(body.length), ...[...body.toString("latin1")]];
    const { reply, closedAfterMs } = await rawExchange(port, pieces, 100, 8000);
    assert.match(reply, /^HTTP\/1\.1 408 /, reply);
    // The deadline is checked every second: 2 s, plus up to one check interval.
    assert.ok(closedAfterMs >= 1900 && closedAfterMs < 4000, `closed after ${closedAfterMs} ms`);
    assert.ok(server.logs.some((l) => l.includes('"request timed out"')));
  });

  test("headers trickled a byte at a time are cut off at --headers-timeout with 408", async () => {
    const text = head(10);
    const { reply, closedAfterMs } = await rawExchange(port, [...text], 100, 8000);
    assert.match(reply, /^HTTP\/1\.1 408 /, reply);
    assert.ok(closedAfterMs >= 900 && closedAfterMs < 3000, `closed after ${closedAfterMs} ms`);
  });

  test("a client that vanishes mid-body is logged as refused, not as a server error", async () => {
    await rawExchange(port, [head(500) + "<?xml"], 10, 100);
    await sleep(200);
    assert.ok(!server.logs.some((l) => /"level":50/.test(l)), "no error-level line");
    assert.equal((await dev.report("Idle")).status, 200, "the server still answers");
  });
});

describe("API requests are checked before anything is stored", () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer([]);
  });
  after(async () => {
    await server.stop();
  });

  async function refused(method: string, urlPath: string, status: number, reason: RegExp, body?: Buffer | string | object) {
    const before = await snapshot(server.store);
    const r = await server.api(method, urlPath, body);
    assert.equal(r.status, status, `${method} ${urlPath}: ${r.text}`);
    assert.match(r.json.error, reason);
    assert.deepEqual(await refusalChanges(server.store, before, await snapshot(server.store)), []);
  }

  test("a repeated query parameter is 400 (it was a 500: an array reached the store)", async () => {
    await refused("GET", "/v1/enrollments?serial=a&serial=b", 400, /query parameter "serial" must be given once/);
    await refused("GET", "/v1/events?enrollment=a&enrollment=b", 400, /must be given once/);
    await refused("GET", "/v1/users?cursor=a&cursor=b", 400, /must be given once/);
    await refused("GET", "/v1/user-sessions?device=a&device=b", 400, /must be given once/);
  });

  test("a NUL in a path or query value, or in a JSON string, is 400 (PostgreSQL cannot store it: it was a 500 there)", async () => {
    await refused("DELETE", "/v1/queue/%00", 400, /path parameter "id" contains a NUL/);
    await refused("GET", "/v1/enrollments/a%00b", 400, /contains a NUL/);
    await refused("GET", "/v1/enrollments?cursor=%00", 400, /query parameter "cursor" contains a NUL/);
    await refused("PUT", "/v1/users/nul", 400, /full_name contains a NUL/, { full_name: "a\u0000b" });
    await refused("PUT", "/v1/users/nul", 400, /not valid Unicode/, '{"guid":"\\ud800"}');
  });

  test("a malformed percent-encoding is a short 400 in the API's shape, never the URL echoed", async () => {
    const r = await server.api("GET", `/v1/enrollments/%ZZ${"x".repeat(5000)}`);
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { error: "malformed URL: bad percent-encoding", code: "bad_request" });
  });

  test("JSON bodies: not JSON, not an object, invalid UTF-8, unknown or mistyped fields, absurd nesting", async () => {
    await refused("PUT", "/v1/users/j", 400, /is not valid JSON: expected property name or '}' at line 1, column 2/, "{");
    await refused("PUT", "/v1/users/j", 400, /must be a JSON object/, "[]");
    await refused("PUT", "/v1/users/j", 400, /is not valid JSON/, "[".repeat(50_000));
    await refused("PUT", "/v1/users/j", 400, /not valid UTF-8/, Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]));
    await refused("PUT", "/v1/users/j", 400, /unknown field "__proto__"/, '{"__proto__":{"x":1}}');
    await refused("PUT", "/v1/users/j", 400, /password must be a string/, { password: 5 });
    await refused("PUT", "/v1/users/j", 400, /state must be managed or declined/, { state: "root" });
    await refused("POST", "/v1/users/import", 400, /htdigest file is not valid UTF-8/, Buffer.from([0x61, 0x3a, 0xff, 0x0a]));
    // curl --data-binary @a-missing-file sends no body: not a file of no users.
    await refused("POST", "/v1/users/import", 400, /the htdigest file is empty/, Buffer.from(" \n"));
  });

  test("a command plist is parsed and checked before anything is queued", async () => {
    await refused(
      "PUT",
      "/v1/enqueue/X?nopush=1",
      400,
      /command is not a valid plist: DOCTYPE internal subset/,
      `<!DOCTYPE plist [<!ENTITY a "a">]><plist><dict/></plist>`,
    );
    await refused(
      "PUT",
      "/v1/enqueue/X?nopush=1",
      400,
      /command is not a valid plist: duplicate key/,
      xml("<dict><key>Command</key><dict/><key>Command</key><dict/></dict>"),
    );
    await refused("PUT", "/v1/enqueue/X?nopush=1", 400, /Command has no RequestType/, plist({ Command: {} }));
  });
});
