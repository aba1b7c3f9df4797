import type { PlistDict } from "../plist/index.ts";
import { BadRequest } from "../errors.ts";
import { resolveChannel, type Channel } from "./enrollment.ts";

export const REPORT_STATUSES = ["Idle", "Acknowledged", "Error", "CommandFormatError", "NotNow"] as const;
export type ReportStatus = (typeof REPORT_STATUSES)[number];

/** A command poll: Idle, or the result of the previous command (brief 6.2). */
export interface CommandReport {
  status: ReportStatus;
  /** Present for every status but Idle. */
  commandUuid?: string;
  channel: Channel;
  body: PlistDict;
  raw: Buffer;
}

export function decodeReport(body: PlistDict, raw: Buffer): CommandReport {
  const status = body.Status;
  if (typeof status !== "string") throw new BadRequest("command report has no Status");
  if (!(REPORT_STATUSES as readonly string[]).includes(status)) {
    throw new BadRequest(`unknown Status ${JSON.stringify(status.slice(0, 64))}`);
  }
  const channel = resolveChannel(body);
  if (status === "Idle") return { status, channel, body, raw };
  const commandUuid = body.CommandUUID;
  if (typeof commandUuid !== "string" || commandUuid.length === 0) {
    throw new BadRequest(`${status} report without CommandUUID`);
  }
  if (commandUuid.length > 128) throw new BadRequest("CommandUUID is longer than 128 characters");
  return { status: status as ReportStatus, commandUuid, channel, body, raw };
}
