// The test device CA: test servers trust it (startTestServer passes it as --ca)
// and test devices (testFleet, identity()) get their identities from it, so
// that the suite runs against the closed default trust, not the lab opt-in.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createCa, generateKeyPair, type CaIdentity, type KeyPair } from "../../src/identity/testing/pki.ts";

export interface TestDeviceCa {
  ca: CaIdentity;
  /** A key the test devices share (RSA key generation is slow). */
  key: KeyPair;
  /** The CA certificate, PEM, for --ca. */
  caFile: string;
}

let made: Promise<TestDeviceCa> | undefined;

/** One per test process, made on first use; its file is removed when the process exits. */
export function testDeviceCa(): Promise<TestDeviceCa> {
  made ??= (async () => {
    const key = await generateKeyPair();
    const ca = await createCa({ commonName: "Orchard Test Device CA", keyPair: key });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-test-ca-"));
    const caFile = path.join(dir, "ca.pem");
    fs.writeFileSync(caFile, ca.certPem);
    process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    return { ca, key, caFile };
  })();
  return made;
}

/** The server flags that make a test server trust the test device CA, unless the test chose its own trust. */
export async function trustArgs(args: readonly string[]): Promise<string[]> {
  if (args.includes("--ca") || args.includes("--insecure-accept-any-device-cert")) return [];
  return ["--ca", (await testDeviceCa()).caFile];
}
