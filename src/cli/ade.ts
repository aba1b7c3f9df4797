import fs from "node:fs";
import path from "node:path";
import type {
  AdeAssignJson,
  AdeDeviceJson,
  AdeEnrollmentJson,
  AdeProfileJson,
  AdeSettingsJson,
  AdeProfileList,
  AdeServerJson,
  AdeServerList,
  AdeSyncJson,
} from "../http/wire.ts";
import { expectOk } from "./api-client.ts";
import {
  CliError,
  connect,
  expectArgs,
  parseCommand,
  positiveInt,
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

const DAY_MS = 86_400_000;
const seg = encodeURIComponent;

export const adeCommand: ClientCommand = {
  name: "ade",
  summary: "Automated Device Enrollment: ABM servers, their tokens, device sync and DEP profiles",
  usage: [
    `ade servers add <name> [--cn NAME] [--days N] [--out FILE]`,
    "  a new key pair for an ABM/ASM MDM server; the certificate (PEM) to upload at ABM goes to --out (default <name>.pem)",
    `ade servers list`,
    `ade servers show <name>`,
    `ade servers remove <name>`,
    "  forgets the server, its device inventory and profiles (nothing changes at Apple)",
    `ade token upload <name> <file.p7m | -> [--force]`,
    "  the server token downloaded from ABM for that certificate; --force replaces a token of another ABM MDM server",
    `ade sync <name>`,
    "  syncs the device list now (the first full fetch, then the changes), and assigns the default profile",
    `ade devices [--server NAME] [--serial S] [--status empty|assigned|pushed|removed] [--enrolled true|false] [--removed true|false] [--limit N] [--cursor C] [--all]`,
    `ade profiles put <name> <profile> <file.json | -> [--default]`,
    "  a DEP profile in Apple's keys (docs/automated-enrollment.md); --default: the one new devices get",
    `ade profiles list <name>`,
    `ade profiles default <name> <profile | --none>`,
    `ade profiles assign <name> <profile> <serial>...`,
    `ade profiles remove <name> <profile>`,
    `ade settings show <name>`,
    `ade settings put <name> <file.json | ->`,
    "  enrollment settings: minimum_os per platform, platform_sso, initial_commands (plists), initial_ddm_sets, release_on_failure",
    `ade enrollments [--server NAME] [--state profile_served|running|releasing|configured|failed] [--limit N] [--cursor C] [--all]`,
    "  ADE devices that reached the enrollment URL, and where each stands (running step n/m, configured, failed)",
    `ade release <serial>`,
    "  sends DeviceConfigured now: a device held by a failed initial set, or one not to keep waiting",
  ],
  run: (args, ctx) =>
    runSubcommand(args, ctx, {
      servers: (a, c) => runSubcommand(a, c, { add, list, show, remove }),
      token: (a, c) => runSubcommand(a, c, { upload }),
      sync,
      devices,
      profiles: (a, c) =>
        runSubcommand(a, c, { put: profilePut, list: profileList, default: profileDefault, assign, remove: profileRemove }),
      settings: (a, c) => runSubcommand(a, c, { show: settingsShow, put: settingsPut }),
      enrollments,
      release,
    }),
};

async function add(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, { cn: { type: "string" }, days: { type: "string" }, out: { type: "string" } });
  const [name] = expectArgs(positionals, 1, "the ABM server's name");
  const days = positiveInt("--days", values.days);
  const out = path.resolve(ctx.cwd, values.out ?? `${name}.pem`);
  if (fs.existsSync(out)) throw new CliError(`${out} exists: give another --out`);
  const client = connect(values, ctx);
  const body = Buffer.from(JSON.stringify({ ...(values.cn ? { common_name: values.cn } : {}), ...(days ? { days } : {}) }));
  const r = expectOk<AdeServerJson>(
    await client.request("PUT", `/v1/ade/servers/${seg(name!)}`, { body, contentType: "application/json" }),
  );
  fs.writeFileSync(out, r.certificate_pem, { mode: 0o644, flag: "wx" });
  if (values.json) printJson(ctx, r);
  else {
    ctx.out(`added ABM server ${printable(r.name)}; wrote its certificate to ${out}\n`);
    ctx.out(
      "upload it at Apple Business Manager (Preferences > your MDM server > Upload Public Key), download the server token (.p7m),\n" +
        `then: orchard ade token upload ${printable(r.name)} <token.p7m>\n`,
    );
  }
  return 0;
}

