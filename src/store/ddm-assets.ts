import { createHash } from "node:crypto";
import type { Database } from "./db.ts";

// The files Orchard serves to enrolled devices for Declarative Device
// Management: DDM assets (the data of com.apple.asset.* declarations) and
// stored profiles (the .mobileconfig of com.apple.configuration.legacy).
// core/ddm-assets.ts turns `orchard:asset/<id>` and `orchard:profile/<id>` in
// a declaration into the device URL with the size and hash read from here.

/** An asset as the API and the declarations see it: everything but the bytes. */
export interface DdmAsset {
  id: string;
  contentType: string;
  size: number;
  /** Lowercase hex SHA-256 of the bytes. */
  sha256: string;
  createdAt: number;
  updatedAt: number;
}

/** A stored profile as the API and the declarations see it: everything but the bytes. */
export interface DdmProfile {
  id: string;
  size: number;
  /** Lowercase hex SHA-256 of the bytes. */
  sha256: string;
  /** CMS-signed (served as uploaded). */
  signed: boolean;
  payloadIdentifier: string | null;
  payloadDisplayName: string | null;
  createdAt: number;
  updatedAt: number;
}

/** What a PUT did: created a new one, replaced different bytes, or found the same bytes stored. */
export interface PutOutcome<T> {
  stored: T;
  created: boolean;
  /** The bytes (or, for an asset, the content type) differ from what was stored: declarations that name it change. */
  changed: boolean;
}

