import path from "node:path";
import { BadRequest } from "../errors.ts";
import { AdeStore } from "./ade.ts";
import { AuditStore } from "./audit.ts";
import { AdeEnrollmentStore } from "./ade-enrollments.ts";
import { CommandStore } from "./commands.ts";
import { DdmAssetStore, DdmProfileStore } from "./ddm-assets.ts";
import { DdmCredentialStore } from "./ddm-credentials.ts";
import { DdmStore } from "./ddm.ts";
import { DdmStatusStore } from "./ddm-status.ts";
import type { Database, Sql } from "./db.ts";
import { EnrollmentStore } from "./enrollments.ts";
import { EventStore } from "./events.ts";
import { InventoryStore } from "./inventory.ts";
import { type HeldMigration, migrate } from "./migrate.ts";
export { SchemaTooNew } from "./migrate.ts";
import { OperatorStore } from "./operators.ts";
import { PushStore } from "./push.ts";
import { RebindStore } from "./rebinds.ts";
import { ScepStore } from "./scep.ts";
import { SettingStore } from "./settings.ts";
import { SoftwareUpdateStore } from "./software-updates.ts";
import { StatsStore } from "./stats.ts";
import { DirectoryStore } from "./directory.ts";
import { LoginStore } from "./logins.ts";
import { UserSessionStore } from "./user-sessions.ts";
import { SqliteDatabase } from "./sqlite.ts";
import { PostgresDatabase } from "./postgres.ts";
import { type ClaimedEvent, NO_TOPICS, OutboxGroupCommit, type OutboxHandoff, WebhookOutbox, type WebhookTopics } from "./webhooks.ts";

/** All of Orchard's state, split by concern; every process shares it. */
export class Store {
  /** The schema migrations openStore applied (in version order); empty when the schema was current. */
  migrated: readonly number[] = [];
  /** The migrations the store's data held back at open (the server says each loudly); tried again at the next open. */
  heldMigrations: readonly HeldMigration[] = [];
  readonly enrollments: EnrollmentStore;
  readonly commands: CommandStore;
  readonly events: EventStore;
  readonly settings: SettingStore;
  readonly directory: DirectoryStore;
  readonly userSessions: UserSessionStore;
  /** A login's common path in as few round trips as the store allows. */
  readonly logins: LoginStore;
  readonly push: PushStore;
  readonly scep: ScepStore;
  readonly rebinds: RebindStore;
  readonly stats: StatsStore;
  readonly ddmAssets: DdmAssetStore;
  readonly ddmProfiles: DdmProfileStore;
  readonly ddmCredentials: DdmCredentialStore;
  readonly ddm: DdmStore;
  readonly ddmStatus: DdmStatusStore;
  /** The webhook outbox; it writes nothing unless the Store was made withWebhookTopics. */
  readonly outbox: WebhookOutbox;
  readonly ade: AdeStore;
  /** OS updates through DDM: the software lookup feed, update policies, each device's target and state. */
  readonly softwareUpdates: SoftwareUpdateStore;
  /** Operator accounts, personal API tokens, browser sessions. */
  readonly operators: OperatorStore;
  readonly audit: AuditStore;
  readonly inventory: InventoryStore;
  readonly adeEnrollments: AdeEnrollmentStore;

  constructor(
    readonly db: Database,
    private readonly webhookTopics: WebhookTopics = NO_TOPICS,
    /** The delivery of this process, handed the events it writes (webhook/fresh-events.ts). */
    private readonly handoff?: OutboxHandoff,
    /** Inside a transaction: the events it wrote leased, handed over at its commit. */
    private readonly txAdded?: ClaimedEvent[],
  ) {
    // Outside a transaction, stand-alone webhook events are written in groups (one transaction for many).
    this.outbox = new WebhookOutbox(
      db,
      webhookTopics,
      txAdded === undefined && webhookTopics.size > 0 ? new OutboxGroupCommit(db, handoff) : undefined,
      txAdded !== undefined && handoff ? { handoff, added: txAdded } : undefined,
    );
    this.enrollments = new EnrollmentStore(db);
    this.commands = new CommandStore(db);
    this.events = new EventStore(db, this.outbox);
    this.settings = new SettingStore(db);
    this.directory = new DirectoryStore(db);
    this.userSessions = new UserSessionStore(db);
    this.logins = new LoginStore(db);
    this.push = new PushStore(db, (tx) => new EventStore(joined(tx, db.dialect), new WebhookOutbox(joined(tx, db.dialect), webhookTopics)));
    this.scep = new ScepStore(db);
    this.rebinds = new RebindStore(db);
    this.stats = new StatsStore(db);
    this.ddmAssets = new DdmAssetStore(db);
    this.ddmProfiles = new DdmProfileStore(db);
    this.ddmCredentials = new DdmCredentialStore(db);
    this.ddm = new DdmStore(db);
    this.ddmStatus = new DdmStatusStore(db);
    this.ade = new AdeStore(db);
    this.softwareUpdates = new SoftwareUpdateStore(db);
    this.operators = new OperatorStore(db);
    this.audit = new AuditStore(db);
    this.inventory = new InventoryStore(db);
    this.adeEnrollments = new AdeEnrollmentStore(db);
  }

  /**
   * Runs fn with a Store whose every statement belongs to one transaction:
   * all of it commits, or none of it does (and one commit is cheaper than several).
   */
  async transaction<T>(fn: (store: Store) => Promise<T>): Promise<T> {
    // A nested transaction joins the open one: its events are handed over when that one commits.
    const added = this.txAdded ?? [];
    const handoff = this.handoff;
    let result: T;
    try {
      result = await this.db.transaction((tx) => fn(new Store(joined(tx, this.db.dialect), this.webhookTopics, handoff, added)));
    } catch (err) {
      if (handoff && this.txAdded === undefined) handoff.release(added.length);
      throw err;
    }
    if (handoff && this.txAdded === undefined && added.length > 0) handoff.deliver(added);
    return result;
  }

  /**
   * This store, writing the events of these topics to the webhook outbox
   * (--webhook-url, --webhook-topics); with a handoff, the events it writes
   * are delivered by this process without being claimed.
   */
  withWebhookTopics(topics: WebhookTopics, handoff?: OutboxHandoff): Store {
    return new Store(this.db, topics, handoff);
  }

  /** Sizes the database's own cache for the fleet it holds now (Database.fitPageCache); the server checks again every 10 minutes. */
  async fitCacheToFleet(): Promise<void> {
    if (this.db.fitPageCache) this.db.fitPageCache(await this.enrollments.channelCount());
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

/** A Database view of an open transaction; a nested transaction joins it. */
function joined(tx: Sql, dialect: Database["dialect"]): Database {
  return {
    dialect,
    all: (sql, params) => tx.all(sql, params),
    get: (sql, params) => tx.get(sql, params),
    run: (sql, params) => tx.run(sql, params),
    exec: (script) => tx.exec(script),
    transaction: (fn) => fn(tx),
    close: async () => {},
  };
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
    db = await PostgresDatabase.open(storage, poolSize);
  } else {
    throw new BadRequest(`unsupported --storage ${storage.split(":")[0]}: use sqlite:/path/file.db or postgres://user@host:port/db`);
  }
  try {
    const { applied, held } = await migrate(db);
    const store = new Store(db);
    store.migrated = applied;
    store.heldMigrations = held;
    await store.inventory.fillVersionKeys();
    await store.fitCacheToFleet();
    return store;
  } catch (err) {
    await db.close();
    throw err;
  }
}
