// OS updates through Declarative Device Management: Apple's software lookup
// feed kept (a failed refresh leaves the last good copy in use, and says
// so), operators' update policies turned into enforcement declarations in
// built-in DDM sets (updates/declarations.ts), devices moved between those
// sets as the feed, the policies and the devices change (the DDM sync then
// queues and pushes one DeclarativeManagement command per device), and each
// device's compliance read from its DDM status (docs/software-updates.md).
import { createHash, randomUUID } from "node:crypto";
import type { DdmAdmin } from "../core/ddm-admin.ts";
import type { Pusher } from "../core/push.ts";
import { NotFound, OrchardError } from "../errors.ts";
import type { StatusReport } from "../protocol/ddm.ts";
import type { Store } from "../store/index.ts";
import type { DeviceFacts, StoredPolicy, UpdateDeviceRow } from "../store/software-updates.ts";
import { policyDeclarations, policySetName, SET_PREFIX, targetDeclarations, targetSetName } from "./declarations.ts";
import { FEED_KEYS, parseFeed, type Releases } from "./feed.ts";
import { readFeed, shownUrl } from "./feed-source.ts";
import { policyOf } from "./policy.ts";
import { complianceOf, COMPLIANCE_STATES, deadlineAt, type Target, targetFor, type TargetOutcome } from "./targets.ts";
import { answersTimeZone, askZones, ZONE_ASK_COVERS_MS } from "./zone-ask.ts";

/** The --software-lookup-* settings (README flag table). */
export interface SoftwareUpdateOptions {
  /** Apple's feed, a mirror, or a file: URL. */
  url: string;
  /** How often the feed is refreshed while a policy exists; 0: only on demand. */
  refreshIntervalMs: number;
}

export interface UpdatesLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Told each refresh's outcome (metrics). */
export type FeedObserver = (outcome: "changed" | "unchanged" | "failed") => void;

export interface FeedInfo {
  url: string;
  /** When the good copy in use was read (null: never). */
  fetchedAt: number | null;
  attemptedAt: number | null;
  /** The last attempt's error; the good copy (if any) is still in use. */
  error: string | null;
  errorAt: number | null;
  /** Releases per feed platform (iOS, macOS, ...). */
  releases: Record<string, number>;
}

/** What one re-targeting did. */
export interface ReconcileResult {
  /** Device channels a policy reaches. */
  devices: number;
  /** Of them, with an enforcement declaration. */
  targeted: number;
  /** Distinct targets (declarations and sets). */
  targets: number;
  /** Devices whose policy or target changed (each syncs once). */
  changed: number;
  /** Devices no policy reaches any more. */
  released: number;
  /** Another process holds the lease: it re-targets, this one did nothing. */
  skipped: boolean;
  /** Per policy, the devices of the run it reaches and of them with a target (every device of a full run). */
  reach: ReadonlyMap<string, PolicyReach>;
}

/** The devices one policy reaches (a policy before it in SCOPE_RANK order takes a device both reach), and of them with a target. */
export interface PolicyReach {
  devices: number;
  targeted: number;
}

/** Policies reach a device in this order: a list of ids first, then a set, then all; by name within each. */
const SCOPE_RANK = { ids: 0, set: 1, all: 2 } as const;
const FACTS_PAGE = 2000;
const LEASE_MS = 10 * 60_000;
const TICK_MS = 60_000;
/** Devices whose state is re-read and told in one transaction. */
const EVALUATE_BATCH = 500;
/** A device whose facts changed is re-targeted within this (in the process that heard of it). */
export const DUE_MS = 1000;
/** Devices re-targeted in one run of the due sweep. */
const DUE_BATCH = 1000;
/** Past this many waiting devices, the due sweep re-targets every device instead (a flood: one full run is cheaper). */
const DUE_MAX = 20_000;
/** Devices that change policy group (a set, an id list) are re-targeted this often (and at every feed or policy change). */
export const RECONCILE_MS = 5 * 60_000;

export class SoftwareUpdates {
  private readonly holder = randomUUID();
  private chain: Promise<unknown> = Promise.resolve();
  private lastReconcile = 0;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  private cached: { sha: string; releases: Releases } | undefined;
  /** Device channels whose facts changed, waiting for the due sweep; "all" after a flood. */
  private due: Set<string> | "all" = new Set();
  private dueTimer: NodeJS.Timeout | undefined;
  private dueRun: Promise<void> = Promise.resolve();

