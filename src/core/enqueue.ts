import { randomUUID } from "node:crypto";
import { REQUEST_TYPES, SCHEMA_SOURCE } from "../declarations/index.ts";
import { BadRequest } from "../errors.ts";
import { parsePlistDict, PlistError, serializePlist, type PlistDict } from "../plist/index.ts";
import type { NewCommand } from "../store/commands.ts";
import type { Store } from "../store/index.ts";
import type { Pusher } from "./push.ts";

/** Per-id outcome, in NanoMDM's APIResult shape. */
export interface EnrollmentResult {
  push_result?: string;
  push_error?: string;
  command_error?: string;
}

export interface ApiResult {
  status?: Record<string, EnrollmentResult>;
  no_push?: boolean;
  push_error?: string;
  command_error?: string;
  command_uuid?: string;
  request_type?: string;
  /** A push to all: how many were pushed and not (status then lists only failures, the first MAX_LISTED_FAILURES). */
  pushed?: number;
  failed?: number;
  truncated?: boolean;
}

/** A RequestType or CommandUUID. */
const NAME_RE = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Reads an operator's command plist: it needs Command.RequestType; a missing
 * CommandUUID is generated (then the plist is re-serialized with it).
 */
export function prepareCommand(raw: Buffer): NewCommand {
  let dict: PlistDict;
  try {
    dict = parsePlistDict(raw);
  } catch (err) {
    if (err instanceof PlistError) throw new BadRequest(`command is not a valid plist: ${err.message}`, "invalid_command");
    throw err;
  }
  const command = dict.Command;
  if (typeof command !== "object" || command === null || Array.isArray(command) || Buffer.isBuffer(command) || command instanceof Date) {
    throw new BadRequest("command plist has no Command dict", "invalid_command");
  }
  const requestType = (command as PlistDict).RequestType;
  if (typeof requestType !== "string" || requestType.length === 0) throw new BadRequest("Command has no RequestType", "invalid_command");
  // Apple's are short words (DeviceInformation); this one goes into listings, events, webhooks and log lines.
  if (!NAME_RE.test(requestType)) {
    throw new BadRequest("RequestType must be 1 to 128 letters, digits, '.', '_' or '-'", "invalid_command");
  }
  const uuid = dict.CommandUUID;
  if (uuid === undefined) {
    const commandUuid = randomUUID().toUpperCase();
    return { commandUuid, requestType, command: Buffer.from(serializePlist({ ...dict, CommandUUID: commandUuid })) };
  }
  // Not only dots: "." and ".." would not survive in a URL path (GET /v1/commands/..).
  if (typeof uuid !== "string" || !NAME_RE.test(uuid) || /^\.+$/.test(uuid)) {
    throw new BadRequest("CommandUUID must be 1 to 128 letters, digits, '.', '_' or '-', not only dots", "invalid_command");
  }
  return { commandUuid: uuid, requestType, command: raw };
}

/**
 * Queues a command for the ids that name known channels and pushes them
 * unless noPush. The status follows NanoMDM: 200 all well, 207 some ids
 * failed, 500 all failed; except that when no id names a known channel
 * nothing is queued and the answer is 404.
 */
export async function enqueueCommand(
  store: Store,
  pusher: Pusher,
  ids: readonly string[],
  raw: Buffer,
  noPush: boolean,
  now: number,
): Promise<{ status: number; result: ApiResult; warnings: string[] }> {
  const cmd = prepareCommand(raw);
  const warnings = requestTypeWarnings(cmd.requestType);
  const known = await store.enrollments.existing(ids);
  const targets = ids.filter((id) => known.has(id));
  const result: ApiResult = { command_uuid: cmd.commandUuid, request_type: cmd.requestType, status: statusMap() };
  for (const id of ids) if (!known.has(id)) result.status![id] = { command_error: "unknown enrollment" };
  if (targets.length === 0) return { status: 404, result, warnings };
  await store.commands.enqueue(cmd, targets, now);
  if (noPush) result.no_push = true;
  else await pushInto(pusher, targets, result, "enqueue");
  return { status: apiStatus(result, ids.length), result, warnings };
}

/**
 * A RequestType Apple's schema does not know is most often a typo (the device
 * answers it with an error); it is queued all the same, as the schema lags
 * Apple's newest commands. The warning's form is the orchard-warning header's:
 * `at` names where the command was given (ADE's `initial_commands[2]: `),
 * `outcome` what is done with it all the same and what follows.
 */
export function requestTypeWarnings(requestType: string, o: { at?: string; outcome?: string } = {}): string[] {
  if (REQUEST_TYPES.includes(requestType)) return [];
  const outcome = o.outcome ?? "queued all the same: a device that does not know it answers with an error";
  return [
    `${o.at ?? ""}RequestType ${JSON.stringify(requestType)}: not a command Apple's schema knows (${SCHEMA_SOURCE.release}); ${outcome}`,
  ];
}

/** Pushes ids and records each outcome in the result. */
export async function pushInto(pusher: Pusher, ids: readonly string[], result: ApiResult, trigger = "api"): Promise<void> {
  const outcomes = await pusher.push(ids, { trigger });
  result.status ??= statusMap();
  for (const id of ids) {
    const o = outcomes.get(id);
    const entry = (result.status[id] ??= {});
    if (o?.pushId) entry.push_result = o.pushId;
    else entry.push_error = o?.error ?? "not pushed";
  }
}

/**
 * The per-id results, keyed by ids the client chose: without a prototype, so
 * that an id "__proto__" or "constructor" is an entry like any other rather
 * than Object.prototype (which `??= {}` would then write into, for every
 * object in the process).
 */
export function statusMap(): Record<string, EnrollmentResult> {
  return Object.create(null) as Record<string, EnrollmentResult>;
}

export function apiStatus(result: ApiResult, idCount: number): number {
  if (result.push_error || result.command_error) return 500;
  const failed = Object.values(result.status ?? {}).filter((r) => r.push_error || r.command_error).length;
  if (failed === 0) return 200;
  return failed < idCount ? 207 : 500;
}
