import { jsonSyntaxDetail } from "../http/strict-json.ts";
import type { DdmBulkAssignResult, DdmCredentialJson, DdmCredentialPage } from "../http/wire.ts";
import { type ApiClient, ApiError, errorCode, errorReason, expectOk, splitWarnings, type ApiResponse } from "./api-client.ts";
import {
  checkIds,
  CliError,
  connect,
  noArgs,
  parseCommand,
  printJson,
  readFileArg,
  runSubcommand,
  UsageError,
  type CliContext,
  type ClientCommand,
  printWarnings,
} from "./command.ts";
import { formatTable, formatTime, printable } from "./table.ts";

// `orchard ddm`: Declarative Device Management over the KMFDDM-compatible API
// (/v1/declarations, /v1/set-declarations, ...) and Orchard's own routes
// beside it (bulk assignment, set compliance). docs/declarative-management.md.

const PLATFORMS = ["macOS", "iOS", "iPadOS", "tvOS", "watchOS", "visionOS"];
/** KMFDDM's status paths start so; the CLI shows and takes them without it. */
const STATUS_ITEMS = ".StatusItems.";
const NONOTIFY = { nonotify: { type: "boolean", default: false } } as const;

export const ddmCommand: ClientCommand = {
  name: "ddm",
  summary: "Declarative Device Management: declarations, sets, assignments, status",
  usage: [
    `ddm put <file.json...> [--nonotify]`,
    "  stores each declaration (PUT /v1/declarations): prints created, changed or unchanged and any warning;",
    "  exit 1 when one was refused (the server's reason is printed). --nonotify: no enrollment syncs now",
    `ddm declarations`,
    `ddm show <declaration>`,
    `ddm rm <declaration>`,
    "  only a declaration no set holds",
    `ddm touch <declaration> [--nonotify]`,
    "  a new ServerToken without a change: the enrollments holding it apply it again",
    `ddm sets`,
    `ddm set <set> [add|remove <declaration...>] [--nonotify]`,
    "  without add or remove: the set's declarations",
    `ddm assign <set> (<enrollment id...> | --platform macOS|iOS|iPadOS|tvOS|watchOS|visionOS) [--nonotify]`,
    `ddm unassign <set> (<enrollment id...> | --platform P) [--nonotify]`,
    "  --platform: every device channel of that platform enrolled now (not devices enrolling later, not user channels)",
    `ddm status <enrollment id>`,
    "  the channel's sets, each declaration with what the device reported (active, valid, current), and its errors;",
    "  an id that has not enrolled: a warning with its sets, exit 1 when it has none",
    `ddm compliance <set>`,
    "  per declaration of the set: enrollments reporting it active and valid, failing, or not yet; exit 1: no such set",
    `ddm values <enrollment id> [--prefix device.operating-system.]`,
    "  exit 1 for an id that has not enrolled",
    `ddm credential put <name> <template.json>`,
    "  stores a credential template (PUT /v1/ddm/credentials/<name>): what a com.apple.asset.credential.scep naming",
    "  orchard:credential/scep/<name> gives each device (subject, names, key; docs/declarative-management.md)",
    `ddm credential show <name>`,
    `ddm credential rm <name>`,
    `ddm credential ca`,
    "  the credential CA's certificate, PEM (for the RADIUS server or VPN gateway that checks the credentials)",
    `ddm credentials`,
  ],
  run: (args, ctx) =>
    runSubcommand(args, ctx, {
      put,
      declarations: (rest, c) => names(rest, c, "/v1/declarations", "no declarations"),
      show,
      rm,
      touch,
      sets: (rest, c) => names(rest, c, "/v1/sets", "no sets"),
      set,
      assign: (rest, c) => assign(rest, c, true),
      unassign: (rest, c) => assign(rest, c, false),
      status,
      compliance,
      values,
      credential,
      credentials,
    }),
};

