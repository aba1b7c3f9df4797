import type { Database } from "./db.ts";

export type DirectoryState = "managed" | "declined";
/**
 * The hash of a stored HA1. Only MD5 is written (no challenge offers another);
 * SHA-256 is still read, from rows an older Orchard wrote (migration 30 deletes them).
 */
export type DigestHashName = "MD5" | "SHA-256";

/** A directory entry without its digests: what a login needs to decide. */
export type DirectoryEntry = Omit<DirectoryUser, "digests">;

export interface DirectoryUser {
  shortName: string;
  guid: string | null;
  fullName: string | null;
  state: DirectoryState;
  /** Realm and hash of each digest held; never the digests themselves. */
  digests: Array<{ realm: string; algorithm: DigestHashName }>;
  createdAt: number;
  updatedAt: number;
}

export interface DirectoryUserUpdate {
  shortName: string;
  guid?: string | null;
  fullName?: string | null;
  state?: DirectoryState;
  /**
   * The user's digests for each realm named here: all of the user's digests
   * in that realm are replaced by these (realms not named are kept).
   */
  digests?: Array<{ realm: string; algorithm: DigestHashName; ha1: string }>;
}

/**
 * The entry a UserAuthenticate names (params: its GUID, its short name or
 * null): the one with its GUID, else a GUID-less one with its short name.
 * Two index lookups, not one OR: PostgreSQL planned the OR again at every
 * call (its generic plan looked dearer).
 */
export const ENTRY_FOR_USER_SQL = `SELECT * FROM (SELECT *, 0 AS by_short_name FROM directory_users WHERE guid = ?
     UNION ALL SELECT *, 1 AS by_short_name FROM directory_users WHERE guid IS NULL AND short_name = ?) AS u
   ORDER BY by_short_name LIMIT 1`;

export interface UserRow {
  short_name: string;
  guid: string | null;
  full_name: string | null;
  state: DirectoryState;
  created_at: number;
  updated_at: number;
}

/** The users UserAuthenticate can authenticate, with their per-realm HA1 digests. */
export class DirectoryStore {
  constructor(private readonly db: Database) {}

  /** Creates or updates a user; resolves to true when it was created. */
  async put(u: DirectoryUserUpdate, now: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const existing = await tx.get<UserRow>("SELECT * FROM directory_users WHERE short_name = ?", [u.shortName]);
      if (existing) {
        await tx.run("UPDATE directory_users SET guid = ?, full_name = ?, state = ?, updated_at = ? WHERE short_name = ?", [
          u.guid === undefined ? existing.guid : u.guid,
          u.fullName === undefined ? existing.full_name : u.fullName,
          u.state ?? existing.state,
          now,
          u.shortName,
        ]);
      } else {
        await tx.run("INSERT INTO directory_users (short_name, guid, full_name, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)", [
          u.shortName,
          u.guid ?? null,
          u.fullName ?? null,
          u.state ?? "managed",
          now,
          now,
        ]);
      }
      // A new password replaces the realm's digests of every hash: a digest of
      // another hash left from the old password would still log in with it.
      for (const realm of new Set((u.digests ?? []).map((d) => d.realm))) {
        await tx.run("DELETE FROM directory_digests WHERE short_name = ? AND realm = ?", [u.shortName, realm]);
      }
      for (const d of u.digests ?? []) {
        await tx.run(
          `INSERT INTO directory_digests (short_name, realm, algorithm, ha1) VALUES (?, ?, ?, ?)
           ON CONFLICT (short_name, realm, algorithm) DO UPDATE SET ha1 = excluded.ha1`,
          [u.shortName, d.realm, d.algorithm, d.ha1],
        );
      }
      return !existing;
    });
  }

  async get(shortName: string): Promise<DirectoryUser | undefined> {
    const row = await this.db.get<UserRow>("SELECT * FROM directory_users WHERE short_name = ?", [shortName]);
    return row && this.withDigests(row);
  }

  /** The entry alone, without the digests list (the login path reads one HA1 with ha1()). */
  async entry(shortName: string): Promise<DirectoryEntry | undefined> {
    const row = await this.db.get<UserRow>("SELECT * FROM directory_users WHERE short_name = ?", [shortName]);
    return row && toEntry(row);
  }

  /**
   * The entry a UserAuthenticate names, in one read: the one with its GUID,
   * else a GUID-less entry with its short name.
   */
  async entryForUser(guid: string, shortName: string | undefined): Promise<DirectoryEntry | undefined> {
    const row = await this.db.get<UserRow>(ENTRY_FOR_USER_SQL, [guid, shortName ?? null]);
    return row && toEntry(row);
  }

  async guidInUse(guid: string, exceptShortName: string): Promise<boolean> {
    const row = await this.db.get("SELECT 1 AS x FROM directory_users WHERE guid = ? AND short_name <> ?", [guid, exceptShortName]);
    return row !== undefined;
  }

  async list(after: string | undefined, limit: number): Promise<DirectoryUser[]> {
    const rows = await this.db.all<UserRow>(
      `SELECT * FROM directory_users ${after === undefined ? "" : "WHERE short_name > ?"} ORDER BY short_name LIMIT ?`,
      after === undefined ? [limit] : [after, limit],
    );
    return Promise.all(rows.map((r) => this.withDigests(r)));
  }

  async remove(shortName: string): Promise<boolean> {
    return (await this.db.run("DELETE FROM directory_users WHERE short_name = ?", [shortName])) > 0;
  }

  /** The HA1 for checking a digest response; only the UserAuthenticate path reads it. */
  async ha1(shortName: string, realm: string, algorithm: DigestHashName): Promise<string | undefined> {
    const row = await this.db.get<{ ha1: string }>(
      "SELECT ha1 FROM directory_digests WHERE short_name = ? AND realm = ? AND algorithm = ?",
      [shortName, realm, algorithm],
    );
    return row?.ha1;
  }

  private async withDigests(r: UserRow): Promise<DirectoryUser> {
    const digests = await this.db.all<{ realm: string; algorithm: DigestHashName }>(
      "SELECT realm, algorithm FROM directory_digests WHERE short_name = ? ORDER BY realm, algorithm",
      [r.short_name],
    );
    return { ...toEntry(r), digests };
  }
}

/** An entry from a row of directory_users (extra columns are left out). */
export function toEntry(r: UserRow): DirectoryEntry {
  return {
    shortName: r.short_name,
    guid: r.guid,
    fullName: r.full_name,
    state: r.state,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}
