import type {
  UpdateApplyJson,
  UpdateComplianceJson,
  UpdateDeviceJson,
  UpdateFeedJson,
  UpdateFeedRefreshJson,
  UpdatePolicyDetailJson,
  UpdatePolicyJson,
  UpdatePolicyList,
  UpdatePolicySaved,
  UpdateReleasesJson,
} from "../http/wire.ts";
import { expectOk } from "./api-client.ts";
import {
  CliError,
  connect,
  expectArgs,
  parseCommand,
  printJson,
  printList,
  readFileArg,
  runSubcommand,
  UsageError,
  type CliContext,
  type ClientCommand,
  printWarnings,
} from "./command.ts";
import { fetchPages, PAGE_OPTIONS } from "./paging.ts";
import { counted, formatFields, formatTable, formatTime, printable } from "./table.ts";

const seg = encodeURIComponent;

export const updatesCommand: ClientCommand = {
  name: "updates",
  summary: "OS updates through DDM: the software lookup feed, update policies, compliance",
  usage: [
    `updates feed [refresh]`,
    "  the software lookup feed in use (refresh: read it now; a failure keeps the last good copy, exit 1)",
    `updates releases [--platform macOS|iOS|iPadOS|...]`,
    `updates policies`,
    `updates policy put <name> --platform P (--latest --deadline-days N [--deadline-time hh:mm:ss] | --version V [--build B] --deadline yyyy-mm-ddThh:mm:ss) [--set S | --ids ID,... | --ids-file F] [--details-url URL] [--settings FILE]`,
    "  creates or replaces a policy: per platform, every device (default), a DDM set's devices or a list; the newest release",
    "  for each model (--latest, deadline N days after Apple posts it) or a version; --settings: a softwareupdate.settings Payload (JSON)",
    `updates policy show <name>`,
    `updates policy remove <name>`,
    `updates compliance <name>`,
    `updates devices <name> [--state up_to_date|pending|downloading|installing|failed|overdue|not_reporting|no_release] [--limit N] [--cursor C] [--all]`,
    `updates device <enrollment id>`,
    `updates apply`,
    "  re-targets every policy's devices now (also done every 5 minutes, and at each feed or policy change)",
  ],
  run: (args, ctx) =>
    runSubcommand(args, ctx, {
      feed,
      releases,
      policies,
      policy: (a, c) => runSubcommand(a, c, { put, show, remove }),
      compliance,
      devices,
      device,
      apply,
    }),
};

async function feed(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals: p } = parseCommand(args, {});
  if (p.length > 1 || (p.length === 1 && p[0] !== "refresh")) throw new UsageError("orchard updates feed [refresh]");
  const client = connect(values, ctx);
  if (p[0] === "refresh") {
    const r = expectOk<UpdateFeedRefreshJson>(await client.request("POST", "/v1/updates/feed/refresh"));
    if (values.json) printJson(ctx, r);
    else printFeed(ctx, r);
    if (!r.refreshed) {
      ctx.err(`orchard: the feed could not be read: ${printable(r.error ?? "")}; the last good copy stays in use\n`);
      return 1;
    }
    if (!values.json) ctx.out(r.changed ? "the releases changed: devices were re-targeted\n" : "no change\n");
    return 0;
  }
  const r = await client.get<UpdateFeedJson>("/v1/updates/feed");
  if (values.json) printJson(ctx, r);
  else printFeed(ctx, r);
  return 0;
}

function printFeed(ctx: CliContext, f: UpdateFeedJson): void {
  ctx.out(
    formatFields([
      ["url", f.url],
      ["read at", f.fetched_at ? formatTime(f.fetched_at) : "never"],
      [
        "releases",
        Object.entries(f.releases)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ") || "none",
      ],
      ["last attempt", formatTime(f.attempted_at)],
      [
        "last error",
        f.error
          ? `${f.error} (${formatTime(f.error_at)}; ${f.fetched_at ? "the good copy above stays in use" : "no good copy has been read yet"})`
          : null,
      ],
    ]),
  );
}

async function releases(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals: p } = parseCommand(args, { platform: { type: "string" } });
  expectArgs(p, 0, "no argument");
  const r = await connect(values, ctx).get<UpdateReleasesJson>("/v1/updates/releases", { platform: values.platform });
  if (values.json) return (printJson(ctx, r), 0);
  const rows = Object.entries(r.releases).flatMap(([platform, list]) =>
    list.map((x) => [platform, x.version, x.build, x.posted_on, x.expires_on, x.devices.length]),
  );
  if (rows.length === 0) return (ctx.out("no releases: the feed was not read yet (orchard updates feed refresh)\n"), 0);
  ctx.out(formatTable(["PLATFORM", "VERSION", "BUILD", "POSTED", "EXPIRES", "DEVICES"], rows));
  return 0;
}

