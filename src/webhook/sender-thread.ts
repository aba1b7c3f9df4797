import { Worker } from "node:worker_threads";
import type { BatchOutcome, SendableEvent, Sender, SenderSettings } from "./batch-sender.ts";
import { type FromThread, SENDER_THREAD, type ToThread } from "./sender-worker.ts";

// The webhook's sender in a worker thread: the batch goes over as one
// message, its outcome comes back as one. The POSTs (building each request,
// the HMAC, parsing the answers, the sockets) then cost the event loop that
// answers devices nothing but that copy: with the sender in-thread, a
// delivered event cost the check-in path about 0.013 ms of server CPU
// (BENCHMARKS.md, 2026-12-03 third session), a fifth of an Idle's.
//
// The thread runs sender-worker.ts: from the sources through a small
// bootstrap that registers tsx first; from the bundle, its own small bundle
// beside dist/orchard.mjs (bin/bundle.js builds both), so that the thread
// loads only the sender's code, not the whole of Orchard.

/** The file name bin/bundle.js gives the sender's bundle, beside Orchard's. */
export const SENDER_BUNDLE = "webhook-sender.mjs";

/** A sender running in a worker thread; a thread that dies fails its batch (the events come back when their lease ends) and is started again for the next. */
export class ThreadSender implements Sender {
  private worker: Worker | undefined;
  private next = 0;
  private readonly waiting = new Map<number, { resolve(o: BatchOutcome): void; reject(err: Error): void }>();
  private closing: (() => void) | undefined;
  private closed = false;

  constructor(private readonly settings: SenderSettings) {}

  private thread(): Worker {
    if (this.worker) return this.worker;
    const data = { orchard: SENDER_THREAD, settings: this.settings };
    const worker = import.meta.url.endsWith(".ts")
      ? new Worker(
          `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL("./sender-worker.ts", import.meta.url).href)}); })`,
          { eval: true, workerData: data, name: SENDER_THREAD },
        )
      : new Worker(new URL(`./${SENDER_BUNDLE}`, import.meta.url), { workerData: data, name: SENDER_THREAD });
    worker.unref();
    worker.on("message", (m: FromThread) => {
      if ("closed" in m) return this.closing?.();
      const w = this.waiting.get(m.batch);
      if (!w) return;
      this.waiting.delete(m.batch);
      if ("outcome" in m) w.resolve(m.outcome);
      else w.reject(new Error(`the webhook sender failed: ${m.error}`));
    });
    const gone = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
      this.closing?.();
    };
    worker.on("error", (err) => gone(new Error(`the webhook sender's thread failed: ${err.message}`)));
    worker.on("exit", (code) => gone(new Error(`the webhook sender's thread exited (${code})`)));
    this.worker = worker;
    return worker;
  }

  send(batch: readonly SendableEvent[], leaseEnd: number): Promise<BatchOutcome> {
    if (this.closed) return Promise.reject(new Error("the webhook sender was closed"));
    const id = this.next++;
    // Only what the sender reads goes over (a ClaimedEvent carries more).
    const events = batch.map(({ id, enrollmentId, body, attempts, leasedUntil }) => ({ id, enrollmentId, body, attempts, leasedUntil }));
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.thread().postMessage({ batch: id, events, leaseEnd } satisfies ToThread);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    if (!worker) return;
    // The batch in flight fails at once and is answered (settled as failures); then the thread ends.
    await new Promise<void>((resolve) => {
      this.closing = resolve;
      worker.postMessage({ close: true } satisfies ToThread);
    });
    this.closing = undefined;
    this.worker = undefined;
    await worker.terminate();
    const err = new Error("the webhook sender was closed");
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
