import type { Database } from "./db.ts";

/** One change asked of the API: who, what, on which objects, when, from where, and how it ended. */
export interface AuditEntry {
  id: number;
  at: number;
  /** An operator's name, `token:<id>` (of an operator's token), `api-key`, or `anonymous` (a failed sign-in). */
  actor: string;
  /** How the actor proved who it is: `session`, `token:<id>`, `api-key`, `password` (a sign-in). */
  credential: string;
  /** A short name of the change: `command.enqueue`, `operator.add`, ... */
  action: string;
  method: string;
  /** The route's template (`/v1/users/:short_name`), never the path with its ids. */
  route: string;
  /** The ids the change names (enrollment ids, a short name, a declaration identifier). */
  objects: string[];
  address: string | null;
  /** The HTTP status it was answered with; 0 while it runs (and for good when the process stopped before answering). */
  status: number;
}

export type NewAuditEntry = Omit<AuditEntry, "id">;

export interface AuditFilter {
  actor?: string;
  credential?: string;
  action?: string;
  object?: string;
  since?: number;
  until?: number;
  /** The page's cursor: entries older than this id (the log reads newest first). */
  before?: number;
  limit: number;
}

type AuditRow = {
  id: number | string;
  at: number | string;
  actor: string;
  credential: string;
  action: string;
  method: string;
  route: string;
  objects: string;
  address: string | null;
  status: number | string;
};

/** The audit log: append-only but for retention. */
export class AuditStore {
  constructor(private readonly db: Database) {}

  /** Records an entry and its objects (call it inside a transaction to have both or neither). */
  async add(e: NewAuditEntry): Promise<number> {
    const row = await this.db.get<{ id: number | string }>(
      "INSERT INTO audit_log (at, actor, credential, action, method, route, objects, address, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
      [e.at, e.actor, e.credential, e.action, e.method, e.route, JSON.stringify(e.objects), e.address, e.status],
    );
    const id = Number(row!.id);
    const objects = [...new Set(e.objects)];
    if (objects.length > 0) {
      await this.db.run(
        `INSERT INTO audit_objects (entry_id, object) VALUES ${objects.map(() => "(?, ?)").join(", ")}`,
        objects.flatMap((o) => [id, o]),
      );
    }
    return id;
  }

  /** The status a change (recorded as it started, status 0) was answered with. */
  async settle(id: number, status: number): Promise<void> {
    await this.db.run("UPDATE audit_log SET status = ? WHERE id = ?", [status, id]);
  }

  /** Entries newest first. */
  async list(f: AuditFilter): Promise<AuditEntry[]> {
    const where: string[] = [];
    const params: Array<string | number> = [];
    if (f.actor !== undefined) where.push("actor = ?"), params.push(f.actor);
    if (f.credential !== undefined) where.push("credential = ?"), params.push(f.credential);
    if (f.action !== undefined) where.push("action = ?"), params.push(f.action);
    if (f.object !== undefined) where.push("id IN (SELECT entry_id FROM audit_objects WHERE object = ?)"), params.push(f.object);
    if (f.since !== undefined) where.push("at >= ?"), params.push(f.since);
    if (f.until !== undefined) where.push("at < ?"), params.push(f.until);
    if (f.before !== undefined) where.push("id < ?"), params.push(f.before);
    const rows = await this.db.all<AuditRow>(
      `SELECT id, at, actor, credential, action, method, route, objects, address, status FROM audit_log
       ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`,
      [...params, f.limit],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      at: Number(r.at),
      actor: r.actor,
      credential: r.credential,
      action: r.action,
      method: r.method,
      route: r.route,
      objects: JSON.parse(r.objects) as string[],
      address: r.address,
      status: Number(r.status),
    }));
  }

  /** Deletes entries older than `before` (their objects go with them). */
  async prune(before: number): Promise<number> {
    await this.db.run("DELETE FROM audit_objects WHERE entry_id IN (SELECT id FROM audit_log WHERE at < ?)", [before]);
    return this.db.run("DELETE FROM audit_log WHERE at < ?", [before]);
  }
}