  constructor(
    private readonly o: {
      store: Store;
      admin: DdmAdmin;
      /** Pushes the devices asked for their time zone (zone-ask.ts). */
      pusher: Pusher;
      log: UpdatesLog;
      options: SoftwareUpdateOptions;
      observer?: FeedObserver;
      tickMs?: number;
    },
  ) {}

  private get store(): Store {
    return this.o.store;
  }

  /** Refreshes, re-targets and checks deadlines on a timer (only while a policy exists); returns stop. */
  start(): () => Promise<void> {
    const run = () => {
      this.ticking = this.ticking.then(() =>
        this.tick(Date.now()).catch((err: unknown) => this.o.log.warn({ err }, "software update tick failed")),
      );
    };
    this.timer = setInterval(run, this.o.tickMs ?? TICK_MS);
    this.timer.unref();
    run();
    this.dueTimer = setInterval(() => {
      this.dueRun = this.dueRun.then(() =>
        this.retargetDue(Date.now()).then(
          () => {},
          (err: unknown) => this.o.log.warn({ err }, "software update re-targeting of changed devices failed"),
        ),
      );
    }, DUE_MS);
    this.dueTimer.unref();
    return async () => {
      clearInterval(this.timer);
      clearInterval(this.dueTimer);
      await this.ticking;
      await this.dueRun;
      await this.chain.catch(() => {});
    };
  }

  /** Whether this process has ticked yet (see tick). */
  private ticked = false;

  async tick(now: number): Promise<void> {
    if ((await this.store.softwareUpdates.policies()).length === 0) return;
    const feed = await this.store.softwareUpdates.feed();
    const last = Math.max(feed.fetchedAt ?? 0, feed.attemptedAt ?? 0);
    const interval = this.o.options.refreshIntervalMs;
    // The first tick of a process started with another feed than the stored copy's, with none good yet, or after a
    // failed attempt (perhaps of another feed, whose error would stand until the next), reads it at once rather
    // than an interval after the last attempt (walkthroughs: an hour without targets; a stale error shown).
    const first = !this.ticked;
    this.ticked = true;
    const fresh =
      first && (feed.fetchedAt === null || feed.error !== null || (feed.url !== null && feed.url !== shownUrl(this.o.options.url)));
    let reconciled = false;
    if (interval > 0 && (fresh || now - last >= interval)) reconciled = (await this.refresh(now)).applied !== undefined;
    if (!reconciled && now - this.lastReconcile >= RECONCILE_MS) await this.reconcile(now);
    await this.checkDeadlines(now);
  }

  // ---- the feed

  async feedInfo(): Promise<FeedInfo> {
    const f = await this.store.softwareUpdates.feed();
    const releases = await this.releases();
    return {
      url: f.url ?? shownUrl(this.o.options.url),
      fetchedAt: f.fetchedAt,
      attemptedAt: f.attemptedAt,
      error: f.error,
      errorAt: f.errorAt,
      releases: Object.fromEntries(Object.entries(releases).map(([k, v]) => [k, v.length])),
    };
  }

  /** The releases of the good copy in use ({} before the first). */
  async releases(): Promise<Releases> {
    const f = await this.store.softwareUpdates.feed();
    if (f.releases === null || f.sha256 === null) return {};
    if (this.cached?.sha !== f.sha256) this.cached = { sha: f.sha256, releases: JSON.parse(f.releases) as Releases };
    return this.cached.releases;
  }

