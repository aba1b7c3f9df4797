// The CMS layers against independent implementations: OpenSSL's `cms` command
// (encrypts and signs what we read; decrypts and verifies what we write) and pkijs.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes, X509Certificate } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { cmsEngine } from "./engine.ts";
import { createCa, issueDeviceIdentity, type PkiIdentity } from "./testing/pki.ts";
import {
  buildCertsOnly,
  buildEnvelopedData,
  buildSignedData,
  CIPHERS,
  CmsError,
  decryptEnvelope,
  findSignerCertificate,
  parseEnvelopedData,
  parseSignedData,
  verifySigner,
  type CipherName,
} from "./cms.ts";
import { oidContent } from "./der.ts";
import type { Digest } from "./oids.ts";

let dir: string;
let ca: PkiIdentity;
let other: PkiIdentity;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-scep-cms-"));
  ca = await createCa({ commonName: "SCEP CMS Test CA" });
  other = await issueDeviceIdentity(ca, { commonName: "someone else" });
  fs.writeFileSync(path.join(dir, "ca.pem"), ca.certPem);
  fs.writeFileSync(path.join(dir, "ca.key"), ca.keyPem);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function openssl(args: string[], input?: Buffer): Buffer {
  return execFileSync("openssl", args, { input, stdio: ["pipe", "pipe", "pipe"] });
}

/** Whether this OpenSSL can load its legacy provider (single DES). */
function hasLegacyDes(): boolean {
  try {
    openssl(
      ["enc", "-des-cbc", "-K", "0123456789abcdef", "-iv", "0000000000000000", "-provider", "legacy", "-provider", "default"],
      Buffer.from("x"),
    );
    return true;
  } catch {
    return false;
  }
}

describe("der", () => {
  test("OID encoding matches asn1js", () => {
    for (const dotted of ["1.2.840.113549.1.7.1", "2.16.840.1.113733.1.9.7", "1.3.14.3.2.26", "2.5.4.3", "2.999.1234567"]) {
      const ours = oidContent(dotted);
      const theirs = Buffer.from(new asn1js.ObjectIdentifier({ value: dotted }).valueBlock.toBER());
      assert.deepEqual(ours, theirs, dotted);
    }
  });
});

describe("EnvelopedData", () => {
  const openSslCipher: Partial<Record<CipherName, string>> = {
    "des-ede3-cbc": "-des3",
    "aes-128-cbc": "-aes128",
    "aes-192-cbc": "-aes192",
    "aes-256-cbc": "-aes256",
  };

  for (const c of CIPHERS) {
    test(`${c.name}: ours round-trips, OpenSSL decrypts ours and we decrypt OpenSSL's`, (t) => {
      const content = randomBytes(700);
      const env = buildEnvelopedData(content, ca.cert, c.name);
      const parsed = parseEnvelopedData(env);
      assert.equal(parsed.cipher, c.name);
      assert.deepEqual(decryptEnvelope(parsed, ca.cert, ca.key), { content, cipher: c.name });

      const legacy = c.name === "des-cbc" ? ["-provider", "legacy", "-provider", "default"] : [];
      if (c.name === "des-cbc" && !hasLegacyDes()) {
        t.diagnostic("this OpenSSL has no legacy provider: single DES checked by round trip only");
        return;
      }
      const theirs = openssl(
        ["cms", "-decrypt", "-binary", "-inform", "DER", "-recip", path.join(dir, "ca.pem"), "-inkey", path.join(dir, "ca.key"), ...legacy],
        env,
      );
      assert.deepEqual(theirs, content);

      const flag = openSslCipher[c.name] ?? "-des";
      const fromOpenssl = openssl(["cms", "-encrypt", "-binary", "-outform", "DER", flag, ...legacy, path.join(dir, "ca.pem")], content);
      const p = parseEnvelopedData(fromOpenssl);
      assert.equal(p.cipher, c.name);
      assert.deepEqual(decryptEnvelope(p, ca.cert, ca.key).content, content);
    });
  }

  test("an envelope for another key, or with a damaged key or content, fails the same way", () => {
    const content = randomBytes(300);
    const forOther = parseEnvelopedData(buildEnvelopedData(content, other.cert, "aes-128-cbc"));
    const errors: string[] = [];
    // A wrong RSA key or padding gives a pseudo-random content key (implicit
    // rejection, rsa-pkcs1.ts), whose CBC padding is valid 1 time in 256: then
    // the content is garbage, never the sender's. Every error is the same one.
    const failOrGarbage = (fn: () => { content: Buffer }) => {
      try {
        assert.notDeepEqual(fn().content, content, "never the sender's content");
      } catch (err) {
        if (err instanceof assert.AssertionError) throw err;
        errors.push(
          messageOf(() => {
            throw err;
          }),
        );
      }
    };
    // Addressed to someone else entirely (the only recipient is tried).
    failOrGarbage(() => decryptEnvelope(forOther, ca.cert, ca.key));
    // Wrong RSA padding: a random encrypted key.
    const good = parseEnvelopedData(buildEnvelopedData(content, ca.cert, "aes-128-cbc"));
    const badPadding = { ...good, recipients: good.recipients.map((r) => ({ ...r, encryptedKey: randomBytes(r.encryptedKey.length) })) };
    failOrGarbage(() => decryptEnvelope(badPadding, ca.cert, ca.key));
    // Damaged content: the last byte of the block before the last flips the padding byte (CBC), so this one always fails.
    const damaged = { ...good, encryptedContent: Buffer.from(good.encryptedContent) };
    damaged.encryptedContent[damaged.encryptedContent.length - 17]! ^= 0x55;
    errors.push(messageOf(() => decryptEnvelope(damaged, ca.cert, ca.key)));
    assert.equal(new Set(errors).size, 1, `one answer for all: ${errors.join(" / ")}`);
    assert.match(errors[0]!, /cannot be decrypted/);
  });

  test("an unknown content cipher (AES-GCM here) is an unsupported algorithm", () => {
    const env = buildEnvelopedData(randomBytes(32), ca.cert, "aes-128-cbc");
    // aes128-CBC 2.16.840.1.101.3.4.1.2 -> aes128-GCM 2.16.840.1.101.3.4.1.6: same length, so the DER stays valid.
    const from = oidContent("2.16.840.1.101.3.4.1.2");
    const at = env.indexOf(from);
    assert.ok(at > 0);
    const patched = Buffer.from(env);
    oidContent("2.16.840.1.101.3.4.1.6").copy(patched, at);
    const parsed = parseEnvelopedData(patched);
    assert.equal(parsed.cipher, undefined);
    assert.throws(
      () => decryptEnvelope(parsed, ca.cert, ca.key),
      (e: unknown) => e instanceof CmsError && e.kind === "unsupported-algorithm",
    );
  });
});

