// A local APNs for tests and the bench: HTTP/2 over TLS that demands a
// client certificate issued by the push CA, checks every request as APNs
// does (path, headers, body, the topic against the certificate's UID) and
// answers what the test asks for: any status and reason, a delay, a GOAWAY.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import fs from "node:fs";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import type { TLSSocket } from "node:tls";
import { createCa, generateKeyPair, type CaIdentity, type KeyPair, type PkiIdentity } from "../../src/identity/testing/pki.ts";
import { issuePushCertificate, issueServerCertificate } from "../../src/identity/testing/push-cert.ts";
import type { Store } from "../../src/store/index.ts";

/** A request that passed every check. */
export interface SeenPush {
  token: string;
  topic: string;
  apnsId: string;
  expiration: number;
  priority: string;
  pushMagic: string;
  /** SHA-256 (hex) of the client certificate the connection presented. */
  certFingerprint: string;
  /** Which TLS connection (1, 2, ...) carried it. */
  session: number;
  at: number;
}

export type Answer =
  | { status: number; reason?: string; timestamp?: number; delayMs?: number }
  /** Send GOAWAY: streams after the previous one are refused, the connection closes. */
  | { goaway: string };

export interface ApnsStandIn {
  /** https://127.0.0.1:PORT, for --apns-url. */
  url: string;
  /** A file with the CA of the stand-in's server certificate, for --apns-ca. */
  caFile: string;
  seen: SeenPush[];
  /** What was wrong with requests that failed a check (must stay empty). */
  violations: string[];
  /** Streams open now and the most ever open at once. */
  open: number;
  maxOpen: number;
  sessions: number;
  /** Decides each answer (n counts valid requests since the last reset, from 1); default 200 after `delayMs`. */
  answer: (push: SeenPush, n: number) => Answer;
  reset(): void;
  close(): Promise<void>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export async function startApnsStandIn(o: {
  pushCa: CaIdentity;
  serverCa: CaIdentity;
  serverKey?: KeyPair;
  maxConcurrentStreams?: number;
  delayMs?: number;
}): Promise<ApnsStandIn> {
  const serverCert = await issueServerCertificate(o.serverCa, { hosts: ["127.0.0.1", "localhost"], keyPair: o.serverKey });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-apns-"));
  const caFile = path.join(dir, "apns-ca.pem");
  fs.writeFileSync(caFile, o.serverCa.certPem);
  const server = http2.createSecureServer({
    cert: serverCert.certPem,
    key: serverCert.keyPem,
    ca: [o.pushCa.certPem],
    requestCert: true,
    rejectUnauthorized: true,
    settings: { maxConcurrentStreams: o.maxConcurrentStreams ?? 1000 },
  });
  const delayMs = o.delayMs ?? 0;
  const sessions = new Set<http2.ServerHttp2Session>();
  let requests = 0;
  const state: ApnsStandIn = {
    url: "",
    caFile,
    seen: [],
    violations: [],
    open: 0,
    maxOpen: 0,
    sessions: 0,
    answer: () => ({ status: 200, delayMs }),
    reset() {
      requests = 0;
      state.seen.length = 0;
      state.violations.length = 0;
      state.maxOpen = state.open;
      state.answer = () => ({ status: 200, delayMs });
    },
    async close() {
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };

  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    session.on("error", () => {});
    const number = ++state.sessions;
    let refuseAfter = Infinity;
    const socket = session.socket as TLSSocket;
    const peer = socket.getPeerCertificate();
    const certFingerprint = peer?.raw ? createHash("sha256").update(peer.raw).digest("hex") : "";
    const certTopic = (peer?.subject as unknown as Record<string, string> | undefined)?.UID ?? "";

    session.on("stream", (stream, headers) => {
      state.open++;
      if (state.open > state.maxOpen) state.maxOpen = state.open;
      stream.on("close", () => state.open--);
      stream.on("error", () => {});
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        if ((stream.id ?? 0) > refuseAfter) return void stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        const body = Buffer.concat(chunks).toString("utf8");
        const fail = (status: number, reason: string, what: string) => {
          state.violations.push(what);
          respond(stream, status, { reason });
        };
        const token = /^\/3\/device\/([0-9a-f]+)$/.exec(String(headers[":path"]))?.[1];
        if (headers[":method"] !== "POST") return fail(405, "MethodNotAllowed", `method ${headers[":method"]}`);
        if (!token) return fail(404, "BadPath", `path ${headers[":path"]}`);
        if (headers["apns-topic"] !== certTopic)
          return fail(400, "TopicDisallowed", `apns-topic ${headers["apns-topic"]} but the certificate's UID is ${certTopic}`);
        if (headers["apns-push-type"] !== "mdm") return fail(400, "InvalidPushType", `apns-push-type ${headers["apns-push-type"]}`);
        if (headers["apns-priority"] !== "10") return fail(400, "BadPriority", `apns-priority ${headers["apns-priority"]}`);
        const expiration = Number(headers["apns-expiration"]);
        if (!/^\d+$/.test(String(headers["apns-expiration"])))
          return fail(400, "BadExpirationDate", `apns-expiration ${headers["apns-expiration"]}`);
        const apnsId = String(headers["apns-id"]);
        if (!UUID.test(apnsId)) return fail(400, "BadMessageId", `apns-id ${apnsId}`);
        let magic: unknown;
        try {
          const parsed = JSON.parse(body) as Record<string, unknown>;
          magic = Object.keys(parsed).length === 1 ? parsed.mdm : undefined;
        } catch {
          magic = undefined;
        }
        if (typeof magic !== "string" || body !== JSON.stringify({ mdm: magic })) return fail(400, "PayloadEmpty", `body ${body}`);
        const push: SeenPush = {
          token,
          topic: certTopic,
          apnsId,
          expiration,
          priority: "10",
          pushMagic: magic,
          certFingerprint,
          session: number,
          at: Date.now(),
        };
        state.seen.push(push);
        const answer = state.answer(push, ++requests);
        if ("goaway" in answer) {
          // Streams before this one finish; this one and later ones are refused, then the connection closes.
          // (Node 20 aborts with a corrupted heap when a server's GOAWAY names a last stream id below
          // streams still open, so the GOAWAY covers every stream and the later ones are refused one by
          // one with REFUSED_STREAM: what the client sees is the same, streams APNs never processed.)
          refuseAfter = (stream.id ?? 1) - 2;
          session.goaway(http2.constants.NGHTTP2_NO_ERROR, 2 ** 31 - 1, Buffer.from(JSON.stringify({ reason: answer.goaway })));
          stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
          setTimeout(() => session.close(), 50);
          return;
        }
        const send = () => {
          if (stream.destroyed) return;
          const json =
            answer.status === 200
              ? undefined
              : { reason: answer.reason, ...(answer.timestamp === undefined ? {} : { timestamp: answer.timestamp }) };
          respond(stream, answer.status, json, apnsId);
        };
        if (answer.delayMs) setTimeout(send, answer.delayMs);
        else send();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

function respond(stream: http2.ServerHttp2Stream, status: number, json: object | undefined, apnsId?: string): void {
  const headers: http2.OutgoingHttpHeaders = { ":status": status, "apns-id": apnsId ?? randomUUID() };
  if (json === undefined) {
    stream.respond(headers, { endStream: true });
    return;
  }
  stream.respond({ ...headers, "content-type": "application/json" });
  stream.end(JSON.stringify(json));
}

export const TEST_TOPIC = "com.apple.mgmt.External.orchard-sim";

/** A push CA, push certificates and a stand-in server certificate, with keys generated once. */
export interface PushPki {
  pushCa: CaIdentity;
  serverCa: CaIdentity;
  serverKey: KeyPair;
  /** A push certificate for TEST_TOPIC. */
  cert: PkiIdentity;
  /** Another push certificate for the same topic, with its own key (rotation). */
  rotated: PkiIdentity;
  /** cert + key as one PEM body for PUT /v1/pushcert. */
  pem(c?: PkiIdentity): string;
}

export async function pushPki(): Promise<PushPki> {
  const [caKey, serverKey, key1, key2] = await Promise.all([generateKeyPair(), generateKeyPair(), generateKeyPair(), generateKeyPair()]);
  const pushCa = await createCa({ commonName: "Test Apple Push CA", keyPair: caKey });
  const serverCa = pushCa;
  const cert = await issuePushCertificate(pushCa, { topic: TEST_TOPIC, keyPair: key1 });
  // A re-key with the same end: either may replace the other (one that ends sooner is refused unless forced).
  const rotated = await issuePushCertificate(pushCa, { topic: TEST_TOPIC, keyPair: key2, notAfter: new Date(cert.cert.validTo) });
  return { pushCa, serverCa, serverKey, cert, rotated, pem: (c = cert) => c.certPem + c.keyPem };
}

/** Flags for an Orchard that pushes to the stand-in. */
export function pushArgs(apns: ApnsStandIn, extra: string[] = [], secretKey = "test-secret-key-0123456789"): string[] {
  return ["--apns-url", apns.url, "--apns-ca", apns.caFile, "--apns-backoff", "10ms", "--secret-key", secretKey, ...extra];
}

/**
 * Enrolled channels written straight into the store (thousands in a
 * second, where enrolling through HTTP would take many): device + channel,
 * enabled, with a random token and PushMagic. Ids are `<prefix>-<n>`.
 */
export async function seedEnrollments(
  store: Store,
  count: number,
  o: { prefix?: string; topic?: string } = {},
): Promise<Array<{ id: string; token: string; pushMagic: string }>> {
  const prefix = o.prefix ?? "SEED";
  const topic = o.topic ?? TEST_TOPIC;
  const now = Date.now();
  const rows = Array.from({ length: count }, (_, i) => ({
    id: `${prefix}-${String(i).padStart(6, "0")}`,
    token: randomBytes(32).toString("hex"),
    pushMagic: randomUUID().toUpperCase(),
  }));
  await store.db.transaction(async (tx) => {
    for (let i = 0; i < rows.length; i += 200) {
      const chunk = rows.slice(i, i + 200);
      await tx.run(
        `INSERT INTO devices (id, topic, cert_fingerprint, authenticated_at, created_at) VALUES ${chunk.map(() => "(?, ?, ?, ?, ?)").join(", ")}`,
        chunk.flatMap((r) => [r.id, topic, `fp-${r.id}`, now, now]),
      );
      await tx.run(
        `INSERT INTO enrollments (id, device_id, type, enabled, topic, push_token, push_magic, token_update_count, created_at, updated_at, last_seen_at)
         VALUES ${chunk.map(() => "(?, ?, 'Device', 1, ?, ?, ?, 1, ?, ?, ?)").join(", ")}`,
        chunk.flatMap((r) => [r.id, r.id, topic, r.token, r.pushMagic, now, now, now]),
      );
    }
  });
  return rows;
}
