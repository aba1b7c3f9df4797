import { createHash } from "node:crypto";
import type { Database } from "./db.ts";
import type { ChallengeState } from "./scep.ts";

// DDM credentials: the templates an operator names with
// orchard:credential/scep/<name> (core/ddm-credentials.ts checks and renders
// them), the single-use challenges each device is handed in its credential
// JSON, and the certificates the credential CA issued for them
// (scep/credential-service.ts).

export interface DdmCredential {
  name: string;
  kind: "scep";
  /** The template as JSON text, as core/ddm-credentials.ts checked it. */
  spec: string;
  /** Lowercase hex SHA-256 of spec. */
  revision: string;
  createdAt: number;
  updatedAt: number;
}

/** A device's facts as a credential template may name them (DdmCredentialStore.deviceFacts). */
export interface CredentialDeviceFacts {
  /** The serial number of the device's last Authenticate: its claim, unless serialBoundByAde. */
  serialNumber: string | null;
  /** The device's identity certificate was issued for this serial by Orchard's ADE enrollment (core/ade-identity.ts). */
  serialBoundByAde: boolean;
  /** Another device enrolled, not checked out, that reported the same serial number. */
  serialAlsoEnrolledAs: string | undefined;
}

/**
 * What one device may ask for with its challenge: the template rendered for
 * it (core/ddm-credentials.ts), stored with the challenge as JSON.
 */
export interface CredentialRequest {
  subject: Array<[string, string]>;
  subjectAltNames: Array<{ type: "dns" | "email" | "url" | "upn"; value: string }>;
  /** RSA modulus bits. */
  keySize: number;
  /** Apple's Key Usage bitmask (1 signing, 4 encryption). */
  keyUsage: number;
  extendedKeyUsages: string[];
  days: number;
}

/** A challenge's binding: the device it was handed to, the template, and what it may buy (JSON). */
export interface CredentialChallenge {
  deviceId: string;
  credential: string;
  request: string;
  state: ChallengeState;
}

export interface CredentialCertificateRecord {
  serialNumber: string;
  fingerprint: string;
  deviceId: string;
  credential: string;
  subject: string;
  issuedAt: number;
  notAfter: number;
  transactionId: string;
  certDer: Buffer;
}

type Num = number | string;
interface CredentialRow {
  name: string;
  kind: string;
  spec: string;
  revision: string;
  created_at: Num;
  updated_at: Num;
}
const COLUMNS = "name, kind, spec, revision, created_at, updated_at";
const CERT_COLUMNS = "serial_number, fingerprint, device_id, credential, subject, issued_at, not_after, transaction_id, cert_der";
/** Spent and expired challenges are kept this long, so that a refusal says which it was. */
const KEEP_MS = 24 * 60 * 60 * 1000;