describe("SignedData", () => {
  for (const digest of ["sha1", "sha256", "sha512"] as Digest[]) {
    test(`${digest}: pkijs and OpenSSL verify ours; we verify OpenSSL's`, async () => {
      const content = randomBytes(500);
      const sd = buildSignedData({ content, signerCert: ca.cert, signerKey: ca.key, digest, attributes: [] });
      // pkijs
      const info = new pkijs.ContentInfo({ schema: asn1js.fromBER(new Uint8Array(sd)).result });
      const signed = new pkijs.SignedData({ schema: info.content });
      const ok = await signed.verify({ signer: 0, checkChain: false, extendedMode: true }, cmsEngine);
      assert.equal(ok.signatureVerified, true);
      // OpenSSL (also checks the DER of the signed attributes' SET OF)
      const out = openssl(["cms", "-verify", "-binary", "-inform", "DER", "-CAfile", path.join(dir, "ca.pem"), "-purpose", "any"], sd);
      assert.deepEqual(out, content);
      // ours, on ours
      const parsed = parseSignedData(sd);
      const signer = parsed.signers[0]!;
      assert.equal(verifySigner(signer, findSignerCertificate(parsed, signer)!.key, parsed.eContent!), digest);

      // ours, on OpenSSL's
      const fromOpenssl = openssl(
        [
          "cms",
          "-sign",
          "-binary",
          "-nodetach",
          "-outform",
          "DER",
          "-md",
          digest,
          "-signer",
          path.join(dir, "ca.pem"),
          "-inkey",
          path.join(dir, "ca.key"),
        ],
        content,
      );
      const p = parseSignedData(fromOpenssl);
      assert.deepEqual(p.eContent, content);
      const s = p.signers[0]!;
      const cert = findSignerCertificate(p, s);
      assert.ok(cert);
      assert.equal(verifySigner(s, cert.key, p.eContent!), digest);
      assert.throws(() => verifySigner(s, cert.key, Buffer.concat([content, Buffer.from("x")])), /message digest/);
      assert.throws(() => verifySigner(s, other.publicKey, content), /does not verify/);
    });
  }

  test("a SignedData without content verifies over the empty string (a CertRep FAILURE)", () => {
    const sd = buildSignedData({ signerCert: ca.cert, signerKey: ca.key, digest: "sha256", attributes: [] });
    const parsed = parseSignedData(sd);
    assert.equal(parsed.eContent, undefined);
    verifySigner(parsed.signers[0]!, ca.cert.publicKey, Buffer.alloc(0));
  });

  test("a degenerate certs-only SignedData carries the certificates, and OpenSSL reads it", () => {
    const der = buildCertsOnly([other.certDer, ca.certDer]);
    const parsed = parseSignedData(der);
    assert.deepEqual(
      new Set(parsed.certificates.map((c) => createHash("sha256").update(c).digest("hex"))),
      new Set([other.fingerprint, ca.fingerprint]),
    );
    assert.equal(parsed.signers.length, 0);
    const pem = openssl(["pkcs7", "-inform", "DER", "-print_certs"], der).toString();
    assert.equal((pem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
    for (const c of parsed.certificates) new X509Certificate(c);
  });
});

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return `${(err as CmsError).kind}: ${(err as Error).message}`;
  }
  return "no error";
}
