import http from "node:http";
import https from "node:https";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Pusher } from "../core/push.ts";
import type { MdmService } from "../core/service.ts";
import type { DeviceTrust } from "../identity/index.ts";
import type { Store } from "../store/index.ts";
import { apiKeyGuard } from "./api-auth.ts";
import { registerApiRoutes } from "./api-routes.ts";
import { errorHandler, loggableUrl, sendError } from "./errors.ts";
import { ApiFailureLimiter, clientErrorHandler, frameworkErrorHandler, plainRequestStrings } from "./limits.ts";
import { mdmEndpoints } from "./mdm-handler.ts";
import type { PlistLimits } from "../plist/index.ts";
import { VERSION } from "../version.ts";

const MAX_ID_LIST_BYTES = 512 * 1024;

export interface AppOptions {
  log: Logger;
  store: Store;
  service: MdmService;
  pusher: Pusher;
  trust: DeviceTrust;
  apiKey: string;
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
  };
  https?: { cert: Buffer; key: Buffer };
  /** --trust-proxy: whose X-Forwarded-For/-Proto/-Host to believe (the client address of rate limits, profile URLs). */
  trustProxy?: boolean | string[];
  /** Extra routes (the API of later features) registered behind the API key. */
  apiPlugins?: Array<(app: FastifyInstance) => void>;
  /** Routes devices reach without the API key (SCEP, enrollment profiles): each guards itself. */
  publicPlugins?: Array<(app: FastifyInstance) => void>;
}

export function buildApp(o: AppOptions): FastifyInstance {
  const deviceEndpoints = mdmEndpoints({ ...o, log: o.log, bodyIdleTimeoutMs: o.limits.bodyIdleTimeoutMs, plistLimits: o.limits.plist });
  const app = Fastify({
    loggerInstance: o.log as FastifyBaseLogger,
    // One log line per notable event, not two per request: at thousands of
    // polls a second, per-request lines would cost more than the request.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: o.trustProxy ?? false,
    bodyLimit: o.reportBodyLimit,
    // Enqueue and push name their enrollment ids in the path (NanoMDM's API):
    // allow a long list (10,000 UUID-style ids is about 370 KB).
    routerOptions: { maxParamLength: MAX_ID_LIST_BYTES },
    clientErrorHandler: clientErrorHandler(o.log),
    frameworkErrors: frameworkErrorHandler(errorHandler),
    // Device requests never reach Fastify: the server hands them to the
    // node:http handler in mdm-handler.ts and everything else to Fastify.
    serverFactory: (fastifyHandler) => {
      const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
        if (!deviceEndpoints(req, res)) fastifyHandler(req, res);
      };
      // Slow clients (slow-loris): headers and the whole request each have a
      // deadline, checked every second (node's default is every 30 s).
      const { headersTimeoutMs, requestTimeoutMs } = o.limits;
      const options = {
        maxHeaderSize: MAX_ID_LIST_BYTES + 64 * 1024,
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
      return server;
    },
  });

  // Every body is read raw: MDM signatures cover the exact bytes, and the API
  // reads plist and PEM bodies whatever Content-Type a client sends.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => {
    req.log.info({ method: req.method, url: loggableUrl(req.url) }, "no such route");
    sendError(req, reply, 404, "not found", "no_such_route");
  });

  app.get("/healthz", async (_req, reply) => {
    const ok = await o.store.ping();
    return reply.code(ok ? 200 : 503).send({ status: ok ? "ok" : "store unavailable" });
  });
  app.get("/version", async () => ({ version: VERSION }));

  app.register(async (open) => {
    open.addHook("preValidation", plainRequestStrings);
    for (const plugin of o.publicPlugins ?? []) plugin(open);
  });
  app.register(async (api) => {
    api.addHook("onRequest", apiKeyGuard(o.apiKey, new ApiFailureLimiter(o.limits.apiMaxFailures, o.limits.apiFailureWindowMs)));
    api.addHook("preValidation", plainRequestStrings);
    registerApiRoutes(api, { store: o.store, pusher: o.pusher, commandBodyLimit: o.reportBodyLimit, plistLimits: o.limits.plist });
    for (const plugin of o.apiPlugins ?? []) plugin(api);
  });
  return app;
}