async function policies(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals: p } = parseCommand(args, {});
  expectArgs(p, 0, "no argument");
  const r = await connect(values, ctx).get<UpdatePolicyList>("/v1/updates/policies");
  return printList(
    ctx,
    values.json,
    r,
    r.policies,
    "no update policy (orchard updates policy put NAME ... makes one)",
    ["NAME", "PLATFORM", "DEVICES", "TARGET", "DEADLINE"],
    (x) => [x.name, x.platform, scope(x), target(x), deadline(x)],
  );
}

const scope = (p: UpdatePolicyJson) =>
  p.enrollments === "all" ? "all" : "set" in p.enrollments ? `set ${p.enrollments.set}` : `${p.enrollments.ids} listed`;
const target = (p: UpdatePolicyJson) =>
  p.mode === "latest" ? "latest" : `${p.target_os_version}${p.target_build_version ? ` (${p.target_build_version})` : ""}`;
const deadline = (p: UpdatePolicyJson) =>
  p.mode === "latest" ? `${p.deadline_days} days after release, ${p.deadline_time}` : (p.target_local_date_time ?? "");

async function put(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals: p } = parseCommand(args, {
    platform: { type: "string" },
    latest: { type: "boolean", default: false },
    "deadline-days": { type: "string" },
    "deadline-time": { type: "string" },
    version: { type: "string" },
    build: { type: "string" },
    deadline: { type: "string" },
    set: { type: "string" },
    ids: { type: "string" },
    "ids-file": { type: "string" },
    "details-url": { type: "string" },
    settings: { type: "string" },
  });
  const [name] = expectArgs(p, 1, "the policy's name");
  if (!values.platform) throw new UsageError("give --platform (macOS, iOS, iPadOS, ...)");
  if (values.latest === (values.version !== undefined)) throw new UsageError("give --latest or --version V, one of them");
  if ([values.set, values.ids, values["ids-file"]].filter((v) => v !== undefined).length > 1)
    throw new UsageError("give at most one of --set, --ids and --ids-file (none: every device of the platform)");
  const body: Record<string, unknown> = { platform: values.platform, mode: values.latest ? "latest" : "version" };
  if (values.latest) {
    if (values["deadline-days"] === undefined) throw new UsageError("--latest needs --deadline-days N");
    if (!/^\d+$/.test(values["deadline-days"])) throw new UsageError("--deadline-days must be a whole number");
    body.deadline_days = Number(values["deadline-days"]);
    if (values["deadline-time"] !== undefined) body.deadline_time = values["deadline-time"];
  } else {
    if (values.deadline === undefined) throw new UsageError("--version needs --deadline yyyy-mm-ddThh:mm:ss (the device's local time)");
    body.target_os_version = values.version;
    body.target_local_date_time = values.deadline;
    if (values.build !== undefined) body.target_build_version = values.build;
  }
  if (values.set !== undefined) body.enrollments = { set: values.set };
  if (values.ids !== undefined) body.enrollments = { ids: values.ids.split(",").filter(Boolean) };
  if (values["ids-file"] !== undefined) {
    const text = (await readFileArg(values["ids-file"], ctx)).toString("utf8");
    body.enrollments = { ids: text.split(/\s+/).filter(Boolean) };
  }
  if (values["details-url"] !== undefined) body.details_url = values["details-url"];
  if (values.settings !== undefined) {
    try {
      body.settings = JSON.parse((await readFileArg(values.settings, ctx)).toString("utf8")) as unknown;
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(`${values.settings} is not JSON`);
    }
  }
  const client = connect(values, ctx);
  const res = await client.request("PUT", `/v1/updates/policies/${seg(name!)}`, {
    body: Buffer.from(JSON.stringify(body)),
    contentType: "application/json",
  });
  const r = expectOk<UpdatePolicySaved>(res);
  printWarnings(ctx, res);
  if (values.json) return (printJson(ctx, r), 0);
  const reach = r.reach ? `${counted(r.reach.devices, "device")} (${r.reach.targeted} with a target); all policies: ` : "";
  ctx.out(`${r.created ? "created" : "replaced"} update policy ${printable(name!)}: ${reach}${applied(r.applied)}\n`);
  return 0;
}

/** What a re-targeting of every policy's devices did. */
function applied(a: UpdateApplyJson): string {
  if (a.skipped) return "another Orchard process is re-targeting devices; this change is applied within 5 minutes";
  return `${counted(a.devices, "device")}, ${a.targeted} with a target (${a.targets} distinct), ${a.changed} changed, ${a.released} released`;
}

