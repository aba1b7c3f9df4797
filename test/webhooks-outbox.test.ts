// The outbox's cheap paths, on SQLite and PostgreSQL: stand-alone events of
// concurrent requests written in one group (each add resolves only once its
// row is committed), and a delivering process's own events written already
// leased and handed over at commit (none when the transaction rolls back;
// unleased when there is no room), so that they need no claim.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { openStore, type Store } from "../src/store/index.ts";
import type { ClaimedEvent } from "../src/store/webhooks.ts";
import { FreshEvents } from "../src/webhook/fresh-events.ts";
import { parseTopics } from "../src/webhook/options.ts";
import { createTestDatabase, postgresReachable } from "./support/postgres.ts";

const LEASE_MS = 60_000;
const event = (i: number) => ({ eventId: `event-${i}`, topic: "mdm.Connect", enrollmentId: `device-${i % 3}`, body: `{"n":${i}}` });

async function withStore(backend: "sqlite" | "postgres", fn: (open: () => Promise<Store>) => Promise<void>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-outbox-"));
  const db = backend === "postgres" ? await createTestDatabase() : undefined;
  const stores: Store[] = [];
  try {
    await fn(async () => {
      const s = await openStore(db?.url, dir);
      stores.push(s);
      return s;
    });
  } finally {
    for (const s of stores) await s.close();
    await db?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function rows(store: Store): Promise<Array<{ event_id: string; leased: number; due_at: number }>> {
  const r = await store.db.all<{ event_id: string; leased: number; due_at: number }>(
    "SELECT event_id, leased, due_at FROM webhook_outbox ORDER BY id",
  );
  return r.map((x) => ({ event_id: x.event_id, leased: Number(x.leased), due_at: Number(x.due_at) }));
}

const pg = await postgresReachable();

for (const backend of ["sqlite", "postgres"] as const) {
  describe(`[${backend}] the outbox's group commit and handoff`, {
    skip: backend === "postgres" && !pg ? "PostgreSQL not reachable" : false,
  }, () => {
    test("stand-alone events of concurrent requests: each add resolves once its row is committed, every row once", async () => {
      await withStore(backend, async (open) => {
        const base = await open();
        const store = base.withWebhookTopics(parseTopics("mdm.*"));
        const committed: boolean[] = [];
        const now = Date.now();
        await Promise.all(
          Array.from({ length: 150 }, async (_, i) => {
            await store.outbox.add(event(i), now);
            // Seen from another connection (PostgreSQL) or the same file: the row is there when add resolves.
            const row = await base.db.get<{ n: number }>("SELECT COUNT(*) AS n FROM webhook_outbox WHERE event_id = ?", [event(i).eventId]);
            committed[i] = Number(row!.n) === 1;
          }),
        );
        assert.deepEqual(committed, Array(150).fill(true));
        const all = await rows(base);
        assert.equal(all.length, 150);
        assert.ok(
          all.every((r) => r.leased === 0 && r.due_at === now),
          "without a handoff, due now for any process",
        );
        // Claimed from the store as before.
        assert.equal((await store.outbox.claim(now, LEASE_MS, 500)).length, 150);
      });
    });

    test("a delivering process's events are written leased and handed over at commit; none when rolled back", async () => {
      await withStore(backend, async (open) => {
        const base = await open();
        const fresh = new FreshEvents(LEASE_MS, 10);
        const store = base.withWebhookTopics(parseTopics("mdm.*"), fresh);
        const now = Date.now();
        // Stand-alone (grouped) and inside a transaction.
        await Promise.all([store.outbox.add(event(1), now), store.outbox.add(event(2), now)]);
        await store.transaction(async (tx) => {
          await tx.outbox.add(event(3), now);
          // A nested transaction joins it: its event is handed over with the outer commit.
          await tx.transaction((inner) => inner.outbox.add(event(4), now));
          assert.equal(fresh.size, 2, "nothing of an open transaction is handed over");
        });
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.outbox.add(event(5), now);
            throw new Error("rolled back");
          }),
          /rolled back/,
        );
        const { events, stale } = fresh.take(100, Date.now(), 1000);
        assert.deepEqual(stale, []);
        assert.deepEqual(
          events.map((e: ClaimedEvent) => e.eventId),
          ["event-1", "event-2", "event-3", "event-4"],
        );
        assert.ok(events.every((e) => e.leasedUntil! >= now + LEASE_MS && e.attempts === 0 && e.id > 0));
        const all = await rows(base);
        assert.deepEqual(
          all.map((r) => r.event_id),
          ["event-1", "event-2", "event-3", "event-4"],
        );
        assert.ok(all.every((r) => r.leased === 1 && r.due_at >= now + LEASE_MS));
        // Leased rows are no other process's to claim; given back, they are.
        assert.equal((await base.outbox.claim(Date.now(), LEASE_MS, 100)).length, 0);
        await base.outbox.unlease(
          events.map((e) => e.id),
          Date.now(),
        );
        assert.equal((await base.outbox.claim(Date.now(), LEASE_MS, 100)).length, 4);
      });
    });

    test("past the handoff's room, or while it is paused, events are written unleased, for a claim", async () => {
      await withStore(backend, async (open) => {
        const base = await open();
        const fresh = new FreshEvents(LEASE_MS, 3);
        const store = base.withWebhookTopics(parseTopics("mdm.*"), fresh);
        const now = Date.now();
        for (let i = 0; i < 5; i++) await store.transaction((tx) => tx.outbox.add(event(i), now));
        assert.equal(fresh.size, 3);
        fresh.take(100, Date.now(), 0);
        fresh.pause();
        await store.outbox.add(event(9), now);
        assert.equal(fresh.size, 0);
        const all = await rows(base);
        assert.deepEqual(
          all.map((r) => r.leased),
          [1, 1, 1, 0, 0, 0],
        );
        const claimed = await base.outbox.claim(now, LEASE_MS, 100);
        assert.deepEqual(
          claimed.map((e) => e.eventId),
          ["event-3", "event-4", "event-9"],
        );
      });
    });
  });
}