async function list(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  expectArgs(positionals, 0, "no argument");
  const r = await connect(values, ctx).get<AdeServerList>("/v1/ade/servers");
  printList(
    ctx,
    values.json,
    r,
    r.servers,
    "no ABM server (orchard ade servers add NAME adds one)",
    ["NAME", "ABM SERVER", "ORG", "TOKEN EXPIRY", "DEVICES", "ENROLLED", "LAST SYNC", "DEFAULT PROFILE", "LAST ERROR"],
    (s) => [
      s.name,
      s.server_name,
      s.org_name,
      s.token_expiry ? formatTime(s.token_expiry) : "no token",
      s.devices,
      s.enrolled,
      formatTime(s.last_sync_at),
      s.default_profile,
      s.last_sync_error,
    ],
  );
  if (!values.json) for (const s of r.servers) warnExpiry(ctx, s);
  return 0;
}

function warnExpiry(ctx: CliContext, s: AdeServerJson): void {
  if (!s.token_expiry) return;
  const days = Math.floor((Date.parse(s.token_expiry) - Date.now()) / DAY_MS);
  if (days > 30) return;
  const when = days < 0 ? `expired on ${formatTime(s.token_expiry)}` : `expires in ${days} days`;
  ctx.out(`the token of ${printable(s.name)} ${when}: download a new one at Apple Business Manager and upload it\n`);
}

async function show(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const [name] = expectArgs(positionals, 1, "the ABM server's name");
  const res = await connect(values, ctx).request("GET", `/v1/ade/servers/${seg(name!)}`);
  if (res.status === 404) throw new CliError(`no ABM server named ${printable(name!)}`);
  const s = expectOk<AdeServerJson>(res);
  if (values.json) return (printJson(ctx, s), 0);
  ctx.out(
    formatFields([
      ["name", s.name],
      ["ABM server", s.server_name],
      ["ABM server uuid", s.server_uuid],
      ["organisation", s.org_name],
      ["consumer key", s.consumer_key],
      ["token expiry", s.token_expiry ? formatTime(s.token_expiry) : "no token yet"],
      ["certificate expiry", formatTime(s.certificate_not_after)],
      ["phase", s.phase],
      ["devices", s.devices],
      ["enrolled", s.enrolled],
      ["last sync", formatTime(s.last_sync_at)],
      ["last sync error", s.last_sync_error],
      ["default profile", s.default_profile],
    ]),
  );
  warnExpiry(ctx, s);
  return 0;
}

async function remove(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const [name] = expectArgs(positionals, 1, "the ABM server's name");
  const res = await connect(values, ctx).request("DELETE", `/v1/ade/servers/${seg(name!)}`);
  if (res.status === 404) throw new CliError(`no ABM server named ${printable(name!)}`);
  const r = expectOk<{ removed: string }>(res);
  if (values.json) printJson(ctx, r);
  else ctx.out(`removed ABM server ${printable(r.removed)}\n`);
  return 0;
}

async function upload(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, { force: { type: "boolean", default: false } });
  const [name, file] = expectArgs(positionals, 2, "the ABM server's name and the token file (.p7m), or - for stdin");
  const body = await readFileArg(file!, ctx);
  if (body.length === 0) throw new CliError(`${file === "-" ? "stdin" : file} is empty`);
  const res = await connect(values, ctx).request("PUT", `/v1/ade/servers/${seg(name!)}/token`, {
    query: { force: values.force ? "1" : undefined },
    body,
    contentType: "application/pkcs7-mime",
  });
  const s = expectOk<AdeServerJson>(res);
  if (values.json) return (printJson(ctx, s), 0);
  ctx.out(`the token of ABM server ${printable(s.name)} stored, valid until ${formatTime(s.token_expiry)}`);
  ctx.out(s.server_name ? ` (ABM MDM server ${printable(s.server_name)}, ${printable(s.org_name ?? "")})\n` : "\n");
  return 0;
}

