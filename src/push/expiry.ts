import type { Log } from "../core/service.ts";
import type { Store } from "../store/index.ts";

const DAY_MS = 86_400_000;
/** How long before expiry the operator is told: Apple lets a certificate be renewed any time, and renewal takes a person. */
export const EXPIRY_WARNING_MS = 30 * DAY_MS;
const CHECK_INTERVAL_MS = 60 * 60_000;

/** Whole days until `notAfter` (negative once expired). */
export function daysLeft(notAfter: number, now: number): number {
  return Math.floor((notAfter - now) / DAY_MS);
}

/**
 * Looks at every stored push certificate: one that expires within 30 days
 * (or has expired) gets one `pushcert.expiring` event per certificate, the
 * first process to see it recording it, and a warn line then. At start every
 * such certificate is warned about again, each start.
 */
export async function checkPushCertExpiry(store: Store, log: Log, o: { now?: number; atStart?: boolean } = {}): Promise<void> {
  const now = o.now ?? Date.now();
  for (const cert of await store.push.certs()) {
    if (cert.notAfter - now > EXPIRY_WARNING_MS) continue;
    const days = daysLeft(cert.notAfter, now);
    const expired = cert.notAfter <= now;
    const notAfter = new Date(cert.notAfter).toISOString();
    const detail = { topic: cert.topic, not_after: notAfter, days_left: days, expired, fingerprint: cert.fingerprint };
    const recorded = await store.push.noteExpiring(cert.topic, cert.fingerprint, { type: "pushcert.expiring", detail }, now);
    if (!recorded && !o.atStart) continue;
    const what = expired
      ? `PUSH CERTIFICATE EXPIRED on ${notAfter}: devices enrolled under ${cert.topic} get no pushes`
      : `push certificate expires in ${days} days (${notAfter})`;
    log.warn(
      { topic: cert.topic, notAfter, daysLeft: days },
      `${what}: renew it with Renew at https://identity.apple.com/pushcert (same Apple ID, same topic) ` +
        "and upload it (docs/push-certificate.md)",
    );
  }
}

/** The check at start and then hourly; returns a stop function that waits for a check in progress. */
export function startPushCertExpiryCheck(store: Store, log: Log, intervalMs = CHECK_INTERVAL_MS): () => Promise<void> {
  const run = (atStart: boolean) =>
    checkPushCertExpiry(store, log, { atStart }).catch((err: unknown) => log.warn({ err }, "push certificate expiry check failed"));
  let running = run(true);
  const timer = setInterval(() => {
    running = running.then(() => run(false));
  }, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
