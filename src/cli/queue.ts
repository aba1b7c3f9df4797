import type { QueueCleared, QueueJson } from "../http/wire.ts";
import { expectOk } from "./api-client.ts";
import { checkIds, connect, idPath, parseCommand, printJson, UsageError, type ClientCommand, printWarnings } from "./command.ts";
import { formatTable, formatTime, printable } from "./table.ts";

export const queueCommand: ClientCommand = {
  name: "queue",
  summary: "show an enrollment's command queue, or clear queues",
  usage: [`queue <id>`, `queue clear <id...>`],
  async run(args, ctx) {
    const { values, positionals } = parseCommand(args, {});
    if (positionals[0] === "clear") {
      const ids = checkIds(positionals.slice(1));
      const client = connect(values, ctx);
      const res = await client.request("DELETE", `/v1/queue/${idPath(ids)}`);
      const r = expectOk<QueueCleared>(res);
      // Ids that name no enrollment (a typo, a lowercase UDID): the server clears the others and names these.
      printWarnings(ctx, res);
      if (values.json) printJson(ctx, r);
      else ctx.out(`removed ${r.removed} queued command${r.removed === 1 ? "" : "s"}\n`);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError("give one enrollment id, or clear and ids");
    const [id] = checkIds(positionals);
    const client = connect(values, ctx);
    const r = await client.get<QueueJson>(`/v1/queue/${encodeURIComponent(id!)}`);
    if (values.json) {
      printJson(ctx, r);
      return 0;
    }
    if (r.commands.length === 0) {
      ctx.out(`no commands queued for ${printable(id!)}\n`);
      return 0;
    }
    ctx.out(
      formatTable(
        ["COMMAND UUID", "REQUEST TYPE", "STATUS", "NOT NOW", "QUEUED AT"],
        r.commands.map((c) => [c.command_uuid, c.request_type, c.status, c.not_now_count, formatTime(c.created_at)]),
      ),
    );
    return 0;
  },
};
