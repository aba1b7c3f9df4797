// The load generator: a fixed pool of connections, each with one request in
// flight, each working through its own share of the devices.
import { performance } from "node:perf_hooks";
import type { PreparedRequest } from "../src/sim/prebuilt.ts";
import { RawConnection, type RawResponse } from "../src/sim/raw-http.ts";
import { Transport } from "../src/sim/transport.ts";

/** One client connection (or, for the node client, a share of an agent). */
export interface Conn {
  send(p: PreparedRequest): Promise<RawResponse>;
  readonly closed: boolean;
  close(): void;
}

export type ClientKind = "raw" | "node";

/** A pool of `size` connections to `url`, reconnecting on demand. */
export class ConnPool {
  private constructor(
    readonly url: string,
    readonly conns: Conn[],
    private readonly factory: () => Promise<Conn>,
    private readonly cleanup: () => void,
  ) {}

  static async open(url: string, size: number, kind: ClientKind): Promise<ConnPool> {
    if (kind === "node") {
      // The simulator's own Transport (node's http client, keep-alive agent).
      const transport = new Transport(url, undefined, size);
      const factory = async (): Promise<Conn> => ({
        closed: false,
        close() {},
        async send(p) {
          const r = await transport.send(p.options);
          return { status: r.status, body: r.body, contentType: r.headers["content-type"] };
        },
      });
      const conns = await Promise.all(Array.from({ length: size }, factory));
      return new ConnPool(url, conns, factory, () => transport.close());
    }
    const factory = async (): Promise<Conn> => {
      const raw = await RawConnection.connect(url);
      return {
        get closed() {
          return raw.closed;
        },
        close: () => raw.close(),
        send: (p) => raw.send(p.wire),
      };
    };
    const conns = await Promise.all(Array.from({ length: size }, factory));
    return new ConnPool(url, conns, factory, () => {
      for (const c of conns) c.close();
    });
  }

  /** The connection of slot i, reconnected if the server closed it while idle. */
  async conn(i: number): Promise<Conn> {
    let c = this.conns[i]!;
    if (c.closed) {
      c = await this.factory();
      this.conns[i] = c;
    }
    return c;
  }

  close(): void {
    this.cleanup();
  }
}

/** Returns undefined when the reply is right, else a short reason. */
export type Check = (r: RawResponse) => string | undefined;

/** Sends one request, timing it and checking its reply. */
export type Call = (p: PreparedRequest, label: string, check: Check) => Promise<RawResponse | undefined>;

/** A scenario's unit of work for one device: one request (idle) or several (a round trip). */
export type Unit<D> = (device: D, call: Call) => Promise<void>;

export interface DriveResult {
  /** Completed requests (whatever their answer). */
  requests: number;
  units: number;
  errors: number;
  errorKinds: Record<string, number>;
  elapsedMs: number;
  /** Per-request latencies (ms) of completed requests, unsorted. */
  latencies: Float64Array;
}

const MAX_CONSECUTIVE_FAILURES = 50;

/** Requests, errors and latencies of one drive, shared by its slots. */
class Tally {
  requests = 0;
  errors = 0;
  readonly errorKinds: Record<string, number> = {};
  private latencies: Float64Array;
  private n = 0;

  constructor(expected: number) {
    this.latencies = new Float64Array(Math.max(16, expected));
  }

  error(kind: string): void {
    this.errors++;
    this.errorKinds[kind] = (this.errorKinds[kind] ?? 0) + 1;
  }

  done(ms: number): void {
    if (this.n === this.latencies.length) {
      const bigger = new Float64Array(this.latencies.length * 2);
      bigger.set(this.latencies);
      this.latencies = bigger;
    }
    this.latencies[this.n++] = ms;
    this.requests++;
  }

  result(units: number, start: number): DriveResult {
    const { requests, errors, errorKinds } = this;
    return { requests, units, errors, errorKinds, elapsedMs: performance.now() - start, latencies: this.latencies.subarray(0, this.n) };
  }

  /**
   * The Call of one slot: times the request on the slot's connection and
   * checks the reply. With giveUpAfter, that many failed sends in a row end
   * the drive (a dead server), instead of counting errors forever.
   */
  call(pool: ConnPool, slot: number, giveUpAfter?: number): Call {
    let failures = 0;
    return async (p, label, check) => {
      const conn = await pool.conn(slot);
      const t0 = performance.now();
      let r: RawResponse;
      try {
        r = await conn.send(p);
      } catch (err) {
        this.error(`${label}: ${(err as Error).message}`);
        if (giveUpAfter !== undefined && ++failures > giveUpAfter) {
          throw new Error(`giving up after ${failures} failed requests in a row: ${(err as Error).message}`);
        }
        return undefined;
      }
      failures = 0;
      this.done(performance.now() - t0);
      const bad = check(r);
      if (bad !== undefined) this.error(`${label}: ${bad}`);
      return r;
    };
  }
}

/**
 * Runs `unit` for `durationMs` on every connection of the pool. Slot i works
 * through devices i, i+n, i+2n, ... in turn, so no device ever has two
 * requests in flight. No new unit starts after the deadline; the ones running
 * finish, and the elapsed time runs until the last one does.
 */
export async function drive<D>(pool: ConnPool, devices: readonly D[], unit: Unit<D>, durationMs: number): Promise<DriveResult> {
  const slots = Math.min(pool.conns.length, devices.length);
  const tally = new Tally(1 << 16);
  let units = 0;
  const start = performance.now();
  const deadline = start + durationMs;
  const runSlot = async (slot: number) => {
    const mine = devices.filter((_, i) => i % slots === slot);
    const call = tally.call(pool, slot, MAX_CONSECUTIVE_FAILURES);
    for (let k = 0; performance.now() < deadline; k++) {
      await unit(mine[k % mine.length]!, call);
      units++;
    }
  };
  await Promise.all(Array.from({ length: slots }, (_, i) => runSlot(i)));
  return tally.result(units, start);
}

/**
 * Runs `unit` once for every device, `pool.conns.length` at a time, each
 * device on the next free connection (enrollment; the enroll scenario's
 * batches). Latencies are recorded as in drive().
 */
export async function forEachDevice<D>(pool: ConnPool, devices: readonly D[], unit: Unit<D>): Promise<DriveResult> {
  const slots = Math.min(pool.conns.length, devices.length);
  const tally = new Tally(devices.length * 2);
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: slots }, async (_, slot) => {
      const call = tally.call(pool, slot);
      while (next < devices.length) await unit(devices[next++]!, call);
    }),
  );
  return tally.result(devices.length, start);
}

/** The q-quantile (0..1) of unsorted values, in place. */
export function quantiles(values: Float64Array, qs: number[]): number[] {
  const sorted = values.sort();
  return qs.map((q) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!));
}
