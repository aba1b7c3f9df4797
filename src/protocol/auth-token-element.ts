// The AuthToken a network user's channel echoes in every check-in and command
// report (Orchard issues it at UserAuthenticate, core/userauth.ts) is a live
// secret: it is kept only as a hash, and never leaves a device's message that
// is stored, shown or sent on (docs/architecture.md). This is the one place
// that takes it out of the raw bytes.

/** The bytes that mark a message holding an AuthToken (also what finds rows stored before they were scrubbed). */
export const AUTH_TOKEN_KEY = Buffer.from("<key>AuthToken</key>");
// The AuthToken element as a device writes it in its XML plist, and the blank after it.
const AUTH_TOKEN_ELEMENT = /<key>AuthToken<\/key>\s*<string>[^<]*<\/string>\s*/g;

/**
 * The bytes the device sent, less its AuthToken element: the rest stays byte
 * for byte, and a body without one is returned as it is (the search is one
 * indexOf). The element is matched as macOS writes it; a device that writes
 * its own token otherwise (entities, CDATA, a comment after the key) leaks
 * nothing it could not put in any other value.
 */
export function withoutAuthToken(raw: Buffer): Buffer {
  if (raw.indexOf(AUTH_TOKEN_KEY) === -1) return raw;
  // latin1 maps each byte to one character and back: only the element's bytes change.
  return Buffer.from(raw.toString("latin1").replace(AUTH_TOKEN_ELEMENT, ""), "latin1");
}