  /**
   * Reads the feed now. A good copy is stored (and, when it differs from the
   * one before, devices are re-targeted); a failure is stored beside the
   * last good copy, which stays in use, and logged and recorded as an event.
   */
  async refresh(now: number): Promise<FeedInfo & { refreshed: boolean; changed: boolean; applied?: ReconcileResult }> {
    const url = shownUrl(this.o.options.url);
    let releases: Releases;
    try {
      releases = parseFeed(await readFeed(this.o.options.url));
    } catch (err) {
      const error = (err as Error).message.slice(0, 500);
      const before = await this.store.softwareUpdates.feed();
      await this.store.transaction(async (tx) => {
        await tx.softwareUpdates.feedFailed(url, error, now);
        await tx.events.add(
          { type: "update.feed_failed", detail: { url, error, last_good_at: before.fetchedAt === null ? null : iso(before.fetchedAt) } },
          now,
        );
      });
      this.o.log.warn(
        { url, error, lastGoodAt: before.fetchedAt === null ? null : iso(before.fetchedAt) },
        "software lookup feed refresh failed: the last good copy stays in use",
      );
      this.o.observer?.("failed");
      return { ...(await this.feedInfo()), refreshed: false, changed: false };
    }
    const text = JSON.stringify(releases);
    const sha = createHash("sha256").update(text).digest("hex");
    const counts = Object.fromEntries(Object.entries(releases).map(([k, v]) => [k, v.length]));
    const changed = await this.store.transaction(async (tx) => {
      const changed = await tx.softwareUpdates.saveFeed(url, text, sha, now);
      if (changed) {
        const newest = Object.fromEntries(Object.entries(releases).map(([k, v]) => [k, v[0]?.version ?? null]));
        await tx.events.add({ type: "update.feed_changed", detail: { url, releases: counts, newest } }, now);
      }
      return changed;
    });
    this.o.observer?.(changed ? "changed" : "unchanged");
    this.o.log.info({ url, changed, releases: counts }, "software lookup feed refreshed");
    const applied = changed ? await this.reconcile(now) : undefined;
    return { ...(await this.feedInfo()), refreshed: true, changed, ...(applied ? { applied } : {}) };
  }

  // ---- policies

  /**
   * Saves a policy and re-targets. `reach`: this policy's devices after it
   * (null when another process re-targets). Warnings are said with the
   * answer (orchard-warning), the policy saved all the same: settings keys
   * Apple's schema does not know, a DDM set no device holds, a deadline
   * already past.
   */
  async putPolicy(
    name: string,
    body: Record<string, unknown>,
    now: number,
  ): Promise<{ created: boolean; result: ReconcileResult; reach: PolicyReach | null; warnings: string[] }> {
    const { policy, ids, warnings } = policyOf(name, body);
    warnings.push(...(await this.scopeWarnings(policy)), ...deadlineWarnings(policy, now));
    const created = await this.store.transaction(async (tx) => {
      const created = await tx.softwareUpdates.putPolicy(policy, ids, now);
      await tx.events.add(
        {
          type: "update.policy_saved",
          detail: { policy: name, platform: policy.platform, mode: policy.mode, scope: policy.scope, created },
        },
        now,
      );
      return created;
    });
    this.o.log.info({ policy: name, platform: policy.platform, mode: policy.mode, scope: policy.scope, created }, "update policy saved");
    if (policy.scope === "ids") warnings.push(...(await this.idsWarnings(name, policy.platform)));
    const saved = (result: ReconcileResult) => ({
      created,
      result,
      reach: result.skipped ? null : (result.reach.get(name) ?? { devices: 0, targeted: 0 }),
      warnings,
    });
    // The first latest policy reads the feed; a new feed re-targets every policy's devices, this one's included.
    if (policy.mode === "latest" && (await this.store.softwareUpdates.feed()).releases === null) {
      const applied = (await this.refresh(now)).applied;
      if (applied && !applied.skipped) return saved(applied);
    }
    return saved(await this.reconcile(now));
  }

  /** A policy for a DDM set's devices reaches none while no device holds the set (a misspelt name, most often). */
  private async scopeWarnings(policy: { scope: string; scopeSet: string | null }): Promise<string[]> {
    if (policy.scope !== "set" || policy.scopeSet === null) return [];
    const set = policy.scopeSet;
    if ((await this.store.ddm.setHolders(set, "", 1)).length > 0) return [];
    const said = `enrollments.set ${JSON.stringify(set.slice(0, 256))}`;
    return (await this.store.ddm.setHoldsAny(set))
      ? [`${said}: no device holds this DDM set: the policy reaches none until one does`]
      : [`${said}: no such DDM set (no declarations, no device holds it): the policy reaches no device`];
  }

  /** A listed id that is no enrolled device of the policy's platform (a typo, a user channel, an iPhone in a macOS policy) is kept, and said. */
  private async idsWarnings(name: string, platform: string): Promise<string[]> {
    const missing = await this.store.softwareUpdates.policyIdsNotReached(name, platform);
    if (missing === 0) return [];
    const ids = missing === 1 ? "1 listed id is" : `${missing} listed ids are`;
    return [`enrollments.ids: ${ids} no enrolled ${platform} device channel: kept, reaching nothing until one enrolls`];
  }

