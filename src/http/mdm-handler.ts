import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { CheckinReply, Log, MdmService } from "../core/service.ts";
import type { DeviceTrust } from "../identity/index.ts";
import { parsePlistDict, serializePlist } from "../plist/index.ts";
import { decodeCheckin } from "../protocol/checkin.ts";
import { decodeReport } from "../protocol/report.ts";
import type { PlistLimits } from "../plist/index.ts";
import { type BodyBudget, BudgetExhausted } from "./body-budget.ts";
import { identifyBySignature, identifyFromHeaders, type DeviceIdentity, type HeaderIdentity } from "./device-identity.ts";
import { loggableUrl, statusOf } from "./errors.ts";
import { BodyTimeout, BodyTooLarge } from "./limits.ts";
import { lingerAfterResponse } from "./lingering-close.ts";
import type { Metrics } from "./metrics.ts";
import type { TrustedProxy } from "./trusted-proxy.ts";

// The device endpoints, served by plain node:http rather than through Fastify.
// Every device poll comes here, and Fastify's routing, hooks and request and
// reply objects roughly doubled the CPU of a request: measured on this
// project's 2-core machine, an empty PUT route cost 55 us of CPU in Fastify
// against 29 us in node:http (see BENCHMARKS.md). The API stays on Fastify.

const CHECKIN_TYPE = "application/x-apple-aspen-mdm-checkin";
const COMMAND_TYPE = "application/x-apple-aspen-mdm";
const PLIST_TYPE = "application/xml; charset=UTF-8";

export interface MdmHandlerOptions {
  service: MdmService;
  trust: DeviceTrust;
  log: Logger;
  certHeader?: string;
  /** Peers whose --cert-header is believed (src/http/trusted-proxy.ts). */
  fromTrustedProxy: TrustedProxy;
  /** In-flight body bytes of requests not yet identified, server-wide (--unidentified-body-budget). */
  unidentifiedBodies: BodyBudget;
  checkinPath: string;
  serverPath: string;
  checkinBodyLimit: number;
  reportBodyLimit: number;
  /** Longest pause between two pieces of a body (--body-idle-timeout). */
  bodyIdleTimeoutMs: number;
  /** Parser caps for device messages; undefined: the parser's defaults. */
  plistLimits?: Partial<PlistLimits>;
  /** Requests by endpoint, message type and status, and their latency (/metrics). */
  metrics?: Metrics;
  /** What a failed request's error means for its device (CertBinding.refineError: a device removed meanwhile). */
  refineError?: (err: unknown, deviceId: string, log: Log) => Promise<unknown>;
}

type Endpoint = "checkin" | "server";

/**
 * Returns the handler for device requests, or undefined for a request that
 * is not a PUT to CheckInURL or ServerURL (the API's, left to Fastify).
 *
 * Who calls is settled before the body is read: a TLS or proxy-header
 * certificate is verified from the headers alone, and a caller with no
 * identity, or one that is not trusted, is answered and its connection closed
 * without holding any of its body. Mdm-Signature requests (the signature
 * covers the body) name their signer certificate in the header, which trust
 * judges first; only then is the body read, before the signature over it is
 * verified, within the server-wide unidentified body budget and the signer's
 * share of it.
 */
export function mdmEndpoints(o: MdmHandlerOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  let requests = 0;
  return (req, res) => {
    const endpoint = endpointOf(req, o);
    if (!endpoint) return false;
    const started = performance.now();
    const log = new RequestLog(o.log, `mdm-${++requests}`);
    let caller: HeaderIdentity;
    try {
      caller = identifyFromHeaders(req.headers, req.socket, o.trust, o.certHeader, o.fromTrustedProxy);
    } catch (error) {
      reply(res, req, { error, close: true }, log);
      o.metrics?.device(endpoint, NOT_DECODED, res.statusCode, (performance.now() - started) / 1000);
      return true;
    }
    const budget = "signature" in caller ? { budget: o.unidentifiedBodies, signer: caller.signer } : undefined;
    readBody(req, bodyLimit(endpoint, req.headers["content-type"], o), o.bodyIdleTimeoutMs, budget)
      .then(
        ({ body, release }) => handle(o, endpoint, req, body, caller, release, log),
        (err: unknown): Outcome => ({ error: err, close: err instanceof BodyTimeout || err instanceof BudgetExhausted }),
      )
      .then((result) =>
        atTurnEnd(() => {
          try {
            reply(res, req, result, log);
            if ("error" in result) o.metrics?.deviceError(result.error);
            o.metrics?.device(endpoint, result.type ?? NOT_DECODED, res.statusCode, (performance.now() - started) / 1000);
          } catch (err) {
            // A reply that cannot be written is logged and its connection dropped.
            log.error({ err }, "device reply failed");
            res.destroy();
          }
        }),
      );
    return true;
  };
}

let answers: Array<() => void> = [];

