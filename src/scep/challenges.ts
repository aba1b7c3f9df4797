// SCEP challenge passwords: random, single use, expiring, kept in the store as
// hashes so every process of a deployment can check and spend them.
import { createHash, randomBytes } from "node:crypto";
import type { Store } from "../store/index.ts";

export interface NewChallenge {
  /** The challenge password itself: shown once, never stored or logged. */
  challenge: string;
  expiresAt: Date;
}

/** The stored form of a challenge: SHA-256, hex. */
export function challengeHash(challenge: string): string {
  return createHash("sha256").update(challenge, "utf8").digest("hex");
}

export class ScepChallenges {
  constructor(
    private readonly store: Store,
    /** The default lifetime (--scep-challenge-ttl). */
    readonly ttlMs: number,
  ) {
    if (!(ttlMs > 0)) throw new Error("the SCEP challenge lifetime must be positive");
  }

  /**
   * A fresh challenge, usable once within ttlMs (default: the configured
   * lifetime); adeSerial binds it (and the certificate it buys) to the serial
   * number of an ADE device.
   */
  async create(ttlMs: number = this.ttlMs, now: number = Date.now(), adeSerial?: string): Promise<NewChallenge> {
    if (!(ttlMs > 0)) throw new Error("the SCEP challenge lifetime must be positive");
    // Hex: PrintableString-safe, so every client encodes it the same way in its CSR.
    const challenge = randomBytes(20).toString("hex");
    const expiresAt = now + ttlMs;
    await this.store.scep.createChallenge(challengeHash(challenge), now, expiresAt, adeSerial ?? null);
    return { challenge, expiresAt: new Date(expiresAt) };
  }
}
