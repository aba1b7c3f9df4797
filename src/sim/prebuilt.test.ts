import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import { createCa, issueDeviceIdentity } from "../identity/testing/pki.ts";
import { parsePlistDict } from "../plist/index.ts";
import { SimDevice } from "./device.ts";
import { encodeRequest, prepare, RecordingTransport, RequestTemplate } from "./prebuilt.ts";
import { RawConnection } from "./raw-http.ts";

// An echo server: answers with what it got, in the form the path asks for.
let server: http.Server;
let url: string;
const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer }> = [];

before(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      if (req.url === "/chunked") {
        res.writeHead(201, { "content-type": "text/plain" });
        res.write("hello, ");
        res.end("world");
      } else if (req.url === "/empty") {
        res.writeHead(200, { "content-length": 0 });
        res.end();
      } else {
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length });
        res.end(body);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

test("RawConnection sends pre-encoded requests on one keep-alive socket", async () => {
  const conn = await RawConnection.connect(url);
  const host = new URL(url).host;
  const body = Buffer.from("<plist>x</plist>");
  const echo = await conn.send(encodeRequest(host, { method: "PUT", path: "/echo", headers: { "x-a": "1" }, body }));
  assert.equal(echo.status, 200);
  assert.deepEqual(echo.body, body);
  assert.equal(echo.contentType, "application/octet-stream");

  const chunked = await conn.send(encodeRequest(host, { method: "PUT", path: "/chunked" }));
  assert.equal(chunked.status, 201);
  assert.equal(chunked.body.toString(), "hello, world");

  const empty = await conn.send(encodeRequest(host, { method: "PUT", path: "/empty", body }));
  assert.equal(empty.status, 200);
  assert.equal(empty.body.length, 0);

  const last = seen.at(-1)!;
  assert.equal(last.headers["content-length"], String(body.length));
  assert.equal(last.headers.host, host);
  conn.close();
  assert.equal(conn.closed, true);
  await assert.rejects(conn.send(encodeRequest(host, { method: "GET", path: "/" })));
});

test("RecordingTransport records a SimDevice's request; a template swaps a same-length value", async () => {
  const ca = await createCa({ commonName: "Prebuilt Test CA" });
  const identity = await issueDeviceIdentity(ca, { commonName: "prebuilt-device" });
  const rec = new RecordingTransport();
  const device = new SimDevice({ transport: rec, identity, mode: { kind: "header", header: "x-client-cert" }, udid: "UDID-1" });

  const idle = await rec.record(() => device.report("Idle"));
  assert.equal(idle.method, "PUT");
  assert.equal(idle.path, "/mdm");
  assert.ok(idle.headers?.["x-client-cert"]);
  assert.deepEqual(parsePlistDict(idle.body!), { Status: "Idle", UDID: "UDID-1" });
  await assert.rejects(rec.send(idle), /not recording/);

  const placeholder = "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX";
  const ack = await rec.record(() => device.report("Acknowledged", { CommandUUID: placeholder }));
  const template = new RequestTemplate(prepare(new URL(url).host, ack), placeholder);
  const uuid = "0A1B2C3D-0000-4000-8000-123456789ABC";
  const filled = template.prepared(uuid);
  assert.equal(parsePlistDict(filled.options.body!).CommandUUID, uuid);
  assert.equal(parsePlistDict(ack.body!).CommandUUID, placeholder, "the recorded request is left alone");
  assert.throws(() => template.wire("short"), /byte length/);

  const conn = await RawConnection.connect(url);
  const echoed = await conn.send(template.wire(uuid));
  assert.equal(parsePlistDict(echoed.body).CommandUUID, uuid);
  conn.close();
});
