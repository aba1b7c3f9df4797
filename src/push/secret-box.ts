import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Log } from "../core/service.ts";

const NONCE = 12;
const TAG = 16;

/** A sealed value that does not open: another secret key sealed it, or it was altered. */
export class SecretKeyMismatch extends Error {}

/**
 * AES-256-GCM under a key derived from the server's secret key (HKDF-SHA256).
 * The additional data (the push topic) binds each sealed value to its row.
 * Sealed form: nonce (12 bytes) | tag (16) | ciphertext.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(secret: string) {
    if (secret.length < 16) throw new Error("the secret key must be at least 16 characters");
    this.key = Buffer.from(hkdfSync("sha256", Buffer.from(secret, "utf8"), "orchard", "orchard push certificate keys", 32));
  }

  seal(plain: Buffer, aad: string): Buffer {
    const nonce = randomBytes(NONCE);
    const cipher = createCipheriv("aes-256-gcm", this.key, nonce);
    cipher.setAAD(Buffer.from(aad, "utf8"));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([nonce, cipher.getAuthTag(), body]);
  }

  open(sealed: Buffer, aad: string): Buffer {
    if (sealed.length < NONCE + TAG) throw new SecretKeyMismatch("the sealed value is too short");
    const decipher = createDecipheriv("aes-256-gcm", this.key, sealed.subarray(0, NONCE));
    decipher.setAAD(Buffer.from(aad, "utf8"));
    decipher.setAuthTag(sealed.subarray(NONCE, NONCE + TAG));
    try {
      return Buffer.concat([decipher.update(sealed.subarray(NONCE + TAG)), decipher.final()]);
    } catch {
      throw new SecretKeyMismatch("the sealed value does not open with this server's secret key");
    }
  }
}

/**
 * The secret key from <data dir>/secret-key, created (mode 0600) on first
 * start. Created through a temporary file and a hard link, so processes
 * starting together on one data dir end up with the same key.
 */
export function loadOrCreateSecretKey(dataDir: string, log: Log): string {
  const file = path.join(dataDir, "secret-key");
  const read = () => fs.readFileSync(file, "utf8").trim();
  if (fs.existsSync(file)) return read();
  const temp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
  fs.writeFileSync(temp, randomBytes(32).toString("base64url") + "\n", { mode: 0o600, flag: "wx" });
  try {
    fs.linkSync(temp, file);
    log.info({ file }, "generated a new secret key (it encrypts push certificate keys in the store; back it up)");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  } finally {
    fs.rmSync(temp, { force: true });
  }
  return read();
}
