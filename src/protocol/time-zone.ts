// A device's time zone as DeviceInformation's TimeZone gives it: an IANA
// name (Europe/Paris). One formatter per zone, shared by the check of a
// reported name (core/inventory.ts) and the wall clock of an OS update
// deadline (updates/targets.ts), so both agree on which zones exist.
// Building a formatter costs about 50 us, using one about 5.

const MAX_KEPT = 4096;
const formatters = new Map<string, Intl.DateTimeFormat | null>();

/** The zone's wall-clock formatter (24-hour, every field numeric); null: a zone the runtime does not know. */
export function zoneFormatter(timeZone: string): Intl.DateTimeFormat | null {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat("en-US", {
        timeZone,
        hourCycle: "h23",
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
      });
    } catch {
      f = null;
    }
    if (formatters.size >= MAX_KEPT) formatters.clear();
    formatters.set(timeZone, f);
  }
  return f;
}

/**
 * A time zone the runtime knows by its IANA name. An offset (+01:00) is not
 * a name, though newer runtimes take it: names start with a letter.
 */
export function isTimeZone(zone: string): boolean {
  return /^[A-Za-z]/.test(zone) && zoneFormatter(zone) !== null;
}
