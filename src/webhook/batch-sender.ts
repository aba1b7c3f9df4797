import { createHmac } from "node:crypto";
import type { ClaimedEvent, FailedDelivery } from "../store/webhooks.ts";
import { basicAuth } from "../url-credentials.ts";
import { buildPost, PipelinedClient, type RequestError } from "./http-client.ts";

// The HTTP half of a webhook delivery: POSTs a batch of claimed events (one
// JSON event per request; the events of one enrollment one after another,
// in order; different enrollments concurrently, pipelined on a few
// keep-alive connections: http-client.ts) and says how each ended. It
// touches no store: delivery.ts claims the batch before and settles it
// after. It runs in a thread of its own (sender-thread.ts), so that the
// HTTP work of every event is off the event loop that answers devices.

/** The longest wait between two attempts of one event. */
export const MAX_BACKOFF_MS = 10 * 60_000;
/** Connections to the receiver at most, per process; the requests in flight are pipelined on them. */
const MAX_CONNECTIONS = 4;

export type FailureOutcome = "http_error" | "timeout" | "unreachable";

/** What a sender needs of the --webhook-* settings (cloneable: it is handed to the sender's thread). */
export interface SenderSettings {
  url: string;
  hmacKey?: string;
  concurrency: number;
  timeoutMs: number;
  backoffMs: number;
}

/** An event to send: what the sender needs of a ClaimedEvent. */
export type SendableEvent = Pick<ClaimedEvent, "id" | "enrollmentId" | "body" | "attempts" | "leasedUntil">;

/** How a batch ended, for the store (settle) and the metrics. */
export interface BatchOutcome {
  delivered: number[];
  failed: FailedDelivery[];
  /** The id of the last event whose delivery was tried and failed. */
  lastFailedId?: number;
  /** Delivered events that had been tried before. */
  retries: number;
  /** Each failed attempt's outcome, in order. */
  failures: FailureOutcome[];
}

/** Sends batches; in this thread (BatchSender) or another (sender-thread.ts). */
export interface Sender {
  /** `leaseEnd`: when the claim of the batch ends; no delivery starts too close to it. */
  send(batch: readonly SendableEvent[], leaseEnd: number): Promise<BatchOutcome>;
  /** Fails what is in flight (settled as failures, retried) and closes the connections. */
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

/** The wait before attempt `attempts + 1`: exponential from --webhook-backoff, capped, half of it jitter. */
export function backoff(backoffMs: number, attempts: number): number {
  const step = Math.min(MAX_BACKOFF_MS, backoffMs * 2 ** Math.min(attempts - 1, 30));
  return step / 2 + Math.random() * (step / 2);
}

export class BatchSender implements Sender {
  private readonly url: URL;
  private readonly client: PipelinedClient;
  private readonly headers: Record<string, string> = { "Content-Type": "application/json", "User-Agent": "orchard-webhook" };

  constructor(private readonly settings: SenderSettings) {
    this.url = new URL(settings.url);
    this.client = new PipelinedClient(this.url, {
      maxInFlight: settings.concurrency,
      maxConnections: Math.min(MAX_CONNECTIONS, settings.concurrency),
      timeoutMs: settings.timeoutMs,
    });
    const auth = basicAuth(this.url);
    if (auth !== undefined) this.headers.Authorization = auth;
  }

  private async post(body: string): Promise<void> {
    const key = this.settings.hmacKey;
    const headers =
      key === undefined
        ? this.headers
        : { ...this.headers, "X-Hmac-Signature": createHmac("sha256", key).update(body, "utf8").digest("base64") };
    let status: number;
    try {
      status = await this.client.send(buildPost(this.url, body, headers));
    } catch (err) {
      const e = err as RequestError;
      throw new DeliveryError(e.outcome ?? "unreachable", null, e.message);
    }
    if (status < 200 || status >= 300) throw new DeliveryError("http_error", status, `HTTP ${status}`);
  }

  async send(batch: readonly SendableEvent[], leaseEnd: number): Promise<BatchOutcome> {
    const groups = new Map<string | number, SendableEvent[]>();
    for (const e of batch) {
      const key = e.enrollmentId ?? e.id;
      const g = groups.get(key);
      if (g) g.push(e);
      else groups.set(key, [e]);
    }
    const out: BatchOutcome = { delivered: [], failed: [], retries: 0, failures: [] };
    const stopAt = leaseEnd - 2 * this.settings.timeoutMs;
    // Every enrollment's events at once (the client pipelines them, up to --webhook-concurrency in flight);
    // within an enrollment, each waits for the answer to the one before it.
    const runGroup = async (group: SendableEvent[]) => {
      for (let i = 0; i < group.length; i++) {
        const e = group[i]!;
        if (i > 0 && Date.now() > stopAt) {
          // The lease is running out: the rest go back, due now, not counted as attempts.
          for (const later of group.slice(i)) {
            out.failed.push({
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
          await this.post(e.body);
          out.delivered.push(e.id);
          if (e.attempts > 0) out.retries++;
        } catch (err) {
          const f = err as DeliveryError;
          const dueAt = Date.now() + backoff(this.settings.backoffMs, e.attempts + 1);
          out.failed.push({ id: e.id, dueAt, attempted: true, status: f.status ?? null, error: f.message });
          out.lastFailedId = e.id;
          out.failures.push(f.outcome ?? "unreachable");
          // The enrollment's later events wait behind this one, in order.
          for (const later of group.slice(i + 1)) {
            out.failed.push({
              id: later.id,
              dueAt,
              attempted: false,
              status: null,
              error: "held back behind an earlier event that failed",
            });
          }
          return;
        }
      }
    };
    await Promise.all(Array.from(groups.values(), runGroup));
    return out;
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
