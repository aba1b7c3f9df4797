import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { BatchSender, type BatchOutcome, type SendableEvent, type SenderSettings } from "./batch-sender.ts";

// The webhook sender's thread (started by sender-thread.ts): a BatchSender
// that takes a batch per message and answers with its outcome.

export const SENDER_THREAD = "orchard-webhook-sender";

export type ToThread = { batch: number; events: SendableEvent[]; leaseEnd: number } | { close: true };
export type FromThread = { batch: number; outcome: BatchOutcome } | { batch: number; error: string } | { closed: true };

if (!isMainThread && (workerData as { orchard?: string } | null)?.orchard === SENDER_THREAD) {
  serve((workerData as { settings: SenderSettings }).settings);
}

function serve(settings: SenderSettings): void {
  const port = parentPort!;
  const sender = new BatchSender(settings);
  const inFlight = new Set<Promise<void>>();
  port.on("message", (m: ToThread) => {
    if ("close" in m) {
      // Every batch in flight is answered (its deliveries failed by the close) before the thread says it is done.
      void sender
        .close()
        .then(() => Promise.all(inFlight))
        .then(() => port.postMessage({ closed: true } satisfies FromThread));
      return;
    }
    const sent: Promise<void> = sender.send(m.events, m.leaseEnd).then(
      (outcome) => port.postMessage({ batch: m.batch, outcome } satisfies FromThread),
      (err: unknown) => port.postMessage({ batch: m.batch, error: (err as Error).message } satisfies FromThread),
    );
    inFlight.add(sent);
    void sent.finally(() => inFlight.delete(sent));
  });
}
