import type { Store } from "../store/index.ts";
import type { Log } from "./service.ts";

export interface RetentionPolicy {
  /** How long answered command results are kept; 0 keeps them forever. */
  resultsMs: number;
  /** How long events are kept; 0 keeps them forever. */
  eventsMs: number;
  /** How long nonces and rate-limit failures are remembered. */
  failureWindowMs: number;
  /** How long audit log entries are kept; 0 (or none) keeps them forever. */
  auditMs?: number;
  /** Operator sessions unused this long are deleted (they no longer work anyway). */
  operatorSessionIdleMs?: number;
}

/** Expired and revoked personal API tokens are listed this long, then deleted. */
const ENDED_TOKENS_KEPT_MS = 30 * 86_400_000;

/**
 * The periodic clean-up every process runs: old results and events, used
 * nonces, counted failures and handshakes that never became a user channel. Deletes are idempotent, so several processes
 * sweeping the same database do no harm. Queued commands are never deleted.
 */
export function startRetention(store: Store, policy: RetentionPolicy, log: Log, intervalMs = 10 * 60_000): () => void {
  const sweep = async () => {
    const now = Date.now();
    try {
      const userSessions = await store.userSessions.prune(now, policy.failureWindowMs);
      const results = policy.resultsMs > 0 ? await store.commands.pruneResults(now - policy.resultsMs) : 0;
      const events = policy.eventsMs > 0 ? await store.events.prune(now - policy.eventsMs) : 0;
      // Errors devices reported over DDM are kept as long as events.
      const ddmErrors = policy.eventsMs > 0 ? await store.ddmStatus.pruneErrors(now - policy.eventsMs) : 0;
      const audit = policy.auditMs ? await store.audit.prune(now - policy.auditMs) : 0;
      const operatorSessions =
        policy.operatorSessionIdleMs !== undefined
          ? await store.operators.prune(now, policy.operatorSessionIdleMs, now - ENDED_TOKENS_KEPT_MS)
          : 0;
      if (results + events + ddmErrors + audit + operatorSessions + userSessions > 0) {
        log.info({ results, events, ddmErrors, audit, operatorSessions, userSessions }, "retention sweep");
      }
    } catch (err) {
      log.warn({ err }, "retention sweep failed");
    }
  };
  const timer = setInterval(() => void sweep(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
