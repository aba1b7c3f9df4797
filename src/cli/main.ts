import { ConfigError, parseServeArgs } from "../config.ts";
import { startServer } from "../server.ts";

const USAGE = `usage: orchard <command> [options]

commands:
  serve         run the MDM server (see README for its flags)
  enqueue       queue a command for enrollments
  enrollments   list enrollments
  queue         show an enrollment's command queue
`;

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "serve":
        return await serve(rest);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE);
        return;
      default: {
        const { runClientCommand } = await import("./client-commands.ts");
        process.exitCode = await runClientCommand(command, rest);
      }
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`orchard: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
}

async function serve(args: string[]): Promise<void> {
  const config = parseServeArgs(args);
  const server = await startServer(config);
  const stop = async (signal: string) => {
    server.app.log.info({ signal }, "shutting down");
    await server.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));
}
