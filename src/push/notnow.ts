import type { Pusher } from "../core/push.ts";
import type { Log } from "../core/service.ts";
import type { Store } from "../store/index.ts";

const CLAIM_BATCH = 1000;

/**
 * Pushes again after NotNow (brief 6.6). A device that answered NotNow and
 * then gave another command any other status does not come back by itself
 * when conditions change. So when a report other than Idle or NotNow arrives
 * while a NotNow'd command is still queued on that channel, a push is
 * scheduled `delayMs` later in the store (push_due), and whichever process
 * polls first sends it, if the channel still has commands queued then.
 */
export class NotNowRepush {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly pusher: Pusher,
    private readonly delayMs: number,
    private readonly log: Log,
  ) {}

  /** The core's hook after each command report; never throws. */
  async afterReport(enrollmentId: string, status: string, hasNext: boolean, now: number): Promise<void> {
    // No command left (hasNext false) means nothing to push for; NotNow itself makes the device come back.
    if (!hasNext || status === "NotNow" || status === "Idle") return;
    try {
      if (await this.store.push.hasNotNowQueued(enrollmentId)) {
        await this.store.push.scheduleDue(enrollmentId, now + this.delayMs, "notnow");
      }
    } catch (err) {
      this.log.warn({ err, enrollmentId }, "could not schedule the push after NotNow");
    }
  }

  start(): void {
    const every = Math.min(5000, Math.max(50, Math.floor(this.delayMs / 4)));
    this.timer ??= setInterval(() => {
      this.running = this.running.then(async () => {
        await this.sendDue();
      });
    }, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Sends the pushes due by now; resolves to how many were sent. */
  async sendDue(now = Date.now()): Promise<number> {
    let sent = 0;
    try {
      for (;;) {
        const due = await this.store.push.claimDue(now, CLAIM_BATCH);
        if (due.length === 0) break;
        const ids = await this.store.push.withQueuedCommands(due.map((d) => d.enrollmentId));
        if (ids.length > 0) {
          await this.pusher.push(ids, { trigger: "notnow" });
          sent += ids.length;
        }
        if (due.length < CLAIM_BATCH) break;
      }
    } catch (err) {
      this.log.warn({ err }, "could not send the pushes due after NotNow");
    }
    return sent;
  }
}
