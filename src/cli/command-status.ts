import type { CommandJson } from "../http/wire.ts";
import { connect, parseCommand, printJson, UsageError, type ClientCommand } from "./command.ts";
import { formatFields, formatTable, formatTime, type Cell } from "./table.ts";

export const commandCommand: ClientCommand = {
  name: "command",
  summary: "show a command and what each enrollment answered",
  usage: [`command <uuid>`, "  --json includes each enrollment's full result plist"],
  async run(args, ctx) {
    const { values, positionals } = parseCommand(args, {});
    if (positionals.length !== 1 || positionals[0] === "") throw new UsageError("give one command UUID");
    const client = connect(values, ctx);
    const c = await client.get<CommandJson>(`/v1/commands/${encodeURIComponent(positionals[0]!)}`);
    if (values.json) {
      printJson(ctx, c);
      return 0;
    }
    ctx.out(
      formatFields([
        ["command uuid", c.command_uuid],
        ["request type", c.request_type],
        ["created at", formatTime(c.created_at)],
      ]) + "\n",
    );
    if (c.results.length === 0) {
      ctx.out("queued for no enrollment\n");
      return 0;
    }
    ctx.out(
      formatTable(
        ["ENROLLMENT", "STATUS", "NOT NOW", "UPDATED", "ERROR"],
        c.results.map((r) => [r.enrollment_id, r.status, r.not_now_count, formatTime(r.updated_at), errorText(r.result)]),
      ),
    );
    return 0;
  },
};

/** The first description in a result's ErrorChain, if it has one. */
function errorText(result: Record<string, unknown> | null): Cell {
  const chain = result?.ErrorChain;
  if (!Array.isArray(chain) || chain.length === 0) return undefined;
  const first = chain[0] as Record<string, unknown>;
  const text = first.USEnglishDescription ?? first.LocalizedDescription;
  const code = [first.ErrorDomain, first.ErrorCode].filter((x) => x !== undefined).join(" ");
  if (typeof text === "string" && text !== "") return code ? `${text} (${code})` : text;
  return code || "error";
}
