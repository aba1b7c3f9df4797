// JSON.parse keeps the last of two equal keys without a word, so
// {"state":"managed","state":"declined"} means whatever the reader happens to
// pick; another parser in front of Orchard (a proxy, an audit log) may pick the
// first. Orchard refuses such a body instead. No npm package does just this
// check (secure-json-parse guards __proto__, not duplicates), and the scan is
// short because JSON.parse has already refused anything that is not JSON.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Parses JSON text, refusing a duplicate key in any object at any depth (keys
 * compared after unescaping: "a" and "\u0061" are the same key). Throws
 * SyntaxError for text that is not JSON, DuplicateKey for a repeated key.
 */
export function parseStrictJson(text: string): unknown {
  const value: unknown = JSON.parse(text);
  const key = firstDuplicateKey(text);
  if (key !== undefined) throw new DuplicateKey(key);
  return value;
}

export class DuplicateKey extends Error {
  constructor(readonly key: string) {
    super(`duplicate key ${JSON.stringify(key.slice(0, 64))}`);
  }
}

/**
 * What is wrong with text JSON.parse refused, for a message: V8's own words
 * and where ("expected double-quoted property name at line 1, column 17"),
 * or only that it ends early. Never the text itself: V8's message for an
 * unexpected token quotes the input (`Unexpected token 'h', "{"password":
 * hunter2}" is not valid JSON`), and a body may hold a password; such a
 * message gives undefined.
 */
export function jsonSyntaxDetail(err: unknown, text: string): string | undefined {
  const message = err instanceof SyntaxError ? err.message : "";
  if (message.startsWith("Unexpected end of JSON input")) return "it ends before the JSON is complete";
  // V8's messages with a position are fixed words (no quoted input); anything with a double quote is not used.
  const m = /^([A-Za-z ,'{}[\]:-]{1,80}?)(?: in JSON)? at position (\d+)/.exec(message);
  if (!m) return undefined;
  const at = Math.min(Number(m[2]), text.length);
  const before = text.slice(0, at);
  let line = 1;
  for (let i = before.indexOf("\n"); i >= 0; i = before.indexOf("\n", i + 1)) line++;
  const column = at - before.lastIndexOf("\n");
  return `${m[1]!.charAt(0).toLowerCase()}${m[1]!.slice(1)} at line ${line}, column ${column}`;
}

/** The first key repeated within one object of valid JSON text, if any. */
export function firstDuplicateKey(text: string): string | undefined {
  // One entry per open container: the keys seen so far, or null for an array.
  const open: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let end = i + 1;
      while (text.charCodeAt(end) !== QUOTE) end += text.charCodeAt(end) === BACKSLASH ? 2 : 1;
      if (expectKey) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes("\\") ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        const keys = open[open.length - 1]!;
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      open.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      open.push(null);
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      open.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = open[open.length - 1] !== null;
    }
  }
  return undefined;
}
