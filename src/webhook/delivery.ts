import type { Store } from "../store/index.ts";
import type { ClaimedEvent } from "../store/webhooks.ts";
import type { FailureOutcome, Sender } from "./batch-sender.ts";
import { FreshEvents } from "./fresh-events.ts";
import type { WebhookOptions } from "./options.ts";
import { ThreadSender } from "./sender-thread.ts";

// Delivers the webhook outbox: claim a batch of due events (a lease keeps
// other processes off them), hand it to the sender (batch-sender.ts, in a
// thread of its own: sender-thread.ts) which POSTs each event, then settle
// the batch in one transaction: delivered rows deleted, failed ones
// rescheduled with exponential backoff and jitter. The events this process
// writes come to it already leased (fresh-events.ts) and need no claim.
// Memory holds one batch and at most a batch of such events: the backlog
// stays in the store. Delivery is at least once: a process that dies after
// a receiver's 2xx but before settling delivers again (same event_id).

/** Events claimed per batch, per unit of concurrency. */
const BATCH_PER_SLOT = 2;
/** A claim's lease, in --webhook-timeout: longer than a batch can take (a batch stops starting deliveries before it ends). */
const LEASE_TIMEOUTS = 10;
const IDLE_POLL_MS = 100;
/**
 * A batch that was not full is followed by the next one this long after it
 * began at the soonest, so that events gather: each batch costs a
 * transaction (its deletes), whatever its size.
 */
const GATHER_MS = 20;
/** How often the backlog limits are checked (and the oldest events past them dropped). */
const SWEEP_INTERVAL_MS = 2_000;
/** While the receiver fails every delivery, the pause between batches grows to this. */
const MAX_PAUSE_MS = 30_000;

export type { FailureOutcome };

/** Told of each outcome (the /metrics counters). */
export interface WebhookObserver {
  webhookDelivered(count: number, retries: number): void;
  webhookFailed(outcome: FailureOutcome): void;
  webhookDropped(reason: "backlog" | "age", count: number): void;
}

export interface WebhookLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface WebhookDelivery {
  /** Claims now rather than at the next poll. */
  wake(): void;
  /** Stops claiming and waits for the batch in flight to settle. */
  close(): Promise<void>;
}

/** Events delivered per batch. */
const batchSizeOf = (options: WebhookOptions) => options.concurrency * BATCH_PER_SLOT;
/** Longer than a batch can take, so that no other process claims an event this one is still delivering. */
const leaseOf = (options: WebhookOptions) => LEASE_TIMEOUTS * options.timeoutMs;

/**
 * The handoff of this process's new events to its delivery: give it to the
 * Store (Store.withWebhookTopics) and to startWebhookDelivery.
 */
export function freshEventsFor(options: WebhookOptions): FreshEvents {
  return new FreshEvents(leaseOf(options), batchSizeOf(options));
}

