import type { Role } from "../store/operators.ts";

/**
 * Who may call each API route: the one table of it. A route is keyed by its
 * method and its template as Fastify registers it (`PUT /v1/users/:short_name`).
 *
 * - `role`: the least role that may call it (auditor < operator < admin);
 *   `public`: reached without a credential (signing in), the route checks what it needs.
 * - `action`: the audit log's name for what the route changes. A route with
 *   an action is written to the audit log on every answer; one without is a
 *   read. GET /v1/push/{ids} pushes (NanoMDM's form), so it has one.
 *
 * A /v1 route missing here answers 403 to all but admins (the API key
 * included) and is logged at start-up; test/roles.test.ts walks every
 * registered route and fails on it.
 */
export type RouteRule = { role: Role | "public"; action?: string };

const read: RouteRule = { role: "auditor" };
const op = (action: string): RouteRule => ({ role: "operator", action });
const admin = (action: string): RouteRule => ({ role: "admin", action });

export const ROUTE_ROLES: Readonly<Record<string, RouteRule>> = {
  // Signing in, the session, oneself
  "POST /v1/session": { role: "public", action: "session.sign_in" },
  "GET /v1/session": { role: "public" },
  "DELETE /v1/session": { role: "public", action: "session.sign_out" },
  "GET /v1/me": read,
  "PUT /v1/me/password": { role: "auditor", action: "operator.password_change" },
  // Accounts: admins only
  "GET /v1/operators": { role: "admin" },
  "POST /v1/operators": admin("operator.add"),
  "GET /v1/operators/:name": { role: "admin" },
  "PATCH /v1/operators/:name": admin("operator.change"),
  "DELETE /v1/operators/:name": admin("operator.remove"),
  // Personal tokens: everyone their own (an admin anyone's), at most their own role
  "GET /v1/tokens": read,
  "POST /v1/tokens": { role: "auditor", action: "token.create" },
  "DELETE /v1/tokens/:id": { role: "auditor", action: "token.revoke" },
  "GET /v1/audit": read,
  // Devices, commands, events
  "GET /v1/enrollments": read,
  "GET /v1/enrollments/:id": read,
  "GET /v1/enrollments/:id/rebind": read,
  "GET /v1/enrollments/:id/commands": read,
  "GET /v1/fleet": read,
  "POST /v1/enrollments/:id/rebind": op("enrollment.rebind_approve"),
  "DELETE /v1/enrollments/:id": op("enrollment.remove"),
  "PUT /v1/enqueue/:ids": op("command.enqueue"),
  "POST /v1/enqueue": op("command.enqueue"),
  "GET /v1/queue/:id": read,
  "DELETE /v1/queue/:id": op("queue.clear"),
  "GET /v1/commands/:uuid": read,
  "GET /v1/events": read,
  "GET /v1/event-types": read,
  "GET /v1/push/:ids": op("push.send"),
  "POST /v1/push/:ids": op("push.send"),
  "POST /v1/push": op("push.send"),
  "GET /v1/metrics": read,
  "GET /v1/openapi.json": read,
  // Push certificates: the server's own identity towards APNs
  "GET /v1/pushcert": read,
  "PUT /v1/pushcert": admin("pushcert.upload"),
  "DELETE /v1/pushcert/:topic": admin("pushcert.remove"),
  "POST /v1/scep/challenges": op("scep.challenge_create"),
  // Network users
  "GET /v1/users": read,
  "GET /v1/users/:short_name": read,
  "PUT /v1/users/:short_name": op("user.put"),
  "DELETE /v1/users/:short_name": op("user.remove"),
  "POST /v1/users/import": op("user.import"),
  "GET /v1/user-sessions": read,
  // Declarative Device Management
  "GET /v1/declarations": read,
  "PUT /v1/declarations": op("ddm.declaration_put"),
  "GET /v1/declarations/:id": read,
  // A check that stores nothing (the console's editor): a read, for every role.
  "POST /v1/declarations/validate": read,
  "DELETE /v1/declarations/:id": op("ddm.declaration_remove"),
  "POST /v1/declarations/:id/touch": op("ddm.declaration_touch"),
  "GET /v1/sets": read,
  "GET /v1/set-declarations/:id": read,
  "PUT /v1/set-declarations/:id": op("ddm.set_declaration_add"),
  "DELETE /v1/set-declarations/:id": op("ddm.set_declaration_remove"),
  "GET /v1/enrollment-sets/:id": read,
  "PUT /v1/enrollment-sets/:id": op("ddm.enrollment_set_add"),
  "DELETE /v1/enrollment-sets/:id": op("ddm.enrollment_set_remove"),
  "DELETE /v1/enrollment-sets-all/:id": op("ddm.enrollment_sets_clear"),
  "POST /v1/ddm/sets/:set/enrollments": op("ddm.set_enrollments_add"),
  "DELETE /v1/ddm/sets/:set/enrollments": op("ddm.set_enrollments_remove"),
  "GET /v1/declaration-sets/:id": read,
  "GET /v1/declaration-status/:id": read,
  "GET /v1/set-compliance/:set": read,
  "GET /v1/status-errors/:id": read,
  "GET /v1/status-report/:id": read,
  "GET /v1/status-values/:id": read,
  "POST /v1/notify": op("ddm.notify"),
  "GET /v1/ddm/assets": read,
  "GET /v1/ddm/assets/:id": read,
  "GET /v1/ddm/assets/:id/data": read,
  "PUT /v1/ddm/assets/:id": op("ddm.asset_put"),
  "DELETE /v1/ddm/assets/:id": op("ddm.asset_remove"),
  "GET /v1/ddm/profiles": read,
  "GET /v1/ddm/profiles/:id": read,
  "GET /v1/ddm/profiles/:id/data": read,
  "PUT /v1/ddm/profiles/:id": op("ddm.profile_put"),
  "DELETE /v1/ddm/profiles/:id": op("ddm.profile_remove"),
  "GET /v1/ddm/credentials": read,
  "GET /v1/ddm/credentials/:name": read,
  "PUT /v1/ddm/credentials/:name": op("ddm.credential_put"),
  "DELETE /v1/ddm/credentials/:name": op("ddm.credential_remove"),
  "GET /v1/ddm/credential-ca": read,
  // Webhooks
  "GET /v1/webhook": read,
  "POST /v1/webhook/retry": op("webhook.retry"),
  // Automated Device Enrollment: the ABM servers and their tokens are the admin's; profiles and syncs the operator's
  "GET /v1/ade/devices": read,
  "GET /v1/ade/servers": read,
  "GET /v1/ade/servers/:name": read,
  "PUT /v1/ade/servers/:name": admin("ade.server_put"),
  "DELETE /v1/ade/servers/:name": admin("ade.server_remove"),
  "PUT /v1/ade/servers/:name/token": admin("ade.token_upload"),
  "PUT /v1/ade/servers/:name/default-profile": op("ade.default_profile"),
  "GET /v1/ade/servers/:name/profiles": read,
  "PUT /v1/ade/servers/:name/profiles/:profile": op("ade.profile_put"),
  "DELETE /v1/ade/servers/:name/profiles/:profile": op("ade.profile_remove"),
  "POST /v1/ade/servers/:name/profiles/:profile/assign": op("ade.profile_assign"),
  "POST /v1/ade/servers/:name/sync": op("ade.sync"),
  "GET /v1/ade/servers/:name/enrollment-settings": read,
  "PUT /v1/ade/servers/:name/enrollment-settings": op("ade.enrollment_settings_put"),
  "GET /v1/ade/enrollments": read,
  "GET /v1/ade/enrollments/:serial": read,
  "POST /v1/ade/enrollments/:serial/release": op("ade.device_release"),
  // The device inventory
  "GET /v1/inventory": read,
  "GET /v1/inventory/:device_id": read,
  "GET /v1/inventory-subscriptions": read,
  "PUT /v1/inventory-subscriptions/:platform": op("inventory.subscribe"),
  "DELETE /v1/inventory-subscriptions/:platform": op("inventory.unsubscribe"),
  // OS updates through DDM
  "GET /v1/updates/feed": read,
  "POST /v1/updates/feed/refresh": op("updates.feed_refresh"),
  "GET /v1/updates/releases": read,
  "GET /v1/updates/policies": read,
  "PUT /v1/updates/policies/:name": op("updates.policy_put"),
  "GET /v1/updates/policies/:name": read,
  "DELETE /v1/updates/policies/:name": op("updates.policy_remove"),
  "GET /v1/updates/policies/:name/compliance": read,
  "GET /v1/updates/policies/:name/devices": read,
  "GET /v1/updates/devices/:id": read,
  "POST /v1/updates/apply": op("updates.apply"),
};

/**
 * POSTs that change nothing (a body too large for a query, checked and
 * answered): reads, never in the audit log. The console's declaration editor
 * calls the check as the operator types; an entry per keystroke would bury
 * the changes.
 */
export const READ_ONLY_POSTS: ReadonlySet<string> = new Set(["POST /v1/declarations/validate"]);

/** The rule of a route (method and Fastify template); undefined for one nobody declared. */
export function routeRule(method: string, url: string | undefined): RouteRule | undefined {
  if (url === undefined) return undefined;
  const key = `${method === "HEAD" ? "GET" : method} ${url}`;
  return Object.hasOwn(ROUTE_ROLES, key) ? ROUTE_ROLES[key] : undefined;
}
