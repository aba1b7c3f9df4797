import path from "node:path";
import { BadRequest } from "../errors.ts";
import { CommandStore } from "./commands.ts";
import type { Database } from "./db.ts";
import { EnrollmentStore } from "./enrollments.ts";
import { EventStore } from "./events.ts";
import { migrate } from "./migrate.ts";
import { SettingStore } from "./settings.ts";
import { DirectoryStore } from "./directory.ts";
import { UserSessionStore } from "./user-sessions.ts";
import { SqliteDatabase } from "./sqlite.ts";
import { PostgresDatabase } from "./postgres.ts";

/** All of Orchard's state, split by concern; every process shares it. */
export class Store {
  readonly enrollments: EnrollmentStore;
  readonly commands: CommandStore;
  readonly events: EventStore;
  readonly settings: SettingStore;
  readonly directory: DirectoryStore;
  readonly userSessions: UserSessionStore;

  constructor(readonly db: Database) {
    this.enrollments = new EnrollmentStore(db);
    this.commands = new CommandStore(db);
    this.events = new EventStore(db);
    this.settings = new SettingStore(db);
    this.directory = new DirectoryStore(db);
    this.userSessions = new UserSessionStore(db);
  }

  /** True when the database answers (health checks). */
  async ping(): Promise<boolean> {
    try {
      await this.db.get("SELECT 1 AS ok");
      return true;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

/**
 * Opens the store named by a --storage URL (`sqlite:/path/file.db`,
 * `postgres://user@host:port/db`) or, with none, SQLite in the data dir;
 * applies pending migrations.
 */
export async function openStore(storage: string | undefined, dataDir: string, poolSize?: number): Promise<Store> {
  let db: Database;
  if (storage === undefined || storage === "") {
    db = new SqliteDatabase(path.join(dataDir, "orchard.db"));
  } else if (storage.startsWith("sqlite:")) {
    db = new SqliteDatabase(storage.slice("sqlite:".length).replace(/^\/\/(?=\/)/, ""));
  } else if (/^postgres(ql)?:\/\//.test(storage)) {
    db = new PostgresDatabase(storage, poolSize);
  } else {
    throw new BadRequest(`unsupported --storage ${storage.split(":")[0]}: use sqlite:/path/file.db or postgres://user@host:port/db`);
  }
  try {
    await migrate(db);
  } catch (err) {
    await db.close();
    throw err;
  }
  return new Store(db);
}
