import { isShortName, SHORT_NAME_RULE } from "../core/short-name.ts";
import type { UserImportJson, UserJson, UserPutBody, UserRemoved, UserSaved, UserSessionJson } from "../http/wire.ts";
import { ApiError, expectOk, type ApiClient } from "./api-client.ts";
import {
  CliError,
  connect,
  noArgs,
  parseCommand,
  readFileArg,
  positiveInt,
  printJson,
  printList,
  runSubcommand,
  UsageError,
  type CliContext,
  type ClientCommand,
} from "./command.ts";
import { fetchPages, PAGE_OPTIONS } from "./paging.ts";
import { firstLine } from "./secret.ts";
import { formatFields, formatTime, printable } from "./table.ts";

const PAGE_HELP = "  one page of --limit (default 100, at most 1000) from --cursor; --all follows every page";

/** Flags of `users add` and `users set`. */
const USER_FIELDS = {
  guid: { type: "string" },
  "full-name": { type: "string" },
  state: { type: "string" },
  "password-stdin": { type: "boolean", default: false },
} as const;

export const usersCommand: ClientCommand = {
  name: "users",
  summary: "manage the directory of network users (UserAuthenticate)",
  usage: [
    `users add <shortName> [--guid G] [--full-name N] [--state managed|declined] [--password-stdin | --no-password]`,
    "  asks twice for the password at a terminal; --password-stdin reads the first line of stdin instead;",
    "  --no-password adds the user without one (e.g. a declined entry). Prints created or updated",
    `users set <shortName> [--guid G] [--full-name N] [--state managed|declined] [--password-stdin]`,
    '  changes an existing user; the password only with --password-stdin; --guid "" or --full-name "" clears it',
    `users list [--limit N] [--cursor C] [--all]`,
    PAGE_HELP,
    `users show <shortName>`,
    `users remove <shortName>`,
    "  also revokes the user's AuthTokens on every Mac",
    `users import <htdigest file | -> [--realm R]`,
    "  adds or updates the users of the server's realm (or of realm R: they log in once --digest-realm is R)",
    "  from their MD5 digests (replacing every digest they had for that realm), lists lines of other realms",
    "  and bad lines; exit 1 when nothing was imported",
  ],
  run: (args, ctx) =>
    runSubcommand(args, ctx, {
      add: (rest, c) => addOrSet("add", rest, c),
      set: (rest, c) => addOrSet("set", rest, c),
      list,
      show,
      remove,
      import: importFile,
    }),
};

async function addOrSet(sub: "add" | "set", args: string[], ctx: CliContext): Promise<number> {
  const options = sub === "add" ? { ...USER_FIELDS, "no-password": { type: "boolean", default: false } as const } : USER_FIELDS;
  const { values, positionals } = parseCommand(args, options);
  const shortName = oneShortName(positionals);
  // Refused here too, before a password is asked for; show and remove still
  // reach a user named before this rule.
  if (!isShortName(shortName)) throw new UsageError(SHORT_NAME_RULE);
  const state = values.state;
  if (state !== undefined && state !== "managed" && state !== "declined") throw new UsageError("--state must be managed or declined");
  const noPassword = (values as { "no-password"?: boolean })["no-password"] === true;
  if (noPassword && values["password-stdin"]) throw new UsageError("give --password-stdin or --no-password, not both");
  const body: UserPutBody = {};
  // An empty value clears the field: the server takes null for "none".
  if (values.guid !== undefined) body.guid = values.guid === "" ? null : values.guid;
  if (values["full-name"] !== undefined) body.full_name = values["full-name"] === "" ? null : values["full-name"];
  if (state !== undefined) body.state = state;

  let prompt = false;
  if (sub === "add" && !values["password-stdin"] && !noPassword) {
    if (!ctx.stdinIsTTY) throw new UsageError("a password is needed: type it at a terminal, give --password-stdin, or --no-password");
    prompt = true;
  }
  if (sub === "set" && Object.keys(body).length === 0 && !values["password-stdin"]) {
    throw new UsageError("nothing to change: give --guid, --full-name, --state or --password-stdin");
  }

  const client = connect(values, ctx);
  const userPath = `/v1/users/${encodeURIComponent(shortName)}`;
  // PUT creates or replaces: add only creates (a second add of a name replaced its password in silence), set only changes.
  const existing = await client.request("GET", userPath);
  if (sub === "set" && existing.status === 404) throw new CliError(`no such user ${printable(shortName)} (orchard users add creates one)`);
  if (sub === "add" && existing.status !== 404) {
    expectOk(existing);
    throw new CliError(`user ${printable(shortName)} exists (orchard users set changes it)`);
  }
  if (values["password-stdin"]) body.password = passwordLine(await ctx.readStdin());
  else if (prompt) body.password = await askTwice(ctx);

  const res = await client.request("PUT", userPath, { body: Buffer.from(JSON.stringify(body)), contentType: "application/json" });
  const user = expectOk<UserSaved>(res);
  if (values.json) printJson(ctx, user);
  else ctx.out(`${res.status === 201 ? "created" : "updated"} ${printable(shortName)}${endedNote(user.sessions_ended)}\n`);
  return 0;
}

