import fs from "node:fs";
import path from "node:path";
import { createPushCsr, signPushCertRequest, VendorSignError } from "../push/vendor-sign.ts";
import type { PushCertList, PushCertRemoved, PushCertStored } from "../http/wire.ts";
import { errorCode, errorReason, expectOk } from "./api-client.ts";
import {
  CliError,
  connect,
  noArgs,
  parseCommand,
  readFileArg,
  printJson,
  runSubcommand,
  UsageError,
  type CliContext,
  type ClientCommand,
} from "./command.ts";
import { firstLine } from "./secret.ts";
import { formatTable, formatTime, printable } from "./table.ts";

const DAY_MS = 86_400_000;
/** As the server's pushcert.expiring event (push/expiry.ts). */
const RENEW_WITHIN_DAYS = 30;
const PORTAL = "https://identity.apple.com/pushcert";
/** Where a developer account adds a certificate (an MDM CSR, for a vendor certificate). */
const DEVELOPER_PORTAL = "https://developer.apple.com/account/resources/certificates/add";
/** A PEM private key that needs a passphrase: PKCS#8 encrypted, or OpenSSL's traditional form. */
const ENCRYPTED_PEM_KEY = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/;

export const pushcertCommand: ClientCommand = {
  name: "pushcert",
  summary: "get, upload and list APNs push certificates",
  usage: [
    `pushcert csr [--vendor] [--out-key push.key] [--out-csr push.csr] [--cn NAME] [--email ADDRESS] [--country CC] [--force]`,
    "  a new RSA 2048 key (mode 0600) and a CSR for it, for an MDM vendor to sign (see docs/push-certificate.md);",
    "  --vendor: for your own MDM vendor certificate instead, uploaded as an MDM CSR in Apple's developer portal",
    "  (default files vendor.key, vendor.csr). An existing file is kept unless --force",
    `pushcert sign --csr FILE --vendor-cert FILE --vendor-key FILE --chain FILE --chain FILE [--out FILE] [--passphrase-stdin] [--force]`,
    "  signs a customer CSR with an MDM vendor certificate and key: the request (base64 plist) to upload at",
    "  https://identity.apple.com/pushcert. --chain: Apple's WWDR intermediate, then Apple's root CA (DER or PEM);",
    "  --vendor-key: PEM or PKCS#12; its passphrase from stdin's first line with --passphrase-stdin",
    `pushcert upload <file | -> [--passphrase-stdin] [--force]`,
    "  a PEM certificate with its key, plain or encrypted (cat push.pem push.key > both.pem), or a PKCS#12",
    "  (.p12) file; the passphrase of an encrypted key or a .p12 is asked for at a terminal, or read from stdin's",
    "  first line with --passphrase-stdin. The topic comes from the certificate; a new one for a topic replaces",
    "  the old (renewal). Refused unless --force: a certificate that expires before the stored one of its topic",
    "  (an older file), and a new topic while devices are enrolled under another (it would orphan them)",
    `pushcert show`,
    "  the topics with their expiry and days left (never a key)",
    `pushcert remove <topic>`,
  ],
  run: (args, ctx) => runSubcommand(args, ctx, { csr, sign, upload, show, remove }),
};

