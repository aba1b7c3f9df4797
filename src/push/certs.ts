import type { Log } from "../core/service.ts";
import type { NewEvent } from "../store/event-types.ts";
import type { PushStore } from "../store/push.ts";
import type { PushCertificate } from "./certificate.ts";
import { SecretKeyMismatch, type SecretBox } from "./secret-box.ts";

/** A push certificate ready for TLS: its key opened. Never logged. */
export interface LoadedPushCert {
  topic: string;
  certPem: string;
  keyPem: string;
  fingerprint: string;
  notAfter: number;
  /** Changes whenever the stored certificate does (rotation). */
  version: string;
}

/** The stored key does not open: another secret key sealed it. */
export class PushCertUnusable extends Error {}

interface Entry {
  cert: LoadedPushCert | undefined;
  /** The stored version, also when its key did not open. */
  version?: string;
  error?: PushCertUnusable;
  checkedAt: number;
  loading?: Promise<LoadedPushCert | undefined>;
}

/**
 * The push certificates every process reads from the store. Each topic's
 * entry is re-checked (one small query) once it is older than refreshMs, so
 * a certificate uploaded through any process is used by all within that
 * time, without a restart.
 */
export class PushCertSource {
  private readonly entries = new Map<string, Entry>();
  private count: { n: number; checkedAt: number } | undefined;
  private readonly unusableLogged = new Set<string>();

  constructor(
    private readonly store: PushStore,
    private readonly box: SecretBox,
    private readonly refreshMs: number,
    private readonly log: Log,
  ) {}

  /** The topic's certificate, or undefined when none is stored; throws PushCertUnusable. */
  async get(topic: string, now = Date.now()): Promise<LoadedPushCert | undefined> {
    const e = this.entries.get(topic);
    if (e && now - e.checkedAt < this.refreshMs) {
      if (e.error) throw e.error;
      return e.cert;
    }
    if (e?.loading) return e.loading;
    const entry: Entry = e ?? { cert: undefined, checkedAt: 0 };
    this.entries.set(topic, entry);
    entry.loading = this.refresh(topic, entry, now).finally(() => (entry.loading = undefined));
    return entry.loading;
  }

  /** Whether any certificate is stored (cached like the certificates). */
  async anyConfigured(now = Date.now()): Promise<boolean> {
    if (!this.count || now - this.count.checkedAt >= this.refreshMs) this.count = { n: await this.store.certCount(), checkedAt: now };
    return this.count.n > 0;
  }

  /** Seals the key and stores the certificate; this process uses it at once. Returns true for a new topic. */
  /** Stores the certificate; `event` (given whether it was created) is recorded in the same transaction. */
  async put(cert: PushCertificate, now = Date.now(), event?: (created: boolean) => NewEvent): Promise<boolean> {
    const created = await this.store.putCert(
      {
        topic: cert.topic,
        certPem: cert.certPem,
        keySealed: this.box.seal(Buffer.from(cert.keyPem, "utf8"), cert.topic),
        fingerprint: cert.fingerprint,
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
      },
      now,
      event,
    );
    this.entries.delete(cert.topic);
    this.count = undefined;
    this.unusableLogged.delete(cert.topic);
    return created;
  }

  async remove(topic: string, event?: NewEvent): Promise<boolean> {
    const removed = await this.store.removeCert(topic, event);
    this.entries.delete(topic);
    this.count = undefined;
    return removed;
  }

  private async refresh(topic: string, entry: Entry, now: number): Promise<LoadedPushCert | undefined> {
    const v = await this.store.certVersion(topic);
    const version = v && `${v.fingerprint}@${v.updatedAt}`;
    if (version !== entry.version) {
      entry.version = version;
      entry.cert = undefined;
      entry.error = undefined;
      try {
        entry.cert = version ? await this.load(topic) : undefined;
      } catch (err) {
        if (!(err instanceof PushCertUnusable)) {
          entry.version = undefined;
          throw err;
        }
        entry.error = err;
      }
    }
    entry.checkedAt = now;
    if (entry.error) throw entry.error;
    return entry.cert;
  }

  private async load(topic: string): Promise<LoadedPushCert | undefined> {
    const row = await this.store.cert(topic);
    if (!row) return undefined;
    let keyPem: string;
    try {
      keyPem = this.box.open(row.keySealed, topic).toString("utf8");
    } catch (err) {
      if (!(err instanceof SecretKeyMismatch)) throw err;
      const message =
        `the stored key of push certificate ${topic} does not open with this server's secret key: ` +
        "give every Orchard process the same --secret-key (or the same <data dir>/secret-key), or upload the certificate again";
      if (!this.unusableLogged.has(topic)) {
        this.unusableLogged.add(topic);
        this.log.error({ topic }, message);
      }
      throw new PushCertUnusable(message);
    }
    return {
      topic,
      certPem: row.certPem,
      keyPem,
      fingerprint: row.fingerprint,
      notAfter: row.notAfter,
      version: `${row.fingerprint}@${row.updatedAt}`,
    };
  }
}
