import type { PushStore } from "../store/push.ts";

/**
 * The renewal rule. Devices enrolled under a topic can be pushed only with a
 * certificate for that topic: Apple's "Renew" in the Push Certificates Portal
 * keeps the topic, "Create" makes a new one. So a certificate for the same
 * topic replaces the stored one (a renewal), and one for a topic Orchard has
 * no certificate for is refused while devices are enrolled under another
 * topic, unless forced: an operator who meant to renew would otherwise orphan
 * every enrolled device when the old certificate expires or is removed.
 * Returns the reason to refuse, or undefined.
 */
export async function newTopicRefusal(store: PushStore, topic: string): Promise<string | undefined> {
  if (await store.certVersion(topic)) return undefined;
  // Only topics Orchard holds a certificate for: devices under a topic it has none for (the simulator's
  // made-up one, or a certificate removed) cannot be pushed today, and this upload takes nothing from them.
  const others = [];
  for (const o of await store.enrolledOnOtherTopics(topic)) if (await store.certVersion(o.topic)) others.push(o);
  if (others.length === 0) return undefined;
  const where = others.map((o) => `${o.devices} under ${o.topic}`).join(", ");
  return (
    `this certificate's topic ${topic} is new, but devices are enrolled under another topic (${where}): ` +
    "they can only be pushed with a certificate for their own topic, so replacing it with this one would orphan them. " +
    "To renew, use Renew (not Create) on the existing certificate at https://identity.apple.com/pushcert with the Apple ID that made it; " +
    "to add this topic beside the other, upload again with ?force=1 (orchard pushcert upload --force)"
  );
}
