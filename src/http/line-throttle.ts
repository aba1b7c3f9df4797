/**
 * At most one log line per interval for something a client can make happen
 * at every request (a refusal past a limit, an overload answer): each line
 * says how many there were since the one before.
 */
export class LineThrottle {
  private unlogged = 0;
  private loggedAt = -Infinity;

  constructor(private readonly intervalMs = 1000) {}

  /** Counts one; how many to report in a line now (this one included), or 0: not yet, it goes into the next. */
  count(now: number): number {
    this.unlogged++;
    if (now - this.loggedAt < this.intervalMs) return 0;
    const n = this.unlogged;
    this.unlogged = 0;
    this.loggedAt = now;
    return n;
  }
}
