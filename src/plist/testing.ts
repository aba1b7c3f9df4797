// Test helpers shared by the plist tests: fixtures, error assertions and a
// seeded generator of random plist values. Not used by production code.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { PlistError, type PlistDict, type PlistValue } from "./index.ts";

export const FIXTURES_DIR = fileURLToPath(new URL("../../test/fixtures/checkin/", import.meta.url));

export function fixtures(): { name: string; bytes: Buffer }[] {
  return readdirSync(FIXTURES_DIR)
    .filter((f) => f.endsWith(".plist"))
    .sort()
    .map((name) => ({ name, bytes: readFileSync(FIXTURES_DIR + name) }));
}

/** Asserts fn throws a PlistError whose message matches and leaks none of `secrets`. */
export function assertPlistError(fn: () => unknown, message?: RegExp, secrets: string[] = [], label = ""): PlistError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  if (!(caught instanceof PlistError)) {
    assert.fail(`${label} expected PlistError, got ${caught instanceof Error ? caught.stack : String(caught)}`);
  }
  if (message) assert.match(caught.message, message, label);
  assert.doesNotMatch(caught.message, /internal parser error/, label);
  for (const s of secrets) assert.ok(!caught.message.includes(s), `message leaks content: ${caught.message}`);
  return caught;
}

/** Mulberry32: small, fast, reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GenOptions {
  /** Include values the `plist` package cannot represent (bigint, NaN, ±Infinity, -0, CR, controls). */
  exotic: boolean;
}

const ALPHABET = ["a", "Z", "0", " ", "\t", "\n", "&", "<", ">", '"', "'", "]]>", "é", "中", "😀", "\u00a0", "-", ".", "/", ";", "#"];
const EXOTIC_CHARS = ["\r", "\u0001", "\u001f", "\u007f", "\ufffe"];

export function randomString(rnd: () => number, exotic: boolean, maxLen = 12): string {
  const n = Math.floor(rnd() * (maxLen + 1));
  let s = "";
  for (let i = 0; i < n; i++) {
    const pool = exotic && rnd() < 0.2 ? EXOTIC_CHARS : ALPHABET;
    s += pool[Math.floor(rnd() * pool.length)];
  }
  return s;
}

export function randomValue(rnd: () => number, opts: GenOptions, depth = 0): PlistValue {
  const pick = Math.floor(rnd() * (depth >= 4 ? 7 : 9));
  switch (pick) {
    case 0:
      return randomString(rnd, opts.exotic);
    case 1: {
      const r = rnd();
      if (opts.exotic && r < 0.2) return (rnd() < 0.5 ? -1n : 1n) * (2n ** 53n + BigInt(Math.floor(rnd() * 1e9)));
      if (r < 0.5) return Math.floor((rnd() - 0.5) * 2000);
      return Math.floor((rnd() - 0.5) * 2 * Number.MAX_SAFE_INTEGER);
    }
    case 2: {
      if (opts.exotic && rnd() < 0.3) return [NaN, Infinity, -Infinity, -0, 2 ** 60, 1e300][Math.floor(rnd() * 6)]!;
      return (rnd() - 0.5) * 10 ** Math.floor(rnd() * 20 - 10);
    }
    case 3:
      return rnd() < 0.5;
    case 4:
      // Whole seconds between years 1000 and 9999 (the serializer drops milliseconds).
      return new Date(Math.floor(-30610224000 + rnd() * (253402300799 + 30610224000)) * 1000);
    case 5: {
      const b = Buffer.alloc(Math.floor(rnd() * 40));
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(rnd() * 256);
      return b;
    }
    case 6:
      return randomString(rnd, opts.exotic, 3);
    case 7: {
      const a: PlistValue[] = [];
      const n = Math.floor(rnd() * 5);
      for (let i = 0; i < n; i++) a.push(randomValue(rnd, opts, depth + 1));
      return a;
    }
    default: {
      const d: PlistDict = {};
      const n = Math.floor(rnd() * 6);
      for (let i = 0; i < n; i++) {
        const k = randomString(rnd, opts.exotic, 8);
        if (k !== "__proto__") d[k] = randomValue(rnd, opts, depth + 1);
      }
      return d;
    }
  }
}

/** Deep copy with every Uint8Array (Buffer or not) as a plain { data: hex } marker. */
export function normalise(v: unknown): unknown {
  if (v instanceof Uint8Array) return { data: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex") };
  if (Array.isArray(v)) return v.map(normalise);
  if (v instanceof Date) return v;
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) out[k] = normalise((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}
