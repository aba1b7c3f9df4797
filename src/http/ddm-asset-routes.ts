// DDM assets and stored profiles (docs/declarative-management.md): the operator's API
// behind the API key, and the download route devices reach with their MDM
// identity, which a declaration's `orchard:asset/<id>` or
// `orchard:profile/<id>` becomes (core/ddm-assets.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  checkFileId,
  CREDENTIAL_CA_ID,
  devicePath,
  deviceMayFetch,
  deviceUrl,
  fileReference,
  type DeviceUrls,
  type FileRef,
} from "../core/ddm-assets.ts";
import {
  credentialVariables,
  MissingVariable,
  parseCredentialTemplate,
  renderCredential,
  scepCredentialDocument,
} from "../core/ddm-credentials.ts";
import { createCredentialChallenge } from "../scep/credential-service.ts";
import { inspectStoredProfile } from "../enroll/stored-profile.ts";
import { BadRequest, Conflict, Forbidden, NotFound, OrchardError } from "../errors.ts";
import { IdentityError, type DeviceTrust } from "../identity/index.ts";
import { sha256Hex, type DdmAsset, type DdmProfile } from "../store/ddm-assets.ts";
import type { Store } from "../store/index.ts";
import { identifyFromHeaders, type DeviceIdentity } from "./device-identity.ts";
import { nextCursor, pageSize } from "./request-helpers.ts";
import type { TrustedProxy } from "./trusted-proxy.ts";
import type { DdmAssetJson, DdmAssetPage, DdmFileRemoved, DdmProfileJson, DdmProfilePage } from "./wire.ts";
import { time } from "./wire-map.ts";

/** What the declaration store lends the file routes (wired in server.ts); both optional. */
export interface DdmFileHooks {
  /** The identifiers of the declarations that name this file: a DELETE is refused (409 asset_in_use) while there are any. */
  referencedBy?(ref: FileRef): Promise<string[]>;
  /**
   * The file's bytes (or an asset's content type) changed: the declarations
   * naming it resolve to a new Size and Hash-SHA-256, so their ServerToken
   * changes and the devices that hold them must sync. Called inside the
   * transaction that stores the file (`tx`), so that both commit or neither.
   */
  changed?(ref: FileRef, tx: Store, now: number): Promise<void>;
}

export interface DdmAssetRoutesOptions {
  store: Store;
  urls: DeviceUrls;
  /** --asset-body-limit: the largest upload. */
  bodyLimit: number;
  hooks?: DdmFileHooks;
}

const PROFILE_TYPE = "application/x-apple-aspen-config";
const DEFAULT_TYPE = "application/octet-stream";
// RFC 9110 media type: token "/" token, then parameters.
const MEDIA_TYPE =
  /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*;\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+=("[^"\\\x00-\x1f\x7f]*"|[!#$%&'*+.^_`|~0-9A-Za-z-]+))*$/;
const MAX_MEDIA_TYPE = 255;
/** Media types clients send on their own for a body that is no such thing (curl --data-binary, -F). */
const FORM_TYPES = new Set(["application/x-www-form-urlencoded", "multipart/form-data"]);

