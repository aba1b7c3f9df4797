// A temp dir of PEM files for tests that run the openssl command line against
// our identities: ca.pem, <name>.pem and <name>.key for each identity, and body.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PkiIdentity } from "./pki.ts";

export interface OpensslDir {
  /** The path of a file in the dir. */
  path(name: string): string;
  /** `openssl cms -sign` of the body by a named identity: DER SignedData, detached unless extra says otherwise. */
  sign(signer: string, extra: string[]): Buffer;
  remove(): void;
}

export function opensslDir(prefix: string, ca: PkiIdentity, identities: Record<string, PkiIdentity>, body: Buffer): OpensslDir {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const path = (name: string) => join(dir, name);
  writeFileSync(path("ca.pem"), ca.certPem);
  for (const [name, id] of Object.entries(identities)) {
    writeFileSync(path(`${name}.pem`), id.certPem);
    writeFileSync(path(`${name}.key`), id.keyPem);
  }
  writeFileSync(path("body"), body);
  return {
    path,
    sign(signer, extra) {
      const out = path("sig.der");
      execFileSync("openssl", [
        "cms",
        "-sign",
        "-binary",
        "-outform",
        "DER",
        "-in",
        path("body"),
        "-signer",
        path(`${signer}.pem`),
        "-inkey",
        path(`${signer}.key`),
        "-out",
        out,
        ...extra,
      ]);
      return readFileSync(out);
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
