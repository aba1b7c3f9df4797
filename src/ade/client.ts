// A client of Apple's device assignment API (https://mdmenrollment.apple.com),
// written from NanoDEP's godep and its transport: OAuth1 GET /session for a
// session token, sent as X-ADM-Auth-Session on every call and replaced when
// Apple returns a new one in a response; a new session on 401 and on the 403
// whose body says FORBIDDEN (an expired session); 429 waits Retry-After. The
// consumer secret, access secret and session token never reach an error,
// a log line or an event.
import { authorizationHeader, type OAuth1Credentials } from "./oauth1.ts";

/** NanoDEP's default (client/transport.go): the latest version Apple documents the keys of. */
export const PROTOCOL_VERSION = "7";
export const APPLE_ADE_URL = "https://mdmenrollment.apple.com";
const MEDIA_TYPE = "application/json;charset=UTF8";
const USER_AGENT = "orchard-ade/1";
const ERROR_BODY_CHARS = 200;

export type CursorError = "EXHAUSTED_CURSOR" | "INVALID_CURSOR" | "EXPIRED_CURSOR";

/** Apple answered with an error (or not at all). The message holds the status and Apple's short reason, no secret. */
export class AdeApiError extends Error {
  constructor(
    message: string,
    /** undefined: no answer (network, timeout). */
    readonly status?: number,
    /** Apple's error body, printable and short (e.g. "INVALID_CURSOR"). */
    readonly reason?: string,
  ) {
    super(message);
    this.name = "AdeApiError";
  }

  /** One of the three cursor errors (400), as NanoDEP recognises them: the body contains the string. */
  get cursorError(): CursorError | undefined {
    if (this.status !== 400 || !this.reason) return undefined;
    for (const e of ["EXHAUSTED_CURSOR", "INVALID_CURSOR", "EXPIRED_CURSOR"] as const) if (this.reason.includes(e)) return e;
    return undefined;
  }
}

/** A device as Apple's JSON has it (godep DeviceJson). */
export interface AppleDevice {
  serial_number: string;
  model?: string;
  description?: string;
  color?: string;
  asset_tag?: string;
  os?: string;
  device_family?: string;
  profile_status?: string;
  profile_uuid?: string;
  profile_assign_time?: string;
  profile_push_time?: string;
  device_assigned_by?: string;
  device_assigned_date?: string;
  op_type?: string;
  op_date?: string;
  response_status?: string;
}

export interface DevicePage {
  cursor: string;
  devices?: AppleDevice[];
  fetched_until?: string;
  more_to_follow: boolean;
}

export interface AppleAccount {
  server_name?: string;
  server_uuid?: string;
  admin_id?: string;
  facilitator_id?: string;
  org_name?: string;
  org_email?: string;
  org_phone?: string;
  org_address?: string;
  org_id?: string;
  org_type?: string;
}

/** A DEP profile in Apple's keys (godep ProfileJson). */
export type AppleProfile = Record<string, unknown> & { profile_name: string; url?: string };

export interface DeviceStatuses {
  profile_uuid?: string;
  devices?: Record<string, string>;
}

export interface AdeClientOptions {
  baseUrl: string;
  /** The server token's OAuth1 credentials, read when a session is needed. */
  credentials: () => Promise<OAuth1Credentials>;
  /** Waits (429 Retry-After); injectable so tests do not sleep. */
  sleep?: (ms: number) => Promise<void>;
  /** How many 429s one call waits out before giving up. */
  retries429?: number;
  /** The longest Retry-After honoured; longer ones fail the call (the next sync tries again). */
  maxRetryAfterMs?: number;
  timeoutMs?: number;
}

/** One ABM server's API client; holds that server's session token in memory. */
export class AdeClient {
  private session: string | undefined;
  private readonly base: URL;

  constructor(private readonly o: AdeClientOptions) {
    this.base = new URL(o.baseUrl.replace(/\/+$/, "") + "/");
  }

  account(): Promise<AppleAccount> {
    return this.call("GET", "account");
  }

  /** POST /server/devices: the full list, a page at a time (cursor omitted on the first call). */
  fetchDevices(cursor: string | undefined, limit: number): Promise<DevicePage> {
    return this.call("POST", "server/devices", cursor ? { cursor, limit } : { limit });
  }

  /** POST /devices/sync: what changed since the cursor. */
  syncDevices(cursor: string, limit: number): Promise<DevicePage> {
    return this.call("POST", "devices/sync", { cursor, limit });
  }

  deviceDetails(serials: string[]): Promise<{ devices?: Record<string, AppleDevice> }> {
    return this.call("POST", "devices", { devices: serials });
  }

  defineProfile(profile: AppleProfile): Promise<DeviceStatuses> {
    return this.call("POST", "profile", profile);
  }

