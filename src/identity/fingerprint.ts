import { createHash, type X509Certificate } from "node:crypto";

// The enrollment binding (protocol doc 2.5) keys on SHA-256 of the DER. Memoized per
// certificate object because header and trust caches hand out the same instances.
const memo = new WeakMap<X509Certificate, string>();

export function certFingerprint(cert: X509Certificate): string {
  let fp = memo.get(cert);
  if (fp === undefined) {
    fp = createHash("sha256").update(cert.raw).digest("hex");
    memo.set(cert, fp);
  }
  return fp;
}
