import { execFileSync } from "node:child_process";
import fs from "node:fs";
import type http from "node:http";
import type https from "node:https";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { lingeringClose } from "./lingering-close.ts";

// --max-connections: every connection holds a file descriptor. Past the
// process's descriptor limit, libuv accepts and closes new connections at once
// (its EMFILE trick) without telling node: devices get silent resets and
// nothing is logged. So Orchard caps its connections below that limit, answers
// the ones past the cap with a 503 + Retry-After (a device retries it later,
// where a reset looks like a network fault), and watches its descriptors.
// A refused connection still holds its descriptor until its 503 is out (a
// short lingering close, or the TLS handshake first): so only a share of the
// headroom may be such refused-but-open connections, and past the cap plus
// that share node's own maxConnections closes new ones at once (a reset,
// logged) so that the descriptors for the rest of the process stay free.

const RETRY_AFTER_SECONDS = 5;
const REFUSAL_REASON = "server busy: too many connections, retry later\n";
const REFUSAL =
  `HTTP/1.1 503 Service Unavailable\r\nRetry-After: ${RETRY_AFTER_SECONDS}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
  `Content-Length: ${Buffer.byteLength(REFUSAL_REASON)}\r\nConnection: close\r\n\r\n${REFUSAL_REASON}`;
/** Descriptors kept for everything but client connections: the database pool, SQLite's files, logs, APNs, SCEP. */
const MIN_HEADROOM = 128;
const WARN_EVERY_MS = 60_000;
/** How long a refused TLS connection may take to finish its handshake (to read its 503) before it is dropped. */
const TLS_REFUSAL_HANDSHAKE_MS = 2000;
/** A refused connection's lingering close: its 503 and FIN are out, input is dropped; shorter than a served one's. */
const REFUSED_LINGER_MS = 500;

/** The soft limit on open file descriptors (`ulimit -n`), or undefined when it cannot be read. */
export function descriptorLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync("/proc/self/limits", "utf8"));
    if (m) return m[1] === "unlimited" ? undefined : Number(m[1]);
  } catch {
    // not Linux: ask the shell
  }
  try {
    const n = Number(execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8", timeout: 2000 }).trim());
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The default --max-connections: the descriptor limit less a tenth of it (at least 128) for the rest of the process. */
export function defaultMaxConnections(limit = descriptorLimit()): number {
  const fds = limit ?? 1024;
  return Math.max(16, fds - Math.max(MIN_HEADROOM, Math.floor(fds / 10)));
}

/**
 * How many connections past the cap may be open at once, refused (being
 * answered 503): a quarter of the headroom between the cap and the descriptor
 * limit (the headroom the default leaves when the limit is unknown).
 */
export function refusedAllowance(max: number, fdLimit: number | undefined): number {
  const headroom = fdLimit === undefined ? MIN_HEADROOM : fdLimit - max;
  return Math.max(0, Math.floor(headroom / 4));
}

/** Rate-limited warning: at most one line a minute per kind, with how many were held back. */
class Warner {
  private last = 0;
  private held = 0;
  constructor(
    private readonly log: Logger,
    private readonly msg: string,
  ) {}
  warn(fields: object, now = Date.now()): void {
    if (now - this.last < WARN_EVERY_MS && this.last !== 0) {
      this.held++;
      return;
    }
    this.log.warn({ ...fields, ...(this.held ? { suppressed: this.held } : {}) }, this.msg);
    this.last = now;
    this.held = 0;
  }
}

export interface ConnectionCap {
  /** Open connections now. */
  readonly open: number;
  /** Connections past the cap still open (being answered 503). */
  readonly refusedOpen: number;
  /** True for a connection past the cap (its 503 is already written): no request on it is served. */
  refused(socket: Socket): boolean;
  /** Stops the descriptor watch. */
  close(): void;
}

/**
 * Caps the server's open connections at `max`. A connection past the cap is
 * accepted only to be answered 503 + Retry-After and closed (kinder than the
 * reset of node's maxConnections), as long as at most `refusedAllowance` of
 * them are open; past that, node's maxConnections closes new connections at
 * once, and that is logged (rate-limited). A watch reads the process's open
 * descriptors every `watchMs` and logs a warning when they reach the limit,
 * or when even that read fails with EMFILE / ENFILE.
 */
export function capConnections(
  server: http.Server | https.Server,
  max: number,
  log: Logger,
  options: {
    tls: boolean;
    fdLimit: number | undefined;
    watchMs?: number;
    refusedAllowance?: number;
    /** Counts each refusal (/metrics): answered 503, or reset by node past the allowance. */
    onRefused?: (how: "answered" | "reset") => void;
  },
): ConnectionCap {
  let open = 0;
  let refusedOpen = 0;
  const refusedSockets = new WeakSet<Socket>();
  const allowance = options.refusedAllowance ?? refusedAllowance(max, options.fdLimit);
  // The hard stop: node closes a connection past this before any of our code runs.
  server.maxConnections = max + allowance;
  const atCap = new Warner(log, "connection cap reached: new connections answered 503 (--max-connections)");
  const dropped = new Warner(
    log,
    "connection cap reached and too many refused connections still open: new connections are reset (--max-connections)",
  );
  server.on("drop", () => {
    options.onRefused?.("reset");
    dropped.warn({ open, refusedOpen, maxConnections: max, refusedAllowance: allowance });
  });
  const exhausted = new Warner(
    log,
    "out of file descriptors: new connections are being reset (raise ulimit -n or lower --max-connections)",
  );

  const refuse = (socket: Socket) => {
    socket.on("error", () => {}); // a client gone before it read the 503 is no fault
    socket.write(REFUSAL);
    lingeringClose(socket, REFUSED_LINGER_MS);
  };
  server.on("connection", (socket: Socket) => {
    open++;
    socket.once("close", () => open--);
    if (open <= max) return;
    refusedOpen++;
    socket.once("close", () => refusedOpen--);
    refusedSockets.add(socket);
    options.onRefused?.("answered");
    atCap.warn({ open: open - 1, maxConnections: max });
    // Over TLS the answer waits for the handshake (below), which must not hold the descriptor long; plain HTTP gets it now.
    if (!options.tls) refuse(socket);
    else socket.setTimeout(TLS_REFUSAL_HANDSHAKE_MS, () => socket.destroy());
  });
  if (options.tls) {
    server.on("secureConnection", (socket: TLSSocket) => {
      const raw = (socket as TLSSocket & { _parent?: Socket })._parent;
      if (raw && refusedSockets.has(raw)) {
        refusedSockets.add(socket);
        refuse(socket);
      }
    });
  }
  // node emits 'error' for a failed accept on platforms without libuv's EMFILE trick.
  server.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EMFILE" || err.code === "ENFILE") exhausted.warn({ code: err.code, open });
    else if (server.listening) log.error({ err }, "server error");
  });

  const fdLimit = options.fdLimit;
  const watch = setInterval(() => {
    const used = openDescriptors();
    if (used === "exhausted" || (fdLimit !== undefined && typeof used === "number" && used >= fdLimit - 1)) {
      exhausted.warn({ descriptors: used === "exhausted" ? fdLimit : used, limit: fdLimit, open, maxConnections: max });
    }
  }, options.watchMs ?? 5000);
  watch.unref();
  server.once("close", () => clearInterval(watch));

  return {
    get open() {
      return open;
    },
    get refusedOpen() {
      return refusedOpen;
    },
    refused: (socket) => refusedSockets.has(socket),
    close: () => clearInterval(watch),
  };
}

/** The process's open descriptors (Linux), "exhausted" when none is left to read them, undefined elsewhere. */
function openDescriptors(): number | "exhausted" | undefined {
  try {
    return fs.readdirSync("/proc/self/fd").length;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "EMFILE" || code === "ENFILE" ? "exhausted" : undefined;
  }
}
