import { randomUUID } from "node:crypto";
import type { PushAllSummary, PushOptions, PushOutcome, Pusher } from "../core/push.ts";
import type { Log } from "../core/service.ts";
import type { NewEvent } from "../store/events.ts";
import type { Store } from "../store/index.ts";
import type { DeadTokenMark, PushTarget } from "../store/push.ts";
import { ApnsClient, ApnsTransportError, type ApnsResponse } from "./apns-client.ts";
import { chunks } from "../store/enrollments.ts";
import { PushCertUnusable, type PushCertSource } from "./certs.ts";

/** Counts push outcomes (/metrics); reasons are few and bounded, never an id or a token. */
export interface PushObserver {
  sent(count: number): void;
  failed(reason: string): void;
}

export interface ApnsPusherOptions {
  store: Store;
  observer?: PushObserver;
  certs: PushCertSource;
  log: Log;
  /** The APNs endpoint (--apns-url, --apns-sandbox). */
  url: string;
  /** Extra CAs trusted for the APNs server (--apns-ca). */
  ca?: string[];
  /** apns-expiration: now + this; 0 sends `0` (deliver now or never). */
  expirationMs: number;
  priority: number;
  /** Cap on concurrent streams per topic connection (the server's limit also applies). */
  maxStreams: number;
  /** Further attempts after a 429, a 5xx or no answer. */
  retries: number;
  /** Base of the exponential backoff between attempts. */
  backoffMs: number;
  pingIntervalMs: number;
  requestTimeoutMs: number;
}

/** The answer for every id while no push certificate at all is stored (NoPusher's words). */
export const NO_CERTIFICATE = "no push certificate is configured";

// 403 reasons that mean the certificate itself is refused: stop pushing on the topic.
const CERT_REASONS = new Set(["BadCertificate", "BadCertificateEnvironment", "Forbidden"]);
// 400 reasons that mean the connection should be replaced before retrying.
const RECONNECT_REASONS = new Set(["IdleTimeout"]);
// How long a topic whose certificate APNs refused is not tried again (unless a new certificate arrives).
const CERT_BLOCK_MS = 10 * 60_000;
// GOAWAY'd streams APNs never processed are resent at once, this many times at most.
const MAX_REFUSED_RESENDS = 5;
const BACKOFF_CAP_MS = 30_000;

/** Push outcomes recorded a batch at a time: a push to many never holds every event until it ends. */
const RECORD_EVERY = 1000;
/** Channels read from the store per page by a push to all. */
const ALL_PAGE = 1000;
/** Failures a push to all lists by id; past this only counted. */
export const MAX_LISTED_FAILURES = 1000;

/** One push call: its outcomes go to `outcome` as they come; events and dead tokens are written a batch at a time. */
interface Batch {
  trigger: string;
  outcome(id: string, o: PushOutcome): void;
  events: NewEvent[];
  dead: DeadTokenMark[];
  /** The write of the previous batch of events, if any. */
  writing: Promise<void>;
  /** Topic -> why it cannot be pushed ("": it can), looked up once per call. */
  certProblems: Map<string, string>;
  ids: number;
  sent: number;
  deadTokens: number;
}

/** A page of a push: the channels found, and the ids asked for that name none. */
interface Page {
  targets: readonly PushTarget[];
  unknown: readonly string[];
}

/**
 * Wakes channels through APNs. Reads the channels a page at a time, sends
 * each on its topic's long-lived connection with a bounded number in flight
 * (twice the stream cap: the connection stays full, memory stays flat
 * however many are pushed), retries 429, 5xx and lost streams with backoff
 * and jitter, stops pushing to tokens APNs calls dead (410, 400
 * BadDeviceToken) and on topics whose certificate it refuses (403, reported
 * once), and records every outcome as an event, many to a statement.
 */
export class ApnsPusher implements Pusher {
  private readonly clients = new Map<string, { version: string; client: ApnsClient }>();
  private readonly blocked = new Map<string, { version: string; until: number; message: string }>();
  private closed = false;

  constructor(private readonly o: ApnsPusherOptions) {}

