import fs from "node:fs";
import type { Log } from "../core/service.ts";
import type { Store } from "../store/index.ts";
import { PushCertSource } from "./certs.ts";
import { startPushCertExpiryCheck } from "./expiry.ts";
import { NotNowRepush } from "./notnow.ts";
import { ApnsPusher, type PushObserver } from "./pusher.ts";
import { loadOrCreateSecretKey, SecretBox } from "./secret-box.ts";
import { startPushSweep } from "./sweep.ts";

export interface PushService {
  pusher: ApnsPusher;
  certs: PushCertSource;
  /** The core's NotNow hook; undefined when --notnow-push-delay is 0. */
  notNow?: NotNowRepush;
  close(): Promise<void>;
}

/** The --apns-* and push settings (README flag table, docs/push.md). */
export interface PushOptions {
  /** Encrypts push keys in the store; default: <data dir>/secret-key, generated. */
  secretKey?: string;
  apnsUrl: string;
  /** CAs trusted for the APNs server besides the bundled roots (a stand-in in tests). */
  apnsCaFiles: string[];
  /** apns-expiration = now + this; 0 sends 0 (deliver now or never). */
  expirationMs: number;
  maxStreams: number;
  retries: number;
  backoffMs: number;
  /** How soon every process notices a new or rotated push certificate. */
  certRefreshMs: number;
  /** Push again this long after a NotNow session; 0 turns it off. */
  notNowDelayMs: number;
  /** How often the silent-channel sweep runs; 0 turns it off. */
  sweepIntervalMs: number;
  /** Channels silent this long with commands queued are pushed by the sweep. */
  sweepSilenceMs: number;
}

const PING_INTERVAL_MS = 10 * 60_000;
const REQUEST_TIMEOUT_MS = 30_000;

/** Assembles pushing: the certificates (and their expiry check), the APNs provider, the NotNow re-push and the sweep. */
export function startPush(o: { config: PushOptions; store: Store; dataDir: string; log: Log; observer?: PushObserver }): PushService {
  const { config, store, log } = o;
  const box = new SecretBox(config.secretKey ?? loadOrCreateSecretKey(o.dataDir, log));
  const certs = new PushCertSource(store.push, box, config.certRefreshMs, log);
  const pusher = new ApnsPusher({
    store,
    observer: o.observer,
    certs,
    log,
    url: config.apnsUrl,
    ca: config.apnsCaFiles.map((f) => fs.readFileSync(f, "utf8")),
    expirationMs: config.expirationMs,
    priority: 10,
    maxStreams: config.maxStreams,
    retries: config.retries,
    backoffMs: config.backoffMs,
    pingIntervalMs: PING_INTERVAL_MS,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  });
  const notNow = config.notNowDelayMs > 0 ? new NotNowRepush(store, pusher, config.notNowDelayMs, log) : undefined;
  notNow?.start();
  const stopSweep =
    config.sweepIntervalMs > 0
      ? startPushSweep(store, pusher, { intervalMs: config.sweepIntervalMs, silenceMs: config.sweepSilenceMs }, log)
      : async () => {};
  const stopExpiryCheck = startPushCertExpiryCheck(store, log);
  return {
    pusher,
    certs,
    notNow,
    async close() {
      await stopExpiryCheck();
      await stopSweep();
      await notNow?.stop();
      await pusher.close();
    },
  };
}