export function startWebhookDelivery(o: {
  store: Store;
  options: WebhookOptions;
  log: WebhookLog;
  observer?: WebhookObserver;
  /** The events this process writes, handed over leased (else every event is claimed from the store). */
  fresh?: FreshEvents;
}): WebhookDelivery {
  const { store, options, log, observer, fresh } = o;
  const url = new URL(options.url);
  const sender: Sender = new ThreadSender({
    url: options.url,
    hmacKey: options.hmacKey,
    concurrency: options.concurrency,
    timeoutMs: options.timeoutMs,
    backoffMs: options.backoffMs,
  });
  const batchSize = batchSizeOf(options);
  const leaseMs = leaseOf(options);
  const target = webhookTarget(url);
  let closed = false;
  let wakeUp: (() => void) | undefined;
  let lastSweep = 0;
  let failingBatches = 0;

  // After close, no pause: a close that came while the loop was between two (giving events back, say) found no
  // pause to wake, and the next one held the shutdown up to MAX_PAUSE_MS.
  const pause = (ms: number) =>
    closed
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const timer = setTimeout(done, ms);
          function done() {
            clearTimeout(timer);
            wakeUp = undefined;
            resolve();
          }
          wakeUp = done;
        });

  /** Delivers one batch; resolves to how many were delivered and how many failed. */
  const deliver = async (batch: ClaimedEvent[]): Promise<{ delivered: number; failed: number }> => {
    // No delivery starts too close to the end of the batch's lease (the claim's, or the shortest of its fresh events').
    let leaseEnd = Date.now() + leaseMs;
    for (const e of batch) if (e.leasedUntil !== undefined && e.leasedUntil < leaseEnd) leaseEnd = e.leasedUntil;
    const outcome = await sender.send(batch, leaseEnd);
    for (const f of outcome.failures) observer?.webhookFailed(f);
    const lastFailed = outcome.lastFailedId === undefined ? undefined : batch.find((e) => e.id === outcome.lastFailedId);
    const attempted = outcome.failed.filter((f) => f.attempted);
    await store.outbox.settle(outcome.delivered, outcome.failed, lastFailed, Date.now());
    if (outcome.delivered.length > 0) observer?.webhookDelivered(outcome.delivered.length, outcome.retries);
    if (attempted.length > 0) {
      const last = attempted.at(-1)!;
      log.warn(
        {
          url: target,
          failed: attempted.length,
          delivered: outcome.delivered.length,
          status: last.status,
          error: last.error,
          eventId: lastFailed?.eventId,
        },
        "webhook deliveries failed: they will be retried",
      );
    }
    return { delivered: outcome.delivered.length, failed: attempted.length };
  };

  const sweep = async (now: number) => {
    // When webhook.dropped is itself sent, its event takes a place in the backlog: a drop makes room for it, or the
    // backlog is over the limit again at once, and the next sweep drops one more event, and says so, for ever.
    const room = options.topics.has("webhook.dropped") ? 1 : 0;
    const dropped = await store.outbox.dropPastLimits(now - options.maxAgeMs, options.maxBacklog, room);
    for (const reason of ["age", "backlog"] as const) {
      const d = dropped[reason];
      if (!d) continue;
      const detail = {
        count: d.count,
        reason,
        oldest_created_at: new Date(d.oldestCreatedAt).toISOString(),
        newest_created_at: new Date(d.newestCreatedAt).toISOString(),
      };
      observer?.webhookDropped(reason, d.count);
      log.error(
        { url: target, ...detail },
        reason === "age"
          ? `WEBHOOK EVENTS DROPPED: ${d.count} undelivered events were older than --webhook-max-age`
          : `WEBHOOK EVENTS DROPPED: the backlog passed --webhook-max-backlog (${options.maxBacklog}); the ${d.count} oldest undelivered events were dropped`,
      );
      await store.events.add({ type: "webhook.dropped", detail }, now);
    }
  };

  /** This process's new events first; the store's due ones when there are none, or every IDLE_POLL_MS. */
  let lastClaim = 0;
  const nextBatch = async (now: number): Promise<ClaimedEvent[]> => {
    let batch: ClaimedEvent[] = [];
    if (fresh && fresh.size > 0) {
      const { events, stale } = fresh.take(batchSize, now, 2 * options.timeoutMs);
      if (stale.length > 0)
        await store.outbox.unlease(
          stale.map((e) => e.id),
          now,
        );
      batch = events;
    }
    if (batch.length < batchSize && (batch.length === 0 || now - lastClaim >= IDLE_POLL_MS)) {
      lastClaim = now;
      const claimed = await store.outbox.claim(now, leaseMs, batchSize - batch.length);
      if (claimed.length > 0) batch = batch.length === 0 ? claimed : [...batch, ...claimed].sort((a, b) => a.id - b.id);
    }
    return batch;
  };

  const loop = async () => {
    while (!closed) {
      try {
        const now = Date.now();
        if (now - lastSweep >= SWEEP_INTERVAL_MS) {
          lastSweep = now;
          await sweep(now);
        }
        const batch = await nextBatch(now);
        if (batch.length === 0) {
          await pause(IDLE_POLL_MS);
          continue;
        }
        const result = await deliver(batch);
        const elapsed = Date.now() - now;
        if (batch.length < batchSize && elapsed < GATHER_MS && !closed) {
          gathering = true;
          await pause(GATHER_MS - elapsed);
          gathering = false;
        }
        failingBatches = result.delivered === 0 && result.failed > 0 ? failingBatches + 1 : 0;
        // A receiver that fails everything is not hammered: the pause grows while it does.
        if (failingBatches > 0) {
          // Meanwhile new events go to the store unleased, and those waiting in memory go back to it.
          if (fresh) await giveBack(fresh.pause());
          await pause(Math.min(MAX_PAUSE_MS, options.backoffMs * 2 ** Math.min(failingBatches - 1, 20)));
        } else fresh?.resume();
      } catch (err) {
        // The store is unavailable, or the sender's thread failed: try again shortly; the batch's events come back when their lease ends.
        log.warn({ err: (err as Error).message }, "webhook delivery failed: it goes on in a second");
        await pause(1000);
      }
    }
  };

  /** Events this process holds leased but will not deliver now: due again at once, for any process. */
  const giveBack = async (events: ClaimedEvent[]) => {
    if (events.length > 0)
      await store.outbox.unlease(
        events.map((e) => e.id),
        Date.now(),
      );
  };

  let gathering = false;
  if (fresh) fresh.onArrival = () => (gathering ? undefined : wakeUp?.());
  log.info({ url: target, topics: options.topics.list(), hmac: options.hmacKey !== undefined }, "webhook delivery started");
  const running = loop();
  return {
    wake: () => wakeUp?.(),
    async close() {
      closed = true;
      wakeUp?.();
      // Deliveries in flight fail at once and are settled as failures: retried by the next process.
      await sender.close();
      await running;
      if (fresh) {
        if (fresh.onArrival) fresh.onArrival = undefined;
        await giveBack(fresh.pause()).catch((err) =>
          log.warn(
            { err: (err as Error).message },
            "webhook events held for delivery could not be given back: they are due when their lease ends",
          ),
        );
      }
    },
  };
}

/** The URL without credentials or query (they may hold a secret): for logs and the status API. */
export function webhookTarget(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}
