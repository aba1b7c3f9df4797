import { X509Certificate, type KeyObject } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { BoundedCache } from "./cache.ts";
import { IdentityError } from "./errors.ts";
import { certFingerprint } from "./fingerprint.ts";
import { costlyKeyProblem } from "./key-cost.ts";

const OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const OID_ANY_EKU = "2.5.29.37.0";
const MAX_CHAIN_LENGTH = 8; // certificates from leaf to anchor, inclusive
const MAX_EXTRA_INTERMEDIATES = 16; // caller-supplied (attacker-controlled) helpers used
const CACHE_TTL_MS = 5 * 60 * 1000;
const CACHE_MAX_ENTRIES = 10_000;
const PEM_CERT = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/g;

// What the chain checks need, read once per certificate.
interface CertInfo {
  cert: X509Certificate;
  fingerprint: string;
  notBefore: number;
  notAfter: number;
  isCa: boolean;
  pathLength: number | undefined;
  extendedKeyUsages: string[] | undefined;
  publicKey?: KeyObject; // filled in when the certificate is first tried as an issuer
}

// node's X509Certificate covers validity, the CA flag and EKU (its `keyUsage` is the
// EKU list); @peculiar/x509 (slower) is only needed for a CA's pathLength.
function describe(cert: X509Certificate): CertInfo {
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  if (Number.isNaN(notBefore) || Number.isNaN(notAfter)) {
    throw new IdentityError("bad-certificate", "certificate validity cannot be read");
  }
  return {
    cert,
    fingerprint: certFingerprint(cert),
    notBefore,
    notAfter,
    isCa: cert.ca,
    pathLength: cert.ca ? pathLength(cert) : undefined,
    extendedKeyUsages: cert.keyUsage,
  };
}

function pathLength(cert: X509Certificate): number | undefined {
  try {
    return new x509.X509Certificate(new Uint8Array(cert.raw)).getExtension(x509.BasicConstraintsExtension)?.pathLength;
  } catch {
    throw new IdentityError("bad-certificate", "certificate cannot be parsed");
  }
}

// Name/key-id/keyUsage match (OpenSSL's X509_check_issued), then the signature itself.
function issuedBy(child: CertInfo, parent: CertInfo): boolean {
  try {
    if (!child.cert.checkIssued(parent.cert)) return false;
    parent.publicKey ??= parent.cert.publicKey;
    // A carried intermediate's key is the sender's to choose: one too costly to verify with issues nothing.
    if (costlyKeyProblem(parent.publicKey)) return false;
    return child.cert.verify(parent.publicKey);
  } catch {
    return false; // e.g. a key type OpenSSL cannot load: not a usable issuer
  }
}

function withinValidity(info: CertInfo, now: number): boolean {
  return now >= info.notBefore && now <= info.notAfter;
}

interface ChainSearch {
  issuerOutOfValidity: boolean;
  expanded: Set<string>;
}

// Cached outcome of a successful verification: usable while `now` is inside the window.
interface TrustedWindow {
  validFrom: number;
}

/**
 * Decides whether a device identity certificate was issued by one of our CAs.
 * Chain building is done by hand (node's X509Certificate has no chain verifier):
 * each link is checked with checkIssued + verify(publicKey). Successes are cached
 * per leaf fingerprint, because this runs on every device request.
 */
export class DeviceTrust {
  readonly #anchors = new Map<string, CertInfo>(); // fingerprint -> CA-file certificate
  readonly #refused: CertInfo[] = []; // CAs whose certificates are never device identities
  readonly #cache = new BoundedCache<TrustedWindow>(CACHE_MAX_ENTRIES);
  #open = false;

  /** Each PEM string may hold several certificates (roots and intermediates); all are trusted. */
  constructor(caPems: string[]) {
    for (const pem of caPems) {
      const blocks = pem.match(PEM_CERT);
      if (!blocks) throw new Error("CA file contains no PEM certificate");
      for (const block of blocks) {
        let info: CertInfo;
        try {
          info = describe(new X509Certificate(block));
        } catch {
          throw new Error("CA file holds an unreadable certificate");
        }
        this.#anchors.set(info.fingerprint, info);
      }
    }
  }