function toCredential(r: CredentialRow): DdmCredential {
  return {
    name: r.name,
    kind: r.kind as "scep",
    spec: r.spec,
    revision: r.revision,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

export class DdmCredentialStore {
  constructor(private readonly db: Database) {}

  /** Stores or replaces a template; `changed` when it was there with another spec. */
  async put(name: string, kind: "scep", spec: string, now: number): Promise<{ stored: DdmCredential; created: boolean; changed: boolean }> {
    const revision = createHash("sha256").update(spec, "utf8").digest("hex");
    return this.db.transaction(async (tx) => {
      const old = await tx.get<{ revision: string }>("SELECT revision FROM ddm_credentials WHERE name = ?", [name]);
      const row = await tx.get<CredentialRow>(
        `INSERT INTO ddm_credentials (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, spec = excluded.spec, revision = excluded.revision,
           updated_at = CASE WHEN ddm_credentials.revision = excluded.revision THEN ddm_credentials.updated_at ELSE excluded.updated_at END
         RETURNING ${COLUMNS}`,
        [name, kind, spec, revision, now, now],
      );
      return { stored: toCredential(row!), created: old === undefined, changed: old !== undefined && old.revision !== revision };
    });
  }

  async get(name: string): Promise<DdmCredential | undefined> {
    const row = await this.db.get<CredentialRow>(`SELECT ${COLUMNS} FROM ddm_credentials WHERE name = ?`, [name]);
    return row && toCredential(row);
  }

  async list(o: { after?: string; limit: number }): Promise<DdmCredential[]> {
    const rows = await this.db.all<CredentialRow>(`SELECT ${COLUMNS} FROM ddm_credentials WHERE name > ? ORDER BY name LIMIT ?`, [
      o.after ?? "",
      o.limit,
    ]);
    return rows.map(toCredential);
  }

  async remove(name: string): Promise<boolean> {
    return (await this.db.run("DELETE FROM ddm_credentials WHERE name = ?", [name])) > 0;
  }

  /**
   * What a template may name of a device, besides its UDID (its id), and how far its serial number is its own:
   * whether the certificate the device is bound to was issued for that serial by ADE enrollment, and another
   * device enrolled (not checked out) under the same serial in any letter case, if there is one (the first by id).
   * One statement (migration 31 indexes the upper-cased serial).
   */
  async deviceFacts(deviceId: string): Promise<CredentialDeviceFacts> {
    const row = await this.db.get<{ serial_number: string | null; ade_bound: number; other_device: string | null }>(
      `SELECT d.serial_number,
         CASE WHEN EXISTS (SELECT 1 FROM scep_certificates c WHERE c.fingerprint = d.cert_fingerprint AND c.ade_serial = d.serial_number)
           THEN 1 ELSE 0 END AS ade_bound,
         (SELECT o.id FROM devices o WHERE UPPER(o.serial_number) = UPPER(d.serial_number) AND o.id <> d.id
           AND o.checked_out_at IS NULL ORDER BY o.id LIMIT 1) AS other_device
       FROM devices d WHERE d.id = ?`,
      [deviceId],
    );
    return {
      serialNumber: row?.serial_number ?? null,
      serialBoundByAde: Number(row?.ade_bound ?? 0) === 1,
      serialAlsoEnrolledAs: row?.other_device ?? undefined,
    };
  }

  /** Stores a new challenge's hash, bound to a device and what it may buy; old spent ones are deleted here, lazily. */
  async createChallenge(
    hash: string,
    c: { deviceId: string; credential: string; request: string },
    now: number,
    expiresAt: number,
  ): Promise<void> {
    await this.db.run("DELETE FROM credential_challenges WHERE expires_at < ?", [now - KEEP_MS]);
    await this.db.run(
      "INSERT INTO credential_challenges (hash, device_id, credential, request, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, NULL)",
      [hash, c.deviceId, c.credential, c.request, now, expiresAt],
    );
  }

  async challenge(hash: string, now: number): Promise<CredentialChallenge | undefined> {
    const row = await this.db.get<{ device_id: string; credential: string; request: string; expires_at: Num; used_at: Num | null }>(
      "SELECT device_id, credential, request, expires_at, used_at FROM credential_challenges WHERE hash = ?",
      [hash],
    );
    if (!row) return undefined;
    const state: ChallengeState = row.used_at !== null ? "used" : Number(row.expires_at) <= now ? "expired" : "valid";
    return { deviceId: row.device_id, credential: row.credential, request: row.request, state };
  }

  /** Spends a challenge: true for exactly one caller, across all processes, while it is unused and unexpired. */
  async consumeChallenge(hash: string, now: number): Promise<boolean> {
    const changed = await this.db.run(
      "UPDATE credential_challenges SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ?",
      [now, hash, now],
    );
    return changed === 1;
  }

  /** False when the serial or fingerprint was seen before (nothing written). */
  async recordCertificate(c: CredentialCertificateRecord): Promise<boolean> {
    const changed = await this.db.run(
      `INSERT INTO credential_certificates (${CERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      [c.serialNumber, c.fingerprint, c.deviceId, c.credential, c.subject, c.issuedAt, c.notAfter, c.transactionId, c.certDer],
    );
    return changed === 1;
  }

  /** The certificates issued for a transaction id (a client resending a request it got no answer to). */
  async certificatesByTransaction(transactionId: string): Promise<CredentialCertificateRecord[]> {
    const rows = await this.db.all<{
      serial_number: string;
      fingerprint: string;
      device_id: string;
      credential: string;
      subject: string;
      issued_at: Num;
      not_after: Num;
      transaction_id: string;
      cert_der: Buffer;
    }>(`SELECT ${CERT_COLUMNS} FROM credential_certificates WHERE transaction_id = ? ORDER BY issued_at DESC LIMIT 10`, [transactionId]);
    return rows.map((r) => ({
      serialNumber: r.serial_number,
      fingerprint: r.fingerprint,
      deviceId: r.device_id,
      credential: r.credential,
      subject: r.subject,
      issuedAt: Number(r.issued_at),
      notAfter: Number(r.not_after),
      transactionId: r.transaction_id,
      certDer: Buffer.from(r.cert_der),
    }));
  }
}
