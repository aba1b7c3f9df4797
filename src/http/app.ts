import http from "node:http";
import https from "node:https";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Pusher } from "../core/push.ts";
import type { Log, MdmService } from "../core/service.ts";
import type { DeviceTrust } from "../identity/index.ts";
import type { Store } from "../store/index.ts";
import type { OperatorAuth } from "../core/operator-auth.ts";
import { registerAuditHook, registerAuditRoutes } from "./audit.ts";
import { apiGuard, knownBrowserKey } from "./operator-auth.ts";
import { registerOperatorRoutes, registerSessionRoutes } from "./operator-routes.ts";
import { routeRule } from "./route-roles.ts";
import { Metrics } from "./metrics.ts";
import { isStoreUnavailable } from "../store/unavailable.ts";
import { registerApiRoutes } from "./api-routes.ts";
import { registerBulkIdRoutes } from "./bulk-ids.ts";
import { registerConsoleRoutes } from "./console-routes.ts";
import { refuseOwnDdmChanges } from "./ddm-forwarded.ts";
import { registerFleetRoutes } from "./fleet-routes.ts";
import { errorHandler } from "./errors.ts";
import { ApiFailureLimiter, clientErrorHandler, frameworkErrorHandler, plainRequestStrings } from "./limits.ts";
import { BodyBudget, signerShare } from "./body-budget.ts";
import { capConnections, defaultMaxConnections, descriptorLimit, refusedAllowance } from "./connection-cap.ts";
import { mdmEndpoints } from "./mdm-handler.ts";
import { registerNoRoute } from "./no-route.ts";
import { trustedProxy } from "./trusted-proxy.ts";
import type { PlistLimits } from "../plist/index.ts";
import { VERSION } from "../version.ts";

/**
 * The most a request's headers (request line included) may take. The server
 * holds them for anyone, before any identity or API key: 300 connections
 * sending 560 KB request lines once raised RSS by 170 MB. 64 KB (node's
 * default is 16 KB) still takes a device's Mdm-Signature or certificate
 * header (2-5 KB) and about 1,500 UUID-style ids in an enqueue or push path;
 * longer id lists go in the body (POST /v1/enqueue, POST /v1/push: bulk-ids.ts).
 */
const MAX_HEADER_BYTES = 64 * 1024;

/** The API's answers are data, never a page: nothing runs, nothing loads, no framing. */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox";

export interface AppOptions {
  log: Logger;
  store: Store;
  service: MdmService;
  /** Called when an operator removes a device: this process stops trusting its remembered binding at once. */
  forgetDevice?: (deviceId: string) => void;
  /** What a failed device request's error means for its device (MdmHandlerOptions.refineError). */
  refineError?: (err: unknown, deviceId: string, log: Log) => Promise<unknown>;
  pusher: Pusher;
  trust: DeviceTrust;
  apiKey: string;
  /** Operator accounts, personal tokens and browser sessions (docs/operators.md). */
  operatorAuth: OperatorAuth;
  certHeader?: string;
  checkinPath: string;
  serverPath: string;
  checkinBodyLimit: number;
  reportBodyLimit: number;
  /** Slow clients, API key failures, plist caps (docs/reliability.md). */
  limits: {
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    bodyIdleTimeoutMs: number;
    apiMaxFailures: number;
    apiFailureWindowMs: number;
    plist?: Partial<PlistLimits>;
    /** Open connections past which new ones get 503 (--max-connections); undefined: from the descriptor limit. */
    maxConnections?: number;
    /** In-flight body bytes of device requests not identified yet, server-wide (--unidentified-body-budget). */
    unidentifiedBodyBudget: number;
  };
  https?: { cert: Buffer; key: Buffer };
  /**
   * --trust-proxy: whose X-Forwarded-For/-Proto/-Host to believe (the client address of rate limits, profile URLs),
   * and whose --cert-header (loopback peers when not given).
   */
  trustProxy?: boolean | string[];
  /** The Prometheus metrics (docs/monitoring.md); undefined: the app makes its own, served at GET /v1/metrics. */
  metrics?: Metrics;
  /** Extra routes (the API of later features) registered behind the API key. */
  apiPlugins?: Array<(app: FastifyInstance) => void>;
  /** --dm-url: DDM check-ins go to that service; changes to Orchard's own DDM are refused (http/ddm-forwarded.ts). */
  dmUrl?: string;
  /** Routes devices reach without the API key (SCEP, enrollment profiles): each guards itself. */
  publicPlugins?: Array<(app: FastifyInstance) => void>;
}

