import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** A new AuthToken: 32 random bytes, base64. */
export function newAuthToken(): string {
  return randomBytes(32).toString("base64");
}

/** What the store keeps of an AuthToken: its SHA-256, hex. */
export function hashAuthToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Compares a presented token with a stored hash in constant time. */
export function authTokenMatches(token: unknown, storedHash: string | null): boolean {
  if (typeof token !== "string" || token.length === 0 || storedHash === null) return false;
  const given = Buffer.from(hashAuthToken(token), "hex");
  const stored = Buffer.from(storedHash, "hex");
  return given.length === stored.length && timingSafeEqual(given, stored);
}
