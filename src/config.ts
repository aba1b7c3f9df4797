import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import type { RebindPolicy } from "./core/cert-binding.ts";
import type { UserAuthOptions } from "./core/userauth.ts";
import type { PushOptions } from "./push/index.ts";
import { apnsCaProblem } from "./push/apns-ca.ts";
import { DEFAULT_TOPICS, parseTopics, type WebhookOptions } from "./webhook/options.ts";
import type { AdeOptions } from "./ade/service.ts";
import { APPLE_ADE_URL } from "./ade/client.ts";
import { APPLE_SOFTWARE_LOOKUP_URL } from "./updates/feed-source.ts";
import type { SoftwareUpdateOptions } from "./updates/service.ts";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { isIP } from "node:net";
import os from "node:os";
import { DURATION_EXAMPLES, durationMs } from "./duration.ts";

/** One validated configuration for `orchard serve`: flags, then ORCHARD_* variables, then defaults. */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  storage?: string;
  storagePoolSize: number;
  apiKey?: string;
  caFiles: string[];
  /** Accept any device certificate within its validity (labs only): --insecure-accept-any-device-cert. */
  insecureAcceptAnyDeviceCert: boolean;
  /** Who may re-bind an enrolled device to another identity certificate (docs/enrolling-devices.md, Re-enrollment). */
  rebind: RebindConfig;
  certHeader?: string;
  tlsCert?: string;
  tlsKey?: string;
  checkinPath: string;
  serverPath: string;
  dmUrl?: string;
  logLevel: string;
  /** Believe X-Forwarded-* from these proxies (the parser never yields true: it refuses "--trust-proxy true"). */
  trustProxy: boolean | string[];
  /** --metrics-listen: a second listener serving /metrics without the API key (an internal network's); off when undefined. */
  metricsListen?: { host: string; port: number };
  checkinBodyLimit: number;
  resultRetentionMs: number;
  eventRetentionMs: number;
  reportBodyLimit: number;
  /** Largest DDM asset or stored profile an operator uploads (PUT /v1/ddm/assets, /v1/ddm/profiles). */
  assetBodyLimit: number;
  /** Hostile-input limits: timeouts, API key failures, plist parser caps (docs/reliability.md). */
  limits: LimitsConfig;
  userAuth: UserAuthConfig;
  push: PushConfig;
  enrollment: EnrollmentConfig;
  /** --webhook-url and its settings; undefined: no webhook (nothing is written to the outbox). */
  webhook?: WebhookOptions;
  /** Automated Device Enrollment (src/ade/, docs/automated-enrollment.md). */
  ade: AdeConfig;
  /** OS updates through DDM: the software lookup feed (src/updates/, docs/software-updates.md). */
  softwareUpdates: SoftwareUpdateOptions;
  /** Operator sessions and the audit log (docs/operators.md). */
  operators: OperatorsConfig;
}

export interface OperatorsConfig {
  /** A browser session unused this long ends (--session-idle-timeout). */
  sessionIdleMs: number;
  /** A browser session ends this long after sign-in, used or not (--session-max-age). */
  sessionMaxAgeMs: number;
  /** Audit log entries are kept this long; 0: forever (--audit-retention). */
  auditRetentionMs: number;
}

/** Apple's device assignment API, the sync schedule and the enrollment URL's trust (src/ade/, docs/automated-enrollment.md). */
export type AdeConfig = AdeOptions & {
  /** --ade-device-ca: PEM file of Apple's device CA(s) MachineInfo signers must chain to. */
  deviceCaFile?: string;
};

/** The re-binding policy of core/cert-binding.ts. */
/** The re-binding policy (src/core/cert-binding.ts, docs/enrolling-devices.md). */
export type RebindConfig = RebindPolicy;

/** The device CA, SCEP and enrollment profiles (src/enroll/, src/scep/, docs/enrolling-devices.md). */
export interface EnrollmentConfig {
  /** An existing device CA instead of the one created in the data dir. */
  deviceCaCert?: string;
  deviceCaKey?: string;
  /** Lifetime of the device identity certificates the CA issues. */
  deviceCertDays: number;
  /** The URL devices reach this server at (ServerURL, CheckInURL and the SCEP URL in profiles); default: the request's. */
  publicUrl?: string;
  /** Lets GET /enroll hand out profiles without the API key (?token=...). */
  enrollmentToken?: string;
  /** How long a SCEP challenge password stays usable. */
  scepChallengeTtlMs: number;
  /** PEM certificate and key that sign enrollment profiles (CMS). */
  profileSigner?: string;
}

/** APNs pushes and push certificates (src/push/, docs/push.md). */
export type PushConfig = PushOptions;

export const APNS_PRODUCTION = "https://api.push.apple.com";
export const APNS_SANDBOX = "https://api.sandbox.push.apple.com";

