// The webhook's pipelined HTTP/1.1 client (src/webhook/http-client.ts)
// against node's own HTTP server and, for the comparison, node's own client:
// the same requests arrive the same, each answer's status goes back to its
// own request, and the odd receivers: chunked and Content-Length bodies,
// interim 1xx answers, Connection: close, a connection closed mid-batch, a
// receiver that never answers (timeout), nobody listening, an HTTP/1.0
// answer whose body runs to the close, and TLS.
import assert from "node:assert/strict";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import net from "node:net";
import { after, describe, test } from "node:test";
import { generateKeyPair, createCa } from "../src/identity/testing/pki.ts";
import { issueServerCertificate } from "../src/identity/testing/push-cert.ts";
import { buildPost, PipelinedClient, RequestError } from "../src/webhook/http-client.ts";
import { basicAuth } from "../src/url-credentials.ts";

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  socket: net.Socket;
  /** Drops the connection without answering, once every answer before this one on it has been written. */
  drop(): void;
}

/** A node:http receiver; `answer` writes each answer (200 with no body by default). */
async function receiver(answer: (seen: Seen, res: http.ServerResponse, index: number) => void = (_s, res) => res.end()) {
  const seen: Seen[] = [];
  const counts = new Map<net.Socket, { requests: number; finished: number }>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    const socket = req.socket;
    const count = counts.get(socket) ?? { requests: 0, finished: 0 };
    counts.set(socket, count);
    const earlier = count.requests++;
    res.on("finish", () => count.finished++);
    const drop = () => (count.finished >= earlier ? socket.destroy() : setImmediate(drop));
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const s: Seen = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString(), socket, drop };
      const index = seen.push(s) - 1;
      answer(s, res, index);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?x=1`);
  return {
    seen,
    url,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const HEADERS = { "Content-Type": "application/json", "User-Agent": "orchard-webhook", "X-Hmac-Signature": "c2lnbmF0dXJl" };
const body = (i: number) => JSON.stringify({ event_id: `e-${i}`, n: i, text: "é ü 😀" });
const client = (url: URL, o: Partial<ConstructorParameters<typeof PipelinedClient>[1]> = {}) =>
  new PipelinedClient(url, { maxInFlight: 64, maxConnections: 2, timeoutMs: 5_000, ...o });

/** Sends bodies 0..n-1 at once; resolves to each one's status or error. */
async function sendAll(c: PipelinedClient, url: URL, n: number): Promise<Array<number | RequestError>> {
  return Promise.all(Array.from({ length: n }, (_, i) => c.send(buildPost(url, body(i), HEADERS)).catch((err: RequestError) => err)));
}

describe("the pipelined webhook client against node:http", () => {
  const closers: Array<() => unknown> = [];
  after(async () => {
    for (const c of closers) await c();
  });

  test("a request arrives as node's http.request sends it: method, path, host, length, headers, body", async () => {
    const r = await receiver();
    closers.push(r.close);
    const c = client(r.url);
    closers.push(() => c.close());
    assert.equal(await c.send(buildPost(r.url, body(1), HEADERS)), 200);
    await new Promise<void>((resolve, reject) => {
      const req = http.request(r.url, { method: "POST", headers: { ...HEADERS, "Content-Length": Buffer.byteLength(body(1)) } }, (res) => {
        res.resume();
        res.on("end", resolve);
      });
      req.on("error", reject);
      req.end(body(1));
    });
    const [ours, node] = r.seen;
    assert.equal(ours!.method, node!.method);
    assert.equal(ours!.url, "/hook?x=1");
    assert.equal(ours!.url, node!.url);
    assert.equal(ours!.body, node!.body);
    for (const h of ["host", "content-type", "content-length", "user-agent", "x-hmac-signature"]) {
      assert.equal(ours!.headers[h], node!.headers[h], h);
    }
    assert.equal(ours!.headers["transfer-encoding"], undefined);
  });

  test("credentials in the URL become HTTP Basic auth, as node's client sends them", () => {
    assert.equal(basicAuth(new URL("http://us%40er:p%3Ass@h/x")), `Basic ${Buffer.from("us@er:p:ss").toString("base64")}`);
    assert.equal(basicAuth(new URL("http://h/x")), undefined);
  });

  test("many requests pipelined on a few connections: each gets its own status, each arrives once, in order per connection", async () => {
    // The status comes from the body: every seventh request is refused.
    const r = await receiver((s, res) => {
      res.statusCode = JSON.parse(s.body).n % 7 === 3 ? 500 : 200;
      res.end();
    });
    closers.push(r.close);
    const c = client(r.url, { maxInFlight: 64, maxConnections: 2 });
    closers.push(() => c.close());
    const n = 300;
    const statuses = await sendAll(c, r.url, n);
    assert.deepEqual(
      statuses,
      Array.from({ length: n }, (_, i) => (i % 7 === 3 ? 500 : 200)),
    );
    assert.equal(r.seen.length, n, "each request arrives once");
    const sockets = new Set(r.seen.map((s) => s.socket));
    assert.ok(sockets.size <= 2, `${sockets.size} connections`);
    for (const socket of sockets) {
      const ns = r.seen.filter((s) => s.socket === socket).map((s) => JSON.parse(s.body).n as number);
      assert.deepEqual(
        ns,
        [...ns].sort((a, b) => a - b),
        "a connection carries its requests in the order they were sent",
      );
    }
  });

  test("answers with bodies: chunked, Content-Length, 204, and interim 1xx answers before the final one", async () => {
    const r = await receiver((_s, res, i) => {
      switch (i % 5) {
        case 0:
          res.writeHead(202, { "content-type": "text/plain" });
          res.write("accepted, ");
          res.write("chunk by chunk\r\n\r\n0\r\n"); // bytes that look like HTTP inside a chunk
          res.end("done");
          break;
        case 1:
          res.writeHead(200, { "content-length": 11 });
          res.end("HTTP/1.1 5x");
          break;
        case 2:
          res.writeHead(204);
          res.end();
          break;
        case 3:
          res.writeEarlyHints({ link: "</x>; rel=preload" });
          res.writeContinue();
          res.statusCode = 201;
          res.end(JSON.stringify({ ok: true, pad: "x".repeat(100_000) }));
          break;
        default:
          res.statusCode = 503;
          res.end("busy");
      }
    });
    closers.push(r.close);
    const c = client(r.url, { maxConnections: 1 });
    closers.push(() => c.close());
    const statuses = await sendAll(c, r.url, 50);
    assert.deepEqual(
      statuses,
      Array.from({ length: 50 }, (_, i) => [202, 200, 204, 201, 503][i % 5]),
    );
    assert.equal(r.seen.length, 50);
  });

  test("Connection: close mid-batch: the requests behind it go again on a new connection, and every one is answered", async () => {
    const r = await receiver((_s, res, i) => {
      if (i === 4 || i === 20) res.setHeader("connection", "close");
      res.end();
    });
    closers.push(r.close);
    const c = client(r.url, { maxConnections: 1 });
    closers.push(() => c.close());
    const statuses = await sendAll(c, r.url, 40);
    assert.deepEqual(statuses, Array(40).fill(200));
    const got = new Set(r.seen.map((s) => JSON.parse(s.body).n));
    assert.equal(got.size, 40, "every request arrived");
    // (node's server runs the handlers of requests pipelined behind a Connection: close answer it will not
    // send: those arrive twice, which delivery at least once allows.)
    assert.ok(new Set(r.seen.map((s) => s.socket)).size >= 2, "a new connection was opened");
  });

  test("a connection dropped mid-batch: answered requests are not sent again, unanswered ones are sent once more", async () => {
    const dropped = new Set<number>();
    const r = await receiver((s, res) => {
      const n = JSON.parse(s.body).n as number;
      // The first time request 10 arrives the receiver drops the connection without answering it.
      if (n === 10 && !dropped.has(n)) {
        dropped.add(n);
        return s.drop();
      }
      res.end();
    });
    closers.push(r.close);
    const c = client(r.url, { maxConnections: 1 });
    closers.push(() => c.close());
    const statuses = await sendAll(c, r.url, 30);
    assert.deepEqual(statuses, Array(30).fill(200));
    const count = (n: number) => r.seen.filter((s) => JSON.parse(s.body).n === n).length;
    for (let n = 0; n < 10; n++) assert.equal(count(n), 1, `request ${n}, answered before the drop, arrived once`);
    assert.equal(count(10), 2, "the dropped one went again");
  });

  test("a request whose connection is dropped every time fails as unreachable after one more try; those behind it succeed", async () => {
    const r = await receiver((s, res) => {
      if (JSON.parse(s.body).n === 5) return s.drop();
      res.end();
    });
    closers.push(r.close);
    const c = client(r.url, { maxConnections: 1 });
    closers.push(() => c.close());
    const statuses = await sendAll(c, r.url, 12);
    const failed = statuses[5];
    assert.ok(failed instanceof RequestError && failed.outcome === "unreachable", String(failed));
    assert.equal(statuses.filter((s) => s === 200).length, 11);
    assert.equal(r.seen.filter((s) => JSON.parse(s.body).n === 5).length, 2);
  });

  test("a receiver that does not answer: the requests waiting on that connection fail as timeouts; the next one gets through", async () => {
    let hang = true;
    const r = await receiver((_s, res) => {
      if (!hang) res.end();
    });
    closers.push(r.close);
    const c = client(r.url, { maxConnections: 1, timeoutMs: 200 });
    closers.push(() => c.close());
    const statuses = await sendAll(c, r.url, 3);
    for (const s of statuses) assert.ok(s instanceof RequestError && s.outcome === "timeout", String(s));
    hang = false;
    assert.equal(await c.send(buildPost(r.url, body(99), HEADERS)), 200);
  });

  test("nobody listening: unreachable", async () => {
    const r = await receiver();
    await r.close();
    const c = client(r.url);
    closers.push(() => c.close());
    const [s] = await sendAll(c, r.url, 1);
    assert.ok(s instanceof RequestError && s.outcome === "unreachable", String(s));
  });

  test("an HTTP/1.0 answer whose body runs to the end of the connection", async () => {
    const server = net.createServer((socket) => {
      socket.once("data", () => socket.end("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nthanks, bye"));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    closers.push(() => new Promise((resolve) => server.close(resolve)));
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`);
    const c = client(url, { maxConnections: 1 });
    closers.push(() => c.close());
    assert.deepEqual(await sendAll(c, url, 3), [200, 200, 200]);
  });

  test("https: pipelined over TLS", async () => {
    const caKey = await generateKeyPair();
    const ca = await createCa({ commonName: "Webhook TLS Test CA", keyPair: caKey });
    const cert = await issueServerCertificate(ca, { hosts: ["127.0.0.1", "localhost"] });
    const bodies: string[] = [];
    const server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        bodies.push(Buffer.concat(chunks).toString());
        res.end("ok");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    closers.push(
      () =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(resolve);
        }),
    );
    const url = new URL(`https://localhost:${(server.address() as AddressInfo).port}/hook`);
    const c = client(url, { ca: ca.certPem });
    closers.push(() => c.close());
    assert.deepEqual(await sendAll(c, url, 20), Array(20).fill(200));
    assert.equal(bodies.length, 20);
    // Without the CA the certificate is refused: no request goes out.
    const untrusting = client(url);
    closers.push(() => untrusting.close());
    const [refused] = await sendAll(untrusting, url, 1);
    assert.ok(refused instanceof RequestError && refused.outcome === "unreachable", String(refused));
    assert.equal(bodies.length, 20);
  });
});
