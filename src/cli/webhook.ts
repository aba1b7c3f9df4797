import type { WebhookRetried, WebhookStatusJson } from "../http/wire.ts";
import { expectOk } from "./api-client.ts";
import { connect, parseCommand, printJson, UsageError, type ClientCommand } from "./command.ts";
import { formatTime } from "./table.ts";

export const webhookCommand: ClientCommand = {
  name: "webhook",
  summary: "show the webhook's backlog, deliveries and last failure; retry the waiting events now",
  usage: [
    "webhook status",
    "webhook retry",
    "  status: the backlog (every event not delivered yet), and how many of those failed at least once",
    "  retry: every event waiting for a later attempt is made due now (the receiver is back): each that failed,",
    "  and the later events of its enrollment held back behind it",
  ],
  async run(args, ctx) {
    const { values, positionals } = parseCommand(args, {});
    const sub = positionals[0] ?? "status";
    if (positionals.length > 1 || (sub !== "status" && sub !== "retry")) throw new UsageError("webhook status, or webhook retry");
    const client = connect(values, ctx);
    if (sub === "retry") {
      const r = expectOk<WebhookRetried>(await client.request("POST", "/v1/webhook/retry"));
      if (values.json) printJson(ctx, r);
      else
        ctx.out(`${r.retried} event${r.retried === 1 ? "" : "s"} made due now (those that failed, and the events held back behind them)\n`);
      return 0;
    }
    const s = await client.get<WebhookStatusJson>("/v1/webhook");
    if (values.json) {
      printJson(ctx, s);
      return 0;
    }
    const f = s.last_failure;
    const lines = [
      `webhook:       ${s.enabled ? `${s.url} (topics ${s.topics.join(", ")})` : "off on this server (no --webhook-url)"}`,
      `backlog:       ${s.backlog} event${s.backlog === 1 ? "" : "s"}${s.retrying > 0 ? `, ${s.retrying} of them failed at least once` : ""}`,
      `oldest:        ${s.oldest_created_at ? `${formatTime(s.oldest_created_at)} (${Math.round(s.oldest_age_seconds)} s ago)` : "-"}`,
      `delivered:     ${s.delivered}${s.last_delivered_at ? `, last at ${formatTime(s.last_delivered_at)}` : ""}`,
      `failed:        ${s.failed} attempt${s.failed === 1 ? "" : "s"} (each retried)`,
      `dropped:       ${s.dropped}`,
      `last failure:  ${f ? `${formatTime(f.at)} ${f.status === null || f.error.startsWith(`HTTP ${f.status}`) ? "" : `HTTP ${f.status} `}${f.error} (${f.topic ?? "?"} ${f.event_id ?? ""})` : "-"}`,
    ];
    ctx.out(lines.join("\n") + "\n");
    return 0;
  },
};