async function show(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals: p } = parseCommand(args, {});
  const [name] = expectArgs(p, 1, "the policy's name");
  const res = await connect(values, ctx).request("GET", `/v1/updates/policies/${seg(name!)}`);
  if (res.status === 404) throw new CliError(`no update policy ${printable(name!)}`);
  const x = expectOk<UpdatePolicyDetailJson>(res);
  if (values.json) return (printJson(ctx, x), 0);
  ctx.out(
    formatFields([
      ["name", x.name],
      ["platform", x.platform],
      ["devices", scope(x)],
      ["ids", x.listed_ids ? shownIds(x.listed_ids) : null],
      ["target", target(x)],
      ["deadline", deadline(x)],
      ["details URL", x.details_url],
      ["settings", x.settings ? JSON.stringify(x.settings) : null],
      ["updated", formatTime(x.updated_at)],
    ]),
  );
  return 0;
}

async function remove(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals: p } = parseCommand(args, {});
  const [name] = expectArgs(p, 1, "the policy's name");
  const res = await connect(values, ctx).request("DELETE", `/v1/updates/policies/${seg(name!)}`);
  if (res.status === 404) throw new CliError(`no update policy ${printable(name!)}`);
  const r = expectOk<{ removed: string; applied: UpdateApplyJson }>(res);
  if (values.json) return (printJson(ctx, r), 0);
  ctx.out(`removed update policy ${printable(name!)}; all policies: ${applied(r.applied)}\n`);
  return 0;
}

async function compliance(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals: p } = parseCommand(args, {});
  const [name] = expectArgs(p, 1, "the policy's name");
  const res = await connect(values, ctx).request("GET", `/v1/updates/policies/${seg(name!)}/compliance`);
  if (res.status === 404) throw new CliError(`no update policy ${printable(name!)}`);
  const r = expectOk<UpdateComplianceJson>(res);
  if (values.json) return (printJson(ctx, r), 0);
  ctx.out(formatTable(["STATE", "DEVICES"], [...Object.entries(r.counts), ["total", r.total]]));
  return 0;
}

async function devices(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals: p } = parseCommand(args, { state: { type: "string" }, ...PAGE_OPTIONS });
  const [name] = expectArgs(p, 1, "the policy's name");
  const client = connect(values, ctx);
  const page = await fetchPages<"devices", UpdateDeviceJson>(
    client,
    ctx,
    `/v1/updates/policies/${seg(name!)}/devices`,
    "devices",
    { state: values.state, limit: values.limit },
    { all: values.all, cursor: values.cursor },
  );
  if (values.json) return (printJson(ctx, page), 0);
  ctx.out(
    formatTable(
      ["ENROLLMENT", "STATE", "TARGET", "DEADLINE", "REASON"],
      page.devices.map((x) => [x.enrollment_id, x.state, x.target?.os_version ?? null, x.target?.local_date_time ?? null, x.reason]),
    ),
  );
  return 0;
}

async function device(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals: p } = parseCommand(args, {});
  const [id] = expectArgs(p, 1, "an enrollment id");
  const res = await connect(values, ctx).request("GET", `/v1/updates/devices/${seg(id!)}`);
  if (res.status === 404)
    throw new CliError(`no update policy reaches ${printable(id!)} (or it is not re-targeted yet: orchard updates apply)`);
  const x = expectOk<UpdateDeviceJson>(res);
  if (values.json) return (printJson(ctx, x), 0);
  ctx.out(
    formatFields([
      ["enrollment", x.enrollment_id],
      ["policy", x.policy],
      ["state", x.state],
      ["reason", x.reason],
      ["target", x.target ? `${x.target.os_version}${x.target.build_version ? ` (${x.target.build_version})` : ""}` : "none"],
      ["deadline", x.target?.local_date_time ?? null],
      ["updated", formatTime(x.updated_at)],
    ]),
  );
  return 0;
}

async function apply(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals: p } = parseCommand(args, {});
  expectArgs(p, 0, "no argument");
  const r = expectOk<UpdateApplyJson>(await connect(values, ctx).request("POST", "/v1/updates/apply"));
  if (values.json) return (printJson(ctx, r), 0);
  ctx.out(`${applied(r)}\n`);
  return 0;
}

/** A policy's ids (up to 100,000 of them) as one line a terminal can take: the first ones, then how many more. */
function shownIds(ids: readonly string[]): string {
  const SHOWN = 20;
  const more = ids.length - SHOWN;
  return ids.slice(0, SHOWN).join(", ") + (more > 0 ? ` and ${more} more (--json lists them all)` : "");
}