  async push(enrollmentIds: readonly string[], options: PushOptions = {}): Promise<Map<string, PushOutcome>> {
    const outcomes = new Map<string, PushOutcome>();
    // No certificate at all: pushing is not set up; answer as NoPusher would, without touching the store.
    if (!(await this.o.certs.anyConfigured(Date.now()))) {
      for (const _ of enrollmentIds) this.o.observer?.failed("no_certificate");
      for (const id of enrollmentIds) outcomes.set(id, { error: NO_CERTIFICATE });
      return outcomes;
    }
    const store = this.o.store.push;
    async function* pages(): AsyncGenerator<Page> {
      for (const chunk of chunks(enrollmentIds, ALL_PAGE)) {
        const found = await store.targets(chunk);
        const targets: PushTarget[] = [];
        const unknown: string[] = [];
        for (const id of chunk) {
          const t = found.get(id);
          if (t) targets.push(t);
          else unknown.push(id);
        }
        yield { targets, unknown };
      }
    }
    await this.run(pages(), options.trigger ?? "api", (id, o) => outcomes.set(id, o));
    return outcomes;
  }

  /**
   * Pushes every enabled channel in the store, read a page at a time (by id):
   * memory stays flat whatever the fleet's size. Answers counts and the
   * first MAX_LISTED_FAILURES failures; undefined when no push certificate
   * is stored at all (nothing was read or sent).
   */
  async pushAll(options: PushOptions = {}): Promise<PushAllSummary | undefined> {
    if (!(await this.o.certs.anyConfigured(Date.now()))) return undefined;
    const store = this.o.store.push;
    async function* pages(): AsyncGenerator<Page> {
      let after = "";
      for (;;) {
        const targets = await store.enabledTargets(after, ALL_PAGE);
        if (targets.length === 0) return;
        yield { targets, unknown: [] };
        if (targets.length < ALL_PAGE) return;
        after = targets[targets.length - 1]!.id;
      }
    }
    const summary: PushAllSummary = { pushed: 0, failed: 0, failures: [], truncated: false };
    await this.run(pages(), options.trigger ?? "api", (id, o) => {
      if (o.pushId) summary.pushed++;
      else {
        summary.failed++;
        if (summary.failures.length < MAX_LISTED_FAILURES) summary.failures.push({ id, error: o.error ?? "not pushed" });
        else summary.truncated = true;
      }
    });
    return summary;
  }

  /** Sends every page's channels, at most twice the stream cap in flight, and logs what the call came to. */
  private async run(pages: AsyncIterable<Page>, trigger: string, outcome: (id: string, o: PushOutcome) => void): Promise<void> {
    const started = Date.now();
    const batch: Batch = {
      trigger,
      outcome,
      events: [],
      dead: [],
      writing: Promise.resolve(),
      certProblems: new Map(),
      ids: 0,
      sent: 0,
      deadTokens: 0,
    };
    const limit = Math.max(1, this.o.maxStreams) * 2;
    let inFlight = 0;
    // A full window is refilled once half of it is free, not one push at a
    // time: one wake-up of this loop per limit/2 pushes rather than per push.
    let waitingFor = 0;
    let slotFreed: (() => void) | undefined;
    const done = () => {
      inFlight--;
      if (inFlight <= waitingFor) slotFreed?.();
    };
    const inFlightAtMost = (n: number) =>
      new Promise<void>((resolve) => {
        waitingFor = n;
        slotFreed = resolve;
      });
    try {
      for await (const page of pages) {
        for (const id of page.unknown) {
          batch.ids++;
          outcome(id, { error: "unknown enrollment" });
          this.o.observer?.failed("unknown_enrollment");
        }
        for (const t of page.targets) {
          batch.ids++;
          if (!t.enabled) this.fail(batch, t, "enrollment is disabled (no TokenUpdate since its last Authenticate, or it checked out)");
          else if (t.dead) {
            this.fail(
              batch,
              t,
              `APNs refused this push token (${t.dead.status} ${t.dead.reason}) at ${new Date(t.dead.markedAt).toISOString()}; no pushes until the device sends a TokenUpdate`,
            );
          } else {
            // One lookup per topic and call: a topic without a usable certificate fails as a whole.
            let why = batch.certProblems.get(t.topic);
            if (why === undefined) batch.certProblems.set(t.topic, (why = (await this.certProblem(t.topic)) ?? ""));
            if (why) this.fail(batch, t, why);
            else {
              if (inFlight >= limit) await inFlightAtMost(limit / 2);
              inFlight++;
              void this.pushOne(t.topic, t, batch).then(done, (err: unknown) => {
                done();
                this.fail(batch, t, `push failed: ${(err as Error).message}`);
              });
            }
          }
          if (batch.events.length >= RECORD_EVERY) await this.record(batch);
        }
      }
    } finally {
      // Even when reading the channels or a certificate failed part way: the pushes already sent finish and are recorded.
      if (inFlight > 0) await inFlightAtMost(0);
      await this.record(batch);
      await batch.writing;
    }
    this.o.observer?.sent(batch.sent);
    this.o.log.info(
      {
        trigger,
        ids: batch.ids,
        sent: batch.sent,
        failed: batch.ids - batch.sent,
        deadTokens: batch.deadTokens,
        ms: Date.now() - started,
        peakStreams: this.peakStreams(),
      },
      "push",
    );
  }

