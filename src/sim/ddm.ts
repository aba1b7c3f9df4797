// Declarative Device Management as a simulated device speaks it (Apple's
// declarative/protocol: tokens, declaration-items, declaration/<kind>/<id>,
// status). One DdmChannel per enrollment channel (the device channel and each
// user channel), keeping what that channel has installed between syncs.
//
// A sync: the tokens (from the DeclarativeManagement command's Data when it
// carries them, as Apple's devices use them, else from the `tokens`
// endpoint); when the DeclarationsToken differs from the one last synced,
// `declaration-items`, each declaration whose ServerToken changed, then a
// status report with every declaration's active, valid and server-token
// (and, on the device channel's full reports, a few device status items).
//
// OS updates: a device channel given an active
// softwareupdate.enforcement.specific for a version newer than its own
// starts the update (install-state downloading, pending-version the target);
// each advanceUpdate() moves it on (installing, then the new OS version, or
// failed when the channel was told to fail), reported in a status report as
// a device reports a change of the items it is subscribed to.
// A device channel with an active status-subscriptions configuration
// (com.apple.configuration.management.status-subscriptions) also reports
// the status items it names: all of them in the report after the
// subscription changed and in full reports, as a device does.

/** Sends one DeclarativeManagement check-in on the channel: Endpoint, and Data when given. */
export type DdmSend = (endpoint: string, data?: Buffer) => Promise<{ status: number; body: Buffer }>;

export type DdmKind = "activation" | "configuration" | "asset" | "management";

const ARRAYS: ReadonlyArray<[string, DdmKind, string]> = [
  ["Activations", "activation", "activations"],
  ["Configurations", "configuration", "configurations"],
  ["Assets", "asset", "assets"],
  ["Management", "management", "management"],
];

/** A declaration the channel installed. */
export interface InstalledDeclaration {
  kind: DdmKind;
  identifier: string;
  serverToken: string;
  type: string;
  payload: Record<string, unknown>;
}

/** The status items a device channel reports about itself (paths as Apple's status schema names them). */
export interface DdmDeviceFacts {
  udid: string;
  serialNumber: string;
  family: "macOS" | "iOS";
  osVersion: string;
  buildVersion: string;
  model: string;
  modelName: string;
}

const ENFORCEMENT = "com.apple.configuration.softwareupdate.enforcement.specific";

/** An OS update under way on a simulated device. */
export interface SimUpdate {
  version: string;
  build: string;
  stage: "downloading" | "installing" | "failed";
  failures: number;
}

/** What one sync did: the requests of each endpoint, and whether the channel's declarations changed. */
export interface DdmSyncOutcome {
  tokens: number;
  declarationItems: number;
  declarations: number;
  statusReports: number;
  /** The DeclarationsToken differed from the last one synced. */
  changed: boolean;
}

/** A sync that could not finish: the endpoint and what was wrong with the answer. */
export class DdmSyncError extends Error {}

export class DdmChannel {
  /** The DeclarationsToken of the last finished sync; undefined before the first. */
  token: string | undefined;
  readonly installed = new Map<string, InstalledDeclaration>();
  /** Syncs finished. */
  syncs = 0;
  /** The status items reported since the subscription last changed (a newly subscribed one is reported once). */
  private reportedItems = new Set<string>();
  /** Each declaration's status as last reported (its JSON), to report again only those that changed. */
  private reportedStatus = new Map<string, string>();

  /** The OS update under way (device channels only). */
  update: SimUpdate | undefined;

  /**
   * `device`: the facts of a device channel (undefined on a user channel: it
   * reports its declarations only); an update finished changes its OS version.
   * `updateFailure`: updates fail with this reason (softwareupdate.failure-reason).
   */
  constructor(
    private readonly device?: DdmDeviceFacts,
    private readonly o: {
      updateFailure?: string;
      /** Told the OS version an update installed, so that the device's other answers (DeviceInformation) give it too. */
      onInstalled?: (osVersion: string, buildVersion: string) => void;
    } = {},
  ) {}

