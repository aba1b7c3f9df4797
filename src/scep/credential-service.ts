// SCEP for DDM credentials (docs/declarative-management.md "Credentials from
// Orchard's CA"): PKCSReq only, answered from the credential CA, paid for by a
// challenge that Orchard handed one device in its credential JSON. The
// challenge says what it buys (the subject, names and key the template
// rendered for that device): the request must ask for that subject and key
// size, and the certificate carries exactly what was rendered. A challenge
// handed to another device (whose CSR names that device), an unknown, spent
// or expired one, or a device-CA challenge (another table) is refused, and
// the credential CA never issues a device identity: identity/ refuses its
// certificates.
import { createHash, randomBytes, X509Certificate } from "node:crypto";
import { keyUsageBits, nameText, sameName, subjectDer } from "../enroll/credential-ca.ts";
import type { DeviceCa } from "../enroll/device-ca.ts";
import {
  buildCertsOnly,
  buildEnvelopedData,
  decryptEnvelope,
  findSignerCertificate,
  parseEnvelopedData,
  verifySigner,
} from "../identity/cms.ts";
import { parseCsr, type Csr } from "../identity/csr.ts";
import { certFingerprint } from "../identity/fingerprint.ts";
import type { CredentialChallenge, CredentialRequest } from "../store/ddm-credentials.ts";
import type { Store } from "../store/index.ts";
import { decodePkiMessage, encodeCertRep, MessageType, messageTypeName, PkiStatus, type PkiMessage } from "./message.ts";
import { asFailure, ScepFailure, type ScepLog } from "./service.ts";

export interface CredentialScepOptions {
  store: Store;
  /** The credential CA (enroll/credential-ca.ts); never the device CA. */
  ca: DeviceCa;
}

/** The stored hash of a credential challenge: SHA-256, hex (as the device CA's). */
export function credentialChallengeHash(challenge: string): string {
  return createHash("sha256").update(challenge, "utf8").digest("hex");
}

/**
 * A fresh challenge for one device and one credential, usable once within
 * ttlMs, stored as its hash with what it may buy. The challenge itself goes
 * into that device's credential JSON only: never a log line or an event.
 */
export async function createCredentialChallenge(
  store: Store,
  binding: { deviceId: string; credential: string; request: CredentialRequest },
  ttlMs: number,
  now = Date.now(),
): Promise<string> {
  const challenge = randomBytes(20).toString("hex");
  await store.ddmCredentials.createChallenge(
    credentialChallengeHash(challenge),
    { deviceId: binding.deviceId, credential: binding.credential, request: JSON.stringify(binding.request) },
    now,
    now + ttlMs,
  );
  return challenge;
}

export class CredentialScepService {
  constructor(private readonly o: CredentialScepOptions) {}

  /** Answers a PKIOperation with a CertRep, as ScepService.pkiOperation does (same throttling contract). */
  async pkiOperation(body: Buffer, log: ScepLog, onRefused?: () => void, throttled = false): Promise<Buffer> {
    const msg = decodePkiMessage(body);
    const ca = { cert: this.o.ca.cert, key: this.o.ca.key };
    const digest = msg.digest ?? "sha256";
    const reply = { transactionId: msg.transactionId, recipientNonce: msg.senderNonce, digest, ca };
    let bound: CredentialChallenge | undefined;
    try {
      const signer = this.signerOf(msg);
      const { content, cipher } = decryptEnvelope(parseEnvelopedData(msg.signedData.eContent!), this.o.ca.cert, this.o.ca.key);
      const csr = parseCsr(content);
      const found = await this.issueFor(msg, csr, (c) => (bound = c));
      const envelope = buildEnvelopedData(buildCertsOnly([found.cert.raw]), signer, cipher);
      log.info(
        {
          scep: "PKCSReq",
          credential: bound?.credential,
          enrollmentId: bound?.deviceId,
          transactionId: msg.transactionId,
          subject: found.cert.subject,
          serial: found.cert.serialNumber,
          resent: found.resent,
        },
        found.resent ? "credential certificate sent again" : "credential certificate issued",
      );
      return encodeCertRep({ ...reply, status: PkiStatus.SUCCESS, envelope });
    } catch (err) {
      const failure = asFailure(err);
      if (!failure) throw err;
      if (throttled) throw failure;
      const detail = { reason: failure.message, transaction_id: msg.transactionId.slice(0, 64), credential: bound?.credential ?? null };
      await this.o.store.events.add({ type: "ddm.credential.refused", enrollmentId: bound?.deviceId, detail }, Date.now());
      log.info(
        {
          scep: messageTypeName(msg.messageType),
          credential: bound?.credential,
          transactionId: msg.transactionId,
          failInfo: failure.failInfo,
          reason: failure.message,
          ...failure.detail,
        },
        "credential SCEP request refused",
      );
      onRefused?.();
      return encodeCertRep({ ...reply, status: PkiStatus.FAILURE, failInfo: failure.failInfo });
    }
  }

