import type { ScepChallengeJson } from "../http/wire.ts";
import { expectOk } from "./api-client.ts";
import { connect, parseCommand, printJson, UsageError, type ClientCommand, noArgs } from "./command.ts";
import { printable } from "./table.ts";

export const scepCommand: ClientCommand = {
  name: "scep",
  summary: "SCEP challenge passwords for devices that enroll through the device CA",
  usage: [
    `scep challenge [--ttl DURATION]`,
    "  a new single-use SCEP challenge password, printed alone (for scripts); it expires after --ttl",
    "  (e.g. 10m; default the server's --scep-challenge-ttl). --json adds expires_at",
  ],
  async run(args, ctx) {
    const sub = args[0];
    if (sub !== "challenge")
      throw new UsageError(sub === undefined ? "give a subcommand: challenge" : `unknown subcommand ${printable(sub)}`);
    const { values, positionals } = parseCommand(args.slice(1), { ttl: { type: "string" } });
    noArgs(positionals);
    if (values.ttl !== undefined && !/^\d+(\.\d+)?(ms|s|m|h|d)?$/.test(values.ttl.trim())) {
      throw new UsageError("--ttl must be a duration such as 300s, 10m or 1h");
    }
    const client = connect(values, ctx);
    const body = values.ttl === undefined ? undefined : Buffer.from(JSON.stringify({ ttl: values.ttl.trim() }));
    const res = await client.request("POST", "/v1/scep/challenges", { body, contentType: "application/json" });
    const r = expectOk<ScepChallengeJson>(res);
    if (values.json) printJson(ctx, r);
    else ctx.out(`${r.challenge}\n`);
    return 0;
  },
};
