import { createHash, randomBytes } from "node:crypto";

// The Mac's side of the digest, written here independently of src/digest so
// that the tests check the server against a second implementation.

const h = (alg: "md5" | "sha256", s: string) => createHash(alg).update(s).digest("hex");

export function challengeParams(challenge: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of challenge.replace(/^Digest\s+/, "").matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]+))/g)) out[m[1]!] = m[2] ?? m[3]!;
  return out;
}

export interface Answer {
  username: string;
  password: string;
  realm: string;
  nonce: string;
  method?: string;
  uri?: string;
  algorithm?: "MD5" | "MD5-sess" | "SHA-256";
  qop?: boolean;
}

/** A DigestResponse string as the Mac sends it (Apple's spacing: one space before uri=). */
export function digestResponse(a: Answer): string {
  const alg = a.algorithm === "SHA-256" ? "sha256" : "md5";
  const method = a.method ?? "PUT";
  const uri = a.uri ?? "/";
  let ha1 = h(alg, `${a.username}:${a.realm}:${a.password}`);
  const cnonce = randomBytes(8).toString("hex");
  const nc = "00000001";
  if (a.algorithm === "MD5-sess") ha1 = h("md5", `${ha1}:${a.nonce}:${cnonce}`);
  const ha2 = h(alg, `${method}:${uri}`);
  const response = a.qop ? h(alg, `${ha1}:${a.nonce}:${nc}:${cnonce}:auth:${ha2}`) : h(alg, `${ha1}:${a.nonce}:${ha2}`);
  let s = `Digest username="${a.username}",realm="${a.realm}",nonce="${a.nonce}", uri="${uri}",response="${response}"`;
  if (a.algorithm && a.algorithm !== "MD5") s += `,algorithm=${a.algorithm}`;
  if (a.qop) s += `,qop=auth,nc=${nc},cnonce="${cnonce}"`;
  return s;
}