  /**
   * One sync. `commandData` is the Data of the DeclarativeManagement command
   * that asked for it, if any (its SyncTokens spare the `tokens` request).
   */
  async sync(send: DdmSend, commandData?: Buffer): Promise<DdmSyncOutcome> {
    const out: DdmSyncOutcome = { tokens: 0, declarationItems: 0, declarations: 0, statusReports: 0, changed: false };
    let token = commandData ? declarationsTokenOf(parseJson(commandData, "the command's Data")) : undefined;
    if (token === undefined) {
      out.tokens++;
      token = declarationsTokenOf(await call(send, "tokens"));
      if (token === undefined) throw new DdmSyncError("tokens: no SyncTokens.DeclarationsToken in the answer");
    }
    if (token === this.token) return out;
    out.changed = true;

    out.declarationItems++;
    const items = await call(send, "declaration-items");
    if (!isObject(items) || !isObject(items.Declarations)) throw new DdmSyncError("declaration-items: no Declarations object");
    const lists = items.Declarations;
    if (typeof items.DeclarationsToken !== "string") throw new DdmSyncError("declaration-items: no DeclarationsToken");
    const listed = new Map<string, { kind: DdmKind; serverToken: string }>();
    for (const [key, kind] of ARRAYS) {
      const list = lists[key];
      if (!Array.isArray(list)) throw new DdmSyncError(`declaration-items: ${key} is not an array`);
      for (const item of list) {
        if (!isObject(item) || typeof item.Identifier !== "string" || typeof item.ServerToken !== "string")
          throw new DdmSyncError(`declaration-items: an item of ${key} without Identifier and ServerToken`);
        listed.set(item.Identifier, { kind, serverToken: item.ServerToken });
      }
    }
    let removed = false;
    for (const id of [...this.installed.keys()]) {
      if (!listed.has(id)) {
        this.installed.delete(id);
        removed = true;
      }
    }
    const changed: InstalledDeclaration[] = [];
    for (const [identifier, { kind, serverToken }] of listed) {
      const had = this.installed.get(identifier);
      if (had && had.serverToken === serverToken && had.kind === kind) continue;
      out.declarations++;
      const d = await call(send, `declaration/${kind}/${identifier}`);
      if (!isObject(d) || d.Identifier !== identifier || typeof d.Type !== "string" || typeof d.ServerToken !== "string")
        throw new DdmSyncError(`declaration/${kind}/${identifier}: not that declaration`);
      if (d.ServerToken !== serverToken)
        throw new DdmSyncError(`declaration/${kind}/${identifier}: ServerToken ${d.ServerToken}, declaration-items said ${serverToken}`);
      const installed = { kind, identifier, serverToken, type: d.Type, payload: isObject(d.Payload) ? d.Payload : {} };
      this.installed.set(identifier, installed);
      changed.push(installed);
    }

    const updateChanged = this.followEnforcement();
    // The first report, and one after a declaration went away, is a full one (merging cannot remove); otherwise the changes.
    const full = this.syncs === 0 || removed;
    out.statusReports++;
    // Beside the declarations fetched, those whose status changed without a new token (a configuration
    // whose activation came back is active again), as a device reports them.
    const restated = [...this.installed.values()].filter(
      (d) => !changed.includes(d) && this.reportedStatus.get(d.identifier) !== JSON.stringify(this.statusOf(d)),
    );
    const report = this.statusReport(full ? [...this.installed.values()] : [...changed, ...restated], full);
    if (updateChanged && !full) Object.assign(report.StatusItems as Record<string, unknown>, this.updateItems());
    const r = await send("status", Buffer.from(JSON.stringify(report)));
    if (r.status !== 200) throw new DdmSyncError(`status: HTTP ${r.status}: ${r.body.toString("utf8").slice(0, 200)}`);
    this.reportedStatus = new Map([...this.installed.values()].map((d) => [d.identifier, JSON.stringify(this.statusOf(d))]));
    this.token = token;
    this.syncs++;
    return out;
  }

  /** A status report (Apple's statusreport.yaml) about these declarations, as this channel sees them now. */
  statusReport(declarations: readonly InstalledDeclaration[], full: boolean): Record<string, unknown> {
    const arrays: Record<string, unknown[]> = { activations: [], configurations: [], assets: [], management: [] };
    for (const d of declarations) arrays[ARRAYS.find(([, k]) => k === d.kind)![2]]!.push(this.statusOf(d));
    const items: Record<string, unknown> = { management: { declarations: arrays } };
    if (this.device) {
      const values = deviceStatus(this.device);
      // The update state is the one under way (followEnforcement), not a fixed "none".
      const update = this.updateItems().softwareupdate as Record<string, unknown>;
      for (const [key, value] of Object.entries(update)) values.set(`softwareupdate.${key}`, value);
      const subscribed = this.subscribedItems();
      const names = new Set(full ? FULL_REPORT_ITEMS : []);
      for (const name of subscribed) if (full || !this.reportedItems.has(name)) names.add(name);
      this.reportedItems = new Set(subscribed);
      for (const name of names) if (values.has(name)) putItem(items, name, values.get(name));
    }
    if (full && this.device) Object.assign(items, this.updateItems());
    return { StatusItems: items, Errors: [], FullReport: full };
  }