/** A change that ended logins says so: those Macs' users must log in again. An older server sends no count. */
function endedNote(ended: number | undefined): string {
  return ended ? `; ended ${ended} session${ended === 1 ? "" : "s"} (those users log in again)` : "";
}

/** The first line of stdin, without its line end; never shown anywhere. */
function passwordLine(input: Buffer): string {
  const line = firstLine(input);
  if (line === "") throw new CliError("no password on stdin (its first line is empty)");
  return line;
}

async function askTwice(ctx: CliContext): Promise<string> {
  const first = await ctx.readSecret("Password: ");
  if (first === "") throw new CliError("the password is empty");
  const second = await ctx.readSecret("Password again: ");
  if (first !== second) throw new CliError("the passwords do not match");
  return first;
}

async function list(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    ...PAGE_OPTIONS,
  });
  noArgs(positionals);
  const limit = positiveInt("--limit", values.limit);
  const client = connect(values, ctx);
  const page = await fetchPages<"users", UserJson>(
    client,
    ctx,
    "/v1/users",
    "users",
    { limit: limit?.toString() },
    {
      all: values.all,
      cursor: values.cursor,
    },
  );
  return printList(
    ctx,
    values.json,
    page,
    page.users,
    "no users",
    ["SHORT NAME", "GUID", "FULL NAME", "STATE", "DIGESTS", "UPDATED"],
    (u) => [u.short_name, u.guid, u.full_name, u.state, digestSummary(u.digests), formatTime(u.updated_at)],
  );
}

async function show(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const shortName = oneShortName(positionals);
  const client = connect(values, ctx);
  const u = await getUser(client, shortName);
  if (values.json) {
    printJson(ctx, u);
    return 0;
  }
  ctx.out(
    formatFields([
      ["short name", u.short_name],
      ["guid", u.guid],
      ["full name", u.full_name],
      ["state", u.state],
      ["digests", digestSummary(u.digests)],
      ["created at", formatTime(u.created_at)],
      ["updated at", formatTime(u.updated_at)],
    ]),
  );
  return 0;
}

async function remove(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const shortName = oneShortName(positionals);
  const client = connect(values, ctx);
  const res = await client.request("DELETE", `/v1/users/${encodeURIComponent(shortName)}`);
  if (res.status === 404) throw new CliError(`no such user ${printable(shortName)}`);
  const r = expectOk<UserRemoved>(res);
  if (values.json) printJson(ctx, r);
  else ctx.out(`removed ${printable(shortName)}; revoked ${r.sessions_revoked} session${r.sessions_revoked === 1 ? "" : "s"}\n`);
  return 0;
}