export interface LimitsConfig {
  /** Time a client has to send a request's headers. */
  headersTimeoutMs: number;
  /** Time a client has to send a whole request, headers and body. */
  requestTimeoutMs: number;
  /** Longest pause between two pieces of a device request's body. */
  bodyIdleTimeoutMs: number;
  /** Failed API key attempts per client address before 429. */
  apiMaxFailures: number;
  apiFailureWindowMs: number;
  /** Open connections past which new ones get 503; undefined: derived from the descriptor limit at start. */
  maxConnections?: number;
  /** In-flight body bytes of device requests not identified yet (Mdm-Signature), server-wide. */
  unidentifiedBodyBudget: number;
  plist: { maxDepth: number; maxKeys: number; maxStringBytes: number; maxDataBytes: number };
}

/** Network users' UserAuthenticate (src/core/userauth.ts, docs/network-users.md). */
export type UserAuthConfig = UserAuthOptions;

export class ConfigError extends Error {}

/** The shortest API key or enrollment token Orchard takes; a generated API key has 32 characters. */
export const MIN_SECRET_LENGTH = 24;

/**
 * A new API key: 192 random bits in base64url, never starting with "-" or
 * "_" (one key in 32 would: `--api-key -Kz...` is then refused as ambiguous).
 */
export function newApiKey(): string {
  for (;;) {
    const key = randomBytes(24).toString("base64url");
    if (/^[A-Za-z0-9]/.test(key)) return key;
  }
}

export function requireLongSecret(what: string, value: string | undefined): void {
  if (value !== undefined && value.length < MIN_SECRET_LENGTH) {
    throw new ConfigError(
      `${what} must be at least ${MIN_SECRET_LENGTH} characters (e.g. openssl rand -hex 16): it is what stops guessing`,
    );
  }
}

/** pino's levels; anything else would end the process with a stack trace. */
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

