import { randomUUID } from "node:crypto";
import { serializePlist } from "../plist/index.ts";
import { tokensResponse } from "../protocol/ddm-tokens.ts";
import { DDM_SYNC_COMMAND_PREFIX } from "../store/ddm.ts";
import type { Store } from "../store/index.ts";
import { isStoreUnavailable } from "../store/unavailable.ts";
import { LineThrottle } from "./line-throttle.ts";
import type { Pusher } from "./push.ts";
import type { Log } from "./service.ts";

/** At most one line this often for sweeps that fail. */
export const FAILURE_LINE_INTERVAL_MS = 10_000;

export interface DdmSyncOptions {
  /** How often due channels are looked for. */
  intervalMs?: number;
  /** Channels per transaction. */
  batch?: number;
  /** Told how many channels got a DeclarativeManagement command, after each batch commits (metrics). */
  onQueued?: (channels: number) => void;
}

/**
 * Turns channels due for a sync (store/ddm.ts's ddm_sync_due, written in the
 * transaction of each change) into one DeclarativeManagement command each,
 * with the channel's tokens in Data (the device then skips asking for them),
 * and pushes them. Durable and safe with several processes: a due row is
 * claimed (deleted) in the transaction that queues its command, so a crash
 * leaves it due, and two processes never claim the same one. A push lost
 * after the commit is made good by the push sweep (push/sweep.ts).
 *
 * A newer sync command replaces one still waiting unsent in a channel's
 * queue, so an offline device wakes to one command, not one per change.
 * Channels with the same tokens share one command (one row in commands, a
 * queue row each), so a change to a set that 100,000 channels hold is a
 * handful of commands and batched queue inserts.
 */
export class DdmSync {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private readonly intervalMs: number;
  private readonly batch: number;
  private readonly onQueued: (channels: number) => void;
  /** A store outage fails every sweep, four a second: one line per FAILURE_LINE_INTERVAL_MS, with how many. */
  private readonly failures = new LineThrottle(FAILURE_LINE_INTERVAL_MS);

  constructor(
    private readonly store: Store,
    private readonly pusher: Pusher,
    private readonly log: Log,
    o: DdmSyncOptions = {},
  ) {
    this.intervalMs = o.intervalMs ?? 250;
    this.batch = o.batch ?? 5000;
    this.onQueued = o.onQueued ?? (() => {});
  }

  start(): void {
    this.timer = setInterval(() => {
      this.running = this.running.then(() => this.runOnce().catch((err: unknown) => this.failed(err)));
    }, this.intervalMs);
    this.timer.unref();
  }

  private failed(err: unknown): void {
    const failures = this.failures.count(Date.now());
    if (failures === 0) return;
    // An outage is a passing condition: its line has no stack (as the other outage lines); anything else keeps it.
    if (isStoreUnavailable(err)) this.log.warn({ failures, reason: (err as Error).message }, "DDM sync sweep failed: store unavailable");
    else this.log.warn({ err, failures }, "DDM sync sweep failed");
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /**
   * Queues and pushes every channel due by `now`; returns how many got a
   * command. A batch's pushes go out while the next batch is queued (at most
   * one batch's pushes in flight): the APNs round trips overlap the store's work.
   */
  async runOnce(now = Date.now()): Promise<number> {
    let total = 0;
    if (!(await this.store.ddm.hasDue(now))) return 0;
    let pushing: Promise<void> | undefined;
    try {
      for (;;) {
        const { claimed, queued } = await this.store.transaction(async (tx) => {
          const claimed = await tx.ddm.claimDue(now, this.batch);
          if (claimed.length === 0) return { claimed, queued: [] };
          const queued = await tx.ddm.syncable(claimed);
          await tx.ddm.dropWaitingSyncs(queued);
          const groups = new Map<string, string[]>();
          for (const [id, t] of await tx.ddm.channelTokensMany(queued)) {
            const data = JSON.stringify(tokensResponse(t.token, t.changedAt));
            const group = groups.get(data);
            if (group) group.push(id);
            else groups.set(data, [id]);
          }
          for (const [data, ids] of groups) {
            const commandUuid = `${DDM_SYNC_COMMAND_PREFIX}${randomUUID().toUpperCase()}`;
            const command = serializePlist({
              Command: { RequestType: "DeclarativeManagement", Data: Buffer.from(data) },
              CommandUUID: commandUuid,
            });
            await tx.commands.enqueue({ commandUuid, requestType: "DeclarativeManagement", command: Buffer.from(command) }, ids, now);
          }
          return { claimed, queued };
        });
        if (queued.length > 0) this.onQueued(queued.length);
        await pushing;
        pushing = queued.length > 0 ? this.push(claimed.length, queued) : undefined;
        pushing?.catch(() => {}); // awaited above or below; not unhandled meanwhile
        total += queued.length;
        if (claimed.length < this.batch) break;
      }
      await pushing;
    } finally {
      await pushing?.catch(() => {});
    }
    return total;
  }

  private async push(due: number, queued: string[]): Promise<void> {
    const outcomes = await this.pusher.push(queued, { trigger: "ddm" });
    let pushed = 0;
    for (const o of outcomes.values()) if (o.pushId !== undefined) pushed++;
    this.log.info({ due, queued: queued.length, pushed }, "DDM sync: DeclarativeManagement queued");
  }
}
