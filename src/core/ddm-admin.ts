import { BadRequest, Conflict } from "../errors.ts";
import { kindOfType } from "../protocol/ddm.ts";
import { checkJsonValue } from "../protocol/json-value.ts";
import { ASSIGN_CHUNK, type ChangeOptions, type PutOutcome } from "../store/ddm.ts";
import type { Store } from "../store/index.ts";

/** A declaration as an operator writes it (Apple's declarationbase.yaml); ServerToken is Orchard's to set. */
export interface Declaration {
  Type: string;
  Identifier: string;
  Payload: Record<string, unknown>;
  ServerToken?: string;
}

/**
 * Checks a declaration against Apple's schema: errors refuse it (400 naming
 * the key), warnings (a Type newer than the schema) are answered with it.
 * PLUG-IN POINT: the schema validator module is given here (server.ts); the
 * default accepts everything.
 */
export type DeclarationValidator = (json: unknown) => { errors: Array<{ path: string; message: string }>; warnings: string[] };

/**
 * Rewrites a declaration before its ServerToken is computed and it is stored
 * (assets: fill in Hash-SHA-256 and Size, so the asset's hash is in the token).
 * It reads what it needs through `store`, which is the open transaction when
 * the rewrite is part of one (a file replaced and the declarations naming it
 * re-resolved together). The default is the identity.
 */
export type DeclarationResolver = (declaration: Declaration, store: Store) => Promise<Declaration>;

export interface DdmAdminOptions {
  validate?: DeclarationValidator;
  resolve?: DeclarationResolver;
  /** How long changes gather before their channels get their DeclarativeManagement command (coalescing). */
  syncDelayMs?: number;
}

export const DEFAULT_SYNC_DELAY_MS = 1000;
const MAX_NAME_LENGTH = 256;
const DECLARATION_KEYS = new Set(["Type", "Identifier", "Payload", "ServerToken"]);

/**
 * The operator's side of Declarative Device Management, with KMFDDM's
 * semantics: declarations, sets, assignments; every change that reaches
 * channels makes them due for a sync (unless notify is false), which
 * core/ddm-sync.ts turns into one DeclarativeManagement command each.
 */
export class DdmAdmin {
  private readonly validate: DeclarationValidator;
  private readonly resolve: DeclarationResolver;
  private readonly syncDelayMs: number;

  constructor(
    private readonly store: Store,
    o: DdmAdminOptions = {},
  ) {
    this.validate = o.validate ?? (() => ({ errors: [], warnings: [] }));
    this.resolve = o.resolve ?? (async (d) => d);
    this.syncDelayMs = o.syncDelayMs ?? DEFAULT_SYNC_DELAY_MS;
  }

  /** When a channel whose declarations change now syncs (changes within the window coalesce). */
  syncDueAt(now: number): number {
    return now + this.syncDelayMs;
  }

  private change(notify: boolean, now: number): ChangeOptions {
    return { now, syncDueAt: notify ? now + this.syncDelayMs : null };
  }

  /**
   * What putDeclaration would refuse or warn about, without storing anything
   * (the console checks a declaration as the operator types it).
   */
  check(json: unknown): { errors: Array<{ path: string; message: string }>; warnings: string[] } {
    try {
      declarationOf(json);
    } catch (err) {
      if (err instanceof BadRequest) return { errors: [{ path: "", message: err.message }], warnings: [] };
      throw err;
    }
    return this.validate(json);
  }

  /**
   * Stores a declaration: created, changed, or unchanged (same content: same
   * ServerToken, nothing written). `store` is a transaction to join, if any.
   */
  async putDeclaration(
    json: unknown,
    notify: boolean,
    now: number,
    store: Store = this.store,
  ): Promise<{ outcome: PutOutcome; serverToken: string; warnings: string[] }> {
    const given = declarationOf(json);
    const { errors, warnings } = this.validate(json);
    if (errors.length > 0) {
      const listed = errors.slice(0, 5).map((e) => `${e.path}: ${e.message}`);
      throw new BadRequest(`declaration ${JSON.stringify(given.Identifier)} is not valid: ${listed.join("; ")}`, "invalid_declaration");
    }
    const { ServerToken: _ignored, ...content } = given;
    const resolved = await this.resolve(content, store);
    if (resolved.Identifier !== given.Identifier || resolved.Type !== given.Type) {
      throw new Error("a declaration resolver must not change Identifier or Type");
    }
    const kind = kindOfType(resolved.Type)!;
    // The operator's Payload is kept beside a rewritten one, to rewrite it again when a file it names changes.
    const rewritten = JSON.stringify(resolved.Payload) !== JSON.stringify(content.Payload);
    const put = await store.ddm.putDeclaration(
      {
        Type: resolved.Type,
        Identifier: resolved.Identifier,
        Payload: resolved.Payload,
        kind,
        ...(rewritten ? { source: content.Payload } : {}),
      },
      this.change(notify, now),
    );
    return { ...put, warnings: [...warnings, ...(await activationWarnings(given, store))] };
  }