export function sha256Hex(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Ids are Orchard's own (core/ddm-assets.ts ASSET_ID); listing is by id, a page at a time. */
export interface ListOptions {
  after?: string;
  limit: number;
}

type Num = number | string;

interface AssetRow {
  id: string;
  content_type: string;
  size: Num;
  sha256: string;
  created_at: Num;
  updated_at: Num;
}

interface ProfileRow {
  id: string;
  size: Num;
  sha256: string;
  signed: Num;
  payload_identifier: string | null;
  payload_display_name: string | null;
  created_at: Num;
  updated_at: Num;
}

const ASSET_COLUMNS = "id, content_type, size, sha256, created_at, updated_at";
const PROFILE_COLUMNS = "id, size, sha256, signed, payload_identifier, payload_display_name, created_at, updated_at";

function toAsset(r: AssetRow): DdmAsset {
  return {
    id: r.id,
    contentType: r.content_type,
    size: Number(r.size),
    sha256: r.sha256,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

function toProfile(r: ProfileRow): DdmProfile {
  return {
    id: r.id,
    size: Number(r.size),
    sha256: r.sha256,
    signed: Number(r.signed) === 1,
    payloadIdentifier: r.payload_identifier,
    payloadDisplayName: r.payload_display_name,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

/** DDM assets: arbitrary bytes with a media type. */
export class DdmAssetStore {
  constructor(private readonly db: Database) {}

  /** Stores or replaces an asset; one transaction, so a failed write leaves the old one whole. */
  async put(id: string, contentType: string, bytes: Buffer, now: number): Promise<PutOutcome<DdmAsset>> {
    const sha256 = sha256Hex(bytes);
    return this.db.transaction(async (tx) => {
      const old = await tx.get<{ sha256: string; content_type: string }>("SELECT sha256, content_type FROM ddm_assets WHERE id = ?", [id]);
      const row = await tx.get<AssetRow>(
        `INSERT INTO ddm_assets (id, content_type, size, sha256, bytes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET content_type = excluded.content_type, size = excluded.size, sha256 = excluded.sha256,
           bytes = excluded.bytes, updated_at = excluded.updated_at
         RETURNING ${ASSET_COLUMNS}`,
        [id, contentType, bytes.length, sha256, bytes, now, now],
      );
      return {
        stored: toAsset(row!),
        created: old === undefined,
        changed: old !== undefined && (old.sha256 !== sha256 || old.content_type !== contentType),
      };
    });
  }

  async get(id: string): Promise<DdmAsset | undefined> {
    const row = await this.db.get<AssetRow>(`SELECT ${ASSET_COLUMNS} FROM ddm_assets WHERE id = ?`, [id]);
    return row && toAsset(row);
  }

  /** The asset with its bytes (a download). */
  async withBytes(id: string): Promise<(DdmAsset & { bytes: Buffer }) | undefined> {
    const row = await this.db.get<AssetRow & { bytes: Buffer }>(`SELECT ${ASSET_COLUMNS}, bytes FROM ddm_assets WHERE id = ?`, [id]);
    return row && { ...toAsset(row), bytes: asBuffer(row.bytes) };
  }

  async list(o: ListOptions): Promise<DdmAsset[]> {
    const rows = await this.db.all<AssetRow>(`SELECT ${ASSET_COLUMNS} FROM ddm_assets WHERE id > ? ORDER BY id LIMIT ?`, [
      o.after ?? "",
      o.limit,
    ]);
    return rows.map(toAsset);
  }

  /** True when there was one to remove. */
  async remove(id: string): Promise<boolean> {
    return (await this.db.run("DELETE FROM ddm_assets WHERE id = ?", [id])) > 0;
  }

  /**
   * The device that may download DDM files with this identity certificate:
   * one bound to it (its Authenticate), not checked out, with a channel
   * enabled (a TokenUpdate since its last Authenticate). Undefined for any
   * other certificate. Which files it may fetch is the declarations' business
   * (core/ddm-assets.ts deviceMayFetch: those its channels' declarations name).
   */
  async enrolledDevice(certFingerprint: string): Promise<string | undefined> {
    const row = await this.db.get<{ id: string }>(
      `SELECT d.id FROM devices d WHERE d.cert_fingerprint = ? AND d.checked_out_at IS NULL
         AND EXISTS (SELECT 1 FROM enrollments e WHERE e.device_id = d.id AND e.enabled = 1)
       LIMIT 1`,
      [certFingerprint],
    );
    return row?.id;
  }
}

/** Stored profiles (.mobileconfig, plain or CMS-signed). */
export class DdmProfileStore {
  constructor(private readonly db: Database) {}

  async put(
    id: string,
    p: { bytes: Buffer; signed: boolean; payloadIdentifier: string | null; payloadDisplayName: string | null },
    now: number,
  ): Promise<PutOutcome<DdmProfile>> {
    const sha256 = sha256Hex(p.bytes);
    return this.db.transaction(async (tx) => {
      const old = await tx.get<{ sha256: string }>("SELECT sha256 FROM ddm_profiles WHERE id = ?", [id]);
      const row = await tx.get<ProfileRow>(
        `INSERT INTO ddm_profiles (id, size, sha256, signed, payload_identifier, payload_display_name, bytes, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256, signed = excluded.signed,
           payload_identifier = excluded.payload_identifier, payload_display_name = excluded.payload_display_name,
           bytes = excluded.bytes, updated_at = excluded.updated_at
         RETURNING ${PROFILE_COLUMNS}`,
        [id, p.bytes.length, sha256, p.signed ? 1 : 0, p.payloadIdentifier, p.payloadDisplayName, p.bytes, now, now],
      );
      return { stored: toProfile(row!), created: old === undefined, changed: old !== undefined && old.sha256 !== sha256 };
    });
  }

  async get(id: string): Promise<DdmProfile | undefined> {
    const row = await this.db.get<ProfileRow>(`SELECT ${PROFILE_COLUMNS} FROM ddm_profiles WHERE id = ?`, [id]);
    return row && toProfile(row);
  }

  async withBytes(id: string): Promise<(DdmProfile & { bytes: Buffer }) | undefined> {
    const row = await this.db.get<ProfileRow & { bytes: Buffer }>(`SELECT ${PROFILE_COLUMNS}, bytes FROM ddm_profiles WHERE id = ?`, [id]);
    return row && { ...toProfile(row), bytes: asBuffer(row.bytes) };
  }

  async list(o: ListOptions): Promise<DdmProfile[]> {
    const rows = await this.db.all<ProfileRow>(`SELECT ${PROFILE_COLUMNS} FROM ddm_profiles WHERE id > ? ORDER BY id LIMIT ?`, [
      o.after ?? "",
      o.limit,
    ]);
    return rows.map(toProfile);
  }

  async remove(id: string): Promise<boolean> {
    return (await this.db.run("DELETE FROM ddm_profiles WHERE id = ?", [id])) > 0;
  }
}

/** Both drivers hand back a Buffer; a copy only when one does not (a download may be tens of MB). */
function asBuffer(bytes: Buffer | Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
}
