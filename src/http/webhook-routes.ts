import type { FastifyInstance } from "fastify";
import { EVENT_CATALOGUE, EVENT_TYPES } from "../store/event-types.ts";
import type { Store } from "../store/index.ts";
import type { EventTypeList, WebhookRetried, WebhookStatusJson } from "./wire.ts";
import { time, timeOrNull } from "./wire-map.ts";

export interface WebhookRoutesOptions {
  store: Store;
  /** This process's webhook (--webhook-url), if any; the outbox itself is every process's. */
  webhook?: { url: string; topics: string[]; wake(): void };
}

/** The webhook's backlog and failures (docs/webhooks.md), and the event catalogue. */
export function registerWebhookRoutes(app: FastifyInstance, o: WebhookRoutesOptions): void {
  const { store } = o;

  app.get(
    "/v1/event-types",
    async (): Promise<EventTypeList> => ({
      event_types: EVENT_TYPES.map((type) => ({ type, about: EVENT_CATALOGUE[type].about })),
    }),
  );

  app.get("/v1/webhook", async (): Promise<WebhookStatusJson> => {
    const s = await store.outbox.status();
    const now = Date.now();
    return {
      enabled: o.webhook !== undefined,
      url: o.webhook?.url ?? null,
      topics: o.webhook?.topics ?? [],
      backlog: s.backlog,
      retrying: s.retrying,
      oldest_created_at: timeOrNull(s.oldestCreatedAt),
      oldest_age_seconds: s.oldestCreatedAt === null ? 0 : Math.max(0, (now - s.oldestCreatedAt) / 1000),
      delivered: s.delivered,
      failed: s.failed,
      dropped: s.dropped,
      last_delivered_at: timeOrNull(s.lastDeliveredAt),
      last_failure: s.lastFailure && {
        at: time(s.lastFailure.at),
        status: s.lastFailure.status,
        error: s.lastFailure.error,
        event_id: s.lastFailure.eventId,
        topic: s.lastFailure.topic,
      },
    };
  });

  app.post("/v1/webhook/retry", async (req): Promise<WebhookRetried> => {
    const retried = await store.outbox.retryNow(Date.now());
    o.webhook?.wake();
    req.log.info({ retried }, "webhook events waiting for a retry made due now");
    return { retried };
  });
}