async function importFile(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, { realm: { type: "string" } });
  if (positionals.length !== 1) throw new UsageError("give one htdigest file, or - for stdin");
  const file = positionals[0]!;
  const client = connect(values, ctx);
  const body = await readFileArg(file, ctx);
  const query = values.realm === undefined ? undefined : { realm: values.realm };
  const res = await client.request("POST", "/v1/users/import", { body, contentType: "text/plain; charset=utf-8", query });
  const r = expectOk<UserImportJson>(res);
  if (!Array.isArray(r.other_realms) || !Array.isArray(r.errors) || !Array.isArray(r.file_realms)) {
    throw new ApiError("the server's import answer is incomplete");
  }
  const imported = r.created + r.updated;
  const failed = imported === 0 && (r.errors.length > 0 || r.other_realms.length > 0);
  if (values.json) printJson(ctx, r);
  else {
    ctx.out(`realm ${printable(r.realm)}: created ${r.created}, updated ${r.updated}${endedNote(r.sessions_ended)}\n`);
    if (r.realm !== r.server_realm && imported > 0) {
      ctx.out(
        `these users log in once the server runs with --digest-realm ${printable(r.realm)} (it is ${printable(r.server_realm)} now)\n`,
      );
    }
    if (r.other_realms.length > 0) {
      ctx.out(`skipped ${r.other_realms.length} line${r.other_realms.length === 1 ? "" : "s"} of other realms:\n`);
      for (const o of r.other_realms) ctx.out(`  ${printable(o.username)} (realm ${printable(o.realm)})\n`);
    }
    if (r.errors.length > 0) {
      ctx.out(`${r.errors.length} bad line${r.errors.length === 1 ? "" : "s"}:\n`);
      for (const e of r.errors) ctx.out(`  ${e.line > 0 ? `line ${e.line}` : "a line"}: ${printable(e.reason)}\n`);
    }
  }
  if (failed) {
    const held = r.file_realms.filter((f) => f.realm !== r.realm);
    const realms = held.map((f) => `${printable(f.realm)} (${f.lines} line${f.lines === 1 ? "" : "s"})`).join(", ");
    ctx.err(
      `orchard: nothing was imported${realms ? `: the file is for realm ${realms}, the import was for ${printable(r.realm)}` : ""}\n`,
    );
    if (held.length > 0) {
      ctx.err(
        `orchard: give --realm ${printable(held[0]!.realm)} to import them (users log in once the server's --digest-realm is that realm), ` +
          `or make the file for realm ${printable(r.server_realm)}\n`,
      );
    }
  }
  return failed ? 1 : 0;
}

export const userSessionsCommand: ClientCommand = {
  name: "user-sessions",
  summary: "show the state of network users' logins",
  usage: [`user-sessions [--device UDID] [--limit N] [--cursor C] [--all]`, PAGE_HELP],
  async run(args, ctx) {
    const { values, positionals } = parseCommand(args, {
      device: { type: "string" },
      ...PAGE_OPTIONS,
    });
    noArgs(positionals);
    const limit = positiveInt("--limit", values.limit);
    const client = connect(values, ctx);
    const query = { device: values.device, limit: limit?.toString() };
    const page = await fetchPages<"sessions", UserSessionJson>(client, ctx, "/v1/user-sessions", "sessions", query, {
      all: values.all,
      cursor: values.cursor,
    });
    return printList(
      ctx,
      values.json,
      page,
      page.sessions,
      values.device === undefined ? "no network-user sessions" : `no network-user sessions on ${values.device}`,
      ["ENROLLMENT", "SHORT NAME", "STATE", "TOKEN ISSUED", "TOKEN LAST USED", "UPDATED"],
      (s) => [
        s.enrollment_id,
        s.short_name,
        s.state,
        formatTime(s.token_issued_at),
        formatTime(s.token_last_used_at),
        formatTime(s.updated_at),
      ],
    );
  },
};

function oneShortName(positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError("give one short name");
  const name = positionals[0]!;
  if (name === "") throw new UsageError("the short name is empty");
  return name;
}

async function getUser(client: ApiClient, shortName: string): Promise<UserJson> {
  const res = await client.request("GET", `/v1/users/${encodeURIComponent(shortName)}`);
  if (res.status === 404) throw new CliError(`no such user ${printable(shortName)}`);
  return expectOk<UserJson>(res);
}

/** `fusion.home MD5,SHA-256`, realms separated by `; `. */
export function digestSummary(digests: UserJson["digests"] | undefined): string {
  const byRealm = new Map<string, string[]>();
  for (const d of digests ?? []) byRealm.set(d.realm, [...(byRealm.get(d.realm) ?? []), d.algorithm]);
  return [...byRealm]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([realm, algorithms]) => `${realm} ${algorithms.sort().join(",")}`)
    .join("; ");
}
