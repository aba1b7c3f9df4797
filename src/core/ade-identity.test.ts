// The serial-bound identity's refusals: 403 every time, an event for the first of a serial, certificate and reason, then at most one per interval.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Forbidden } from "../errors.ts";
import type { CheckinMessage } from "../protocol/checkin.ts";
import type { Store } from "../store/index.ts";
import { AdeIdentity, IDENTITY_REFUSED_EVENT_INTERVAL_MS } from "./ade-identity.ts";
import type { MdmRequest, MdmService } from "./service.ts";

const SERIAL = "C02ADE000001";

function rig() {
  const events: Array<{ type: string; enrollmentId?: string; detail: Record<string, unknown>; at: number }> = [];
  const store = {
    // The serial is one ABM assigns to Orchard; the certificates were not issued for it.
    ade: { assignedServer: async (serial: string) => (serial === SERIAL ? "main" : undefined) },
    adeEnrollments: { serialOfDevice: async () => undefined },
    // fp-bound was issued for another ADE serial; the others through no ADE enrollment.
    scep: { certificateByFingerprint: async (fp: string) => (fp === "fp-bound" ? { adeSerial: "C02ADE000002" } : undefined) },
    events: {
      add: async (e: { type: string; enrollmentId?: string; detail: Record<string, unknown> }, at: number) =>
        void events.push({ ...e, at }),
    },
  } as unknown as Store;
  const next = { checkIn: async () => ({ kind: "empty" }) } as unknown as MdmService;
  const identity = new AdeIdentity(next, store);
  const log = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };
  const authenticate = (fingerprint: string, udid: string, now: number, serialNumber = SERIAL) =>
    identity.checkIn(
      { certFingerprint: fingerprint, method: "PUT", log, now } as unknown as MdmRequest,
      {
        messageType: "Authenticate",
        serialNumber,
        channel: { id: udid, deviceId: udid, type: "Device", isUserChannel: false },
      } as unknown as CheckinMessage,
    );
  return { events, authenticate };
}

test("every refusal is 403; the events: the first of each certificate, then one per interval with the count since", async () => {
  const { events, authenticate } = rig();
  const t0 = 1_000_000;
  for (let i = 0; i < 5; i++) await assert.rejects(authenticate("fp-intruder", `UDID-${i}`, t0 + i), Forbidden);
  await assert.rejects(authenticate("fp-other", "UDID-X", t0 + 10), Forbidden);
  assert.deepEqual(
    events.map((e) => [e.type, e.detail.fingerprint, e.detail.repeated, e.enrollmentId]),
    [
      ["ade.identity_refused", "fp-intruder", 0, "UDID-0"],
      ["ade.identity_refused", "fp-other", 0, "UDID-X"],
    ],
  );
  // Past the interval, the next refusal records one, with the 4 that made none.
  await assert.rejects(authenticate("fp-intruder", "UDID-9", t0 + IDENTITY_REFUSED_EVENT_INTERVAL_MS - 1), Forbidden);
  assert.equal(events.length, 2);
  await assert.rejects(authenticate("fp-intruder", "UDID-9", t0 + IDENTITY_REFUSED_EVENT_INTERVAL_MS + 1), Forbidden);
  assert.deepEqual([events.at(-1)?.detail.serial_number, events.at(-1)?.detail.repeated], [SERIAL, 5]);
});

test("one certificate claiming many serial numbers makes one event a window, and says a long one cut short", async () => {
  const { events, authenticate } = rig();
  const t0 = 1_000_000;
  for (let i = 0; i < 100; i++)
    await assert.rejects(authenticate("fp-bound", "UDID-B", t0 + i, `SERIAL-${i}-${"x".repeat(i * 10)}`), Forbidden);
  assert.equal(events.length, 1);
  assert.equal(events[0]?.detail.serial_number, "SERIAL-0-");
  await assert.rejects(authenticate("fp-bound", "UDID-B", t0 + IDENTITY_REFUSED_EVENT_INTERVAL_MS, `S${"y".repeat(10_000)}`), Forbidden);
  assert.equal(events.length, 2);
  assert.deepEqual([events[1]?.detail.serial_number, events[1]?.detail.repeated], [`S${"y".repeat(63)}...`, 99]);
});

test("two Authenticates for one serial at once: the second is checked after the first enrolled, and refused", async () => {
  const enrolled = new Map<string, string>(); // device id -> serial, as the devices table holds it
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const store = {
    ade: { assignedServer: async () => "main" },
    adeEnrollments: { serialOfDevice: async () => undefined },
    scep: { certificateByFingerprint: async () => ({ adeSerial: SERIAL }) },
    enrollments: {
      otherDeviceWithSerial: async (serial: string, deviceId: string) =>
        [...enrolled].find(([id, s]) => s === serial && id !== deviceId)?.[0],
    },
    events: { add: async () => {} },
  } as unknown as Store;
  // The enrollment takes a while (a transaction): both checks would run before it without one at a time.
  const next = {
    checkIn: async (_req: MdmRequest, msg: CheckinMessage) => {
      await gate;
      enrolled.set(msg.channel.deviceId, SERIAL);
      return { kind: "empty" };
    },
  } as unknown as MdmService;
  const identity = new AdeIdentity(next, store);
  const log = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };
  const authenticate = (udid: string) =>
    identity.checkIn(
      { certFingerprint: `fp-${udid}`, method: "PUT", log, now: 1 } as unknown as MdmRequest,
      {
        messageType: "Authenticate",
        serialNumber: SERIAL,
        channel: { id: udid, deviceId: udid, type: "Device", isUserChannel: false },
      } as unknown as CheckinMessage,
    );
  const first = authenticate("UDID-A");
  const second = authenticate("UDID-B");
  setTimeout(release, 20);
  const outcomes = await Promise.allSettled([first, second]);
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ["fulfilled", "rejected"],
  );
  assert.ok((outcomes[1] as PromiseRejectedResult).reason instanceof Forbidden);
  assert.deepEqual([...enrolled.keys()], ["UDID-A"]);
});