  /**
   * Writes the events and dead tokens gathered so far in the background, one
   * write at a time: waits only for the write before (so at most two batches
   * are held). The pushes went out whatever happens here: a failed write is
   * logged, the answer stands.
   */
  private async record(batch: Batch): Promise<void> {
    const { events, dead } = batch;
    if (events.length === 0 && dead.length === 0) return;
    batch.events = [];
    batch.dead = [];
    const previous = batch.writing;
    batch.writing = previous.then(async () => {
      try {
        batch.deadTokens += (await this.o.store.push.recordOutcomes(dead, events, Date.now())).size;
      } catch (err) {
        this.o.log.error({ err, events: events.length, deadTokens: dead.length }, "could not record push outcomes");
      }
    });
    await previous;
  }

  /** Closes every APNs connection (server shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((c) => c.client.close()));
  }

  /** The most streams ever open at once on any topic's connection (bench). */
  peakStreams(): number {
    return Math.max(0, ...[...this.clients.values()].map((c) => c.client.peakStreams));
  }

  private async certProblem(topic: string): Promise<string | undefined> {
    try {
      if (await this.o.certs.get(topic)) return undefined;
      return (await this.o.certs.anyConfigured()) ? `no push certificate for topic ${topic}` : NO_CERTIFICATE;
    } catch (err) {
      if (err instanceof PushCertUnusable) return err.message;
      throw err;
    }
  }

  private async pushOne(topic: string, t: PushTarget, batch: Batch): Promise<void> {
    const apnsId = randomUUID();
    let attempts = 0;
    let resends = 0;
    for (;;) {
      let client: { client: ApnsClient; version: string } | string;
      try {
        client = await this.clientFor(topic);
      } catch (err) {
        return this.fail(batch, t, err instanceof PushCertUnusable ? err.message : `push certificate: ${(err as Error).message}`, {
          attempts,
        });
      }
      if (typeof client === "string") return this.fail(batch, t, client, { attempts });
      attempts++;
      const sentAt = Date.now();
      let res: ApnsResponse;
      try {
        res = await client.client.send({
          token: t.pushToken,
          pushMagic: t.pushMagic,
          apnsId,
          expiration: this.o.expirationMs === 0 ? 0 : Math.floor((sentAt + this.o.expirationMs) / 1000),
          priority: this.o.priority,
        });
      } catch (err) {
        if (!(err instanceof ApnsTransportError)) throw err;
        if (err.refused && resends < MAX_REFUSED_RESENDS) {
          // APNs never processed it (GOAWAY): send again on the next connection, not counted as an attempt.
          resends++;
          attempts--;
          continue;
        }
        if (attempts <= this.o.retries && !this.closed) {
          await sleep(this.backoff(attempts));
          continue;
        }
        return this.fail(batch, t, `APNs did not answer: ${err.message}`, { attempts });
      }

      const reason = res.reason ?? "";
      if (res.status === 200) {
        const pushId = res.apnsId ?? apnsId;
        batch.sent++;
        batch.outcome(t.id, { pushId });
        batch.events.push({ type: "push.sent", enrollmentId: t.id, detail: { topic, apns_id: pushId, trigger: batch.trigger, attempts } });
        return;
      }
      const detail = { status: res.status, reason, attempts };
      if (res.status === 410 || (res.status === 400 && reason === "BadDeviceToken")) {
        batch.dead.push({ enrollmentId: t.id, pushToken: t.pushToken, status: res.status, reason, apnsTimestamp: res.timestamp, sentAt });
        return this.fail(
          batch,
          t,
          `APNs ${res.status} ${reason}: the push token is no longer valid; no pushes until the device sends a TokenUpdate`,
          {
            ...detail,
            token_dead: true,
            apns_timestamp: res.timestamp,
          },
        );
      }
      if (res.status === 403 && (CERT_REASONS.has(reason) || reason === "")) {
        return this.fail(batch, t, this.certificateRefused(topic, client.version, reason, client.client), detail);
      }
      const retriable = res.status === 429 || res.status >= 500 || (res.status === 400 && RECONNECT_REASONS.has(reason));
      if (retriable && attempts <= this.o.retries && !this.closed) {
        if (res.status === 503 || RECONNECT_REASONS.has(reason)) client.client.retire();
        await sleep(this.backoff(attempts));
        continue;
      }
      return this.fail(batch, t, `APNs ${res.status} ${reason}`.trim() + (retriable ? ` (after ${attempts} attempts)` : ""), detail);
    }
  }

