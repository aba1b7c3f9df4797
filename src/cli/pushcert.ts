import { expectOk } from "./api-client.ts";
import { CliError, connect, parseCommand, readFileArg, printJson, runSubcommand, UsageError, type CliContext, type ClientCommand } from "./command.ts";
import { firstLine } from "./secret.ts";
import { formatTable, formatTime, printable } from "./table.ts";

interface PushCertListing {
  push_certs: Array<{ topic: string; not_before: string; not_after: string; fingerprint: string; updated_at: string }>;
}

const DAY_MS = 86_400_000;

export const pushcertCommand: ClientCommand = {
  name: "pushcert",
  summary: "upload and list APNs push certificates",
  usage: [
    `pushcert upload <file | -> [--passphrase-stdin]`,
    "  a PEM certificate with its unencrypted key (cat push.pem push.key > both.pem), or a PKCS#12 (.p12)",
    "  file; a .p12's passphrase is asked for at a terminal, or read from stdin's first line with",
    "  --passphrase-stdin. The topic comes from the certificate; a new one for a topic replaces the old",
    `pushcert show`,
    "  the topics with their expiry (never a key)",
    `pushcert remove <topic>`,
  ],
  run: (args, ctx) => runSubcommand(args, ctx, { upload, show, remove }),
};

async function upload(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, { "passphrase-stdin": { type: "boolean", default: false } });
  if (positionals.length !== 1) throw new UsageError("give one certificate file, or - for stdin");
  const file = positionals[0]!;
  if (file === "-" && values["passphrase-stdin"]) throw new UsageError("stdin cannot carry both the file and the passphrase");
  const body = await readFileArg(file, ctx);
  if (body.length === 0) throw new CliError(`${file === "-" ? "stdin" : file} is empty`);
  const isPem = body.includes("-----BEGIN ");
  let passphrase: string | undefined;
  if (values["passphrase-stdin"]) passphrase = firstLine(await ctx.readStdin());
  else if (!isPem && ctx.stdinIsTTY) passphrase = await ctx.readSecret("PKCS#12 passphrase: ");
  const client = connect(values, ctx);
  const res = await client.request("PUT", "/v1/pushcert", {
    body,
    contentType: isPem ? "application/x-pem-file" : "application/x-pkcs12",
    headers: passphrase === undefined ? undefined : { "x-passphrase": passphrase },
  });
  const r = expectOk<{ topic: string; not_after: string }>(res);
  if (values.json) printJson(ctx, r);
  else ctx.out(`stored the push certificate of ${printable(r.topic)}, valid until ${formatTime(r.not_after)}\n`);
  return 0;
}

async function show(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${printable(positionals[0]!)}`);
  const client = connect(values, ctx);
  const r = await client.get<PushCertListing>("/v1/pushcert");
  if (values.json) {
    printJson(ctx, r);
    return 0;
  }
  if (r.push_certs.length === 0) {
    ctx.out("no push certificate (orchard pushcert upload adds one)\n");
    return 0;
  }
  const now = Date.now();
  ctx.out(
    formatTable(
      ["TOPIC", "NOT AFTER", "DAYS LEFT", "SHA-256", "UPDATED"],
      r.push_certs.map((c) => [
        c.topic,
        formatTime(c.not_after),
        Math.floor((Date.parse(c.not_after) - now) / DAY_MS),
        c.fingerprint.slice(0, 16) + "…",
        formatTime(c.updated_at),
      ]),
    ),
  );
  return 0;
}

async function remove(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommand(args, {});
  if (positionals.length !== 1) throw new UsageError("give one topic");
  const topic = positionals[0]!;
  const client = connect(values, ctx);
  const res = await client.request("DELETE", `/v1/pushcert/${encodeURIComponent(topic)}`);
  if (res.status === 404) throw new CliError(`no push certificate for ${printable(topic)}`);
  const r = expectOk<{ removed: string }>(res);
  if (values.json) printJson(ctx, r);
  else ctx.out(`removed the push certificate of ${printable(topic)}\n`);
  return 0;
}