  /**
   * Resolves these declarations again from their operator source (a file they
   * name changed): those whose result changed get a new ServerToken and their
   * channels sync. Returns how many changed. Given the transaction that
   * changed the file (`store`), it is part of it: the file and the
   * declarations naming it commit together or not at all.
   */
  async reResolve(identifiers: readonly string[], now: number, store: Store = this.store): Promise<number> {
    let changed = 0;
    for (const identifier of identifiers) {
      const d = await store.ddm.declaration(identifier);
      if (!d) continue;
      const source = JSON.parse(d.source ?? d.payload) as unknown;
      const put = await this.putDeclaration({ Type: d.type, Identifier: d.identifier, Payload: source }, true, now, store);
      if (put.outcome !== "unchanged") changed++;
    }
    return changed;
  }

  touch(identifier: string, notify: boolean, now: number): Promise<boolean> {
    return this.store.ddm.touch(identifier, this.change(notify, now));
  }

  async deleteDeclaration(identifier: string): Promise<boolean> {
    const outcome = await this.store.ddm.deleteDeclaration(identifier);
    if (outcome === "in_use") {
      const sets = await this.store.ddm.declarationSets(identifier);
      throw new Conflict(
        `declaration ${JSON.stringify(identifier)} is in sets (${sets.slice(0, 10).join(", ")}): remove it from them first`,
        "declaration_in_use",
      );
    }
    return outcome === "deleted";
  }

  async setDeclaration(set: string, identifier: string, add: boolean, notify: boolean, now: number): Promise<boolean> {
    // Taking away is not held to the rules for new names: a name stored before they tightened can still be emptied.
    name(set, "set", "invalid_parameter", add);
    name(identifier, "declaration", "invalid_parameter", add);
    if (!add) return this.store.ddm.removeFromSet(set, identifier, this.change(notify, now));
    const added = await this.store.ddm.addToSet(set, identifier, this.change(notify, now));
    if (added === "no_declaration") throw new BadRequest(`no declaration ${JSON.stringify(identifier)}: put it first`, "invalid_parameter");
    return added;
  }

  assign(enrollmentId: string, set: string, add: boolean, notify: boolean, now: number): Promise<boolean> {
    name(enrollmentId, "enrollment id", "invalid_parameter", add);
    name(set, "set", "invalid_parameter", add);
    return add
      ? this.store.ddm.assign(enrollmentId, set, this.change(notify, now))
      : this.store.ddm.unassign(enrollmentId, set, this.change(notify, now));
  }

  /**
   * Assigns a set to many channels, or takes it from them: the ids given, or
   * every device channel of a platform enrolled now (devices that enroll
   * later are not included). Each channel whose sets changed syncs once.
   */
  async assignMany(
    set: string,
    target: { ids: readonly string[] } | { platform: string },
    add: boolean,
    notify: boolean,
    now: number,
  ): Promise<{ enrollments: number; changed: number }> {
    name(set, "set", "invalid_parameter", add);
    const o = this.change(notify, now);
    if ("ids" in target) {
      for (const id of target.ids) name(id, "enrollment id", "invalid_parameter", add);
      return { enrollments: target.ids.length, changed: await this.store.ddm.assignMany(set, target.ids, add, o) };
    }
    let enrollments = 0;
    let changed = 0;
    let after = "";
    for (;;) {
      const page = await this.store.ddm.deviceChannels(target.platform, after, ASSIGN_CHUNK);
      if (page.length === 0) break;
      enrollments += page.length;
      changed += await this.store.ddm.assignMany(set, page, add, o);
      after = page[page.length - 1]!;
    }
    return { enrollments, changed };
  }

  /**
   * The ids that name no enrollment: a set may be assigned to a channel
   * before it enrolls (by design), but such an id is as often mistyped, so
   * the assignment says so.
   */
  async notEnrolled(ids: readonly string[]): Promise<string[]> {
    const known = await this.store.enrollments.existing(ids);
    return ids.filter((id) => !known.has(id));
  }

  unassignAll(enrollmentId: string, notify: boolean, now: number): Promise<boolean> {
    return this.store.ddm.unassign(enrollmentId, undefined, this.change(notify, now));
  }