/** The operator's routes: PUT, GET, DELETE /v1/ddm/assets/{id} and /v1/ddm/profiles/{id}, the lists and the downloads. */
export function registerDdmAssetRoutes(app: FastifyInstance, o: DdmAssetRoutesOptions): void {
  const { store, urls } = o;
  const assetJson = (a: DdmAsset): DdmAssetJson => ({
    id: a.id,
    content_type: a.contentType,
    size: a.size,
    sha256: a.sha256,
    reference: fileReference({ kind: "asset", id: a.id }),
    url: deviceUrl(urls, { kind: "asset", id: a.id }) ?? null,
    created_at: time(a.createdAt),
    updated_at: time(a.updatedAt),
  });
  const profileJson = (p: DdmProfile): DdmProfileJson => ({
    id: p.id,
    size: p.size,
    sha256: p.sha256,
    signed: p.signed,
    payload_identifier: p.payloadIdentifier,
    payload_display_name: p.payloadDisplayName,
    reference: fileReference({ kind: "profile", id: p.id }),
    url: deviceUrl(urls, { kind: "profile", id: p.id }) ?? null,
    created_at: time(p.createdAt),
    updated_at: time(p.updatedAt),
  });
  // An upload past the limit is refused from its Content-Length, before its body is read.
  const upload = {
    bodyLimit: o.bodyLimit,
    preParsing: async (req: FastifyRequest) => {
      const declared = Number(req.headers["content-length"] ?? 0);
      if (declared > o.bodyLimit) {
        throw new OrchardError(413, `the body (${declared} bytes) is over --asset-body-limit (${o.bodyLimit} bytes)`);
      }
    },
  };

  app.get<{ Querystring: { limit?: string; cursor?: string } }>("/v1/ddm/assets", async (req): Promise<DdmAssetPage> => {
    const limit = pageSize(req.query.limit);
    const assets = await store.ddmAssets.list({ after: req.query.cursor, limit });
    return { assets: assets.map(assetJson), next_cursor: nextCursor(assets, limit, (a) => a.id) };
  });

  app.put<{ Params: { id: string } }>("/v1/ddm/assets/:id", upload, async (req, reply): Promise<DdmAssetJson> => {
    const id = req.params.id;
    checkFileId(id, "asset");
    const contentType = mediaType(req.headers["content-type"]);
    const bytes = nonEmptyBody(req, "asset");
    const now = Date.now();
    const put = await store.transaction(async (tx) => {
      const outcome = await tx.ddmAssets.put(id, contentType, bytes, now);
      const { size, sha256 } = outcome.stored;
      await tx.events.add(
        { type: "ddm.asset.stored", detail: { id, content_type: contentType, size, sha256, created: outcome.created } },
        now,
      );
      // The declarations naming it re-resolve in this transaction: new bytes and new ServerTokens commit together.
      if (outcome.changed) await o.hooks?.changed?.({ kind: "asset", id }, tx, now);
      return outcome;
    });
    req.log.info({ assetId: id, contentType, size: bytes.length, sha256: put.stored.sha256, created: put.created }, "DDM asset stored");
    return reply.code(put.created ? 201 : 200).send(assetJson(put.stored));
  });

  app.get<{ Params: { id: string } }>("/v1/ddm/assets/:id", async (req): Promise<DdmAssetJson> => {
    checkFileId(req.params.id, "asset");
    const asset = await store.ddmAssets.get(req.params.id);
    if (!asset) throw new NotFound("no such asset");
    return assetJson(asset);
  });

  app.get<{ Params: { id: string } }>("/v1/ddm/assets/:id/data", async (req, reply) => {
    checkFileId(req.params.id, "asset");
    const asset = await store.ddmAssets.withBytes(req.params.id);
    if (!asset) throw new NotFound("no such asset");
    return sendFile(reply.header("content-disposition", "attachment"), asset.contentType, asset.bytes, asset.sha256);
  });

  app.delete<{ Params: { id: string } }>("/v1/ddm/assets/:id", async (req): Promise<DdmFileRemoved> => {
    const id = req.params.id;
    checkFileId(id, "asset");
    await refuseWhileNamed(o.hooks, { kind: "asset", id });
    const removed = await store.transaction(async (tx) => {
      if (!(await tx.ddmAssets.remove(id))) return false;
      await tx.events.add({ type: "ddm.asset.removed", detail: { id } }, Date.now());
      return true;
    });
    if (!removed) throw new NotFound("no such asset");
    req.log.info({ assetId: id }, "DDM asset removed");
    return { removed: id };
  });

  app.get<{ Querystring: { limit?: string; cursor?: string } }>("/v1/ddm/profiles", async (req): Promise<DdmProfilePage> => {
    const limit = pageSize(req.query.limit);
    const profiles = await store.ddmProfiles.list({ after: req.query.cursor, limit });
    return { profiles: profiles.map(profileJson), next_cursor: nextCursor(profiles, limit, (p) => p.id) };
  });

  app.put<{ Params: { id: string } }>("/v1/ddm/profiles/:id", upload, async (req, reply): Promise<DdmProfileJson> => {
    const id = req.params.id;
    checkFileId(id, "profile");
    const bytes = nonEmptyBody(req, "profile");
    const facts = inspectStoredProfile(bytes);
    const now = Date.now();
    const put = await store.transaction(async (tx) => {
      const outcome = await tx.ddmProfiles.put(id, { bytes, ...facts }, now);
      const detail = {
        id,
        size: bytes.length,
        sha256: outcome.stored.sha256,
        signed: facts.signed,
        payload_identifier: facts.payloadIdentifier,
        created: outcome.created,
      };
      await tx.events.add({ type: "ddm.profile.stored", detail }, now);
      if (outcome.changed) await o.hooks?.changed?.({ kind: "profile", id }, tx, now);
      return outcome;
    });
    req.log.info(
      { profileId: id, payloadIdentifier: facts.payloadIdentifier, signed: facts.signed, size: bytes.length, created: put.created },
      "DDM profile stored",
    );
    return reply.code(put.created ? 201 : 200).send(profileJson(put.stored));
  });

  app.get<{ Params: { id: string } }>("/v1/ddm/profiles/:id", async (req): Promise<DdmProfileJson> => {
    checkFileId(req.params.id, "profile");
    const profile = await store.ddmProfiles.get(req.params.id);
    if (!profile) throw new NotFound("no such profile");
    return profileJson(profile);
  });

  app.get<{ Params: { id: string } }>("/v1/ddm/profiles/:id/data", async (req, reply) => {
    checkFileId(req.params.id, "profile");
    const profile = await store.ddmProfiles.withBytes(req.params.id);
    if (!profile) throw new NotFound("no such profile");
    return sendFile(reply.header("content-disposition", "attachment"), PROFILE_TYPE, profile.bytes, profile.sha256);
  });

  app.delete<{ Params: { id: string } }>("/v1/ddm/profiles/:id", async (req): Promise<DdmFileRemoved> => {
    const id = req.params.id;
    checkFileId(id, "profile");
    await refuseWhileNamed(o.hooks, { kind: "profile", id });
    const removed = await store.transaction(async (tx) => {
      if (!(await tx.ddmProfiles.remove(id))) return false;
      await tx.events.add({ type: "ddm.profile.removed", detail: { id } }, Date.now());
      return true;
    });
    if (!removed) throw new NotFound("no such profile");
    req.log.info({ profileId: id }, "DDM profile removed");
    return { removed: id };
  });
}

