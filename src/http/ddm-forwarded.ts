import type { FastifyReply, FastifyRequest } from "fastify";
import { Conflict } from "../errors.ts";

// With --dm-url, devices fetch their declarations from the DDM service the
// check-ins are forwarded to (KMFDDM), and Orchard queues no
// DeclarativeManagement command of its own: what its own DDM API would change
// would never reach a device. Those changes are refused, naming why; reads
// still answer (what Orchard holds, from before).

/** The routes that change Orchard's own DDM, and the features built on it (inventory subscriptions, software updates). */
const OWN_DDM_ROUTES =
  /^\/v1\/(declarations|set-declarations|enrollment-sets|enrollment-sets-all|notify|ddm|inventory-subscriptions|updates\/(policies|apply|feed))(\/|$)/;

/** Whether a route (its pattern) and method change Orchard's own DDM. */
export function changesOwnDdm(method: string, route: string): boolean {
  const m = method.toUpperCase();
  // /v1/declarations/validate changes nothing.
  return m !== "GET" && m !== "HEAD" && OWN_DDM_ROUTES.test(route) && route !== "/v1/declarations/validate";
}

/** The refusal of a change to Orchard's own DDM while --dm-url forwards it. */
export function ddmForwarded(dmUrl: string, what = "Orchard's own declarations, sets, assets or the features built on them"): Conflict {
  return new Conflict(
    `declarative management is forwarded to the DDM service at ${new URL(dmUrl).origin} (--dm-url): devices never see ${what}; manage declarations there`,
    "ddm_forwarded",
  );
}

/** An API hook: 409 ddm_forwarded for a change to Orchard's own DDM (matched on the route's pattern, not the raw URL). */
export function refuseOwnDdmChanges(dmUrl: string) {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const route = req.routeOptions.url;
    if (route !== undefined && changesOwnDdm(req.method, route)) throw ddmForwarded(dmUrl);
  };
}
