import { X509Certificate } from "node:crypto";
import fs from "node:fs";
import { pemBlocks } from "../identity/pem.ts";

const READ_ERRORS: Record<string, string> = { ENOENT: "no such file", EISDIR: "is a directory", EACCES: "permission denied" };

/**
 * Why an --apns-ca file cannot be trusted for the APNs server, or undefined.
 * Node's TLS skips whatever in a CA list is not a certificate without a word,
 * so a wrong file started normally and every push to a server signed by the
 * CA meant failed its handshake; it is refused at start instead, as --ca is.
 * Kept apart from push/index.ts: config.ts calls it, for every command.
 */
export function apnsCaProblem(file: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "";
    return `cannot read --apns-ca ${file}: ${READ_ERRORS[code] ?? (err as Error).message}`;
  }
  const certs = pemBlocks(text).filter((b) => b.label === "CERTIFICATE");
  if (certs.length === 0) {
    return `--apns-ca ${file} holds no PEM certificate (a DER .cer converts with: openssl x509 -inform der -in ${file} -out apns-ca.pem)`;
  }
  for (const { pem } of certs) {
    try {
      new X509Certificate(pem);
    } catch {
      return `--apns-ca ${file} holds a PEM certificate that cannot be read`;
    }
  }
  return undefined;
}
