import type { Log } from "./service.ts";

/**
 * Coalesces per-id times in memory (last seen, AuthToken last used) and
 * writes them in one batch per interval, so a poll costs no database write.
 * A crash loses at most one interval of these times; nothing else rides on
 * this path.
 */
export class Coalescer {
  private pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly what: string,
    private readonly write: (batch: ReadonlyMap<string, number>) => Promise<void>,
    private readonly log: Log,
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  mark(id: string, at: number): void {
    this.pending.set(id, at);
  }

  flush(): Promise<void> {
    if (this.pending.size === 0) return this.flushing;
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = this.flushing
      .then(() => this.write(batch))
      .catch((err: unknown) => this.log.warn({ err, count: batch.size }, `could not record ${this.what}`));
    return this.flushing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
