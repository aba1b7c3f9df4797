// The SCEP CA (RFC 8894) over the device CA: PKCSReq with a challenge password,
// RenewalReq signed by a current device certificate. Every request that is a
// SCEP message at all gets a signed CertRep; only undecodable input is an HTTP
// 400 (ScepMalformed), and nothing a client sends ends in a 500.
import { X509Certificate } from "node:crypto";
import type { Logger } from "pino";
import type { DeviceCa } from "../enroll/device-ca.ts";
import { certFingerprint } from "../identity/fingerprint.ts";
import type { EventDetail } from "../store/event-types.ts";
import type { Store } from "../store/index.ts";
import { challengeHash } from "./challenges.ts";
import {
  buildCertsOnly,
  buildEnvelopedData,
  certSubjectDer,
  CmsError,
  decryptEnvelope,
  findSignerCertificate,
  parseEnvelopedData,
  verifySigner,
  type CipherName,
} from "../identity/cms.ts";
import { CsrError, parseCsr, type Csr } from "../identity/csr.ts";
import { decodePkiMessage, encodeCertRep, MessageType, messageTypeName, PkiStatus, type FailInfoName, type PkiMessage } from "./message.ts";

export type ScepLog = Pick<Logger, "info" | "warn">;

/** What this server does (RFC 8894 3.5.2): nothing is advertised that is not implemented. */
export const SCEP_CAPABILITIES = ["AES", "DES3", "POSTPKIOperation", "Renewal", "SCEPStandard", "SHA-1", "SHA-256", "SHA-512"] as const;

/** A request SCEP refuses with a CertRep FAILURE; the message goes to the log only. */
export class ScepFailure extends Error {
  constructor(
    readonly failInfo: FailInfoName,
    message: string,
    /** Logged with the refusal (never a secret). */
    readonly detail: Record<string, unknown> = {},
    /** The detail of the scep.refused event it is recorded as, if any. */
    readonly event?: EventDetail<"scep.refused">,
  ) {
    super(message);
    this.name = "ScepFailure";
  }
}

export interface ScepServiceOptions {
  store: Store;
  deviceCa: DeviceCa;
}

interface Issued {
  cert: X509Certificate;
  /** Sent again for a resent request, not newly issued. */
  resent: boolean;
}

export class ScepService {
  constructor(private readonly o: ScepServiceOptions) {}

  /**
   * Answers a PKIOperation message with a CertRep (DER). Throws ScepMalformed
   * for undecodable input; onRefused hears of a FAILURE answer. For a client
   * past its failures (`throttled`) a refusal is thrown as the ScepFailure
   * instead, unlogged and without a scep.refused event: its caller answers
   * 429, and a valid request still succeeds.
   */
  async pkiOperation(body: Buffer, log: ScepLog, onRefused?: () => void, throttled = false): Promise<Buffer> {
    const msg = decodePkiMessage(body);
    const ca = { cert: this.o.deviceCa.cert, key: this.o.deviceCa.key };
    // Answer with the digest the client signed with: it may know no other.
    const digest = msg.digest ?? "sha256";
    const reply = { transactionId: msg.transactionId, recipientNonce: msg.senderNonce, digest, ca };
    const type = messageTypeName(msg.messageType);
    try {
      const { issued, cipher, signer } = await this.handle(msg);
      const envelope = buildEnvelopedData(buildCertsOnly([issued.cert.raw]), signer, cipher);
      log.info(
        {
          scep: type,
          transactionId: msg.transactionId,
          subject: issued.cert.subject,
          serial: issued.cert.serialNumber,
          cipher,
          digest,
          resent: issued.resent,
        },
        issued.resent ? "SCEP certificate sent again" : "SCEP certificate issued",
      );
      return encodeCertRep({ ...reply, status: PkiStatus.SUCCESS, envelope });
    } catch (err) {
      const failure = asFailure(err);
      if (!failure) throw err;
      if (throttled) throw failure;
      if (failure.event) await this.o.store.events.add({ type: "scep.refused", detail: failure.event }, Date.now());
      log.info(
        { scep: type, transactionId: msg.transactionId, failInfo: failure.failInfo, reason: failure.message, ...failure.detail },
        "SCEP request refused",
      );
      onRefused?.();
      return encodeCertRep({ ...reply, status: PkiStatus.FAILURE, failInfo: failure.failInfo });
    }
  }

