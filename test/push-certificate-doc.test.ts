// docs/push-certificate.md is a tested script: every ```sh block runs, in
// order, with bash in one directory, against a running Orchard. What Apple
// and the community signing service do between the blocks (issue mdm.cer,
// the push certificate, the encrypted signed request) is stood in for by a
// test PKI shaped like Apple's, made just before the block that needs it.
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createPrivateKey, createPublicKey } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { createCa, generateKeyPair, issueDeviceIdentity, type KeyPair, type PkiIdentity } from "../src/identity/testing/pki.ts";
import { issuePushCertificate } from "../src/identity/testing/push-cert.ts";
import { parsePlistDict } from "../src/plist/index.ts";
import { signPushCertRequest } from "../src/push/vendor-sign.ts";
import { TEST_TOPIC } from "./support/apns.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const DOC = path.join(ROOT, "docs", "push-certificate.md");
const tools = ["bash", "openssl", "xxd"].filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);

/** The ```sh blocks of a Markdown file, their list indentation removed. */
function shBlocks(markdown: string): string[] {
  const blocks: string[] = [];
  for (const m of markdown.matchAll(/^( *)```sh\n([\s\S]*?)^ *```$/gm)) {
    const indent = m[1]!.length;
    blocks.push(
      m[2]!
        .split("\n")
        .map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
        .join("\n"),
    );
  }
  return blocks;
}

