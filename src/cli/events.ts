import type { EventJson, EventPage } from "../http/wire.ts";
import { parseDuration } from "../config.ts";
import { isEventType, unknownEventTypeMessage } from "../store/event-types.ts";
import type { ApiClient } from "./api-client.ts";
import {
  connect,
  parseCommand,
  positiveInt,
  printList,
  terminalSafeJson,
  UsageError,
  type CliContext,
  type ClientCommand,
} from "./command.ts";
import { fetchPages, PAGE_OPTIONS } from "./paging.ts";
import { formatTime, printable } from "./table.ts";

const HEADER = ["TIME", "TYPE", "ENROLLMENT", "DETAIL"];

export const eventsCommand: ClientCommand = {
  name: "events",
  summary: "show the event log, oldest first (or newest first); --follow prints new events as they happen",
  usage: [
    `events [--enrollment ID] [--type T] [--since ISO] [--newest-first] [--limit N] [--cursor C] [--all]`,
    "  one page of --limit (default 100, at most 1000) from --cursor; --all follows every page",
    `events --follow [--enrollment ID] [--type T] [--since ISO] [--interval 2s]`,
    "  prints the events from --since (default: the last 10), then each new one as it is recorded, until",
    "  interrupted (Ctrl-C); with --json one JSON object per line",
  ],
  async run(args, ctx) {
    const { values, positionals } = parseCommand(args, {
      enrollment: { type: "string" },
      type: { type: "string" },
      since: { type: "string" },
      "newest-first": { type: "boolean", default: false },
      follow: { type: "boolean", default: false },
      interval: { type: "string" },
      ...PAGE_OPTIONS,
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    if (values.since !== undefined && Number.isNaN(Date.parse(values.since))) throw new UsageError("--since must be an ISO 8601 time");
    if (values.type !== undefined && !isEventType(values.type)) throw new UsageError(unknownEventTypeMessage("--type", values.type));
    const limit = positiveInt("--limit", values.limit);
    const client = connect(values, ctx);
    const filter = { enrollment: values.enrollment, type: values.type, since: values.since };
    if (values.follow) {
      if (values["newest-first"] || values.all || values.cursor !== undefined || values.limit !== undefined) {
        throw new UsageError("--follow prints oldest first from --since: it takes no --newest-first, --all, --cursor or --limit");
      }
      let intervalMs = 2000;
      if (values.interval !== undefined) {
        try {
          intervalMs = parseDuration(values.interval, "--interval");
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
        if (intervalMs < 100) throw new UsageError("--interval must be at least 100ms");
      }
      return follow(client, ctx, filter, values.json, intervalMs);
    }
    if (values.interval !== undefined) throw new UsageError("--interval goes with --follow");
    const query = { ...filter, order: values["newest-first"] ? "desc" : undefined, limit: limit?.toString() };
    const page = await fetchPages<"events", EventJson>(client, ctx, "/v1/events", "events", query, {
      all: values.all,
      cursor: values.cursor,
    });
    return printList(ctx, values.json, page, page.events, "no events", HEADER, row);
  },
};

function row(e: EventJson): Array<string | null> {
  return [formatTime(e.at), e.type, e.enrollment_id, e.detail ? JSON.stringify(e.detail) : null];
}

/**
 * Polls for events after the last one seen (the id cursor, so nothing is
 * missed or printed twice while the server records more) until SIGINT.
 */
async function follow(
  client: ApiClient,
  ctx: CliContext,
  filter: Record<string, string | undefined>,
  json: boolean,
  intervalMs: number,
): Promise<number> {
  let stopped = false;
  let wake: () => void = () => {};
  const stop = () => {
    stopped = true;
    wake();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const print = (events: EventJson[]) => {
    if (json) for (const e of events) ctx.out(terminalSafeJson(e) + "\n");
    // Without a table's column widths known in advance: one line per event, each field made printable as a
    // table's cells are (an id or a detail may hold a terminal's control characters; second review).
    else
      for (const e of events)
        ctx.out(
          row(e)
            .map((v) => printable(v ?? "-"))
            .join("  ") + "\n",
        );
  };
  try {
    let cursor: string | undefined;
    if (filter.since === undefined) {
      // The last few events for context, then everything after them.
      const last = await client.get<EventPage>("/v1/events", { ...filter, order: "desc", limit: "10" });
      const events = [...last.events].reverse();
      print(events);
      cursor = events.length > 0 ? String(events.at(-1)!.id) : undefined;
      if (cursor === undefined) {
        const newest = await client.get<EventPage>("/v1/events", { order: "desc", limit: "1" });
        cursor = newest.events[0] ? String(newest.events[0].id) : undefined;
      }
    }
    ctx.err(`orchard: following events${filter.type ? ` of type ${filter.type}` : ""}; Ctrl-C stops\n`);
    while (!stopped) {
      const page = await client.get<EventPage>("/v1/events", { ...filter, cursor, limit: "1000" });
      print(page.events);
      if (page.events.length > 0) cursor = String(page.events.at(-1)!.id);
      if (page.next_cursor !== null) continue;
      await new Promise<void>((resolve) => {
        wake = resolve;
        const timer = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return 0;
  } finally {
    process.removeListener("SIGINT", stop);
    process.removeListener("SIGTERM", stop);
  }
}
