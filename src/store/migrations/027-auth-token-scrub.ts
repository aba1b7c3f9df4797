import { AUTH_TOKEN_KEY, withoutAuthToken } from "../../protocol/auth-token-element.ts";
import type { Sql } from "../db.ts";
import { chunks } from "../enrollments.ts";
import type { Migration } from "./index.ts";

// A network user's AuthToken was stored in clear in the messages Orchard keeps
// as the device sent them: a command report (command_queue.result, which
// GET /v1/commands/{uuid} shows to auditors) and the last TokenUpdate
// (enrollments.token_update_message). The stores now keep them without it
// (protocol/auth-token-element.ts); this takes it out of the rows written
// before (hostile review). The database finds them, in one pass over each
// table that reads no value out (only the rows whose bytes hold
// <key>AuthToken</key>: a network user's messages, few beside a fleet's
// results); those alone are read and written again, 500 at a time.

/** Each kept message: its table (whose rows an id names) and the column with the device's bytes. */
const KEPT_MESSAGES = [
  { table: "command_queue", column: "result" },
  { table: "enrollments", column: "token_update_message" },
  { table: "devices", column: "authenticate_message" },
] as const;

async function scrubAuthTokens(tx: Sql, dialect: "sqlite" | "postgres"): Promise<void> {
  // SQLite zeroes what these updates free (a row's old bytes in its page, overflow pages) rather than leave
  // the tokens in free space; this connection only, for this migration. PostgreSQL keeps the old row versions
  // until VACUUM (docs/operations.md).
  if (dialect === "sqlite") await tx.exec("PRAGMA secure_delete = ON");
  try {
    for (const m of KEPT_MESSAGES) await scrubColumn(tx, dialect, m);
  } finally {
    if (dialect === "sqlite") await tx.exec("PRAGMA secure_delete = OFF");
  }
}

/** The rows of one table whose message holds the element (found by the database), rewritten without it. */
async function scrubColumn(tx: Sql, dialect: "sqlite" | "postgres", { table, column }: (typeof KEPT_MESSAGES)[number]): Promise<void> {
  // A byte search on both: SQLite's instr() on two BLOBs counts bytes (LIKE would read them as text, to a NUL).
  const holds = dialect === "sqlite" ? `instr(${column}, ?) > 0` : `position(?::bytea in ${column}) > 0`;
  const ids = (await tx.all<{ id: string | number }>(`SELECT id FROM ${table} WHERE ${holds}`, [AUTH_TOKEN_KEY])).map((r) => r.id);
  for (const chunk of chunks(ids, 500)) {
    const rows = await tx.all<{ id: string | number; message: Buffer }>(
      `SELECT id, ${column} AS message FROM ${table} WHERE id IN (${chunk.map(() => "?").join(", ")})`,
      chunk,
    );
    for (const r of rows) {
      const scrubbed = withoutAuthToken(r.message);
      if (scrubbed !== r.message) await tx.run(`UPDATE ${table} SET ${column} = ? WHERE id = ?`, [scrubbed, r.id]);
    }
  }
}

export const authTokenScrub: Migration = {
  version: 27,
  name: "auth-token-scrub",
  sql: "",
  data: scrubAuthTokens,
};