let tmp: string;
let server: TestServer;
let root: PkiIdentity;
let wwdr: PkiIdentity;
let pushCa: PkiIdentity;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orchard-pushcert-doc-"));
  const bin = path.join(tmp, ".bin");
  fs.mkdirSync(bin);
  // `npx orchard` as in a checkout: this repository's bin/orchard.js (never the registry).
  fs.writeFileSync(
    path.join(bin, "npx"),
    `#!/bin/sh\n[ "$1" = orchard ] || { echo "test npx: only orchard" >&2; exit 127; }\nshift\nexec "${process.execPath}" "${path.join(ROOT, "bin", "orchard.js")}" "$@"\n`,
    { mode: 0o755 },
  );
  const [k1, k2, k3] = await Promise.all([generateKeyPair(), generateKeyPair(), generateKeyPair()]);
  root = await createCa({ commonName: "Test Apple Root CA", keyPair: k1 });
  wwdr = await createCa({ commonName: "Test Apple Worldwide Developer Relations CA", issuer: root, keyPair: k2 });
  pushCa = await createCa({ commonName: "Test Apple Push CA", keyPair: k3 });
  server = await startTestServer();
});
after(async () => {
  await server?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const file = (name: string) => path.join(tmp, name);
const keyPairOf = (keyFile: string): KeyPair => {
  const privateKey = createPrivateKey(fs.readFileSync(file(keyFile)));
  return { privateKey, publicKey: createPublicKey(privateKey) };
};

/** bash -e on a block, asynchronously: the server under test runs in this process. */
function bash(script: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-e", "-o", "pipefail", "-c", script], { cwd: tmp, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/** What Apple and the signing service would have handed over by the time this block runs. */
async function standIns(block: string): Promise<{ expectRequest?: string }> {
  for (const [i, name] of [...block.matchAll(/--chain (\S+)/g)].map((m) => m[1]!).entries()) {
    if (!fs.existsSync(file(name))) fs.writeFileSync(file(name), (i === 0 ? wwdr : root).certDer);
  }
  const vendor = /--vendor-cert (\S+) --vendor-key (\S+)/.exec(block);
  if (vendor && !fs.existsSync(file(vendor[1]!))) {
    const id = await issueDeviceIdentity(wwdr, {
      commonName: "MDM Vendor: Example Org",
      keyPair: keyPairOf(vendor[2]!),
      extendedKeyUsages: null,
    });
    fs.writeFileSync(file(vendor[1]!), id.certDer); // the developer portal's mdm.cer is DER
  }
  for (const m of block.matchAll(/^cat (\S+) (\S+) > \S+$/gm)) {
    if (fs.existsSync(file(m[1]!))) continue;
    const cert = await issuePushCertificate(pushCa, { topic: TEST_TOPIC, keyPair: keyPairOf(m[2]!) });
    fs.writeFileSync(file(m[1]!), cert.certPem);
  }
  if (block.includes("mdm_signed_request.*.plist.b64.p7")) {
    // The service's answer: the signed request, in a PKCS#7 envelope for mdmcert.crt, hex-encoded.
    const vendorId = await issueDeviceIdentity(wwdr, { commonName: "MDM Vendor: Community Service", extendedKeyUsages: null });
    const request = await signPushCertRequest({
      csr: fs.readFileSync(file("push.csr")),
      vendorCert: vendorId.certDer,
      vendorKey: Buffer.from(vendorId.keyPem),
      chain: [wwdr.certDer, root.certDer],
    });
    fs.writeFileSync(file("answer.plain"), request.encoded);
    execFileSync(
      "openssl",
      ["cms", "-encrypt", "-binary", "-aes256", "-outform", "DER", "-in", "answer.plain", "-out", "answer.p7", "mdmcert.crt"],
      { cwd: tmp },
    );
    fs.writeFileSync(file("mdm_signed_request.20261203_120000_123.plist.b64.p7"), fs.readFileSync(file("answer.p7")).toString("hex"));
    return { expectRequest: request.encoded };
  }
  return {};
}

test("every sh block of docs/push-certificate.md runs, in order, and ends with the certificate in Orchard", {
  skip: tools.length > 0 && `needs ${tools.join(", ")}`,
}, async () => {
  const blocks = shBlocks(fs.readFileSync(DOC, "utf8"));
  const all = blocks.join("\n");
  for (const form of [
    "npx orchard pushcert csr",
    "npx orchard pushcert sign",
    "npx orchard pushcert upload",
    "npx orchard pushcert show",
  ]) {
    assert.ok(all.includes(form), `the page shows ${form}`);
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${path.join(tmp, ".bin")}:${process.env.PATH}`,
    ORCHARD_URL: server.url,
    ORCHARD_API_KEY: "test-api-key-0123456789abcdef",
  };
  delete env.ORCHARD_DATA_DIR;
  let show = "";
  for (const block of blocks) {
    const { expectRequest } = await standIns(block);
    const r = await bash(block, env);
    assert.equal(r.status, 0, `block failed:\n${block}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
    if (block.includes("pushcert show")) show = r.stdout;
    if (expectRequest)
      assert.equal(fs.readFileSync(file("push-request.b64"), "utf8"), expectRequest, "the service's answer opens to the signed request");
  }

  assert.equal(fs.statSync(file("push.key")).mode & 0o777, 0o600);
  const plist = parsePlistDict(Buffer.from(fs.readFileSync(file("push-2027-request.b64"), "utf8"), "base64"));
  assert.deepEqual(Object.keys(plist).sort(), ["PushCertCertificateChain", "PushCertRequestCSR", "PushCertSignature"]);
  assert.match(show, new RegExp(`^TOPIC .*\\n${TEST_TOPIC.replace(/\./g, "\\.")}\\s+\\S+ \\S+\\s+36[45]\\s`, "m"));
  // The renewal replaced the first certificate: one topic, the 2027 one's fingerprint.
  const stored = (await server.api("GET", "/v1/pushcert")).json.push_certs;
  assert.equal(stored.length, 1);
  const renewed = execFileSync("openssl", ["x509", "-in", "MDM_Certificate_2027.pem", "-noout", "-fingerprint", "-sha256"], {
    cwd: tmp,
  }).toString();
  assert.equal(stored[0].fingerprint, renewed.split("=")[1]!.trim().replace(/:/g, "").toLowerCase());
});

test("the inline openssl form of the CSR works too", { skip: tools.length > 0 && `needs ${tools.join(", ")}` }, () => {
  const doc = fs.readFileSync(DOC, "utf8");
  const inline = /`(openssl req -new -newkey rsa:2048 [^`]+)`/.exec(doc);
  assert.ok(inline, "the page shows the openssl form");
  const dir = fs.mkdtempSync(path.join(tmp, "inline-"));
  const r = spawnSync("bash", ["-e", "-c", inline[1]!], { cwd: dir, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(execFileSync("openssl", ["req", "-in", "push.csr", "-noout", "-subject"], { cwd: dir }).toString(), /emailAddress/);
});
