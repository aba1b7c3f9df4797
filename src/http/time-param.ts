// Query parameters that take a time (?since=, ?until=, ?seen_before=, ...):
// one parser, so every route reads the same RFC 3339 times and refuses the
// same others.
import { BadRequest } from "../errors.ts";

/** An RFC 3339 date-time with its zone (seconds optional), or a full-date (midnight UTC). */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(?:[Zz]|([+-])(\d{2}):(\d{2})))?$/;

/**
 * A time query parameter as epoch milliseconds, undefined when absent. Each
 * field must be one that exists: JavaScript's Date would roll 2026-02-30 over
 * to March 2 (and 24:00 to the next day), so a mistyped date filtered from
 * another day than asked.
 */
export function timeParam(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const wanted = `${name} must be an RFC 3339 time such as 2026-12-03T12:00:00Z`;
  const m = RFC3339.exec(value);
  if (!m) throw new BadRequest(wanted, "invalid_parameter");
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = [1, 2, 3, 4, 5, 6, 9, 10].map((i) => Number(m[i] ?? 0));
  const t = new Date(0);
  t.setUTCFullYear(year!, month! - 1, day!); // not Date.UTC: it reads years 0-99 as 1900-1999
  t.setUTCHours(hour!, minute!, second!);
  const exists =
    t.getUTCFullYear() === year &&
    t.getUTCMonth() === month! - 1 &&
    t.getUTCDate() === day &&
    t.getUTCHours() === hour &&
    t.getUTCMinutes() === minute &&
    t.getUTCSeconds() === second &&
    offsetHours! <= 23 &&
    offsetMinutes! <= 59;
  if (!exists) throw new BadRequest(`${wanted}: ${value} names a day or time that does not exist`, "invalid_parameter");
  const fraction = m[7] === undefined ? 0 : Math.floor(Number(m[7]) * 1000);
  const offset = (m[8] === "-" ? -1 : 1) * (offsetHours! * 60 + offsetMinutes!) * 60_000;
  return t.getTime() + fraction - offset;
}
