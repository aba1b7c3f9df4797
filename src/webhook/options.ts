import { EVENT_TYPES, isEventType } from "../store/event-types.ts";
import { NANOMDM_TOPICS } from "../store/webhook-format.ts";

/** The --webhook-* settings (README flag table, docs/webhooks.md). */
export interface WebhookOptions {
  /** Where events are POSTed, one per request. */
  url: string;
  /** X-Hmac-Signature: base64 HMAC-SHA256 of the body with this key. */
  hmacKey?: string;
  /** The topics written to the outbox (NanoMDM's mdm.* and any of Orchard's event types). */
  topics: TopicSet;
  /** Past this many undelivered events, the oldest are dropped (webhook.dropped). */
  maxBacklog: number;
  /** Undelivered events older than this are dropped (webhook.dropped). */
  maxAgeMs: number;
  /** A delivery not answered within this is a failure (retried). */
  timeoutMs: number;
  /** The first retry waits this long, then twice as long each time (capped at MAX_BACKOFF_MS), with jitter. */
  backoffMs: number;
  /** Deliveries in flight at once, per process. */
  concurrency: number;
}

export const DEFAULT_TOPICS = "mdm.*";

/**
 * The topics of --webhook-topics, comma-separated: NanoMDM's (`mdm.Connect`,
 * `mdm.*` for all of them), Orchard's event types (`push.failed`,
 * `userauth.*` for a family, `orchard.*` for all), or `*` for everything.
 * Throws an Error whose message lists what is accepted.
 */
export function parseTopics(value: string): TopicSet {
  const topics = new Set<string>();
  const all = [...NANOMDM_TOPICS, ...EVENT_TYPES];
  for (const item of value
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean)) {
    let matched: string[];
    if (item === "*") matched = all;
    else if (item === "orchard.*") matched = [...EVENT_TYPES];
    else if (item.endsWith(".*")) matched = all.filter((t) => t.startsWith(item.slice(0, -1)));
    else matched = (NANOMDM_TOPICS as readonly string[]).includes(item) || isEventType(item) ? [item] : [];
    if (matched.length === 0) {
      throw new Error(
        `unknown topic ${item}: use mdm.* or one of ${NANOMDM_TOPICS.join(", ")}; orchard.* or one of Orchard's event types ` +
          `(${EVENT_TYPES.join(", ")}) or a family of them (userauth.*); or * for all`,
      );
    }
    for (const t of matched) topics.add(t);
  }
  if (topics.size === 0) throw new Error("no topic given");
  return new TopicSet(topics);
}

/** The topics a webhook is sent. */
export class TopicSet {
  constructor(private readonly names: ReadonlySet<string>) {}
  get size(): number {
    return this.names.size;
  }
  has(topic: string): boolean {
    return this.names.has(topic);
  }
  /** The topics, for the status API. */
  list(): string[] {
    return [...this.names];
  }
}
