import type { Store } from "../store/index.ts";
import type { Log } from "./service.ts";

export interface RetentionPolicy {
  /** How long answered command results are kept; 0 keeps them forever. */
  resultsMs: number;
  /** How long events are kept; 0 keeps them forever. */
  eventsMs: number;
  /** How long nonces and rate-limit failures are remembered. */
  failureWindowMs: number;
}

/**
 * The periodic clean-up every process runs: old results and events, used
 * nonces and counted failures. Deletes are idempotent, so several processes
 * sweeping the same database do no harm. Queued commands are never deleted.
 */
export function startRetention(store: Store, policy: RetentionPolicy, log: Log, intervalMs = 10 * 60_000): () => void {
  const sweep = async () => {
    const now = Date.now();
    try {
      await store.userSessions.prune(now, policy.failureWindowMs);
      const results = policy.resultsMs > 0 ? await store.commands.pruneResults(now - policy.resultsMs) : 0;
      const events = policy.eventsMs > 0 ? await store.events.prune(now - policy.eventsMs) : 0;
      // Errors devices reported over DDM are kept as long as events.
      const ddmErrors = policy.eventsMs > 0 ? await store.ddmStatus.pruneErrors(now - policy.eventsMs) : 0;
      if (results + events + ddmErrors > 0) log.info({ results, events, ddmErrors }, "retention sweep");
    } catch (err) {
      log.warn({ err }, "retention sweep failed");
    }
  };
  const timer = setInterval(() => void sweep(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
