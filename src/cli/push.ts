import type { IdResult, PushResult } from "../http/wire.ts";
import { ApiError, errorCode, errorReason } from "./api-client.ts";
import { checkIds, connect, parseCommand, printJson, type ClientCommand } from "./command.ts";
import { ownEntry } from "./enqueue.ts";
import { formatTable } from "./table.ts";

export const pushCommand: ClientCommand = {
  name: "push",
  summary: "wake enrollments with an APNs push so that they poll for commands",
  usage: [`push <id...>`, "  prints the apns-id or the reason per id. Exit 0: all pushed, 3: some failed (HTTP 207), 1: all failed"],
  async run(args, ctx) {
    const { values, positionals } = parseCommand(args, {});
    const ids = checkIds(positionals);
    const client = connect(values, ctx);
    // The ids in the body: a path holds only about 1,500 of them (the header cap, app.ts).
    const res = await client.request("POST", "/v1/push", { body: Buffer.from(JSON.stringify({ ids })), contentType: "application/json" });
    const result = res.json as PushResult | undefined;
    if (!result || typeof result !== "object" || typeof result.status !== "object") {
      throw new ApiError(errorReason(res), res.status, errorCode(res));
    }
    if (values.json) printJson(ctx, result);
    else {
      const listed = new Set(ids);
      const all = [...ids, ...Object.keys(result.status ?? {}).filter((id) => !listed.has(id))];
      ctx.out(
        formatTable(
          ["ENROLLMENT", "RESULT"],
          all.map((id) => [id, outcome(ownEntry(result.status, id))]),
        ),
      );
    }
    if (res.status === 200) return 0;
    if (res.status === 207) {
      ctx.err("orchard: the push failed for some ids (HTTP 207)\n");
      return 3;
    }
    ctx.err(`orchard: no push was sent: every id failed (HTTP ${res.status}, as NanoMDM answers; the reasons are above)\n`);
    return 1;
  },
};

function outcome(s: IdResult | undefined): string {
  if (s?.push_result) return `pushed (apns-id ${s.push_result})`;
  return `not pushed: ${s?.push_error ?? s?.command_error ?? "no answer for this id"}`;
}
