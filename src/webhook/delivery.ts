import { createHmac } from "node:crypto";
import type { Store } from "../store/index.ts";
import type { ClaimedEvent, FailedDelivery } from "../store/webhooks.ts";
import { FreshEvents } from "./fresh-events.ts";
import { basicAuth, buildPost, PipelinedClient, type RequestError } from "./http-client.ts";
import type { WebhookOptions } from "./options.ts";

// Delivers the webhook outbox: claim a batch of due events (a lease keeps
// other processes off them), POST each (one JSON event per request; the
// events of one enrollment one after another, in order; different
// enrollments concurrently, up to --webhook-concurrency requests in flight,
// pipelined on a few keep-alive connections: http-client.ts), then settle the
// batch in one transaction: delivered rows deleted, failed ones rescheduled
// with exponential backoff and jitter. The events this process writes come
// to it already leased (fresh-events.ts) and need no claim. Memory holds one
// batch and at most a batch of such events: the backlog stays in the store.
// Delivery is at least once: a process that dies after a receiver's 2xx but
// before settling delivers again (same event_id).

/** The longest wait between two attempts of one event. */
export const MAX_BACKOFF_MS = 10 * 60_000;
/** Events claimed per batch, per unit of concurrency. */
const BATCH_PER_SLOT = 2;
/** A claim's lease, in --webhook-timeout: longer than a batch can take (a batch stops starting deliveries before it ends). */
const LEASE_TIMEOUTS = 10;
/** Connections to the receiver at most, per process; the requests in flight are pipelined on them. */
const MAX_CONNECTIONS = 4;
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

export type FailureOutcome = "http_error" | "timeout" | "unreachable";

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

class DeliveryError extends Error {
  constructor(
    readonly outcome: FailureOutcome,
    readonly status: number | null,
    message: string,
  ) {
    super(message);
  }
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
  const client = new PipelinedClient(url, {
    maxInFlight: options.concurrency,
    maxConnections: Math.min(MAX_CONNECTIONS, options.concurrency),
    timeoutMs: options.timeoutMs,
  });
  const fixedHeaders: Record<string, string> = { "Content-Type": "application/json", "User-Agent": "orchard-webhook" };
  const auth = basicAuth(url);
  if (auth !== undefined) fixedHeaders.Authorization = auth;
  const hmacKey =
    options.hmacKey === undefined
      ? undefined
      : { sign: (body: string) => createHmac("sha256", options.hmacKey!).update(body, "utf8").digest("base64") };
  const batchSize = batchSizeOf(options);
  const leaseMs = leaseOf(options);
  const target = webhookTarget(url);
  let closed = false;
  let wakeUp: (() => void) | undefined;
  let lastSweep = 0;
  let failingBatches = 0;

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeUp = undefined;
        resolve();
      }
      wakeUp = done;
    });

  const post = async (body: string): Promise<void> => {
    const headers = hmacKey === undefined ? fixedHeaders : { ...fixedHeaders, "X-Hmac-Signature": hmacKey.sign(body) };
    let status: number;
    try {
      status = await client.send(buildPost(url, body, headers));
    } catch (err) {
      const e = err as RequestError;
      throw new DeliveryError(e.outcome ?? "unreachable", null, e.message);
    }
    if (status < 200 || status >= 300) throw new DeliveryError("http_error", status, `HTTP ${status}`);
  };

  const backoff = (attempts: number): number => {
    const step = Math.min(MAX_BACKOFF_MS, options.backoffMs * 2 ** Math.min(attempts - 1, 30));
    return step / 2 + Math.random() * (step / 2);
  };

  /** Delivers one batch; resolves to how many were delivered and how many failed. */
  const deliver = async (batch: ClaimedEvent[]): Promise<{ delivered: number; failed: number }> => {
    const groups = new Map<string | number, ClaimedEvent[]>();
    for (const e of batch) {
      const key = e.enrollmentId ?? e.id;
      const g = groups.get(key);
      if (g) g.push(e);
      else groups.set(key, [e]);
    }
    const delivered: number[] = [];
    const failed: FailedDelivery[] = [];
    let lastFailed: ClaimedEvent | undefined;
    let retries = 0;
    // Every enrollment's events at once (the client pipelines them, up to --webhook-concurrency in flight);
    // within an enrollment, each waits for the answer to the one before it.
    const start = Date.now();
    let leaseEnd = start + leaseMs;
    for (const e of batch) if (e.leasedUntil !== undefined && e.leasedUntil < leaseEnd) leaseEnd = e.leasedUntil;
    const stopAt = leaseEnd - 2 * options.timeoutMs;
    const runGroup = async (group: ClaimedEvent[]) => {
      for (let i = 0; i < group.length; i++) {
        const e = group[i]!;
        if (i > 0 && Date.now() > stopAt) {
          // The lease is running out: the rest go back, due now, not counted as attempts.
          for (const later of group.slice(i)) {
            failed.push({
              id: later.id,
              dueAt: Date.now(),
              attempted: false,
              status: null,
              error: "not sent before the batch's lease ran out",
            });
          }
          return;
        }
        try {
          await post(e.body);
          delivered.push(e.id);
          if (e.attempts > 0) retries++;
        } catch (err) {
          const f = err as DeliveryError;
          const dueAt = Date.now() + backoff(e.attempts + 1);
          failed.push({ id: e.id, dueAt, attempted: true, status: f.status ?? null, error: f.message });
          lastFailed = e;
          observer?.webhookFailed(f.outcome ?? "unreachable");
          // The enrollment's later events wait behind this one, in order.
          for (const later of group.slice(i + 1)) {
            failed.push({ id: later.id, dueAt, attempted: false, status: null, error: "held back behind an earlier event that failed" });
          }
          return;
        }
      }
    };
    await Promise.all(Array.from(groups.values(), runGroup));
    const attempted = failed.filter((f) => f.attempted);
    await store.outbox.settle(delivered, failed, lastFailed, Date.now());
    if (delivered.length > 0) observer?.webhookDelivered(delivered.length, retries);
    if (attempted.length > 0) {
      const last = attempted.at(-1)!;
      log.warn(
        {
          url: target,
          failed: attempted.length,
          delivered: delivered.length,
          status: last.status,
          error: last.error,
          eventId: lastFailed?.eventId,
        },
        "webhook deliveries failed: they will be retried",
      );
    }
    return { delivered: delivered.length, failed: attempted.length };
  };

  const sweep = async (now: number) => {
    const dropped = await store.outbox.dropPastLimits(now - options.maxAgeMs, options.maxBacklog);
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
        // The store is unavailable: try again shortly; claimed events come back when their lease ends.
        log.warn({ err: (err as Error).message }, "webhook delivery could not reach the store");
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
      client.close();
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
