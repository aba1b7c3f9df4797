// The SCEP CA without HTTP: every request kind, every refusal, and a fuzz of the
// parser, against a real store on both backends.
import assert from "node:assert/strict";
import { createHash, generateKeyPair as generateKeyPairCb, randomBytes, type X509Certificate } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { DeviceCa } from "../enroll/device-ca.ts";
import { createCa, generateKeyPair, issueDeviceIdentity, pkiIdentity, type KeyPair, type PkiIdentity } from "../identity/testing/pki.ts";
import { openStore, type Store } from "../store/index.ts";
import { Rng } from "../../test/support/fuzz.ts";
import { createTestDatabase, forEachBackend } from "../../test/support/postgres.ts";
import { ScepChallenges } from "./challenges.ts";
import { buildEnvelopedData, CIPHERS, parseEnvelopedData, parseSignedData } from "../identity/cms.ts";
import type { Digest } from "../identity/oids.ts";
import { decodeCertRep, encodePkiRequest, FailInfo, MessageType, PkiStatus, ScepMalformed } from "./message.ts";
import { ScepService, type ScepLog } from "./service.ts";
import { buildCsr, buildPkiRequest, commonNameSubject, readCertRep, ScepRefused, selfSignedSigner } from "./testing/client.ts";

const keygen = promisify(generateKeyPairCb);

/** Collects log lines; a challenge must never appear in one. */
function memoryLog(): ScepLog & { lines: string[] } {
  const lines: string[] = [];
  const write = (obj: unknown, msg?: string) => void lines.push(JSON.stringify({ obj, msg }));
  return { lines, info: write, warn: write } as unknown as ScepLog & { lines: string[] };
}

