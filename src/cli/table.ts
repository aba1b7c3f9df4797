/** A table cell: empty values show as `-`. */
export type Cell = string | number | boolean | null | undefined;

/** Aligned columns under a header, two spaces apart, no trailing blanks. */
export function formatTable(headers: string[], rows: Cell[][]): string {
  const text = [headers, ...rows.map((r) => headers.map((_, i) => cell(r[i])))];
  const widths = headers.map((_, i) => Math.max(...text.map((r) => r[i]!.length)));
  return text
    .map(
      (r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
          .join("  ")
          .trimEnd() + "\n",
    )
    .join("");
}

/** `key: value` lines with the values aligned. */
export function formatFields(fields: Array<[string, Cell]>): string {
  const width = Math.max(0, ...fields.map(([k]) => k.length + 1));
  return fields.map(([k, v]) => `${(k + ":").padEnd(width)} ${cell(v)}\n`).join("");
}

export function cell(value: Cell): string {
  if (value === null || value === undefined || value === "") return "-";
  if (typeof value === "boolean") return value ? "yes" : "no";
  return printable(String(value));
}

/**
 * Device-supplied text (names, error descriptions) goes to a terminal: control
 * characters would let a device move the cursor or rewrite the screen, so they
 * are shown escaped.
 */
export function printable(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => (c === "\t" ? " " : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`));
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/** An API time (RFC 3339, http/wire.ts Time) as local `YYYY-MM-DD HH:MM:SS`; anything else shown as it is. */
export function formatTime(value: string | null | undefined): string {
  if (value === null || value === undefined || value === "") return "-";
  const d = RFC3339.test(value) ? new Date(value) : new Date(NaN);
  if (Number.isNaN(d.getTime())) return printable(value);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** "1 page", "3 pages": a count and its noun (plural with s unless given). */
export function counted(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}
