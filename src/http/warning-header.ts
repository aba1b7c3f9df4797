// The orchard-warning response header, as a client reads it: the CLI and
// the console (which may import this file and http/wire.ts alone).

/** The orchard-warning header's values (fetch joins repeated headers with ", "; each warning is one header). */
export function splitWarnings(header: string | null): string[] {
  if (header === null || header === "") return [];
  // Each warning starts with the key path it is about ("Payload.X: ...", 'Type "...": ...') or is a count.
  // A quoted name is JSON: it may hold an escaped quote.
  return header.split(/, (?=[A-Za-z][\w.[\]-]*(?: "(?:\\.|[^"\\])*")?: |\d+ more warnings|more errors)/).filter(Boolean);
}
