import net from "node:net";
import tls from "node:tls";

// The webhook's HTTP/1.1 client: a few keep-alive connections to the one
// receiver, with requests PIPELINED on each (the POSTs of a batch written in
// one socket write, the answers read back in order). It replaces node's
// http.request per event, which was the bottleneck (BENCHMARKS.md,
// 2026-12-03: webhooks): with node's client, delivering cost 0.068 ms of
// server CPU per event on top of writing it to the outbox (wh-idle-store
// 0.153 against wh-idle-on 0.221 CPU s per 1,000 Idle polls, same run), and
// swapping in this client, nothing else changed, took wh-idle-on from 0.306
// to 0.215 (3 runs each, one after the other). A request here is one buffer written with the
// others of its turn of the event loop; an answer is parsed with a few
// indexOf calls and nothing is allocated for its headers or body.
// test/webhook-client.test.ts checks it against node's http server and
// client (bodies, 1xx, Connection: close, connections dropped mid-batch, a
// receiver that never answers, HTTP/1.0, TLS).
//
// What it does with an answer is only to read its status: bodies are
// skipped (Content-Length, chunked, or until the connection closes), 1xx
// interim answers are skipped. A request that a closed connection left
// unanswered is sent again once on a new connection (the receiver may have
// taken it: delivery is at least once anyway); after a `Connection: close`
// answer, the requests behind it were not taken and go again without limit.
// No answer within the timeout fails every request waiting on that
// connection (its socket is destroyed).

/** Why a request got no status. */
export type RequestFailure = "timeout" | "unreachable";

