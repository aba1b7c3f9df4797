// Asking an update policy's device for its time zone: a deadline is judged
// on the device's own clock once its zone is known, else in UTC-12, up to 26
// hours late (targets.ts deadlineAt). A device that can answer
// DeviceInformation's TimeZone gets one, queued like any command (it shows
// in its queue and command history), and its answer reaches the inventory
// the usual way (core/inventory.ts), which re-targets it in its zone.
import { randomUUID } from "node:crypto";
import { deviceInformationCommand } from "../core/inventory.ts";
import type { Pusher } from "../core/push.ts";
import type { Store } from "../store/index.ts";
import { compareVersions } from "./versions.ts";

/** The CommandUUID prefix of Orchard's own time zone queries (its command history tells them from an operator's). */
export const ZONE_ASK_COMMAND_PREFIX = "update-zone-";
/** A device asked less than this long ago is not asked again for a new target: that ask is still waiting, or was just answered. */
export const ZONE_ASK_COVERS_MS = 86_400_000;
/** Devices per command and transaction (one commands row, a queue row each). */
const ZONE_ASK_BATCH = 5000;

/** The platforms whose DeviceInformation knows TimeZone, from these OS versions (Apple's documentation; macOS never does). */
const ANSWERS_TIME_ZONE: Readonly<Record<string, string>> = { iOS: "14", iPadOS: "14", tvOS: "14", visionOS: "2" };

/** True when a device of this platform and OS version (null: not known) can tell its time zone. */
export function answersTimeZone(platform: string, osVersion: string | null): boolean {
  const since = ANSWERS_TIME_ZONE[platform];
  return since !== undefined && (osVersion === null || compareVersions(osVersion, since) >= 0);
}

/**
 * Queues a DeviceInformation asking for TimeZone for those of these devices
 * not asked yet (update_devices.zone_asked_at, marked in the transaction
 * that queues: each is asked once, by one process), and pushes them. How
 * many were asked.
 */
export async function askZones(
  store: Store,
  pusher: Pusher,
  log: { warn(obj: object, msg?: string): void },
  enrollmentIds: readonly string[],
  now: number,
): Promise<number> {
  let asked = 0;
  for (let i = 0; i < enrollmentIds.length; i += ZONE_ASK_BATCH) {
    const batch = enrollmentIds.slice(i, i + ZONE_ASK_BATCH);
    const marked = await store.transaction(async (tx) => {
      const marked = await tx.softwareUpdates.markZoneAsked(batch, now);
      if (marked.length === 0) return marked;
      const commandUuid = `${ZONE_ASK_COMMAND_PREFIX}${randomUUID().toUpperCase()}`;
      await tx.commands.enqueue(deviceInformationCommand(commandUuid, ["TimeZone"]), marked, now);
      return marked;
    });
    // The commands are queued: a push lost here is made good by the push sweep (push/sweep.ts), as for any queued command.
    if (marked.length > 0) {
      await pusher.push(marked, { trigger: "updates" }).catch((err: unknown) => log.warn({ err }, "time zone query push failed"));
    }
    asked += marked.length;
  }
  return asked;
}
