import type { ClaimedEvent, OutboxHandoff } from "../store/webhooks.ts";

// The events this process writes, handed to its delivery as they commit
// (store/webhooks.ts OutboxHandoff): written already leased, they need no
// claim. Bounded: past `capacity` events (waiting, or reserved by writes not
// yet committed) new events are written unleased and claimed from the store
// as before, and so is everything while the receiver fails (paused): memory
// holds at most `capacity` events whatever the receiver does.

export class FreshEvents implements OutboxHandoff {
  private queue: ClaimedEvent[] = [];
  private reserved = 0;
  private paused = false;
  /** Called when events arrive. */
  onArrival: (() => void) | undefined;

  constructor(
    private readonly leaseMs: number,
    private readonly capacity: number,
  ) {}

  reserve(n: number, now: number): number | undefined {
    if (this.paused || this.reserved + this.queue.length + n > this.capacity) return undefined;
    this.reserved += n;
    return now + this.leaseMs;
  }

  release(n: number): void {
    this.reserved = Math.max(0, this.reserved - n);
  }

  deliver(events: ClaimedEvent[]): void {
    this.release(events.length);
    for (const e of events) this.queue.push(e);
    this.onArrival?.();
  }

  get size(): number {
    return this.queue.length;
  }

  /**
   * Up to `max` events to deliver now, and those whose lease is too far
   * gone to start a delivery under it (to be given back to the store).
   */
  take(max: number, now: number, minLeaseLeftMs: number): { events: ClaimedEvent[]; stale: ClaimedEvent[] } {
    const taken = this.queue.length <= max ? this.queue : this.queue.slice(0, max);
    this.queue = this.queue.length <= max ? [] : this.queue.slice(max);
    const events: ClaimedEvent[] = [];
    const stale: ClaimedEvent[] = [];
    for (const e of taken) ((e.leasedUntil ?? 0) - now >= minLeaseLeftMs ? events : stale).push(e);
    return { events, stale };
  }

  /** While paused (the receiver fails), new events are written unleased; returns what was waiting, to give back. */
  pause(): ClaimedEvent[] {
    this.paused = true;
    const all = this.queue;
    this.queue = [];
    return all;
  }

  resume(): void {
    this.paused = false;
  }
}
