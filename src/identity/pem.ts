// PEM (RFC 7468) blocks in text: certificates, keys and requests that
// operators paste or concatenate (`cat push.pem push.key`). The label says
// what each block is; the block itself goes to node:crypto whole.

/** Every PEM block, in order: its label (CERTIFICATE, PRIVATE KEY, ...) and its text from BEGIN to END. */
export function pemBlocks(text: string): Array<{ label: string; pem: string }> {
  return [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g)].map((m) => ({ label: m[1]!, pem: m[0] }));
}
