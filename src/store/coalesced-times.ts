import type { Database } from "./db.ts";

/** Ids per statement: two placeholders each, well inside both stores' limits. */
const IDS_PER_STATEMENT = 500;

/**
 * Writes per-id times coalesced in memory (core/coalesce.ts: last seen,
 * AuthToken last used) as one UPDATE per chunk, joined to a VALUES list
 * `v(column1 = id, column2 = time)`. A batch's row locks are then held for one
 * statement: with a statement per id in one transaction, PostgreSQL held them
 * across a round trip per id, and a login or check-in writing one of those
 * rows waited for the whole batch.
 */
export async function writeCoalescedTimes(
  db: Database,
  times: ReadonlyMap<string, number>,
  update: (values: string) => string,
): Promise<void> {
  const all = [...times];
  for (let i = 0; i < all.length; i += IDS_PER_STATEMENT) {
    const chunk = all.slice(i, i + IDS_PER_STATEMENT);
    const values = `(VALUES ${chunk.map(() => "(?, CAST(? AS BIGINT))").join(", ")}) AS v`;
    await db.run(update(values), chunk.flat());
  }
}
