// Requests the router has no route for: 404, or 405 with Allow when the path
// is a route's under another method (curl's --data-binary sends POST to a PUT
// route). Either is answered from the headers: a body is never read for them.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { loggableUrl, sendError } from "./errors.ts";
import { lingerAfterResponse } from "./lingering-close.ts";

/** The methods the API's routes use, in the order Allow names them. */
const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] as const;

/**
 * The methods that have a route at this request's path. The device endpoints
 * (the check-in and command paths) take PUT; node's handler in mdm-handler.ts
 * serves them, so the router does not know them.
 */
export function allowedMethods(app: FastifyInstance, url: string, devicePaths: readonly string[]): string[] {
  const q = url.indexOf("?");
  if (devicePaths.includes(q < 0 ? url : url.slice(0, q))) return ["PUT"];
  return METHODS.filter((method) => app.findRoute({ method, url }) !== null);
}

/** Registers the answers for requests without a route (app.ts). */
export function registerNoRoute(app: FastifyInstance, devicePaths: readonly string[]): void {
  const refuse = (req: FastifyRequest, reply: FastifyReply) => {
    const allowed = allowedMethods(app, req.url, devicePaths);
    const url = loggableUrl(req.url);
    if (allowed.length === 0) {
      req.log.info({ method: req.method, url }, "no such route");
      return sendError(req, reply, 404, "not found", "no_such_route");
    }
    req.log.info({ method: req.method, url, allowed }, "method not allowed");
    // curl's --data/--data-binary send POST; the NanoMDM-style routes that take a file (enqueue, pushcert) are PUT.
    const hint =
      req.method === "POST" && allowed.includes("PUT") ? " (curl: --data-binary sends POST; add -X PUT, or send the file with -T)" : "";
    void reply.header("allow", allowed.join(", "));
    sendError(req, reply, 405, `${req.method} is not a method of this route: it takes ${allowed.join(", ")}${hint}`, "method_not_allowed");
  };
  // No route and a body: answered before the catch-all parser (app.ts) would
  // read (and hold) a body of up to --report-body-limit for anyone.
  app.addHook("onRequest", async (req, reply) => {
    const hasBody = req.raw.headers["content-length"] !== undefined || req.raw.headers["transfer-encoding"] !== undefined;
    if (!req.is404 || !hasBody) return;
    lingerAfterResponse(req.raw.socket);
    void reply.header("connection", "close");
    refuse(req, reply);
    return reply;
  });
  app.setNotFoundHandler(refuse);
}
