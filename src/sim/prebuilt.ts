import type { RequestOptions, Response, Sender } from "./transport.ts";

/**
 * Pre-built requests for load generation. A SimDevice serializes its plist on
 * every call; a load generator wants the exact same bytes without paying for
 * that per request. So the device is run once against a RecordingTransport,
 * which keeps the request instead of sending it, and the recorded request is
 * then encoded to HTTP/1.1 wire bytes once and replayed (see raw-http.ts).
 */

const FAKE_OK: Response = Object.freeze({ status: 200, headers: {}, body: Buffer.alloc(0) }) as Response;

/**
 * A Sender that, inside `record()`, keeps requests instead of sending them
 * (they are answered 200 with an empty body); outside it, passes them to
 * `inner` (if there is none, they fail). While a recording runs every send is
 * recorded, so do not share it with live traffic at the same time.
 */
export class RecordingTransport implements Sender {
  private recorded: RequestOptions[] | undefined;

  constructor(private readonly inner?: Sender) {}

  send(o: RequestOptions): Promise<Response> {
    if (!this.recorded) {
      return this.inner ? this.inner.send(o) : Promise.reject(new Error("RecordingTransport: not recording and nothing to send through"));
    }
    this.recorded.push({ method: o.method, path: o.path, headers: { ...o.headers }, body: o.body && Buffer.from(o.body) });
    return Promise.resolve(FAKE_OK);
  }

  /** Runs `fn` (which must send exactly one request) and returns that request. */
  async record(fn: () => Promise<unknown>): Promise<RequestOptions> {
    if (this.recorded) throw new Error("RecordingTransport: recordings cannot overlap");
    const recorded: RequestOptions[] = (this.recorded = []);
    try {
      await fn();
    } finally {
      this.recorded = undefined;
    }
    if (recorded.length !== 1) throw new Error(`RecordingTransport: expected one request, saw ${recorded.length}`);
    return recorded[0]!;
  }
}

/** A request ready to send: its options (for Transport) and its HTTP/1.1 bytes (for RawConnection). */
export interface PreparedRequest {
  options: RequestOptions;
  wire: Buffer;
}

/** Encodes a request as HTTP/1.1 bytes (keep-alive is HTTP/1.1's default). */
export function encodeRequest(host: string, o: RequestOptions): Buffer {
  const body = o.body ?? Buffer.alloc(0);
  let head = `${o.method} ${o.path} HTTP/1.1\r\nhost: ${host}\r\n`;
  for (const [name, value] of Object.entries(o.headers ?? {})) {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new Error(`header ${name} holds a line break`);
    if (name.toLowerCase() === "content-length" || name.toLowerCase() === "host") continue;
    head += `${name}: ${value}\r\n`;
  }
  head += `content-length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), body]);
}

export function prepare(host: string, options: RequestOptions): PreparedRequest {
  return { options, wire: encodeRequest(host, options) };
}

/**
 * A prepared request with a placeholder (e.g. a CommandUUID) to replace on
 * each use by a value of the same byte length, so Content-Length stays right.
 * Only for requests whose bytes carry no signature over the body (header or
 * TLS identity modes): a substituted body would no longer match an
 * Mdm-Signature.
 */
export class RequestTemplate {
  private readonly wireOffsets: number[];
  private readonly bodyOffsets: number[];
  private readonly length: number;

  constructor(
    private readonly base: PreparedRequest,
    placeholder: string,
  ) {
    const p = Buffer.from(placeholder);
    this.length = p.length;
    this.wireOffsets = offsetsOf(base.wire, p);
    this.bodyOffsets = base.options.body ? offsetsOf(base.options.body, p) : [];
    if (this.wireOffsets.length === 0) throw new Error(`placeholder ${placeholder} not found in the request`);
    if (base.options.path.includes(placeholder) || headerHas(base.options, placeholder)) {
      throw new Error("placeholders are only supported in the body");
    }
  }

  /** The wire bytes with `value` in place of the placeholder. */
  wire(value: string): Buffer {
    const out = Buffer.allocUnsafe(this.base.wire.length);
    this.base.wire.copy(out);
    this.fill(out, this.wireOffsets, value);
    return out;
  }

  /** Both forms with `value` in place of the placeholder. */
  prepared(value: string): PreparedRequest {
    const body = this.base.options.body ? Buffer.from(this.base.options.body) : undefined;
    if (body) this.fill(body, this.bodyOffsets, value);
    return { options: { ...this.base.options, body }, wire: this.wire(value) };
  }

  private fill(buf: Buffer, offsets: number[], value: string): void {
    if (Buffer.byteLength(value) !== this.length) throw new Error("template value must have the placeholder's byte length");
    for (const at of offsets) buf.write(value, at, "utf8");
  }
}

function offsetsOf(haystack: Buffer, needle: Buffer): number[] {
  const found: number[] = [];
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) found.push(at);
  return found;
}

function headerHas(o: RequestOptions, text: string): boolean {
  return Object.entries(o.headers ?? {}).some(([k, v]) => k.includes(text) || v.includes(text));
}