async function sync(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const [name] = expectArgs(positionals, 1, "the ABM server's name");
  const r = expectOk<AdeSyncJson>(await connect(values, ctx).request("POST", `/v1/ade/servers/${seg(name!)}/sync`));
  if (values.json) return (printJson(ctx, r), 0);
  // A full fetch's deleted: the devices it did not list, marked removed.
  const what =
    r.fetched > 0
      ? `fetched ${counted(r.fetched, "device")}${r.deleted > 0 ? `, ${r.deleted} no longer listed (removed)` : ""}`
      : `${r.added} added, ${r.modified} modified, ${r.deleted} deleted`;
  ctx.out(
    `synced ABM server ${printable(r.server)} in ${counted(r.pages, "page")}: ${what}${r.cursor_reset ? ` (${r.cursor_reset}: fetched again)` : ""}\n`,
  );
  if (r.assigned > 0 || r.assign_failed > 0) {
    ctx.out(
      `assigned the default profile to ${counted(r.assigned, "device")}${r.assign_failed ? `; ${r.assign_failed} not assigned` : ""}\n`,
    );
  }
  if (r.phase === "fetch") ctx.out("the first full fetch is not complete: sync again\n");
  return 0;
}

async function devices(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    server: { type: "string" },
    serial: { type: "string" },
    status: { type: "string" },
    enrolled: { type: "string" },
    removed: { type: "string" },
    ...PAGE_OPTIONS,
  });
  expectArgs(positionals, 0, "no argument (filters are flags)");
  for (const flag of ["enrolled", "removed"] as const) {
    if (values[flag] !== undefined && values[flag] !== "true" && values[flag] !== "false")
      throw new UsageError(`--${flag} must be true or false`);
  }
  const limit = positiveInt("--limit", values.limit);
  const query = {
    server: values.server,
    serial: values.serial,
    profile_status: values.status,
    enrolled: values.enrolled,
    removed: values.removed,
    limit: limit?.toString(),
  };
  const page = await fetchPages<"devices", AdeDeviceJson>(connect(values, ctx), ctx, "/v1/ade/devices", "devices", query, {
    all: values.all,
    cursor: values.cursor,
  });
  return printList(
    ctx,
    values.json,
    page,
    page.devices,
    "no devices",
    ["SERVER", "SERIAL", "MODEL", "OS", "COLOR", "PROFILE STATUS", "PROFILE UUID", "OP", "OP DATE", "ENROLLED", "REMOVED"],
    (d) => [
      d.server,
      d.serial_number,
      d.model ?? d.description,
      d.os,
      d.color,
      d.profile_status,
      d.profile_uuid,
      d.op_type,
      formatTime(d.op_date),
      d.enrolled,
      d.removed,
    ],
  );
}

async function profilePut(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, { default: { type: "boolean", default: false } });
  const [name, profile, file] = expectArgs(positionals, 3, "the ABM server's name, the profile's name and its JSON file (or - for stdin)");
  const body = await readFileArg(file!, ctx);
  const res = await connect(values, ctx).request("PUT", `/v1/ade/servers/${seg(name!)}/profiles/${seg(profile!)}`, {
    query: { default: values.default ? "1" : undefined },
    body,
    contentType: "application/json",
  });
  const p = expectOk<AdeProfileJson>(res);
  if (values.json) return (printJson(ctx, p), 0);
  ctx.out(
    `stored DEP profile ${printable(p.name)} of ${printable(p.server)}${p.default ? " (the default)" : ""}; url ${printable(String(p.profile.url))}\n`,
  );
  return 0;
}

async function profileList(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const [name] = expectArgs(positionals, 1, "the ABM server's name");
  const r = await connect(values, ctx).get<AdeProfileList>(`/v1/ade/servers/${seg(name!)}/profiles`);
  return printList(
    ctx,
    values.json,
    r,
    r.profiles,
    "no DEP profiles",
    ["NAME", "DEFAULT", "PROFILE UUID", "DEFINED", "SUPERVISED", "AWAIT CONFIGURED", "URL"],
    (p) => [
      p.name,
      p.default,
      p.profile_uuid,
      formatTime(p.defined_at),
      p.profile.is_supervised === true,
      p.profile.await_device_configured === true,
      String(p.profile.url),
    ],
  );
}

async function profileDefault(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, { none: { type: "boolean", default: false } });
  const [name, profile] = values.none
    ? expectArgs(positionals, 1, "the ABM server's name and --none")
    : expectArgs(positionals, 2, "the ABM server's name and a profile (or --none)");
  const body = Buffer.from(JSON.stringify({ profile: values.none ? null : profile }));
  const s = expectOk<AdeServerJson>(
    await connect(values, ctx).request("PUT", `/v1/ade/servers/${seg(name!)}/default-profile`, { body, contentType: "application/json" }),
  );
  if (values.json) printJson(ctx, s);
  else
    ctx.out(
      s.default_profile
        ? `new devices of ${printable(s.name)} get ${printable(s.default_profile)}\n`
        : `no default profile for ${printable(s.name)}\n`,
    );
  return 0;
}