  /** The status items named by the channel's active status-subscriptions configurations. */
  private subscribedItems(): string[] {
    const names = new Set<string>();
    for (const d of this.installed.values()) {
      if (d.type !== STATUS_SUBSCRIPTIONS || !this.activated(d.identifier)) continue;
      const list = d.payload.StatusItems;
      if (!Array.isArray(list)) continue;
      for (const item of list) if (isObject(item) && typeof item.Name === "string") names.add(item.Name);
    }
    return [...names].sort();
  }

  /**
   * Starts (or drops) the update an active enforcement declaration asks for:
   * true when the update state changed (the status report then carries it).
   */
  private followEnforcement(): boolean {
    if (!this.device) return false;
    const enforced = [...this.installed.values()].find(
      (d) =>
        d.kind === "configuration" &&
        d.type === ENFORCEMENT &&
        this.activated(d.identifier) &&
        typeof d.payload.TargetOSVersion === "string",
    );
    const version = enforced?.payload.TargetOSVersion as string | undefined;
    if (!version || !newer(version, this.device.osVersion)) {
      const had = this.update !== undefined;
      this.update = undefined;
      return had;
    }
    if (this.update?.version === version) return false;
    const build =
      typeof enforced!.payload.TargetBuildVersion === "string" ? enforced!.payload.TargetBuildVersion : `${version.replace(/\./g, "")}SIM`;
    this.update = { version, build, stage: "downloading", failures: 0 };
    return true;
  }

  /**
   * One step of the update under way, reported: downloading becomes
   * installing (or failed), installing ends with the new OS version. False
   * when there is no update to move on (a failed one stays failed).
   */
  async advanceUpdate(send: DdmSend): Promise<boolean> {
    const u = this.update;
    if (!this.device || !u || u.stage === "failed") return false;
    if (u.stage === "downloading") {
      if (this.o.updateFailure) {
        u.stage = "failed";
        u.failures++;
      } else u.stage = "installing";
    } else {
      this.device.osVersion = u.version;
      this.device.buildVersion = u.build;
      this.update = undefined;
      this.o.onInstalled?.(u.version, u.build);
    }
    const f = this.device;
    const items: Record<string, unknown> = this.updateItems();
    if (this.update === undefined) items.device = { "operating-system": { version: f.osVersion, "build-version": f.buildVersion } };
    const r = await send("status", Buffer.from(JSON.stringify({ StatusItems: items, Errors: [], FullReport: false })));
    if (r.status !== 200) throw new DdmSyncError(`status: HTTP ${r.status}: ${r.body.toString("utf8").slice(0, 200)}`);
    return true;
  }

  /** The softwareupdate.* status items as the device reports them now. */
  private updateItems(): Record<string, unknown> {
    const u = this.update;
    return {
      softwareupdate: {
        "install-state": u?.stage ?? "none",
        "pending-version": { "os-version": u?.version ?? "", "build-version": u?.build ?? "" },
        "failure-reason":
          u?.stage === "failed"
            ? { count: u.failures, reason: this.o.updateFailure, timestamp: new Date().toISOString().replace(/\.\d{3}Z$/, "Z") }
            : { count: 0 },
      },
    };
  }

  /**
   * What a device reports for one declaration: activations and management
   * declarations are active; a configuration is active when an activation
   * names it (else "unknown", Info.NotReferencedByActivation, as a real
   * device says); an asset when an active configuration names it. A test
   * configuration (com.apple.configuration.management.test) with
   * ReturnStatus "Failed" is invalid.
   */
  private statusOf(d: InstalledDeclaration): Record<string, unknown> {
    const base = { identifier: d.identifier, "server-token": d.serverToken };
    if (d.kind === "configuration") {
      if (!this.activated(d.identifier)) {
        return {
          ...base,
          active: false,
          valid: "unknown",
          reasons: [
            {
              code: "Info.NotReferencedByActivation",
              description: `Configuration “${d.identifier}:${d.serverToken}” is not referenced by an activation.`,
              details: { Identifier: d.identifier, ServerToken: d.serverToken },
            },
          ],
        };
      }
      if (d.type === "com.apple.configuration.management.test" && d.payload.ReturnStatus === "Failed") {
        return {
          ...base,
          active: true,
          valid: "invalid",
          reasons: [
            {
              code: "Error.ConfigurationCannotBeApplied",
              description: `Configuration “${d.identifier}:${d.serverToken}” cannot be applied`,
              details: { Identifier: d.identifier, ServerToken: d.serverToken },
            },
          ],
        };
      }
    }
    if (d.kind === "asset" && !this.referencedByActiveConfiguration(d.identifier)) return { ...base, active: false, valid: "valid" };
    return { ...base, active: true, valid: "valid" };
  }

