import type { FastifyReply, FastifyRequest } from "fastify";
import { Conflict } from "../errors.ts";

// With --dm-url, devices fetch their declarations from the DDM service the
// check-ins are forwarded to (KMFDDM), and Orchard queues no
// DeclarativeManagement command of its own: what its own DDM API would change
// would never reach a device. Those changes are refused, naming why; reads
// still answer (what Orchard holds, from before).

/** The routes that change Orchard's own DDM, and the features built on it (inventory subscriptions, update policies). */
const OWN_DDM_CHANGES =
  /^\/v1\/(declarations|set-declarations|enrollment-sets|enrollment-sets-all|notify|ddm|inventory-subscriptions|updates\/policies|updates\/apply)(\/|$)/;

/** An API hook: 409 ddm_forwarded for a change to Orchard's own DDM (matched on the route's pattern, not the raw URL). */
export function refuseOwnDdmChanges(dmUrl: string) {
  const target = new URL(dmUrl).origin;
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    if (req.method === "GET" || req.method === "HEAD") return;
    const route = req.routeOptions.url;
    if (route === undefined || !OWN_DDM_CHANGES.test(route)) return;
    // /v1/declarations/validate changes nothing.
    if (route === "/v1/declarations/validate") return;
    throw new Conflict(
      `declarative management is forwarded to the DDM service at ${target} (--dm-url): devices never see Orchard's own declarations, sets, assets or the features built on them; manage declarations there`,
      "ddm_forwarded",
    );
  };
}
