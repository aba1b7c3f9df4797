/**
 * The memory (in bytes; a body counts twice, its pieces and the buffer they
 * are joined into) that requests not yet identified (Mdm-Signature requests,
 * whose signature covers the body) may hold at once, server-wide
 * (--unidentified-body-budget). Without it, 30 connections declaring 16 MB
 * each made the server hold 480 MB for anyone. Past it the request is refused
 * with 503 + Retry-After: the device retries later, and memory stays bounded.
 */
export class BodyBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  /** Reserves n bytes; false (nothing reserved) when that would pass the limit. */
  take(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }

  release(n: number): void {
    this.used = Math.max(0, this.used - n);
  }

  get inUse(): number {
    return this.used;
  }
}

/** A request refused because the unidentified body budget is spent. */
export class BudgetExhausted extends Error {
  readonly statusCode = 503;
  readonly retryAfterSeconds = 5;
  constructor() {
    super("server busy: too many unidentified request bodies in flight, retry later");
  }
}
