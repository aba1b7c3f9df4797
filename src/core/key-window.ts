/** What KeyWindow.take says of one more for a key. */
export interface Take {
  /** Within the window's limit. */
  passes: boolean;
  /** Held back so far in this window, this one included when it does not pass. */
  heldBack: number;
  /** Set on the first of a new window: how many the key's window before held back (0 when none, or no window before). */
  heldBackBefore?: number;
}

/**
 * Counts what a key (a Mac; a channel and a reason) does in windows of
 * intervalMs, each starting at the first count after the one before ended:
 * the first `limit` of a window pass, the rest are held back and counted.
 * For what a device can make happen at every request (an event row, a
 * session row), so that it costs a bounded number of writes per window. In
 * this process's memory, for at most maxKeys keys: past that the key whose
 * window began first is forgotten (not all of them: a busy fleet would then
 * hand a flooding key a fresh window).
 */
export class KeyWindow {
  private readonly windows = new Map<string, { start: number; taken: number; heldBack: number }>();

  constructor(
    private readonly limit: number,
    private readonly intervalMs: number,
    private readonly maxKeys = 10_000,
  ) {}

  take(key: string, now: number): Take {
    const w = this.windows.get(key);
    if (w && now - w.start < this.intervalMs) {
      if (w.taken < this.limit) {
        w.taken++;
        return { passes: true, heldBack: w.heldBack };
      }
      w.heldBack++;
      return { passes: false, heldBack: w.heldBack };
    }
    if (!w && this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value!);
    // Deleted and set again, so that the map's order stays the order windows began in.
    this.windows.delete(key);
    this.windows.set(key, { start: now, taken: 1, heldBack: 0 });
    return { passes: true, heldBack: 0, heldBackBefore: w?.heldBack ?? 0 };
  }
}
