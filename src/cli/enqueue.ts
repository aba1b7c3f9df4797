import type { EnqueueResult, IdResult } from "../http/wire.ts";
import { serializePlist, type PlistDict, type PlistValue } from "../plist/index.ts";
import { ApiError, errorCode, errorReason } from "./api-client.ts";
import {
  checkIds,
  CliError,
  connect,
  parseCommand,
  readFileArg,
  printJson,
  UsageError,
  type CliContext,
  type ClientCommand,
  printWarnings,
} from "./command.ts";
import { formatTable, printable } from "./table.ts";

/** What `DeviceInformation` asks for when no --param is given. */
export const DEFAULT_DEVICE_QUERIES = [
  "DeviceName",
  "OSVersion",
  "BuildVersion",
  "ModelName",
  "Model",
  "ProductName",
  "SerialNumber",
  "UDID",
  // Where OS update deadlines are judged (iOS, iPadOS, tvOS; a Mac leaves it out).
  "TimeZone",
];

export const enqueueCommand: ClientCommand = {
  name: "enqueue",
  summary: "queue a command for enrollments and push them",
  usage: [
    `enqueue <id...> (--file cmd.plist | --type RequestType [--param Key=Value ...]) [--nopush]`,
    "  --file - reads the plist from stdin; --param values true/false are booleans, whole numbers integers,",
    "  else strings; a key given twice makes an array. Exit 0: all ids queued (and pushed), 3: some failed",
    "  (HTTP 207), 1: none queued or all failed",
  ],
  async run(args, ctx) {
    const { values, positionals } = parseEnqueue(args);
    const ids = checkIds(positionals);
    const body = await commandBody(values, ctx);
    const client = connect(values, ctx);
    // The ids in the body: a path holds only about 1,500 of them (the header cap, app.ts).
    const res = await client.request("POST", "/v1/enqueue", {
      query: { nopush: values.nopush ? "1" : undefined },
      body: Buffer.from(JSON.stringify({ ids, command_base64: body.toString("base64") })),
      contentType: "application/json",
    });
    const result = res.json as EnqueueResult | undefined;
    if (!result || typeof result !== "object" || !result.command_uuid) throw new ApiError(errorReason(res), res.status, errorCode(res));
    // A RequestType Apple's schema does not know (a typo): queued all the same, and said.
    printWarnings(ctx, res);

    if (values.json) printJson(ctx, result);
    else ctx.out(describe(ids, result));
    if (res.status === 200) return 0;
    if (res.status === 207) {
      ctx.err(`orchard: the command failed for some ids (HTTP 207)\n`);
      return 3;
    }
    ctx.err(`orchard: ${res.status === 404 ? "no such enrollment: nothing was queued" : failure(res.status, result)}\n`);
    return 1;
  },
};

function parseEnqueue(args: string[]) {
  return parseCommand(args, {
    file: { type: "string" },
    type: { type: "string" },
    param: { type: "string", multiple: true },
    nopush: { type: "boolean", default: false },
  });
}

async function commandBody(values: { file?: string; type?: string; param?: string[] }, ctx: CliContext): Promise<Buffer> {
  if ((values.file === undefined) === (values.type === undefined)) throw new UsageError("give either --file or --type");
  if (values.file !== undefined) {
    if (values.param?.length) throw new UsageError("--param goes with --type, not --file");
    const body = await readFileArg(values.file, ctx);
    if (body.length === 0) throw new CliError(`${values.file === "-" ? "stdin" : values.file} is empty`);
    return body;
  }
  return Buffer.from(buildCommandPlist(values.type!, values.param ?? []));
}

/** `{ Command: { RequestType, ...params } }`; the server adds the CommandUUID. */
export function buildCommandPlist(requestType: string, params: string[]): string {
  if (!/^[A-Za-z0-9._-]+$/.test(requestType)) throw new UsageError(`--type ${JSON.stringify(requestType)} is not a RequestType`);
  const command: PlistDict = { RequestType: requestType };
  for (const p of params) {
    const eq = p.indexOf("=");
    if (eq <= 0) throw new UsageError(`--param ${JSON.stringify(p)} is not Key=Value`);
    const key = p.slice(0, eq);
    if (key === "RequestType") throw new UsageError("set RequestType with --type");
    // Assigning "__proto__" would set the object's prototype, not a key a plist can carry.
    if (key === "__proto__") throw new UsageError("--param __proto__ is not a key a command can carry");
    const value = paramValue(p.slice(eq + 1));
    // Own keys only: "constructor" or "toString" are keys like any other here.
    const prev = Object.hasOwn(command, key) ? command[key] : undefined;
    command[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  if (requestType === "DeviceInformation" && params.length === 0) command.Queries = [...DEFAULT_DEVICE_QUERIES];
  try {
    return serializePlist({ Command: command });
  } catch (err) {
    if (err instanceof TypeError) throw new UsageError(`--param: ${err.message}`);
    throw err;
  }
}

export function paramValue(v: string): PlistValue {
  if (v === "true") return true;
  if (v === "false") return false;
  if (/^-?(0|[1-9][0-9]*)$/.test(v)) {
    const n = BigInt(v);
    return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
  }
  return v;
}

/** The command UUID then one line per id, in the order given. */
function describe(ids: string[], r: EnqueueResult): string {
  let text = `command ${r.command_uuid} (${printable(r.request_type ?? "?")})\n`;
  if (r.command_error) text += `command error: ${printable(r.command_error)}\n`;
  if (r.push_error) text += `push error: ${printable(r.push_error)}\n`;
  const listed = new Set(ids);
  const all = [...ids, ...Object.keys(r.status ?? {}).filter((id) => !listed.has(id))];
  return (
    text +
    formatTable(
      ["ENROLLMENT", "RESULT"],
      all.map((id) => [id, outcome(ownEntry(r.status, id), r.no_push === true)]),
    )
  );
}

/** The result for one id: an own entry only (an id "constructor" must not read Object's). */
export function ownEntry(status: EnqueueResult["status"], id: string): IdResult | undefined {
  return status !== undefined && Object.hasOwn(status, id) ? status[id] : undefined;
}

function outcome(s: IdResult | undefined, noPush: boolean): string {
  if (s?.command_error) return `not queued: ${s.command_error}`;
  if (s?.push_error) return `queued, push failed: ${s.push_error}`;
  if (s?.push_result) return `queued, pushed (apns-id ${s.push_result})`;
  return noPush ? "queued, not pushed" : "queued";
}

function failure(status: number, r: EnqueueResult): string {
  const reason = r.command_error ?? r.push_error;
  if (reason) return reason;
  const results = Object.values(r.status ?? {});
  if (results.length > 0 && results.every((s) => s.push_error && !s.command_error)) {
    return `no push was sent (HTTP ${status}); the command stays queued until the devices check in`;
  }
  return `the command failed for every id (HTTP ${status})`;
}