  private activated(identifier: string): boolean {
    for (const d of this.installed.values()) {
      const list = d.kind === "activation" ? d.payload.StandardConfigurations : undefined;
      if (Array.isArray(list) && list.includes(identifier)) return true;
    }
    return false;
  }

  private referencedByActiveConfiguration(identifier: string): boolean {
    for (const d of this.installed.values()) {
      if (d.kind === "configuration" && this.activated(d.identifier) && mentions(d.payload, identifier)) return true;
    }
    return false;
  }
}

const STATUS_SUBSCRIPTIONS = "com.apple.configuration.management.status-subscriptions";

/** Reported in every full report of a device channel, subscribed or not. */
const FULL_REPORT_ITEMS = [
  "device.identifier.serial-number",
  "device.identifier.udid",
  "device.model.family",
  "device.model.identifier",
  "device.model.marketing-name",
  "device.operating-system.family",
  "device.operating-system.version",
  "device.operating-system.build-version",
];

/**
 * What a simulated device reports for each status item it knows (Apple's
 * declarative/status): its facts, an up-to-date software update state, a
 * FileVault (Mac) or passcode (iPhone) that is on, its protocol capabilities
 * (the softwareupdate state under way comes from the channel: updateItems).
 */
function deviceStatus(f: DdmDeviceFacts): Map<string, unknown> {
  const mac = f.family === "macOS";
  const values = new Map<string, unknown>([
    ["device.identifier.serial-number", f.serialNumber],
    ["device.identifier.udid", f.udid],
    ["device.model.family", mac ? "Mac" : "iPhone"],
    ["device.model.identifier", f.model],
    ["device.model.marketing-name", f.modelName],
    ["device.operating-system.family", f.family],
    ["device.operating-system.version", f.osVersion],
    ["device.operating-system.build-version", f.buildVersion],
    ["device.operating-system.marketing-name", mac ? "macOS" : "iOS"],
    ["device.operating-system.supplemental.build-version", f.buildVersion],
    ["device.operating-system.supplemental.extra-version", ""],
    ["softwareupdate.install-reason", { reason: [] }],
    ["softwareupdate.beta-enrollment", ""],
    ["management.client-capabilities", { "supported-versions": ["1.0.0"], "supported-features": {} }],
  ]);
  if (mac) values.set("diskmanagement.filevault.enabled", true);
  else {
    values.set("passcode.is-present", true);
    values.set("passcode.is-compliant", true);
  }
  return values;
}

/** Puts a status item's value at its place in StatusItems (device.operating-system.version: device → operating-system → version). */
function putItem(items: Record<string, unknown>, name: string, value: unknown): void {
  const keys = name.split(".");
  let node = items;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    node = isObject(next) ? next : ((node[key] = {}) as Record<string, unknown>);
  }
  node[keys.at(-1)!] = value;
}

async function call(send: DdmSend, endpoint: string): Promise<unknown> {
  const r = await send(endpoint);
  if (r.status !== 200) throw new DdmSyncError(`${endpoint}: HTTP ${r.status}: ${r.body.toString("utf8").slice(0, 200)}`);
  return parseJson(r.body, endpoint);
}

function parseJson(body: Buffer, what: string): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw new DdmSyncError(`${what}: not JSON`);
  }
}

function declarationsTokenOf(json: unknown): string | undefined {
  const t = isObject(json) && isObject(json.SyncTokens) ? json.SyncTokens.DeclarationsToken : undefined;
  return typeof t === "string" ? t : undefined;
}

/** Whether version a is newer than b (numeric parts; a missing part is 0). */
function newer(a: string, b: string): boolean {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return false;
}

/** Whether a string equal to `text` appears anywhere in a JSON value. */
function mentions(v: unknown, text: string): boolean {
  if (v === text) return true;
  if (Array.isArray(v)) return v.some((x) => mentions(x, text));
  if (isObject(v)) return Object.values(v).some((x) => mentions(x, text));
  return false;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
