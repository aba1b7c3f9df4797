// Await configuration for ADE devices. A device enrolled with a DEP profile
// that has await_device_configured sends TokenUpdate with AwaitingConfiguration
// and stays in Setup Assistant until the server sends DeviceConfigured. Orchard
// then queues its ABM server's initial set (the operator's commands, each with
// a CommandUUID of its own, and DDM sets assigned), follows each command's
// result, and queues DeviceConfigured once every one has a result. A failed
// step is an event; whether it still releases the device is the settings'
// release_on_failure (default true). Every step is a store row written in the
// transaction of the message that caused it: durable across restarts, one
// process at a time (conditional updates on the state).
import { randomUUID } from "node:crypto";
import { Conflict, NotFound } from "../errors.ts";
import { parsePlistDict, serializePlist } from "../plist/index.ts";
import type { AdeEnrollmentState } from "../store/ade-enrollments.ts";
import type { ResultStatus } from "../store/commands.ts";
import type { Store } from "../store/index.ts";
import type { Pusher } from "./push.ts";
import type { Log } from "./service.ts";

/** The operator's initial set of an ABM server (ade/settings.ts reads it from the server's settings). */
export interface InitialSet {
  commands: string[];
  ddmSets: string[];
  releaseOnFailure: boolean;
}

/** Every CommandUUID Orchard makes for ADE starts so: reports of other commands cost nothing here. */
export const ADE_COMMAND_PREFIX = "ade-";
const STEP_PREFIX = "ade-step-";
const CONFIGURED_PREFIX = "ade-configured-";

export interface AdeSetupOptions {
  /** The initial set in a server's stored enrollment settings (null: none). */
  initialSet(settingsJson: string | null): InitialSet;
  /** Wakes a device whose initial set was queued. */
  pusher?: Pusher;
}

export class AdeSetup {
  constructor(private readonly o: AdeSetupOptions) {}

  /** True for the CommandUUIDs of initial steps and DeviceConfigured. */
  wants(commandUuid: string | undefined): boolean {
    return commandUuid?.startsWith(ADE_COMMAND_PREFIX) === true;
  }

  /**
   * A device channel's TokenUpdate with AwaitingConfiguration, inside its
   * transaction: the initial set is queued unless it already runs. A device
   * ABM does not assign (or that Orchard's inventory does not know yet) gets
   * DeviceConfigured at once rather than waiting in Setup Assistant forever.
   * Returns true when commands were queued (the caller pushes once committed).
   */
  async awaiting(tx: Store, log: Log, deviceId: string, now: number): Promise<boolean> {
    let row = await tx.adeEnrollments.byUdid(deviceId);
    if (!row) {
      const serial = await tx.adeEnrollments.deviceSerial(deviceId);
      const server = serial === undefined ? undefined : await tx.ade.assignedServer(serial);
      if (serial === undefined || server === undefined) {
        await tx.commands.enqueue(deviceConfigured(), [deviceId], now);
        log.warn(
          { enrollmentId: deviceId, serialNumber: serial },
          "AwaitingConfiguration from a device no ABM server assigns to Orchard: DeviceConfigured sent at once",
        );
        return true;
      }
      await tx.adeEnrollments.served({ serialNumber: serial, serverName: server, udid: deviceId }, now);
      row = (await tx.adeEnrollments.get(serial))!;
    }
    if (row.state === "running" || row.state === "releasing") return false;
    const server = await tx.ade.server(row.serverName);
    const set = this.o.initialSet(server?.enrollmentSettings ?? null);
    const steps = set.commands.map((plist) => withUuid(plist, STEP_PREFIX + randomUUID()));
    const configured = steps.length === 0 ? deviceConfigured() : undefined;
    const started = await tx.adeEnrollments.start(
      row.serialNumber,
      {
        steps: steps.map((s) => s.commandUuid),
        releaseOnFailure: set.releaseOnFailure,
        configuredCommand: configured?.commandUuid ?? null,
      },
      now,
    );
    if (!started) return false;
    for (const step of steps) await tx.commands.enqueue(step, [deviceId], now);
    for (const name of set.ddmSets) await tx.ddm.assign(deviceId, name, { now, syncDueAt: now });
    if (configured) await tx.commands.enqueue(configured, [deviceId], now);
    const detail = { server: row.serverName, serial_number: row.serialNumber, steps: steps.length, ddm_sets: set.ddmSets };
    await tx.events.add({ type: "ade.configuration_started", enrollmentId: deviceId, detail }, now);
    if (configured) {
      await tx.events.add(
        {
          type: "ade.device_released",
          enrollmentId: deviceId,
          detail: { serial_number: row.serialNumber, steps_failed: 0, by: "orchard" },
        },
        now,
      );
    }
    log.info({ enrollmentId: deviceId, ...detail }, "ADE device awaiting configuration: initial set queued");
    return true;
  }

  /**
   * A device's Authenticate, inside its transaction: it enrolls again, its
   * queue is discarded, so an initial set under way starts over at its next
   * AwaitingConfiguration (the enrollment URL never resets one: anyone may
   * post a MachineInfo there).
   */
  async authenticated(tx: Store, log: Log, deviceId: string, now: number): Promise<void> {
    if (await tx.adeEnrollments.restart(deviceId, now)) {
      log.info({ enrollmentId: deviceId }, "ADE device enrolls again: its initial set starts over at its next AwaitingConfiguration");
    }
  }

  /** After the TokenUpdate committed: wake the device for its initial set (best effort). */
  wake(deviceId: string, log: Log): void {
    this.o.pusher?.push([deviceId], { trigger: "ade" }).catch((err: unknown) => {
      log.warn({ enrollmentId: deviceId, err: (err as Error).message }, "push for the ADE initial set failed");
    });
  }