// Every flag, with its kind, default and help: the one table the parser,
// `orchard serve --help` and the README's flag table (kept equal by a test)
// come from. `shown` is the default as told when it is not a plain value. The
// environment variable of a flag is ORCHARD_ and its name in upper case with
// '-' as '_' (--data-dir: ORCHARD_DATA_DIR).
export const SERVE_FLAGS = {
  listen: { type: "string", default: "127.0.0.1:9000", arg: "HOST:PORT", help: "where to listen" },
  "metrics-listen": {
    type: "string",
    arg: "HOST:PORT",
    shown: "off",
    help: "also serve `/metrics` WITHOUT the API key on this address (an internal network's); `GET /v1/metrics` with the key always works",
  },
  "data-dir": { type: "string", default: "./data", arg: "DIR", help: "holds `orchard.db` and generated secrets" },
  storage: {
    type: "string",
    arg: "URL",
    shown: "SQLite in the data dir",
    help: "`sqlite:/path/file.db` or `postgres://user@host:port/db`",
  },
  "storage-pool-size": { type: "string", default: "10", arg: "N", help: "PostgreSQL connections per process" },
  "api-key": { type: "string", arg: "KEY", shown: "generated", help: "the operator API's key (at least 24 characters)" },
  ca: {
    type: "string",
    multiple: true,
    arg: "FILE",
    help: "device identity CA (PEM), repeatable; `ORCHARD_CA` takes a comma-separated list",
  },
  "insecure-accept-any-device-cert": {
    type: "boolean",
    default: false,
    help: "accept any device certificate within its validity, self-signed ones included (labs only; warned at start)",
  },
  rebind: {
    type: "string",
    default: "held",
    arg: "held|any",
    help: "`held`: another certificate's `Authenticate` for an enrolled device waits (silence, CheckOut or approval); `any`: it re-binds at once, as other MDM servers do",
  },
  "rebind-after-silence": {
    type: "string",
    default: "7d",
    help: "past this silence of the device's current identity, a held certificate's `Authenticate` pushes that identity (see `--rebind-push-grace`)",
  },
  "rebind-push-grace": {
    type: "string",
    default: "1h",
    help: "a held certificate is bound once the current identity has also left that push unanswered this long (a live device answers in seconds)",
  },
  "cert-header": {
    type: "string",
    arg: "NAME",
    help: "read the device certificate from this proxy header (believed from `--trust-proxy` peers; without it from loopback only)",
  },
  "tls-cert": {
    type: "string",
    arg: "FILE",
    help: "serve HTTPS with this certificate (and chain) and request client certificates; with `--tls-key`",
  },
  "tls-key": { type: "string", arg: "FILE", help: "the key of `--tls-cert`" },
  "checkin-path": { type: "string", default: "/checkin", help: "the CheckInURL path" },
  "server-path": { type: "string", default: "/mdm", help: "the ServerURL path (also takes check-ins)" },
  "dm-url": {
    type: "string",
    arg: "URL",
    help: "forward `DeclarativeManagement` check-ins to this DDM service (KMFDDM); without it Orchard serves DDM itself",
  },
  "log-level": { type: "string", default: "info", help: "`fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`" },
  "checkin-body-limit": { type: "string", default: "1mb", help: "largest check-in body" },
  "report-body-limit": { type: "string", default: "16mb", help: "largest command report or command" },
  "asset-body-limit": {
    type: "string",
    default: "50mb",
    help: "largest DDM asset or stored profile the API takes (`PUT /v1/ddm/assets/ID`, `/v1/ddm/profiles/ID`); each download holds it in memory",
  },
  "headers-timeout": { type: "string", default: "20s", help: "time a client has to send a request's headers (408 after it)" },
  "request-timeout": { type: "string", default: "120s", help: "time a client has to send a whole request, body included (408 after it)" },
  "body-idle-timeout": { type: "string", default: "20s", help: "longest pause inside a device request's body (408 after it)" },
  "api-max-failures": {
    type: "string",
    default: "50",
    help: "wrong API keys (enrollment tokens, SCEP refusals) per client address before they get 429; the right key always passes",
  },
  "api-failure-window": { type: "string", default: "5m", help: "the window of that limit" },
  "max-connections": {
    type: "string",
    arg: "N",
    shown: "descriptor limit less a tenth (at least 128)",
    help: "open connections; past it a new one is answered 503 + `Retry-After` and closed",
  },
  "unidentified-body-budget": {
    type: "string",
    default: "64mb",
    help: "memory that `Mdm-Signature` bodies not yet verified may hold at once, server-wide, each byte counted twice (503 + `Retry-After` past it); keep it at least twice the largest body limit",
  },
  "plist-max-depth": { type: "string", default: "32", help: "deepest nesting of dicts and arrays in a device message" },
  "plist-max-keys": { type: "string", default: "10000", help: "most keys in one dict" },
  "plist-max-string": { type: "string", default: "1mb", help: "largest string or key" },
  "plist-max-data": { type: "string", default: "16mb", help: "largest data value" },
  "result-retention": { type: "string", default: "90d", help: "keep answered command results this long (`0`: forever)" },
  "event-retention": { type: "string", default: "90d", help: "keep events this long (`0`: forever)" },
  "audit-retention": { type: "string", default: "365d", help: "keep the audit log's entries this long (`0`: forever; docs/operators.md)" },
  "session-idle-timeout": { type: "string", default: "30m", help: "an operator's browser session unused this long ends" },
  "session-max-age": { type: "string", default: "12h", help: "an operator's browser session ends this long after sign-in, used or not" },
  userauth: { type: "string", default: "digest", help: "network users: `digest`, `zero-length` or `decline`" },
  "digest-realm": { type: "string", shown: "host name", help: "the realm of the digest challenge" },
  "digest-qop": { type: "boolean", default: false, help: 'add `qop="auth"` to the challenge' },
  "digest-md5-sess-challenge": { type: "boolean", default: false, help: "also offer `DigestMD5SessChallenge`" },
  "digest-nonce-ttl": { type: "string", default: "5m", help: "how long a challenge can be answered" },
  "digest-extra-methods": {
    type: "string",
    default: "",
    help: "HTTP methods besides the request's own to try in HA2, comma-separated: `GET`, `HEAD`, `POST`, `PUT`, `DELETE`, `CONNECT`, `OPTIONS`, `TRACE`, `PATCH`",
  },
  "userauth-max-failures": {
    type: "string",
    default: "5",
    help: "failed digests for one user on one Mac before that Mac's attempts for the user stop being checked (4 times it: per Mac, per user; see docs/network-users.md); at least 1",
  },
  "userauth-failure-window": { type: "string", default: "15m", help: "the window of that limit" },
  "userauth-max-messages": {
    type: "string",
    default: "60",
    help: "UserAuthenticate messages one Mac may send in 5 minutes; past it they are refused with nothing written (`0`: no limit; docs/network-users.md)",
  },
  "secret-key": {
    type: "string",
    arg: "KEY",
    shown: "`<data dir>/secret-key`, generated",
    help: "seals push certificate keys, ABM server keys and tokens, and the DDM credential CA's key in the store; the same on every process",
  },
  "apns-url": {
    type: "string",
    arg: "URL",
    shown: "`https://api.push.apple.com`",
    help: "the APNs endpoint; `--apns-sandbox` for the sandbox",
  },
  "apns-sandbox": { type: "boolean", default: false, help: "push to APNs' sandbox (devices with development builds)" },
  "apns-ca": { type: "string", arg: "FILE", help: "also trust this CA for the APNs server" },
  "apns-expiration": { type: "string", default: "24h", help: "`apns-expiration` of pushes (`0`: deliver now or never)" },
  "apns-max-streams": { type: "string", default: "1000", help: "concurrent pushes per topic connection (APNs' own limit also applies)" },
  "apns-retries": { type: "string", default: "3", help: "retries after 429, 5xx or no answer" },
  "apns-backoff": { type: "string", default: "500ms", help: "the first retry waits this long, then exponentially longer, with jitter" },
  "pushcert-refresh": { type: "string", default: "5s", help: "how soon every process notices a new push certificate" },
  "notnow-push-delay": { type: "string", default: "5m", help: "push again after a NotNow the device will not recover from (`0`: off)" },
  "push-sweep-interval": {
    type: "string",
    default: "15m",
    help: "how often channels with queued commands that are silent are pushed (`0`: off)",
  },
  "push-sweep-silence": { type: "string", default: "1h", help: "how long such a channel has been silent before the sweep pushes it" },
  "device-ca-cert": {
    type: "string",
    arg: "FILE",
    shown: "`<data dir>/device-ca.pem`, generated",
    help: "the device CA certificate that issues device identities (SCEP, PKCS#12); trusted next to `--ca`; with `--device-ca-key`",
  },
  "device-ca-key": { type: "string", arg: "FILE", shown: "`<data dir>/device-ca.key`, generated", help: "the device CA's private key" },
  "device-cert-days": { type: "string", default: "365", help: "lifetime of the device certificates it issues" },
  "public-url": {
    type: "string",
    arg: "URL",
    shown: "the request's",
    help: "the `https://host[/prefix]` devices reach Orchard at, for profiles",
  },
  "enrollment-token": {
    type: "string",
    arg: "TOKEN",
    help: "lets `GET /enroll?token=TOKEN` hand out profiles without the API key (at least 24 characters)",
  },
  "scep-challenge-ttl": { type: "string", default: "1h", help: "how long a SCEP challenge password stays usable (each is single-use)" },
  "profile-signer": { type: "string", arg: "FILE", help: "PEM certificate (and chain) with its key: sign enrollment profiles" },
  "webhook-url": {
    type: "string",
    arg: "URL",
    shown: "off",
    help: "POST every MDM check-in and command report to this URL as a NanoMDM webhook event, durably (docs/webhooks.md)",
  },
  "webhook-hmac-key": {
    type: "string",
    arg: "KEY",
    help: "sign each event: `X-Hmac-Signature` is the base64 HMAC-SHA256 of the body with this key, as NanoMDM does",
  },
  "webhook-topics": {
    type: "string",
    default: DEFAULT_TOPICS,
    help: "comma-separated: `mdm.*` (NanoMDM's topics) or some of them, Orchard's event types (`push.failed`, `userauth.*`, `orchard.*`), or `*`",
  },
  "webhook-max-backlog": {
    type: "string",
    default: "1000000",
    help: "undelivered events kept; past it the oldest are dropped (`webhook.dropped`)",
  },
  "webhook-max-age": { type: "string", default: "7d", help: "undelivered events older than this are dropped (`webhook.dropped`)" },
  "webhook-timeout": { type: "string", default: "10s", help: "a delivery not answered within this is retried" },
  "webhook-backoff": {
    type: "string",
    default: "1s",
    help: "the first retry of an event waits this long, then twice as long each time (at most 10m), with jitter",
  },
  "webhook-concurrency": {
    type: "string",
    default: "256",
    help: "deliveries in flight at once, per process (pipelined on at most 4 connections)",
  },
  "ade-url": {
    type: "string",
    arg: "URL",
    shown: "`https://mdmenrollment.apple.com`",
    help: "Apple's device assignment API (ADE); another URL for a test stand-in",
  },
  "ade-sync-interval": {
    type: "string",
    default: "30m",
    help: "how often each ABM server's device list is synced (`0`: only on demand)",
  },
  "software-lookup-url": {
    type: "string",
    arg: "URL",
    shown: "`https://gdmf.apple.com/v2/pmv`",
    help: "Apple's software lookup feed (OS releases and the devices each runs on), for update policies; a mirror, or a file (`file:/path` or a path) for air-gapped sites",
  },
  "software-lookup-interval": {
    type: "string",
    default: "6h",
    help: "how often the software lookup feed is read while an update policy exists (`0`: only on demand); a failed read keeps the last good copy",
  },
  "ade-device-ca": {
    type: "string",
    arg: "FILE",
    shown: "none (the MachineInfo signature is checked, not its chain)",
    help: "PEM of Apple's device CA: the ADE enrollment URL takes only a MachineInfo signed by a device identity it issued",
  },
  "trust-proxy": {
    type: "string",
    arg: "LIST",
    shown: "off",
    help: "believe `X-Forwarded-For/-Proto/-Host` and `--cert-header` from these proxy addresses or CIDR ranges; the client is the right-most address not in the list (`true` is refused)",
  },
} as const;