  getProfile(uuid: string): Promise<AppleProfile> {
    return this.call("GET", `profile?profile_uuid=${encodeURIComponent(uuid)}`);
  }

  /** PUT, as NanoDEP sends it (Apple's documentation now says POST; both are accepted). */
  assignProfile(uuid: string, serials: string[]): Promise<DeviceStatuses> {
    return this.call("PUT", "profile/devices", { profile_uuid: uuid, devices: serials });
  }

  removeProfile(serials: string[]): Promise<DeviceStatuses> {
    return this.call("DELETE", "profile/devices", { devices: serials });
  }

  /** Permanently gives the devices up in ABM. */
  disownDevices(serials: string[]): Promise<DeviceStatuses> {
    return this.call("POST", "devices/disown", { devices: serials });
  }

  /** Forgets the session (tests; a new token). */
  resetSession(): void {
    this.session = undefined;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(path, this.base);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let reauthed = false;
    let waited = 0;
    for (;;) {
      if (this.session === undefined) {
        await this.authenticate();
        reauthed = true;
      }
      const res = await this.send(method, url, payload, this.session);
      const renewed = res.headers.get("x-adm-auth-session");
      if (renewed) this.session = renewed;
      const text = await res.text().catch(() => "");
      if (res.status === 200) {
        if (text === "") return {} as T;
        try {
          return JSON.parse(text) as T;
        } catch {
          throw new AdeApiError(`${method} /${path}: Apple's answer is not JSON`, res.status);
        }
      }
      const expired = res.status === 401 || (res.status === 403 && text.includes("FORBIDDEN"));
      if (expired && !reauthed) {
        this.session = undefined;
        continue;
      }
      if (res.status === 429 && waited < (this.o.retries429 ?? 3)) {
        const ms = retryAfterMs(res.headers.get("retry-after"));
        if (ms <= (this.o.maxRetryAfterMs ?? 120_000)) {
          waited++;
          await (this.o.sleep ?? sleep)(ms);
          continue;
        }
      }
      const reason = shortReason(text);
      throw new AdeApiError(`${method} /${path}: Apple answered HTTP ${res.status}${reason ? ` ${reason}` : ""}`, res.status, reason);
    }
  }

  private async authenticate(): Promise<void> {
    const url = new URL("session", this.base);
    const credentials = await this.o.credentials();
    let res: Response;
    try {
      res = await fetch(url, {
        method: "GET",
        headers: {
          authorization: authorizationHeader("GET", url, credentials),
          "content-type": MEDIA_TYPE,
          "x-server-protocol-version": PROTOCOL_VERSION,
          "user-agent": USER_AGENT,
        },
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw new AdeApiError(`GET /session: no answer from ${this.base.origin}: ${networkReason(err)}`);
    }
    const text = await res.text().catch(() => "");
    if (res.status !== 200) {
      const reason = shortReason(text);
      throw new AdeApiError(
        `GET /session: Apple refused the server token (HTTP ${res.status}${reason ? ` ${reason}` : ""}): upload a new token if it expired or was revoked`,
        res.status,
        reason,
      );
    }
    let token: unknown;
    try {
      token = (JSON.parse(text) as { auth_session_token?: unknown }).auth_session_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== "string" || token === "") throw new AdeApiError("GET /session: Apple's answer has no auth_session_token", 200);
    this.session = token;
  }

  private async send(method: string, url: URL, payload: string | undefined, session: string | undefined): Promise<Response> {
    const headers: Record<string, string> = {
      "x-server-protocol-version": PROTOCOL_VERSION,
      "user-agent": USER_AGENT,
      accept: MEDIA_TYPE,
    };
    if (session) headers["x-adm-auth-session"] = session;
    if (payload !== undefined) headers["content-type"] = MEDIA_TYPE;
    try {
      return await fetch(url, { method, headers, body: payload, signal: AbortSignal.timeout(this.o.timeoutMs ?? 30_000) });
    } catch (err) {
      throw new AdeApiError(`${method} ${url.pathname}: no answer from ${this.base.origin}: ${networkReason(err)}`);
    }
  }
}

/** Retry-After as seconds or an HTTP date; absent or unreadable: 1 s. */
export function retryAfterMs(value: string | null, now = Date.now()): number {
  if (value === null) return 1000;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? 1000 : Math.max(0, at - now);
}

/** Apple's error body (a code such as INVALID_CURSOR, or a short JSON), printable and cut short. */
function shortReason(text: string): string {
  return text
    .replace(/[\x00-\x1f\x7f]/g, " ")
    .trim()
    .slice(0, ERROR_BODY_CHARS);
}

function networkReason(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError") return "timed out";
  return e.cause?.code ?? e.cause?.message ?? e.message ?? "error";
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
