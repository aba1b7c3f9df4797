import { adeCommand } from "./ade.ts";
import { COMMON_USAGE, type ClientCommand } from "./command.ts";
import { commandCommand } from "./command-status.ts";
import { ddmCommand } from "./ddm.ts";
import { enqueueCommand } from "./enqueue.ts";
import { enrollmentCommand, enrollmentsCommand } from "./enrollments.ts";
import { eventsCommand } from "./events.ts";
import { auditCommand, operatorsCommand, tokensCommand } from "./operators.ts";
import { pushCommand } from "./push.ts";
import { profileCommand } from "./profile.ts";
import { pushcertCommand } from "./pushcert.ts";
import { queueCommand } from "./queue.ts";
import { scepCommand } from "./scep.ts";
import { simulateCommand } from "./simulate.ts";
import { userSessionsCommand, usersCommand } from "./users.ts";
import { webhookCommand } from "./webhook.ts";

/** Every client command, in the order `orchard help` lists them. Add new ones here. */
export const CLIENT_COMMANDS: readonly ClientCommand[] = [
  enqueueCommand,
  pushCommand,
  pushcertCommand,
  profileCommand,
  scepCommand,
  adeCommand,
  enrollmentsCommand,
  enrollmentCommand,
  queueCommand,
  commandCommand,
  eventsCommand,
  webhookCommand,
  usersCommand,
  userSessionsCommand,
  ddmCommand,
  operatorsCommand,
  tokensCommand,
  auditCommand,
  simulateCommand,
];

export function findCommand(name: string): ClientCommand | undefined {
  return CLIENT_COMMANDS.find((c) => c.name === name);
}

/** The usage lines of one command, each form prefixed with `orchard ` (short: the forms only). */
export function commandUsage(c: ClientCommand, o: { short?: boolean } = {}): string[] {
  const lines = o.short ? c.usage.filter((line) => !line.startsWith(" ")) : c.usage;
  return lines.map((line) => (line.startsWith(" ") ? line : `orchard ${line} ${COMMON_USAGE}`));
}

/** `usage: ` and the lines, the following ones indented under the first. */
export function usageBlock(lines: string[]): string {
  return lines.map((line, i) => (i === 0 ? "usage: " : "       ") + line + "\n").join("");
}

/** Every client command's forms, without the common flags, for `orchard help`. */
export function clientUsage(): string {
  return CLIENT_COMMANDS.flatMap((c) => c.usage)
    .map((line) => `  ${line.startsWith(" ") ? "  " : "orchard "}${line}\n`)
    .join("");
}