type FlagName = keyof typeof SERVE_FLAGS;
const FLAGS = SERVE_FLAGS;

export function envName(flag: string): string {
  return `ORCHARD_${flag.toUpperCase().replaceAll("-", "_")}`;
}

export function parseServeArgs(args: string[], env: NodeJS.ProcessEnv = process.env): Config {
  let values: Record<string, unknown>;
  try {
    // Defaults are applied below, after the environment, so flags are parsed without them.
    const options = Object.fromEntries(
      Object.entries(FLAGS).map(([k, v]) => [k, { type: v.type, multiple: "multiple" in v ? v.multiple : false }]),
    ) as Record<string, { type: "string" | "boolean"; multiple: boolean }>;
    values = parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const get = (name: FlagName): string | undefined => {
    const v = values[name];
    if (typeof v === "string") return v;
    const e = env[envName(name)];
    if (e !== undefined && e !== "") return e;
    const d = FLAGS[name] as { default?: unknown };
    return typeof d.default === "string" ? d.default : undefined;
  };
  /** Given on the command line or in the environment (not a default). */
  const given = (name: FlagName): boolean => typeof values[name] === "string" || (env[envName(name)] ?? "") !== "";
  const flag = (name: FlagName): boolean => {
    const v = values[name];
    if (typeof v === "boolean") return v;
    const e = env[envName(name)];
    if (e !== undefined && e !== "") return /^(1|true|yes|on)$/i.test(e);
    return false;
  };
  const { host, port } = parseListen(get("listen")!);
  const metricsListen = get("metrics-listen") === undefined ? undefined : parseListen(get("metrics-listen")!, "--metrics-listen");
  if (metricsListen && metricsListen.port === port && port !== 0 && metricsListen.host === host)
    throw new ConfigError(`--metrics-listen ${host}:${port} is --listen's address: give /metrics another port`);
  const tlsCert = get("tls-cert");
  const tlsKey = get("tls-key");
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new ConfigError("--tls-cert and --tls-key go together");
  const logLevel = get("log-level")!;
  // Named as given: the flag, or the variable when the value came from the environment.
  const logLevelFrom = typeof values["log-level"] === "string" ? "--log-level" : envName("log-level");
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`${logLevelFrom} must be one of ${LOG_LEVELS.join(", ")}`);
  const policy = get("userauth")!;
  if (policy !== "digest" && policy !== "zero-length" && policy !== "decline") {
    throw new ConfigError("--userauth must be digest, zero-length or decline");
  }
  if (get("apns-url") !== undefined && flag("apns-sandbox")) throw new ConfigError("give --apns-url or --apns-sandbox, not both");
  const apnsCaFiles = get("apns-ca")?.split(",").filter(Boolean) ?? [];
  // Read now, before anything is written: TLS would skip a file that holds no certificate without a word.
  const apnsCaRefusal = apnsCaFiles.map(apnsCaProblem).find((p) => p !== undefined);
  if (apnsCaRefusal) throw new ConfigError(apnsCaRefusal);
  const secretKey = get("secret-key");
  if (secretKey !== undefined && secretKey.length < 16) throw new ConfigError("--secret-key must be at least 16 characters");
  const deviceCaCert = get("device-ca-cert");
  const deviceCaKey = get("device-ca-key");
  if ((deviceCaCert === undefined) !== (deviceCaKey === undefined))
    throw new ConfigError("--device-ca-cert and --device-ca-key go together");
  const enrollmentToken = get("enrollment-token");
  // A right secret always passes, even from a throttled address (nobody can
  // lock the operator out), so a secret's length, not the limit, is what
  // stops guessing: a chosen one must be long (`openssl rand -hex 16`).
  requireLongSecret("--enrollment-token", enrollmentToken);
  const apiKey = get("api-key");
  requireLongSecret("--api-key", apiKey);
  const caFromEnv = env[envName("ca")]?.split(",").filter(Boolean) ?? [];
  const caFiles = (values.ca as string[] | undefined) ?? caFromEnv;
  const rebind = get("rebind")!;
  const webhook = webhookOptions(get, given);
  if (rebind !== "held" && rebind !== "any") throw new ConfigError("--rebind must be held or any");
  return {
    host,
    port,
    dataDir: get("data-dir")!,
    storage: storageUrl(get("storage")),
    storagePoolSize: parseCount(get("storage-pool-size")!, "--storage-pool-size"),
    apiKey,
    caFiles,
    insecureAcceptAnyDeviceCert: flag("insecure-accept-any-device-cert"),
    rebind: {
      policy: rebind,
      afterSilenceMs: positive(parseDuration(get("rebind-after-silence")!, "--rebind-after-silence"), "--rebind-after-silence"),
      pushGraceMs: positive(parseDuration(get("rebind-push-grace")!, "--rebind-push-grace"), "--rebind-push-grace"),
    },
    certHeader: get("cert-header")?.toLowerCase(),
    tlsCert,
    tlsKey,
    checkinPath: urlPath(get("checkin-path")!, "--checkin-path"),
    serverPath: urlPath(get("server-path")!, "--server-path"),
    dmUrl: dmUrlOf(get("dm-url")),
    logLevel,
    trustProxy: trustProxy(get("trust-proxy")),
    metricsListen,
    resultRetentionMs: parseDuration(get("result-retention")!, "--result-retention"),
    eventRetentionMs: parseDuration(get("event-retention")!, "--event-retention"),
    operators: {
      sessionIdleMs: positive(parseDuration(get("session-idle-timeout")!, "--session-idle-timeout"), "--session-idle-timeout"),
      sessionMaxAgeMs: positive(parseDuration(get("session-max-age")!, "--session-max-age"), "--session-max-age"),
      auditRetentionMs: parseDuration(get("audit-retention")!, "--audit-retention"),
    },
    checkinBodyLimit: parseBytes(get("checkin-body-limit")!, "--checkin-body-limit"),
    reportBodyLimit: parseBytes(get("report-body-limit")!, "--report-body-limit"),
    assetBodyLimit: positive(parseBytes(get("asset-body-limit")!, "--asset-body-limit"), "--asset-body-limit"),
    limits: {
      headersTimeoutMs: positive(parseDuration(get("headers-timeout")!, "--headers-timeout"), "--headers-timeout"),
      requestTimeoutMs: positive(parseDuration(get("request-timeout")!, "--request-timeout"), "--request-timeout"),
      bodyIdleTimeoutMs: positive(parseDuration(get("body-idle-timeout")!, "--body-idle-timeout"), "--body-idle-timeout"),
      apiMaxFailures: positive(parseCount(get("api-max-failures")!, "--api-max-failures"), "--api-max-failures"),
      apiFailureWindowMs: parseDuration(get("api-failure-window")!, "--api-failure-window"),
      maxConnections: optional(get("max-connections"), (v) => positive(parseCount(v, "--max-connections"), "--max-connections")),
      unidentifiedBodyBudget: positive(
        parseBytes(get("unidentified-body-budget")!, "--unidentified-body-budget"),
        "--unidentified-body-budget",
      ),
      plist: {
        maxDepth: positive(parseCount(get("plist-max-depth")!, "--plist-max-depth"), "--plist-max-depth"),
        maxKeys: positive(parseCount(get("plist-max-keys")!, "--plist-max-keys"), "--plist-max-keys"),
        maxStringBytes: parseBytes(get("plist-max-string")!, "--plist-max-string"),
        maxDataBytes: parseBytes(get("plist-max-data")!, "--plist-max-data"),
      },
    },
    userAuth: {
      policy,
      realm: get("digest-realm") ?? os.hostname(),
      qop: flag("digest-qop"),
      md5SessChallenge: flag("digest-md5-sess-challenge"),
      // 0 would expire every challenge at once (and made checkNonce throw: a 500 for every response); under 1s is
      // not kept either: a nonce carries its time in whole seconds, so its age is known to a second at best.
      nonceTtlMs: atLeastOneSecond(get("digest-nonce-ttl")!, "--digest-nonce-ttl"),
      extraMethods: httpMethods(get("digest-extra-methods")!, "--digest-extra-methods"),
      // A brute-force limit that 0 turned off (or made refuse every right password) would be a silent opt-out:
      // like --api-max-failures, these refuse 0; only --userauth-max-messages (a write-rate limit) takes 0 for none.
      maxFailures: atLeastOne(parseCount(get("userauth-max-failures")!, "--userauth-max-failures"), "--userauth-max-failures"),
      failureWindowMs: positive(parseDuration(get("userauth-failure-window")!, "--userauth-failure-window"), "--userauth-failure-window"),
      maxMessagesPerMac: parseCount(get("userauth-max-messages")!, "--userauth-max-messages"),
    },
    push: {
      secretKey,
      apnsUrl: apnsUrl(get("apns-url") ?? (flag("apns-sandbox") ? APNS_SANDBOX : APNS_PRODUCTION)),
      apnsCaFiles,
      expirationMs: parseDuration(get("apns-expiration")!, "--apns-expiration"),
      maxStreams: Math.max(1, parseCount(get("apns-max-streams")!, "--apns-max-streams")),
      retries: parseCount(get("apns-retries")!, "--apns-retries"),
      backoffMs: parseDuration(get("apns-backoff")!, "--apns-backoff"),
      certRefreshMs: parseDuration(get("pushcert-refresh")!, "--pushcert-refresh"),
      notNowDelayMs: parseDuration(get("notnow-push-delay")!, "--notnow-push-delay"),
      sweepIntervalMs: parseDuration(get("push-sweep-interval")!, "--push-sweep-interval"),
      sweepSilenceMs: parseDuration(get("push-sweep-silence")!, "--push-sweep-silence"),
    },
    enrollment: {
      deviceCaCert,
      deviceCaKey,
      deviceCertDays: positive(parseCount(get("device-cert-days")!, "--device-cert-days"), "--device-cert-days"),
      publicUrl: publicUrl(get("public-url")),
      enrollmentToken,
      scepChallengeTtlMs: positive(parseDuration(get("scep-challenge-ttl")!, "--scep-challenge-ttl"), "--scep-challenge-ttl"),
      profileSigner: get("profile-signer"),
    },
    webhook,
    ade: {
      url: adeUrl(get("ade-url") ?? APPLE_ADE_URL),
      syncIntervalMs: parseDuration(get("ade-sync-interval")!, "--ade-sync-interval"),
      deviceCaFile: get("ade-device-ca"),
    },
    softwareUpdates: {
      url: softwareLookupUrl(get("software-lookup-url") ?? APPLE_SOFTWARE_LOOKUP_URL),
      refreshIntervalMs: parseDuration(get("software-lookup-interval")!, "--software-lookup-interval"),
    },
  };
}

