// Durations as operators write them (300s, 5m, 1h, 90d): one grammar for the
// serve flags (config.ts) and for API bodies (the SCEP challenge ttl), so
// neither layer has to import the other.

/** What a duration looks like, for error messages. */
export const DURATION_EXAMPLES = "300s, 5m, 1h or 90d";

/**
 * Milliseconds, or undefined when the text is not a duration. A number needs
 * its unit, 0 alone excepted (off, where a flag allows it): `--event-retention
 * 90` read as seconds, beside a default written 90d, deleted a whole audit log.
 */
export function durationMs(value: string): number | undefined {
  const v = value.trim();
  if (/^0+(?:\.0+)?$/.test(v)) return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(v);
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms" | "s" | "m" | "h" | "d"];
  return Math.round(Number(m[1]) * unit);
}
