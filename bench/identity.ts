// node --import tsx bench/identity.ts [--runs 5]
//
// Mdm-Signature verifications/s: pkijs (the reference) against the hand-written fast
// path (src/identity/fast-signature.ts), for Apple's shape: RSA-2048, SHA-1, no signed
// attributes, BER with indefinite lengths, over a 1 KB body. Median of the runs; one
// core, sequential calls. Also the fast path's cost on a certificate it has not seen
// yet (parsed once, then cached), and with SHA-256 signed attributes.
import { parseArgs } from "node:util";
import { verifyFast } from "../src/identity/fast-signature.ts";
import { decodeSignatureHeader, verifyMdmSignatureDetailed, verifyMdmSignaturePkijs } from "../src/identity/signature.ts";
import { createCa, generateKeyPair, issueDeviceIdentity, signMdmBody } from "../src/identity/testing/pki.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "5" } } });
const RUNS = Number(values.runs);
const RUN_MS = 1000;

type Verify = (header: string, body: Buffer) => Promise<unknown>;

async function rate(verify: Verify, header: string, body: Buffer): Promise<number> {
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < RUN_MS) {
    for (let i = 0; i < 20; i++) await verify(header, body);
    n += 20;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (x: number) => Math.round(x).toLocaleString("en-US").padStart(9);

const body = Buffer.alloc(1024, "<key>Status</key><string>Idle</string>");
const ca = await createCa({ commonName: "Bench CA" });
const keyPair = await generateKeyPair("RSA");
const device = await issueDeviceIdentity(ca, { commonName: "bench-device", keyPair });
const apple = await signMdmBody(device, body); // SHA-1, no attributes, indefinite lengths
const withAttrs = await signMdmBody(device, body, { digest: "SHA-256", signedAttributes: true });
for (const header of [apple, withAttrs]) {
  if (verifyFast(decodeSignatureHeader(header), body) === null) throw new Error("the fast path handed the bench input to pkijs");
}

const paths: [string, Verify, string][] = [
  ["pkijs, SHA-1, no attributes", verifyMdmSignaturePkijs, apple],
  ["fast,  SHA-1, no attributes", verifyMdmSignatureDetailed, apple],
  ["pkijs, SHA-256 + attributes", verifyMdmSignaturePkijs, withAttrs],
  ["fast,  SHA-256 + attributes", verifyMdmSignatureDetailed, withAttrs],
];
const results = new Map<string, number[]>(paths.map(([name]) => [name, []]));
for (const [, verify, header] of paths) await rate(verify, header, body); // warm-up
for (let run = 0; run < RUNS; run++) {
  for (const [name, verify, header] of paths) results.get(name)!.push(await rate(verify, header, body));
}

// A certificate seen for the first time: X509Certificate + pkijs's certificate parse.
const fresh = await Promise.all(
  Array.from({ length: 200 }, async (_, i) => signMdmBody(await issueDeviceIdentity(ca, { commonName: `new-${i}`, keyPair }), body)),
);
const coldStart = performance.now();
for (const header of fresh) await verifyMdmSignatureDetailed(header, body);
const coldMs = (performance.now() - coldStart) / fresh.length;

console.log(`Mdm-Signature verification, 1 KB body, RSA-2048, median of ${RUNS} runs of ${RUN_MS} ms (verifications/s)`);
for (const [name, rates] of results) {
  console.log(
    `  ${name}  ${fmt(median(rates))}/s  (${(1000 / median(rates)).toFixed(3)} ms)   runs: ${rates.map((r) => Math.round(r)).join(" ")}`,
  );
}
const speedup = median(results.get(paths[1]![0])!) / median(results.get(paths[0]![0])!);
console.log(`  fast path speed-up, Apple's shape: ${speedup.toFixed(0)}x`);
console.log(`  fast path, first request with a new certificate: ${coldMs.toFixed(3)} ms`);
