import type { AuditEntryJson, OperatorJson, OperatorRemoved, Role, TokenCreated, TokenJson } from "../http/wire.ts";
import { expectOk, type ApiClient } from "./api-client.ts";
import {
  CliError,
  connect,
  noArgs,
  parseCommand,
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

// `orchard operators`, `orchard tokens` and `orchard audit`: through the
// running server's API like every client command, so the audit log has each
// change. The first admin is added with the shared API key (the admin role),
// which the server writes to <data dir>/api-key: docs/operators.md.

const ROLES: readonly Role[] = ["auditor", "operator", "admin"];
const PAGE_HELP = "  one page of --limit (default 100, at most 1000) from --cursor; --all follows every page";

export const operatorsCommand: ClientCommand = {
  name: "operators",
  summary: "operator accounts: who may use the API and the console, with which role",
  usage: [
    "operators add <name> --role admin|operator|auditor [--password-stdin]",
    "  asks twice for the password at a terminal (at least 12 characters); --password-stdin reads the first line of stdin",
    "operators list [--limit N] [--cursor C] [--all]",
    PAGE_HELP,
    "operators show <name>",
    "operators set-role <name> admin|operator|auditor",
    "operators password <name> [--password-stdin]",
    "  sets a new password (ends the operator's sessions)",
    "operators disable <name>",
    "  ends the operator's sessions and stops its tokens at once; enable undoes it",
    "operators enable <name>",
    "operators remove <name>",
    "  removes the account with its tokens and sessions",
  ],
  run: (args, ctx) =>
    runSubcommand(args, ctx, {
      add,
      list,
      show,
      "set-role": setRole,
      password,
      disable: (rest, c) => setDisabled(rest, c, true),
      enable: (rest, c) => setDisabled(rest, c, false),
      remove,
    }),
};

function oneName(positionals: string[], what = "an operator name"): string {
  if (positionals.length !== 1) throw new UsageError(`give ${what}`);
  return positionals[0]!;
}

function checkRole(value: string | undefined): Role {
  if (value === undefined || !ROLES.includes(value as Role)) throw new UsageError(`the role is one of ${ROLES.join(", ")}`);
  return value as Role;
}

/** A password from stdin's first line, or typed twice at the terminal; never from argv. */
async function newPassword(ctx: CliContext, fromStdin: boolean): Promise<string> {
  if (fromStdin) {
    const line = firstLine(await ctx.readStdin());
    if (line === "") throw new CliError("no password on stdin (its first line is empty)");
    return line;
  }
  if (!ctx.stdinIsTTY) throw new UsageError("a password is needed: type it at a terminal, or give --password-stdin");
  const first = await ctx.readSecret("Password: ");
  if (first === "") throw new CliError("the password is empty");
  const second = await ctx.readSecret("Password again: ");
  if (first !== second) throw new CliError("the passwords do not match");
  return first;
}

function jsonBody(value: object) {
  return { body: Buffer.from(JSON.stringify(value)), contentType: "application/json" };
}

const operatorPath = (name: string) => `/v1/operators/${encodeURIComponent(name)}`;

async function add(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, { role: { type: "string" }, "password-stdin": { type: "boolean", default: false } });
  const name = oneName(positionals);
  const role = checkRole(values.role);
  const client = connect(values, ctx);
  const pw = await newPassword(ctx, values["password-stdin"]);
  const created = expectOk<OperatorJson>(await client.request("POST", "/v1/operators", jsonBody({ name, role, password: pw })));
  if (values.json) printJson(ctx, created);
  else ctx.out(`added ${printable(created.name)} (${created.role})\n`);
  return 0;
}

async function change(client: ApiClient, name: string, body: object): Promise<OperatorJson> {
  return expectOk<OperatorJson>(await client.request("PATCH", operatorPath(name), jsonBody(body)));
}

async function setRole(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  if (positionals.length !== 2) throw new UsageError("give an operator name and a role");
  const role = checkRole(positionals[1]);
  const changed = await change(connect(values, ctx), positionals[0]!, { role });
  if (values.json) printJson(ctx, changed);
  else ctx.out(`${printable(changed.name)} is now ${changed.role}\n`);
  return 0;
}

async function password(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, { "password-stdin": { type: "boolean", default: false } });
  const name = oneName(positionals);
  const client = connect(values, ctx);
  const changed = await change(client, name, { password: await newPassword(ctx, values["password-stdin"]) });
  if (values.json) printJson(ctx, changed);
  else ctx.out(`new password set for ${printable(changed.name)}; its sessions ended\n`);
  return 0;
}

async function setDisabled(args: string[], ctx: CliContext, disabled: boolean): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const changed = await change(connect(values, ctx), oneName(positionals), { disabled });
  if (values.json) printJson(ctx, changed);
  else ctx.out(`${disabled ? "disabled" : "enabled"} ${printable(changed.name)}\n`);
  return 0;
}

async function remove(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const r = expectOk<OperatorRemoved>(await connect(values, ctx).request("DELETE", operatorPath(oneName(positionals))));
  if (values.json) printJson(ctx, r);
  else ctx.out(`removed ${printable(r.removed)}\n`);
  return 0;
}

