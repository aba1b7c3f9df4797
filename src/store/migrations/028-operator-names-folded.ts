import type { Sql } from "../db.ts";
import type { Migration } from "./index.ts";

/**
 * Operator names unique ignoring case, in the store itself: OperatorStore.add
 * checks it in its statement, but two adds of case variants at the same
 * moment on PostgreSQL each saw no other row (READ COMMITTED) and both went
 * in. The index makes the second wait for the first and find it.
 *
 * A store written before the rule may hold two names that differ only in
 * case (`Alice` and `alice`, two accounts: both still sign in, names are
 * looked up exactly). The index cannot be made over them, and neither can be
 * renamed for the operator without a say: the migration is held back, the
 * server says which names and what to do (server.ts), and it is tried again
 * at each start, so it is made at the first start after one of each pair is
 * removed. Meanwhile add's check keeps new names apart as before.
 */
export const operatorNamesFolded: Migration = {
  version: 28,
  name: "operator-names-folded",
  sql: `
-- lower() folds ASCII alike in SQLite and PostgreSQL, and names are ASCII
-- (core/operator-auth.ts, NAME_RULE).
CREATE UNIQUE INDEX operators_name_folded ON operators (lower(name));
`,
  heldBy: async (tx: Sql, dialect) => {
    // A running process's add between this look and the index would fail the index, and this start (review):
    // adds wait for this transaction instead. SQLite's transaction already holds the only writer's lock.
    if (dialect === "postgres") await tx.exec("LOCK TABLE operators IN SHARE MODE");
    const rows = await tx.all<{ folded: string; name: string }>(
      `SELECT lower(name) AS folded, name FROM operators
       WHERE lower(name) IN (SELECT lower(name) FROM operators GROUP BY lower(name) HAVING COUNT(*) > 1)
       ORDER BY lower(name), name`,
    );
    if (rows.length === 0) return undefined;
    const groups = new Map<string, string[]>();
    for (const r of rows) groups.set(r.folded, [...(groups.get(r.folded) ?? []), r.name]);
    const named = [...groups.values()].map((names) => names.map((n) => JSON.stringify(n)).join(" and "));
    return (
      `operator names that differ only in letter case: ${named.join("; ")}. ` +
      "Names are to be unique ignoring case (the audit log and the console would show two accounts as one person), " +
      "and the unique index that keeps them so is not made while these stand: remove all but one of each " +
      "(orchard operators remove NAME, or DELETE /v1/operators/NAME); the index is made at the next start"
    );
  },
};
