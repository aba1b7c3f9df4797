import net from "node:net";

/** What a load generator needs from a reply. */
export interface RawResponse {
  status: number;
  body: Buffer;
  contentType?: string;
}

const HEAD_END = Buffer.from("\r\n\r\n");
const CRLF = Buffer.from("\r\n");
const MAX_HEAD = 64 * 1024;

/**
 * One keep-alive HTTP/1.1 connection that sends pre-encoded requests (see
 * prebuilt.ts) one at a time and reads replies with a minimal parser
 * (Content-Length or chunked bodies). It exists for load generation: node's
 * http client costs several times more CPU per request than the server under
 * test spends on a bare reply, which would make the client the bottleneck.
 * Plain HTTP only; no redirects, retries or pipelining.
 */
export class RawConnection {
  private buf: Buffer | undefined;
  private pending: { resolve: (r: RawResponse) => void; reject: (e: Error) => void } | undefined;
  private closedError: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err) => this.fail(err));
    socket.on("close", () => this.fail(new Error("connection closed by the server")));
  }

  static connect(baseUrl: string): Promise<RawConnection> {
    const url = new URL(baseUrl);
    if (url.protocol !== "http:") throw new Error(`RawConnection speaks plain HTTP only, not ${url.protocol}`);
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(url.port || 80), url.hostname);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new RawConnection(socket));
      });
      socket.once("error", reject);
    });
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Writes one request (complete HTTP/1.1 bytes) and resolves with its reply. */
  send(wire: Buffer): Promise<RawResponse> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.pending) return Promise.reject(new Error("RawConnection: one request at a time"));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(wire);
    });
  }

  close(): void {
    this.closedError ??= new Error("connection closed");
    this.socket.destroy();
  }

  private fail(err: Error): void {
    this.closedError ??= err;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    let parsed: { response: RawResponse; used: number } | undefined;
    try {
      parsed = parse(this.buf);
    } catch (err) {
      this.fail(err as Error);
      this.socket.destroy();
      return;
    }
    if (!parsed) return;
    this.buf = parsed.used < this.buf.length ? this.buf.subarray(parsed.used) : undefined;
    const p = this.pending;
    this.pending = undefined;
    if (p) p.resolve(parsed.response);
    else this.fail(new Error("reply without a request"));
  }
}

/** Parses one reply from the start of buf; undefined while it is incomplete. */
function parse(buf: Buffer): { response: RawResponse; used: number } | undefined {
  const headEnd = buf.indexOf(HEAD_END);
  if (headEnd === -1) {
    if (buf.length > MAX_HEAD) throw new Error("reply head too long");
    return undefined;
  }
  const head = buf.toString("latin1", 0, headEnd);
  if (!head.startsWith("HTTP/1.")) throw new Error(`not an HTTP reply: ${JSON.stringify(head.slice(0, 40))}`);
  const status = Number(head.slice(9, 12));
  const bodyStart = headEnd + 4;
  let contentType: string | undefined;
  let contentLength = -1;
  let chunked = false;
  // Header lines after the status line.
  let at = head.indexOf("\r\n");
  while (at !== -1) {
    const next = head.indexOf("\r\n", at + 2);
    const line = head.slice(at + 2, next === -1 ? undefined : next);
    const colon = line.indexOf(":");
    if (colon > 0) {
      const name = line.slice(0, colon).toLowerCase();
      if (name === "content-length") contentLength = Number(line.slice(colon + 1).trim());
      else if (name === "transfer-encoding") chunked = /chunked/i.test(line.slice(colon + 1));
      else if (name === "content-type") contentType = line.slice(colon + 1).trim();
    }
    at = next;
  }
  if ((status >= 100 && status < 200) || status === 204 || status === 304) {
    return { response: { status, body: Buffer.alloc(0), contentType }, used: bodyStart };
  }
  if (chunked) return parseChunked(buf, bodyStart, status, contentType);
  if (contentLength < 0) throw new Error("reply without Content-Length or chunked encoding");
  if (buf.length < bodyStart + contentLength) return undefined;
  return { response: { status, body: buf.subarray(bodyStart, bodyStart + contentLength), contentType }, used: bodyStart + contentLength };
}

function parseChunked(buf: Buffer, start: number, status: number, contentType: string | undefined) {
  const parts: Buffer[] = [];
  let at = start;
  for (;;) {
    const lineEnd = buf.indexOf(CRLF, at);
    if (lineEnd === -1) return undefined;
    const size = parseInt(buf.toString("latin1", at, lineEnd), 16);
    if (Number.isNaN(size)) throw new Error("bad chunk size");
    const dataStart = lineEnd + 2;
    if (size === 0) {
      // Trailers (none expected) end with an empty line.
      const end = buf.indexOf(CRLF, dataStart);
      if (end === -1) return undefined;
      if (end !== dataStart) throw new Error("chunked trailers are not supported");
      return { response: { status, body: Buffer.concat(parts), contentType }, used: end + 2 };
    }
    if (buf.length < dataStart + size + 2) return undefined;
    parts.push(buf.subarray(dataStart, dataStart + size));
    at = dataStart + size + 2;
  }
}
