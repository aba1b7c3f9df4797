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

/**
 * The other half of renewing: a certificate for a topic Orchard holds one for
 * replaces it, but one that expires before the stored one is refused unless
 * forced. Uploading last year's file again (a script, a mix-up of files)
 * would otherwise silently take back a renewal, and the topic's pushes would
 * stop when the older certificate expires. Returns the reason, or undefined.
 */
export async function olderCertRefusal(store: PushStore, topic: string, notAfter: number): Promise<string | undefined> {
  const stored = await store.cert(topic);
  if (!stored || notAfter >= stored.notAfter) return undefined;
  const iso = (ms: number) => new Date(ms).toISOString();
  return (
    `this certificate for ${topic} expires on ${iso(notAfter)}, before the stored one (${iso(stored.notAfter)}): ` +
    "replacing it would end the topic's pushes sooner (an older file uploaded again?). " +
    "Upload the newer certificate, or, to go back to this one all the same, upload again with ?force=1 (orchard pushcert upload --force)"
  );
}
