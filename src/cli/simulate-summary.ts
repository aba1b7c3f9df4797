import { formatFields, formatTable } from "./table.ts";
import type { SimulationReport } from "../sim/fleet-sim.ts";
import type { SimStats } from "../sim/metrics.ts";

/** How a simulation run reads for people: the live progress line and the summary at the end. */

const PHASES: Record<string, string> = {
  setup: "preparing",
  enroll: "enrolling",
  run: "running",
  drain: "draining",
  cleanup: "cleaning up",
  done: "done",
};

/** One line of what the run has seen so far; `perSecond` is the recent device request rate. */
export function progressLine(
  s: SimStats,
  o: { devices: number; durationMs: number; perSecond: number; trafficStartedMs?: number },
): string {
  if (s.phase === "setup") return `simulate: preparing devices and certificates ${s.devices}/${o.devices}`;
  const parts = [`simulate: ${PHASES[s.phase] ?? s.phase}`, `enrolled ${s.enrolled}/${o.devices}`];
  if (s.loginsExpected > 0) parts.push(`logins ${s.logins}/${s.loginsExpected}`);
  else if (s.userChannelsExpected > 0) parts.push(`user channels ${s.userChannels}/${s.userChannelsExpected}`);
  parts.push(`commands ${s.commands}`, `${Math.round(o.perSecond)} req/s`, `errors ${s.errors}`);
  if (o.trafficStartedMs !== undefined) {
    parts.push(`${Math.floor((performance.now() - o.trafficStartedMs) / 1000)}s/${Math.round(o.durationMs / 1000)}s`);
  }
  return parts.join("  ");
}

/** The summary table printed at the end of a run. */
export function formatSummary(r: SimulationReport): string {
  const ms = (n: number) => (n >= 100 ? `${Math.round(n)} ms` : `${n.toFixed(n >= 10 ? 1 : 2)} ms`);
  const fields: Array<[string, string | number]> = [
    ["server", r.url],
    ["devices", `${r.devices} (${r.macs} macOS, ${r.iphones} iOS; identity in ${r.identity})`],
    ["identities", identitySource(r)],
    ["enrolled", `${r.enrolled}/${r.devices}`],
  ];
  if (r.userChannelsExpected > 0) fields.push(["user channels", `${r.userChannels}/${r.userChannelsExpected}`]);
  if (r.networkUsers) {
    const zero = r.zeroLengthLogins > 0 ? `, ${r.zeroLengthLogins} without a token (zero-length challenge)` : "";
    fields.push(["logins", `${r.logins}/${r.loginsExpected} with an AuthToken${zero}`]);
  }
  fields.push(
    [
      "commands",
      // An interrupted run does not wait for the answers, so it does not count the ones missing.
      `${r.commands} answered, ${r.notNow} NotNow; the run queued ${r.commandsEnqueued}, ` +
        (r.interrupted ? "unanswered not counted (interrupted)" : `${r.unanswered} left unanswered`),
    ],
    ...(r.ddm.syncs > 0 ? [["DDM syncs", ddmLine(r)] as [string, string]] : []),
    ["requests", `${r.requests} from devices (${r.requestsPerSecond}/s), ${r.apiRequests} to the API`],
    ["latency", `p50 ${ms(r.latencyMs.p50)}, p90 ${ms(r.latencyMs.p90)}, p99 ${ms(r.latencyMs.p99)}, max ${ms(r.latencyMs.max)}`],
    [
      "HTTP statuses",
      Object.entries(r.statuses)
        .map(([k, v]) => `${k}: ${v}`)
        .join(", ") || "none",
    ],
    ["duration", `${(r.durationMs / 1000).toFixed(1)} s${r.interrupted ? " (interrupted)" : ""}`],
    ["seed", `${r.seed} (--seed ${r.seed} makes the same fleet again)`],
  );
  if (r.caCertPath) fields.push(["device CA", r.caCertPath]);
  fields.push(["errors", r.errors]);
  let text = formatFields(fields);
  const types = Object.entries(r.requestTypes);
  if (types.length > 0) {
    text +=
      "\n" +
      formatTable(
        ["REQUEST TYPE", "RECEIVED", "ACKNOWLEDGED", "ERROR", "NOTNOW"],
        types.map(([t, c]) => [t, c.received, c.acknowledged, c.error, c.notNow]).map((row) => row.map(String)),
      );
  }
  const kinds = Object.entries(r.errorKinds);
  if (kinds.length > 0) {
    text +=
      "\n" +
      formatTable(
        ["ERROR", "COUNT", "FIRST SEEN"],
        kinds.map(([k, e]) => [k, String(e.count), e.example]),
      );
  }
  return text;
}

/** What the channels did over Declarative Device Management. */
function ddmLine(r: SimulationReport): string {
  const d = r.ddm;
  return (
    `${d.syncs} (${d.changed} with new declarations): ${d.tokens} tokens, ${d.declarationItems} declaration-items, ` +
    `${d.declarations} declarations fetched, ${d.statusReports} status reports` +
    (d.updateSteps > 0 ? `; OS updates: ${d.updateSteps} steps reported, ${d.updatesInstalled} installed` : "")
  );
}

/** Where the device certificates came from. */
function identitySource(r: SimulationReport): string {
  if (r.identitySource === "scep") return `from the server's SCEP, ${r.scepUrl} (${r.scepCertificates ?? 0} issued)`;
  if (r.identitySource === "ca") return "issued by a CA given (--ca-cert, or the server's device CA in the data dir)";
  return "issued by a CA made for this run (device CA below)";
}