  async deletePolicy(name: string, now: number): Promise<ReconcileResult> {
    const deleted = await this.store.transaction(async (tx) => {
      const deleted = await tx.softwareUpdates.deletePolicy(name);
      if (deleted) await tx.events.add({ type: "update.policy_removed", detail: { policy: name } }, now);
      return deleted;
    });
    if (!deleted) throw new NotFound(`no update policy ${JSON.stringify(name.slice(0, 64))}`);
    this.o.log.info({ policy: name }, "update policy removed");
    return this.reconcile(now);
  }

  policies(): Promise<StoredPolicy[]> {
    return this.store.softwareUpdates.policies();
  }

  policy(name: string): Promise<StoredPolicy | undefined> {
    return this.store.softwareUpdates.policy(name);
  }

  policyIdCount(name: string): Promise<number> {
    return this.store.softwareUpdates.policyIdCount(name);
  }

  /** A policy's id list, sorted. */
  async policyIds(name: string): Promise<string[]> {
    return (await this.store.softwareUpdates.policyIds(name)).sort();
  }

  policyDevices(name: string, state: string | undefined, after: string, limit: number): Promise<UpdateDeviceRow[]> {
    return this.store.softwareUpdates.policyDevices(name, state, after, limit);
  }

  device(enrollmentId: string): Promise<UpdateDeviceRow | undefined> {
    return this.store.softwareUpdates.device(enrollmentId);
  }

  /** Per state, how many of a policy's devices are in it. */
  async compliance(name: string): Promise<{ policy: StoredPolicy; counts: Record<string, number>; total: number }> {
    const policy = await this.store.softwareUpdates.policy(name);
    if (!policy) throw new NotFound(`no update policy ${JSON.stringify(name.slice(0, 64))}`);
    const found = await this.store.softwareUpdates.policyCounts(name);
    const counts = Object.fromEntries(COMPLIANCE_STATES.map((s) => [s, found[s] ?? 0]));
    return { policy, counts, total: Object.values(counts).reduce((a, b) => a + b, 0) };
  }

  // ---- re-targeting

  /**
   * A device channel enrolled, or a fact its target is picked by changed (a
   * new OS version, model, platform): it is re-targeted by the due sweep
   * within DUE_MS, alone, rather than at the next full run. Kept in memory:
   * a process that stops before its sweep leaves the device to the full run
   * (RECONCILE_MS), which re-reads every device.
   */
  factsChanged(enrollmentId: string): void {
    if (this.due === "all") return;
    this.due.add(enrollmentId);
    if (this.due.size > DUE_MAX) this.due = "all";
  }

  /** The due sweep: re-targets the devices whose facts changed (nothing to do without a policy). */
  async retargetDue(now: number): Promise<ReconcileResult | undefined> {
    const due = this.due;
    if (due !== "all" && due.size === 0) return undefined;
    if ((await this.store.softwareUpdates.policies()).length === 0) {
      this.due = new Set();
      return undefined;
    }
    if (due === "all") {
      this.due = new Set();
      const result = await this.reconcile(now);
      if (result.skipped) this.due = "all";
      return result;
    }
    const ids = [...due].slice(0, DUE_BATCH);
    for (const id of ids) due.delete(id);
    const result = await this.reconcile(now, ids);
    // Another process holds the lease: these wait for the next sweep.
    if (result.skipped) for (const id of ids) this.factsChanged(id);
    return result;
  }

  /**
   * Gives every device channel a policy reaches its target: the declarations
   * of each policy and each distinct target stored (unchanged ones write
   * nothing), devices moved between the built-in sets (each device that
   * changed syncs once, through the DDM sync), sets no device uses removed.
   * One at a time in this process, and in one process at a time (a lease).
   */
  reconcile(now: number, only?: readonly string[]): Promise<ReconcileResult> {
    const run = this.chain.then(async () => {
      if (!(await this.store.softwareUpdates.takeLease(this.holder, now, LEASE_MS))) {
        return { devices: 0, targeted: 0, targets: 0, changed: 0, released: 0, skipped: true, reach: new Map() };
      }
      try {
        const result = await this.reconcileNow(now, only);
        if (!only) this.lastReconcile = Date.now();
        return result;
      } finally {
        await this.store.softwareUpdates.releaseLease(this.holder);
      }
    });
    this.chain = run.catch(() => {});
    return run;
  }