  /**
   * A result of an ADE command, inside the transaction that records it:
   * counts an initial step (and records a failed one), queues DeviceConfigured
   * after the last, or marks the device configured when DeviceConfigured is
   * acknowledged.
   */
  async result(tx: Store, log: Log, deviceId: string, commandUuid: string, status: ResultStatus, now: number): Promise<void> {
    if (status === "NotNow") return;
    const row = await tx.adeEnrollments.byUdid(deviceId);
    if (!row) return;
    const serial = row.serialNumber;
    if (commandUuid === row.configuredCommand) {
      if (status === "Acknowledged") {
        if (await tx.adeEnrollments.configured(serial, commandUuid, now)) {
          await tx.events.add({ type: "ade.device_configured", enrollmentId: deviceId, detail: { serial_number: serial } }, now);
          log.info({ enrollmentId: deviceId, serialNumber: serial }, "ADE device configured: it leaves Setup Assistant's waiting screen");
        }
      } else if (await tx.adeEnrollments.fail(serial, `DeviceConfigured answered ${status}`, "releasing", now)) {
        await tx.events.add(
          {
            type: "ade.configuration_failed",
            enrollmentId: deviceId,
            detail: { serial_number: serial, reason: `DeviceConfigured answered ${status}`, steps_failed: row.stepsFailed },
          },
          now,
        );
        log.warn({ enrollmentId: deviceId, serialNumber: serial, status }, "the device refused DeviceConfigured");
      }
      return;
    }
    const index = row.steps.indexOf(commandUuid);
    if (index < 0) return;
    const failed = status !== "Acknowledged";
    const counts = await tx.adeEnrollments.stepDone(serial, failed, now);
    if (!counts) return;
    if (failed) {
      const requestType = (await tx.commands.command(commandUuid))?.requestType ?? "unknown";
      const detail = {
        serial_number: serial,
        step: index + 1,
        of: counts.stepTotal,
        command_uuid: commandUuid,
        request_type: requestType,
        status,
      };
      await tx.events.add({ type: "ade.configuration_step_failed", enrollmentId: deviceId, detail }, now);
      log.warn({ enrollmentId: deviceId, ...detail }, "an ADE initial command failed");
    }
    if (counts.stepsDone < counts.stepTotal) return;
    if (counts.stepsFailed > 0 && !counts.releaseOnFailure) {
      const reason = `${counts.stepsFailed} of ${counts.stepTotal} initial commands failed; release_on_failure is false`;
      if (await tx.adeEnrollments.fail(serial, reason, "running", now)) {
        await tx.events.add(
          {
            type: "ade.configuration_failed",
            enrollmentId: deviceId,
            detail: { serial_number: serial, reason, steps_failed: counts.stepsFailed },
          },
          now,
        );
        log.warn(
          { enrollmentId: deviceId, serialNumber: serial, reason },
          "ADE device held in Setup Assistant: release it with orchard ade release",
        );
      }
      return;
    }
    await this.queueRelease(tx, deviceId, serial, ["running"], counts.stepsFailed, "orchard", now);
  }

  /**
   * An operator releases a device: DeviceConfigured is queued now, whatever
   * of its initial set is left (from running, failed or profile_served).
   */
  async release(store: Store, serial: string, now: number): Promise<void> {
    const row = await store.adeEnrollments.get(serial);
    if (!row) throw new NotFound(`no ADE device ${serial} reached the enrollment URL`);
    // Its profile was served, but it never enrolled: no queue to put DeviceConfigured in (a 500 before, walkthrough).
    if (!(await store.enrollments.get(row.udid))) {
      throw new Conflict(
        `ADE device ${serial} has not enrolled yet (its profile was served): nothing to release; its initial set runs when it enrolls`,
        "ade_release_refused",
      );
    }
    const done = await store.transaction(async (tx) =>
      this.queueRelease(tx, row.udid, serial, ["running", "failed", "profile_served"], row.stepsFailed, "operator", now),
    );
    if (!done) throw new Conflict(`ADE device ${serial} is ${row.state}: nothing to release`, "ade_release_refused");
    this.o.pusher?.push([row.udid], { trigger: "ade" }).catch(() => {});
  }

  private async queueRelease(
    tx: Store,
    deviceId: string,
    serial: string,
    from: readonly AdeEnrollmentState[],
    stepsFailed: number,
    by: "orchard" | "operator",
    now: number,
  ): Promise<boolean> {
    const configured = deviceConfigured();
    if (!(await tx.adeEnrollments.release(serial, configured.commandUuid, from, now))) return false;
    await tx.commands.enqueue(configured, [deviceId], now);
    await tx.events.add(
      { type: "ade.device_released", enrollmentId: deviceId, detail: { serial_number: serial, steps_failed: stepsFailed, by } },
      now,
    );
    return true;
  }
}

function deviceConfigured(): { commandUuid: string; requestType: string; command: Buffer } {
  const commandUuid = CONFIGURED_PREFIX + randomUUID();
  return {
    commandUuid,
    requestType: "DeviceConfigured",
    command: Buffer.from(serializePlist({ Command: { RequestType: "DeviceConfigured" }, CommandUUID: commandUuid })),
  };
}

/** The operator's command plist (checked when stored) with a CommandUUID of this device's own. */
function withUuid(plist: string, commandUuid: string): { commandUuid: string; requestType: string; command: Buffer } {
  const dict = parsePlistDict(Buffer.from(plist));
  const requestType = String((dict.Command as Record<string, unknown>).RequestType);
  return { commandUuid, requestType, command: Buffer.from(serializePlist({ ...dict, CommandUUID: commandUuid })) };
}