  private signerOf(msg: PkiMessage): X509Certificate {
    if (msg.messageType !== MessageType.PKCSReq) {
      throw new ScepFailure("badRequest", `unsupported message type ${messageTypeName(msg.messageType)}: credentials take PKCSReq only`);
    }
    if (msg.signedData.eContent === undefined) throw new ScepFailure("badRequest", "the request carries no pkcsPKIEnvelope");
    const signerInfo = findSignerCertificate(msg.signedData, msg.signer);
    if (!signerInfo) throw new ScepFailure("badMessageCheck", "the signer's certificate is not in the message");
    verifySigner(msg.signer, signerInfo.key, msg.signedData.eContent);
    return signerInfo.cert;
  }

  private async issueFor(
    msg: PkiMessage,
    csr: Csr,
    onBound: (c: CredentialChallenge) => void,
  ): Promise<{ cert: X509Certificate; resent: boolean }> {
    if (csr.challengePassword === undefined || csr.challengePassword === "") {
      throw new ScepFailure("badRequest", "the CSR has no challenge password", { challengeState: "missing" });
    }
    const hash = credentialChallengeHash(csr.challengePassword);
    const now = Date.now();
    const challenge = await this.o.store.ddmCredentials.challenge(hash, now);
    if (challenge) onBound(challenge);
    if (challenge?.state !== "valid") {
      const again = await this.resent(msg, csr);
      if (again) return { cert: again, resent: true };
      const state = challenge?.state ?? "unknown";
      const reason =
        state === "used"
          ? "challenge password already used"
          : state === "expired"
            ? "challenge password expired"
            : "unknown challenge password";
      throw new ScepFailure("badRequest", reason, { challengeState: state });
    }
    const wanted = JSON.parse(challenge.request) as CredentialRequest;
    const expected = subjectDer(wanted.subject);
    // The CSR names the device that sends it: one that asks for another subject holds a challenge handed to another device.
    if (!sameName(csr.subjectDer, expected)) {
      throw new ScepFailure(
        "badRequest",
        "the CSR's subject is not the one this challenge was issued for (a challenge handed to another device?)",
        {
          requested: nameText(csr.subjectDer),
        },
      );
    }
    const bits = csr.publicKey.asymmetricKeyDetails?.modulusLength;
    if (bits !== wanted.keySize)
      throw new ScepFailure("badRequest", `the credential wants an RSA key of ${wanted.keySize} bits, not ${bits}`);
    let cert: X509Certificate;
    try {
      cert = await this.o.ca.issue({
        subjectDer: expected,
        publicKeyDer: csr.publicKeyDer,
        days: wanted.days,
        profile: {
          keyUsage: keyUsageBits(wanted.keyUsage),
          extendedKeyUsages: wanted.extendedKeyUsages,
          subjectAltNames: wanted.subjectAltNames,
        },
      });
    } catch (err) {
      throw new ScepFailure("badRequest", `cannot issue a certificate for this request: ${(err as Error).message}`);
    }
    const detail = {
      credential: challenge.credential,
      subject: cert.subject,
      serial: cert.serialNumber.toLowerCase(),
      fingerprint: certFingerprint(cert),
      not_after: new Date(cert.validTo).toISOString(),
    };
    const recorded = await this.o.store.transaction(async (tx) => {
      if (!(await tx.ddmCredentials.consumeChallenge(hash, now))) return false;
      const rec = {
        serialNumber: detail.serial,
        fingerprint: detail.fingerprint,
        deviceId: challenge.deviceId,
        credential: challenge.credential,
        subject: cert.subject,
        issuedAt: now,
        notAfter: Date.parse(cert.validTo),
        transactionId: msg.transactionId,
        certDer: Buffer.from(cert.raw),
      };
      if (!(await tx.ddmCredentials.recordCertificate(rec)))
        throw new ScepFailure("badRequest", "the certificate could not be recorded; send the request again");
      await tx.events.add({ type: "ddm.credential.issued", enrollmentId: challenge.deviceId, detail }, now);
      return true;
    });
    if (recorded) return { cert, resent: false };
    const again = await this.resent(msg, csr);
    if (again) return { cert: again, resent: true };
    throw new ScepFailure("badRequest", "challenge password already used", { challengeState: "used" });
  }

  /** The certificate already issued for this transaction and key (a client that got no answer asks again). */
  private async resent(msg: PkiMessage, csr: Csr): Promise<X509Certificate | undefined> {
    for (const rec of await this.o.store.ddmCredentials.certificatesByTransaction(msg.transactionId)) {
      const cert = new X509Certificate(rec.certDer);
      if (cert.publicKey.export({ type: "spki", format: "der" }).equals(csr.publicKeyDer)) return cert;
    }
    return undefined;
  }
}
