/** The outcome of one push: the apns-id, or why it was not sent. */
export interface PushOutcome {
  pushId?: string;
  error?: string;
}

export interface PushOptions {
  /** What asked for the push, recorded in its events: api, enqueue, notnow, sweep. */
  trigger?: string;
}

/** What a push to every enabled channel came to: counts, and the first failures (push/pusher.ts, MAX_LISTED_FAILURES). */
export interface PushAllSummary {
  pushed: number;
  failed: number;
  failures: Array<{ id: string; error: string }>;
  /** More failed than are listed. */
  truncated: boolean;
}

/** Wakes channels with an APNs push so that they poll for commands (push/pusher.ts). */
export interface Pusher {
  push(enrollmentIds: readonly string[], options?: PushOptions): Promise<Map<string, PushOutcome>>;
  /** Every enabled channel, streamed from the store; undefined when pushing is not set up (no certificate). */
  pushAll?(options?: PushOptions): Promise<PushAllSummary | undefined>;
}

/** A pusher that sends nothing and says so for every id (embedders, tests); the server uses push/pusher.ts. */
export class NoPusher implements Pusher {
  async push(enrollmentIds: readonly string[]): Promise<Map<string, PushOutcome>> {
    return new Map(enrollmentIds.map((id) => [id, { error: "no push certificate is configured" }]));
  }
}