export function buildApp(o: AppOptions): FastifyInstance {
  const largestBody = Math.max(o.reportBodyLimit, o.checkinBodyLimit);
  const metrics = o.metrics ?? new Metrics(o.store);
  const deviceEndpoints = mdmEndpoints({
    ...o,
    metrics,
    log: o.log,
    bodyIdleTimeoutMs: o.limits.bodyIdleTimeoutMs,
    plistLimits: o.limits.plist,
    fromTrustedProxy: trustedProxy(o.trustProxy, "loopback"),
    unidentifiedBodies: new BodyBudget(o.limits.unidentifiedBodyBudget, signerShare(o.limits.unidentifiedBodyBudget, largestBody)),
  });
  if (2 * largestBody > o.limits.unidentifiedBodyBudget) {
    o.log.warn(
      { unidentifiedBodyBudget: o.limits.unidentifiedBodyBudget, largestBody },
      "--unidentified-body-budget is less than twice the largest body limit: larger signed (Mdm-Signature) bodies will always get 503",
    );
  }
  if (o.certHeader) {
    const from =
      o.trustProxy === true
        ? "any peer"
        : Array.isArray(o.trustProxy) && o.trustProxy.length
          ? o.trustProxy.join(", ")
          : "loopback peers only";
    o.log.info({ certHeader: o.certHeader, from }, "device certificate header believed from trusted proxies");
  }
  const app = Fastify({
    loggerInstance: o.log as FastifyBaseLogger,
    // One log line per notable event, not two per request: at thousands of
    // polls a second, per-request lines would cost more than the request.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: o.trustProxy ?? false,
    bodyLimit: o.reportBodyLimit,
    // Enqueue and push name their enrollment ids in the path (NanoMDM's API):
    // as long a list as the header cap lets through (longer ones: bulk-ids.ts).
    routerOptions: { maxParamLength: MAX_HEADER_BYTES },
    clientErrorHandler: clientErrorHandler(o.log),
    frameworkErrors: frameworkErrorHandler(errorHandler),
    // Device requests never reach Fastify: the server hands them to the
    // node:http handler in mdm-handler.ts and everything else to Fastify.
    serverFactory: (fastifyHandler) => {
      const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
        // A connection past --max-connections already has its 503 and is closing.
        if (cap.refused(req.socket)) return void req.resume();
        if (!deviceEndpoints(req, res)) fastifyHandler(req, res);
      };
      // Slow clients (slow-loris): headers and the whole request each have a
      // deadline, checked every second (node's default is every 30 s).
      const { headersTimeoutMs, requestTimeoutMs } = o.limits;
      const options = {
        maxHeaderSize: MAX_HEADER_BYTES,
        headersTimeout: Math.min(headersTimeoutMs, requestTimeoutMs),
        requestTimeout: requestTimeoutMs,
        connectionsCheckingInterval: Math.min(1000, headersTimeoutMs, requestTimeoutMs),
      };
      // Devices present their identity certificate; Orchard checks it itself
      // against --ca, so the TLS layer asks for it but accepts any.
      const server = o.https
        ? https.createServer({ cert: o.https.cert, key: o.https.key, requestCert: true, rejectUnauthorized: false, ...options }, handler)
        : http.createServer(options, handler);
      // Fastify sets this only on servers it makes itself. Node's 5 s default
      // races clients and proxies reusing an idle connection (ECONNRESET);
      // keep idle connections longer than common load balancers' 60 s.
      server.keepAliveTimeout = 65_000;
      const fdLimit = descriptorLimit();
      const maxConnections = o.limits.maxConnections ?? defaultMaxConnections(fdLimit);
      const refused = refusedAllowance(maxConnections, fdLimit);
      const cap = capConnections(server, maxConnections, o.log, {
        tls: o.https !== undefined,
        fdLimit,
        refusedAllowance: refused,
        onRefused: (how) => metrics.connectionsRefused.labels(how).inc(),
      });
      o.log.info({ maxConnections, refusedAllowance: refused, descriptorLimit: fdLimit ?? "unknown" }, "connection cap");
      if (fdLimit !== undefined && maxConnections >= fdLimit) {
        o.log.warn(
          { maxConnections, descriptorLimit: fdLimit },
          "--max-connections is not below the descriptor limit: the process can run out of descriptors",
        );
      }
      return server;
    },
  });

  // Every body is read raw: MDM signatures cover the exact bytes, and the API
  // reads plist and PEM bodies whatever Content-Type a client sends.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
  app.setErrorHandler(errorHandler);
  // Requests by route template (never the path itself: it names enrollments and commands).
  app.addHook("onResponse", async (req, reply) => {
    metrics.api(req.routeOptions.url ?? "unmatched", reply.statusCode);
  });
  // API answers share the console's origin: whatever a body holds (an asset
  // uploaded as text/html, a device's string in an error), a browser that
  // opens one runs no script and loads nothing, in a sandbox of its own origin.
  // Every answer but the console's own (which sets its policy) gets it: judged
  // by the raw URL, `/%761/...` (which the router decodes to /v1/) went out
  // without it (hostile review).
  app.addHook("onSend", async (_req, reply, payload) => {
    // A configuration profile is installed, not rendered: left as before, for the devices' own download flow.
    const profile = String(reply.getHeader("content-type") ?? "").startsWith("application/x-apple-aspen-config");
    if (!profile && !reply.hasHeader("content-security-policy")) void reply.header("content-security-policy", API_CSP);
    void reply.header("x-content-type-options", "nosniff");
    return payload;
  });
  app.addHook("onError", async (_req, _reply, err) => {
    if (isStoreUnavailable(err)) metrics.storeUnavailable.inc();
  });
  // No route: 404, or 405 with Allow when another method has one; a body is never read for either.
  registerNoRoute(app, [o.checkinPath, o.serverPath]);

  app.get("/healthz", async (_req, reply) => {
    const ok = await o.store.ping();
    return reply.code(ok ? 200 : 503).send({ status: ok ? "ok" : "store unavailable" });
  });
  app.get("/version", async () => ({ version: VERSION }));
  // The web console's page and files (docs/console.md): it signs in and reads /v1 like any client.
  registerConsoleRoutes(app);

  app.register(async (open) => {
    open.addHook("preValidation", plainRequestStrings);
    for (const plugin of o.publicPlugins ?? []) plugin(open);
  });
  // Who is calling (http/operator-auth.ts) and the audit log of every change (http/audit.ts).
  app.decorateRequest("actor", undefined);
  registerAuditHook(app, o.store);
  const limiter = () => new ApiFailureLimiter(o.limits.apiMaxFailures, o.limits.apiFailureWindowMs);
  // A password change's wrong current passwords count per account, not per address (its guesser holds one of the
  // account's credentials and may come from anywhere), and with no budget for all accounts together: strangers'
  // wrong sign-ins must not hold back an operator's password change.
  const passwordChanges = new ApiFailureLimiter(o.limits.apiMaxFailures, o.limits.apiFailureWindowMs, 10_000, false);
  app.register(async (session) => {
    session.addHook("preValidation", plainRequestStrings);
    registerSessionRoutes(session, {
      auth: o.operatorAuth,
      limiter: limiter(),
      knownKey: knownBrowserKey(o.apiKey),
      // Per name, like password changes: strangers' wrong sign-ins must not hold back a known browser.
      knownLimiter: new ApiFailureLimiter(o.limits.apiMaxFailures, o.limits.apiFailureWindowMs, 10_000, false),
    });
  });
  app.register(async (api) => {
    // A route nobody gave a role is the admin's alone (http/route-roles.ts); say so at start-up.
    api.addHook("onRoute", (route) => {
      for (const method of [route.method].flat()) {
        if (method !== "HEAD" && route.url.startsWith("/v1/") && routeRule(method, route.url) === undefined) {
          o.log.warn({ method, route: route.url }, "API route without a role in http/route-roles.ts: admins only");
        }
      }
    });
    api.addHook("onRequest", apiGuard({ apiKey: o.apiKey, auth: o.operatorAuth, limiter: limiter() }));
    // After the guard (a stranger learns nothing), before the body is read.
    if (o.dmUrl !== undefined) api.addHook("onRequest", refuseOwnDdmChanges(o.dmUrl));
    api.addHook("preValidation", plainRequestStrings);
    registerOperatorRoutes(api, { store: o.store, auth: o.operatorAuth, passwordChanges });
    registerAuditRoutes(api, o.store);
    registerApiRoutes(api, {
      store: o.store,
      pusher: o.pusher,
      forgetDevice: o.forgetDevice,
      commandBodyLimit: o.reportBodyLimit,
      plistLimits: o.limits.plist,
    });
    registerBulkIdRoutes(api, { store: o.store, pusher: o.pusher, commandBodyLimit: o.reportBodyLimit });
    registerFleetRoutes(api, { store: o.store });
    api.get("/v1/metrics", async (_req, reply) => reply.type(metrics.contentType).send(await metrics.text()));
    for (const plugin of o.apiPlugins ?? []) plugin(api);
  });
  return app;
}
