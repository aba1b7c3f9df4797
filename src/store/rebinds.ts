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

export interface RebindHold {
  deviceId: string;
  certFingerprint: string;
  heldAt: number;
  attempts: number;
  pushedAt: number | null;
  approvedAt: number | null;
}

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
   * Records an attempt of `fingerprint` to take the device over. It replaces
   * an earlier held certificate, not an approved one. Returns the hold as it is now.
   */
  async hold(deviceId: string, fingerprint: string, now: number): Promise<RebindHold> {
    await this.db.run(
      `INSERT INTO rebind_holds (device_id, cert_fingerprint, held_at, attempts) VALUES (?, ?, ?, 1)
       ON CONFLICT (device_id) DO UPDATE SET
         attempts = CASE WHEN rebind_holds.cert_fingerprint = excluded.cert_fingerprint THEN rebind_holds.attempts + 1 ELSE 1 END,
         held_at = CASE WHEN rebind_holds.cert_fingerprint = excluded.cert_fingerprint THEN rebind_holds.held_at ELSE excluded.held_at END,
         pushed_at = CASE WHEN rebind_holds.cert_fingerprint = excluded.cert_fingerprint THEN rebind_holds.pushed_at ELSE NULL END,
         cert_fingerprint = excluded.cert_fingerprint
       WHERE rebind_holds.approved_at IS NULL OR rebind_holds.cert_fingerprint = excluded.cert_fingerprint`,
      [deviceId, fingerprint, now],
    );
    return (await this.get(deviceId))!;
  }

  /** Claims the push of the device's current identity: true at most once per `intervalMs` over every process. */
  async claimPush(deviceId: string, now: number, intervalMs: number): Promise<boolean> {
    const changed = await this.db.run("UPDATE rebind_holds SET pushed_at = ? WHERE device_id = ? AND (pushed_at IS NULL OR pushed_at <= ?)", [
      now,
      deviceId,
      now - intervalMs,
    ]);
    return changed === 1;
  }

  /**
   * The operator lets `fingerprint` (default: the held one) re-bind the
   * device at its next Authenticate. Returns the approved hold, or undefined
   * when no fingerprint was given and none is held.
   */
  async approve(deviceId: string, fingerprint: string | undefined, now: number): Promise<RebindHold | undefined> {
    if (fingerprint === undefined) {
      if ((await this.db.run("UPDATE rebind_holds SET approved_at = ? WHERE device_id = ?", [now, deviceId])) === 0) return undefined;
    } else {
      await this.db.run(
        `INSERT INTO rebind_holds (device_id, cert_fingerprint, held_at, attempts, approved_at) VALUES (?, ?, ?, 0, ?)
         ON CONFLICT (device_id) DO UPDATE SET
           attempts = CASE WHEN rebind_holds.cert_fingerprint = excluded.cert_fingerprint THEN rebind_holds.attempts ELSE 0 END,
           held_at = CASE WHEN rebind_holds.cert_fingerprint = excluded.cert_fingerprint THEN rebind_holds.held_at ELSE excluded.held_at END,
           cert_fingerprint = excluded.cert_fingerprint, approved_at = excluded.approved_at`,
        [deviceId, fingerprint, now, now],
      );
    }
    return this.get(deviceId);
  }

  async get(deviceId: string): Promise<RebindHold | undefined> {
    const r = await this.db.get<{
      device_id: string;
      cert_fingerprint: string;
      held_at: number | string;
      attempts: number | string;
      pushed_at: number | string | null;
      approved_at: number | string | null;
    }>("SELECT device_id, cert_fingerprint, held_at, attempts, pushed_at, approved_at FROM rebind_holds WHERE device_id = ?", [deviceId]);
    if (!r) return undefined;
    return {
      deviceId: r.device_id,
      certFingerprint: r.cert_fingerprint,
      heldAt: Number(r.held_at),
      attempts: Number(r.attempts),
      pushedAt: r.pushed_at === null ? null : Number(r.pushed_at),
      approvedAt: r.approved_at === null ? null : Number(r.approved_at),
    };
  }
}
