/** The outcome of one push: the apns-id, or why it was not sent. */
export interface PushOutcome {
  pushId?: string;
  error?: string;
}

export interface PushOptions {
  /** What asked for the push, recorded in its events: api, enqueue, notnow, sweep. */
  trigger?: string;
}

/** Wakes channels with an APNs push so that they poll for commands (push/pusher.ts). */
export interface Pusher {
  push(enrollmentIds: readonly string[], options?: PushOptions): Promise<Map<string, PushOutcome>>;
}

/** A pusher that sends nothing and says so for every id (embedders, tests); the server uses push/pusher.ts. */
export class NoPusher implements Pusher {
  async push(enrollmentIds: readonly string[]): Promise<Map<string, PushOutcome>> {
    return new Map(enrollmentIds.map((id) => [id, { error: "no push certificate is configured" }]));
  }
}