export interface DdmDeviceRoutesOptions {
  store: Store;
  trust: DeviceTrust;
  /** --cert-header, lower case. */
  certHeader?: string;
  fromTrustedProxy: TrustedProxy;
  /** --server-path: the downloads are below it ({serverPath}/assets/{id}, {serverPath}/profiles/{id}). */
  serverPath: string;
  /** DDM credentials from Orchard's credential CA; absent: none are served. */
  credentials?: CredentialDeviceOptions;
}

export interface CredentialDeviceOptions {
  /** The credential CA's certificate, PEM (orchard:credential/ca). */
  caPem: string;
  /** Orchard's SCEP URL for credentials (--public-url + /scep/credential); undefined without --public-url. */
  scepUrl: string | undefined;
  /** How long a credential's challenge stays usable (--scep-challenge-ttl). */
  challengeTtlMs: number;
}

/**
 * GET {server-path}/assets/{id} and {server-path}/profiles/{id}: the bytes,
 * for an enrolled device only. Who calls is settled as on the MDM endpoints,
 * from the TLS client certificate or the trusted proxy's certificate header,
 * and must be the certificate bound to a device that is enrolled; anyone
 * else gets 403 before anything is looked up, so a stranger learns nothing
 * of which files exist. An Mdm-Signature alone is refused: a GET has no body,
 * and a signature over nothing binds to no request (whoever saw one header
 * could replay it for ever), so identity/ refuses empty bodies on purpose.
 */
export function registerDdmDeviceRoutes(app: FastifyInstance, o: DdmDeviceRoutesOptions): void {
  const files = new FileCache(FILE_CACHE_BYTES, async (kind, id) =>
    kind === "asset" ? (await o.store.ddmAssets.get(id))?.sha256 : (await o.store.ddmProfiles.get(id))?.sha256,
  );

  const enrolledCaller = async (req: FastifyRequest): Promise<string> => {
    let identity: DeviceIdentity;
    try {
      const caller = identifyFromHeaders(req.raw.headers, req.raw.socket, o.trust, o.certHeader, o.fromTrustedProxy);
      if (!("identity" in caller)) {
        throw new Forbidden(
          "device identity: an Mdm-Signature over an empty body cannot be checked against a request; downloads need the device's TLS client certificate (directly, or in --cert-header from a trusted proxy)",
        );
      }
      identity = caller.identity;
    } catch (err) {
      if (err instanceof IdentityError) throw new Forbidden(`device identity: ${err.message}`);
      throw err;
    }
    const deviceId = await o.store.ddmAssets.enrolledDevice(identity.fingerprint);
    if (deviceId === undefined) throw new Forbidden("this identity certificate is not bound to an enrolled device");
    return deviceId;
  };

  // A file no declaration of the device names is answered as one that is not stored: 404, the same reason.
  const requireNamed = async (req: FastifyRequest, deviceId: string, ref: FileRef): Promise<void> => {
    if (await deviceMayFetch(o.store, deviceId, ref)) return;
    req.log.info(
      { enrollmentId: deviceId, [`${ref.kind === "credential-ca" ? "credential" : ref.kind}Id`]: ref.id },
      "DDM file refused: no declaration of this device names it",
    );
    throw new NotFound(`no such ${ref.kind === "credential-ca" ? "credential" : ref.kind}`);
  };

  const assetPath = devicePath(o.serverPath, { kind: "asset", id: ":id" });
  app.get<{ Params: { id: string } }>(assetPath, async (req, reply) => {
    const deviceId = await enrolledCaller(req);
    const id = req.params.id;
    checkFileId(id, "asset");
    await requireNamed(req, deviceId, { kind: "asset", id });
    const asset = await files.load("asset", id, () => o.store.ddmAssets.withBytes(id));
    if (!asset) throw new NotFound("no such asset");
    req.log.info({ enrollmentId: deviceId, assetId: id, size: asset.bytes.length }, "DDM asset downloaded");
    return sendFile(reply, asset.contentType, asset.bytes, asset.sha256);
  });

  if (o.credentials) registerCredentialDeviceRoutes(app, o, o.credentials, enrolledCaller, requireNamed);

  const profilePath = devicePath(o.serverPath, { kind: "profile", id: ":id" });
  app.get<{ Params: { id: string } }>(profilePath, async (req, reply) => {
    const deviceId = await enrolledCaller(req);
    const id = req.params.id;
    checkFileId(id, "profile");
    await requireNamed(req, deviceId, { kind: "profile", id });
    const profile = await files.load("profile", id, async () => {
      const p = await o.store.ddmProfiles.withBytes(id);
      return p && { ...p, contentType: PROFILE_TYPE };
    });
    if (!profile) throw new NotFound("no such profile");
    req.log.info({ enrollmentId: deviceId, profileId: id, size: profile.bytes.length }, "DDM profile downloaded");
    return sendFile(reply, PROFILE_TYPE, profile.bytes, profile.sha256);
  });
}