  private async handle(msg: PkiMessage): Promise<{ issued: Issued; cipher: CipherName; signer: X509Certificate }> {
    if (msg.messageType !== MessageType.PKCSReq && msg.messageType !== MessageType.RenewalReq) {
      throw new ScepFailure("badRequest", `unsupported message type ${messageTypeName(msg.messageType)}`);
    }
    const { signedData, signer } = msg;
    if (signedData.eContent === undefined) throw new ScepFailure("badRequest", "the request carries no pkcsPKIEnvelope");
    const signerInfo = findSignerCertificate(signedData, signer);
    if (!signerInfo) throw new ScepFailure("badMessageCheck", "the signer's certificate is not in the message");
    verifySigner(signer, signerInfo.key, signedData.eContent);
    const { content, cipher } = decryptEnvelope(parseEnvelopedData(signedData.eContent), this.o.deviceCa.cert, this.o.deviceCa.key);
    const csr = parseCsr(content);
    const now = Date.now();
    const issued =
      msg.messageType === MessageType.PKCSReq ? await this.pkcsReq(msg, csr, now) : await this.renewalReq(msg, csr, signerInfo.cert, now);
    return { issued, cipher, signer: signerInfo.cert };
  }

  /** A first certificate: the CSR's challenge password must be a valid, unused one. */
  private async pkcsReq(msg: PkiMessage, csr: Csr, now: number): Promise<Issued> {
    if (csr.challengePassword === undefined || csr.challengePassword === "") {
      throw new ScepFailure("badRequest", "the CSR has no challenge password", { challengeState: "missing" });
    }
    const hash = challengeHash(csr.challengePassword);
    // Checked first so that an anonymous request with a wrong challenge costs no signature.
    let state = await this.o.store.scep.challengeState(hash, now);
    if (state === "valid") {
      const cert = await this.issue(csr);
      const recorded = await this.o.store.transaction(async (tx) => {
        const spent = await tx.scep.consumeChallenge(hash, now);
        if (!spent) return false;
        // A challenge of the ADE enrollment URL binds the certificate to its device's serial number.
        const adeSerial = spent.adeSerial;
        if (!(await tx.scep.recordCertificate({ ...record(cert, "PKCSReq", msg.transactionId, now, null, null), adeSerial }))) {
          // A serial or key fingerprint seen before: roll back, the challenge stays unused.
          throw new ScepFailure("badRequest", "the certificate could not be recorded; send the request again");
        }
        const detail = certDetail(cert, "PKCSReq");
        await tx.events.add({ type: "scep.issued", detail: adeSerial ? { ...detail, ade_serial: adeSerial } : detail }, now);
        return true;
      });
      if (recorded) return { cert, resent: false };
      state = await this.o.store.scep.challengeState(hash, now); // spent by another request meanwhile
    }
    const again = await this.resent(msg, csr, "PKCSReq");
    if (again) return again;
    const reason =
      state === "used"
        ? "challenge password already used"
        : state === "expired"
          ? "challenge password expired"
          : "unknown challenge password";
    throw new ScepFailure("badRequest", reason, { challengeState: state }, { reason, transaction_id: msg.transactionId.slice(0, 64) });
  }