  /** The topic's connection for its current certificate, or why there is none. */
  private async clientFor(topic: string): Promise<{ client: ApnsClient; version: string } | string> {
    if (this.closed) return "the server is shutting down";
    const cert = await this.o.certs.get(topic);
    if (!cert) return (await this.o.certs.anyConfigured()) ? `no push certificate for topic ${topic}` : NO_CERTIFICATE;
    const block = this.blocked.get(topic);
    if (block && block.version === cert.version && block.until > Date.now()) return block.message;
    let entry = this.clients.get(topic);
    if (!entry || entry.version !== cert.version) {
      if (entry) {
        this.o.log.info({ topic, fingerprint: cert.fingerprint }, "push certificate changed: new APNs connection");
        void entry.client.close();
      }
      entry = {
        version: cert.version,
        client: new ApnsClient({
          url: this.o.url,
          topic,
          cert: cert.certPem,
          key: cert.keyPem,
          ca: this.o.ca,
          maxStreams: this.o.maxStreams,
          pingIntervalMs: this.o.pingIntervalMs,
          requestTimeoutMs: this.o.requestTimeoutMs,
          log: this.o.log,
        }),
      };
      this.clients.set(topic, entry);
    }
    return entry;
  }

  /** Blocks the topic until a new certificate (or a while); says so loudly once. */
  private certificateRefused(topic: string, version: string, reason: string, client: ApnsClient): string {
    const message = `APNs refused the push certificate of ${topic} (403 ${reason || "Forbidden"}): renew or replace it (PUT /v1/pushcert)`;
    const current = this.blocked.get(topic);
    if (current && current.version === version && current.until > Date.now()) return current.message;
    this.blocked.set(topic, { version, until: Date.now() + CERT_BLOCK_MS, message });
    client.retire();
    this.o.log.error({ topic, reason }, `PUSH CERTIFICATE REFUSED BY APNS: ${message}`);
    void this.o.store.events
      .add({ type: "pushcert.refused", detail: { topic, status: 403, reason } }, Date.now())
      .catch((err: unknown) => this.o.log.warn({ err }, "could not record the pushcert.refused event"));
    return message;
  }

  private fail(batch: Batch, t: PushTarget, error: string, detail: Record<string, unknown> = {}): void {
    batch.outcome(t.id, { error });
    this.o.observer?.failed(failureReason(error, detail));
    batch.events.push({ type: "push.failed", enrollmentId: t.id, detail: { topic: t.topic, trigger: batch.trigger, error, ...detail } });
  }

  /** Exponential with equal jitter: half the step fixed, half random. */
  private backoff(attempt: number): number {
    const step = Math.min(BACKOFF_CAP_MS, this.o.backoffMs * 2 ** (attempt - 1));
    return step / 2 + Math.random() * (step / 2);
  }
}

/** A bounded label for a failed push: the kind of failure, or APNs' status and reason (its documented names). */
function failureReason(error: string, detail: Record<string, unknown>): string {
  if (typeof detail.status === "number") {
    const reason = typeof detail.reason === "string" && /^[A-Za-z]{1,40}$/.test(detail.reason) ? detail.reason : "";
    return reason ? `apns_${detail.status}_${reason}` : `apns_${detail.status}`;
  }
  if (error.startsWith("APNs did not answer")) return "apns_unreachable";
  if (error.startsWith("enrollment is disabled")) return "disabled";
  if (error.startsWith("APNs refused this push token")) return "dead_token";
  return "certificate";
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
