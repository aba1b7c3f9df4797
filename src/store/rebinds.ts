import type { Database } from "./db.ts";

/** A device's identity binding as the re-binding policy weighs it. */
export interface Binding {
  /** SHA-256 of the bound identity certificate. */
  certFingerprint: string;
  /**
   * The device finished an enrollment (a TokenUpdate) and has not sent
   * CheckOut since. A device re-authenticating between its Authenticate and
   * TokenUpdate is still enrolled: that moment opens no window.
   */
  enrolled: boolean;
  /** The device's last answered request on any channel, or its Authenticate. */
  lastContactAt: number;
}

/** Everything held for a device since its last binding: one row per device. */
export interface RebindHold {
  deviceId: string;
  /** The latest held certificate, or the approved one (which a later held one does not replace). */
  certFingerprint: string;
  /** The first held attempt since the last binding. */
  heldAt: number;
  /** Held attempts of every certificate since the last binding. */
  attempts: number;
  /** When a push to the device's current identity was last accepted by APNs (a failed one does not count). */
  pushedAt: number | null;
  /** When a push to the current identity was last claimed, sent or not: the per-device rate. */
  pushClaimedAt: number | null;
  approvedAt: number | null;
  /** When the last enrollment.rebind_held event was written. */
  notedAt: number | null;
}

/** One distinct certificate held for a device since its last binding. */
export interface HeldCertificate {
  certFingerprint: string;
  firstHeldAt: number;
  lastHeldAt: number;
  attempts: number;
}

/** A held attempt as RebindStore.hold recorded it. */
export interface HeldAttempt {
  hold: RebindHold;
  /**
   * This attempt is the first since `noteIntervalMs`: it gets the event and the
   * log line, which speak for `attempts` attempts (this one and those not noted
   * since the previous event). Undefined: stay quiet.
   */
  note?: { attempts: number };
}

/** Distinct certificates remembered per device; attempts of more are still counted in the hold. */
export const MAX_HELD_CERTS = 32;

/** Held re-bindings (core/cert-binding.ts) and the operator's approvals of them. */
export class RebindStore {
  constructor(private readonly db: Database) {}

  async binding(deviceId: string): Promise<Binding | undefined> {
    const row = await this.db.get<{
      cert_fingerprint: string;
      authenticated_at: number | string;
      checked_out_at: number | string | null;
      channels: number | string;
      seen: number | string | null;
    }>(
      `SELECT d.cert_fingerprint, d.authenticated_at, d.checked_out_at,
         (SELECT COUNT(*) FROM enrollments e WHERE e.device_id = d.id) AS channels,
         (SELECT MAX(e.last_seen_at) FROM enrollments e WHERE e.device_id = d.id) AS seen
       FROM devices d WHERE d.id = ?`,
      [deviceId],
    );
    if (!row) return undefined;
    return {
      certFingerprint: row.cert_fingerprint,
      enrolled: Number(row.channels) > 0 && row.checked_out_at === null,
      lastContactAt: Math.max(Number(row.authenticated_at), row.seen === null ? 0 : Number(row.seen)),
    };
  }

  /**
   * Records an attempt of `fingerprint` to take the device over: counted for
   * the device and for the certificate (the first MAX_HELD_CERTS distinct ones).
   * It becomes the held certificate unless one is approved. Whether it is noted
   * (an event, a log line) is decided here, at most once per `noteIntervalMs`
   * per device over every process, whichever certificates alternate.
   */
  async hold(deviceId: string, fingerprint: string, now: number, noteIntervalMs: number): Promise<HeldAttempt> {
    const row = await this.db.transaction(async (tx) => {
      const counted = await tx.run(
        "UPDATE rebind_held_certs SET attempts = attempts + 1, last_held_at = ? WHERE device_id = ? AND cert_fingerprint = ?",
        [now, deviceId, fingerprint],
      );
      if (counted === 0) {
        await tx.run(
          `INSERT INTO rebind_held_certs (device_id, cert_fingerprint, first_held_at, last_held_at, attempts)
           SELECT ?, ?, ?, ?, 1 WHERE (SELECT COUNT(*) FROM rebind_held_certs WHERE device_id = ?) < ?
           ON CONFLICT (device_id, cert_fingerprint) DO NOTHING`,
          [deviceId, fingerprint, now, now, deviceId, MAX_HELD_CERTS],
        );
      }
      // unnoted = 0 after the upsert: this attempt is noted (noted_at = now), and
      // noted_count says how many attempts the note speaks for.
      return tx.get<{ unnoted: number | string; noted_count: number | string }>(
        `INSERT INTO rebind_holds (device_id, cert_fingerprint, held_at, attempts, noted_at, unnoted, noted_count) VALUES (?, ?, ?, 1, ?, 0, 1)
         ON CONFLICT (device_id) DO UPDATE SET
           attempts = rebind_holds.attempts + 1,
           cert_fingerprint = CASE WHEN rebind_holds.approved_at IS NULL THEN excluded.cert_fingerprint ELSE rebind_holds.cert_fingerprint END,
           noted_count = CASE WHEN rebind_holds.noted_at IS NULL OR rebind_holds.noted_at <= ? THEN rebind_holds.unnoted + 1 ELSE rebind_holds.noted_count END,
           unnoted = CASE WHEN rebind_holds.noted_at IS NULL OR rebind_holds.noted_at <= ? THEN 0 ELSE rebind_holds.unnoted + 1 END,
           noted_at = CASE WHEN rebind_holds.noted_at IS NULL OR rebind_holds.noted_at <= ? THEN excluded.noted_at ELSE rebind_holds.noted_at END
         RETURNING unnoted, noted_count`,
        [deviceId, fingerprint, now, now, now - noteIntervalMs, now - noteIntervalMs, now - noteIntervalMs],
      );
    });
    const hold = (await this.get(deviceId))!;
    return { hold, note: row && Number(row.unnoted) === 0 ? { attempts: Number(row.noted_count) } : undefined };
  }