/**
 * GET {server-path}/credentials/scep/{name}: the SCEP credential JSON made
 * for the calling device (its template rendered for it, a fresh challenge
 * bound to it), and GET {server-path}/credentials/ca: the credential CA's
 * certificate. The same gate as files: an enrolled device's certificate, and
 * a declaration of its channels naming it (404 otherwise).
 */
function registerCredentialDeviceRoutes(
  app: FastifyInstance,
  o: DdmDeviceRoutesOptions,
  c: CredentialDeviceOptions,
  enrolledCaller: (req: FastifyRequest) => Promise<string>,
  requireNamed: (req: FastifyRequest, deviceId: string, ref: FileRef) => Promise<void>,
): void {
  app.get<{ Params: { name: string } }>(devicePath(o.serverPath, { kind: "credential", id: ":name" }), async (req, reply) => {
    const deviceId = await enrolledCaller(req);
    const name = req.params.name;
    checkFileId(name, "credential");
    await requireNamed(req, deviceId, { kind: "credential", id: name });
    const stored = await o.store.ddmCredentials.get(name);
    if (!stored) throw new NotFound("no such credential");
    if (c.scepUrl === undefined) throw new Conflict("Orchard serves credentials only at --public-url (set it)");
    const facts = await o.store.ddmCredentials.deviceFacts(deviceId);
    const vars = credentialVariables(deviceId, facts);
    let request: ReturnType<typeof renderCredential>;
    try {
      request = renderCredential(parseCredentialTemplate(JSON.parse(stored.spec)), vars);
    } catch (err) {
      if (!(err instanceof MissingVariable)) throw err;
      if (err.variable === "serial_number" && vars.withheld?.serial_number !== undefined) {
        // The other device is named in the log only: the device asking is not told another device's UDID.
        req.log.warn(
          {
            enrollmentId: deviceId,
            credential: name,
            serialNumber: facts.serialNumber?.slice(0, 64),
            alsoEnrolledAs: facts.serialAlsoEnrolledAs,
          },
          "DDM credential refused: its serial number is another enrolled device's too, and not bound to this one by ADE",
        );
      } else {
        req.log.warn(
          { enrollmentId: deviceId, credential: name, variable: err.variable },
          "DDM credential refused: the device lacks a fact its template names",
        );
      }
      throw new Conflict(`credential ${name}: ${err.message}`);
    }
    const challenge = await createCredentialChallenge(o.store, { deviceId, credential: name, request }, c.challengeTtlMs);
    // The challenge is a secret: the answer carries it, the log line does not.
    req.log.info(
      { enrollmentId: deviceId, credential: name, revision: stored.revision },
      "DDM credential handed out with a fresh challenge",
    );
    return reply
      .header("content-type", "application/json")
      .header("cache-control", "private, no-store")
      .header("x-content-type-options", "nosniff")
      .send(JSON.stringify(scepCredentialDocument(request, c.scepUrl, challenge)));
  });

  const caPem = Buffer.from(c.caPem, "utf8");
  const caHash = sha256Hex(caPem);
  app.get(devicePath(o.serverPath, { kind: "credential-ca", id: CREDENTIAL_CA_ID }), async (req, reply) => {
    const deviceId = await enrolledCaller(req);
    await requireNamed(req, deviceId, { kind: "credential-ca", id: CREDENTIAL_CA_ID });
    return sendFile(reply, "application/pem", caPem, caHash);
  });
}

