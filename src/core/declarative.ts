import { OrchardError } from "../errors.ts";
import { basicAuth } from "../url-credentials.ts";
import type { DeclarativeManagementMessage } from "../protocol/checkin.ts";
import type { CheckinReply, MdmRequest } from "./service.ts";

/**
 * Relays DeclarativeManagement check-ins to an external DDM service, as
 * NanoMDM does: GET <url><Endpoint> when the message has no Data, PUT with
 * the Data otherwise; the service's status and body go back to the device.
 */
export class DeclarativeManagement {
  private readonly baseUrl: string;
  private readonly authorization: string | undefined;

  constructor(
    baseUrl: string,
    private readonly timeoutMs = 10_000,
  ) {
    // fetch refuses a URL that holds credentials, and its refusal quotes the URL (into every check-in's warning):
    // a --dm-url user and password go as Basic authentication.
    const url = new URL(baseUrl);
    this.authorization = basicAuth(url);
    url.username = "";
    url.password = "";
    this.baseUrl = url.href;
  }

  async forward(_req: MdmRequest, msg: DeclarativeManagementMessage): Promise<CheckinReply> {
    const endpoint = msg.endpoint;
    const segments = endpoint.replace(/^\//, "").split("/");
    if (endpoint.length > 1024 || segments.some((s) => s === "" || s === "." || s === "..")) {
      throw new OrchardError(400, "DeclarativeManagement Endpoint is not a valid path");
    }
    const body = msg.data;
    // Declaration identifiers may hold any character: escape each segment.
    const url = this.baseUrl.replace(/\/?$/, "/") + segments.map(encodeURIComponent).join("/");
    let res: Response;
    let reply: Buffer;
    try {
      res = await fetch(url, {
        method: body && body.length > 0 ? "PUT" : "GET",
        body: body && body.length > 0 ? new Uint8Array(body) : undefined,
        headers: {
          "X-Enrollment-ID": msg.channel.id,
          "Content-Type": "application/json",
          ...(this.authorization ? { Authorization: this.authorization } : {}),
        },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      // The body can fail after the headers (the service hung up): same answer.
      reply = Buffer.from(await res.arrayBuffer());
    } catch (err) {
      throw new DdmServiceUnreachable(err);
    }
    return { kind: "raw", status: res.status, contentType: res.headers.get("content-type") ?? undefined, body: reply };
  }
}

/**
 * The DDM service did not answer (not listening, a timeout, a hang-up): a
 * passing condition like a store outage, not Orchard's bug. A 503 with
 * Retry-After, logged by the device handler as one warning line whose `err`
 * is the reason as text (no stack).
 */
export class DdmServiceUnreachable extends OrchardError {
  readonly retryAfterSeconds = 10;
  constructor(err: unknown) {
    super(503, "declarative management service unreachable");
    const e = err as { name?: string; message?: string; cause?: { message?: string } };
    this.cause = e.name === "TimeoutError" ? "no answer in time" : (e.cause?.message ?? e.message ?? String(err));
  }
}