  /** KMFDDM's notify: these channels, those holding these sets, and those holding sets with these declarations sync now. */
  notify(what: { ids: string[]; sets: string[]; declarations: string[] }, now: number): Promise<number> {
    return this.store.ddm.scheduleSync(what, now);
  }
}

/**
 * An activation naming configurations no declaration has: stored all the
 * same (it may be put before them), but said, as the name is as often a
 * typo, and until one is put the activation applies nothing of it.
 */
async function activationWarnings(d: Declaration, store: Store): Promise<string[]> {
  const named = d.Type === "com.apple.activation.simple" ? d.Payload.StandardConfigurations : undefined;
  if (!Array.isArray(named)) return [];
  const missing = await store.ddm.missingDeclarations([...new Set(named.filter((n): n is string => typeof n === "string"))]);
  if (missing.length === 0) return [];
  const listed = missing.slice(0, 3).map((id) => JSON.stringify(id.slice(0, 100)));
  const more = missing.length > listed.length ? ` (and ${missing.length - listed.length} more)` : "";
  return [
    missing.length === 1
      ? `Payload.StandardConfigurations: no declaration ${listed[0]} is stored: the activation applies it once it is put`
      : `Payload.StandardConfigurations: no declarations ${listed.join(", ")}${more} are stored: the activation applies them once they are put`,
  ];
}

/** The declaration's own keys, checked for what Orchard needs to store and serve it (Apple's schema is the validator's). */
function declarationOf(json: unknown): Declaration {
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new BadRequest("a declaration is a JSON object", "invalid_declaration");
  // Before the validator, the resolver or the token walk it: bounded depth, no NUL or lone surrogate.
  checkJsonValue(json, "declaration", undefined, "invalid_declaration");
  const d = json as Record<string, unknown>;
  const unknown = Object.keys(d).find((k) => !DECLARATION_KEYS.has(k));
  if (unknown !== undefined) {
    throw new BadRequest(
      `declaration key ${JSON.stringify(unknown.slice(0, 64))} is not one of Type, Identifier, Payload, ServerToken`,
      "invalid_declaration",
    );
  }
  if (typeof d.Identifier !== "string") throw new BadRequest("declaration without an Identifier string", "invalid_declaration");
  declarationIdentifier(d.Identifier);
  if (typeof d.Type === "string" && d.Type.length > MAX_NAME_LENGTH)
    throw new BadRequest(`declaration Type is longer than ${MAX_NAME_LENGTH} characters`, "invalid_declaration");
  if (typeof d.Type !== "string" || kindOfType(d.Type) === undefined) {
    throw new BadRequest(
      "declaration Type must start with com.apple.activation., com.apple.configuration., com.apple.asset. or com.apple.management.",
      "invalid_declaration",
    );
  }
  if (typeof d.Payload !== "object" || d.Payload === null || Array.isArray(d.Payload)) {
    throw new BadRequest("declaration Payload must be a JSON object", "invalid_declaration");
  }
  return d as unknown as Declaration;
}

/**
 * An identifier, set name or enrollment id: 1 to 256 characters, not only
 * white space, no control characters (C0, C1, and the line separators and
 * bidirectional controls that make a name read otherwise in the console, the
 * CLI and the logs). Not `strict` (a name to take away): only the rules
 * names were stored under before, so that one stored then can be removed.
 */
function name(value: string, what: string, code: "invalid_parameter" | "invalid_declaration" = "invalid_parameter", strict = true): void {
  if (value.length === 0 || value.length > MAX_NAME_LENGTH)
    throw new BadRequest(`${what} must be 1 to ${MAX_NAME_LENGTH} characters`, code);
  const controls = strict ? /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/ : /[\u0000-\u001f\u007f]/;
  if (controls.test(value)) throw new BadRequest(`${what} contains a control character`, code);
  if (strict && value.trim() === "") throw new BadRequest(`${what} is only white space`, code);
  if (!(value as unknown as { isWellFormed(): boolean }).isWellFormed()) throw new BadRequest(`${what} is not valid Unicode`, code);
}

/**
 * A declaration's Identifier is also the tail of the path a device asks for
 * it by (`declaration/<kind>/<Identifier>`): one the device side would refuse
 * (an empty, `.` or `..` segment: a leading, trailing or doubled `/`) could be
 * stored and listed but never fetched.
 */
function declarationIdentifier(value: string): void {
  name(value, "declaration Identifier", "invalid_declaration");
  if (value.split("/").some((s) => s === "" || s === "." || s === ".."))
    throw new BadRequest(
      "declaration Identifier cannot be fetched by a device: no empty, . or .. path segment (a leading, trailing or doubled /)",
      "invalid_declaration",
    );
}
