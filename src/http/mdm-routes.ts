import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { MdmService } from "../core/service.ts";
import type { DeviceTrust } from "../identity/index.ts";
import { parsePlistDict, serializePlist } from "../plist/index.ts";
import { decodeCheckin } from "../protocol/checkin.ts";
import { decodeReport } from "../protocol/report.ts";
import { identifyDevice } from "./device-identity.ts";

const CHECKIN_TYPE = "application/x-apple-aspen-mdm-checkin";
const COMMAND_TYPE = "application/x-apple-aspen-mdm";
const PLIST_TYPE = "application/xml; charset=UTF-8";

export interface MdmRouteOptions {
  service: MdmService;
  trust: DeviceTrust;
  certHeader?: string;
  checkinPath: string;
  serverPath: string;
  checkinBodyLimit: number;
  reportBodyLimit: number;
}

/** PUT CheckInURL and ServerURL: identity, plist, message, reply. */
export function registerMdmRoutes(app: FastifyInstance, o: MdmRouteOptions): void {
  const handle = (path: "checkin" | "server") => async (req: FastifyRequest, reply: FastifyReply) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const identity = await identifyDevice(req, raw, o.trust, o.certHeader);
    const body = parsePlistDict(raw);
    const mdmReq = { certFingerprint: identity.fingerprint, method: req.method, log: req.log, now: Date.now() };
    if (isCheckin(path, req.headers["content-type"], body)) {
      const msg = decodeCheckin(body, raw);
      const answer = await o.service.checkIn(mdmReq, msg);
      switch (answer.kind) {
        case "empty":
          return reply.code(200).send();
        case "plist":
          return reply.code(200).type(PLIST_TYPE).send(serializePlist(answer.body));
        case "raw":
          if (answer.contentType) reply.type(answer.contentType);
          return reply.code(answer.status).send(answer.body);
      }
    }
    const next = await o.service.report(mdmReq, decodeReport(body, raw));
    if (!next) return reply.code(200).send();
    return reply.code(200).type(PLIST_TYPE).send(next.command);
  };
  const sameUrl = o.checkinPath === o.serverPath;
  if (!sameUrl) {
    app.put(o.checkinPath, { bodyLimit: o.checkinBodyLimit }, handle("checkin"));
  }
  // The command URL also takes check-ins (a profile without CheckInURL sends both there).
  app.put(o.serverPath, { bodyLimit: Math.max(o.reportBodyLimit, o.checkinBodyLimit) }, handle("server"));
}

/**
 * Check-in or command report: by path, then by media type (as NanoMDM does),
 * then by the body's MessageType / Status keys.
 */
function isCheckin(path: "checkin" | "server", contentType: string | undefined, body: Record<string, unknown>): boolean {
  if (path === "checkin") return true;
  const media = contentType?.split(";")[0]?.trim().toLowerCase();
  if (media === CHECKIN_TYPE) return true;
  if (media === COMMAND_TYPE) return false;
  return body.MessageType !== undefined && body.Status === undefined;
}
