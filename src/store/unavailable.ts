import { OrchardError } from "../errors.ts";

/**
 * The database cannot be reached or cannot take work right now (a restart, a
 * lost connection, a full disk, another process holding the write lock past
 * the busy timeout). Answered 503 with Retry-After: the request may succeed as
 * is once the store is back, and the pool reconnects on its own. Anything else
 * a driver throws (a constraint, a syntax error: a bug) stays what it was.
 */
export class StoreUnavailable extends OrchardError {
  /** What a client is told to wait: a PostgreSQL restart takes a few seconds. */
  readonly retryAfterSeconds = 5;
  constructor(cause: unknown) {
    super(503, "store unavailable", "store_unavailable");
    this.cause = cause;
  }
}

// PostgreSQL SQLSTATEs: class 08 is "connection exception"; 57P01-03 are
// admin_shutdown, crash_shutdown and cannot_connect_now (starting up or
// shutting down); 53100 disk_full and 53300 too_many_connections; 57014 a
// statement cancelled (statement_timeout); 40001 and 40P01 a serialization
// failure and a deadlock, which the same request sent again gets past.
// At connect only: class 28 (a password or pg_hba.conf changed under the server), 3D000 (the database is gone),
// and 55000 when the database is closed to connections (ALLOW_CONNECTIONS false); 55000 from a query is a bug.
const PG_STATES = new Set(["57P01", "57P02", "57P03", "53100", "53300", "57014", "40001", "40P01", "3D000"]);
const PG_CLOSED_DATABASE = /is not currently accepting connections/;
// A socket that never connects or breaks under the pool; no descriptor left for one.
const SOCKET_CODES = new Set([
  ...["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ENOTFOUND"],
  ...["EMFILE", "ENFILE"],
]);
// What pg and pg-pool throw, without a code, when a connection ends under a
// query or cannot be made in time.
const PG_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection closed)/;
// SQLite: the write lock still held by another process after busy_timeout,
// a failing disk, a full disk. Extended codes (SQLITE_IOERR_WRITE) included.
const SQLITE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL)(_|$)/;

/** Whether a database driver's error says the store is unreachable rather than that the query is wrong. */
export function isStoreUnavailable(err: unknown, depth = 0): boolean {
  if (err instanceof StoreUnavailable) return true;
  if (typeof err !== "object" || err === null || depth > 4) return false;
  const e = err as { code?: unknown; message?: unknown; errors?: unknown; cause?: unknown };
  const code = typeof e.code === "string" ? e.code : undefined;
  if (code !== undefined) {
    if (SOCKET_CODES.has(code) || SQLITE_CODES.test(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code))
      return (
        code.startsWith("08") ||
        code.startsWith("28") ||
        PG_STATES.has(code) ||
        (code === "55000" && typeof e.message === "string" && PG_CLOSED_DATABASE.test(e.message))
      );
  } else if (typeof e.message === "string" && PG_MESSAGES.test(e.message)) {
    return true;
  }
  // Node's connect to "localhost" tries ::1 and 127.0.0.1 and reports both (an AggregateError).
  if (Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every((x) => isStoreUnavailable(x, depth + 1))) return true;
  return e.cause !== undefined && isStoreUnavailable(e.cause, depth + 1);
}

/** The error a store call rethrows: StoreUnavailable for an outage, anything else unchanged. */
export function storeError(err: unknown): unknown {
  return !(err instanceof StoreUnavailable) && isStoreUnavailable(err) ? new StoreUnavailable(err) : err;
}