export class RequestError extends Error {
  constructor(
    readonly outcome: RequestFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface PipelinedClientOptions {
  /** Requests in flight at once, over all connections. */
  maxInFlight: number;
  /** Connections opened at most; the requests in flight are spread over them. */
  maxConnections: number;
  /** A connection whose oldest request is not answered within this is destroyed, its requests failed (timeout). */
  timeoutMs: number;
  /** Extra trusted CAs for https (tests); the system's are used otherwise. */
  ca?: string | Buffer;
}

interface Pending {
  wire: Buffer;
  resolve(status: number): void;
  reject(err: RequestError): void;
  sentAt: number;
  /** Times it was sent and left unanswered by a connection that closed. */
  lost: number;
}

const MAX_HEAD = 64 * 1024;
const MAX_LINE = 8 * 1024;

/** A POST of a JSON body: the request's bytes, built once. */
export function buildPost(url: URL, body: string, headers: Readonly<Record<string, string>>): Buffer {
  let head = `POST ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return Buffer.from(`${head}\r\n${body}`);
}

export class PipelinedClient {
  private readonly conns: Connection[] = [];
  private readonly queue: Pending[] = [];
  private inFlight = 0;
  private flushScheduled = false;
  private closed = false;
  private readonly depth: number;

  constructor(
    readonly url: URL,
    private readonly o: PipelinedClientOptions,
  ) {
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`not an http(s) URL: ${url.protocol}`);
    this.depth = Math.max(1, Math.ceil(o.maxInFlight / Math.max(1, o.maxConnections)));
  }

  /** Sends one request (complete bytes, see buildPost); resolves to the answer's status. */
  send(wire: Buffer): Promise<number> {
    if (this.closed) return Promise.reject(new RequestError("unreachable", "the client is closed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ wire, resolve, reject, sentAt: 0, lost: 0 });
      this.schedule();
    });
  }

  /** Fails everything waiting or in flight (unreachable) and closes the connections. */
  close(): void {
    this.closed = true;
    const err = new RequestError("unreachable", "the client was closed");
    for (const p of this.queue.splice(0)) p.reject(err);
    for (const c of this.conns.splice(0)) c.destroy(err);
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Everything sent in this turn of the event loop goes out in one write per connection.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Hands queued requests to connections, least loaded first, opening new ones up to maxConnections. */
  private flush(): void {
    if (this.closed) return;
    while (this.queue.length > 0 && this.inFlight < this.o.maxInFlight) {
      const conn = this.pick();
      if (!conn) break;
      const room = Math.min(this.depth - conn.load, this.o.maxInFlight - this.inFlight);
      const batch = this.queue.splice(0, room);
      this.inFlight += batch.length;
      conn.send(batch);
    }
    for (const c of this.conns) c.write();
  }

  private pick(): Connection | undefined {
    let best: Connection | undefined;
    for (const c of this.conns) {
      if (c.usable && c.load < this.depth && (!best || c.load < best.load)) best = c;
    }
    // An idle connection is taken first; a new one is opened before piling onto a busy one.
    if (best && best.load === 0) return best;
    if (this.conns.length < this.o.maxConnections) {
      const c = new Connection(this.url, this.o, {
        answered: (p, status) => {
          this.inFlight--;
          p.resolve(status);
          this.schedule();
        },
        failed: (p, err) => {
          this.inFlight--;
          p.reject(err);
          this.schedule();
        },
        again: (ps) => {
          this.inFlight -= ps.length;
          this.queue.unshift(...ps);
          this.schedule();
        },
        gone: (c) => {
          const i = this.conns.indexOf(c);
          if (i >= 0) this.conns.splice(i, 1);
          this.schedule();
        },
      });
      this.conns.push(c);
      return c;
    }
    return best;
  }
}

interface ConnectionEvents {
  answered(p: Pending, status: number): void;
  failed(p: Pending, err: RequestError): void;
  /** Requests to send again on another connection. */
  again(ps: Pending[]): void;
  /** The connection is closed and takes no more requests. */
  gone(c: Connection): void;
}

enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailer,
  UntilClose,
}

/** One keep-alive connection with requests pipelined on it. */
class Connection {
  private readonly socket: net.Socket;
  /** Sent (or to be written at the next write), answered in this order. */
  private readonly inFlight: Pending[] = [];
  private readonly unwritten: Buffer[] = [];
  private connected = false;
  private dead = false;
  /** The connection closes after the answer being read (Connection: close). */
  private closeAfter = false;
  private timer: NodeJS.Timeout | undefined;

  // The answer parser.
  private state = State.Head;
  private buf: Buffer | undefined;
  private remaining = 0;
  private status = 0;

  constructor(
    url: URL,
    private readonly o: PipelinedClientOptions,
    private readonly events: ConnectionEvents,
  ) {
    const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    // A bracketed IPv6 literal connects without its brackets.
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    this.socket =
      url.protocol === "https:"
        ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ALPNProtocols: ["http/1.1"], ca: o.ca })
        : net.connect(port, host);
    this.socket.setNoDelay(true);
    this.socket.once(url.protocol === "https:" ? "secureConnect" : "connect", () => {
      this.connected = true;
      this.write();
    });
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.socket.on("error", (err) => this.onClose(err));
    this.socket.on("close", () => this.onClose(undefined));
  }

  get load(): number {
    return this.inFlight.length;
  }

  get usable(): boolean {
    return !this.dead && !this.closeAfter;
  }

  send(batch: Pending[]): void {
    for (const p of batch) {
      p.sentAt = 0;
      this.inFlight.push(p);
      this.unwritten.push(p.wire);
    }
  }

  /** Writes what was handed to it since the last write, in one socket write. */
  write(): void {
    if (!this.connected || this.dead || this.unwritten.length === 0) return;
    const now = Date.now();
    const n = this.unwritten.length;
    for (let i = this.inFlight.length - n; i < this.inFlight.length; i++) this.inFlight[i]!.sentAt = now;
    this.socket.write(n === 1 ? this.unwritten[0]! : Buffer.concat(this.unwritten));
    this.unwritten.length = 0;
    this.arm();
  }

  destroy(err: RequestError): void {
    this.fail(err);
  }

  /** Watches the oldest request in flight. */
  private arm(): void {
    if (this.timer || this.dead) return;
    const head = this.inFlight[0];
    if (!head || head.sentAt === 0) return;
    const wait = Math.max(1, head.sentAt + this.o.timeoutMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const oldest = this.inFlight[0];
      if (!oldest || oldest.sentAt === 0) return;
      if (Date.now() - oldest.sentAt >= this.o.timeoutMs) {
        this.fail(new RequestError("timeout", `no answer within ${this.o.timeoutMs} ms`));
      } else this.arm();
    }, wait);
    this.timer.unref();
  }

  /** Every request on the connection fails with err; the connection is destroyed. */
  private fail(err: RequestError): void {
    if (this.dead) return;
    this.dead = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket.destroy();
    for (const p of this.inFlight.splice(0)) this.events.failed(p, err);
    this.events.gone(this);
  }

  private onClose(err: Error | undefined): void {
    if (this.dead) return;
    // A body that ran to the end of the connection: its answer is complete (and the rest go again).
    if (this.state === State.UntilClose && this.inFlight.length > 0) return void this.answered();
    this.dead = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket.destroy();
    const left = this.inFlight.splice(0);
    if (!this.connected) {
      // Never connected: the receiver is not there.
      const e = new RequestError("unreachable", err ? err.message : "connection closed before it was established");
      for (const p of left) this.events.failed(p, e);
    } else {
      // Closed with requests unanswered: they go again on another connection. The first of them
      // (the one the receiver was at) goes again once: a request that makes the receiver drop the
      // connection every time fails, and those behind it get through.
      const head = left[0];
      if (head && !this.closeAfter && ++head.lost > 1) {
        left.shift();
        this.events.failed(
          head,
          new RequestError("unreachable", err ? err.message : "the receiver closed the connection before answering"),
        );
      }
      if (left.length > 0) this.events.again(left);
    }
    this.events.gone(this);
  }

  private answered(): void {
    const p = this.inFlight.shift();
    this.state = State.Head;
    if (p) this.events.answered(p, this.status);
    if (this.closeAfter) {
      // The receiver ends the connection after this answer: the rest go on another one, not counted as lost.
      this.dead = true;
      if (this.timer) clearTimeout(this.timer);
      this.socket.destroy();
      const left = this.inFlight.splice(0);
      if (left.length > 0) this.events.again(left);
      this.events.gone(this);
      return;
    }
    this.arm();
  }

  private protocolError(message: string): void {
    // The receiver speaks something else: what it answered is not trusted, nothing on it is sent again here.
    this.fail(new RequestError("unreachable", `bad answer from the receiver: ${message}`));
  }

  private onData(chunk: Buffer): void {
    if (this.dead) return;
    const data = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = undefined;
    let at = 0;
    while (at < data.length && !this.dead) {
      switch (this.state) {
        case State.Head: {
          const end = data.indexOf("\r\n\r\n", at, "latin1");
          if (end === -1) {
            if (data.length - at > MAX_HEAD) return void this.protocolError("answer head too long");
            this.buf = data.subarray(at);
            return;
          }
          if (this.inFlight.length === 0) return void this.protocolError("an answer to no request");
          const head = data.toString("latin1", at, end);
          at = end + 4;
          if (!this.readHead(head)) return;
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, data.length - at);
          at += n;
          this.remaining -= n;
          if (this.remaining === 0) this.answered();
          break;
        }
        case State.ChunkSize:
        case State.ChunkEnd:
        case State.Trailer: {
          const end = data.indexOf("\r\n", at, "latin1");
          if (end === -1) {
            if (data.length - at > MAX_LINE) return void this.protocolError("chunk line too long");
            this.buf = data.subarray(at);
            return;
          }
          const line = data.toString("latin1", at, end);
          at = end + 2;
          if (this.state === State.ChunkEnd) {
            if (line !== "") return void this.protocolError("chunk without its CRLF");
            this.state = State.ChunkSize;
          } else if (this.state === State.ChunkSize) {
            const size = Number.parseInt(line, 16);
            if (!/^[0-9a-fA-F]+/.test(line) || Number.isNaN(size)) return void this.protocolError("bad chunk size");
            if (size === 0) this.state = State.Trailer;
            else {
              this.remaining = size;
              this.state = State.ChunkData;
            }
          } else if (line === "") this.answered();
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, data.length - at);
          at += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = State.ChunkEnd;
          break;
        }
        case State.UntilClose:
          // The body runs to the end of the connection.
          at = data.length;
          break;
      }
    }
  }

  /** Reads an answer's head; false when the connection failed on it. */
  private readHead(head: string): boolean {
    const m = /^HTTP\/1\.([01]) (\d{3})/.exec(head);
    if (!m) {
      this.protocolError(`not an HTTP/1.x answer: ${JSON.stringify(head.slice(0, 40))}`);
      return false;
    }
    const http10 = m[1] === "0";
    const status = Number(m[2]);
    let length = -1;
    let chunked = false;
    let connection = "";
    let lineStart = head.indexOf("\r\n");
    while (lineStart !== -1) {
      const next = head.indexOf("\r\n", lineStart + 2);
      const line = head.slice(lineStart + 2, next === -1 ? undefined : next);
      lineStart = next;
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === "content-length") {
        if (!/^\d+$/.test(value)) {
          this.protocolError("bad Content-Length");
          return false;
        }
        length = Number(value);
      } else if (name === "transfer-encoding") chunked = /(^|,)\s*chunked\s*$/i.test(value);
      else if (name === "connection") connection = value.toLowerCase();
    }
    // Interim answers (100 Continue, 103 Early Hints): the final one follows.
    if (status >= 100 && status < 200) return true;
    this.status = status;
    if (connection.includes("close") || (http10 && !connection.includes("keep-alive"))) this.closeAfter = true;
    if (status === 204 || status === 304) this.answered();
    else if (chunked) this.state = State.ChunkSize;
    else if (length > 0) {
      this.remaining = length;
      this.state = State.Length;
    } else if (length === 0) this.answered();
    else {
      this.state = State.UntilClose;
      this.closeAfter = true;
    }
    return true;
  }
}
