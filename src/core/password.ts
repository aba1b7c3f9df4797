import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { OrchardError } from "../errors.ts";

/**
 * Operator passwords, hashed with scrypt (node:crypto), memory-hard so that a
 * stolen table costs a guesser memory as well as time per guess.
 *
 * N = 2^16, r = 8, p = 2: 64 MiB of memory per hash (128 * N * r bytes) and
 * the work of OWASP's first scrypt choice (N = 2^17, r = 8, p = 1), one of the
 * equivalent settings its Password Storage Cheat Sheet lists; half its memory,
 * so the 4 hashes libuv's thread pool runs at once hold 256 MiB, not 512.
 * About 0.3 s on a 2020s server core. The parameters are stored in each hash
 * (`$scrypt$ln=16,r=8,p=2$salt$hash`, PHC style), so raising them later
 * leaves old hashes readable; a hash's parameters are checked against bounds
 * before use, so a bad row cannot make the server allocate without limit.
 */
const LOG_N = 16;
const R = 8;
const P = 2;
const KEY_BYTES = 32;
const SALT_BYTES = 16;

/** The shortest and longest password taken (NIST SP 800-63B: at least 8, 12 here; long passphrases welcome). */
export const MIN_PASSWORD = 12;
export const MAX_PASSWORD = 1024;

/**
 * Hashes at once, server-wide: each holds 64 MiB, and a flood of sign-ins
 * must not take the thread pool (file reads, DNS) from everything else.
 * Past MAX_WAITING a sign-in gets 503 + Retry-After: slower, never locked out.
 */
const MAX_HASHING = 2;
const MAX_WAITING = 64;
/**
 * Hashes one caller (an address signing in, an account changing its
 * password) may have running or waiting: twice what runs at once, so one
 * caller gains nothing by sending more, and no one caller can fill the queue
 * every sign-in shares (it takes MAX_WAITING / MAX_PER_CALLER of them).
 */
export const MAX_PER_CALLER = 4;

export function passwordProblem(password: string): string | undefined {
  if (password.length < MIN_PASSWORD) return `a password has at least ${MIN_PASSWORD} characters`;
  if (password.length > MAX_PASSWORD) return `a password has at most ${MAX_PASSWORD} characters`;
  return undefined;
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, LOG_N, R, P, KEY_BYTES);
  return `$scrypt$ln=${LOG_N},r=${R},p=${P}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

/**
 * Whether the password is the one hashed; false for a hash it cannot read.
 * Constant time in the comparison. `caller` (an address, an account): whose
 * share of the hash queue the check takes (MAX_PER_CALLER).
 */
export async function verifyPassword(password: string, stored: string, caller?: string): Promise<boolean> {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9_-]{16,})\$([A-Za-z0-9_-]{32,})$/.exec(stored);
  if (!m) return false;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (ln < 10 || ln > 20 || r < 1 || r > 16 || p < 1 || p > 16) return false;
  const expected = Buffer.from(m[5]!, "base64url");
  const key = await derive(password, Buffer.from(m[4]!, "base64url"), ln, r, p, expected.length, caller);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/**
 * A hash of no password, verified against when the name is unknown: an
 * unknown name and a wrong password then take the same time.
 */
let dummy: Promise<string> | undefined;
export function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString("hex"));
  return dummy;
}

/** Too many password checks waiting for a hash at once (everyone's, or one caller's share). */
export class HashingBusy extends OrchardError {
  readonly retryAfterSeconds = 1;
  constructor() {
    super(503, "too many sign-ins or password checks at once; retry in a second", "service_unavailable");
  }
}

let running = 0;
const waiting: Array<() => void> = [];
/** Hashes running or waiting per caller; a caller with none has no entry, so the map stays as small as the queue. */
const perCaller = new Map<string, number>();

async function derive(password: string, salt: Buffer, ln: number, r: number, p: number, bytes: number, caller?: string): Promise<Buffer> {
  const mine = caller === undefined ? 0 : (perCaller.get(caller) ?? 0);
  if (mine >= MAX_PER_CALLER || (running >= MAX_HASHING && waiting.length >= MAX_WAITING)) throw new HashingBusy();
  // Counted before waiting: what is queued is what one caller holds.
  if (caller !== undefined) perCaller.set(caller, mine + 1);
  try {
    if (running >= MAX_HASHING) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      const N = 2 ** ln;
      return await new Promise<Buffer>((resolve, reject) =>
        scrypt(password.normalize("NFC"), salt, bytes, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) =>
          err ? reject(err) : resolve(key),
        ),
      );
    } finally {
      // The slot passes to the next waiter as it is, or is given back.
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  } finally {
    if (caller !== undefined) {
      const left = perCaller.get(caller)! - 1;
      if (left > 0) perCaller.set(caller, left);
      else perCaller.delete(caller);
    }
  }
}
