// Declarations that name files Orchard serves (docs/declarative-management.md).
//
// An operator writes `"DataURL": "orchard:asset/<id>"` in an asset
// declaration (com.apple.asset.data, or a credential asset with a Reference),
// or `"ProfileURL": "orchard:profile/<id>"` in a legacy profile configuration;
// before the declaration's ServerToken is computed, resolveDeclaration puts in
// the URL the device downloads from (with its MDM identity) and, for an asset,
// the Size and Hash-SHA-256 of the stored bytes. Replacing the bytes changes
// the resolved declaration, hence its ServerToken, and devices sync again:
// referencedFiles tells which stored files a declaration names.
//
// Credentials (core/ddm-credentials.ts) are named the same way:
// `orchard:credential/scep/<name>` in a com.apple.asset.credential.scep (a
// JSON made for each device: no Size or hash, the template's revision in the
// URL instead), `orchard:credential/ca` in a
// com.apple.asset.credential.certificate (the credential CA's certificate).
import { BadRequest, OrchardError } from "../errors.ts";
import { isObject } from "../protocol/ddm.ts";
import type { Store } from "../store/index.ts";
import type { DdmAdmin, Declaration } from "./ddm-admin.ts";

export type { Declaration };

/** A stored file a declaration names: an asset, a profile, a credential template (by name) or the credential CA (id "ca"). */
export interface FileRef {
  kind: "asset" | "profile" | "credential" | "credential-ca";
  id: string;
}

/** What resolving needs of the store: the metadata, never the bytes. */
export interface FileLookup {
  asset(id: string): Promise<{ contentType: string; size: number; sha256: string } | undefined>;
  profile(id: string): Promise<{ size: number; sha256: string } | undefined>;
  /** A credential template's revision; absent: credentials are not served. */
  credential?(name: string): Promise<{ revision: string } | undefined>;
  /** The credential CA's certificate (PEM) as served; absent: not served. */
  credentialCa?(): { size: number; sha256: string } | undefined;
}

/** The credential CA's certificate's id in its reference and URL. */
export const CREDENTIAL_CA_ID = "ca";
const CREDENTIAL_TYPES: Record<string, FileRef["kind"]> = {
  "com.apple.asset.credential.scep": "credential",
  "com.apple.asset.credential.certificate": "credential-ca",
};

/** Where devices download: --public-url (its path prefix included) and the ServerURL path. */
export interface DeviceUrls {
  /** --public-url; undefined: declarations cannot name Orchard's files (no absolute https URL to give). */
  publicUrl: string | undefined;
  serverPath: string;
}

/**
 * An asset's or stored profile's id: 1 to 128 of letters, digits, `.`, `_`,
 * `-`, not starting with `.` (so never `.` or `..`): safe in a URL path
 * segment and in a file name, the same in every store.
 */
export const FILE_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
export const MAX_FILE_ID = 128;

/** BadRequest (code invalid_asset_id) unless `id` is a valid asset or profile id (or credential name). */
export function checkFileId(id: string, what: "asset" | "profile" | "credential"): void {
  if (!FILE_ID.test(id)) {
    const shown = id.length === 0 ? "an empty id" : `id ${JSON.stringify(id.slice(0, 64))}${id.length > 64 ? "..." : ""}`;
    throw new BadRequest(
      `${shown} is not a valid ${what} id: 1 to ${MAX_FILE_ID} letters, digits, '.', '_' or '-', not starting with '.'`,
      "invalid_asset_id",
    );
  }
}

const SCHEME = "orchard:";
const ASSET_PREFIX = "orchard:asset/";
const PROFILE_PREFIX = "orchard:profile/";
const CREDENTIAL_PREFIX = "orchard:credential/scep/";
const CREDENTIAL_CA_REFERENCE = "orchard:credential/ca";
const LEGACY_TYPES = new Set(["com.apple.configuration.legacy", "com.apple.configuration.legacy.interactive"]);
const PEM_TYPE = "application/pem";
const JSON_TYPE = "application/json";

/** The path (below --public-url) where devices download an asset, a stored profile, a credential's JSON or the credential CA. */
export function devicePath(serverPath: string, ref: FileRef): string {
  const base = serverPath.replace(/\/+$/, "");
  switch (ref.kind) {
    case "asset":
      return `${base}/assets/${ref.id}`;
    case "profile":
      return `${base}/profiles/${ref.id}`;
    case "credential":
      return `${base}/credentials/scep/${ref.id}`;
    case "credential-ca":
      return `${base}/credentials/${CREDENTIAL_CA_ID}`;
  }
}

/** The URL a device downloads from, or undefined without --public-url. */
export function deviceUrl(urls: DeviceUrls, ref: FileRef): string | undefined {
  return urls.publicUrl === undefined ? undefined : urls.publicUrl + devicePath(urls.serverPath, ref);
}

