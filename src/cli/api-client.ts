import type { ApiErrorBody, ErrorCode } from "../http/wire.ts";

/** What the server answered: the status and the body, parsed when it is JSON. */
export interface ApiResponse {
  status: number;
  /** undefined when the body is not JSON. */
  json: unknown;
  text: string;
  /** The body as sent (a signed profile is binary). */
  body: Buffer;
  headers: Headers;
}

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: Buffer;
  contentType?: string;
  /** Further request headers (e.g. a PKCS#12 passphrase); never shown in a message. */
  headers?: Record<string, string>;
}

/** A request that got no usable answer, or an answer that is an error (with the server's stable code, when it gave one). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: ErrorCode,
  ) {
    super(message);
  }
}

const TIMEOUT_MS = 60_000;

/**
 * The operator API over HTTP Basic auth (any user name, the API key as the
 * password). The key never appears in a message this class produces.
 */
export class ApiClient {
  private readonly authorization: string;

  constructor(
    readonly baseUrl: URL,
    apiKey: string,
  ) {
    this.authorization = "Basic " + Buffer.from(`orchard:${apiKey}`).toString("base64");
  }

  /** The full URL of an API path (kept under a base path such as https://host/orchard). */
  url(apiPath: string, query: Record<string, string | undefined> = {}): URL {
    const url = new URL(this.baseUrl.href);
    url.pathname = url.pathname.replace(/\/+$/, "") + apiPath;
    url.search = "";
    url.hash = "";
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    return url;
  }

  async request(method: string, apiPath: string, o: RequestOptions = {}): Promise<ApiResponse> {
    const url = this.url(apiPath, o.query);
    const headers: Record<string, string> = { authorization: this.authorization, accept: "application/json" };
    if (o.body !== undefined) headers["content-type"] = o.contentType ?? "application/octet-stream";
    Object.assign(headers, o.headers);
    let res: Response;
    let body: Buffer;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: o.body === undefined ? undefined : new Uint8Array(o.body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      body = Buffer.from(await res.arrayBuffer());
    } catch (err) {
      throw new ApiError(`cannot reach ${this.baseUrl.origin}: ${fetchReason(err)}`);
    }
    const text = body.toString("utf8");
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text, body, headers: res.headers };
  }

  /** A request whose answer must be a 2xx JSON body; anything else throws ApiError. */
  async get<T>(apiPath: string, query?: Record<string, string | undefined>): Promise<T> {
    return expectOk<T>(await this.request("GET", apiPath, { query }));
  }

  async delete<T>(apiPath: string): Promise<T> {
    return expectOk<T>(await this.request("DELETE", apiPath));
  }
}

export function expectOk<T>(res: ApiResponse): T {
  if (res.status < 200 || res.status > 299) throw new ApiError(errorReason(res), res.status, errorCode(res));
  if (res.json === undefined) throw new ApiError(`the server answered HTTP ${res.status} without JSON`, res.status);
  return res.json as T;
}

/** The `code` of the server's error answer (http/wire.ts ApiErrorBody), if it has one. */
export function errorCode(res: ApiResponse): ErrorCode | undefined {
  const code = (res.json as Partial<ApiErrorBody> | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The server's `{"error": ...}` text, its plain-text reason (non-API routes), or the HTTP status. */
export function errorReason(res: ApiResponse): string {
  const error = (res.json as Partial<ApiErrorBody> | undefined)?.error;
  const plain =
    res.json === undefined && res.text.length <= 500 && !res.text.includes("<") ? res.text.trim().replace(/[\x00-\x1f\x7f]/g, " ") : "";
  const reason = typeof error === "string" && error !== "" ? error : plain !== "" ? `${plain} (HTTP ${res.status})` : `HTTP ${res.status}`;
  if (res.status === 401) return `${reason} (check --api-key or ORCHARD_API_KEY)`;
  return reason;
}

/** TLS failures where the server's certificate chains to a CA Node does not know (a private or self-signed one). */
const UNTRUSTED_CERTIFICATE = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
]);

export function fetchReason(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError") return `no answer within ${TIMEOUT_MS / 1000} s`;
  const code = e.cause?.code;
  if (code && UNTRUSTED_CERTIFICATE.has(code)) {
    return `${code}: the server's certificate is not from a CA this machine trusts; name its CA with NODE_EXTRA_CA_CERTS=ca.pem`;
  }
  return code ?? e.cause?.message ?? e.message ?? String(err);
}

export { splitWarnings } from "../http/warning-header.ts";
