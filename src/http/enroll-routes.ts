// GET /enroll: an enrollment profile for one device, guarded by the
// enrollment token (?token=, for a link opened on the device) or the API key.
import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { secretGuard } from "./api-auth.ts";
import { sameText } from "./operator-auth.ts";
import type { DeviceCa } from "../enroll/device-ca.ts";
import { issuePkcs12Identity, newPkcs12Passphrase } from "../enroll/pkcs12-build.ts";
import { buildEnrollmentProfile, type Pkcs12Identity, type ScepIdentity } from "../enroll/profile.ts";
import { ProfileSignerError, signProfile, type ProfileSigner } from "../enroll/sign-profile.ts";
import { BadRequest, Conflict, NotFound, OrchardError } from "../errors.ts";
import type { Store } from "../store/index.ts";
import type { ApiFailureLimiter } from "./limits.ts";

export interface EnrollRoutesOptions {
  store: Store;
  deviceCa: DeviceCa;
  /** Mints the single-use SCEP challenge each SCEP profile carries. */
  newChallenge(): Promise<string>;
  apiKey: string;
  enrollmentToken?: string;
  /** --public-url; otherwise the request's own scheme and host (X-Forwarded-* only from a --trust-proxy). */
  publicUrl?: string;
  checkinPath: string;
  serverPath: string;
  scepPath: string;
  signer?: ProfileSigner;
  /** UseDevelopmentAPNS, when Orchard pushes through the APNs sandbox. */
  sandboxApns: boolean;
  limiter: ApiFailureLimiter;
}

interface EnrollQuery {
  token?: string;
  identity?: string;
  topic?: string;
  cn?: string;
}

const MAX_CN = 64; // X.520 ub-common-name
const HOST_RE = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

export function registerEnrollRoutes(app: FastifyInstance, o: EnrollRoutesOptions): void {
  // The enrollment token in ?token= (a link opened on the device) or the API key as the Basic password.
  const guard = secretGuard({
    secrets: [o.apiKey, ...(o.enrollmentToken === undefined ? [] : [o.enrollmentToken])],
    queryParam: "token",
    limiter: o.limiter,
    what: "enrollment profile",
    failures: "attempts",
    missing: "an enrollment token (?token=) or the API key is required",
    wrong: "the enrollment token (?token=) or API key given is wrong",
    basicChallenge: false,
  });

  app.get<{ Querystring: EnrollQuery }>("/enroll", { preValidation: guard }, async (req, reply) => {
    const q = req.query;
    // Taken, for the setups that use it, but said: a URL reaches proxy logs, browser history and Referer headers
    // (Orchard's own logs hide it), and the API key opens the whole API (review).
    if (typeof q.token === "string" && sameText(q.token, o.apiKey)) {
      req.log.warn(
        { remote: req.ip },
        "enrollment profile: the API key was given in ?token=, where proxies and browsers keep URLs: use --enrollment-token for links, or the API key as the Basic password",
      );
    }
    const identityKind = q.identity ?? "scep";
    if (identityKind !== "scep" && identityKind !== "pkcs12") throw new BadRequest("identity must be scep or pkcs12");
    if (q.cn !== undefined && (q.cn.length === 0 || q.cn.length > MAX_CN || /[\x00-\x1f\x7f]/.test(q.cn))) {
      throw new BadRequest(`cn must be 1 to ${MAX_CN} printable characters`);
    }
    const topic = await pickTopic(o.store, q.topic, Date.now());
    const base = baseUrl(req, o);
    const commonName = q.cn ?? `Orchard device ${randomBytes(4).toString("hex")}`;

    let identity: ScepIdentity | Pkcs12Identity;
    if (identityKind === "scep") {
      identity = { kind: "scep", url: base + o.scepPath, challenge: await o.newChallenge(), subjectCommonName: commonName };
    } else {
      const passphrase = newPkcs12Passphrase();
      // 3DES: Apple's PKCS#12 import refuses AES/SHA-256 files on older
      // systems; the passphrase is random and used once, so 3DES costs nothing.
      const pkcs12 = await issuePkcs12Identity(o.deviceCa, { commonName, passphrase, encryption: "3des" });
      identity = { kind: "pkcs12", pkcs12, passphrase };
    }
    let profile = buildEnrollmentProfile({
      serverUrl: base + o.serverPath,
      checkInUrl: base + o.checkinPath,
      topic,
      identity,
      useDevelopmentApns: o.sandboxApns || undefined,
      allowHttp: true, // a warning below instead: a test server or a proxy that hides the scheme
    });
    if (!base.startsWith("https://")) {
      req.log.warn({ base }, "enrollment profile with an http:// URL: devices only enroll over https (set --public-url)");
    }
    if (o.signer) profile = await signed(profile, o.signer, req);
    await o.store.events.add(
      { type: "enrollment.profile", detail: { identity: identityKind, topic, signed: o.signer !== undefined, remote: req.ip } },
      Date.now(),
    );
    req.log.info({ identity: identityKind, topic, signed: o.signer !== undefined, remote: req.ip }, "issued an enrollment profile");
    return reply
      .header("content-type", "application/x-apple-aspen-config")
      .header("content-disposition", 'attachment; filename="orchard-enroll.mobileconfig"')
      .header("cache-control", "no-store")
      .send(profile);
  });
}

/** A signer that expired since the start is the operator's to fix: 503 with the reason, never a 500. */
export async function signed(profile: Buffer, signer: ProfileSigner, req: FastifyRequest): Promise<Buffer> {
  try {
    return await signProfile(profile, signer);
  } catch (err) {
    if (!(err instanceof ProfileSignerError)) throw err;
    req.log.error({ reason: err.message }, "cannot sign the enrollment profile (--profile-signer)");
    throw new OrchardError(503, `enrollment profiles cannot be signed now: ${err.message}`);
  }
}

/** The push topic for the profile: the one asked for, or the only usable one. */
export async function pickTopic(store: Store, wanted: string | undefined, now: number): Promise<string> {
  const usable = (await store.push.certs()).filter((c) => c.notAfter > now);
  if (wanted !== undefined) {
    if (!usable.some((c) => c.topic === wanted)) throw new NotFound(`no usable push certificate for topic ${wanted}`);
    return wanted;
  }
  if (usable.length === 0) throw new Conflict("no usable push certificate: upload one first (orchard pushcert upload)");
  if (usable.length > 1)
    throw new BadRequest(
      `several push topics (${usable.map((c) => c.topic).join(", ")}): choose one with the topic= parameter (orchard profile enroll --topic)`,
    );
  return usable[0]!.topic;
}

export function baseUrl(req: FastifyRequest, o: { publicUrl?: string }): string {
  if (o.publicUrl) return o.publicUrl;
  const host = req.host;
  if (!host || !HOST_RE.test(host)) throw new BadRequest("no usable Host header: set --public-url");
  return `${req.protocol}://${host}`;
}
