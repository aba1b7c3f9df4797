// Apache htdigest files: `user:realm:MD5(user:realm:password)` per line, the
// simplest way to hand Orchard the HA1s of network users. Errors carry line
// numbers only: lines hold usernames and hashes that must not reach logs.

import { computeHA1 } from "./compute.ts";

export interface HtdigestEntry {
  /** 1-based, for an error about this entry found later. */
  line: number;
  username: string;
  realm: string;
  /** Lowercase hex MD5 HA1. */
  ha1: string;
}

export type HtdigestErrorReason = "field-count" | "empty-username" | "empty-realm" | "bad-ha1" | "bad-char" | "duplicate";

export interface HtdigestParseResult {
  entries: HtdigestEntry[];
  errors: Array<{ line: number; reason: HtdigestErrorReason }>;
}

const HA1_RE = /^[0-9a-fA-F]{32}$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

/** What is wrong with a line's fields, if anything. */
function fieldsError(fields: string[]): HtdigestErrorReason | undefined {
  if (fields.length !== 3) return "field-count";
  const [username, realm, ha1] = fields as [string, string, string];
  if (username === "") return "empty-username";
  if (realm === "") return "empty-realm";
  if (CONTROL.test(username) || CONTROL.test(realm)) return "bad-char";
  if (!HA1_RE.test(ha1)) return "bad-ha1";
  return undefined;
}

/** Lines are 1-based. The first entry wins on duplicates, as in mod_authn_file. */
export function parseHtdigest(text: string): HtdigestParseResult {
  const entries: HtdigestEntry[] = [];
  const errors: HtdigestParseResult["errors"] = [];
  const seen = new Set<string>();
  const lines = text.replace(/^\uFEFF/, "").split("\n");

  for (const [index, rawLine] of lines.entries()) {
    const line = index + 1;
    const content = rawLine.replace(/[ \t\r]+$/, ""); // CRLF files and trailing blanks
    const trimmed = content.trimStart();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    // htdigest forbids ':' in user and realm, so exactly three fields.
    const fields = content.split(":");
    const [username, realm, ha1] = fields as [string, string, string];
    const key = JSON.stringify([username, realm]);
    const reason = fieldsError(fields) ?? (seen.has(key) ? "duplicate" : undefined);
    if (reason) {
      errors.push({ line, reason });
      continue;
    }
    seen.add(key);
    entries.push({ line, username, realm, ha1: ha1.toLowerCase() });
  }
  return { entries, errors };
}

/** One htdigest line (no newline), as `htdigest` would write it. */
export function formatHtdigestLine(username: string, realm: string, password: string): string {
  for (const [name, value] of [
    ["username", username],
    ["realm", realm],
  ] as const) {
    if (value === "" || value.includes(":") || CONTROL.test(value)) {
      throw new TypeError(`htdigest ${name} must be non-empty without ':' or control characters`);
    }
  }
  return `${username}:${realm}:${computeHA1("MD5", username, realm, password)}`;
}
