// Enrollments written straight into a store for the scale scenario: many
// rows per INSERT, many INSERTs per transaction, and never more than one
// statement's rows in memory, so a million take seconds and no heap.
import { randomBytes, randomUUID } from "node:crypto";
import type { SqlParam } from "../src/store/db.ts";
import type { Store } from "../src/store/index.ts";
import { TEST_TOPIC } from "../test/support/apns.ts";

const ROWS_PER_INSERT = 500;
/** A transaction per this many rows: SQLite's WAL is checkpointed between them rather than growing by the whole seed. */
const ROWS_PER_TRANSACTION = 50_000;

/** `count` enabled Device channels, ids `${prefix}-0000000` on, each with its own device row, token and PushMagic. */
export async function seedManyEnrollments(store: Store, count: number, prefix: string): Promise<void> {
  const now = Date.now();
  const devices = (n: number) =>
    `INSERT INTO devices (id, topic, cert_fingerprint, authenticated_at, created_at) VALUES ${Array(n).fill("(?, ?, ?, ?, ?)").join(", ")}`;
  const enrollments = (n: number) =>
    `INSERT INTO enrollments (id, device_id, type, enabled, topic, push_token, push_magic, token_update_count, created_at, updated_at, last_seen_at)
     VALUES ${Array(n).fill("(?, ?, 'Device', 1, ?, ?, ?, 1, ?, ?, ?)").join(", ")}`;
  for (let t = 0; t < count; t += ROWS_PER_TRANSACTION) {
    const end = Math.min(count, t + ROWS_PER_TRANSACTION);
    await store.db.transaction(async (tx) => {
      for (let i = t; i < end; i += ROWS_PER_INSERT) {
        const n = Math.min(ROWS_PER_INSERT, end - i);
        const deviceParams: SqlParam[] = [];
        const enrollmentParams: SqlParam[] = [];
        for (let k = 0; k < n; k++) {
          const id = `${prefix}-${String(i + k).padStart(7, "0")}`;
          deviceParams.push(id, TEST_TOPIC, `fp-${id}`, now, now);
          enrollmentParams.push(id, id, TEST_TOPIC, randomBytes(32).toString("hex"), randomUUID().toUpperCase(), now, now, now);
        }
        await tx.run(devices(n), deviceParams);
        await tx.run(enrollments(n), enrollmentParams);
      }
    });
  }
}
