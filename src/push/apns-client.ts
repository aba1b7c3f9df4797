import http2 from "node:http2";
import tls from "node:tls";
import type { Log } from "../core/service.ts";

export interface ApnsClientOptions {
  /** https://api.push.apple.com, the sandbox, or a stand-in. */
  url: string;
  topic: string;
  /** The push certificate and its key (PEM): the TLS client identity. */
  cert: string;
  key: string;
  /** CAs trusted for the APNs server besides Node's bundled roots (--apns-ca). */
  ca?: string[];
  /** Our cap on concurrent streams; the server's SETTINGS_MAX_CONCURRENT_STREAMS also bounds it. */
  maxStreams: number;
  pingIntervalMs: number;
  requestTimeoutMs: number;
  log: Log;
}

export interface ApnsRequest {
  /** Hex device token. */
  token: string;
  pushMagic: string;
  apnsId: string;
  /** apns-expiration: UNIX seconds, 0 = deliver now or never. */
  expiration: number;
  priority: number;
}

export interface ApnsResponse {
  status: number;
  apnsId?: string;
  /** APNs' `reason` for an error. */
  reason?: string;
  /** APNs' `timestamp` (ms) with a 410. */
  timestamp?: number;
}

/** No answer from APNs: connection failed, stream reset, timeout. `refused`: APNs never processed it (GOAWAY). */
export class ApnsTransportError extends Error {
  constructor(
    message: string,
    readonly refused = false,
  ) {
    super(message);
  }
}

interface Pending {
  req: ApnsRequest;
  resolve(r: ApnsResponse): void;
  reject(e: Error): void;
}

interface SessionState {
  session: http2.ClientHttp2Session;
  /** The server's first SETTINGS arrived: its stream limit is known. */
  ready: boolean;
  goaway: boolean;
  lastError?: Error;
}

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL } = http2.constants;

/**
 * One long-lived HTTP/2 connection to APNs for one topic. Requests wait in
 * a queue and go out as streams, never more at once than our cap and the
 * server's SETTINGS_MAX_CONCURRENT_STREAMS. On GOAWAY the connection drains
 * and the next request opens a new one; streams APNs refused are reported
 * as `refused` so the caller can resend them. A PING keeps it alive.
 */
export class ApnsClient {
  /** Streams open now, and the most ever open at once (for the bench). */
  active = 0;
  peakStreams = 0;
  connections = 0;
  private current: SessionState | undefined;
  private readonly queue: Pending[] = [];
  private head = 0;
  private closed = false;
  private readonly ca: string[] | undefined;
  /** Open streams and when each must have been answered (insertion order = oldest first). */
  private readonly deadlines = new Map<http2.ClientHttp2Stream, number>();
  private readonly timedOut = new WeakSet<http2.ClientHttp2Stream>();
  private readonly watchdog: NodeJS.Timeout;

  constructor(private readonly o: ApnsClientOptions) {
    this.ca = o.ca && o.ca.length > 0 ? [...tls.rootCertificates, ...o.ca] : undefined;
    // One timer for every stream's deadline: a timer per stream costs more than the push.
    this.watchdog = setInterval(() => this.expire(), Math.max(50, Math.min(1000, o.requestTimeoutMs / 4)));
    this.watchdog.unref();
  }

  send(req: ApnsRequest): Promise<ApnsResponse> {
    if (this.closed) return Promise.reject(new ApnsTransportError("the APNs client is closed", true));
    return new Promise((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      this.pump();
    });
  }

  /** Drops the connection after its open streams (APNs said 503 Shutdown or IdleTimeout); the next request reconnects. */
  retire(): void {
    const s = this.current;
    if (!s) return;
    this.current = undefined;
    s.session.close();
  }

