// A bounded map with per-entry expiry. Map keeps insertion order, so re-inserting
// on a hit and evicting the first key gives a cheap LRU.
export class BoundedCache<V> {
  readonly #entries = new Map<string, { key: string; value: V; expiresAt: number }>();
  readonly #maxEntries: number;

  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError("maxEntries must be a positive integer");
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string, now: number = Date.now()): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    if (now >= entry.expiresAt) return undefined;
    // Re-inserted under the key it was stored with: the caller's equal string
    // (a request's header) dies young instead of living on in the cache.
    this.#entries.set(entry.key, entry);
    return entry.value;
  }

  set(key: string, value: V, expiresAt: number): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { key, value, expiresAt });
  }

  clear(): void {
    this.#entries.clear();
  }
}
