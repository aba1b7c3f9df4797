import { createHash } from "node:crypto";
import type { Declaration } from "../core/ddm-admin.ts";
import { SETTINGS_TYPE } from "./policy.ts";
import type { Target } from "./targets.ts";

// The DDM declarations and built-in sets Orchard makes for update policies.
// Each policy has a set every device of it holds: a status subscription (so
// devices report their update state and OS version without being asked),
// the policy's softwareupdate.settings when it has some, and an activation.
// Each distinct target of a policy has a set of its own: one
// softwareupdate.enforcement.specific and its activation. Devices move
// between target sets, so 100,000 devices share a handful of declarations.
// Names start with orchard.su: they are Orchard's; an operator edits the
// policy, never these.

export const SET_PREFIX = "orchard.su/";
const ID_PREFIX = "orchard.su.";

/** The status items the policy set subscribes to: what compliance and the targets read. */
export const SUBSCRIBED_STATUS_ITEMS = [
  "device.model.identifier",
  // Apple's feed lists Macs by this id, not by model identifier (updates/targets.ts).
  "softwareupdate.device-id",
  "device.operating-system.version",
  "device.operating-system.build-version",
  "softwareupdate.install-state",
  "softwareupdate.pending-version",
  "softwareupdate.failure-reason",
  "softwareupdate.install-reason",
];

export function policySetName(policy: string): string {
  return `${SET_PREFIX}${policy}`;
}

/** The set of one target of a policy: readable version, and a hash of the whole target. */
export function targetSetName(policy: string, t: Target, detailsUrl: string | null): string {
  return `${SET_PREFIX}${policy}/${t.osVersion}-${targetHash(t, detailsUrl)}`;
}

/** The policy's own declarations: status subscription, settings (when given), an activation naming them. */
export function policyDeclarations(policy: string, settings: string | null): Declaration[] {
  const base = `${ID_PREFIX}${policy}`;
  const subscription: Declaration = {
    Type: "com.apple.configuration.management.status-subscriptions",
    Identifier: `${base}.status`,
    Payload: { StatusItems: SUBSCRIBED_STATUS_ITEMS.map((Name) => ({ Name })) },
  };
  const configs = [subscription];
  if (settings !== null)
    configs.push({ Type: SETTINGS_TYPE, Identifier: `${base}.settings`, Payload: JSON.parse(settings) as Record<string, unknown> });
  return [
    ...configs,
    {
      Type: "com.apple.activation.simple",
      Identifier: `${base}.activation`,
      Payload: { StandardConfigurations: configs.map((c) => c.Identifier) },
    },
  ];
}

/** One target's enforcement declaration and its activation. */
export function targetDeclarations(policy: string, t: Target, detailsUrl: string | null): Declaration[] {
  const id = `${ID_PREFIX}${policy}.${targetHash(t, detailsUrl)}`;
  const payload: Record<string, unknown> = { TargetOSVersion: t.osVersion, TargetLocalDateTime: t.localDateTime };
  if (t.buildVersion) payload.TargetBuildVersion = t.buildVersion;
  if (detailsUrl) payload.DetailsURL = detailsUrl;
  return [
    { Type: "com.apple.configuration.softwareupdate.enforcement.specific", Identifier: id, Payload: payload },
    { Type: "com.apple.activation.simple", Identifier: `${id}.a`, Payload: { StandardConfigurations: [id] } },
  ];
}

function targetHash(t: Target, detailsUrl: string | null): string {
  return createHash("sha256")
    .update(JSON.stringify([t.osVersion, t.buildVersion, t.localDateTime, detailsUrl]))
    .digest("hex")
    .slice(0, 10);
}