/**
 * Runs a device answer's write at the end of this turn of the event loop,
 * after the requests read in it: the answers then leave back to back, and a
 * reader on this machine (a TLS proxy, the bench's client) is woken once for
 * them rather than once per answer, a cost paid in this process. An answer
 * that SQLite's group commit settles (in an immediate itself) is written in
 * the next turn's; writing it in the commit's own turn measured no better
 * (BENCHMARKS.md, 2026-12-04, second session).
 */
function atTurnEnd(write: () => void): void {
  answers.push(write);
  if (answers.length === 1) setImmediate(writeAnswers);
}

function writeAnswers(): void {
  const now = answers;
  answers = [];
  for (const write of now) write();
}

function endpointOf(req: IncomingMessage, o: MdmHandlerOptions): Endpoint | undefined {
  if (req.method !== "PUT") return undefined;
  const url = req.url ?? "";
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  // The command URL also takes check-ins (a profile without CheckInURL sends both there).
  if (path === o.serverPath) return "server";
  if (path === o.checkinPath) return "checkin";
  return undefined;
}

/** A check-in, wherever it is sent, gets the check-in limit; ServerURL otherwise the larger one. */
function bodyLimit(endpoint: Endpoint, contentType: string | undefined, o: MdmHandlerOptions): number {
  if (endpoint === "checkin" || mediaType(contentType) === CHECKIN_TYPE) return o.checkinBodyLimit;
  return Math.max(o.reportBodyLimit, o.checkinBodyLimit);
}

/** The message's MessageType or Status (the metrics' type label), once decoded. */
type Outcome = ({ answer: CheckinReply } | { command: Buffer | null } | { error: unknown; close?: boolean }) & { type?: string };

/** The type label of a request refused before its message was decoded. */
const NOT_DECODED = "none";

async function handle(
  o: MdmHandlerOptions,
  endpoint: Endpoint,
  req: IncomingMessage,
  raw: Buffer,
  caller: HeaderIdentity,
  release: () => void,
  log: Log,
): Promise<Outcome> {
  let type: string | undefined;
  let deviceId: string | undefined;
  try {
    let identity: DeviceIdentity;
    try {
      identity = "identity" in caller ? caller.identity : await identifyBySignature(caller.signature, raw, caller.signer);
    } finally {
      release();
    }
    const body = parsePlistDict(raw, o.plistLimits);
    const mdmReq = { certFingerprint: identity.fingerprint, method: req.method!, log, now: Date.now(), urlParams: urlParams(req.url) };
    if (isCheckin(endpoint, req.headers["content-type"], body)) {
      const message = decodeCheckin(body, raw);
      type = message.messageType;
      deviceId = message.channel.deviceId;
      return { answer: await o.service.checkIn(mdmReq, message), type };
    }
    const report = decodeReport(body, raw);
    type = report.status;
    deviceId = report.channel.deviceId;
    const next = await o.service.report(mdmReq, report);
    return { command: next ? next.command : null, type };
  } catch (error) {
    return { error: deviceId !== undefined && o.refineError ? await o.refineError(error, deviceId, log) : error, type };
  }
}

function reply(res: ServerResponse, req: IncomingMessage, outcome: Outcome, log: Log): void {
  if ("error" in outcome) {
    if (outcome.error instanceof BudgetExhausted) {
      // One line per refusal, as for every refused device request (info: an attack must not flood warnings).
      log.info(
        { status: 503, reason: outcome.error.message, url: loggableUrl(req.url ?? ""), remote: req.socket.remoteAddress },
        "device request refused",
      );
      const extra = { "retry-after": outcome.error.retryAfterSeconds };
      send(res, 503, "text/plain; charset=utf-8", Buffer.from(outcome.error.message + "\n"), true, extra);
      return;
    }
    const { status, reason, retryAfterSeconds } = statusOf(outcome.error);
    // A passing condition (a database outage) is a warning; a 500 is a bug.
    if (retryAfterSeconds !== undefined) log.warn({ status, reason, err: (outcome.error as Error).cause }, "device request deferred");
    else if (status >= 500) log.error({ err: outcome.error }, "device request failed");
    // The peer connected (a proxy's address behind one): who to look at for a header from a peer not trusted.
    else log.info({ status, reason, url: loggableUrl(req.url ?? ""), remote: req.socket.remoteAddress }, "device request refused");
    // A stalled body, or a caller refused before its body was read: this
    // connection is done. (A body too large is read to its end and dropped,
    // so that the client, still sending, reads the 413.)
    const extra = retryAfterSeconds !== undefined ? { "retry-after": retryAfterSeconds } : undefined;
    send(res, status, "text/plain; charset=utf-8", Buffer.from(reason + "\n"), outcome.close === true, extra);
    return;
  }
  if ("command" in outcome) {
    // "No more commands" is a zero-length body, never an empty plist (brief 6.5).
    if (outcome.command) send(res, 200, PLIST_TYPE, outcome.command);
    else send(res, 200, undefined, undefined);
    return;
  }
  const a = outcome.answer;
  if (a.kind === "empty") send(res, 200, undefined, undefined);
  else if (a.kind === "plist") send(res, 200, PLIST_TYPE, Buffer.from(serializePlist(a.body)));
  else send(res, a.status, a.contentType, a.body);
}