  /**
   * A renewal, signed with a current certificate of the device CA that an
   * enrolled device is bound to. The new certificate replaces it: the device
   * is rebound in the same transaction, and the old one cannot be renewed again.
   */
  private async renewalReq(msg: PkiMessage, csr: Csr, old: X509Certificate, now: number): Promise<Issued> {
    const ca = this.o.deviceCa;
    if (old.ca || !old.checkIssued(ca.cert) || !old.verify(ca.cert.publicKey)) {
      throw new ScepFailure("badRequest", "RenewalReq must be signed with a certificate of the device CA");
    }
    if (Date.parse(old.validFrom) > now || Date.parse(old.validTo) < now) {
      throw new ScepFailure("badRequest", "the certificate to renew is not currently valid");
    }
    if (!certSubjectDer(old).equals(csr.subjectDer))
      throw new ScepFailure("badRequest", "a renewal keeps the subject of the certificate it renews");
    const oldFingerprint = certFingerprint(old);
    const cert = await this.issue(csr);
    const newFingerprint = certFingerprint(cert);
    const refused = await this.o.store
      .transaction(async (tx): Promise<string | undefined> => {
        const devices = await tx.enrollments.rebindCertificate(oldFingerprint, newFingerprint);
        // Only an enrolled device's certificate renews: a removed device's (or one never enrolled with) would
        // otherwise renew for ever, each renewal a full lifetime (second review). Such a device enrolls again.
        if (devices.length === 0) {
          throw new RenewalRefused(
            "no enrolled device is bound to the certificate to renew (renewed already, or its device removed or checked out): " +
              "it enrolls again with a challenge",
          );
        }
        // The renewed certificate stays bound to the ADE serial number of the one it replaces.
        const adeSerial = (await tx.scep.certificateByFingerprint(oldFingerprint))?.adeSerial ?? null;
        const rec = { ...record(cert, "RenewalReq", msg.transactionId, now, devices[0]!, oldFingerprint), adeSerial };
        if (!(await tx.scep.recordCertificate(rec))) throw new RenewalRefused("this certificate was already renewed");
        const detail = { ...certDetail(cert, "RenewalReq"), renewed_from: oldFingerprint };
        for (const device of devices) await tx.events.add({ type: "scep.renewed", enrollmentId: device, detail }, now);
        return undefined;
      })
      .catch((err: unknown) => {
        if (err instanceof RenewalRefused) return err.message; // rolled back: the rebinding did not happen
        throw err;
      });
    if (refused === undefined) return { cert, resent: false };
    // The same request again (a lost answer) gets the certificate it was issued.
    const again = await this.resent(msg, csr, "RenewalReq");
    if (again) return again;
    throw new ScepFailure("badRequest", refused, { renewed_from: oldFingerprint });
  }

  /**
   * A client that got no answer sends the same request again (same transaction
   * id, same key): it gets the certificate it was issued, not a refusal.
   */
  private async resent(msg: PkiMessage, csr: Csr, type: "PKCSReq" | "RenewalReq"): Promise<Issued | undefined> {
    const key = csr.publicKey.export({ type: "spki", format: "der" });
    for (const rec of await this.o.store.scep.certificatesByTransaction(msg.transactionId)) {
      if (rec.requestType !== type) continue;
      const cert = new X509Certificate(rec.certDer);
      if (cert.publicKey.export({ type: "spki", format: "der" }).equals(key)) return { cert, resent: true };
    }
    return undefined;
  }

  private async issue(csr: Csr): Promise<X509Certificate> {
    try {
      return await this.o.deviceCa.issue({ subjectDer: csr.subjectDer, publicKeyDer: csr.publicKeyDer });
    } catch (err) {
      // The CSR passed our checks; what the certificate library still refuses is the request's fault.
      throw new ScepFailure("badRequest", `cannot issue a certificate for this request: ${(err as Error).message}`);
    }
  }
}

/** A renewal refused inside its transaction (rolled back), with the reason. */
class RenewalRefused extends Error {}

function record(
  cert: X509Certificate,
  requestType: "PKCSReq" | "RenewalReq",
  transactionId: string,
  now: number,
  deviceId: string | null,
  renewedFrom: string | null,
) {
  return {
    serialNumber: cert.serialNumber.toLowerCase(),
    fingerprint: certFingerprint(cert),
    subject: cert.subject,
    issuedAt: now,
    notAfter: Date.parse(cert.validTo),
    requestType,
    transactionId,
    deviceId,
    renewedFrom,
    certDer: Buffer.from(cert.raw),
  };
}

function certDetail(cert: X509Certificate, requestType: string): EventDetail<"scep.issued"> {
  return {
    request_type: requestType,
    subject: cert.subject,
    serial: cert.serialNumber.toLowerCase(),
    fingerprint: certFingerprint(cert),
    not_after: new Date(cert.validTo).toISOString(),
  };
}

/** The CertRep failure for an error, or undefined when it is not the request's fault. */
export function asFailure(err: unknown): ScepFailure | undefined {
  if (err instanceof ScepFailure) return err;
  if (err instanceof CmsError) {
    const failInfo: FailInfoName =
      err.kind === "unsupported-algorithm" ? "badAlg" : err.kind === "malformed" ? "badRequest" : "badMessageCheck";
    return new ScepFailure(failInfo, err.message);
  }
  if (err instanceof CsrError) {
    // An unreadable CSR is what a wrong content key yields when the CBC padding
    // happens to check out (about 1 in 256): answer it like any failed
    // decryption, so a wrong key (or a bad RSA padding) has one answer.
    return new ScepFailure(err.kind === "signature" || err.kind === "malformed" ? "badMessageCheck" : "badRequest", err.message);
  }
  return undefined;
}
