// Why a request carries no usable device identity. The message is short and plain:
// it goes into a 400 body and a log line, so it never quotes the header or body.
export type IdentityErrorReason =
  | "no-identity"
  | "bad-signature"
  | "bad-certificate"
  | "untrusted"
  | "expired"
  | "bad-header"
  | "untrusted-proxy";

export class IdentityError extends Error {
  readonly reason: IdentityErrorReason;

  constructor(reason: IdentityErrorReason, message: string) {
    super(message);
    this.name = "IdentityError";
    this.reason = reason;
  }
}
