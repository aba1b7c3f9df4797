import type { Database } from "./db.ts";

/** How long a spent or expired challenge is kept, so that a refusal can say which it was. */
export const SCEP_CHALLENGE_KEEP_MS = 24 * 60 * 60 * 1000;

export type ChallengeState = "valid" | "used" | "expired" | "unknown";

export interface ScepCertificateRecord {
  serialNumber: string;
  fingerprint: string;
  subject: string;
  issuedAt: number;
  notAfter: number;
  requestType: "PKCSReq" | "RenewalReq";
  transactionId: string;
  deviceId: string | null;
  /** Fingerprint of the certificate a renewal replaced. */
  renewedFrom: string | null;
  certDer: Buffer;
  /** The ADE serial number it was issued for (a challenge of the ADE enrollment URL, or a renewal of such a certificate). */
  adeSerial?: string | null;
}

interface CertificateRow {
  serial_number: string;
  fingerprint: string;
  subject: string;
  issued_at: number | string;
  not_after: number | string;
  request_type: string;
  transaction_id: string;
  device_id: string | null;
  renewed_from: string | null;
  cert_der: Buffer;
  ade_serial: string | null;
}

const CERT_COLUMNS =
  "serial_number, fingerprint, subject, issued_at, not_after, request_type, transaction_id, device_id, renewed_from, cert_der, ade_serial";

/** SCEP challenge passwords (as hashes) and the certificates SCEP issued. */
export class ScepStore {
  constructor(private readonly db: Database) {}

  /**
   * Stores a new challenge's hash. Challenges expired more than a day ago are
   * deleted here, lazily: creating challenges is what makes the table grow.
   */
  async createChallenge(hash: string, now: number, expiresAt: number, adeSerial: string | null = null): Promise<void> {
    await this.db.run("DELETE FROM scep_challenges WHERE expires_at < ?", [now - SCEP_CHALLENGE_KEEP_MS]);
    await this.db.run("INSERT INTO scep_challenges (hash, created_at, expires_at, used_at, ade_serial) VALUES (?, ?, ?, NULL, ?)", [
      hash,
      now,
      expiresAt,
      adeSerial,
    ]);
  }

  /**
   * Spends a challenge: for exactly one caller, across all processes, while it
   * is unused and unexpired; false otherwise. A challenge of the ADE
   * enrollment URL answers the serial number it is bound to.
   */
  async consumeChallenge(hash: string, now: number): Promise<false | { adeSerial: string | null }> {
    const row = await this.db.get<{ ade_serial: string | null }>(
      "UPDATE scep_challenges SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ? RETURNING ade_serial",
      [now, hash, now],
    );
    return row === undefined ? false : { adeSerial: row.ade_serial };
  }

  /** Why a challenge cannot be spent (for the log; the client hears one answer for all). */
  async challengeState(hash: string, now: number): Promise<ChallengeState> {
    const row = await this.db.get<{ expires_at: number | string; used_at: number | string | null }>(
      "SELECT expires_at, used_at FROM scep_challenges WHERE hash = ?",
      [hash],
    );
    if (!row) return "unknown";
    if (row.used_at !== null) return "used";
    return Number(row.expires_at) <= now ? "expired" : "valid";
  }

  /**
   * Records an issued certificate. False when it renews a certificate that was
   * already renewed (renewed_from is unique): nothing is written then.
   */
  async recordCertificate(c: ScepCertificateRecord): Promise<boolean> {
    const changed = await this.db.run(
      `INSERT INTO scep_certificates (${CERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      [
        c.serialNumber,
        c.fingerprint,
        c.subject,
        c.issuedAt,
        c.notAfter,
        c.requestType,
        c.transactionId,
        c.deviceId,
        c.renewedFrom,
        c.certDer,
        c.adeSerial ?? null,
      ],
    );
    return changed === 1;
  }

  async certificateByFingerprint(fingerprint: string): Promise<ScepCertificateRecord | undefined> {
    const row = await this.db.get<CertificateRow>(`SELECT ${CERT_COLUMNS} FROM scep_certificates WHERE fingerprint = ?`, [fingerprint]);
    return row && toRecord(row);
  }

  /** The certificates issued for a transaction id (a client resending a request it got no answer to). */
  async certificatesByTransaction(transactionId: string): Promise<ScepCertificateRecord[]> {
    const rows = await this.db.all<CertificateRow>(
      `SELECT ${CERT_COLUMNS} FROM scep_certificates WHERE transaction_id = ? ORDER BY issued_at DESC LIMIT 10`,
      [transactionId],
    );
    return rows.map(toRecord);
  }
}

function toRecord(r: CertificateRow): ScepCertificateRecord {
  return {
    serialNumber: r.serial_number,
    fingerprint: r.fingerprint,
    subject: r.subject,
    issuedAt: Number(r.issued_at),
    notAfter: Number(r.not_after),
    requestType: r.request_type as ScepCertificateRecord["requestType"],
    transactionId: r.transaction_id,
    deviceId: r.device_id,
    renewedFrom: r.renewed_from,
    certDer: Buffer.from(r.cert_der),
    adeSerial: r.ade_serial,
  };
}
