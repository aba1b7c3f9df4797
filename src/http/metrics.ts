import { X509Certificate } from "node:crypto";
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { FailureCause, UserAuthOutcome } from "../core/userauth.ts";
import type { PushObserver } from "../push/pusher.ts";
import type { Store } from "../store/index.ts";
import { isStoreUnavailable } from "../store/unavailable.ts";
import { BudgetExhausted } from "./body-budget.ts";
import { DeviceMetrics } from "./device-metrics.ts";

// Orchard's Prometheus metrics (docs/monitoring.md). Labels are few and
// bounded: endpoint, MessageType/Status (validated by the decoders), HTTP
// status, route template, enrollment type; never a UDID, user or command UUID.
// The device path is the hot one: it counts in plain numbers (device-metrics.ts),
// so a poll costs one increment and one bucket search, and nothing allocated.

/** How long the store's figures (enrollments, queue, DDM) are reused between scrapes. */
const STORE_FIGURES_TTL_MS = 5_000;

const DAY_MS = 86_400_000;

/** Certificates whose days to expiry are reported (push certificates are read from the store). */
export interface WatchedCertificates {
  /** PEM of the device CA. */
  deviceCa?: string;
  /** PEM of the profile signer and its chain: the earliest expiry counts. */
  profileSigner?: string;
  /** PEM of the credential CA (the Wi-Fi, VPN and RADIUS identities DDM credentials carry chain to it). */
  credentialCa?: string;
}

