import type { Registry } from "prom-client";

// The device path's two metrics, kept in plain numbers: prom-client's own
// children build a label object and hash it on every increment, which the
// Idle poll path (thousands a second) should not pay. Here a request costs
// three map lookups, an increment and a bucket search; the text is built only
// at scrape, in prom-client's registry like every other metric.

const BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

interface Latency {
  labels: { endpoint: string; type: string };
  buckets: number[];
  sum: number;
  count: number;
}
interface Requests {
  labels: { endpoint: string; type: string; status: string };
  count: number;
  latency: Latency;
}

type Sample = { metricName?: string; labels: Record<string, string | number>; value: number };

export class DeviceMetrics {
  private readonly requests = new Map<string, Map<string, Map<number, Requests>>>();
  private readonly latencies = new Map<string, Latency>();

  constructor(registry: Registry) {
    const requests = this.requests;
    const latencies = this.latencies;
    const metric = (name: string, help: string, type: "counter" | "histogram", values: () => Sample[]) => ({
      name,
      help,
      type,
      aggregator: "sum",
      get: async () => ({ name, help, type, aggregator: "sum", values: values() }),
    });
    const register = registry.registerMetric.bind(registry) as (m: unknown) => void;
    register(
      metric(
        "orchard_device_requests_total",
        "Device requests by endpoint (checkin, server), message type (MessageType or Status) and HTTP status.",
        "counter",
        () => {
          const out: Sample[] = [];
          for (const byType of requests.values())
            for (const byStatus of byType.values()) for (const r of byStatus.values()) out.push({ labels: r.labels, value: r.count });
          return out;
        },
      ),
    );
    const name = "orchard_device_request_duration_seconds";
    register(
      metric(name, "Device request latency, from the request's headers to its answer.", "histogram", () => {
        const out: Sample[] = [];
        for (const l of latencies.values()) {
          let acc = 0;
          for (let i = 0; i < BOUNDS.length; i++) {
            acc += l.buckets[i]!;
            out.push({ metricName: `${name}_bucket`, labels: { le: BOUNDS[i]!, ...l.labels }, value: acc });
          }
          out.push({ metricName: `${name}_bucket`, labels: { le: "+Inf", ...l.labels }, value: l.count });
          out.push({ metricName: `${name}_sum`, labels: l.labels, value: l.sum });
          out.push({ metricName: `${name}_count`, labels: l.labels, value: l.count });
        }
        return out;
      }),
    );
  }

  /** One device request answered, seconds after its headers arrived. */
  observe(endpoint: string, type: string, status: number, seconds: number): void {
    let byType = this.requests.get(endpoint);
    if (!byType) this.requests.set(endpoint, (byType = new Map()));
    let byStatus = byType.get(type);
    if (!byStatus) byType.set(type, (byStatus = new Map()));
    let r = byStatus.get(status);
    if (!r)
      byStatus.set(status, (r = { labels: { endpoint, type, status: String(status) }, count: 0, latency: this.latency(endpoint, type) }));
    r.count++;
    const l = r.latency;
    l.count++;
    l.sum += seconds;
    for (let i = 0; i < BOUNDS.length; i++) {
      if (seconds <= BOUNDS[i]!) {
        l.buckets[i]!++;
        break;
      }
    }
  }

  private latency(endpoint: string, type: string): Latency {
    const key = `${endpoint} ${type}`;
    let l = this.latencies.get(key);
    if (!l) this.latencies.set(key, (l = { labels: { endpoint, type }, buckets: BOUNDS.map(() => 0), sum: 0, count: 0 }));
    return l;
  }
}
