import type { Platform } from "../protocol/platform.ts";
import { ASSIGN_CHUNK } from "../store/ddm.ts";
import type { Store } from "../store/index.ts";
import type { InventorySubscription } from "../store/inventory.ts";
import type { DdmAdmin } from "./ddm-admin.ts";
import { INVENTORY_STATUS_ITEMS } from "./inventory.ts";

// The inventory fills itself from DDM status reports once devices subscribe
// to the status items it reads. Orchard makes that subscription a built-in
// set per platform (its items are the ones Apple's schema says the platform
// reports) of two declarations: the status-subscriptions configuration and
// the activation that turns it on. An operator subscribes a platform: the
// set goes to every device channel of it enrolled now (bulk assignment) and
// to each that enrolls later (store.inventory.assignOnEnrollment, at its
// first TokenUpdate). Unsubscribing takes the set from every channel holding
// it; the devices drop the subscription and stop reporting, and the
// inventory keeps what it learned.

/** The built-in names: the set and its declarations of a platform. */
export function subscriptionNames(platform: Platform): { set: string; configuration: string; activation: string } {
  return {
    set: `orchard.inventory.${platform}`,
    configuration: `com.orchard.inventory.${platform}.status-subscriptions`,
    activation: `com.orchard.inventory.${platform}.activation`,
  };
}

/** Items Apple's schema (declarative/status/*.yaml, supportedOS) marks n/a on a platform; iPadOS is iOS there. */
const NOT_ON: Readonly<Record<Platform, (item: string) => boolean>> = {
  macOS: (i) => i.startsWith("passcode."),
  iOS: (i) => i.startsWith("diskmanagement."),
  iPadOS: (i) => i.startsWith("diskmanagement."),
  tvOS: (i) => i.startsWith("passcode.") || i.startsWith("diskmanagement.") || i.startsWith("softwareupdate."),
  visionOS: (i) => i.startsWith("diskmanagement.") || i.startsWith("softwareupdate."),
  watchOS: (i) => i.startsWith("diskmanagement.") || i.startsWith("softwareupdate."),
};

/** The status items a platform's subscription asks for. */
export function subscribedItems(platform: Platform): string[] {
  return INVENTORY_STATUS_ITEMS.filter((i) => !NOT_ON[platform](i));
}

export interface SubscriptionOutcome {
  platform: Platform;
  set: string;
  /** False when the platform was subscribed already (or, unsubscribing, was not). */
  changed: boolean;
  /** Device channels reached now, and how many of them had their sets changed (each syncs once). */
  enrollments: number;
  assigned: number;
}

export class InventorySubscriptions {
  constructor(
    private readonly store: Store,
    private readonly admin: DdmAdmin,
  ) {}

  list(): Promise<InventorySubscription[]> {
    return this.store.inventory.subscriptions();
  }

  /**
   * Puts the platform's declarations and set (unchanged when they are already
   * there), records the subscription, then assigns the set to the platform's
   * enrolled device channels. Again for a subscribed platform: the channels
   * missing the set get it, nothing else changes.
   */
  async subscribe(platform: Platform, now: number): Promise<SubscriptionOutcome> {
    const n = subscriptionNames(platform);
    await this.admin.putDeclaration(
      {
        Type: "com.apple.configuration.management.status-subscriptions",
        Identifier: n.configuration,
        Payload: { StatusItems: subscribedItems(platform).map((Name) => ({ Name })) },
      },
      true,
      now,
    );
    await this.admin.putDeclaration(
      { Type: "com.apple.activation.simple", Identifier: n.activation, Payload: { StandardConfigurations: [n.configuration] } },
      true,
      now,
    );
    await this.admin.setDeclaration(n.set, n.configuration, true, true, now);
    await this.admin.setDeclaration(n.set, n.activation, true, true, now);
    // Recorded before the bulk assignment: a device enrolling meanwhile gets the set at its TokenUpdate, or from the assignment.
    const changed = await this.store.inventory.subscribe(platform, n.set, now);
    const r = await this.admin.assignMany(n.set, { platform }, true, true, now);
    return { platform, set: n.set, changed, enrollments: r.enrollments, assigned: r.changed };
  }

  /** Ends the platform's subscription and takes its set from every channel that holds it. */
  async unsubscribe(platform: Platform, now: number): Promise<SubscriptionOutcome> {
    const n = subscriptionNames(platform);
    const changed = await this.store.inventory.unsubscribe(platform);
    let enrollments = 0;
    let assigned = 0;
    let after = "";
    for (;;) {
      const holders = await this.store.ddm.setHolders(n.set, after, ASSIGN_CHUNK);
      if (holders.length === 0) break;
      enrollments += holders.length;
      assigned += (await this.admin.assignMany(n.set, { ids: holders }, false, true, now)).changed;
      after = holders[holders.length - 1]!;
    }
    return { platform, set: n.set, changed, enrollments, assigned };
  }
}
