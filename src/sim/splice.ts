import type { PreparedRequest } from "./prebuilt.ts";

/**
 * A prepared request (see prebuilt.ts) whose body holds a placeholder to be
 * replaced, on each use, by a value of any length: the body is the bytes
 * around the placeholder with the value between them, and the wire bytes are
 * the recorded head with a new Content-Length. For values that change with
 * every request and whose length varies (a DigestResponse carries the
 * server's nonce); RequestTemplate is cheaper when the length is fixed.
 * Like RequestTemplate, only for requests without a signature over the body.
 * The value is inserted as given: escape it for the body's format first.
 */
export class SplicedRequest {
  private readonly headPrefix: Buffer;
  private readonly before: Buffer;
  private readonly after: Buffer;

  constructor(
    private readonly base: PreparedRequest,
    placeholder: string,
  ) {
    const body = base.options.body;
    if (!body) throw new Error("SplicedRequest: the request has no body");
    const p = Buffer.from(placeholder);
    const at = body.indexOf(p);
    if (at === -1) throw new Error(`placeholder ${placeholder} not found in the body`);
    if (body.indexOf(p, at + p.length) !== -1) throw new Error(`placeholder ${placeholder} occurs more than once in the body`);
    this.before = Buffer.from(body.subarray(0, at));
    this.after = Buffer.from(body.subarray(at + p.length));
    // encodeRequest writes Content-Length as the head's last line.
    const headEnd = base.wire.indexOf("\r\n\r\n");
    const lastLine = base.wire.lastIndexOf("\r\n", headEnd - 1) + 2;
    const cl = "content-length: ";
    if (headEnd === -1 || base.wire.toString("latin1", lastLine, lastLine + cl.length).toLowerCase() !== cl) {
      throw new Error("SplicedRequest: the head does not end with Content-Length (not made by encodeRequest?)");
    }
    if (base.wire.length !== headEnd + 4 + body.length) throw new Error("SplicedRequest: wire and body disagree");
    this.headPrefix = Buffer.from(base.wire.subarray(0, lastLine + cl.length));
  }

  /** Both forms of the request with `value` in place of the placeholder. */
  prepared(value: string): PreparedRequest {
    const v = Buffer.from(value);
    const length = this.before.length + v.length + this.after.length;
    const wire = Buffer.concat([this.headPrefix, Buffer.from(`${length}\r\n\r\n`, "latin1"), this.before, v, this.after]);
    return { options: { ...this.base.options, body: wire.subarray(wire.length - length) }, wire };
  }
}
