// The S/MIME wrapping of an Apple Business Manager server token (.p7m): a
// MIME entity whose body is base64 CMS EnvelopedData; decrypted, another MIME
// entity whose body is the token JSON, sometimes between -----BEGIN MESSAGE-----
// and -----END MESSAGE----- lines (as NanoDEP's tokenpki reads it). The CMS in
// between is cms.ts's (parseEnvelopedData, decryptEnvelope, buildEnvelopedData).

/** Not an S/MIME entity this reader takes; never carries secret material. */
export class SmimeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SmimeError";
  }
}

/** The header block and the body of a MIME entity (CRLF or LF line ends). */
function splitEntity(text: string, what: string): { headers: Map<string, string>; body: string } {
  const m = /\r?\n\r?\n/.exec(text);
  if (!m) throw new SmimeError(`${what}: no blank line after the MIME headers`);
  const headers = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.slice(0, m.index).split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && last !== undefined) {
      headers.set(last, `${headers.get(last)} ${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) throw new SmimeError(`${what}: a MIME header line without a name`);
    last = line.slice(0, colon).trim().toLowerCase();
    headers.set(last, line.slice(colon + 1).trim());
  }
  return { headers, body: text.slice(m.index + m[0].length) };
}

/** The DER (or BER) of the CMS inside an S/MIME .p7m: its base64 body decoded. */
export function smimeContent(p7m: Buffer): Buffer {
  const text = p7m.toString("latin1");
  if (!/^[\x20-\x7e\t\r\n]*$/.test(text)) throw new SmimeError("the token is not an S/MIME text (.p7m as Apple Business Manager gives it)");
  const { headers, body } = splitEntity(text, "the token");
  const type = headers.get("content-type") ?? "";
  if (!/^application\/(x-)?pkcs7-mime\b/i.test(type)) throw new SmimeError("the token's Content-Type is not application/pkcs7-mime");
  const encoding = headers.get("content-transfer-encoding") ?? "base64";
  if (encoding.toLowerCase() !== "base64") throw new SmimeError("the token's Content-Transfer-Encoding is not base64");
  const b64 = body.replace(/\s+/g, "");
  if (b64 === "" || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new SmimeError("the token's body is not base64");
  return Buffer.from(b64, "base64");
}

/** The text inside the decrypted MIME entity, without its headers and the BEGIN/END MESSAGE lines. */
export function smimeInnerText(decrypted: Buffer): string {
  const { body } = splitEntity(decrypted.toString("utf8"), "the decrypted token");
  return body
    .split(/\r?\n/)
    .map((line) => line.replace(/^-----BEGIN MESSAGE-----/, "").replace(/^-----END MESSAGE-----/, ""))
    .join("")
    .trim();
}

/** An S/MIME .p7m around CMS bytes, as Apple Business Manager writes one (for test stand-ins and tools). */
export function buildSmime(cms: Uint8Array): Buffer {
  const b64 = Buffer.from(cms)
    .toString("base64")
    .replace(/.{1,76}/g, "$&\r\n");
  return Buffer.from(
    'Content-Type: application/pkcs7-mime; name="smime.p7m"; smime-type=enveloped-data\r\n' +
      "Content-Transfer-Encoding: base64\r\n" +
      'Content-Disposition: attachment; filename="smime.p7m"\r\n' +
      "Content-Description: S/MIME Encrypted Message\r\n\r\n" +
      b64,
    "latin1",
  );
}

/** The inner MIME entity of a server token around its JSON. */
export function buildSmimeInner(json: string): Buffer {
  return Buffer.from(
    `Content-Type: text/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n-----BEGIN MESSAGE-----\r\n${json}\r\n-----END MESSAGE-----\r\n`,
    "utf8",
  );
}