  /**
   * The work of reconcile(): every device, or `only` these (a device whose
   * facts changed: its row and its sets alone, unused sets left to the next
   * full run). Targets are computed here, row by row; the rows are written in
   * batches and the devices moved between sets by set-based statements
   * (store.softwareUpdates.applyMemberships).
   */
  private async reconcileNow(now: number, only?: readonly string[]): Promise<ReconcileResult> {
    const su = this.store.softwareUpdates;
    const policies = await su.policies();
    const releases = unexpired(await this.releases(), now);
    const ordered = [...policies].sort((a, b) => SCOPE_RANK[a.scope] - SCOPE_RANK[b.scope] || a.name.localeCompare(b.name));
    const scopes = new Map<string, Set<string> | "all">();
    for (const p of ordered) {
      if (p.scope === "all") scopes.set(p.name, "all");
      else scopes.set(p.name, new Set(p.scope === "ids" ? await su.policyIds(p.name, only) : await su.setEnrollments(p.scopeSet!, only)));
    }
    const desired = new Map<string, { policy: StoredPolicy; facts: DeviceFacts; outcome: TargetOutcome; targetSet: string | null }>();
    // Devices of one model on one version under one policy share their outcome: computed once (a handful, not 100,000).
    const outcomes = new Map<string, { outcome: TargetOutcome; targetSet: string | null }>();
    const place = (f: DeviceFacts) => {
      const policy = ordered.find((p) => {
        if (p.platform !== f.platform) return false;
        const s = scopes.get(p.name)!;
        return s === "all" || s.has(f.enrollmentId);
      });
      if (!policy) return;
      const key = JSON.stringify([policy.name, f.productType, f.softwareUpdateDeviceId, f.osVersion]);
      let o = outcomes.get(key);
      if (!o) {
        const outcome = targetFor(policy, f, releases[FEED_KEYS[f.platform] ?? f.platform] ?? []);
        const targetSet = outcome.kind === "target" ? targetSetName(policy.name, outcome.target, policy.detailsUrl) : null;
        outcomes.set(key, (o = { outcome, targetSet }));
      }
      desired.set(f.enrollmentId, { policy, facts: f, ...o });
    };
    if (only) for (const f of await su.deviceFactsIn(only)) place(f);
    else {
      for (const platform of new Set(ordered.map((p) => p.platform))) {
        for (let after = ""; ; ) {
          const page = await su.deviceFacts(platform, after, FACTS_PAGE);
          for (const f of page) place(f);
          if (page.length < FACTS_PAGE) break;
          after = page[page.length - 1]!.enrollmentId;
        }
      }
    }

    // The declarations first: a device put in a set finds it complete.
    const targetSets = new Map<string, { policy: StoredPolicy; target: Target }>();
    for (const d of desired.values()) {
      if (d.outcome.kind === "target" && d.targetSet) targetSets.set(d.targetSet, { policy: d.policy, target: d.outcome.target });
    }
    for (const p of policies) await this.ensureSet(policySetName(p.name), policyDeclarations(p.name, p.settings), now);
    for (const [set, t] of targetSets) await this.ensureSet(set, targetDeclarations(t.policy.name, t.target, t.policy.detailsUrl), now);

    const current = await su.devices(only);
    const rows: UpdateDeviceRow[] = [];
    /** Devices with a deadline and no known zone that can tell it and were not asked (zone-ask.ts). */
    const askZone: string[] = [];
    let changed = 0;
    let targeted = 0;
    const reach = new Map<string, PolicyReach>(policies.map((p) => [p.name, { devices: 0, targeted: 0 }]));
    for (const [id, d] of desired) {
      const cur = current.get(id);
      const target = d.outcome.kind === "target" ? d.outcome.target : null;
      const targetSet = d.targetSet;
      if (!cur || cur.policy !== d.policy.name || cur.targetSet !== targetSet) changed++;
      if (target) targeted++;
      const of = reach.get(d.policy.name)!;
      of.devices++;
      if (target) of.targeted++;
      // On the device's own clock when it told its zone, on a platform that has the query (a Mac's is not believed); else UTC-12 (targets.ts).
      const zone = answersTimeZone(d.facts.platform, d.facts.osVersion) ? d.facts.timeZone : null;
      const due = target ? deadlineAt(target.localDateTime, zone) : null;
      const { state, reason } = complianceOf(
        target ? { osVersion: target.osVersion, deadlineAt: due } : null,
        d.outcome.kind === "no_release",
        d.facts,
        d.facts.status,
        now,
      );
      const sameTarget = cur !== undefined && cur.targetSet === targetSet;
      // Asked for this target; or for an earlier one less than a day ago, an ask still waiting or just answered.
      const zoneAskedAt = cur?.zoneAskedAt != null && (sameTarget || now - cur.zoneAskedAt < ZONE_ASK_COVERS_MS) ? cur.zoneAskedAt : null;
      if (due !== null && d.facts.timeZone === null && zoneAskedAt === null && answersTimeZone(d.facts.platform, d.facts.osVersion)) {
        askZone.push(id);
      }
      const row: UpdateDeviceRow = {
        enrollmentId: id,
        policy: d.policy.name,
        targetSet,
        osVersion: target?.osVersion ?? null,
        buildVersion: target?.buildVersion ?? null,
        localDateTime: target?.localDateTime ?? null,
        deadlineAt: due,
        state,
        reason,
        failedNotified: sameTarget ? cur.failedNotified : false,
        overdueNotified: sameTarget ? cur.overdueNotified : false,
        zoneAskedAt,
        updatedAt: now,
      };
      if (!cur || differs(cur, row)) rows.push(row);
    }
    const released = [...current.values()].filter((cur) => !desired.has(cur.enrollmentId)).map((r) => r.enrollmentId);
    // The rows say where each device belongs; then the sets are made to match them.
    await su.putDevices(rows);
    await su.deleteDevices(released);
    await su.applyMemberships(SET_PREFIX, now, this.o.admin.syncDueAt(now), only);
    const zonesAsked = await askZones(this.store, this.o.pusher, this.o.log, askZone, now);

    if (!only) {
      const used = new Set([...policies.map((p) => policySetName(p.name)), ...targetSets.keys()]);
      for (const set of await su.setsNamed(SET_PREFIX)) if (!used.has(set)) await this.dropSet(set, now);
    }

    // A failure or a missed deadline found now is told now (once).
    await this.evaluateMany(
      rows.filter((r) => (r.state === "failed" && !r.failedNotified) || r.state === "overdue").map((r) => r.enrollmentId),
      now,
    );
    const counts = { devices: desired.size, targeted, targets: targetSets.size, changed, released: released.length, skipped: false };
    this.o.log.info(
      { ...counts, policies: policies.length, zonesAsked, ...(only ? { only: only.length } : {}) },
      "software update targets applied",
    );
    return { ...counts, reach };
  }