function send(
  res: ServerResponse,
  status: number,
  contentType: string | undefined,
  body: Buffer | undefined,
  close = false,
  extra: Record<string, string | number> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string | number> = { ...extra, "content-length": body ? body.length : 0 };
  if (contentType) headers["content-type"] = contentType;
  if (close) headers.connection = "close";
  res.writeHead(status, headers);
  // node would keep reading the rest of the body before it closes; a stalled or unwanted one is not waited for.
  if (close) lingerAfterResponse(res.socket);
  res.end(body);
}

/**
 * The raw body (the signature covers these exact bytes). Refused with 413 past
 * the limit, and with 408 when it stalls for idleMs. Past the limit nothing
 * more is kept: the rest is read and dropped (--request-timeout bounds how
 * long), so that the client, still sending, gets its answer. With a budget
 * (a caller not identified yet), each chunk is reserved from it as it comes
 * (twice: the chunks are joined into one buffer at the end, a copy),
 * and the request is refused with 503 when the budget or the signer's share
 * of it is spent; the caller
 * releases the reservation once the request is identified. Chunks, not the
 * declared length: a caller that declares much and sends nothing then holds
 * no budget, so idle connections cannot lock signing devices out.
 */
function readBody(
  req: IncomingMessage,
  limit: number,
  idleMs: number,
  unidentified?: { budget: BodyBudget; signer: string },
): Promise<{ body: Buffer; release: () => void }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let reserved = 0;
    let done = false;
    const release = () => {
      unidentified?.budget.release(reserved, unidentified.signer);
      reserved = 0;
    };
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      chunks.length = 0;
      release();
      // Nothing more is kept; an unwanted body still arriving is dropped.
      req.resume();
      reject(err);
    };
    const timer = setTimeout(() => fail(new BodyTimeout(idleMs)), idleMs);
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > limit) fail(new BodyTooLarge(limit));
    // One that could never fit is refused at once.
    else if (unidentified && 2 * declared > unidentified.budget.share) fail(new BudgetExhausted());
    req.on("data", (chunk: Buffer) => {
      if (done) return;
      timer.refresh();
      size += chunk.length;
      if (size > limit) return fail(new BodyTooLarge(limit));
      // Twice the bytes: the pieces, then the one buffer they are joined into.
      if (unidentified && 2 * size > reserved) {
        if (!unidentified.budget.take(2 * size - reserved, unidentified.signer)) return fail(new BudgetExhausted());
        reserved = 2 * size;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), release });
    });
    // The client went away mid-body: nobody to answer, and no server fault.
    req.on("error", () => fail(new ClientGone()));
  });
}

class ClientGone extends Error {
  readonly statusCode = 400;
  constructor() {
    super("the client closed the connection before the body ended");
  }
}

/**
 * Check-in or command report: by endpoint, then by media type (as NanoMDM
 * does), then by the body's MessageType / Status keys.
 */
function isCheckin(endpoint: Endpoint, contentType: string | undefined, body: Record<string, unknown>): boolean {
  if (endpoint === "checkin") return true;
  const media = mediaType(contentType);
  if (media === CHECKIN_TYPE) return true;
  if (media === COMMAND_TYPE) return false;
  return body.MessageType !== undefined && body.Status === undefined;
}

/** The URL's query parameters (the first value of each, as NanoMDM's webhook gives them), or undefined without a query. */
function urlParams(url: string | undefined): Record<string, string> | undefined {
  const q = url?.indexOf("?") ?? -1;
  if (q < 0) return undefined;
  const params: Record<string, string> = Object.create(null);
  for (const [k, v] of new URLSearchParams(url!.slice(q + 1))) if (!(k in params)) params[k] = v;
  return Object.keys(params).length > 0 ? { ...params } : undefined;
}

function mediaType(contentType: string | undefined): string | undefined {
  return contentType?.split(";")[0]?.trim().toLowerCase();
}

/** A request's logger, made (with its request id) only when something is logged. */
class RequestLog implements Log {
  private child: Logger | undefined;
  constructor(
    private readonly parent: Logger,
    private readonly reqId: string,
  ) {}
  private get log(): Logger {
    return (this.child ??= this.parent.child({ reqId: this.reqId }));
  }
  debug(obj: object, msg?: string): void {
    this.log.debug(obj, msg);
  }
  info(obj: object, msg?: string): void {
    this.log.info(obj, msg);
  }
  warn(obj: object, msg?: string): void {
    this.log.warn(obj, msg);
  }
  error(obj: object, msg?: string): void {
    this.log.error(obj, msg);
  }
}