/** The reference an operator writes in a declaration for this file. */
export function fileReference(ref: FileRef): string {
  switch (ref.kind) {
    case "asset":
      return ASSET_PREFIX + ref.id;
    case "profile":
      return PROFILE_PREFIX + ref.id;
    case "credential":
      return CREDENTIAL_PREFIX + ref.id;
    case "credential-ca":
      return CREDENTIAL_CA_REFERENCE;
  }
}

/** The `orchard:` references in a declaration, where it may hold them; malformed ones are BadRequest. */
export function referencedFiles(decl: Declaration): FileRef[] {
  return slots(decl);
}

/**
 * The declaration with each `orchard:` reference made real, as a new object
 * (the argument is not changed); one without references comes back as it is.
 * For an asset: DataURL becomes the device URL, Size and Hash-SHA-256 (hex)
 * those of the stored bytes, ContentType the stored one unless the operator
 * wrote one, Authentication.Type MDM unless given (None is refused: the
 * download needs the device's identity). For a legacy profile: ProfileURL.
 * An id that names nothing is a 422 (code unknown_asset_reference); a
 * reference without --public-url a 409.
 */
export async function resolveDeclaration(decl: Declaration, lookup: FileLookup, urls: DeviceUrls): Promise<Declaration> {
  const found = slots(decl);
  if (found.length === 0) return decl;
  if (urls.publicUrl === undefined) {
    throw new OrchardError(
      409,
      `declaration ${decl.Identifier} names ${fileReference(found[0]!)}: Orchard serves its files only at --public-url (set it)`,
    );
  }
  const payload = structuredClone(decl.Payload) as Record<string, unknown>;
  for (const ref of found) {
    const url = deviceUrl(urls, ref)!;
    if (ref.kind === "profile") {
      if (!(await lookup.profile(ref.id))) throw unknown(decl, ref);
      payload.ProfileURL = url;
      continue;
    }
    const reference = payload.Reference as Record<string, unknown>;
    const given = reference.ContentType;
    if (ref.kind === "credential") {
      // A JSON made for each device on each download: no Size or hash (both optional in Apple's schema);
      // the template's revision in the URL changes the ServerToken when the template changes.
      const credential = await lookup.credential?.(ref.id);
      if (!credential) throw unknown(decl, ref);
      requireType(decl, given, JSON_TYPE);
      const { Size: _size, "Hash-SHA-256": _hash, ...rest } = reference;
      payload.Reference = { ...rest, DataURL: `${url}?v=${credential.revision.slice(0, 16)}`, ContentType: JSON_TYPE };
    } else if (ref.kind === "credential-ca") {
      const ca = lookup.credentialCa?.();
      if (!ca) throw unknown(decl, ref);
      requireType(decl, given, PEM_TYPE);
      payload.Reference = { ...reference, DataURL: url, ContentType: PEM_TYPE, Size: ca.size, "Hash-SHA-256": ca.sha256 };
    } else {
      const asset = await lookup.asset(ref.id);
      if (!asset) throw unknown(decl, ref);
      payload.Reference = {
        ...reference,
        DataURL: url,
        ContentType: typeof given === "string" && given.length > 0 ? given : asset.contentType,
        Size: asset.size,
        "Hash-SHA-256": asset.sha256,
      };
    }
    const auth = payload.Authentication;
    if (auth === undefined) payload.Authentication = { Type: "MDM" };
    else if (!isObject(auth)) throw new BadRequest(`declaration ${decl.Identifier}: Payload.Authentication must be a dictionary`);
    else if (auth.Type === undefined) payload.Authentication = { ...auth, Type: "MDM" };
    else if (auth.Type !== "MDM") {
      throw new BadRequest(
        `declaration ${decl.Identifier}: Authentication.Type ${JSON.stringify(auth.Type)} cannot fetch ${fileReference(ref)}: ` +
          'Orchard serves its assets only to enrolled devices, with their MDM identity ("Type": "MDM", the default)',
      );
    }
  }
  return { ...decl, Payload: payload };
}

/**
 * Where a declaration names an Orchard file: Payload.Reference.DataURL of an
 * asset (com.apple.asset.*), Payload.ProfileURL of a legacy profile. A string
 * there that starts with `orchard:` must be a well-formed reference of the
 * right kind; anything else (an https URL) is the operator's and left alone.
 */