  /** Every distinct certificate held since the last binding, the most recent first. */
  async heldCertificates(deviceId: string): Promise<HeldCertificate[]> {
    const rows = await this.db.all<{
      cert_fingerprint: string;
      first_held_at: number | string;
      last_held_at: number | string;
      attempts: number | string;
    }>(
      "SELECT cert_fingerprint, first_held_at, last_held_at, attempts FROM rebind_held_certs WHERE device_id = ? ORDER BY last_held_at DESC, cert_fingerprint",
      [deviceId],
    );
    return rows.map((r) => ({
      certFingerprint: r.cert_fingerprint,
      firstHeldAt: Number(r.first_held_at),
      lastHeldAt: Number(r.last_held_at),
      attempts: Number(r.attempts),
    }));
  }

  /** Claims the push of the device's current identity: true at most once per `intervalMs` per device over every process. */
  async claimPush(deviceId: string, now: number, intervalMs: number): Promise<boolean> {
    const changed = await this.db.run(
      "UPDATE rebind_holds SET push_claimed_at = ? WHERE device_id = ? AND (push_claimed_at IS NULL OR push_claimed_at <= ?)",
      [now, deviceId, now - intervalMs],
    );
    return changed === 1;
  }

  /** APNs accepted the push claimed at `claimedAt`: from then on the current identity's silence is an answer. */
  async pushed(deviceId: string, claimedAt: number): Promise<void> {
    await this.db.run("UPDATE rebind_holds SET pushed_at = ? WHERE device_id = ? AND (pushed_at IS NULL OR pushed_at < ?)", [
      claimedAt,
      deviceId,
      claimedAt,
    ]);
  }

  /**
   * The operator lets `fingerprint` re-bind the device at its next
   * Authenticate (held or not yet). Returns the hold as it is now.
   */
  async approve(deviceId: string, fingerprint: string, now: number): Promise<RebindHold> {
    await this.db.run(
      `INSERT INTO rebind_holds (device_id, cert_fingerprint, held_at, attempts, approved_at) VALUES (?, ?, ?, 0, ?)
       ON CONFLICT (device_id) DO UPDATE SET cert_fingerprint = excluded.cert_fingerprint, approved_at = excluded.approved_at`,
      [deviceId, fingerprint, now, now],
    );
    return (await this.get(deviceId))!;
  }

  async get(deviceId: string): Promise<RebindHold | undefined> {
    const r = await this.db.get<{
      device_id: string;
      cert_fingerprint: string;
      held_at: number | string;
      attempts: number | string;
      pushed_at: number | string | null;
      push_claimed_at: number | string | null;
      approved_at: number | string | null;
      noted_at: number | string | null;
    }>(
      "SELECT device_id, cert_fingerprint, held_at, attempts, pushed_at, push_claimed_at, approved_at, noted_at FROM rebind_holds WHERE device_id = ?",
      [deviceId],
    );
    if (!r) return undefined;
    return {
      deviceId: r.device_id,
      certFingerprint: r.cert_fingerprint,
      heldAt: Number(r.held_at),
      attempts: Number(r.attempts),
      pushedAt: nullableNumber(r.pushed_at),
      pushClaimedAt: nullableNumber(r.push_claimed_at),
      approvedAt: nullableNumber(r.approved_at),
      notedAt: nullableNumber(r.noted_at),
    };
  }
}

function nullableNumber(v: number | string | null): number | null {
  return v === null ? null : Number(v);
}
