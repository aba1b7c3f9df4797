// Issues device certificates for the enroll scenario in a child process, so
// that issuing thousands of them (mostly @peculiar/x509's JavaScript) uses
// every core: bench/fleet.ts forks one per core and gives each a share.
//
// IPC: receives one IssueJob, answers with IssueDone (the certificates' PEMs,
// in order) and exits.
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { issueDeviceIdentity, type CaIdentity } from "../src/identity/testing/pki.ts";
import { certFingerprint } from "../src/identity/fingerprint.ts";

export interface IssueJob {
  caCertPem: string;
  caKeyPem: string;
  /** PKCS#8 PEM of the key every certificate shares. */
  keyPem: string;
  commonNames: string[];
  concurrency: number;
}

export type IssueDone = { certPems: string[] } | { error: string };

export async function issueCertificates(job: IssueJob): Promise<string[]> {
  const caCert = new X509Certificate(job.caCertPem);
  const caKey = createPrivateKey(job.caKeyPem);
  const ca: CaIdentity = {
    commonName: "bench CA",
    certPem: job.caCertPem,
    certDer: caCert.raw,
    keyPem: job.caKeyPem,
    cert: caCert,
    key: caKey,
    publicKey: createPublicKey(caKey),
    fingerprint: certFingerprint(caCert),
  };
  const privateKey = createPrivateKey(job.keyPem);
  const keyPair = { privateKey, publicKey: createPublicKey(privateKey) };
  const out = new Array<string>(job.commonNames.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(job.concurrency, job.commonNames.length) }, async () => {
      while (next < job.commonNames.length) {
        const i = next++;
        out[i] = (await issueDeviceIdentity(ca, { commonName: job.commonNames[i]!, keyPair })).certPem;
      }
    }),
  );
  return out;
}

// Only as a forked child's entry point (fleet.ts also imports issueCertificates).
if (process.send && process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.once("message", (job: IssueJob) => {
    issueCertificates(job).then(
      (certPems) => process.send!({ certPems } satisfies IssueDone, () => process.exit(0)),
      (err: unknown) =>
        process.send!({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies IssueDone, () =>
          process.exit(1),
        ),
    );
  });
}
