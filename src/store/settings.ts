import type { Database } from "./db.ts";

/** Server-wide values every process must share, such as the nonce secret. */
export class SettingStore {
  constructor(private readonly db: Database) {}

  async get(name: string): Promise<Buffer | undefined> {
    const row = await this.db.get<{ value: Buffer }>("SELECT value FROM settings WHERE name = ?", [name]);
    return row && Buffer.from(row.value);
  }

  /** The stored value, created with make() by whichever process asks first. */
  async getOrCreate(name: string, make: () => Buffer): Promise<Buffer> {
    await this.db.run("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", [name, make()]);
    const row = await this.db.get<{ value: Buffer }>("SELECT value FROM settings WHERE name = ?", [name]);
    return row!.value;
  }
}