async function csr(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    vendor: { type: "boolean", default: false },
    "out-key": { type: "string" },
    "out-csr": { type: "string" },
    cn: { type: "string" },
    email: { type: "string" },
    country: { type: "string" },
    force: { type: "boolean", default: false },
  });
  noArgs(positionals);
  // The same kind of key and CSR either way; what they are for decides the defaults and the next step.
  const kind = values.vendor ? "vendor" : "push";
  const keyFile = path.resolve(ctx.cwd, values["out-key"] ?? `${kind}.key`);
  const csrFile = path.resolve(ctx.cwd, values["out-csr"] ?? `${kind}.csr`);
  if (keyFile === csrFile) throw new UsageError("--out-key and --out-csr name the same file");
  for (const f of [keyFile, csrFile]) {
    if (values.force || !fs.existsSync(f)) continue;
    throw new CliError(`${f} exists: keep it (a push certificate may depend on it), or give --force`);
  }
  const commonName = values.cn ?? (values.vendor ? "Orchard MDM vendor" : "Orchard MDM push");
  const made = await vendorStep(() => createPushCsr({ commonName, email: values.email, country: values.country }));
  writeFile(keyFile, made.keyPem, 0o600, values.force);
  writeFile(csrFile, made.csrPem, 0o644, values.force);
  if (values.json) printJson(ctx, { key: keyFile, csr: csrFile });
  else if (values.vendor) {
    ctx.out(
      `wrote the private key to ${keyFile} (mode 0600: keep it, the MDM vendor certificate is useless without it; it is orchard pushcert sign's --vendor-key)\n`,
    );
    ctx.out(
      `wrote the CSR to ${csrFile}: upload it at ${DEVELOPER_PORTAL} as an MDM CSR certificate, and download mdm.cer, orchard pushcert sign's --vendor-cert (see docs/push-certificate.md)\n`,
    );
  } else {
    ctx.out(`wrote the private key to ${keyFile} (mode 0600: keep it, the push certificate is useless without it)\n`);
    ctx.out(`wrote the CSR to ${csrFile}: have it signed by an MDM vendor (orchard pushcert sign, or see docs/push-certificate.md)\n`);
  }
  return 0;
}

async function sign(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    csr: { type: "string" },
    "vendor-cert": { type: "string" },
    "vendor-key": { type: "string" },
    chain: { type: "string", multiple: true, default: [] },
    out: { type: "string" },
    "passphrase-stdin": { type: "boolean", default: false },
    force: { type: "boolean", default: false },
  });
  noArgs(positionals);
  for (const flag of ["csr", "vendor-cert", "vendor-key"] as const) if (!values[flag]) throw new UsageError(`give --${flag} FILE`);
  if (values.chain.length === 0) throw new UsageError("give --chain FILE for Apple's WWDR intermediate, then again for Apple's root CA");
  const read = (file: string) => readFileArg(file, ctx);
  const passphrase = values["passphrase-stdin"] ? firstLine(await ctx.readStdin()) : undefined;
  const request = await vendorStep(async () =>
    signPushCertRequest({
      csr: await read(values.csr!),
      vendorCert: await read(values["vendor-cert"]!),
      vendorKey: await read(values["vendor-key"]!),
      passphrase,
      chain: await Promise.all(values.chain.map(read)),
    }),
  );
  if (values.out === undefined) {
    ctx.out(request.encoded + "\n");
    return 0;
  }
  const outFile = path.resolve(ctx.cwd, values.out);
  if (!values.force && fs.existsSync(outFile)) throw new CliError(`${outFile} exists: give --force to replace it`);
  writeFile(outFile, request.encoded, 0o644, values.force); // as mdmctl writes it: no trailing newline
  if (values.json) printJson(ctx, { request: outFile, csr_subject: request.csrSubject });
  else ctx.out(`wrote the signed request for ${printable(request.csrSubject)} to ${outFile}: upload it at ${PORTAL}\n`);
  return 0;
}

/** The operator's file mistakes become one readable line. */
async function vendorStep<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof VendorSignError) throw new CliError(err.message);
    throw err;
  }
}

/** Writes a file with this mode from the start (a key is never readable by others, not even briefly). */
function writeFile(file: string, content: string, mode: number, replace: boolean): void {
  try {
    if (replace) fs.rmSync(file, { force: true });
    fs.writeFileSync(file, content, { mode, flag: "wx" });
  } catch (err) {
    throw new CliError(`cannot write ${file}: ${(err as Error).message}`);
  }
}

