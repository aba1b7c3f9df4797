// A network user's short name goes into Digest strings (username="..." in a
// DigestResponse, HA1 = MD5(name:realm:password)), htdigest lines and log
// lines. A quote or backslash changes how a quoted-string reads, CR/LF or
// another control character splits a header or a log line, and ':' '/' ','
// separate ids and htdigest fields: none is in any real account name.

const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029"\\:/,]/;
const MAX_LENGTH = 256;

export const SHORT_NAME_RULE = `a short name is 1 to ${MAX_LENGTH} characters without control characters, quotes, backslashes, ':', '/' or ','`;

/** Whether a name may be a directory user's short name (see SHORT_NAME_RULE). */
export function isShortName(value: string): boolean {
  return (
    value.length > 0 &&
    value.length <= MAX_LENGTH &&
    !FORBIDDEN.test(value) &&
    (value as unknown as { isWellFormed(): boolean }).isWellFormed()
  );
}
