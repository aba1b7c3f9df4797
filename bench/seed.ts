// Enrollments, events and DDM set assignments written straight into a store
// for the scale and ddm scenarios: many rows per INSERT, many INSERTs per
// transaction, and never more than one statement's rows in memory, so a
// million take seconds and no heap.
import { randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { SqlParam } from "../src/store/db.ts";
import type { Store } from "../src/store/index.ts";
import { TEST_TOPIC } from "../test/support/apns.ts";

const ROWS_PER_INSERT = 500;
/** A transaction per this many rows: SQLite's WAL is checkpointed between them rather than growing by the whole seed. */
const ROWS_PER_TRANSACTION = 50_000;

/** The id of the seeded enrollment with this index. */
export function seededId(prefix: string, i: number): string {
  return `${prefix}-${String(i).padStart(7, "0")}`;
}

/**
 * `count` rows in transactions of ROWS_PER_TRANSACTION, each INSERT of
 * `insert` taking ROWS_PER_INSERT of them; `row(i, params)` pushes row i's
 * parameters for each of the statements (one array per statement).
 */
async function seedRows(
  store: Store,
  count: number,
  inserts: Array<(n: number) => string>,
  row: (i: number, params: SqlParam[][]) => void,
): Promise<void> {
  for (let t = 0; t < count; t += ROWS_PER_TRANSACTION) {
    const end = Math.min(count, t + ROWS_PER_TRANSACTION);
    await store.db.transaction(async (tx) => {
      for (let i = t; i < end; i += ROWS_PER_INSERT) {
        const n = Math.min(ROWS_PER_INSERT, end - i);
        const params = inserts.map((): SqlParam[] => []);
        for (let k = 0; k < n; k++) row(i + k, params);
        for (const [j, insert] of inserts.entries()) await tx.run(insert(n), params[j]!);
      }
    });
  }
}

/** `count` enabled Device channels, ids `${prefix}-0000000` on, each with its own device row, token and PushMagic. */
export async function seedManyEnrollments(store: Store, count: number, prefix: string): Promise<void> {
  const now = Date.now();
  const devices = (n: number) =>
    `INSERT INTO devices (id, topic, cert_fingerprint, authenticated_at, created_at) VALUES ${Array(n).fill("(?, ?, ?, ?, ?)").join(", ")}`;
  const enrollments = (n: number) =>
    `INSERT INTO enrollments (id, device_id, type, enabled, topic, push_token, push_magic, token_update_count, created_at, updated_at, last_seen_at)
     VALUES ${Array(n).fill("(?, ?, 'Device', 1, ?, ?, ?, 1, ?, ?, ?)").join(", ")}`;
  await seedRows(store, count, [devices, enrollments], (i, [d, e]) => {
    const id = seededId(prefix, i);
    d!.push(id, TEST_TOPIC, `fp-${id}`, now, now);
    e!.push(id, id, TEST_TOPIC, randomBytes(32).toString("hex"), randomUUID().toUpperCase(), now, now, now);
  });
}

/** The seeded events' times: evenly over this long, up to now (well inside the default 90-day retention). */
const EVENTS_SPAN_MS = 3 * 24 * 3600_000;
/** Consecutive events go to enrollments this far apart, as a fleet's interleave (a prime: every enrollment gets its share unless the count is a multiple of it). */
const EVENT_STRIDE = 7_919;

/**
 * `count` events of the catalogue's types, oldest first, over the last 3
 * days, each of one of the `enrollments` seeded enrollments (`${prefix}-…`),
 * spread so that neighbours are of different ones: 7 in 10 `push.sent`, the
 * rest `device.authenticated`, `enrollment.enrolled` and `push.failed`
 * (APNs throttled it), with the detail each has when Orchard writes it.
 */
export async function seedManyEvents(store: Store, count: number, prefix: string, enrollments: number): Promise<void> {
  if (enrollments <= 0) return;
  const now = Date.now();
  const insert = (n: number) => `INSERT INTO events (at, type, enrollment_id, detail) VALUES ${Array(n).fill("(?, ?, ?, ?)").join(", ")}`;
  await seedRows(store, count, [insert], (i, [p]) => {
    const at = now - EVENTS_SPAN_MS + Math.floor((i * EVENTS_SPAN_MS) / count);
    const id = seededId(prefix, (i * EVENT_STRIDE) % enrollments);
    const [type, detail] = eventOf(i);
    p!.push(at, type, id, JSON.stringify(detail));
  });
}

function eventOf(i: number): [string, Record<string, unknown>] {
  switch (i % 10) {
    case 7:
      return ["device.authenticated", { serial_number: `C02${String(i % 1e8).padStart(9, "0")}` }];
    case 8:
      return ["enrollment.enrolled", { type: "Device" }];
    case 9:
      return [
        "push.failed",
        {
          topic: TEST_TOPIC,
          trigger: "sweep",
          error: "APNs 429 TooManyRequests",
          status: 429,
          reason: "TooManyRequests",
          attempts: 3,
        },
      ];
    default:
      return ["push.sent", { topic: TEST_TOPIC, apns_id: randomUUID().toUpperCase(), trigger: i % 3 ? "sweep" : "api", attempts: 1 }];
  }
}

/**
 * The DDM set assignments of `ids` enrollments (ddm_enrollment_sets): the
 * enrollment with index i holds `setsOf(i)`; `idOf(i)` names it.
 */
export async function seedManySetAssignments(
  store: Store,
  ids: number,
  idOf: (i: number) => string,
  setsOf: (i: number) => readonly string[],
  now: number,
): Promise<void> {
  const insert = (sets: number) => (n: number) =>
    `INSERT INTO ddm_enrollment_sets (enrollment_id, set_name, created_at) VALUES ${Array(n * sets)
      .fill("(?, ?, ?)")
      .join(", ")}`;
  await seedRows(store, ids, [insert(setsOf(0).length)], (i, [p]) => {
    const id = idOf(i);
    for (const set of setsOf(i)) p!.push(id, set, now);
  });
}

/** The SQLite store's files (orchard.db and its -wal, -shm) in MB. */
export function storeFilesMb(dir: string): number {
  let bytes = 0;
  for (const f of fs.readdirSync(dir)) if (f.startsWith("orchard.db")) bytes += fs.statSync(path.join(dir, f)).size;
  return Math.round((bytes / 1024 / 1024) * 10) / 10;
}