async function upload(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    "passphrase-stdin": { type: "boolean", default: false },
    force: { type: "boolean", default: false },
  });
  if (positionals.length !== 1) throw new UsageError("give one certificate file, or - for stdin");
  const file = positionals[0]!;
  if (file === "-" && values["passphrase-stdin"]) throw new UsageError("stdin cannot carry both the file and the passphrase");
  const body = await readFileArg(file, ctx);
  if (body.length === 0) throw new CliError(`${file === "-" ? "stdin" : file} is empty`);
  const isPem = body.includes("-----BEGIN ");
  const encryptedKey = isPem && ENCRYPTED_PEM_KEY.test(body.toString("latin1"));
  let passphrase: string | undefined;
  if (values["passphrase-stdin"]) passphrase = firstLine(await ctx.readStdin());
  else if ((!isPem || encryptedKey) && ctx.stdinIsTTY)
    passphrase = await ctx.readSecret(isPem ? "private key passphrase: " : "PKCS#12 passphrase: ");
  const client = connect(values, ctx);
  const res = await client.request("PUT", "/v1/pushcert", {
    query: { force: values.force ? "1" : undefined },
    body,
    contentType: isPem ? "application/x-pem-file" : "application/x-pkcs12",
    headers: passphrase === undefined ? undefined : { "x-passphrase": passphrase },
  });
  // The server's reason tells an API user to send the X-Passphrase header; a CLI user is told the CLI's ways.
  if (res.status === 400 && errorCode(res) === "invalid_push_certificate" && /X-Passphrase/.test(errorReason(res))) {
    const ways = "run this at a terminal to be asked for it, or give it on stdin's first line with --passphrase-stdin";
    const needs = isPem ? "the private key is encrypted and needs its passphrase" : "the PKCS#12 file needs its passphrase";
    // With the file on stdin, neither way is open: the file must come by its path.
    if (file === "-") throw new CliError(`${needs}: give the file by its path (not -), then ${ways}`);
    throw new CliError(isPem ? `${file}: ${needs}: ${ways}` : `${file} needs its PKCS#12 passphrase: ${ways}`);
  }
  const r = expectOk<PushCertStored>(res);
  if (values.json) printJson(ctx, r);
  else ctx.out(`stored the push certificate of ${printable(r.topic)}, valid until ${formatTime(r.not_after)}\n`);
  return 0;
}

async function show(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  noArgs(positionals);
  const client = connect(values, ctx);
  const r = await client.get<PushCertList>("/v1/pushcert");
  if (values.json) {
    printJson(ctx, r);
    return 0;
  }
  if (r.push_certs.length === 0) {
    ctx.out("no push certificate (orchard pushcert upload adds one)\n");
    return 0;
  }
  const now = Date.now();
  const daysLeft = (c: { not_after: string }) => Math.floor((Date.parse(c.not_after) - now) / DAY_MS);
  ctx.out(
    formatTable(
      ["TOPIC", "NOT AFTER", "DAYS LEFT", "SHA-256", "UPDATED"],
      r.push_certs.map((c) => [c.topic, formatTime(c.not_after), daysLeft(c), c.fingerprint.slice(0, 16) + "…", formatTime(c.updated_at)]),
    ),
  );
  for (const c of r.push_certs) {
    const days = daysLeft(c);
    if (days > RENEW_WITHIN_DAYS) continue;
    const when = Date.parse(c.not_after) <= now ? `expired on ${formatTime(c.not_after)}` : `expires in ${days} days`;
    ctx.out(`${printable(c.topic)} ${when}: renew it with Renew at ${PORTAL} and upload it (docs/push-certificate.md)\n`);
  }
  return 0;
}

async function remove(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  if (positionals.length !== 1) throw new UsageError("give one topic");
  const topic = positionals[0]!;
  const client = connect(values, ctx);
  const res = await client.request("DELETE", `/v1/pushcert/${encodeURIComponent(topic)}`);
  if (res.status === 404) throw new CliError(`no push certificate for ${printable(topic)}`);
  const r = expectOk<PushCertRemoved>(res);
  if (values.json) printJson(ctx, r);
  else ctx.out(`removed the push certificate of ${printable(topic)}\n`);
  return 0;
}
