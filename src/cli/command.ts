import fs from "node:fs";
import path from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ApiClient, splitWarnings } from "./api-client.ts";
import { formatTable, printable, type Cell } from "./table.ts";

/** Where a command reads and writes; process-backed in `orchard`, swappable in tests. */
export interface CliContext {
  /** Standard output: text, or bytes (a profile written to stdout). */
  out(text: string | Uint8Array): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  readStdin(): Promise<Buffer>;
  /** Whether stdin is a terminal someone can type a password at. */
  stdinIsTTY: boolean;
  /** One line typed at the terminal without echo; the prompt goes to stderr. */
  readSecret(prompt: string): Promise<string>;
}

/** One `orchard <name>` command that talks to a running server. */
export interface ClientCommand {
  name: string;
  /** One line per form, without the leading `orchard `. */
  usage: string[];
  summary: string;
  run(args: string[], ctx: CliContext): Promise<number>;
}

/** A mistake on the command line: exit 2 with the command's usage. */
export class UsageError extends Error {}

/** Anything else that stops a command: exit 1 with `orchard: <message>`. */
export class CliError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Flags every client command takes. */
export const COMMON_OPTIONS = {
  url: { type: "string" },
  "api-key": { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const satisfies Options;

export const COMMON_USAGE = "[--url URL] [--api-key KEY] [--json]";
export const DEFAULT_URL = "http://127.0.0.1:9000";

export interface Common {
  url?: string;
  "api-key"?: string;
  json: boolean;
  help: boolean;
}

/** parseArgs with the common flags added; its complaints become usage errors. */
export function parseCommand<O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    if (err instanceof TypeError) throw new UsageError(err.message);
    throw err;
  }
}

/** The API client for the common flags: --url, --api-key, their env vars, ./data/api-key. */
export function connect(values: Common, ctx: CliContext): ApiClient {
  const rawUrl = values.url ?? nonEmpty(ctx.env.ORCHARD_URL) ?? DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new UsageError(`--url is not a URL: ${rawUrl}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError("--url must be an http:// or https:// URL");
  if (url.username || url.password) throw new UsageError("--url must not hold credentials; give the key with --api-key or ORCHARD_API_KEY");
  return new ApiClient(url, apiKey(values, ctx));
}

function apiKey(values: Common, ctx: CliContext): string {
  const given = values["api-key"] ?? nonEmpty(ctx.env.ORCHARD_API_KEY);
  if (given !== undefined) return given;
  // The server writes its generated key to <data dir>/api-key (ORCHARD_DATA_DIR, default ./data).
  const file = path.resolve(ctx.cwd, nonEmpty(ctx.env.ORCHARD_DATA_DIR) ?? "data", "api-key");
  let key = "";
  try {
    key = fs.readFileSync(file, "utf8").trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT")
      throw new CliError(`cannot read the API key from ${file}: ${(err as Error).message}`);
  }
  if (key) return key;
  throw new CliError(
    `no API key: give --api-key KEY or set ORCHARD_API_KEY (the server writes its generated key to ${file}, which was not found)`,
  );
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/** A --limit style flag: a whole number >= 1. */
export function positiveInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(value)) throw new UsageError(`${flag} must be a whole number >= 1`);
  return Number(value);
}

/** Enrollment ids become path segments: no ',' or '/', and nothing empty. */
export function checkIds(ids: string[]): string[] {
  if (ids.length === 0) throw new UsageError("give at least one enrollment id");
  for (const id of ids) {
    if (id.trim() === "") throw new UsageError("an enrollment id is empty");
    if (/[,/]/.test(id)) throw new UsageError(`enrollment id ${JSON.stringify(id)} contains ',' or '/'`);
  }
  return [...new Set(ids)];
}

/** Ids as one path segment: each URL-encoded, joined by ','. */
export function idPath(ids: string[]): string {
  return ids.map(encodeURIComponent).join(",");
}

export function printJson(ctx: CliContext, value: unknown): void {
  ctx.out(terminalSafeJson(value, 2) + "\n");
}

/** The answer's orchard-warning headers, each a line on stderr. */
export function printWarnings(ctx: CliContext, res: { headers: Headers }): void {
  for (const w of splitWarnings(res.headers.get("orchard-warning"))) ctx.err(`orchard: warning: ${printable(w)}\n`);
}

/**
 * JSON whose strings escape DEL and the C1 controls too (`\u009b`): JSON.stringify leaves them raw, and a
 * terminal acts on a device's CSI in an id (review). Still JSON, read the same by jq and every parser.
 */
export function terminalSafeJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Exactly `n` positional arguments, else a usage error that says what to give. */
export function expectArgs(positionals: string[], n: number, what: string): string[] {
  if (positionals.length !== n) throw new UsageError(`give ${what}`);
  return positionals;
}

/** A command that takes no positional argument. */
export function noArgs(positionals: string[]): void {
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${printable(positionals[0]!)}`);
}

/** A list answer: the whole reply with --json, `none` when there is nothing, else a table of one row per item. */
export function printList<T>(
  ctx: CliContext,
  json: boolean,
  reply: unknown,
  items: T[],
  none: string,
  headers: string[],
  row: (item: T) => Cell[],
): number {
  if (json) printJson(ctx, reply);
  else if (items.length === 0) ctx.out(`${none}\n`);
  else ctx.out(formatTable(headers, items.map(row)));
  return 0;
}

type Subcommand = (args: string[], ctx: CliContext) => Promise<number>;

/** Runs `<command> <sub> ...` through a table of subcommands; a missing or unknown one is a usage error. */
export function runSubcommand(args: string[], ctx: CliContext, table: Record<string, Subcommand>): Promise<number> {
  const sub = args[0];
  const run = sub === undefined || !Object.hasOwn(table, sub) ? undefined : table[sub];
  if (!run) {
    const names = Object.keys(table).join(", ");
    throw new UsageError(sub === undefined ? `give a subcommand: ${names}` : `unknown subcommand ${printable(sub)}`);
  }
  return run(args.slice(1), ctx);
}

/** A file named on the command line, or stdin for "-". */
export async function readFileArg(file: string, ctx: CliContext): Promise<Buffer> {
  if (file === "-") return ctx.readStdin();
  try {
    return fs.readFileSync(path.resolve(ctx.cwd, file));
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
}
