import type { Database } from "./db.ts";

/**
 * The statement sizes a batch is cut into, largest first: a few fixed texts
 * per caller whatever the batch's length, so that a flush of a new length
 * every second neither adds a prepared statement nor pushes a list's out of
 * statement-cache.ts's few.
 */
const STATEMENT_SIZES = [500, 100, 25, 5, 1];

/**
 * Writes per-id times coalesced in memory (core/coalesce.ts: last seen,
 * AuthToken last use) as one UPDATE per chunk, joined to a VALUES list
 * `v(column1 = id, column2 = time)`. A batch's row locks are then held for one
 * statement: with a statement per id in one transaction, PostgreSQL held them
 * across a round trip per id, and a login or check-in writing one of those
 * rows waited for the whole batch. On PostgreSQL the ids go in sorted order,
 * so that two processes flushing the same ids lock them in the same order
 * (in opposite orders, half the statements failed on a deadlock).
 */
export async function writeCoalescedTimes(
  db: Database,
  times: ReadonlyMap<string, number>,
  update: (values: string) => string,
): Promise<void> {
  const all = [...times];
  if (db.dialect === "postgres") all.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  let i = 0;
  for (const size of STATEMENT_SIZES) {
    for (; all.length - i >= size; i += size) {
      const chunk = all.slice(i, i + size);
      const values = `(VALUES ${chunk.map(() => "(?, CAST(? AS BIGINT))").join(", ")}) AS v`;
      await db.run(update(values), chunk.flat());
    }
  }
}
