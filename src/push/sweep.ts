import { randomUUID } from "node:crypto";
import type { Pusher } from "../core/push.ts";
import type { Log } from "../core/service.ts";
import type { Store } from "../store/index.ts";

const PAGE = 1000;
const LEASE = "silent-sweep";

export interface SweepPolicy {
  /** How often the sweep runs (across all processes: one lease per interval). */
  intervalMs: number;
  /** A channel silent this long with a command queued at least this long is pushed. */
  silenceMs: number;
}

/**
 * The periodic sweep: pushes enabled channels that have commands waiting and
 * have not been seen for `silenceMs` (a lost push, a device that went quiet
 * after NotNow). With several processes on one store, a lease in the store
 * lets one of them sweep per interval. Returns a stop function.
 */
export function startPushSweep(store: Store, pusher: Pusher, policy: SweepPolicy, log: Log): () => Promise<void> {
  const holder = randomUUID();
  let running: Promise<void> = Promise.resolve();
  const sweep = async () => {
    const now = Date.now();
    try {
      // A little shorter than the interval, so the next tick (of any process) can take it.
      if ((await store.push.certCount()) === 0) return;
      if (!(await store.push.acquireLease(LEASE, holder, now, Math.max(1, policy.intervalMs - Math.min(1000, policy.intervalMs / 10)))))
        return;
      let after = "";
      let pushed = 0;
      for (;;) {
        const ids = await store.push.silentWithQueue(now - policy.silenceMs, after, PAGE);
        if (ids.length === 0) break;
        await pusher.push(ids, { trigger: "sweep" });
        pushed += ids.length;
        after = ids[ids.length - 1]!;
        if (ids.length < PAGE) break;
      }
      if (pushed > 0) log.info({ pushed, silenceMs: policy.silenceMs }, "push sweep: pushed silent channels with queued commands");
    } catch (err) {
      log.warn({ err }, "push sweep failed");
    }
  };
  const timer = setInterval(() => {
    running = running.then(sweep);
  }, policy.intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
