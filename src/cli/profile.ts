import fs from "node:fs";
import path from "node:path";
import { ApiError, errorCode, errorReason } from "./api-client.ts";
import { CliError, connect, parseCommand, runSubcommand, UsageError, type CliContext, type ClientCommand, noArgs } from "./command.ts";

export const profileCommand: ClientCommand = {
  name: "profile",
  summary: "write an enrollment profile (.mobileconfig) for a device",
  usage: [
    `profile enroll [--out FILE [--force]] [--identity scep|pkcs12] [--topic TOPIC] [--cn NAME]`,
    "  the server's enrollment profile (GET /enroll): the MDM payload for the push certificate's topic",
    "  (--topic when there are several) and the device's identity: a SCEP payload with a fresh one-time",
    "  challenge (default), or a PKCS#12 issued now by the device CA. Signed when the server has",
    "  --profile-signer. Written to FILE (mode 0600: it holds a challenge or a key; an existing FILE is kept",
    "  unless --force) or to stdout",
  ],
  run: (args, ctx) => runSubcommand(args, ctx, { enroll }),
};

async function enroll(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    out: { type: "string", short: "o" },
    identity: { type: "string" },
    topic: { type: "string" },
    cn: { type: "string" },
    force: { type: "boolean", default: false },
  });
  noArgs(positionals);
  if (values.identity !== undefined && values.identity !== "scep" && values.identity !== "pkcs12") {
    throw new UsageError("--identity must be scep or pkcs12");
  }
  const out = values.out === undefined || values.out === "-" ? undefined : path.resolve(ctx.cwd, values.out);
  if (values.force && out === undefined) throw new UsageError("--force goes with --out FILE");
  // As pushcert csr and sign: a file is not replaced unless asked. Checked before the request, which spends a challenge.
  if (out !== undefined && !values.force && fs.existsSync(out)) throw new CliError(`${out} exists: give --force to replace it`);
  const client = connect(values, ctx);
  const res = await client.request("GET", "/enroll", { query: { identity: values.identity, topic: values.topic, cn: values.cn } });
  if (res.status !== 200) throw new ApiError(errorReason(res), res.status, errorCode(res));
  if (out === undefined) {
    ctx.out(res.body);
    return 0;
  }
  try {
    // Made anew (never written into an existing file, whose mode would stay): 0600 from the start.
    if (values.force) fs.rmSync(out, { force: true });
    fs.writeFileSync(out, res.body, { mode: 0o600, flag: "wx" });
  } catch (err) {
    throw new CliError(`cannot write ${values.out}: ${(err as Error).message}`);
  }
  if (!values.json) ctx.out(`wrote ${values.out} (${res.body.length} bytes)\n`);
  return 0;
}