  /** A built-in set holding exactly these declarations (stored through DdmAdmin: checked against Apple's schema). */
  private async ensureSet(set: string, declarations: ReturnType<typeof policyDeclarations>, now: number): Promise<void> {
    for (const d of declarations) {
      await this.o.admin.putDeclaration(d, true, now);
      await this.o.admin.setDeclaration(set, d.Identifier, true, true, now);
    }
    const wanted = new Set(declarations.map((d) => d.Identifier));
    for (const id of await this.store.ddm.setDeclarations(set)) {
      if (wanted.has(id)) continue;
      await this.o.admin.setDeclaration(set, id, false, true, now);
      await this.deleteIfUnused(id);
    }
  }

  private async dropSet(set: string, now: number): Promise<void> {
    for (const id of await this.store.ddm.setDeclarations(set)) {
      await this.o.admin.setDeclaration(set, id, false, true, now);
      await this.deleteIfUnused(id);
    }
  }

  private async deleteIfUnused(identifier: string): Promise<void> {
    try {
      await this.o.admin.deleteDeclaration(identifier);
    } catch (err) {
      // Another set holds it (an operator put it there): it stays.
      if (!(err instanceof OrchardError && err.status === 409)) throw err;
    }
  }

  // ---- compliance

  /** Re-reads a device's state after a status report that carried update or OS items (in the report's transaction). */
  readonly statusHook = async (tx: Store, enrollmentId: string, report: StatusReport, now: number): Promise<void> => {
    if (
      !report.fullReport &&
      !report.values.some((v) => v.path.startsWith("softwareupdate.") || v.path.startsWith("device.operating-system."))
    )
      return;
    await this.evaluate(tx, enrollmentId, now);
  };

  /** Devices whose deadline passed: each becomes overdue (unless up to date) and is told once. */
  async checkDeadlines(now: number): Promise<number> {
    let told = 0;
    for (;;) {
      const rows = await this.store.softwareUpdates.pastDeadline(now, EVALUATE_BATCH);
      told += await this.evaluateMany(
        rows.map((r) => r.enrollmentId),
        now,
      );
      if (rows.length < EVALUATE_BATCH) return told;
    }
  }

