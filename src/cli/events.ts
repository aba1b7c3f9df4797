import type { StoredEvent } from "../store/events.ts";
import { connect, parseCommand, positiveInt, printJson, UsageError, type ClientCommand } from "./command.ts";
import { fetchPages, PAGE_OPTIONS } from "./paging.ts";
import { formatTable, formatTime } from "./table.ts";

export const eventsCommand: ClientCommand = {
  name: "events",
  summary: "show the event log, oldest first",
  usage: [
    `events [--enrollment ID] [--type T] [--since ISO] [--limit N] [--cursor C] [--all]`,
    "  one page of --limit (default 100, at most 1000) from --cursor; --all follows every page",
  ],
  async run(args, ctx) {
    const { values, positionals } = parseCommand(args, {
      enrollment: { type: "string" },
      type: { type: "string" },
      since: { type: "string" },
      ...PAGE_OPTIONS,
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    if (values.since !== undefined && Number.isNaN(Date.parse(values.since))) throw new UsageError("--since must be an ISO 8601 time");
    const limit = positiveInt("--limit", values.limit);
    const client = connect(values, ctx);
    const query = { enrollment: values.enrollment, type: values.type, since: values.since, limit: limit?.toString() };
    const page = await fetchPages<"events", StoredEvent>(client, ctx, "/v1/events", "events", query, {
      all: values.all,
      cursor: values.cursor,
    });
    if (values.json) {
      printJson(ctx, page);
      return 0;
    }
    if (page.events.length === 0) {
      ctx.out("no events\n");
      return 0;
    }
    ctx.out(
      formatTable(
        ["TIME", "TYPE", "ENROLLMENT", "DETAIL"],
        page.events.map((e) => [formatTime(e.at), e.type, e.enrollmentId, e.detail ? JSON.stringify(e.detail) : null]),
      ),
    );
    return 0;
  },
};