  /** Lets open streams finish (at most a few seconds), fails what is still queued. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    // Never sent: the caller may send them again at once (a rotated certificate's new client).
    for (const p of this.takeQueued()) p.reject(new ApnsTransportError("the APNs client is closed", true));
    const s = this.current;
    this.current = undefined;
    if (!s || s.session.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => s.session.destroy(), 5000);
      timer.unref();
      s.session.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private expire(): void {
    const now = Date.now();
    let expired = 0;
    for (const [stream, deadline] of this.deadlines) {
      if (deadline > now) break;
      this.deadlines.delete(stream);
      this.timedOut.add(stream);
      stream.close(NGHTTP2_CANCEL);
      expired++;
    }
    // A connection that stopped answering: the retries go to a new one.
    if (expired > 0) {
      this.o.log.warn({ topic: this.o.topic, streams: expired }, "APNs did not answer in time: reconnecting");
      this.retire();
    }
  }

  private get queued(): number {
    return this.queue.length - this.head;
  }

  private takeQueued(): Pending[] {
    const out = this.queue.slice(this.head);
    this.queue.length = 0;
    this.head = 0;
    return out;
  }

  private pump(): void {
    if (this.queued === 0 || this.closed) return;
    const s = this.current ?? this.connect();
    if (!s.ready) return;
    const serverMax = s.session.remoteSettings.maxConcurrentStreams ?? this.o.maxStreams;
    const limit = Math.max(1, Math.min(this.o.maxStreams, serverMax));
    while (this.active < limit && this.queued > 0 && this.current === s) {
      const p = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as Pending;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      this.start(s, p);
    }
  }

  private start(s: SessionState, p: Pending): void {
    const body = Buffer.from(JSON.stringify({ mdm: p.req.pushMagic }));
    let stream: http2.ClientHttp2Stream;
    try {
      stream = s.session.request({
        ":method": "POST",
        ":path": `/3/device/${p.req.token}`,
        "apns-topic": this.o.topic,
        "apns-push-type": "mdm",
        "apns-priority": String(p.req.priority),
        "apns-expiration": String(p.req.expiration),
        "apns-id": p.req.apnsId,
        "content-type": "application/json",
      });
    } catch (err) {
      // The session went away between pump() and here: not sent, try again on a new one.
      if (this.current === s) this.current = undefined;
      p.reject(new ApnsTransportError(`could not open a stream: ${(err as Error).message}`, true));
      queueMicrotask(() => this.pump());
      return;
    }
    this.active++;
    if (this.active > this.peakStreams) this.peakStreams = this.active;
    let status = 0;
    let apnsId: string | undefined;
    const chunks: Buffer[] = [];
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
    };
    this.deadlines.set(stream, Date.now() + this.o.requestTimeoutMs);
    stream.on("response", (headers) => {
      status = Number(headers[":status"]);
      const id = headers["apns-id"];
      apnsId = typeof id === "string" ? id : undefined;
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => settle(() => p.resolve(parseResponse(status, apnsId, chunks))));
    const refused = () => status === 0 && (stream.rstCode === NGHTTP2_REFUSED_STREAM || s.goaway);
    stream.on("error", (err) => settle(() => p.reject(new ApnsTransportError(`stream failed: ${err.message}`, refused()))));
    stream.on("close", () => {
      this.active--;
      this.deadlines.delete(stream);
      if (this.timedOut.has(stream))
        settle(() => p.reject(new ApnsTransportError(`no answer from APNs within ${this.o.requestTimeoutMs} ms`)));
      settle(() => p.reject(new ApnsTransportError(`stream closed without an answer (code ${stream.rstCode})`, refused())));
      this.pump();
    });
    stream.end(body);
  }

  private connect(): SessionState {
    this.connections++;
    const session = http2.connect(this.o.url, { cert: this.o.cert, key: this.o.key, ca: this.ca });
    const s: SessionState = { session, ready: false, goaway: false };
    this.current = s;
    const log = this.o.log;
    const topic = this.o.topic;
    const connectTimer = setTimeout(() => {
      if (!s.ready) session.destroy(new Error(`no TLS/HTTP2 handshake within ${this.o.requestTimeoutMs} ms`));
    }, this.o.requestTimeoutMs);
    connectTimer.unref();
    session.on("remoteSettings", () => {
      if (!s.ready) {
        clearTimeout(connectTimer);
        s.ready = true;
        log.debug({ topic, maxConcurrentStreams: session.remoteSettings.maxConcurrentStreams }, "APNs connection ready");
      }
      if (this.current === s) this.pump();
    });
    session.on("goaway", (errorCode: number, lastStreamID: number, opaqueData?: Buffer) => {
      s.goaway = true;
      const reason = reasonOf(opaqueData);
      log.info({ topic, errorCode, lastStreamID, reason }, "APNs sent GOAWAY: reconnecting");
      if (this.current === s) this.current = undefined;
      // Streams up to lastStreamID still finish on this session; new ones go to a new one.
      queueMicrotask(() => this.pump());
    });
    session.on("error", (err: Error) => {
      s.lastError = err;
    });
    session.on("close", () => {
      clearInterval(ping);
      clearTimeout(connectTimer);
      const wasCurrent = this.current === s;
      if (wasCurrent) this.current = undefined;
      if (!s.ready) {
        // Never connected: fail what waits rather than reconnecting in a loop; the caller retries with backoff.
        const message = `cannot connect to APNs at ${this.o.url}: ${s.lastError?.message ?? "connection closed"}`;
        log.warn({ topic, err: s.lastError?.message }, "APNs connection failed");
        if (wasCurrent) for (const p of this.takeQueued()) p.reject(new ApnsTransportError(message));
      } else {
        if (s.lastError) log.warn({ topic, err: s.lastError.message }, "APNs connection lost");
        this.pump();
      }
    });
    const ping = setInterval(() => {
      if (!session.destroyed && !session.closed) session.ping((err) => err && session.destroy());
    }, this.o.pingIntervalMs);
    ping.unref();
    return s;
  }
}

function parseResponse(status: number, apnsId: string | undefined, chunks: Buffer[]): ApnsResponse {
  const out: ApnsResponse = { status, apnsId };
  if (chunks.length === 0) return out;
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { reason?: unknown; timestamp?: unknown };
    if (typeof body.reason === "string") out.reason = body.reason.slice(0, 100);
    if (typeof body.timestamp === "number" && Number.isFinite(body.timestamp)) out.timestamp = body.timestamp;
  } catch {
    // Not JSON: the status alone says what happened.
  }
  return out;
}

function reasonOf(data: Buffer | undefined): string | undefined {
  if (!data || data.length === 0) return undefined;
  try {
    const r = (JSON.parse(data.toString("utf8")) as { reason?: unknown }).reason;
    return typeof r === "string" ? r.slice(0, 100) : undefined;
  } catch {
    return undefined;
  }
}
