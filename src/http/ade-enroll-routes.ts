// POST /ade/enroll: the URL a DEP profile points at (ade/profile.ts's default).
// During Setup Assistant the device sends its MachineInfo, signed with its
// Apple-issued identity; Orchard answers the enrollment profile made for that
// device (a SCEP challenge bound to its serial number), or a 403 in Apple's
// shapes (softwareupdate.required, psso.required). No API key: the signed
// MachineInfo and the serial number ABM assigns to Orchard are the guard.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AdeEnrollment, AdmitMachine } from "../ade/enrollment.ts";
import { KeyWindow } from "../core/key-window.ts";
import { MAX_MACHINE_INFO_BYTES } from "../ade/machine-info.ts";
import { ADE_ENROLL_PATH } from "../ade/profile.ts";
import { buildEnrollmentProfile } from "../enroll/profile.ts";
import type { ProfileSigner } from "../enroll/sign-profile.ts";
import { OrchardError } from "../errors.ts";
import { sendError } from "./errors.ts";
import type { Store } from "../store/index.ts";
import { sendTooMany } from "./api-auth.ts";
import { bodyBuffer } from "./api-routes.ts";
import { baseUrl, pickTopic, signed } from "./enroll-routes.ts";
import type { ApiFailureLimiter } from "./limits.ts";

export interface AdeEnrollRoutesOptions {
  store: Store;
  enrollment: AdeEnrollment;
  /** A single-use SCEP challenge bound to this serial number. */
  newChallenge(serial: string): Promise<string>;
  publicUrl?: string;
  checkinPath: string;
  serverPath: string;
  scepPath: string;
  signer?: ProfileSigner;
  sandboxApns: boolean;
  /** Refused MachineInfos per client address (past the limit a refusal is a 429, unlogged). */
  limiter: ApiFailureLimiter;
}

/**
 * Answers per serial number (per serial and UDID with --ade-device-ca) in
 * PROFILE_WINDOW_MS. Each writes a SCEP challenge or a refusal's event, and
 * log lines, and anyone who knows an assigned serial (without
 * --ade-device-ca) or holds one MachineInfo can ask: 1,000 requests made
 * 1,000 of each (hostile review). A device asks once per run of Setup
 * Assistant, twice with Platform SSO.
 */
export const PROFILES_PER_SERIAL = 10;
export const PROFILE_WINDOW_MS = 3_600_000;

export function registerAdeEnrollRoutes(app: FastifyInstance, o: AdeEnrollRoutesOptions): void {
  const served = new KeyWindow(PROFILES_PER_SERIAL, PROFILE_WINDOW_MS);
  app.post(ADE_ENROLL_PATH, { bodyLimit: MAX_MACHINE_INFO_BYTES }, async (req, reply) => {
    const wait = o.limiter.blockedFor(req.ip, Date.now());
    try {
      return await answer(req, reply, o, served);
    } catch (err) {
      // A valid MachineInfo from a throttled address is still answered; refusals past the limit are a 429.
      // Only the device's own fault counts (not a 409 for a missing push certificate).
      if (err instanceof OrchardError && (err.status === 400 || err.status === 403)) {
        if (wait > 0) {
          sendTooMany(req, reply, wait, "ADE enrollment", "ADE enrollments", o.limiter.refusalsToLog(Date.now()));
          return reply;
        }
        o.limiter.fail(req.ip, Date.now());
      }
      throw err;
    }
  });
}

async function answer(req: FastifyRequest, reply: FastifyReply, o: AdeEnrollRoutesOptions, served: KeyWindow): Promise<FastifyReply> {
  const header = req.headers["x-apple-aspen-deviceinfo"];
  // The window is taken once the MachineInfo is read, before anything is written (the refusals write events too).
  // Per serial and UDID when Apple's CA vouches for the signer (one device: a replay is the only flood); per serial
  // otherwise, since anyone can then sign any UDID.
  let heldBack = 0;
  const admit: AdmitMachine = (m) => {
    const take = served.take(m.chained ? `${m.serial}\n${m.udid}` : m.serial, Date.now());
    heldBack = take.heldBack;
    return take.passes;
  };
  // Platform SSO's second request carries the identity provider's bearer token (not verified: docs/automated-enrollment.md).
  const bearer = /^Bearer\s+\S/i.test(req.headers.authorization ?? "");
  const decision = await o.enrollment.decide(
    bodyBuffer(req),
    typeof header === "string" ? header : undefined,
    req.log,
    Date.now(),
    admit,
    bearer,
  );
  if (decision.kind === "limited") {
    // Nothing written; one line per serial and window.
    if (heldBack === 1) {
      req.log.warn(
        { serialNumber: decision.serial, remote: req.ip, limit: PROFILES_PER_SERIAL },
        "ADE enrollment URL answers for this serial number past the limit: refused until the hour ends",
      );
    }
    void reply.header("retry-after", String(Math.ceil(PROFILE_WINDOW_MS / 1000)));
    sendError(req, reply, 429, `too many enrollment requests for serial number ${decision.serial} this hour`, "rate_limited");
    return reply;
  }
  if (decision.kind === "refuse") {
    return reply.code(403).type("application/json").header("cache-control", "no-store").send(JSON.stringify(decision.body));
  }
  const m = decision.machine;
  const topic = await pickTopic(o.store, undefined, Date.now());
  const base = baseUrl(req, o);
  let profile = buildEnrollmentProfile({
    serverUrl: base + o.serverPath,
    checkInUrl: base + o.checkinPath,
    topic,
    identity: {
      kind: "scep",
      url: base + o.scepPath,
      challenge: await o.newChallenge(m.serial),
      subjectCommonName: `Orchard ADE ${m.serial}`,
    },
    useDevelopmentApns: o.sandboxApns || undefined,
    allowHttp: true,
  });
  if (!base.startsWith("https://"))
    req.log.warn({ base }, "ADE enrollment profile with an http:// URL: devices only enroll over https (set --public-url)");
  if (o.signer) profile = await signed(profile, o.signer, req);
  await o.enrollment.served(decision);
  req.log.info(
    {
      serialNumber: m.serial,
      udid: m.udid,
      product: m.product,
      osVersion: m.osVersion,
      server: decision.server,
      appleCaVerified: decision.appleCaVerified,
      bearer,
    },
    "ADE enrollment profile served",
  );
  return reply.header("content-type", "application/x-apple-aspen-config").header("cache-control", "no-store").send(profile);
}
