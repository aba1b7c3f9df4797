import { parseArgs } from "node:util";
import os from "node:os";

/** One validated configuration for `orchard serve`: flags, then ORCHARD_* variables, then defaults. */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  storage?: string;
  storagePoolSize: number;
  apiKey?: string;
  caFiles: string[];
  certHeader?: string;
  tlsCert?: string;
  tlsKey?: string;
  checkinPath: string;
  serverPath: string;
  dmUrl?: string;
  logLevel: string;
  /** Believe X-Forwarded-* from these proxies (true: from any). */
  trustProxy: boolean | string[];
  checkinBodyLimit: number;
  resultRetentionMs: number;
  eventRetentionMs: number;
  reportBodyLimit: number;
  /** Hostile-input limits: timeouts, API key failures, plist parser caps (docs/reliability.md). */
  limits: LimitsConfig;
  userAuth: UserAuthConfig;
  push: PushConfig;
  enrollment: EnrollmentConfig;
}

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
export interface PushConfig {
  /** Encrypts push keys in the store; default: <data dir>/secret-key, generated. */
  secretKey?: string;
  apnsUrl: string;
  /** CAs trusted for the APNs server besides the bundled roots (a stand-in in tests). */
  apnsCaFiles: string[];
  /** apns-expiration = now + this; 0 sends 0 (deliver now or never). */
  expirationMs: number;
  maxStreams: number;
  retries: number;
  backoffMs: number;
  /** How soon every process notices a new or rotated push certificate. */
  certRefreshMs: number;
  /** Push again this long after a NotNow session (brief 6.6); 0 turns it off. */
  notNowDelayMs: number;
  /** How often the silent-channel sweep runs; 0 turns it off. */
  sweepIntervalMs: number;
  /** Channels silent this long with commands queued are pushed by the sweep. */
  sweepSilenceMs: number;
}

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

export interface UserAuthConfig {
  policy: "digest" | "zero-length" | "decline";
  realm: string;
  qop: boolean;
  md5SessChallenge: boolean;
  nonceTtlMs: number;
  extraMethods: string[];
  maxFailures: number;
  failureWindowMs: number;
}

export class ConfigError extends Error {}

// Every flag, with its kind and default. The environment variable of a flag is
// ORCHARD_ and its name in upper case with '-' as '_' (--data-dir: ORCHARD_DATA_DIR).
const FLAGS = {
  listen: { type: "string", default: "127.0.0.1:9000" },
  "data-dir": { type: "string", default: "./data" },
  storage: { type: "string" },
  "storage-pool-size": { type: "string", default: "10" },
  "api-key": { type: "string" },
  ca: { type: "string", multiple: true },
  "cert-header": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "checkin-path": { type: "string", default: "/checkin" },
  "server-path": { type: "string", default: "/mdm" },
  "dm-url": { type: "string" },
  "log-level": { type: "string", default: "info" },
  "checkin-body-limit": { type: "string", default: "1mb" },
  "report-body-limit": { type: "string", default: "16mb" },
  "headers-timeout": { type: "string", default: "20s" },
  "request-timeout": { type: "string", default: "120s" },
  "body-idle-timeout": { type: "string", default: "20s" },
  "api-max-failures": { type: "string", default: "50" },
  "api-failure-window": { type: "string", default: "5m" },
  "max-connections": { type: "string" },
  "unidentified-body-budget": { type: "string", default: "64mb" },
  "plist-max-depth": { type: "string", default: "32" },
  "plist-max-keys": { type: "string", default: "10000" },
  "plist-max-string": { type: "string", default: "1mb" },
  "plist-max-data": { type: "string", default: "16mb" },
  "result-retention": { type: "string", default: "90d" },
  "event-retention": { type: "string", default: "90d" },
  userauth: { type: "string", default: "digest" },
  "digest-realm": { type: "string" },
  "digest-qop": { type: "boolean", default: false },
  "digest-md5-sess-challenge": { type: "boolean", default: false },
  "digest-nonce-ttl": { type: "string", default: "5m" },
  "digest-extra-methods": { type: "string", default: "" },
  "userauth-max-failures": { type: "string", default: "5" },
  "userauth-failure-window": { type: "string", default: "15m" },
  "secret-key": { type: "string" },
  "apns-url": { type: "string" },
  "apns-sandbox": { type: "boolean", default: false },
  "apns-ca": { type: "string" },
  "apns-expiration": { type: "string", default: "24h" },
  "apns-max-streams": { type: "string", default: "1000" },
  "apns-retries": { type: "string", default: "3" },
  "apns-backoff": { type: "string", default: "500ms" },
  "pushcert-refresh": { type: "string", default: "5s" },
  "notnow-push-delay": { type: "string", default: "5m" },
  "push-sweep-interval": { type: "string", default: "15m" },
  "push-sweep-silence": { type: "string", default: "1h" },
  "device-ca-cert": { type: "string" },
  "device-ca-key": { type: "string" },
  "device-cert-days": { type: "string", default: "365" },
  "public-url": { type: "string" },
  "enrollment-token": { type: "string" },
  "scep-challenge-ttl": { type: "string", default: "1h" },
  "profile-signer": { type: "string" },
  "trust-proxy": { type: "string" },
} as const;