export class Metrics implements PushObserver {
  readonly registry = new Registry();
  private readonly deviceRequests = new DeviceMetrics(this.registry);
  private readonly apiRequests = new Counter({
    name: "orchard_api_requests_total",
    help: "API and other non-device requests by route template and HTTP status.",
    labelNames: ["route", "status"] as const,
    registers: [this.registry],
  });
  readonly storeUnavailable = new Counter({
    name: "orchard_store_unavailable_total",
    help: "Requests answered 503 because the store did not answer.",
    registers: [this.registry],
  });
  readonly connectionsRefused = new Counter({
    name: "orchard_connections_refused_total",
    help: "Connections refused past --max-connections: answered 503, or reset past the refused allowance.",
    labelNames: ["how"] as const,
    registers: [this.registry],
  });
  private readonly budgetRefusals = new Counter({
    name: "orchard_unidentified_body_budget_refusals_total",
    help: "Signed device requests answered 503 because --unidentified-body-budget (or the signer's share) was spent.",
    registers: [this.registry],
  });
  private readonly pushesSent = new Counter({
    name: "orchard_pushes_sent_total",
    help: "Pushes APNs accepted.",
    registers: [this.registry],
  });
  private readonly pushFailures = new Counter({
    name: "orchard_push_failures_total",
    help: "Pushes not sent, by reason: apns_STATUS_REASON, apns_unreachable, dead_token, disabled, certificate, no_certificate, unknown_enrollment.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  private readonly userAuth = new Counter({
    name: "orchard_userauth_total",
    help: "UserAuthenticate outcomes (challenged, authenticated, failed, declined, zero_length, already_authenticated); cause for failed.",
    labelNames: ["outcome", "cause"] as const,
    registers: [this.registry],
  });
  private readonly ddmSyncCommands = new Counter({
    name: "orchard_ddm_sync_commands_total",
    help: "DeclarativeManagement commands the DDM sync sweep queued (one per channel a change reached, after coalescing).",
    registers: [this.registry],
  });
  private readonly ddmRequests = new Counter({
    name: "orchard_ddm_requests_total",
    help: "DeclarativeManagement check-ins served by Orchard (not --dm-url), by Endpoint: tokens, declaration-items, declaration, status.",
    labelNames: ["endpoint"] as const,
    registers: [this.registry],
  });
  private readonly ddmRequestsBy = new Map<string, Counter.Internal>();
  private readonly softwareLookupRefreshes = new Counter({
    name: "orchard_software_lookup_refreshes_total",
    help: "Reads of the software lookup feed by this process, by outcome: changed, unchanged, failed (a failure keeps the last good copy).",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  private readonly webhookDeliveries = new Counter({
    name: "orchard_webhook_deliveries_total",
    help: "Webhook delivery attempts by outcome: delivered (2xx), http_error (another status), timeout, unreachable. Each failure is retried.",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  private readonly webhookRetries = new Counter({
    name: "orchard_webhook_retries_total",
    help: "Webhook events delivered on a retry (after at least one failed attempt).",
    registers: [this.registry],
  });
  private readonly webhookDroppedEvents = new Counter({
    name: "orchard_webhook_dropped_total",
    help: "Undelivered webhook events dropped, by reason: backlog (--webhook-max-backlog) or age (--webhook-max-age).",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  private storeFigures: { at: number; pending: Promise<void> } | undefined;
  private readonly webhookBacklog: Gauge;
  private readonly webhookOldestAge: Gauge;
  private readonly enrollments: Gauge<"type" | "platform">;
  private readonly queueDepth: Gauge;
  private readonly queueAge: Gauge;
  private readonly certExpiry: Gauge<"certificate" | "topic">;
  private readonly ddmSyncDue: Gauge;
  private readonly ddmDeclarations: Gauge<"state">;
  private readonly softwareLookupAge: Gauge;
  private readonly fixedExpiry: Array<{ certificate: string; notAfter: number }>;

  constructor(store: Store, certificates: WatchedCertificates = {}) {
    collectDefaultMetrics({ register: this.registry, prefix: "orchard_" });
    // One scrape's reads serve the three gauges: each gauge's collect awaits the same promise.
    const collect = (): Promise<void> => this.refreshStoreFigures(store);
    this.enrollments = new Gauge({
      name: "orchard_enrollments",
      help: "Enrollments by type (Device, User, ...) and platform (macOS, iOS, ..., unknown), read from the store at scrape time (cached a few seconds).",
      labelNames: ["type", "platform"] as const,
      registers: [this.registry],
      collect,
    });
    this.queueDepth = new Gauge({
      name: "orchard_queue_depth",
      help: "Commands queued and not yet answered.",
      registers: [this.registry],
      collect,
    });
    this.ddmSyncDue = new Gauge({
      name: "orchard_ddm_sync_due",
      help: "Channels waiting for their DeclarativeManagement command (a change reached them; the sweep has not queued it yet).",
      registers: [this.registry],
      collect,
    });
    this.ddmDeclarations = new Gauge({
      name: "orchard_ddm_declarations",
      help: "Declarations as channels last reported them, one per channel and declaration: active_valid, failing (not active or not valid), pending (reported with an older ServerToken: not applied yet).",
      labelNames: ["state"] as const,
      registers: [this.registry],
      collect,
    });
    this.softwareLookupAge = new Gauge({
      name: "orchard_software_lookup_age_seconds",
      help: "Age of the software lookup feed's good copy in use (absent before the first; growing past --software-lookup-interval: refreshes fail).",
      registers: [this.registry],
      collect,
    });
    for (const endpoint of ["tokens", "declaration-items", "declaration", "status"]) {
      this.ddmRequestsBy.set(endpoint, this.ddmRequests.labels(endpoint));
    }
    this.fixedExpiry = [];
    if (certificates.deviceCa) this.fixedExpiry.push({ certificate: "device_ca", notAfter: earliestExpiry(certificates.deviceCa) });
    if (certificates.profileSigner) {
      this.fixedExpiry.push({ certificate: "profile_signer", notAfter: earliestExpiry(certificates.profileSigner) });
    }
    if (certificates.credentialCa) {
      this.fixedExpiry.push({ certificate: "credential_ca", notAfter: earliestExpiry(certificates.credentialCa) });
    }
    this.certExpiry = new Gauge({
      name: "orchard_certificate_expiry_days",
      help: "Days until a certificate expires (negative: expired): certificate is push (one per topic), device_ca, credential_ca, profile_signer, or abm_token (an ABM server token, topic = the ABM server's name).",
      labelNames: ["certificate", "topic"] as const,
      registers: [this.registry],
      collect,
    });
    this.webhookBacklog = new Gauge({
      name: "orchard_webhook_backlog",
      help: "Webhook events not delivered yet (in the store: every process's).",
      registers: [this.registry],
      collect,
    });
    this.webhookOldestAge = new Gauge({
      name: "orchard_webhook_oldest_age_seconds",
      help: "Age of the oldest undelivered webhook event (0 when none).",
      registers: [this.registry],
      collect,
    });
    this.queueAge = new Gauge({
      name: "orchard_queue_oldest_age_seconds",
      help: "Age of the oldest queued command not yet answered (0 when the queue is empty).",
      registers: [this.registry],
      collect,
    });
  }

  private refreshStoreFigures(store: Store): Promise<void> {
    const now = Date.now();
    if (this.storeFigures && now - this.storeFigures.at < STORE_FIGURES_TTL_MS) return this.storeFigures.pending;
    const pending = (async () => {
      const [byType, queue, pushCerts, outbox, syncDue, states, abmTokens, feed] = await Promise.all([
        store.stats.enrollmentsByType(),
        store.stats.queue(),
        store.push.certs(),
        store.outbox.backlog(),
        store.stats.ddmSyncDue(),
        store.stats.ddmDeclarationStates(),
        store.ade.tokenExpiries(),
        store.softwareUpdates.feed(),
      ]);
      // No good copy yet: no sample at all (an unlabelled gauge's reset() leaves a 0, which reads as a fresh feed).
      if (feed.fetchedAt === null) this.softwareLookupAge.remove();
      else this.softwareLookupAge.set(Math.max(0, (Date.now() - feed.fetchedAt) / 1000));
      this.webhookBacklog.set(outbox.count);
      this.webhookOldestAge.set(outbox.oldestCreatedAt === null ? 0 : Math.max(0, (Date.now() - outbox.oldestCreatedAt) / 1000));
      this.ddmSyncDue.set(syncDue);
      this.ddmDeclarations.set({ state: "active_valid" }, states.activeValid);
      this.ddmDeclarations.set({ state: "failing" }, states.failing);
      this.ddmDeclarations.set({ state: "pending" }, states.pending);
      const days = (notAfter: number) => (notAfter - Date.now()) / DAY_MS;
      this.certExpiry.reset();
      for (const c of this.fixedExpiry) this.certExpiry.set({ certificate: c.certificate }, days(c.notAfter));
      for (const c of pushCerts) this.certExpiry.set({ certificate: "push", topic: c.topic }, days(c.notAfter));
      for (const t of abmTokens) this.certExpiry.set({ certificate: "abm_token", topic: t.name }, days(t.tokenExpiry));
      this.enrollments.reset();
      for (const { type, platform, count } of byType) this.enrollments.set({ type, platform: platform ?? "unknown" }, count);
      this.queueDepth.set(queue.depth);
      this.queueAge.set(queue.oldestCreatedAt === undefined ? 0 : Math.max(0, (Date.now() - queue.oldestCreatedAt) / 1000));
    })().catch(() => {
      // The store is down: the gauges keep their last figures, and the next scrape tries again.
      this.storeUnavailable.inc();
      this.storeFigures = undefined;
    });
    this.storeFigures = { at: now, pending };
    return pending;
  }

  /** One device request answered, seconds after its headers arrived. */
  device(endpoint: string, type: string, status: number, seconds: number): void {
    this.deviceRequests.observe(endpoint, type, status, seconds);
  }

  /** A device request that failed: the failures counted on their own. */
  deviceError(err: unknown): void {
    if (err instanceof BudgetExhausted) this.budgetRefusals.inc();
    else if (isStoreUnavailable(err)) this.storeUnavailable.inc();
  }

  sent(count: number): void {
    this.pushesSent.inc(count);
  }

  failed(reason: string): void {
    this.pushFailures.labels(reason).inc();
  }

  /** DeclarativeManagement commands the sync sweep queued (DdmSyncOptions.onQueued). */
  readonly ddmSyncQueued = (channels: number): void => {
    this.ddmSyncCommands.inc(channels);
  };

  /** A DeclarativeManagement check-in's Endpoint (DdmRequestObserver). */
  readonly ddmRequest = (endpoint: string): void => {
    this.ddmRequestsBy.get(endpoint)?.inc();
  };

  /** A software lookup feed refresh (FeedObserver). */
  readonly softwareLookup = (outcome: "changed" | "unchanged" | "failed"): void => {
    this.softwareLookupRefreshes.labels(outcome).inc();
  };

  /** A UserAuthenticate outcome (UserAuthObserver). */
  readonly userAuthenticate = (outcome: UserAuthOutcome, cause?: FailureCause): void => {
    if (cause === undefined) this.userAuth.labels({ outcome }).inc();
    else this.userAuth.labels({ outcome, cause }).inc();
  };

  /** Webhook deliveries (WebhookObserver). */
  webhookDelivered(count: number, retries: number): void {
    this.webhookDeliveries.labels("delivered").inc(count);
    if (retries > 0) this.webhookRetries.inc(retries);
  }

  webhookFailed(outcome: string): void {
    this.webhookDeliveries.labels(outcome).inc();
  }

  webhookDropped(reason: string, count: number): void {
    this.webhookDroppedEvents.labels(reason).inc(count);
  }

  api(route: string, status: number): void {
    this.apiRequests.labels(route, String(status)).inc();
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** The earliest notAfter (ms) of the PEM certificates in text. */
function earliestExpiry(pem: string): number {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return Math.min(...blocks.map((b) => Date.parse(new X509Certificate(b).validTo)));
}
