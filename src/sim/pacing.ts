import type { SimStats } from "./metrics.ts";
import type { RequestOptions, Response, Sender } from "./transport.ts";

/** A request that was not sent: the run reached its end or was interrupted. Not an error of the server. */
export class NotSent extends Error {}

/** A request sent but not answered in time. */
export class RequestTimeout extends Error {}

/**
 * Sleeps until `until` (performance.now() time) or until `signal` aborts.
 * Resolves true when the time came, false when interrupted.
 */
export function sleepUntil(until: number, signal?: AbortSignal): Promise<boolean> {
  const ms = until - performance.now();
  if (signal?.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (v: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(v);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A token bucket for requests per second over the whole run, as a virtual
 * schedule (GCRA): each request takes the next free slot, at most `burst`
 * slots may be taken ahead at once, waiting is first come first served.
 */
export class RateLimiter {
  private readonly interval: number;
  private readonly tolerance: number;
  private nextSlot = 0;

  constructor(
    readonly rate: number,
    burst = Math.max(1, Math.min(50, Math.floor(rate / 10))),
  ) {
    if (!(rate > 0)) throw new RangeError("rate must be greater than 0");
    this.interval = 1000 / rate;
    this.tolerance = (burst - 1) * this.interval;
  }

  /**
   * Waits for a slot. False when the slot would come after `deadline` or the
   * signal aborts while waiting: the request must not be sent.
   */
  async take(deadline: number, signal?: AbortSignal): Promise<boolean> {
    const now = performance.now();
    const slot = Math.max(now - this.tolerance, this.nextSlot);
    if (slot > deadline) return false;
    this.nextSlot = slot + this.interval;
    return slot <= now ? true : sleepUntil(slot, signal);
  }
}

export interface MeterOptions {
  stats: SimStats;
  limiter?: RateLimiter;
  /** Interrupts the run (Ctrl-C): requests not yet sent are not sent. */
  signal?: AbortSignal;
  /** The longest a request may wait for its answer. */
  timeoutMs: number;
}

/**
 * The simulated devices' way out: paces requests (rate limit), stops sending
 * at the deadline, bounds each request's wait, and counts requests, statuses
 * and latencies.
 */
export class MeteredSender implements Sender {
  /** performance.now() time after which nothing is sent and nothing is waited for. */
  deadline = Infinity;

  constructor(
    private readonly inner: Sender,
    private readonly o: MeterOptions,
  ) {}

  async send(req: RequestOptions): Promise<Response> {
    if (this.o.signal?.aborted || performance.now() >= this.deadline) throw new NotSent("not sent: the run is over");
    if (this.o.limiter && !(await this.o.limiter.take(this.deadline, this.o.signal))) throw new NotSent("not sent: the run is over");
    const stats = this.o.stats;
    const started = performance.now();
    const wait = Math.min(this.o.timeoutMs, this.deadline - started);
    stats.requests++;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const res = await Promise.race([
        this.inner.send(req),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new RequestTimeout(`no answer within ${Math.round(wait)} ms`)), Math.max(0, wait));
          onAbort = () => reject(new NotSent("interrupted while waiting for the answer"));
          this.o.signal?.addEventListener("abort", onAbort, { once: true });
        }),
      ]);
      stats.latency.record(performance.now() - started);
      stats.status(String(res.status));
      return res;
    } catch (err) {
      stats.status("failed");
      throw err;
    } finally {
      clearTimeout(timer);
      if (onAbort) this.o.signal?.removeEventListener("abort", onAbort);
    }
  }
}
