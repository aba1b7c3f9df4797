import { ConfigError, parseServeArgs } from "../config.ts";

/** `orchard help`: the client part comes from the command registry, so it cannot fall out of step. */
async function usage(): Promise<string> {
  const { clientUsage } = await import("./registry.ts");
  return `usage: orchard <command> [options]

server:
  orchard serve [flags]   run the MDM server (orchard serve --help lists its flags)
  orchard backup --out DIR [--data-dir DIR] [--storage sqlite:FILE]
                          a consistent copy of the SQLite store, taken while serving, and
                          the data dir's secrets (docs/operations.md)
  orchard restore --from DIR [--data-dir DIR]
                          puts such a copy back, the server stopped; what it replaces is
                          moved aside into the data dir, never deleted

client (talks to a running server's API):
${clientUsage()}
Every client command takes:
  --url URL        the server (env ORCHARD_URL, default http://127.0.0.1:9000)
  --api-key KEY    the API key (env ORCHARD_API_KEY, else read from ./data/api-key, or
                   $ORCHARD_DATA_DIR/api-key, where the server writes the key it generated)
  --json           print the server's JSON answer instead of a table
  -h, --help       the command's usage

Exit codes: 0 ok, 1 failed, 2 usage error, 3 enqueue failed for some ids (HTTP 207).
`;
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "serve":
        return await serve(rest);
      case "backup": {
        const { backup, BACKUP_HELP } = await import("./backup.ts");
        if (wantsHelp(rest)) return void process.stdout.write(BACKUP_HELP);
        const done = await backup(rest);
        process.stdout.write(
          `backed up ${done.database} (${done.bytes} bytes)${done.files.length ? ` and ${done.files.join(", ")}` : ""} to ${done.dir}\n`,
        );
        return;
      }
      case "restore": {
        const { restore, describeRestore, RESTORE_HELP } = await import("./restore.ts");
        if (wantsHelp(rest)) return void process.stdout.write(RESTORE_HELP);
        process.stdout.write(describeRestore(await restore(rest)));
        return;
      }
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(await usage());
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

/** -h or --help among a server-side command's arguments: its usage, exit 0 (as client commands and serve do). */
function wantsHelp(args: string[]): boolean {
  return args.includes("--help") || args.includes("-h");
}

async function serve(args: string[]): Promise<void> {
  if (wantsHelp(args)) {
    const { serveHelp } = await import("./serve-flags.ts");
    process.stdout.write(serveHelp());
    return;
  }
  const config = parseServeArgs(args);
  // Loaded here so that client commands do not pay for the whole server.
  const { startServer } = await import("../server.ts");
  const { startupFailure } = await import("./startup-failure.ts");
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(config);
  } catch (err) {
    // A refusal found while starting (a secret key that does not open the store's credential CA) ends the process
    // here too: a PostgreSQL pool left open kept it alive, not listening, and a service manager saw it running.
    if (err instanceof ConfigError) {
      process.stderr.write(`orchard: ${err.message}\n`);
      process.exit(2);
    }
    const reason = startupFailure(err, config);
    if (reason === undefined) throw err;
    process.stderr.write(`orchard: ${reason}\n`);
    // Whatever was opened (a pool, a timer) must not keep a failed start alive.
    process.exit(1);
  }
  const stop = async (signal: string) => {
    server.app.log.info({ signal }, "shutting down");
    await server.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));
}