function webhookOptions(get: (name: FlagName) => string | undefined, given: (name: FlagName) => boolean): WebhookOptions | undefined {
  const url = get("webhook-url");
  if (url === undefined) {
    // A webhook flag without the URL does nothing: said, not ignored (--webhook-topics was taken in silence).
    const stray = WEBHOOK_FLAGS.find((f) => given(f));
    if (stray) throw new ConfigError(`--${stray} goes with --webhook-url`);
    return undefined;
  }
  httpUrl("--webhook-url", url);
  let topics: WebhookOptions["topics"];
  try {
    topics = parseTopics(get("webhook-topics")!);
  } catch (err) {
    throw new ConfigError(`--webhook-topics: ${(err as Error).message}`);
  }
  const hmacKey = get("webhook-hmac-key");
  if (hmacKey !== undefined && hmacKey.length < 16) throw new ConfigError("--webhook-hmac-key must be at least 16 characters");
  return {
    url,
    hmacKey,
    topics,
    maxBacklog: positive(parseCount(get("webhook-max-backlog")!, "--webhook-max-backlog"), "--webhook-max-backlog"),
    maxAgeMs: positive(parseDuration(get("webhook-max-age")!, "--webhook-max-age"), "--webhook-max-age"),
    timeoutMs: positive(parseDuration(get("webhook-timeout")!, "--webhook-timeout"), "--webhook-timeout"),
    backoffMs: positive(parseDuration(get("webhook-backoff")!, "--webhook-backoff"), "--webhook-backoff"),
    concurrency: positive(parseCount(get("webhook-concurrency")!, "--webhook-concurrency"), "--webhook-concurrency"),
  };
}

