import type { Logger } from "pino";
import type { Store } from "../store/index.ts";

/**
 * Coalesces "last seen" times in memory and writes them in one batch per
 * interval, so an Idle poll costs no database write. A crash loses at most one
 * interval of last-seen times; nothing else rides on this path.
 */
export class LastSeen {
  private pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  mark(enrollmentId: string, at: number): void {
    this.pending.set(enrollmentId, at);
  }

  flush(): Promise<void> {
    if (this.pending.size === 0) return this.flushing;
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = this.flushing
      .then(() => this.store.enrollments.markSeen(batch))
      .catch((err: unknown) => this.log.warn({ err, count: batch.size }, "could not record last-seen times"));
    return this.flushing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
