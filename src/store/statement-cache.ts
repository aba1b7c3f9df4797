// Prepared statements kept per SQL text, in bounded memory.
//
// Most of Orchard's SQL is fixed text in the code: a few hundred statements
// at most, each prepared once and kept for the process's life. A statement
// written for a list (`IN (?, ?, ...)`, a multi-row VALUES) has a text per
// list length, so a server that pushes to, enqueues for or syncs lists of
// every length up to a chunk's 500 would keep hundreds of such texts: on
// SQLite a prepared statement of a few hundred placeholders holds 50 to
// 150 KB of native memory, so 1,000 lengths came to about 100 MB of RSS
// (docs/scaling.md, "Memory"). Those are kept a few at a time instead: the
// full chunk that repeats stays prepared, the rest are prepared again when
// they come back, a cost shared by the rows of the list.

/** A statement with more placeholders than this is a list's (fixed statements have at most a few dozen). */
export const LIST_PLACEHOLDERS = 64;

/** List statements kept, the oldest dropped first. */
export const LIST_STATEMENTS_KEPT = 16;

export function placeholders(sql: string): number {
  let n = 0;
  for (let i = sql.indexOf("?"); i !== -1; i = sql.indexOf("?", i + 1)) n++;
  return n;
}

export class StatementCache<S> {
  readonly #fixed = new Map<string, S>();
  readonly #lists = new Map<string, S>();

  constructor(private readonly prepare: (sql: string) => S) {}

  get(sql: string): S {
    const fixed = this.#fixed.get(sql);
    if (fixed !== undefined) return fixed;
    const listed = this.#lists.get(sql);
    if (listed !== undefined) return listed;
    const statement = this.prepare(sql);
    if (placeholders(sql) <= LIST_PLACEHOLDERS) {
      this.#fixed.set(sql, statement);
    } else {
      if (this.#lists.size >= LIST_STATEMENTS_KEPT) {
        this.#lists.delete(this.#lists.keys().next().value!);
      }
      this.#lists.set(sql, statement);
    }
    return statement;
  }

  /** How many statements are kept (fixed, list). */
  get size(): { fixed: number; lists: number } {
    return { fixed: this.#fixed.size, lists: this.#lists.size };
  }
}
