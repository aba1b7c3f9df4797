// The AuthToken guard's refusals: 403 every time, an event for the first of a channel and reason and then at most one per interval.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Forbidden } from "../errors.ts";
import type { CheckinMessage } from "../protocol/checkin.ts";
import type { Store } from "../store/index.ts";
import { AuthTokenGuard, REFUSED_EVENT_INTERVAL_MS } from "./auth-token-guard.ts";
import { hashAuthToken } from "./auth-token.ts";
import type { Coalescer } from "./coalesce.ts";
import type { MdmRequest, MdmService } from "./service.ts";

const channel = { id: "MAC-1:USER-1", deviceId: "MAC-1", type: "User" as const, userId: "USER-1", isUserChannel: true };

function rig(state = "authenticated") {
  const events: Array<{ type: string; enrollmentId?: string; detail: unknown; at: number }> = [];
  const store = {
    userSessions: { get: async () => ({ state, tokenHash: state === "authenticated" ? hashAuthToken("the-token") : null }) },
    events: { add: async (e: { type: string; enrollmentId?: string; detail: unknown }, at: number) => void events.push({ ...e, at }) },
  } as unknown as Store;
  const next = { checkIn: async () => ({ kind: "empty" }) } as unknown as MdmService;
  const tokenUse = { mark: () => {} } as unknown as Coalescer;
  const guard = new AuthTokenGuard(next, store, tokenUse);
  const log = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };
  const send = (authToken: string | undefined, now: number) =>
    guard.checkIn(
      { certFingerprint: "f", method: "PUT", log, now } as unknown as MdmRequest,
      {
        messageType: "DeclarativeManagement",
        channel,
        authToken,
      } as unknown as CheckinMessage,
    );
  return { events, send };
}

test("every refusal is 403; the events: the first of each reason, then one per interval with the count since", async () => {
  const { events, send } = rig();
  const t0 = 1_000_000;
  for (let i = 0; i < 5; i++) await assert.rejects(send("wrong", t0 + i), Forbidden);
  await assert.rejects(send(undefined, t0 + 10), Forbidden);
  await assert.rejects(send(undefined, t0 + 11), Forbidden);
  assert.deepEqual(
    events.map((e) => [e.type, e.detail]),
    [
      ["userauth.token_refused", { reason: "wrong or stale", repeated: 0 }],
      ["userauth.token_refused", { reason: "missing", repeated: 0 }],
    ],
  );
  // The right token passes and makes none.
  assert.deepEqual(await send("the-token", t0 + 12), { kind: "empty" });
  // Past the interval, the next refusal of a reason records one, with the 4 that made none.
  await assert.rejects(send("wrong", t0 + REFUSED_EVENT_INTERVAL_MS - 1), Forbidden);
  assert.equal(events.length, 2);
  await assert.rejects(send("wrong", t0 + REFUSED_EVENT_INTERVAL_MS + 1), Forbidden);
  assert.deepEqual(events.at(-1)?.detail, { reason: "wrong or stale", repeated: 5 });
  assert.equal(events.at(-1)?.enrollmentId, channel.id);
});

test("a revoked session (the user removed, the Mac enrolled again) refuses its old token with the reason revoked", async () => {
  const { events, send } = rig("revoked");
  await assert.rejects(send("the-token", 1), Forbidden);
  assert.deepEqual(
    events.map((e) => e.detail),
    [{ reason: "revoked", repeated: 0 }],
  );
});
