// A raw HTTP/1.1 client over one TCP (or TLS, for https URLs) connection, for tests that need what
// fetch hides: a body sent in part, a request on an idle keep-alive connection,
// an answer that comes before the body, a connection the server closes.
import net from "node:net";
import tls from "node:tls";

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export class RawConnection {
  readonly socket: net.Socket;
  private buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  readonly connected: Promise<void>;

  constructor(url: string) {
    const u = new URL(url);
    const secure = u.protocol === "https:";
    this.socket = secure
      ? tls.connect({ port: Number(u.port), host: u.hostname, rejectUnauthorized: false })
      : net.connect(Number(u.port), u.hostname);
    this.connected = new Promise((resolve, reject) => {
      this.socket.once(secure ? "secureConnect" : "connect", () => resolve());
      this.socket.once("error", reject);
    });
    this.socket.on("error", () => {}); // a reset is an outcome the tests look at, not a failure
    this.socket.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake();
    });
    this.socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Writes a request's head; the body (if any) follows with write(). */
  head(method: string, path: string, headers: Record<string, string | number>): void {
    const lines = [`${method} ${path} HTTP/1.1`, "Host: orchard.test", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    this.socket.write(lines.join("\r\n") + "\r\n\r\n");
  }

  /** Writes body bytes, resolving once the socket took them (false: the connection is gone). */
  write(data: Buffer): Promise<boolean> {
    if (this.closed || this.socket.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(data, (err) => resolve(!err)));
  }

  /** The next complete answer, or undefined when the connection closes first. */
  async answer(): Promise<RawAnswer | undefined> {
    for (;;) {
      const parsed = this.take();
      if (parsed) return parsed;
      if (this.closed) return undefined;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** True once an answer (or a close) has arrived, without waiting. */
  get hasAnswer(): boolean {
    return this.buffer.includes("\r\n\r\n") || this.closed;
  }

  private take(): RawAnswer | undefined {
    const end = this.buffer.indexOf("\r\n\r\n");
    if (end < 0) return undefined;
    const [statusLine, ...lines] = this.buffer.subarray(0, end).toString("latin1").split("\r\n");
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const i = line.indexOf(":");
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const length = Number(headers["content-length"] ?? 0);
    if (this.buffer.length < end + 4 + length) return undefined;
    const body = this.buffer.subarray(end + 4, end + 4 + length).toString("utf8");
    this.buffer = this.buffer.subarray(end + 4 + length);
    return { status: Number(statusLine!.split(" ")[1]), headers, body };
  }

  close(): void {
    this.socket.destroy();
  }
}
