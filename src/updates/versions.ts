// OS versions as Apple writes them (15.2, 17.7.1, 26.0): compared by their
// numeric parts, a missing part counting as 0 (15.2 = 15.2.0 < 15.10).

const VERSION = /^\d{1,4}(\.\d{1,4}){0,3}$/;

export function isVersion(v: string): boolean {
  return VERSION.test(v);
}

/** Negative, zero or positive as a is older than, the same as, or newer than b; an unreadable version is the oldest. */
export function compareVersions(a: string | null | undefined, b: string | null | undefined): number {
  const pa = parts(a);
  const pb = parts(b);
  if (pa === null || pb === null) return (pa === null ? 0 : 1) - (pb === null ? 0 : 1);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function parts(v: string | null | undefined): number[] | null {
  // Devices may report a supplemental version with a suffix ("16.1.1 (a)"): its numbers count.
  const m = v ? /^\d+(\.\d+)*/.exec(v.trim()) : null;
  return m ? m[0].split(".").map(Number) : null;
}
