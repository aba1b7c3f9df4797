/** The outcome of one push: the apns-id, or why it was not sent. */
export interface PushOutcome {
  pushId?: string;
  error?: string;
}

/** Wakes channels with an APNs push so that they poll for commands. */
export interface Pusher {
  push(enrollmentIds: readonly string[]): Promise<Map<string, PushOutcome>>;
}

/** The pusher until a push certificate is configured: says so for every id. */
export class NoPusher implements Pusher {
  async push(enrollmentIds: readonly string[]): Promise<Map<string, PushOutcome>> {
    return new Map(enrollmentIds.map((id) => [id, { error: "no push certificate is configured" }]));
  }
}