/** The flags that only mean something with --webhook-url. */
const WEBHOOK_FLAGS = [
  "webhook-hmac-key",
  "webhook-topics",
  "webhook-max-backlog",
  "webhook-max-age",
  "webhook-timeout",
  "webhook-backoff",
  "webhook-concurrency",
] as const satisfies readonly FlagName[];

export function parseListen(value: string, flag = "--listen"): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  if (!m) throw new ConfigError(`${flag} ${value}: expected HOST:PORT`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`${flag} ${value}: port out of range`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

export function parseDuration(value: string, name: string): number {
  const ms = durationMs(value);
  if (ms === undefined) {
    const unitless = /^\d+(?:\.\d+)?$/.test(value.trim()) ? " (with its unit: a bare number could be seconds or days)" : "";
    throw new ConfigError(`${name} ${value}: expected a duration such as ${DURATION_EXAMPLES}${unitless}`);
  }
  return ms;
}

export function parseBytes(value: string, name: string): number {
  const m = /^(\d+)(b|kb|mb|gb)?$/i.exec(value.trim());
  if (!m) throw new ConfigError(`${name} ${value}: expected a size such as 512kb or 16mb`);
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? "b").toLowerCase() as "b"];
  return Number(m[1]) * unit;
}

function parseCount(value: string, name: string): number {
  if (!/^\d+$/.test(value)) throw new ConfigError(`${name} ${value}: expected a whole number`);
  return Number(value);
}