async function show(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const o = await connect(values, ctx).get<OperatorJson>(operatorPath(oneName(positionals)));
  if (values.json) {
    printJson(ctx, o);
    return 0;
  }
  ctx.out(
    formatFields([
      ["name", o.name],
      ["role", o.role],
      ["disabled", o.disabled ? "yes" : "no"],
      ["created at", formatTime(o.created_at)],
      ["password changed at", formatTime(o.password_changed_at)],
    ]),
  );
  return 0;
}

async function list(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, PAGE_OPTIONS);
  noArgs(positionals);
  const limit = positiveInt("--limit", values.limit);
  const page = await fetchPages<"operators", OperatorJson>(
    connect(values, ctx),
    ctx,
    "/v1/operators",
    "operators",
    { limit: limit?.toString() },
    values,
  );
  return printList(ctx, values.json, page, page.operators, "no operators", ["NAME", "ROLE", "DISABLED", "PASSWORD CHANGED"], (o) => [
    o.name,
    o.role,
    o.disabled ? "yes" : "",
    formatTime(o.password_changed_at),
  ]);
}

export const tokensCommand: ClientCommand = {
  name: "tokens",
  summary: "personal API tokens: Authorization: Bearer, or the Basic password in place of the API key",
  usage: [
    "tokens create --label L [--role R] [--expires 90d] [--operator NAME]",
    "  prints the token once; its role is at most its owner's (default the owner's); --operator: admins only",
    "tokens list [--operator NAME] [--limit N] [--cursor C] [--all]",
    "  your own tokens (admins: everyone's, or NAME's); never the tokens themselves",
    "tokens revoke <id>",
  ],
  run: (args, ctx) => runSubcommand(args, ctx, { create: createToken, list: listTokens, revoke: revokeToken }),
};

async function createToken(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    label: { type: "string" },
    role: { type: "string" },
    expires: { type: "string" },
    operator: { type: "string" },
  });
  noArgs(positionals);
  if (!values.label) throw new UsageError("give --label (what the token is for)");
  const body = {
    label: values.label,
    ...(values.role === undefined ? {} : { role: checkRole(values.role) }),
    ...(values.expires === undefined ? {} : { expires_in: values.expires }),
    ...(values.operator === undefined ? {} : { operator: values.operator }),
  };
  const t = expectOk<TokenCreated>(await connect(values, ctx).request("POST", "/v1/tokens", jsonBody(body)));
  if (values.json) printJson(ctx, t);
  else {
    ctx.err(`token ${t.id} for ${printable(t.operator)} (${t.role}), expires ${formatTime(t.expires_at)}; it is shown only now:\n`);
    ctx.out(`${t.token}\n`);
  }
  return 0;
}

async function listTokens(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, { ...PAGE_OPTIONS, operator: { type: "string" } });
  noArgs(positionals);
  const limit = positiveInt("--limit", values.limit);
  const page = await fetchPages<"tokens", TokenJson>(
    connect(values, ctx),
    ctx,
    "/v1/tokens",
    "tokens",
    { limit: limit?.toString(), operator: values.operator },
    values,
  );
  return printList(
    ctx,
    values.json,
    page,
    page.tokens,
    "no tokens",
    ["ID", "OPERATOR", "LABEL", "ROLE", "EXPIRES", "LAST USED", "REVOKED"],
    (t) => [t.id, t.operator, t.label, tokenRole(t), formatTime(t.expires_at), formatTime(t.last_used_at), formatTime(t.revoked_at)],
  );
}

/** The role a token acts with, and the one it was made with when its owner's demotion lowered it. */
function tokenRole(t: TokenJson): string {
  return t.effective_role === t.role ? t.role : `${t.effective_role} (made ${t.role})`;
}

async function revokeToken(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const id = oneName(positionals, "a token id");
  const t = expectOk<TokenJson>(await connect(values, ctx).request("DELETE", `/v1/tokens/${encodeURIComponent(id)}`));
  if (values.json) printJson(ctx, t);
  else ctx.out(`revoked token ${t.id} of ${printable(t.operator)}\n`);
  return 0;
}

export const auditCommand: ClientCommand = {
  name: "audit",
  summary: "the audit log: every change asked of the API, newest first",
  usage: [
    "audit [--actor NAME] [--action A] [--object ID] [--since TIME] [--until TIME] [--limit N] [--cursor C] [--all]",
    "  TIME is RFC 3339 (2026-12-01T00:00:00Z)",
  ],
  async run(args, ctx) {
    const { values, positionals } = parseCommand(args, {
      ...PAGE_OPTIONS,
      actor: { type: "string" },
      action: { type: "string" },
      object: { type: "string" },
      since: { type: "string" },
      until: { type: "string" },
    });
    noArgs(positionals);
    const limit = positiveInt("--limit", values.limit);
    const query = {
      limit: limit?.toString(),
      actor: values.actor,
      action: values.action,
      object: values.object,
      since: values.since,
      until: values.until,
    };
    const page = await fetchPages<"entries", AuditEntryJson>(connect(values, ctx), ctx, "/v1/audit", "entries", query, values);
    return printList(
      ctx,
      values.json,
      page,
      page.entries,
      "no entries",
      ["AT", "ACTOR", "CREDENTIAL", "ACTION", "OBJECTS", "STATUS", "ADDRESS"],
      (e) => [formatTime(e.at), e.actor, e.credential, e.action, e.objects.join(","), String(e.status), e.address],
    );
  },
};