function slots(decl: Declaration): FileRef[] {
  const payload = decl.Payload;
  if (!isObject(payload)) return [];
  const type = decl.Type;
  if (typeof type === "string" && type.startsWith("com.apple.asset.")) {
    const reference = payload.Reference;
    if (!isObject(reference)) return [];
    const value = reference.DataURL;
    const credentialKind = CREDENTIAL_TYPES[type];
    if (typeof value === "string" && value.startsWith("orchard:credential/")) {
      const wanted = value === CREDENTIAL_CA_REFERENCE ? "credential-ca" : value.startsWith(CREDENTIAL_PREFIX) ? "credential" : undefined;
      if (wanted === undefined || wanted !== credentialKind) {
        throw new BadRequest(
          `declaration ${decl.Identifier}: Reference.DataURL ${JSON.stringify(value.slice(0, 80))} is not a reference Orchard knows here: ` +
            `${CREDENTIAL_PREFIX}<name> goes in a com.apple.asset.credential.scep, ${CREDENTIAL_CA_REFERENCE} in a com.apple.asset.credential.certificate`,
          "invalid_asset_reference",
        );
      }
      if (wanted === "credential-ca") return [{ kind: "credential-ca", id: CREDENTIAL_CA_ID }];
      const name = value.slice(CREDENTIAL_PREFIX.length);
      try {
        checkFileId(name, "credential");
      } catch (err) {
        throw new BadRequest(`declaration ${decl.Identifier}: Reference.DataURL: ${(err as Error).message}`, "invalid_asset_reference");
      }
      return [{ kind: "credential", id: name }];
    }
    const ref = parseRef(decl, "Reference.DataURL", value, "asset");
    return ref ? [ref] : [];
  }
  if (LEGACY_TYPES.has(type)) {
    const ref = parseRef(decl, "ProfileURL", payload.ProfileURL, "profile");
    return ref ? [ref] : [];
  }
  return [];
}

function parseRef(decl: Declaration, key: string, value: unknown, kind: "asset" | "profile"): FileRef | undefined {
  if (typeof value !== "string" || !value.toLowerCase().startsWith(SCHEME)) return undefined;
  const prefix = kind === "asset" ? ASSET_PREFIX : PROFILE_PREFIX;
  if (!value.startsWith(prefix)) {
    throw new BadRequest(
      `declaration ${decl.Identifier}: ${key} ${JSON.stringify(value.slice(0, 80))} is not a reference Orchard knows here: ` +
        `write ${prefix}<id> (an ${kind} stored with PUT /v1/ddm/${kind}s/<id>)`,
      "invalid_asset_reference",
    );
  }
  const id = value.slice(prefix.length);
  try {
    checkFileId(id, kind);
  } catch (err) {
    throw new BadRequest(`declaration ${decl.Identifier}: ${key}: ${(err as Error).message}`, "invalid_asset_reference");
  }
  return { kind, id };
}

function unknown(decl: Declaration, ref: FileRef): OrchardError {
  const hint =
    ref.kind === "credential-ca"
      ? "this server does not serve its credential CA"
      : `PUT /v1/ddm/${ref.kind === "credential" ? "credentials" : `${ref.kind}s`}/${ref.id} first`;
  return new OrchardError(
    422,
    `declaration ${decl.Identifier} names ${fileReference(ref)}, which is not stored (${hint})`,
    "unknown_asset_reference",
  );
}

/** An operator's ContentType on a credential reference: absent, or the one Apple requires for it. */
function requireType(decl: Declaration, given: unknown, type: string): void {
  if (given === undefined || given === type) return;
  throw new BadRequest(`declaration ${decl.Identifier}: Reference.ContentType of this credential must be ${type} (or left out)`);
}

/**
 * The declarations whose operator source names this file: the LIKE of the
 * store is a superset, each one is checked with referencedFiles.
 */
export async function declarationsNaming(store: Store, ref: FileRef): Promise<string[]> {
  return naming(await store.ddm.declarationsNaming(fileReference(ref)), ref);
}

/**
 * Whether a device may download this file: a declaration of one of its
 * channels' sets (its own or its users') names it. Files follow the
 * declarations: a device is given only what its declarations need.
 */
export async function deviceMayFetch(store: Store, deviceId: string, ref: FileRef): Promise<boolean> {
  return (await naming(await store.ddm.deviceDeclarationsNaming(deviceId, fileReference(ref)), ref)).length > 0;
}

function naming(rows: ReadonlyArray<{ identifier: string; type: string; source: string }>, ref: FileRef): string[] {
  return rows
    .filter((r) => {
      try {
        const named = referencedFiles({ Type: r.type, Identifier: r.identifier, Payload: JSON.parse(r.source) as Record<string, unknown> });
        return named.some((n) => n.kind === ref.kind && n.id === ref.id);
      } catch {
        return false;
      }
    })
    .map((r) => r.identifier);
}

/**
 * The file routes' hooks: a named file is not deleted, and a changed one
 * re-resolves the declarations naming it, inside the transaction that stored
 * it (`tx`): a failure part way rolls back the new bytes too, so declarations
 * never keep the old Size and hash of a file that was replaced.
 */
export function declarationFileHooks(store: Store, admin: DdmAdmin) {
  return {
    referencedBy: (ref: FileRef) => declarationsNaming(store, ref),
    changed: async (ref: FileRef, tx: Store, now: number) => {
      await admin.reResolve(await declarationsNaming(tx, ref), now, tx);
    },
  };
}