function atLeastOne(value: number, name: string): number {
  if (!(value >= 1)) throw new ConfigError(`${name} ${value}: expected a whole number of 1 or more (this limit cannot be turned off)`);
  return value;
}

/** The methods of RFC 9110 and PATCH: what a client can have hashed into HA2. A typo is refused, not tried in vain. */
const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

function httpMethods(value: string, name: string): string[] {
  const methods = value
    .split(",")
    .map((m) => m.trim().toUpperCase())
    .filter(Boolean);
  const bad = methods.find((m) => !HTTP_METHODS.includes(m));
  if (bad !== undefined)
    throw new ConfigError(`${name} ${bad}: not an HTTP method; expected some of ${HTTP_METHODS.join(", ")}, comma-separated`);
  return methods;
}

function optional<T>(value: string | undefined, parse: (v: string) => T): T | undefined {
  return value === undefined ? undefined : parse(value);
}

function atLeastOneSecond(value: string, name: string): number {
  const ms = parseDuration(value, name);
  if (!(ms >= 1000)) throw new ConfigError(`${name} ${value}: expected 1s or more (a nonce keeps its time in whole seconds)`);
  return ms;
}

function positive(value: number, name: string): number {
  if (!(value > 0)) throw new ConfigError(`${name} must be greater than 0`);
  return value;
}

function apnsUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`--apns-url ${value}: not a URL`);
  }
  if (url.protocol !== "https:" || url.pathname !== "/" || url.search || url.username) {
    throw new ConfigError(`--apns-url ${value}: expected https://host[:port]`);
  }
  return url.origin;
}

/** --ade-url: an http(s) origin with an optional path prefix (http only makes sense for a local stand-in). */
function adeUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`--ade-url ${value}: not a URL`);
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.search || url.hash || url.username) {
    throw new ConfigError(`--ade-url ${value}: expected https://host[:port][/prefix]`);
  }
  return url.origin + url.pathname.replace(/\/+$/, "");
}

/** --software-lookup-url: an http(s) URL, a file: URL, or a path (made a file: URL). */
function softwareLookupUrl(value: string): string {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(value)) return pathToFileURL(path.resolve(value)).toString();
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError("--software-lookup-url: not a URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:" && url.protocol !== "file:") {
    throw new ConfigError("--software-lookup-url: expected https://..., http://..., file:/path or a path");
  }
  return url.toString();
}

function urlPath(value: string, name: string): string {
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(value)) throw new ConfigError(`${name} ${value}: expected a path such as /mdm`);
  return value;
}

/** --public-url: an http(s) origin with an optional path prefix, kept without its trailing slash. */
function publicUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`--public-url ${value}: not a URL`);
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.search || url.hash || url.username) {
    throw new ConfigError(`--public-url ${value}: expected https://host[:port][/prefix]`);
  }
  return url.origin + url.pathname.replace(/\/+$/, "");
}

/**
 * --trust-proxy: the proxies' addresses and CIDR ranges, comma-separated.
 * The client address is then the right-most X-Forwarded-For entry not in
 * the list (the one the nearest trusted proxy saw), and X-Forwarded-Proto/
 * -Host count only from a listed peer. "true" is refused: it would believe
 * the left-most entry, which the client writes, from any peer.
 */
function trustProxy(value: string | undefined): boolean | string[] {
  if (value === undefined || /^(false|0|no|off)$/i.test(value)) return false;
  if (/^(true|1|yes|on)$/i.test(value)) {
    throw new ConfigError(
      `--trust-proxy ${value}: trusting every peer would let any client choose its own address through X-Forwarded-For; ` +
        "name your proxies' addresses or CIDR ranges instead (e.g. --trust-proxy 127.0.0.1 or --trust-proxy 10.0.0.0/8,::1)",
    );
  }
  const list = value
    .split(",")
    .map((a) => a.trim())
    .filter(Boolean);
  for (const a of list) {
    const [address, bits, extra] = a.split("/");
    const family = isIP(address!);
    const prefixOk = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
    const ok = family !== 0 && extra === undefined && prefixOk;
    if (!ok) throw new ConfigError(`--trust-proxy ${a}: expected an IP address or CIDR range`);
  }
  return list;
}

/** --dm-url: an http(s) URL, or unset when empty. */
function dmUrlOf(value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  httpUrl("--dm-url", value);
  return value;
}

/** A flag's http or https URL; refused naming the flag, its userinfo (a password, perhaps) never said back. */
function httpUrl(flag: string, value: string): URL {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (url === undefined) throw new ConfigError(`${flag} ${shownFlagUrl(value)}: not a valid URL (http://host:port/path)`);
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new ConfigError(`${flag} ${shownFlagUrl(value)}: not an http or https URL (http://host:port/path)`);
  return url;
}

/**
 * A URL flag's value as a refusal says it: without a user and password or a query (a token can be in either).
 * Everything before the last @ ahead of the query goes, whatever it holds: a password with a / in it is what
 * made the value no URL.
 */
function shownFlagUrl(value: string): string {
  const query = value.search(/[?#]/);
  const base = query < 0 ? value : value.slice(0, query);
  const at = base.lastIndexOf("@");
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(base)?.[0] ?? "";
  const shown = at < 0 ? base : `${scheme}...@${base.slice(at + 1)}`;
  return query < 0 ? shown : `${shown}?...`;
}

/** --storage: SQLite's or PostgreSQL's, checked before anything is made in the data dir. */
function storageUrl(value: string | undefined): string | undefined {
  if (value === undefined || value === "" || value.startsWith("sqlite:")) return value;
  if (/^postgres(ql)?:\/\//.test(value)) {
    if (!URL.canParse(value))
      throw new ConfigError(
        `--storage ${shownFlagUrl(value)}: not a valid postgres:// URL (postgres://user:password@host:port/db; percent-encode / ? # @ % in the password)`,
      );
    return value;
  }
  throw new ConfigError(`unsupported --storage ${value.split(":")[0]}: use sqlite:/path/file.db or postgres://user@host:port/db`);
}