  /** evaluate() of many devices, a transaction per batch (one per device would be a commit each); how many events. */
  private async evaluateMany(ids: readonly string[], now: number): Promise<number> {
    let told = 0;
    for (let i = 0; i < ids.length; i += EVALUATE_BATCH) {
      const batch = ids.slice(i, i + EVALUATE_BATCH);
      told += await this.store.transaction(async (tx) => {
        let n = 0;
        for (const id of batch) if (await this.evaluate(tx, id, now)) n++;
        return n;
      });
    }
    return told;
  }

  /**
   * A device's state from its facts and status now; a failure, and a missed
   * deadline, recorded as an event the first time (per target). True when an
   * event was recorded.
   */
  private async evaluate(tx: Store, enrollmentId: string, now: number): Promise<boolean> {
    const su = tx.softwareUpdates;
    const row = await su.device(enrollmentId);
    if (!row) return false;
    const facts = await su.deviceFactsOf(enrollmentId);
    const status = facts?.status;
    const target = row.targetSet && row.osVersion ? { osVersion: row.osVersion, deadlineAt: row.deadlineAt } : null;
    const { state, reason } = complianceOf(target, row.state === "no_release", facts, status, now);
    if (state !== row.state || reason !== row.reason) await su.setState(enrollmentId, state, reason, now);
    let told = false;
    const detail = {
      policy: row.policy,
      target_os_version: row.osVersion ?? "",
      target_build_version: row.buildVersion,
      os_version: facts?.osVersion ?? null,
    };
    if (
      state === "failed" &&
      !row.failedNotified &&
      (await su.markTold(enrollmentId, "failed")) &&
      (await su.toldOnce(enrollmentId, "failed", detail.target_os_version, "", now))
    ) {
      await tx.events.add(
        { type: "update.failed", enrollmentId, detail: { ...detail, reason, failure_count: status?.failureCount ?? null } },
        now,
      );
      told = true;
    }
    const deadline = row.localDateTime ?? "";
    if (
      target &&
      row.deadlineAt !== null &&
      now >= row.deadlineAt &&
      !row.overdueNotified &&
      (await su.markTold(enrollmentId, "overdue")) &&
      // Up to date by the deadline: marked, nothing to tell.
      state !== "up_to_date" &&
      (await su.toldOnce(enrollmentId, "overdue", detail.target_os_version, deadline, now))
    ) {
      await tx.events.add({ type: "update.overdue", enrollmentId, detail: { ...detail, deadline, state } }, now);
      told = true;
    }
    return told;
  }
}

/**
 * A "version" policy's deadline that has passed in every time zone (UTC-12,
 * as a device of unknown zone is judged: targets.ts): its devices not on the
 * target are overdue at once. Said, not refused: it may be meant.
 */
function deadlineWarnings(policy: { mode: string; targetLocalDateTime: string | null }, now: number): string[] {
  const when = policy.targetLocalDateTime;
  if (policy.mode !== "version" || when === null || deadlineAt(when) > now) return [];
  return [
    `target_local_date_time ${JSON.stringify(when)}: this deadline has passed in every time zone: the policy's devices not on its target are overdue at once`,
  ];
}

function differs(a: UpdateDeviceRow, b: UpdateDeviceRow): boolean {
  return (
    a.policy !== b.policy ||
    a.targetSet !== b.targetSet ||
    a.osVersion !== b.osVersion ||
    a.buildVersion !== b.buildVersion ||
    a.localDateTime !== b.localDateTime ||
    a.deadlineAt !== b.deadlineAt ||
    a.state !== b.state ||
    a.reason !== b.reason ||
    a.failedNotified !== b.failedNotified ||
    a.overdueNotified !== b.overdueNotified ||
    a.zoneAskedAt !== b.zoneAskedAt
  );
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * The releases Apple still signs: one past its ExpirationDate can no longer
 * be installed, so it is never a target (a stale last good copy, or a mirror
 * left behind, may still list it).
 */
export function unexpired(releases: Releases, now: number): Releases {
  const today = new Date(now).toISOString().slice(0, 10);
  return Object.fromEntries(
    Object.entries(releases).map(([platform, list]) => [platform, list.filter((r) => !r.expiresOn || r.expiresOn >= today)]),
  );
}
