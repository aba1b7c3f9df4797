import type { IncomingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";
import {
  certFingerprint,
  certFromHeader,
  IdentityError,
  mdmSignatureSigner,
  verifyMdmSignatureDetailed,
  type DeviceTrust,
} from "../identity/index.ts";
import type { TrustedProxy } from "./trusted-proxy.ts";

/** A verified device identity: the certificate's SHA-256 fingerprint. */
export interface DeviceIdentity {
  fingerprint: string;
  source: "tls" | "header" | "signature";
}

/**
 * What the headers alone tell: a verified identity (TLS certificate or the
 * proxy's header), or an Mdm-Signature still to be checked over the body,
 * whose named signer (`signer`, its fingerprint) trust has already accepted.
 */
export type HeaderIdentity = { identity: DeviceIdentity } | { signature: string; signer: string };

const tlsPeerCerts = new WeakMap<object, X509Certificate | null>();

/**
 * Finds who is calling before any of the body is read, in the order:
 * the TLS peer certificate, the proxy's certificate header (believed only from
 * a trusted proxy), then the Mdm-Signature, verified later over the body.
 * Certificates are checked against trust here, so that a caller without a
 * trusted identity never makes the server hold its body. For an Mdm-Signature
 * that is the signer certificate the header's CMS SignedData carries: a header
 * that does not parse, or names a signer trust refuses, is refused here.
 */
export function identifyFromHeaders(
  headers: IncomingHttpHeaders,
  socket: Socket,
  trust: DeviceTrust,
  certHeader: string | undefined,
  fromTrustedProxy: TrustedProxy,
): HeaderIdentity {
  const peer = tlsPeerCert(socket);
  if (peer) {
    trust.verify(peer);
    return { identity: { fingerprint: certFingerprint(peer), source: "tls" } };
  }
  if (certHeader) {
    const value = headers[certHeader];
    if (value !== undefined) {
      // Anyone who bypasses the proxy could present a device's public certificate here.
      if (!fromTrustedProxy(socket.remoteAddress)) {
        throw new IdentityError("untrusted-proxy", "certificate header from a peer that is not a trusted proxy (--trust-proxy)");
      }
      if (typeof value === "string" && value.length > 0) {
        const cert = certFromHeader(value);
        trust.verify(cert);
        return { identity: { fingerprint: certFingerprint(cert), source: "header" } };
      }
    }
  }
  const signature = headers["mdm-signature"];
  if (typeof signature === "string" && signature.length > 0) {
    const { signer, certificates } = mdmSignatureSigner(signature);
    trust.verify(signer, certificates);
    return { signature, signer: certFingerprint(signer) };
  }
  throw new IdentityError("no-identity", "no client certificate and no Mdm-Signature header");
}

/**
 * Checks an Mdm-Signature over the exact body bytes. Its signer must be the
 * one the headers named (`expected`, a fingerprint), which identifyFromHeaders
 * has already checked against trust: that is not done twice.
 */
export async function identifyBySignature(signature: string, body: Buffer, expected: string): Promise<DeviceIdentity> {
  const { signer } = await verifyMdmSignatureDetailed(signature, body);
  const fingerprint = certFingerprint(signer);
  if (fingerprint !== expected) {
    throw new IdentityError("bad-signature", "Mdm-Signature verified with another certificate than the one it names");
  }
  return { fingerprint, source: "signature" };
}

function tlsPeerCert(plain: Socket): X509Certificate | null {
  const socket = plain as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== "function") return null;
  // One TLS connection carries many requests: parse its certificate once.
  let cert = tlsPeerCerts.get(socket);
  if (cert === undefined) {
    const peer = socket.getPeerCertificate(false);
    cert = peer?.raw ? new X509Certificate(peer.raw) : null;
    tlsPeerCerts.set(socket, cert);
  }
  return cert;
}
