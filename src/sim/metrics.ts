/**
 * What a simulated fleet saw: counters the progress line reads while the run
 * goes on, a latency histogram, and the errors by kind with one example each.
 */

/** Latencies in log-spaced buckets (2% apart): bounded memory for any number of requests. */
export class LatencyHistogram {
  private static readonly MIN_MS = 0.01;
  private static readonly LOG_STEP = Math.log(1.02);
  private readonly counts = new Uint32Array(1100);
  count = 0;
  max = 0;
  private sum = 0;

  record(ms: number): void {
    const H = LatencyHistogram;
    const i = ms <= H.MIN_MS ? 0 : Math.min(this.counts.length - 1, Math.ceil(Math.log(ms / H.MIN_MS) / H.LOG_STEP));
    this.counts[i]!++;
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  /** The q-quantile in milliseconds (within 2%), 0 when nothing was recorded. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const target = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return Math.min(this.max, LatencyHistogram.MIN_MS * Math.exp(i * LatencyHistogram.LOG_STEP));
    }
    return this.max;
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }
}

export type SimPhase = "setup" | "enroll" | "run" | "drain" | "cleanup" | "done";

export interface RequestTypeCounts {
  /** Offered by the server (a command offered again after NotNow counts again). */
  received: number;
  acknowledged: number;
  error: number;
  notNow: number;
}

/** Declarative Device Management syncs and the requests they made, by endpoint. */
export interface DdmCounts {
  /** Syncs finished (a status report sent, or the tokens unchanged). */
  syncs: number;
  /** Syncs that found a new DeclarationsToken. */
  changed: number;
  tokens: number;
  declarationItems: number;
  /** declaration/<kind>/<identifier> fetches. */
  declarations: number;
  statusReports: number;
  /** Status reports of OS update steps (installing, installed, failed). */
  updateSteps: number;
  /** OS updates finished: the device reports the new version. */
  updatesInstalled: number;
}

export interface ErrorKind {
  count: number;
  /** The first occurrence's message. */
  example: string;
}

export class SimStats {
  readonly startedAt = performance.now();
  phase: SimPhase = "setup";
  devices = 0;
  macs = 0;
  iphones = 0;
  enrolled = 0;
  /** User channels the run set out to open, and those whose TokenUpdate was accepted. */
  userChannelsExpected = 0;
  userChannels = 0;
  /** Network-user logins attempted, and those that ended with an AuthToken. */
  loginsExpected = 0;
  logins = 0;
  /** Logins the server answered with a zero-length challenge: managed without a token. */
  zeroLengthLogins = 0;
  /** Commands the simulator queued through the API (one per channel). */
  commandsEnqueued = 0;
  /** Commands the devices answered for good (Acknowledged or Error), whoever queued them. */
  commands = 0;
  notNow = 0;
  /** Queued by the simulator and never answered by the end. */
  unanswered = 0;
  /** Device requests (check-ins and command polls) that were sent. */
  requests = 0;
  /** Operator API requests (users, enqueues, preflight). */
  apiRequests = 0;
  errors = 0;
  readonly latency = new LatencyHistogram();
  /** Device requests by HTTP status; "failed" for no answer. */
  readonly statuses = new Map<string, number>();
  readonly requestTypes = new Map<string, RequestTypeCounts>();
  readonly ddm: DdmCounts = {
    syncs: 0,
    changed: 0,
    tokens: 0,
    declarationItems: 0,
    declarations: 0,
    statusReports: 0,
    updateSteps: 0,
    updatesInstalled: 0,
  };
  readonly errorKinds = new Map<string, ErrorKind>();

  error(kind: string, message: string, count = 1): void {
    if (count <= 0) return;
    this.errors += count;
    const k = this.errorKinds.get(kind);
    if (k) k.count += count;
    else this.errorKinds.set(kind, { count, example: message });
  }

  status(status: string): void {
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
  }

  requestType(type: string): RequestTypeCounts {
    let c = this.requestTypes.get(type);
    if (!c) this.requestTypes.set(type, (c = { received: 0, acknowledged: 0, error: 0, notNow: 0 }));
    return c;
  }

  elapsedMs(): number {
    return performance.now() - this.startedAt;
  }
}
