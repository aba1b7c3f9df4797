import { ApiError, type ApiClient } from "./api-client.ts";
import type { Page } from "../http/wire.ts";
import type { CliContext } from "./command.ts";

/** The flags of every paged list command: --limit N, --cursor C, --all. */
export const PAGE_OPTIONS = {
  limit: { type: "string" },
  cursor: { type: "string" },
  all: { type: "boolean", default: false },
} as const;

/**
 * GETs one page from `cursor`, or every page with `all`. When more remain
 * and `all` was not asked for, says how to get them (on stderr, so that
 * tables and JSON on stdout stay clean).
 */
export async function fetchPages<K extends string, T>(
  client: ApiClient,
  ctx: CliContext,
  apiPath: string,
  key: K,
  query: Record<string, string | undefined>,
  o: { all: boolean; cursor?: string },
): Promise<Page<K, T>> {
  const items: T[] = [];
  let cursor = o.cursor;
  for (;;) {
    const page = await client.get<Page<K, T>>(apiPath, { ...query, cursor });
    const got = page[key];
    if (!Array.isArray(got)) throw new ApiError(`the server's answer has no ${key} list`);
    items.push(...got);
    const next = page.next_cursor ?? null;
    if (next === null || !o.all) {
      if (next !== null) ctx.err(`orchard: more ${key} follow: use --all, or --cursor ${next}\n`);
      return { [key]: items, next_cursor: next } as Page<K, T>;
    }
    if (next === cursor) throw new ApiError("the server's next_cursor does not advance");
    cursor = next;
  }
}
