import type { EnrollmentJson, EnrollmentRemoved, RebindApprovedJson, RebindStateJson } from "../http/wire.ts";
import { expectOk } from "./api-client.ts";
import {
  CliError,
  connect,
  parseCommand,
  positiveInt,
  printJson,
  printList,
  UsageError,
  type CliContext,
  type ClientCommand,
} from "./command.ts";
import { fetchPages, PAGE_OPTIONS } from "./paging.ts";
import { formatFields, formatTable, formatTime, printable, type Cell } from "./table.ts";

export const enrollmentsCommand: ClientCommand = {
  name: "enrollments",
  summary: "list enrollments; approve a device's new identity certificate; remove a device or a user channel",
  usage: [
    `enrollments [--type T] [--platform macOS|iOS|iPadOS|tvOS|watchOS|visionOS] [--enabled true|false] [--serial S] [--device UDID] [--limit N] [--cursor ID] [--all]`,
    "  one page of --limit (default 100, at most 1000) from --cursor; --all follows every page",
    `enrollments rebind <device id> [--fingerprint SHA256 | --show]`,
    "  without --fingerprint: the device's binding and every certificate held for it, approving nothing (exit 1; 0 with --show);",
    "  with it: approve that certificate, whose next Authenticate re-binds the device (docs/enrolling-devices.md, Re-enrollment)",
    `enrollments remove <device id | user channel id>`,
    "  a device with all its channels, or one user channel, and everything Orchard keeps for them (commands still queued too);",
    "  events stay; the device comes back only by enrolling again (docs/enrolling-devices.md, Removing a device)",
  ],
  async run(args, ctx) {
    if (args[0] === "rebind") return rebind(args.slice(1), ctx);
    if (args[0] === "remove") return remove(args.slice(1), ctx);
    const { values, positionals } = parseCommand(args, {
      type: { type: "string" },
      platform: { type: "string" },
      enabled: { type: "string" },
      serial: { type: "string" },
      device: { type: "string" },
      ...PAGE_OPTIONS,
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    if (values.enabled !== undefined && values.enabled !== "true" && values.enabled !== "false") {
      throw new UsageError("--enabled must be true or false");
    }
    const limit = positiveInt("--limit", values.limit);
    const client = connect(values, ctx);
    const query = {
      type: values.type,
      platform: values.platform,
      enabled: values.enabled,
      serial: values.serial,
      device: values.device,
      limit: limit?.toString(),
    };
    const page = await fetchPages<"enrollments", EnrollmentJson>(client, ctx, "/v1/enrollments", "enrollments", query, {
      all: values.all,
      cursor: values.cursor,
    });
    return printList(
      ctx,
      values.json,
      page,
      page.enrollments,
      "no enrollments",
      ["ID", "TYPE", "PLATFORM", "ENABLED", "SERIAL", "MODEL", "OS", "USER", "LAST SEEN", "TOKEN UPDATES"],
      (e) => [
        e.id,
        e.type,
        e.platform,
        e.enabled,
        e.serial_number,
        e.model_name ?? e.model ?? e.product_name,
        e.os_version && e.build_version ? `${e.os_version} (${e.build_version})` : e.os_version,
        e.user_short_name ?? e.user_id,
        formatTime(e.last_seen_at),
        e.token_update_count,
      ],
    );
  },
};

export const enrollmentCommand: ClientCommand = {
  name: "enrollment",
  summary: "show one enrollment",
  usage: [`enrollment <id>`],
  async run(args, ctx) {
    const { values, positionals } = parseCommand(args, {});
    if (positionals.length !== 1) throw new UsageError("give one enrollment id");
    const client = connect(values, ctx);
    const e = await client.get<EnrollmentJson>(`/v1/enrollments/${encodeURIComponent(positionals[0]!)}`);
    if (values.json) {
      printJson(ctx, e);
      return 0;
    }
    ctx.out(formatFields(Object.entries(e as unknown as Record<string, unknown>).map(([k, v]) => [label(k), show(k, v)])));
    return 0;
  },
};

/** What either rebind route answers: the state (GET) or the approval (POST). */
type RebindState = Partial<RebindStateJson> & Partial<RebindApprovedJson> & { device_id: string; cert_fingerprint: string };

/**
 * Approval names the certificate: an approval of "whatever is held" could
 * approve a certificate that arrived after the operator looked (anybody's).
 * Without --fingerprint the command shows every held certificate and approves nothing.
 */
async function rebind(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, { fingerprint: { type: "string" }, show: { type: "boolean", default: false } });
  if (positionals.length !== 1) throw new UsageError("give one device id");
  if (values.show && values.fingerprint !== undefined) throw new UsageError("--show approves nothing: not with --fingerprint");
  const client = connect(values, ctx);
  const apiPath = `/v1/enrollments/${encodeURIComponent(positionals[0]!)}/rebind`;
  const state =
    values.fingerprint === undefined
      ? await client.get<RebindState>(apiPath)
      : expectOk<RebindState>(
          await client.request("POST", apiPath, {
            body: Buffer.from(JSON.stringify({ fingerprint: values.fingerprint })),
            contentType: "application/json",
          }),
        );
  if (values.json) {
    printJson(ctx, state);
    return 0;
  }
  const current = state.approved ?? state.held ?? undefined;
  ctx.out(
    formatFields([
      ["device", state.device_id],
      ["bound certificate", state.cert_fingerprint],
      ...(state.last_contact_at !== undefined ? ([["last contact", formatTime(state.last_contact_at)]] as [string, Cell][]) : []),
      ...(state.silence
        ? ([["silence", state.silence.state + (state.silence.until ? ` until ${formatTime(state.silence.until)}` : "")]] as [
            string,
            Cell,
          ][])
        : []),
      [state.approved || current?.approved_at ? "approved certificate" : "latest held certificate", current?.cert_fingerprint ?? null],
      ["approved at", formatTime(current?.approved_at ?? null)],
    ]),
  );
  if (state.approved) {
    ctx.out("approved: the device re-binds to this certificate at its next Authenticate\n");
    return 0;
  }
  const held = state.held_certificates ?? [];
  if (held.length > 0) {
    ctx.out("\n");
    ctx.out(
      formatTable(
        ["HELD CERTIFICATE (SHA-256)", "ATTEMPTS", "FIRST", "LAST"],
        held.map((c) => [c.cert_fingerprint, c.attempts, formatTime(c.first_held_at), formatTime(c.last_held_at)]),
      ),
    );
  }
  if (!values.show) {
    ctx.err(
      held.length > 1
        ? "orchard: more than one certificate is held: approve the device's own with --fingerprint <SHA-256> (compare it on the device)\n"
        : "orchard: nothing approved: approve a certificate with --fingerprint <SHA-256>, after comparing it with the device's\n",
    );
    return 1;
  }
  return 0;
}

async function remove(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  if (positionals.length !== 1) throw new UsageError("give one device or user channel id");
  const id = positionals[0]!;
  const client = connect(values, ctx);
  const res = await client.request("DELETE", `/v1/enrollments/${encodeURIComponent(id)}`);
  if (res.status === 404) throw new CliError(`no device or channel ${printable(id)}`);
  const r = expectOk<EnrollmentRemoved>(res);
  if (values.json) {
    printJson(ctx, r);
    return 0;
  }
  const what = r.device ? `device ${printable(id)}` : `user channel ${printable(id)}`;
  const n = r.discarded_commands.length;
  ctx.out(
    `removed ${what}: ${r.channels.length} channel${r.channels.length === 1 ? "" : "s"}, ${n} queued command${n === 1 ? "" : "s"} discarded\n`,
  );
  return 0;
}

/** `last_seen_at` -> `last seen at`. */
function label(key: string): string {
  return key.replaceAll("_", " ");
}

function show(key: string, v: unknown): Cell {
  if (key.endsWith("_at") && typeof v === "string") return formatTime(v);
  if (v === null || v === undefined || typeof v === "string" || typeof v === "number" || typeof v === "boolean") return v;
  return JSON.stringify(v);
}
