import type { FastifyInstance } from "fastify";

const METHODS = ["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"] as const;

/**
 * Every method and route Fastify registered, from printRoutes' tree (one tree
 * per method, so routes sharing a node stay apart), as `GET /v1/users/:short_name`
 * (the form Fastify's routeOptions.url has). HEAD is left out: Fastify answers it wherever GET is.
 */
export function registeredRoutes(app: FastifyInstance): Array<{ method: string; url: string }> {
  const routes: Array<{ method: string; url: string }> = [];
  for (const method of METHODS) {
    const stack: string[] = [];
    for (const line of app.printRoutes({ method, commonPrefix: false }).split("\n")) {
      const m = /^(.*?)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
      if (!m) continue;
      const depth = m[1]!.length / 4;
      stack.length = depth;
      stack.push(m[2]!);
      if (m[3]?.split(", ").includes(method)) routes.push({ method, url: stack.join("") });
    }
  }
  return routes;
}
