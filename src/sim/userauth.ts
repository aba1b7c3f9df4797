import { createHash, randomBytes } from "node:crypto";

/**
 * A Mac's side of the UserAuthenticate digest handshake, cheap enough for
 * load generation: read the `DigestChallenge` of step 1, answer it with the
 * user's password (HTTP Digest, RFC 2617, as the Mac does: HA2 over `PUT`
 * and the uri `/`), and read the `AuthToken` of step 2. Written apart from
 * src/digest, so that a load run checks the server against a second
 * implementation too.
 */

const md5 = (s: string) => createHash("md5").update(s).digest("hex");

/** The parameters of a `Digest k="v",k2=v2` challenge (quoted or bare values), or undefined when it is not one. */
export function parseChallenge(challenge: string): Record<string, string> | undefined {
  const m = /^\s*Digest\s+/i.exec(challenge);
  if (!m) return undefined;
  const out: Record<string, string> = {};
  for (const p of challenge.slice(m[0].length).matchAll(/([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    out[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3]!;
  }
  return out;
}

export interface DigestUser {
  username: string;
  password: string;
  /** Default PUT: the method of the request that carries the response. */
  method?: string;
  /** Default "/", as the Mac sends it. */
  uri?: string;
}

/**
 * Answers digest challenges for one user. HA1 is kept per realm and HA2 is
 * fixed, so an answer costs one MD5 (two with qop=auth's cnonce).
 */
export class DigestAnswerer {
  private readonly ha2: string;
  private readonly uri: string;
  private ha1Realm: string | undefined;
  private ha1 = "";

  constructor(private readonly user: DigestUser) {
    if (/["\\\r\n]/.test(user.username)) throw new Error("a username with a quote, backslash or line break is not supported");
    this.uri = user.uri ?? "/";
    this.ha2 = md5(`${user.method ?? "PUT"}:${this.uri}`);
  }

  /**
   * The `DigestResponse` string for a challenge's parameters, in Apple's
   * shape: `Digest username="u",realm="r",nonce="n", uri="/",response="…"`.
   * Throws on a challenge it cannot answer (no nonce or realm, an algorithm
   * other than MD5, a qop other than auth).
   */
  respond(challenge: Record<string, string>): string {
    const { nonce, realm } = challenge;
    if (!nonce || realm === undefined) throw new Error("challenge without nonce or realm");
    if (challenge.algorithm !== undefined && challenge.algorithm.toUpperCase() !== "MD5")
      throw new Error(`algorithm ${challenge.algorithm} is not supported`);
    if (this.ha1Realm !== realm) {
      this.ha1 = md5(`${this.user.username}:${realm}:${this.user.password}`);
      this.ha1Realm = realm;
    }
    const head = `Digest username="${this.user.username}",realm="${realm}",nonce="${nonce}", uri="${this.uri}"`;
    if (challenge.qop === undefined) return `${head},response="${md5(`${this.ha1}:${nonce}:${this.ha2}`)}"`;
    if (
      !challenge.qop
        .split(",")
        .map((q) => q.trim())
        .includes("auth")
    )
      throw new Error(`qop ${challenge.qop} is not supported`);
    const cnonce = randomBytes(8).toString("hex");
    const nc = "00000001";
    return `${head},response="${md5(`${this.ha1}:${nonce}:${nc}:${cnonce}:auth:${this.ha2}`)}",qop=auth,nc=${nc},cnonce="${cnonce}"`;
  }
}

const ENTITIES: Record<string, string> = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&apos;": "'" };

/** Escapes text for a plist `<string>`. */
export function xmlText(s: string): string {
  return /[&<>]/.test(s) ? s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;") : s;
}

/**
 * Returns a reader of one top-level string value from an XML plist reply
 * (`<key>K</key><string>…</string>`, or `<string/>`): undefined when the key
 * is absent or its value is not a string. A shortcut past a full plist parse
 * for the few fixed keys a load generator needs (DigestChallenge, AuthToken);
 * it decodes the five XML entities and numeric character references.
 */
export function plistStringReader(key: string): (body: Buffer) => string | undefined {
  const needle = Buffer.from(`<key>${key}</key>`);
  return (body) => {
    const at = body.indexOf(needle);
    if (at === -1) return undefined;
    let i = at + needle.length;
    while (i < body.length && (body[i] === 0x20 || body[i] === 0x09 || body[i] === 0x0a || body[i] === 0x0d)) i++;
    if (body.toString("latin1", i, i + 9) === "<string/>") return "";
    if (body.toString("latin1", i, i + 8) !== "<string>") return undefined;
    const end = body.indexOf("</string>", i + 8);
    if (end === -1) return undefined;
    const text = body.toString("utf8", i + 8, end);
    return text.includes("&") ? decodeEntities(text) : text;
  };
}

function decodeEntities(s: string): string {
  return s.replace(/&(?:amp|lt|gt|quot|apos|#x[0-9a-fA-F]+|#[0-9]+);/g, (e) =>
    e[1] === "#" ? String.fromCodePoint(e[2] === "x" ? parseInt(e.slice(3, -1), 16) : parseInt(e.slice(2, -1), 10)) : ENTITIES[e]!,
  );
}

/** An AuthToken as Orchard issues it: 32 bytes, base64 (44 characters). */
export const AUTH_TOKEN_RE = /^[A-Za-z0-9+/]{43}=$/;
