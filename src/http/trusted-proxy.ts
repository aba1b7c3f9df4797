import proxyAddr from "@fastify/proxy-addr";

/** Whether a peer address is a proxy whose forwarded headers may be believed. */
export type TrustedProxy = (address: string | undefined) => boolean;

/**
 * One rule for "is this peer a trusted proxy", built from --trust-proxy (the
 * value Fastify's trustProxy takes): `true` trusts every peer, a list of
 * addresses and CIDR ranges trusts those (compiled by proxy-addr, as Fastify
 * does, IPv4-mapped IPv6 addresses included). `whenUnset` says what no
 * --trust-proxy means for the caller: "none" for X-Forwarded-* (ignored), or
 * "loopback" for the device certificate header (a proxy on the same host, the
 * common setup, works without the flag; nothing from the network is believed).
 */
export function trustedProxy(trustProxy: boolean | string[] | undefined, whenUnset: "none" | "loopback"): TrustedProxy {
  if (trustProxy === true) return () => true;
  const list = Array.isArray(trustProxy) && trustProxy.length > 0 ? trustProxy : whenUnset === "loopback" ? ["loopback"] : [];
  if (list.length === 0) return () => false;
  const trusts = proxyAddr.compile(list);
  // proxy-addr parses the address on every call (~0.8 us, a tenth of an Idle
  // poll's CPU); peers are few and repeat, so each answer is kept.
  const known = new Map<string, boolean>();
  return (address) => {
    if (address === undefined) return false;
    let trusted = known.get(address);
    if (trusted === undefined) {
      trusted = trusts(address, 0);
      if (known.size >= MAX_KNOWN_PEERS) known.clear();
      known.set(address, trusted);
    }
    return trusted;
  };
}

const MAX_KNOWN_PEERS = 10_000;
