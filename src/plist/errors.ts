// The only error the parser throws. The message goes into a 400 body and a log
// line, so it names positions and element kinds only, never document content
// (a malformed value may be a secret, e.g. a push token or an unlock token).
export class PlistError extends Error {
  /** UTF-16 offset into the decoded document, when the failure has a position. */
  readonly offset: number | undefined;

  constructor(reason: string, offset?: number) {
    super(offset === undefined ? reason : `${reason} at offset ${offset}`);
    this.name = "PlistError";
    this.offset = offset;
  }
}
