import { KeyWindow } from "./key-window.ts";

/**
 * At most one log line per interval for something a client can make happen
 * at every request (a refusal past a limit, an overload answer): each line
 * says how many there were since the one before. A KeyWindow of one key
 * and one line a window.
 */
export class LineThrottle {
  private readonly window: KeyWindow;

  constructor(intervalMs = 1000) {
    this.window = new KeyWindow(1, intervalMs, 1);
  }

  /** Counts one; how many to report in a line now (this one included), or 0: not yet, it goes into the next. */
  count(now: number): number {
    const t = this.window.take("", now);
    return t.passes ? 1 + (t.heldBackBefore ?? 0) : 0;
  }
}
