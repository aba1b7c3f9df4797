import path from "node:path";
import { ProfileSignerError } from "../enroll/sign-profile.ts";
import { SchemaTooNew } from "../store/index.ts";
import { StoreUnavailable } from "../store/unavailable.ts";
import type { Config } from "../config.ts";

// `orchard serve` failing to start is an operator's problem, not a bug: say
// what is wrong and what to do in one line, never with a stack trace.

const FILE_ERRORS: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a directory",
  ENOTDIR: "a part of the path is not a directory",
  EROFS: "read-only file system",
  EEXIST: "it exists already",
};

/** The files named by flags, each read at start. */
function filesOf(config: Config): Array<[flag: string, file: string]> {
  const files: Array<[string, string | undefined]> = [
    ...config.caFiles.map((f): [string, string] => ["--ca", f]),
    ["--tls-cert", config.tlsCert],
    ["--tls-key", config.tlsKey],
    ["--device-ca-cert", config.enrollment.deviceCaCert],
    ["--device-ca-key", config.enrollment.deviceCaKey],
    ["--profile-signer", config.enrollment.profileSigner],
    ...config.push.apnsCaFiles.map((f): [string, string] => ["--apns-ca", f]),
  ];
  return files.filter((e): e is [string, string] => e[1] !== undefined);
}

/**
 * One readable line for a start-up failure the operator can fix, or
 * undefined for anything else (a bug: its stack trace is worth having).
 */
export function startupFailure(err: unknown, config: Config): string | undefined {
  if (err instanceof SchemaTooNew) return err.message;
  if (err instanceof ProfileSignerError) return `--profile-signer: ${err.message}`;
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number; syscall?: string; listenFlag?: string };
  // The main listener's or --metrics-listen's (server.ts tags each): a port taken, or a host name that does not resolve.
  if (e.listenFlag !== undefined || e.syscall === "listen") {
    const flag = e.listenFlag ?? "--listen";
    const listen = flag === "--listen" ? config : config.metricsListen!;
    const where = `${listen.host}:${listen.port}`;
    if (e.code === "EADDRINUSE")
      return `cannot listen on ${where}: the address is in use (is another orchard running?); choose another with ${flag}`;
    if (e.code === "EACCES") return `cannot listen on ${where}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)`;
    if (e.code === "EADDRNOTAVAIL") return `cannot listen on ${where}: no such address on this machine`;
    if (e.code === "ENOTFOUND" || e.code === "EAI_AGAIN")
      return `cannot listen on ${where}: the host name does not resolve (${e.code}); give ${flag} an address or a name that does`;
    return `cannot listen on ${where}: ${e.code ?? e.message}`;
  }
  const postgres = postgresFailure(driverError(err), config.storage);
  if (postgres) return postgres;
  const reason = typeof e.path === "string" && e.code ? FILE_ERRORS[e.code] : undefined;
  if (reason) {
    const flag = filesOf(config).find(([, file]) => file === e.path)?.[0];
    if (flag) return `cannot read ${flag} ${e.path}: ${reason}`;
    if (e.code === "EEXIST" && path.resolve(e.path!) === path.resolve(config.dataDir)) {
      return `the data dir ${config.dataDir} is not usable (a file is there, not a directory): give a directory with --data-dir`;
    }
    if (path.resolve(e.path!).startsWith(path.resolve(config.dataDir))) {
      return `the data dir ${config.dataDir} is not usable (${e.path}: ${reason}): give a writable directory with --data-dir`;
    }
    return `cannot use ${e.path}: ${reason}`;
  }
  return undefined;
}

/** The driver's own error under the store's StoreUnavailable, or under Node's AggregateError for both of localhost's addresses. */
function driverError(err: unknown): NodeJS.ErrnoException {
  type Wrapped = NodeJS.ErrnoException & { errors?: unknown[] };
  let e: unknown = err;
  for (let depth = 0; depth < 4; depth++) {
    const w = e as Wrapped;
    if (e instanceof StoreUnavailable && e.cause) e = e.cause;
    else if (!w.code && Array.isArray(w.errors) && w.errors.length > 0) e = w.errors[0];
    else break;
  }
  return e as NodeJS.ErrnoException;
}

/** PostgreSQL's own failures at connect: the database, the server, the role. */
function postgresFailure(e: NodeJS.ErrnoException, storage: string | undefined): string | undefined {
  if (!storage || !/^postgres(ql)?:\/\//.test(storage)) return undefined;
  let url: URL;
  try {
    url = new URL(storage);
  } catch {
    return "--storage is not a valid postgres:// URL";
  }
  const server = `${url.hostname || "localhost"}:${url.port || 5432}`;
  const database = decodeURIComponent(url.pathname.slice(1)) || decodeURIComponent(url.username) || "postgres";
  const user = decodeURIComponent(url.username) || "the current user";
  switch (e.code) {
    case "3D000":
      return `the PostgreSQL database "${database}" does not exist on ${server}: create it (createdb -h ${url.hostname || "localhost"} -p ${url.port || 5432} ${database}), then start again`;
    case "28P01":
    case "28000":
      return `PostgreSQL at ${server} refused the login of ${user}: check the user and password in --storage`;
    case "ECONNREFUSED":
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
      return `cannot reach PostgreSQL at ${server} (${e.code}): is it running, and is --storage right?`;
  }
  if (e.code === "55000" && /not currently accepting connections/.test(e.message ?? ""))
    return `the PostgreSQL database "${database}" on ${server} takes no connections now (ALLOW_CONNECTIONS false)`;
  if (/does not support SSL/i.test(e.message ?? ""))
    return `PostgreSQL at ${server} does not take SSL connections: leave sslmode out of --storage, or turn SSL on in PostgreSQL`;
  if (/connection terminated|timeout exceeded when trying to connect/i.test(e.message ?? ""))
    return `cannot reach PostgreSQL at ${server}: ${e.message}`;
  return undefined;
}
