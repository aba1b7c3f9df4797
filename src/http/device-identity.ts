import type { IncomingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";
import { certFingerprint, certFromHeader, IdentityError, verifyMdmSignatureDetailed, type DeviceTrust } from "../identity/index.ts";

/** A verified device identity: the certificate's SHA-256 fingerprint. */
export interface DeviceIdentity {
  fingerprint: string;
  source: "tls" | "header" | "signature";
}

const tlsPeerCerts = new WeakMap<object, X509Certificate | null>();

/**
 * Finds who is calling, in the order: the TLS peer certificate, the
 * proxy's certificate header, then the Mdm-Signature over the raw body; and
 * checks the certificate against the configured CAs.
 */
export async function identifyDevice(
  headers: IncomingHttpHeaders,
  socket: Socket,
  body: Buffer,
  trust: DeviceTrust,
  certHeader: string | undefined,
): Promise<DeviceIdentity> {
  const peer = tlsPeerCert(socket);
  if (peer) {
    trust.verify(peer);
    return { fingerprint: certFingerprint(peer), source: "tls" };
  }
  if (certHeader) {
    const value = headers[certHeader];
    if (typeof value === "string" && value.length > 0) {
      const cert = certFromHeader(value);
      trust.verify(cert);
      return { fingerprint: certFingerprint(cert), source: "header" };
    }
  }
  const signature = headers["mdm-signature"];
  if (typeof signature === "string" && signature.length > 0) {
    // Intermediates may travel in the signature's certificate set.
    const { signer, certificates } = await verifyMdmSignatureDetailed(signature, body);
    trust.verify(signer, certificates);
    return { fingerprint: certFingerprint(signer), source: "signature" };
  }
  throw new IdentityError("no-identity", "no client certificate and no Mdm-Signature header");
}

function tlsPeerCert(plain: Socket): X509Certificate | null {
  const socket = plain as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== "function") return null;
  // One TLS connection carries many requests: parse its certificate once.
  let cert = tlsPeerCerts.get(socket);
  if (cert === undefined) {
    const peer = socket.getPeerCertificate(false);
    cert = peer && peer.raw ? new X509Certificate(peer.raw) : null;
    tlsPeerCerts.set(socket, cert);
  }
  return cert;
}