async function assign(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  if (positionals.length < 3) throw new UsageError("give the ABM server's name, the profile's name and at least one serial number");
  const [name, profile, ...serials] = positionals;
  const body = Buffer.from(JSON.stringify({ serials }));
  const r = expectOk<AdeAssignJson>(
    await connect(values, ctx).request("POST", `/v1/ade/servers/${seg(name!)}/profiles/${seg(profile!)}/assign`, {
      body,
      contentType: "application/json",
    }),
  );
  if (values.json) return (printJson(ctx, r), 0);
  ctx.out(formatTable(["SERIAL", "RESULT"], Object.entries(r.devices)));
  const failed = Object.values(r.devices).filter((v) => v !== "SUCCESS").length;
  return failed > 0 ? 1 : 0;
}

async function profileRemove(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const [name, profile] = expectArgs(positionals, 2, "the ABM server's name and the profile's name");
  const r = expectOk<{ removed: string }>(
    await connect(values, ctx).request("DELETE", `/v1/ade/servers/${seg(name!)}/profiles/${seg(profile!)}`),
  );
  if (values.json) printJson(ctx, r);
  else ctx.out(`removed DEP profile ${printable(r.removed)}\n`);
  return 0;
}

async function settingsShow(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const [name] = expectArgs(positionals, 1, "the ABM server's name");
  const r = await connect(values, ctx).get<AdeSettingsJson>(`/v1/ade/servers/${seg(name!)}/enrollment-settings`);
  printJson(ctx, r);
  return 0;
}

async function settingsPut(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const [name, file] = expectArgs(positionals, 2, "the ABM server's name and the settings' JSON file (or - for stdin)");
  const body = await readFileArg(file!, ctx);
  const res = await connect(values, ctx).request("PUT", `/v1/ade/servers/${seg(name!)}/enrollment-settings`, {
    body,
    contentType: "application/json",
  });
  const r = expectOk<AdeSettingsJson>(res);
  printWarnings(ctx, res);
  if (values.json) return (printJson(ctx, r), 0);
  const minimum = Object.entries(r.minimum_os).map(([p, m]) => `${p} ${m.os_version}`);
  ctx.out(
    `stored the enrollment settings of ${printable(name!)}: minimum OS ${minimum.length ? minimum.join(", ") : "none"}; ` +
      `Platform SSO ${r.platform_sso ? "on" : "off"}; ${counted(r.initial_commands.length, "initial command")}, ${counted(r.initial_ddm_sets.length, "DDM set")}; ` +
      `a failed step ${r.release_on_failure ? "still releases" : "holds"} the device\n`,
  );
  return 0;
}

async function enrollments(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, { server: { type: "string" }, state: { type: "string" }, ...PAGE_OPTIONS });
  expectArgs(positionals, 0, "no argument (filters are flags)");
  const limit = positiveInt("--limit", values.limit);
  const query = { server: values.server, state: values.state, limit: limit?.toString() };
  const page = await fetchPages<"enrollments", AdeEnrollmentJson>(connect(values, ctx), ctx, "/v1/ade/enrollments", "enrollments", query, {
    all: values.all,
    cursor: values.cursor,
  });
  return printList(
    ctx,
    values.json,
    page,
    page.enrollments,
    values.state || values.server ? "no ADE device matches" : "no ADE device has reached the enrollment URL",
    ["SERIAL", "SERVER", "UDID", "PRODUCT", "OS", "STATE", "PROGRESS", "SERVED", "UPDATED"],
    (e) => [
      e.serial_number,
      e.server,
      e.udid,
      e.product,
      e.os_version,
      e.state,
      e.progress,
      formatTime(e.served_at),
      formatTime(e.updated_at),
    ],
  );
}

async function release(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  const [serial] = expectArgs(positionals, 1, "the device's serial number");
  const res = await connect(values, ctx).request("POST", `/v1/ade/enrollments/${seg(serial!)}/release`);
  if (res.status === 404) throw new CliError(`no ADE device ${printable(serial!)} reached the enrollment URL`);
  const e = expectOk<AdeEnrollmentJson>(res);
  if (values.json) return (printJson(ctx, e), 0);
  ctx.out(`DeviceConfigured queued for ${printable(e.serial_number)} (${printable(e.udid)}): ${e.progress}\n`);
  return 0;
}