type FlagName = keyof typeof FLAGS;

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
  const flag = (name: FlagName): boolean => {
    const v = values[name];
    if (typeof v === "boolean") return v;
    const e = env[envName(name)];
    if (e !== undefined && e !== "") return /^(1|true|yes|on)$/i.test(e);
    return false;
  };
  const { host, port } = parseListen(get("listen")!);
  const tlsCert = get("tls-cert");
  const tlsKey = get("tls-key");
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new ConfigError("--tls-cert and --tls-key go together");
  const policy = get("userauth")!;
  if (policy !== "digest" && policy !== "zero-length" && policy !== "decline") {
    throw new ConfigError("--userauth must be digest, zero-length or decline");
  }
  if (get("apns-url") !== undefined && flag("apns-sandbox")) throw new ConfigError("give --apns-url or --apns-sandbox, not both");
  const secretKey = get("secret-key");
  if (secretKey !== undefined && secretKey.length < 16) throw new ConfigError("--secret-key must be at least 16 characters");
  const deviceCaCert = get("device-ca-cert");
  const deviceCaKey = get("device-ca-key");
  if ((deviceCaCert === undefined) !== (deviceCaKey === undefined)) throw new ConfigError("--device-ca-cert and --device-ca-key go together");
  const enrollmentToken = get("enrollment-token");
  if (enrollmentToken !== undefined && enrollmentToken.length < 16) throw new ConfigError("--enrollment-token must be at least 16 characters");
  const caFromEnv = env[envName("ca")]?.split(",").filter(Boolean) ?? [];
  const caFiles = (values.ca as string[] | undefined) ?? caFromEnv;
  return {
    host,
    port,
    dataDir: get("data-dir")!,
    storage: get("storage"),
    storagePoolSize: parseCount(get("storage-pool-size")!, "--storage-pool-size"),
    apiKey: get("api-key"),
    caFiles,
    certHeader: get("cert-header")?.toLowerCase(),
    tlsCert,
    tlsKey,
    checkinPath: urlPath(get("checkin-path")!, "--checkin-path"),
    serverPath: urlPath(get("server-path")!, "--server-path"),
    dmUrl: get("dm-url"),
    logLevel: get("log-level")!,
    trustProxy: trustProxy(get("trust-proxy")),
    resultRetentionMs: parseDuration(get("result-retention")!, "--result-retention"),
    eventRetentionMs: parseDuration(get("event-retention")!, "--event-retention"),
    checkinBodyLimit: parseBytes(get("checkin-body-limit")!, "--checkin-body-limit"),
    reportBodyLimit: parseBytes(get("report-body-limit")!, "--report-body-limit"),
    limits: {
      headersTimeoutMs: positive(parseDuration(get("headers-timeout")!, "--headers-timeout"), "--headers-timeout"),
      requestTimeoutMs: positive(parseDuration(get("request-timeout")!, "--request-timeout"), "--request-timeout"),
      bodyIdleTimeoutMs: positive(parseDuration(get("body-idle-timeout")!, "--body-idle-timeout"), "--body-idle-timeout"),
      apiMaxFailures: positive(parseCount(get("api-max-failures")!, "--api-max-failures"), "--api-max-failures"),
      apiFailureWindowMs: parseDuration(get("api-failure-window")!, "--api-failure-window"),
      maxConnections: optional(get("max-connections"), (v) => positive(parseCount(v, "--max-connections"), "--max-connections")),
      unidentifiedBodyBudget: positive(parseBytes(get("unidentified-body-budget")!, "--unidentified-body-budget"), "--unidentified-body-budget"),
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
      nonceTtlMs: parseDuration(get("digest-nonce-ttl")!, "--digest-nonce-ttl"),
      extraMethods: get("digest-extra-methods")!
        .split(",")
        .map((m) => m.trim().toUpperCase())
        .filter(Boolean),
      maxFailures: parseCount(get("userauth-max-failures")!, "--userauth-max-failures"),
      failureWindowMs: parseDuration(get("userauth-failure-window")!, "--userauth-failure-window"),
    },
    push: {
      secretKey,
      apnsUrl: apnsUrl(get("apns-url") ?? (flag("apns-sandbox") ? APNS_SANDBOX : APNS_PRODUCTION)),
      apnsCaFiles: get("apns-ca")?.split(",").filter(Boolean) ?? [],
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
  };
}

export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  if (!m) throw new ConfigError(`--listen ${value}: expected HOST:PORT`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`--listen ${value}: port out of range`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

export function parseDuration(value: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!m) throw new ConfigError(`${name} ${value}: expected a duration such as 300s, 5m, 1h or 90d`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? "s") as "ms" | "s" | "m" | "h" | "d"];
  return Math.round(Number(m[1]) * unit);
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

function optional<T>(value: string | undefined, parse: (v: string) => T): T | undefined {
  return value === undefined ? undefined : parse(value);
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

/** --trust-proxy: "true", or the proxies' addresses and CIDR ranges, comma-separated. */
function trustProxy(value: string | undefined): boolean | string[] {
  if (value === undefined || /^(false|0|no|off)$/i.test(value)) return false;
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  const list = value.split(",").map((a) => a.trim()).filter(Boolean);
  for (const a of list) {
    if (!/^[0-9A-Fa-f:.]+(\/\d{1,3})?$/.test(a)) throw new ConfigError(`--trust-proxy ${a}: expected an IP address or CIDR range, or true`);
  }
  return list;
}