await forEachBackend("SCEP service", (backend) => {
  let store: Store;
  let drop: (() => Promise<void>) | undefined;
  let dir: string;
  let ca: DeviceCa;
  let service: ScepService;
  let challenges: ScepChallenges;
  let key: KeyPair;
  let key2: KeyPair;
  let selfSigned: X509Certificate;
  const log = memoryLog();

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-scep-service-"));
    let storage: string | undefined;
    if (backend === "postgres") {
      const db = await createTestDatabase();
      storage = db.url;
      drop = db.drop;
    }
    [store, ca, key, key2] = await Promise.all([
      openStore(storage, dir),
      DeviceCa.create("SCEP Service Test CA"),
      generateKeyPair(),
      generateKeyPair(),
    ]);
    service = new ScepService({ store, deviceCa: ca });
    challenges = new ScepChallenges(store, 60_000);
    selfSigned = await selfSignedSigner(key);
  });
  after(async () => {
    await store.close();
    await drop?.();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  interface Req {
    messageType?: number;
    challenge?: string;
    csrDer?: Buffer;
    signer?: { cert: X509Certificate; key: KeyPair["privateKey"] };
    csrKey?: KeyPair;
    cipher?: (typeof CIPHERS)[number]["name"];
    digest?: Digest;
    transactionId?: string;
    cn?: string;
  }

  function request(r: Req = {}) {
    const csrKey = r.csrKey ?? key;
    const csrDer = r.csrDer ?? buildCsr({ key: csrKey, subjectDer: commonNameSubject(r.cn ?? "unit-device"), challenge: r.challenge });
    const signer = r.signer ?? { cert: selfSigned, key: key.privateKey };
    const built = buildPkiRequest({
      messageType: r.messageType ?? MessageType.PKCSReq,
      csrDer,
      signer,
      recipient: ca.cert,
      cipher: r.cipher,
      digest: r.digest,
      transactionId: r.transactionId,
    });
    return { ...built, signer };
  }

  async function send(r: Req = {}): Promise<X509Certificate> {
    const req = request(r);
    const body = await service.pkiOperation(req.der, log);
    return readCertRep(body, { ca: ca.cert, signer: req.signer, transactionId: req.transactionId, senderNonce: req.senderNonce }).cert;
  }

  async function refusal(r: Req | Buffer, expected: keyof typeof FailInfo): Promise<void> {
    const req = Buffer.isBuffer(r) ? undefined : request(r);
    const body = await service.pkiOperation(req?.der ?? (r as Buffer), log);
    const rep = decodeCertRep(body);
    assert.equal(rep.status, PkiStatus.FAILURE);
    assert.equal(rep.failInfo, FailInfo[expected], `failInfo ${rep.failInfo}, expected ${expected}`);
    assert.equal(rep.envelope, undefined, "a FAILURE carries no envelope");
    if (req) {
      assert.equal(rep.transactionId, req.transactionId);
      assert.deepEqual(rep.recipientNonce, req.senderNonce);
      // Still a signed answer the client can check.
      assert.throws(
        () => readCertRep(body, { ca: ca.cert, signer: req.signer, transactionId: req.transactionId, senderNonce: req.senderNonce }),
        (e: unknown) => e instanceof ScepRefused && e.failInfo === expected,
      );
    }
  }

  test("PKCSReq with a fresh challenge, every cipher and digest: the certificate is the CSR's subject and key, from the device CA", async () => {
    for (const c of CIPHERS) {
      for (const digest of ["sha1", "sha256", "sha512"] as Digest[]) {
        const { challenge } = await challenges.create();
        const cert = await send({ challenge, cipher: c.name, digest, cn: `dev-${c.name}-${digest}` });
        assert.ok(cert.verify(ca.cert.publicKey));
        assert.ok(cert.checkIssued(ca.cert));
        assert.equal(cert.subject, `CN=dev-${c.name}-${digest}`);
        assert.ok(cert.publicKey.export({ type: "spki", format: "der" }).equals(key.publicKey.export({ type: "spki", format: "der" })));
        const fp = createHash("sha256").update(cert.raw).digest("hex");
        const rec = await store.scep.certificateByFingerprint(fp);
        assert.equal(rec?.requestType, "PKCSReq");
        assert.equal(rec?.serialNumber, cert.serialNumber.toLowerCase());
        assert.equal(rec?.deviceId, null);
      }
    }
    // The reply uses the client's digest.
    const { challenge } = await challenges.create();
    const req = request({ challenge, digest: "sha1" });
    assert.equal(decodeCertRep(await service.pkiOperation(req.der, log)).digest, "sha1");
  });

  test("a challenge works once; unknown, expired, missing and reused challenges are refused with badRequest", async () => {
    const { challenge } = await challenges.create();
    await send({ challenge });
    // Reused, by another key (another device).
    await refusal({ challenge, csrKey: key2, signer: { cert: await selfSignedSigner(key2), key: key2.privateKey } }, "badRequest");
    await refusal({ challenge: "0".repeat(40) }, "badRequest");
    await refusal({}, "badRequest");
    const expired = await challenges.create(1);
    await new Promise((r) => setTimeout(r, 5));
    await refusal({ challenge: expired.challenge }, "badRequest");
    assert.equal(await store.scep.challengeState(createHash("sha256").update(expired.challenge).digest("hex"), Date.now()), "expired");
    const events = await store.events.list({ type: "scep.refused", limit: 100 });
    const reasons = events.map((e) => e.detail?.reason);
    assert.ok(reasons.includes("challenge password already used"));
    assert.ok(reasons.includes("challenge password expired"));
    assert.ok(reasons.includes("unknown challenge password"));
    for (const line of log.lines) assert.ok(!line.includes(challenge) && !line.includes(expired.challenge), "a challenge reached the log");
    for (const e of events) assert.ok(!JSON.stringify(e).includes(challenge), "a challenge reached an event");
  });

  test("many concurrent requests with one challenge: exactly one certificate", async () => {
    const { challenge } = await challenges.create();
    const signer = { cert: await selfSignedSigner(key2), key: key2.privateKey };
    const reqs = Array.from({ length: 8 }, (_, i) => request({ challenge, csrKey: key2, signer, cn: `race-${i}` }));
    const bodies = await Promise.all(reqs.map((r) => service.pkiOperation(r.der, log)));
    const statuses = bodies.map((b) => decodeCertRep(b).status);
    assert.equal(statuses.filter((s) => s === PkiStatus.SUCCESS).length, 1, `statuses ${statuses}`);
  });

  test("a resent PKCSReq (same transaction, same key) gets the same certificate again", async () => {
    const { challenge } = await challenges.create();
    const first = await send({ challenge, transactionId: "resend-1" });
    const again = await send({ challenge, transactionId: "resend-1" });
    assert.equal(again.fingerprint256, first.fingerprint256);
    // Another key with that transaction id and the spent challenge: refused.
    await refusal({ challenge, transactionId: "resend-1", csrKey: key2 }, "badRequest");
  });

  test("a transactionID outside PrintableString's alphabet comes back unchanged (as UTF8String)", async () => {
    const { challenge } = await challenges.create();
    const req = request({ challenge, transactionId: "tx_with*odd@chars" });
    const body = await service.pkiOperation(req.der, log);
    assert.equal(decodeCertRep(body).transactionId, "tx_with*odd@chars");
    assert.ok(body.includes(Buffer.from([0x0c, 17, ...Buffer.from("tx_with*odd@chars")])));
  });

  test("unsupported message types get badRequest", async () => {
    const { challenge } = await challenges.create();
    for (const messageType of [MessageType.CertPoll, MessageType.GetCert, MessageType.GetCRL, MessageType.CertRep, 99]) {
      await refusal({ messageType, challenge }, "badRequest");
    }
    // The challenge was not spent by any of them.
    await send({ challenge });
  });

  test("integrity: a wrong signature, a damaged or misaddressed envelope, a CSR not signed by its key", async () => {
    const { challenge } = await challenges.create();
    // Signed by a key that is not the signer certificate's.
    await refusal({ challenge, signer: { cert: selfSigned, key: key2.privateKey } }, "badMessageCheck");
    // Envelope for someone else.
    const other = await createCa({ commonName: "not the device CA", keyPair: key2 });
    const csrDer = buildCsr({ key, subjectDer: commonNameSubject("x"), challenge });
    const misaddressed = buildPkiRequest({
      messageType: MessageType.PKCSReq,
      csrDer,
      signer: { cert: selfSigned, key: key.privateKey },
      recipient: other.cert,
    });
    await refusal(misaddressed.der, "badMessageCheck");
    // A CSR whose signature does not match its key.
    const forged = buildCsr({ key, subjectDer: commonNameSubject("x"), challenge });
    forged[forged.length - 5]! ^= 0x01;
    await refusal({ csrDer: forged }, "badMessageCheck");
    // The message's own signature bytes damaged.
    const req = request({ challenge });
    const sigAt = req.der.length - 20;
    const damaged = Buffer.from(req.der);
    damaged[sigAt]! ^= 0x01;
    await refusal(damaged, "badMessageCheck");
    // None of it spent the challenge.
    await send({ challenge });
  });

  test("bad RSA padding in the key transport answers exactly like a wrong key (no padding oracle)", async () => {
    const { challenge } = await challenges.create();
    const csrDer = buildCsr({ key, subjectDer: commonNameSubject("x"), challenge });
    const other = await createCa({ commonName: "someone else", keyPair: key2 });
    const signer = { cert: selfSigned, key: key.privateKey };
    const answers = new Set<string>();
    for (let i = 0; i < 6; i++) {
      // Encrypted to another key entirely.
      const misaddressed = buildPkiRequest({ messageType: MessageType.PKCSReq, csrDer, signer, recipient: other.cert }).der;
      // Encrypted to the CA, then the encrypted key replaced by random bytes
      // (the padding is wrong), and signed again: everything else is right.
      const env = parseSignedData(buildPkiRequest({ messageType: MessageType.PKCSReq, csrDer, signer, recipient: ca.cert }).der).eContent!;
      const ek = parseEnvelopedData(env).recipients[0]!.encryptedKey;
      const mangled = Buffer.from(env);
      randomBytes(ek.length).copy(mangled, mangled.indexOf(ek));
      const badPadding = encodePkiRequest({
        messageType: MessageType.PKCSReq,
        transactionId: `pad-${i}`,
        senderNonce: randomBytes(16),
        digest: "sha256",
        envelope: mangled,
        signer,
      });
      for (const [what, der] of [
        ["wrong key", misaddressed],
        ["bad padding", badPadding],
      ] as const) {
        const rep = decodeCertRep(await service.pkiOperation(der, log));
        answers.add(`${rep.status}/${rep.failInfo}`);
        assert.equal(rep.failInfo, FailInfo.badMessageCheck, what);
      }
    }
    assert.deepEqual([...answers], [`${PkiStatus.FAILURE}/${FailInfo.badMessageCheck}`]);
    // The challenge was not spent.
    await send({ challenge });
  });

  test("keys the device CA will not certify: EC, or RSA below 2048 bits", async () => {
    const { challenge } = await challenges.create();
    const ec = await keygen("ec", { namedCurve: "P-256" });
    const small = await keygen("rsa", { modulusLength: 1024 });
    await refusal({ challenge, csrKey: small }, "badRequest");
    // An EC CSR cannot be built by buildCsr's RSA signature OIDs; a CSR with an EC key signed "as RSA" is refused too.
    const spkiSwapped = buildCsr({
      key: { privateKey: key.privateKey, publicKey: ec.publicKey },
      subjectDer: commonNameSubject("ec"),
      challenge,
    });
    await refusal({ csrDer: spkiSwapped }, "badRequest");
    await send({ challenge });
  });

  test("RenewalReq: signed with a current device certificate; rebinding the device; once per certificate", async () => {
    const { challenge } = await challenges.create();
    const first = pkiIdentity(await send({ challenge, cn: "renew-me" }), key);
    // Bind a device to it, as Authenticate would.
    const udid = `UDID-${randomBytes(4).toString("hex")}`;
    await store.enrollments.authenticate({
      deviceId: udid,
      topic: "t",
      facts: {},
      certFingerprint: first.fingerprint,
      message: Buffer.from("m"),
      now: Date.now(),
    });

    const renewReq = (current: PkiIdentity, newKey: KeyPair = key, transactionId?: string) =>
      request({
        messageType: MessageType.RenewalReq,
        csrDer: buildCsr({ key: newKey, subjectDer: commonNameSubject("renew-me") }),
        signer: { cert: current.cert, key: current.key },
        transactionId,
      });
    const req = renewReq(first, key2, "renewal-1");
    const second = readCertRep(await service.pkiOperation(req.der, log), {
      ca: ca.cert,
      signer: req.signer,
      transactionId: req.transactionId,
      senderNonce: req.senderNonce,
    }).cert;
    const secondFp = createHash("sha256").update(second.raw).digest("hex");
    assert.equal(second.subject, "CN=renew-me");
    assert.notEqual(secondFp, first.fingerprint);
    assert.equal((await store.enrollments.bindingOf(udid))?.fingerprint, secondFp, "the device is bound to the new certificate");
    assert.equal(await store.enrollments.deviceByCertFingerprint(first.fingerprint), undefined);
    const rec = await store.scep.certificateByFingerprint(secondFp);
    assert.equal(rec?.requestType, "RenewalReq");
    assert.equal(rec?.deviceId, udid);
    assert.equal(rec?.renewedFrom, first.fingerprint);
    const events = await store.events.list({ type: "scep.renewed", enrollmentId: udid, limit: 10 });
    assert.equal(events.length, 1);

    // The same request again (lost answer): the same certificate, no second rebinding.
    const resent = renewReq(first, key2, "renewal-1");
    const again = readCertRep(await service.pkiOperation(resent.der, log), {
      ca: ca.cert,
      signer: resent.signer,
      transactionId: resent.transactionId,
      senderNonce: resent.senderNonce,
    }).cert;
    assert.equal(again.fingerprint256, second.fingerprint256);
    assert.equal((await store.enrollments.bindingOf(udid))?.fingerprint, secondFp);
  });

  test("RenewalReq refusals: a self-signed or foreign signer, another subject, no enrolled device bound, a certificate renewed already", async () => {
    await refusal({ messageType: MessageType.RenewalReq }, "badRequest"); // self-signed
    const foreignCa = await createCa({ commonName: "foreign CA", keyPair: key2 });
    const foreign = await issueDeviceIdentity(foreignCa, { commonName: "renew-me", keyPair: key });
    await refusal({ messageType: MessageType.RenewalReq, signer: { cert: foreign.cert, key: foreign.key } }, "badRequest");

    const { challenge } = await challenges.create();
    const current = pkiIdentity(await send({ challenge, cn: "keep-subject" }), key);
    const signer = { cert: current.cert, key: current.key };
    const otherSubject = buildCsr({ key, subjectDer: commonNameSubject("someone-else") });
    await refusal({ messageType: MessageType.RenewalReq, csrDer: otherSubject, signer }, "badRequest");
    const csrDer = buildCsr({ key, subjectDer: commonNameSubject("keep-subject") });
    // No enrolled device is bound to it (never enrolled, or removed): it does not renew, or it would for ever.
    await refusal({ messageType: MessageType.RenewalReq, csrDer, signer, transactionId: "r-unbound" }, "badRequest");
    await store.enrollments.authenticate({
      deviceId: `UDID-${randomBytes(4).toString("hex")}`,
      topic: "t",
      facts: {},
      certFingerprint: current.fingerprint,
      message: Buffer.from("m"),
      now: Date.now(),
    });
    await send({ messageType: MessageType.RenewalReq, csrDer, signer, transactionId: "r-a" });
    // Nor does the certificate of a device that checked out (removed its management profile).
    const leaving = pkiIdentity(await send({ challenge: (await challenges.create()).challenge, cn: "leaving" }), key);
    const leavingUdid = `UDID-${randomBytes(4).toString("hex")}`;
    const bind = { topic: "t", facts: {}, message: Buffer.from("m"), now: Date.now() };
    await store.enrollments.authenticate({ ...bind, deviceId: leavingUdid, certFingerprint: leaving.fingerprint });
    await store.enrollments.checkOut(leavingUdid, Date.now());
    const leavingCsr = buildCsr({ key, subjectDer: commonNameSubject("leaving") });
    const leavingSigner = { cert: leaving.cert, key: leaving.key };
    await refusal({ messageType: MessageType.RenewalReq, csrDer: leavingCsr, signer: leavingSigner, transactionId: "r-out" }, "badRequest");
    // A second renewal of the same certificate, as another transaction: refused.
    await refusal({ messageType: MessageType.RenewalReq, csrDer, signer, transactionId: "r-b" }, "badRequest");
    // An expired certificate of the device CA cannot renew.
    const expired = await ca.issue({
      subjectDer: commonNameSubject("keep-subject"),
      publicKeyDer: key.publicKey.export({ type: "spki", format: "der" }),
      days: 0,
    });
    assert.ok(Date.parse(expired.validTo) < Date.now());
    await refusal(
      { messageType: MessageType.RenewalReq, csrDer, signer: { cert: expired, key: key.privateKey }, transactionId: "r-c" },
      "badRequest",
    );
  });

  test("PKCSReq signed with an existing device certificate still needs a challenge", async () => {
    const { challenge } = await challenges.create();
    const current = pkiIdentity(await send({ challenge, cn: "pkcsreq-existing" }), key);
    await refusal({ signer: { cert: current.cert, key: current.key } }, "badRequest");
    const fresh = await challenges.create();
    await send({ challenge: fresh.challenge, signer: { cert: current.cert, key: current.key } });
  });

  // The parser does not depend on the backend: fuzzed on SQLite only.
  if (backend === "sqlite")
    test("fuzz: random bytes, truncations and bit flips answer a CertRep or ScepMalformed, nothing else", async () => {
      const rng = new Rng(8894);
      const { challenge } = await challenges.create();
      const valid = request({ challenge }).der;
      const inputs: Buffer[] = [Buffer.alloc(0), Buffer.from([0x30]), Buffer.from([0x30, 0x80]), Buffer.from("not der at all")];
      for (let i = 0; i < 60; i++) inputs.push(randomBytes(rng.int(200)));
      for (let i = 0; i < 120; i++) inputs.push(valid.subarray(0, rng.int(valid.length)));
      for (let i = 0; i < 250; i++) {
        const b = Buffer.from(valid);
        for (let n = 1 + rng.int(3); n > 0; n--) b[rng.int(b.length)]! ^= 1 << rng.int(8);
        inputs.push(b);
      }
      // Nested definite lengths that claim too much, deep nesting.
      inputs.push(Buffer.concat([Buffer.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]), randomBytes(10)]));
      inputs.push(Buffer.concat(Array.from({ length: 200 }, () => Buffer.from([0x30, 0x80]))));
      let replies = 0;
      for (const input of inputs) {
        try {
          decodeCertRep(await service.pkiOperation(input, log));
          replies++;
        } catch (err) {
          if (!(err instanceof ScepMalformed)) throw new Error(`input ${input.toString("base64").slice(0, 80)}… threw ${String(err)}`);
        }
      }
      assert.ok(replies > 0, "some mutations still decode as a SCEP message");

      // The inner layers are reached only under a valid signature: damage the
      // EnvelopedData, or the CSR inside it, and sign the result properly. Every
      // one of these must get a CertRep (the outer message is well formed).
      const { challenge: c2 } = await challenges.create();
      const csr = buildCsr({ key, subjectDer: commonNameSubject("fuzz"), challenge: c2 });
      const env = buildEnvelopedData(csr, ca.cert, "aes-128-cbc");
      const signer = { cert: selfSigned, key: key.privateKey };
      const mutate = (b: Buffer): Buffer => {
        if (rng.chance(0.25)) return b.subarray(0, rng.int(b.length));
        const m = Buffer.from(b);
        for (let n = 1 + rng.int(3); n > 0; n--) m[rng.int(m.length)] = rng.int(256);
        return m;
      };
      for (let i = 0; i < 150; i++) {
        const envelope = i % 2 === 0 ? mutate(env) : buildEnvelopedData(mutate(csr), ca.cert, "aes-128-cbc");
        const der = encodePkiRequest({
          messageType: MessageType.PKCSReq,
          transactionId: `fuzz-${i}`,
          senderNonce: randomBytes(16),
          digest: "sha256",
          envelope,
          signer,
        });
        const rep = decodeCertRep(await service.pkiOperation(der, log));
        assert.ok(rep.status === PkiStatus.FAILURE || rep.status === PkiStatus.SUCCESS);
      }
    });
});