/** `ddm credential put|show|rm|ca`: the credential templates and the credential CA. */
async function credential(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const [verb, name, file, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument ${printable(extra[0]!)}`);
  const client = connect(values, ctx);
  if (verb === "ca") {
    if (name !== undefined) throw new UsageError(`unexpected argument ${printable(name)}`);
    const res = await client.request("GET", "/v1/ddm/credential-ca");
    if (res.status !== 200) throw new ApiError(errorReason(res), res.status, errorCode(res));
    ctx.out(res.text);
    return 0;
  }
  if (name === undefined || name === "") throw new UsageError("give a credential name");
  if (verb === "put") {
    if (file === undefined) throw new UsageError("give the template file (JSON)");
    const body = await readFileArg(file, ctx);
    const parsed = jsonFile(body);
    if ("error" in parsed) throw new CliError(`${printable(file)}: ${parsed.error}`);
    const res = await client.request("PUT", `/v1/ddm/credentials/${seg(name)}`, { body, contentType: "application/json" });
    const stored = expectOk(res) as DdmCredentialJson;
    if (values.json) printJson(ctx, stored);
    else ctx.out(`${res.status === 201 ? "created" : "stored"} ${printable(stored.name)}: ${printable(stored.reference)}\n`);
    return 0;
  }
  if (file !== undefined) throw new UsageError(`unexpected argument ${printable(file)}`);
  if (verb === "show") {
    const res = await client.request("GET", `/v1/ddm/credentials/${seg(name)}`);
    if (res.status === 404) throw new CliError(`no credential ${printable(name)}`);
    printJson(ctx, expectOk(res));
    return 0;
  }
  if (verb === "rm") {
    const res = await client.request("DELETE", `/v1/ddm/credentials/${seg(name)}`);
    if (res.status === 404) throw new CliError(`no credential ${printable(name)}`);
    return done(ctx, values.json, res, `removed ${printable(name)}`, { removed: name });
  }
  throw new UsageError("ddm credential takes put, show, rm or ca");
}

async function credentials(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  noArgs(positionals);
  const client = connect(values, ctx);
  const all: DdmCredentialJson[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.get<DdmCredentialPage>("/v1/ddm/credentials", { cursor, limit: "500" });
    all.push(...page.credentials);
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined);
  if (values.json) printJson(ctx, all);
  else if (all.length === 0) ctx.out("no credentials\n");
  else {
    const rows = all.map((c) => [c.name, c.kind, c.reference, formatTime(c.updated_at)]);
    ctx.out(formatTable(["NAME", "KIND", "REFERENCE", "UPDATED"], rows));
  }
  return 0;
}

interface PutOutcome {
  file: string;
  identifier: string | null;
  outcome: "created" | "changed" | "unchanged" | "refused";
  warnings: string[];
  error?: string;
}

async function put(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, NONOTIFY);
  if (positionals.length === 0) throw new UsageError("give at least one declaration file (JSON)");
  const client = connect(values, ctx);
  const outcomes: PutOutcome[] = [];
  for (const file of positionals) {
    const bytes = await readFileArg(file, ctx);
    const parsed = jsonFile(bytes);
    if ("error" in parsed) {
      outcomes.push({ file, identifier: null, outcome: "refused", warnings: [], error: parsed.error });
      continue;
    }
    // Anything else wrong with it the server says.
    const given = (parsed.value as { Identifier?: unknown } | null)?.Identifier;
    const identifier = typeof given === "string" ? given : null;
    const res = await client.request("PUT", "/v1/declarations", {
      body: bytes,
      contentType: "application/json",
      query: { nonotify: values.nonotify ? "1" : undefined },
    });
    const warnings = splitWarnings(res.headers.get("orchard-warning"));
    if (res.status === 204 || res.status === 304) {
      const said = res.headers.get("orchard-outcome");
      const outcome = res.status === 304 ? "unchanged" : said === "created" ? "created" : "changed";
      outcomes.push({ file, identifier, outcome, warnings });
    } else if (res.status === 400 || res.status === 413 || res.status === 422) {
      outcomes.push({ file, identifier, outcome: "refused", warnings, error: errorReason(res) });
    } else {
      throw new ApiError(`${file}: ${errorReason(res)}`, res.status, errorCode(res));
    }
  }
  if (values.json) printJson(ctx, outcomes);
  else {
    for (const o of outcomes) {
      const what = o.identifier === null ? printable(o.file) : `${printable(o.identifier)} (${printable(o.file)})`;
      if (o.outcome === "refused") ctx.err(`orchard: ${printable(o.file)}: refused: ${printable(o.error ?? "")}\n`);
      else ctx.out(`${o.outcome} ${what}\n`);
      for (const w of o.warnings) ctx.err(`orchard: warning: ${printable(o.identifier ?? o.file)}: ${printable(w)}\n`);
    }
  }
  return outcomes.some((o) => o.outcome === "refused") ? 1 : 0;
}

/**
 * A JSON file's value, or that it is not JSON and where: checked here, as the
 * server would speak of "the body", and the file is what to fix. A UTF-8
 * byte order mark is allowed, as the server allows it.
 */
function jsonFile(bytes: Buffer): { value: unknown } | { error: string } {
  const text = bytes.toString("utf8").replace(/^\uFEFF/, "");
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    const detail = jsonSyntaxDetail(err, text);
    return { error: `the file is not valid JSON${detail === undefined ? "" : `: ${detail}`}` };
  }
}

async function names(args: string[], ctx: CliContext, apiPath: string, none: string): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  noArgs(positionals);
  const list = await connect(values, ctx).get<string[]>(apiPath);
  printNames(ctx, values.json, list, none);
  return 0;
}

function printNames(ctx: CliContext, json: boolean, list: string[], none: string): void {
  if (json) printJson(ctx, list);
  else if (list.length === 0) ctx.out(`${none}\n`);
  else ctx.out(list.map((n) => printable(n) + "\n").join(""));
}

function one(positionals: string[], what: string): string {
  if (positionals.length !== 1 || positionals[0] === "") throw new UsageError(`give one ${what}`);
  return positionals[0]!;
}

const seg = encodeURIComponent;

async function show(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const id = one(positionals, "declaration identifier");
  const client = connect(values, ctx);
  const res = await client.request("GET", `/v1/declarations/${seg(id)}`);
  if (res.status === 404) throw new CliError(`no declaration ${printable(id)}`);
  // The declaration as JSON either way: it is what `ddm put` takes back.
  printJson(ctx, expectOk(res));
  return 0;
}

async function rm(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const id = one(positionals, "declaration identifier");
  const res = await connect(values, ctx).request("DELETE", `/v1/declarations/${seg(id)}`);
  if (res.status === 304) throw new CliError(`no declaration ${printable(id)}`);
  return done(ctx, values.json, res, `deleted ${printable(id)}`, { deleted: id });
}

async function touch(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, NONOTIFY);
  const id = one(positionals, "declaration identifier");
  const res = await connect(values, ctx).request("POST", `/v1/declarations/${seg(id)}/touch`, {
    query: { nonotify: values.nonotify ? "1" : undefined },
  });
  if (res.status === 404) throw new CliError(`no declaration ${printable(id)}`);
  return done(ctx, values.json, res, `touched ${printable(id)}: it has a new ServerToken`, { touched: id });
}

/** A 2xx without a body: the line (or the JSON), exit 0; anything else is the server's error. */
function done(ctx: CliContext, json: boolean, res: ApiResponse, line: string, value: unknown): number {
  if (res.status < 200 || res.status > 299) throw new ApiError(errorReason(res), res.status, errorCode(res));
  if (json) printJson(ctx, value);
  else ctx.out(line + "\n");
  return 0;
}

async function set(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, NONOTIFY);
  const [name, action, ...declarations] = positionals;
  if (name === undefined || name === "") throw new UsageError("give a set's name");
  const client = connect(values, ctx);
  if (action === undefined) {
    if (values.nonotify) throw new UsageError("--nonotify goes with add or remove");
    printNames(ctx, values.json, await client.get<string[]>(`/v1/set-declarations/${seg(name)}`), `set ${printable(name)} is empty`);
    return 0;
  }
  if (action !== "add" && action !== "remove") throw new UsageError(`unknown action ${printable(action)}: add or remove`);
  if (declarations.length === 0) throw new UsageError(`give the declarations to ${action}`);
  const results: Array<{ declaration: string; changed: boolean }> = [];
  for (const declaration of [...new Set(declarations)]) {
    const res = await client.request(action === "add" ? "PUT" : "DELETE", `/v1/set-declarations/${seg(name)}`, {
      query: { declaration, nonotify: values.nonotify ? "1" : undefined },
    });
    if (res.status !== 204 && res.status !== 304)
      throw new ApiError(`${printable(declaration)}: ${errorReason(res)}`, res.status, errorCode(res));
    results.push({ declaration, changed: res.status === 204 });
  }
  if (values.json) printJson(ctx, { set: name, action, results });
  else {
    for (const r of results) {
      const d = printable(r.declaration);
      const s = printable(name);
      ctx.out(
        action === "add"
          ? r.changed
            ? `added ${d} to ${s}\n`
            : `${d} was in ${s} already\n`
          : r.changed
            ? `removed ${d} from ${s}\n`
            : `${d} was not in ${s}\n`,
      );
    }
  }
  return 0;
}

async function assign(args: string[], ctx: CliContext, add: boolean): Promise<number> {
  const { values, positionals } = parseCommand(args, { ...NONOTIFY, platform: { type: "string" } });
  const [name, ...ids] = positionals;
  if (name === undefined || name === "") throw new UsageError("give a set's name");
  const platform = values.platform;
  if ((platform === undefined) === (ids.length === 0)) throw new UsageError("give enrollment ids or --platform, one of them");
  if (platform !== undefined && !PLATFORMS.includes(platform)) throw new UsageError(`--platform must be one of ${PLATFORMS.join(", ")}`);
  const body = platform !== undefined ? { platform } : { ids: checkIds(ids) };
  const res = await connect(values, ctx).request(add ? "POST" : "DELETE", `/v1/ddm/sets/${seg(name)}/enrollments`, {
    body: Buffer.from(JSON.stringify(body)),
    contentType: "application/json",
    query: { nonotify: values.nonotify ? "1" : undefined },
  });
  const r = expectOk<DdmBulkAssignResult>(res);
  printWarnings(ctx, res);
  if (values.json) {
    printJson(ctx, r);
    return 0;
  }
  const which =
    r.platform !== undefined
      ? `${r.enrollments} ${printable(r.platform)} device channel(s) enrolled now`
      : `${r.enrollments} enrollment(s)`;
  const others = r.enrollments - r.changed;
  const rest = others === 0 ? "" : add ? `; ${others} had it already` : `; ${others} did not have it`;
  ctx.out(`${add ? "assigned" : "unassigned"} ${printable(r.set)}: ${r.changed} of ${which} changed${rest}\n`);
  return 0;
}

interface DeclarationStatus {
  identifier: string;
  active: boolean;
  valid: string;
  "server-token": string;
  current: boolean;
  status_received: string;
  reasons?: unknown[];
}

interface StatusError {
  path: string;
  error: unknown;
  timestamp: string;
}

async function status(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const [id] = checkIds([one(positionals, "enrollment id")]) as [string];
  const client = connect(values, ctx);
  const sets = await client.get<string[]>(`/v1/enrollment-sets/${seg(id)}`);
  const [known, statusMap, errorMap, ...setDeclarations] = await Promise.all([
    enrolled(client, id),
    client.get<Record<string, DeclarationStatus[]>>(`/v1/declaration-status/${seg(id)}`),
    client.get<Record<string, StatusError[]>>(`/v1/status-errors/${seg(id)}`),
    ...sets.map((s) => client.get<string[]>(`/v1/set-declarations/${seg(s)}`)),
  ]);
  const reported = own(statusMap, id);
  const errors = own(errorMap, id);
  notEnrolled(ctx, id, known, sets.length + reported.length + errors.length > 0, "its sets reach it when it enrolls");
  if (values.json) {
    printJson(ctx, {
      enrollment_id: id,
      enrolled: known,
      sets: Object.fromEntries(sets.map((s, i) => [s, setDeclarations[i]])),
      declarations: reported,
      errors,
    });
    return 0;
  }
  // Every declaration the channel's sets hold, and any it reported that they no longer do.
  const setsOf = new Map<string, string[]>();
  sets.forEach((s, i) => {
    for (const d of setDeclarations[i] as string[]) setsOf.set(d, [...(setsOf.get(d) ?? []), s]);
  });
  const byId = new Map(reported.map((r) => [r.identifier, r]));
  const ids = [...new Set([...setsOf.keys(), ...byId.keys()])].sort();
  ctx.out(`sets: ${sets.length === 0 ? "none" : sets.map(printable).join(", ")}\n`);
  if (ids.length === 0) ctx.out("no declarations\n");
  else {
    ctx.out("\n");
    ctx.out(
      formatTable(
        ["DECLARATION", "SETS", "ACTIVE", "VALID", "CURRENT", "REPORTED", "REASONS"],
        ids.map((d) => {
          const r = byId.get(d);
          return [
            d,
            (setsOf.get(d) ?? ["(none: no longer assigned)"]).join(","),
            r ? r.active : "not reported",
            r?.valid,
            r ? r.current : undefined,
            formatTime(r?.status_received),
            r?.reasons ? JSON.stringify(r.reasons) : undefined,
          ];
        }),
      ),
    );
  }
  if (errors.length > 0) {
    ctx.out("\n");
    ctx.out(
      formatTable(
        ["ERROR PATH", "ERROR", "AT"],
        errors.map((e) => [
          e.path.startsWith(STATUS_ITEMS) ? e.path.slice(STATUS_ITEMS.length) : e.path,
          JSON.stringify(e.error),
          formatTime(e.timestamp),
        ]),
      ),
    );
  }
  return 0;
}

/**
 * Whether an id names an enrollment. KMFDDM's routes answer any id (an empty
 * list), so the CLI asks Orchard's own route, as `orchard enrollment` does.
 */
async function enrolled(client: ApiClient, id: string): Promise<boolean> {
  const res = await client.request("GET", `/v1/enrollments/${seg(id)}`);
  if (res.status === 404 && errorCode(res) === "not_found") return false;
  expectOk(res);
  return true;
}

/**
 * An id that is no enrollment: an error when nothing is known of it (a typo,
 * most often), a warning when something is (sets assigned before it enrolls).
 */
function notEnrolled(ctx: CliContext, id: string, known: boolean, anything: boolean, then: string): void {
  if (known) return;
  if (!anything) throw new CliError(`no enrollment ${printable(id)} (not enrolled yet, or mistyped)`);
  ctx.err(`orchard: warning: ${printable(id)}: not enrolled (yet): ${then}\n`);
}

/** A KMFDDM per-enrollment map's entry for this id (own property only). */
function own<T>(map: Record<string, T[]>, id: string): T[] {
  return Object.hasOwn(map, id) ? (map[id] ?? []) : [];
}

interface Compliance {
  set: string;
  enrollments: number;
  declarations: Array<{ identifier: string; server_token: string; compliant: number; failing: number; pending: number }>;
}

async function compliance(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const name = one(positionals, "set name");
  const c = await connect(values, ctx).get<Compliance>(`/v1/set-compliance/${seg(name)}`);
  // A set is its declarations and its assignments: with neither, there is no such set (the route answers any name).
  if (c.enrollments === 0 && c.declarations.length === 0)
    throw new CliError(`no set ${printable(name)}: it holds no declarations and no enrollment has it`);
  if (values.json) {
    printJson(ctx, c);
    return 0;
  }
  ctx.out(`set ${printable(c.set)}: ${c.enrollments} enrollment(s)\n`);
  if (c.declarations.length === 0) {
    ctx.out("no declarations\n");
    return 0;
  }
  ctx.out("\n");
  ctx.out(
    formatTable(
      ["DECLARATION", "ACTIVE+VALID", "FAILING", "PENDING"],
      c.declarations.map((d) => [d.identifier, d.compliant, d.failing, d.pending]),
    ),
  );
  return 0;
}

async function values(args: string[], ctx: CliContext): Promise<number> {
  const { values: flags, positionals } = parseCommand(args, { prefix: { type: "string" } });
  const [id] = checkIds([one(positionals, "enrollment id")]) as [string];
  // KMFDDM's prefix is a full path (.StatusItems.device.); a shorter one is taken below .StatusItems.
  const prefix = flags.prefix === undefined || flags.prefix.startsWith(".") ? flags.prefix : STATUS_ITEMS + flags.prefix;
  const client = connect(flags, ctx);
  const [known, map] = await Promise.all([
    enrolled(client, id),
    client.get<Record<string, Array<{ path: string; value: string; timestamp: string }>>>(`/v1/status-values/${seg(id)}`, { prefix }),
  ]);
  const list = own(map, id);
  notEnrolled(ctx, id, known, list.length > 0, "these values were reported before");
  if (flags.json) {
    printJson(ctx, list);
    return 0;
  }
  if (list.length === 0) {
    ctx.out("no status values\n");
    return 0;
  }
  ctx.out(
    formatTable(
      ["PATH", "VALUE", "UPDATED"],
      list.map((v) => [v.path.startsWith(STATUS_ITEMS) ? v.path.slice(STATUS_ITEMS.length) : v.path, v.value, formatTime(v.timestamp)]),
    ),
  );
  return 0;
}
