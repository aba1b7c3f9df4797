import { ApiError } from "./api-client.ts";
import { CliError, UsageError, type CliContext } from "./command.ts";
import { commandUsage, findCommand, usageBlock } from "./registry.ts";
import { promptSecret } from "./secret.ts";

/** Runs `orchard <command> ...` against a server's API; returns the exit code. */
export async function runClientCommand(command: string, args: string[]): Promise<number> {
  return runWith(processContext(), command, args);
}

/** The dispatcher with its input and output given: tests and embedders call this. */
export async function runWith(ctx: CliContext, name: string, args: string[]): Promise<number> {
  const command = findCommand(name);
  if (!command) {
    ctx.err(`orchard: unknown command ${name} (see orchard help)\n`);
    return 2;
  }
  const dashdash = args.indexOf("--");
  const flags = dashdash === -1 ? args : args.slice(0, dashdash);
  if (flags.includes("--help") || flags.includes("-h")) {
    ctx.out(usageBlock(commandUsage(command)));
    return 0;
  }
  try {
    return await command.run(args, ctx);
  } catch (err) {
    if (err instanceof UsageError) {
      ctx.err(`orchard: ${err.message}\n` + usageBlock(commandUsage(command, { short: true })));
      return 2;
    }
    if (err instanceof CliError || err instanceof ApiError) {
      ctx.err(`orchard: ${err.message}\n`);
      return 1;
    }
    ctx.err(`orchard: ${(err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
}

function processContext(): CliContext {
  return {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
    async readStdin() {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Buffer));
      return Buffer.concat(chunks);
    },
    stdinIsTTY: process.stdin.isTTY === true,
    readSecret: (prompt) => promptSecret(prompt),
  };
}
