/**
 * The memory (in bytes; a body counts twice, its pieces and the buffer they
 * are joined into) that requests not yet identified (Mdm-Signature requests,
 * whose signature covers the body) may hold at once, server-wide
 * (--unidentified-body-budget). Without it, 30 connections declaring 16 MB
 * each made the server hold 480 MB for anyone. Past it the request is refused
 * with 503 + Retry-After: the device retries later, and memory stays bounded.
 *
 * Only a header naming a trusted signer certificate gets this far
 * (device-identity.ts), but a certificate is public: whoever has a copy of one
 * (any enrolled device's owner has their own) can name it with a bogus
 * signature. So each signer certificate may hold only a share of the budget:
 * one certificate cannot lock every other signing device out.
 */
export class BodyBudget {
  private used = 0;
  private readonly bySigner = new Map<string, number>();

  /** `share`: the most one signer (certificate fingerprint) may hold; the whole budget when not given. */
  constructor(
    readonly limit: number,
    readonly share = limit,
  ) {}

  /** Reserves n bytes for this signer; false (nothing reserved) when that would pass the limit or its share. */
  take(n: number, signer: string): boolean {
    const mine = this.bySigner.get(signer) ?? 0;
    if (this.used + n > this.limit || mine + n > this.share) return false;
    this.used += n;
    this.bySigner.set(signer, mine + n);
    return true;
  }

  release(n: number, signer: string): void {
    const mine = Math.max(0, (this.bySigner.get(signer) ?? 0) - n);
    if (mine === 0) this.bySigner.delete(signer);
    else this.bySigner.set(signer, mine);
    this.used = Math.max(0, this.used - n);
  }

  get inUse(): number {
    return this.used;
  }

  /** Bytes this signer holds now. */
  heldBy(signer: string): number {
    return this.bySigner.get(signer) ?? 0;
  }
}

/**
 * One signer's share: an eighth of the budget, but never less than one
 * request of the largest body limit (counted twice), so that a device's
 * largest report still fits; never more than the budget.
 */
export function signerShare(limit: number, largestBody: number): number {
  return Math.min(limit, Math.max(Math.floor(limit / 8), 2 * largestBody));
}

/** A request refused because the unidentified body budget (or its signer's share of it) is spent. */
export class BudgetExhausted extends Error {
  readonly statusCode = 503;
  readonly retryAfterSeconds = 5;
  constructor() {
    super("server busy: too many unidentified request bodies in flight, retry later");
  }
}