function sendFile(reply: FastifyReply, contentType: string, bytes: Buffer, sha256: string): FastifyReply {
  return reply
    .header("content-type", contentType)
    .header("content-length", bytes.length)
    .header("etag", `"${sha256}"`)
    .header("cache-control", "private, no-store")
    .header("x-content-type-options", "nosniff")
    .send(bytes);
}

/** The recorded media type: the request's Content-Type, or application/octet-stream without one. */
function mediaType(header: string | undefined): string {
  if (header === undefined || header.trim() === "") return DEFAULT_TYPE;
  const value = header.trim();
  if (value.length > MAX_MEDIA_TYPE || !MEDIA_TYPE.test(value)) {
    throw new BadRequest(`Content-Type must be a media type such as application/zip (at most ${MAX_MEDIA_TYPE} characters)`);
  }
  const essence = value.split(";")[0]!.trim().toLowerCase();
  if (FORM_TYPES.has(essence)) {
    throw new BadRequest(
      `Content-Type ${essence} is a form, not an asset's type (curl's default for --data-binary): send the asset's own, such as -H "Content-Type: application/zip"`,
    );
  }
  return value;
}

function nonEmptyBody(req: FastifyRequest, what: string): Buffer {
  if (!Buffer.isBuffer(req.body) || req.body.length === 0) throw new BadRequest(`the body is empty: send the ${what}'s bytes`);
  return req.body;
}

async function refuseWhileNamed(hooks: DdmFileHooks | undefined, ref: FileRef): Promise<void> {
  const naming = (await hooks?.referencedBy?.(ref)) ?? [];
  if (naming.length > 0) {
    const shown = naming.slice(0, 10).join(", ") + (naming.length > 10 ? `, and ${naming.length - 10} more` : "");
    throw new Conflict(`${fileReference(ref)} is named by declarations ${shown}: change or remove them first`, "asset_in_use");
  }
}

/** The in-memory copies of files being downloaded, at most this many bytes in all. */
const FILE_CACHE_BYTES = 64 * 1024 * 1024;

interface CachedFile {
  contentType: string;
  sha256: string;
  bytes: Buffer;
}

/**
 * Devices fetch a file in a burst once a declaration naming it changes: one
 * read of the store serves the requests that arrive while it is in flight,
 * and the bytes are kept (by id, checked against the stored hash on every
 * request, so a replaced file is never served stale) within a byte budget,
 * the least recently used dropped first.
 */
class FileCache {
  private readonly kept = new Map<string, CachedFile>();
  private readonly loading = new Map<string, Promise<CachedFile | undefined>>();
  private bytes = 0;

  constructor(
    private readonly budget: number,
    /** The stored file's hash, without its bytes (a cheap query). */
    private readonly storedHash: (kind: FileRef["kind"], id: string) => Promise<string | undefined>,
  ) {}

  async load(kind: FileRef["kind"], id: string, read: () => Promise<CachedFile | undefined>): Promise<CachedFile | undefined> {
    const key = `${kind}/${id}`;
    const kept = this.kept.get(key);
    if (kept) {
      // Still the stored one? (Another process may have replaced or removed it.)
      const current = await this.storedHash(kind, id);
      if (current === kept.sha256) {
        this.kept.delete(key);
        this.kept.set(key, kept);
        return kept;
      }
      this.drop(key);
    }
    let pending = this.loading.get(key);
    if (!pending) {
      pending = read().finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
    }
    const file = await pending;
    if (file) this.keep(key, file);
    return file;
  }

  private keep(key: string, file: CachedFile): void {
    if (file.bytes.length > this.budget || this.kept.get(key) === file) return;
    this.drop(key);
    this.kept.set(key, file);
    this.bytes += file.bytes.length;
    for (const [k, f] of this.kept) {
      if (this.bytes <= this.budget) break;
      this.kept.delete(k);
      this.bytes -= f.bytes.length;
    }
  }

  private drop(key: string): void {
    const f = this.kept.get(key);
    if (f) {
      this.kept.delete(key);
      this.bytes -= f.bytes.length;
    }
  }
}
