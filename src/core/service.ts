/** The logging a handler needs; a request's logger carries its request id. */
export interface Log {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
import type { PlistDict } from "../plist/index.ts";
import type { CheckinMessage } from "../protocol/checkin.ts";
import type { CommandReport } from "../protocol/report.ts";
import type { PendingCommand } from "../store/commands.ts";
import type { EventDetail } from "../store/event-types.ts";

/** What the HTTP layer knows about a device request once its identity is checked. */
export interface MdmRequest {
  /** SHA-256 of the identity certificate's DER, lowercase hex. */
  certFingerprint: string;
  /**
   * Set by CertBinding at an Authenticate its policy let through: the
   * certificate the device must still be bound to when the store binds this
   * one (null: none); absent, the store re-binds unconditionally.
   */
  replaces?: string | null;
  /** Set by CertBinding when the Authenticate re-binds the device: the enrollment.rebound event the core records with the binding. */
  rebound?: EventDetail<"enrollment.rebound">;
  /** The HTTP method that carried the message (HA2 of a digest uses it). */
  method: string;
  log: Log;
  now: number;
  /** The query parameters of the request's URL (the webhook's url_params), when it had any. */
  urlParams?: Record<string, string>;
}

export type CheckinReply =
  /** 200 with a zero-length body. */
  | { kind: "empty" }
  /** 200 with an XML plist. */
  | { kind: "plist"; body: PlistDict }
  /** Relayed as is (Declarative Management). */
  | { kind: "raw"; status: number; contentType?: string; body: Buffer };

/**
 * The MDM service: one method for check-in messages, one for command polls.
 * Cross-cutting rules (certificate binding, AuthToken enforcement) are
 * wrappers that implement this same interface around another one.
 */
export interface MdmService {
  checkIn(req: MdmRequest, msg: CheckinMessage): Promise<CheckinReply>;
  /** Stores a report and returns the next command, or null for "no more". */
  report(req: MdmRequest, report: CommandReport): Promise<PendingCommand | null>;
}
