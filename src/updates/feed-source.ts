import fs from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { basicAuth } from "../url-credentials.ts";

// Where the software lookup feed is read from: Apple's URL, a mirror
// (http/https), or a file (file: URL) for tests and air-gapped sites.

/** Apple's software lookup service. */
export const APPLE_SOFTWARE_LOOKUP_URL = "https://gdmf.apple.com/v2/pmv";
/** Apple's feed is a few hundred KB; anything near this is not it. */
export const MAX_FEED_BYTES = 32 * 1024 * 1024;
const TIMEOUT_MS = 30_000;

/** The feed's text, or an Error saying why it could not be read (never the URL's credentials). */
export async function readFeed(url: string, o: { timeoutMs?: number; maxBytes?: number } = {}): Promise<string> {
  const max = o.maxBytes ?? MAX_FEED_BYTES;
  const parsed = new URL(url);
  if (parsed.protocol === "file:") {
    const file = fileURLToPath(parsed);
    const stat = await fs.stat(file).catch((err: NodeJS.ErrnoException) => {
      throw new Error(err.code === "ENOENT" ? "no such file" : `cannot read the file (${err.code ?? err.message})`);
    });
    if (!stat.isFile()) throw new Error("not a file");
    if (stat.size > max) throw new Error(`larger than ${max} bytes`);
    return fs.readFile(file, "utf8");
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new Error(`unsupported URL scheme ${parsed.protocol}`);
  const headers: Record<string, string> = { accept: "application/json" };
  const authorization = basicAuth(parsed);
  if (authorization) {
    // fetch refuses a URL that holds credentials: a mirror's user and password go as Basic authentication.
    headers.authorization = authorization;
    parsed.username = "";
    parsed.password = "";
  }
  let res: Response;
  try {
    res = await fetch(parsed, { signal: AbortSignal.timeout(o.timeoutMs ?? TIMEOUT_MS), headers });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    // A message that quotes the URL would say its query (a mirror's token can be there).
    throw new Error(`cannot reach it: ${why.replaceAll(parsed.href, shownUrl(parsed.href))}`);
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > max) {
    await res.body?.cancel();
    throw new Error(`larger than ${max} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body ?? []) {
    size += chunk.length;
    if (size > max) throw new Error(`larger than ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The URL as logs, events and the API show it: no user, password or query (a mirror's token could be there). */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    u.search = "";
    u.hash = "";
    return u.toString();
  } catch {
    return "(not a URL)";
  }
}