  /** No CA configured: any certificate within its validity period is accepted. */
  static any(): DeviceTrust {
    const trust = new DeviceTrust([]);
    trust.#open = true;
    return trust;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /**
   * Never accepts a certificate this CA issued, whatever else is trusted
   * (--ca, --insecure-accept-any-device-cert): Orchard's credential CA, whose
   * certificates are a device's Wi-Fi or VPN identity, never its MDM identity.
   */
  refuseIssuer(caPem: string): void {
    this.#refused.push(describe(new X509Certificate(caPem)));
    this.#cache.clear();
  }

  /**
   * Throws IdentityError ('expired', 'bad-certificate', 'untrusted') unless `cert`
   * chains to a CA-file certificate. `extraIntermediates` are untrusted helpers,
   * e.g. the other certificates of an Mdm-Signature.
   */
  verify(cert: X509Certificate, extraIntermediates: X509Certificate[] = [], now: Date = new Date()): void {
    const t = now.getTime();
    const fingerprint = certFingerprint(cert);
    const hit = this.#cache.get(fingerprint, t);
    if (hit !== undefined && t >= hit.validFrom) return;

    const leaf = describe(cert);
    for (const ca of this.#refused) {
      if (ca.fingerprint === fingerprint || issuedBy(leaf, ca)) {
        throw new IdentityError("untrusted", "certificate was issued by Orchard's credential CA: a credential is never a device identity");
      }
    }
    if (!withinValidity(leaf, t)) throw new IdentityError("expired", "certificate is expired or not yet valid");
    if (this.#open) {
      this.#remember(fingerprint, [leaf], t);
      return;
    }
    if (leaf.isCa) throw new IdentityError("bad-certificate", "certificate is a CA certificate");
    const ekus = leaf.extendedKeyUsages;
    if (ekus && !ekus.includes(OID_CLIENT_AUTH) && !ekus.includes(OID_ANY_EKU)) {
      throw new IdentityError("bad-certificate", "certificate is not for client authentication");
    }
    // A certificate placed in the CA file itself is pinned.
    if (this.#anchors.has(fingerprint)) {
      this.#remember(fingerprint, [leaf], t);
      return;
    }

    const pool = [...this.#anchors.values()];
    for (const extra of extraIntermediates.slice(0, MAX_EXTRA_INTERMEDIATES)) {
      const fp = certFingerprint(extra);
      if (this.#anchors.has(fp) || pool.some((p) => p.fingerprint === fp)) continue;
      try {
        pool.push(describe(extra));
      } catch {
        // An unreadable helper certificate just cannot serve as an issuer.
      }
    }
    const search: ChainSearch = { issuerOutOfValidity: false, expanded: new Set() };
    const chain = this.#buildChain([leaf], pool, t, search);
    if (chain) {
      this.#remember(fingerprint, chain, t);
      return;
    }
    if (search.issuerOutOfValidity) throw new IdentityError("expired", "issuing CA certificate is expired or not yet valid");
    throw new IdentityError("untrusted", "certificate is not issued by a trusted CA");
  }

  // Depth-first search upward; returns the chain ending at an anchor, or undefined.
  // Each certificate is expanded once, so crafted cross-signed meshes cannot blow up the search.
  #buildChain(chain: CertInfo[], pool: CertInfo[], now: number, search: ChainSearch): CertInfo[] | undefined {
    if (chain.length >= MAX_CHAIN_LENGTH) return undefined;
    const child = chain[chain.length - 1]!;
    if (search.expanded.has(child.fingerprint)) return undefined;
    search.expanded.add(child.fingerprint);
    const intermediatesBelow = chain.length - 1; // CA certs between the leaf and the candidate issuer
    for (const parent of pool) {
      if (chain.some((c) => c.fingerprint === parent.fingerprint)) continue;
      // Only CA certificates may issue; a device cert must never sign another leaf.
      if (!parent.isCa) continue;
      if (parent.pathLength !== undefined && intermediatesBelow > parent.pathLength) continue;
      if (!issuedBy(child, parent)) continue;
      if (!withinValidity(parent, now)) {
        search.issuerOutOfValidity = true;
        continue;
      }
      const next = [...chain, parent];
      if (this.#anchors.has(parent.fingerprint)) return next;
      const found = this.#buildChain(next, pool, now, search);
      if (found) return found;
    }
    return undefined;
  }

  // Trust holds until the cache TTL or the first certificate in the chain expires.
  #remember(fingerprint: string, chain: CertInfo[], now: number): void {
    const notAfter = Math.min(...chain.map((c) => c.notAfter));
    const validFrom = Math.max(...chain.map((c) => c.notBefore));
    this.#cache.set(fingerprint, { validFrom }, Math.min(now + CACHE_TTL_MS, notAfter + 1));
  }
}
