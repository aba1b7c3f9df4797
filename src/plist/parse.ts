// XML property list parser: one pass over the decoded string with indexOf and
// charCodeAt, an explicit container stack (no recursion, so nesting cannot
// overflow the call stack), and every limit checked before a value is built.
// Only the XML subset Apple writes is accepted: no DTD internal subset, no
// entity declarations, no processing instructions besides the XML declaration.

import { PlistError } from "./errors.ts";
import { parseData, parseDate, parseInteger, parseReal } from "./scalars.ts";
import { decodeEntities, decodeInput } from "./text.ts";
import { resolveLimits, type PlistDict, type PlistLimits, type PlistValue } from "./types.ts";

// Element ids; NAMES[id] is the tag name.
const DICT = 1;
const ARRAY = 2;
const KEY = 3;
const STRING = 4;
const INTEGER = 5;
const REAL = 6;
const TRUE = 7;
const FALSE = 8;
const DATE = 9;
const DATA = 10;
const PLIST = 11;
const NAMES = ["", "dict", "array", "key", "string", "integer", "real", "true", "false", "date", "data", "plist"];

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;

const APPLE_PROLOG =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">';
const PLIST_TAG = '<plist version="1.0">';

// Fast path for the DOCTYPE every Apple device sends (one or two lines); anything
// else goes through the general scanner in doctype().
const APPLE_DOCTYPE = /<!DOCTYPE[ \t\r\n]+plist[ \t\r\n]+PUBLIC[ \t\r\n]+"[^"<>[]*"[ \t\r\n]+"[^"<>[]*"[ \t\r\n]*>/y;

const isWs = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;

/** Parses an XML plist. Throws only PlistError for any input. */
export function parsePlist(input: Buffer | string, limits?: Partial<PlistLimits>): PlistValue {
  const lim = resolveLimits(limits); // outside the try: a bad limit is a TypeError for the caller
  try {
    return new Parser(decodeInput(input), lim).document();
  } catch (err) {
    if (err instanceof PlistError) throw err;
    // Safety net (e.g. out of memory building a string): callers rely on PlistError.
    throw new PlistError("internal parser error");
  }
}

/** Parses an XML plist whose top-level value must be a dict (every MDM message). */
export function parsePlistDict(input: Buffer | string, limits?: Partial<PlistLimits>): PlistDict {
  const v = parsePlist(input, limits);
  if (typeof v !== "object" || Array.isArray(v) || v instanceof Date || Buffer.isBuffer(v)) {
    throw new PlistError("top-level value is not a dict");
  }
  return v;
}

class Parser {
  // `declare`: assigned in the constructor only, so no class-field definitions
  // run per parse (this object is created for every request).
  declare private readonly s: string;
  declare private readonly lim: Readonly<PlistLimits>;
  declare private pos: number;
  declare private nodes: number;
  declare private selfClosing: boolean;
  // Offset of the next '&' at or after pos (-1: none left). '&' is rare, so
  // keeping it saves a search per string.
  declare private nextAmp: number;

  constructor(s: string, lim: Readonly<PlistLimits>) {
    this.s = s;
    this.lim = lim;
    this.pos = 0;
    this.nodes = 0;
    this.selfClosing = false;
    this.nextAmp = s.indexOf("&");
  }

  private fail(reason: string, at = this.pos): never {
    throw new PlistError(at >= this.s.length ? "unexpected end of document" : reason, at);
  }

  document(): PlistValue {
    const s = this.s;
    // Apple's exact prolog is checked with two comparisons; anything else takes
    // the general path.
    let doctype = false;
    if (s.startsWith(APPLE_PROLOG, 0)) {
      this.pos = APPLE_PROLOG.length;
      doctype = true;
    } else if (s.startsWith("<?xml", 0) && isWs(s.charCodeAt(5))) {
      this.xmlDeclaration();
    }
    this.prolog(doctype);
    if (s.startsWith(PLIST_TAG, this.pos)) {
      this.pos += PLIST_TAG.length;
    } else {
      this.openTag(); // <plist ...>, checked by prolog
      if (this.selfClosing) this.fail("<plist> has no value", this.pos - 2);
    }
    const value = this.value();
    this.skipMisc();
    if (!this.atEndTag()) this.fail("<plist> must contain exactly one value");
    this.endTag(PLIST);
    this.skipMisc();
    if (this.pos < s.length) this.fail("unexpected content after </plist>");
    return value;
  }

  // <?xml version="1.0" encoding="UTF-8"?> — only at the very start, and only UTF-8
  // (the body was decoded as UTF-8, so any other declared encoding is a lie).
  private xmlDeclaration(): void {
    const end = this.s.indexOf("?>", 5);
    if (end === -1) this.fail("unterminated XML declaration", this.s.length);
    const decl = this.s.slice(5, end);
    if (decl !== ' version="1.0" encoding="UTF-8"') {
      const enc = /\bencoding\s*=\s*(["'])([^"']*)\1/.exec(decl);
      if (enc && !/^utf-?8$/i.test(enc[2]!)) this.fail("unsupported encoding in XML declaration", 0);
    }
    this.pos = end + 2;
  }

  // Comments and at most one DOCTYPE (without internal subset) before <plist>.
  private prolog(doctype: boolean): void {
    const s = this.s;
    for (;;) {
      this.skipMisc();
      const at = this.pos;
      if (s.charCodeAt(at) !== LT) this.fail("expected <plist>");
      if (s.startsWith("<!DOCTYPE", at) && !doctype) {
        APPLE_DOCTYPE.lastIndex = at;
        if (APPLE_DOCTYPE.test(s)) this.pos = APPLE_DOCTYPE.lastIndex;
        else this.doctype();
        doctype = true;
      } else if (s.startsWith("<!ENTITY", at)) {
        this.fail("entity declarations are not allowed");
      } else if (s.startsWith("<?", at)) {
        this.fail("processing instructions are not allowed");
      } else if (s.startsWith("<!", at)) {
        this.fail("unsupported markup declaration");
      } else if (s.startsWith("plist", at + 1) && this.peekTag() === PLIST) {
        return;
      } else {
        this.fail("root element must be <plist>");
      }
    }
  }

  // Skips <!DOCTYPE name PUBLIC "..." "...">; an internal subset ('[') is where
  // entity declarations live (billion laughs, XXE), so it is refused outright.
  private doctype(): void {
    const s = this.s;
    let i = this.pos + 9;
    if (!isWs(s.charCodeAt(i))) this.fail("malformed DOCTYPE");
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === GT) break;
      if (c === 0x22 || c === 0x27) {
        const close = s.indexOf(c === 0x22 ? '"' : "'", i + 1);
        if (close === -1) this.fail("unterminated DOCTYPE", s.length);
        i = close + 1;
        continue;
      }
      if (c === 0x5b /* [ */) this.fail("DOCTYPE internal subset is not allowed", i);
      if (c === LT || i >= s.length) this.fail("unterminated DOCTYPE", i);
      i++;
    }
    this.pos = i + 1;
  }

  /** Whitespace and comments, the only things allowed between elements. */
  private skipMisc(): void {
    const s = this.s;
    let i = this.pos;
    for (;;) {
      let c = s.charCodeAt(i);
      while (isWs(c)) c = s.charCodeAt(++i);
      this.pos = i;
      if (c !== LT || s.charCodeAt(i + 1) !== 0x21 /* ! */ || !s.startsWith("<!--", i)) return;
      this.skipComment();
      i = this.pos;
    }
  }

  private skipComment(): void {
    const end = this.s.indexOf("-->", this.pos + 4);
    if (end === -1) this.fail("unterminated comment", this.s.length);
    this.pos = end + 3;
  }

  private atEndTag(): boolean {
    return this.s.charCodeAt(this.pos) === LT && this.s.charCodeAt(this.pos + 1) === SLASH;
  }

  /** Tag id of the start tag at pos without consuming it (0 if unknown). */
  private peekTag(): number {
    const s = this.s;
    const start = this.pos + 1;
    let i = start;
    let c = s.charCodeAt(i);
    while (c >= 0x61 && c <= 0x7a) c = s.charCodeAt(++i); // plist tags are a-z only
    return tagId(s, start, i - start);
  }

  /** Consumes `<name attrs? /?>` at pos; returns the tag id, sets selfClosing. */
  private openTag(): number {
    const s = this.s;
    const start = this.pos + 1;
    let i = start;
    let c = s.charCodeAt(i);
    while (c >= 0x61 && c <= 0x7a) c = s.charCodeAt(++i);
    const id = tagId(s, start, i - start);
    if (id === 0) this.fail("unknown element", i >= s.length ? i : this.pos);
    if (isWs(c)) {
      this.pos = i;
      this.skipAttributes();
      i = this.pos;
      c = s.charCodeAt(i);
    }
    if (c === GT) {
      this.selfClosing = false;
      this.pos = i + 1;
    } else if (c === SLASH && s.charCodeAt(i + 1) === GT) {
      this.selfClosing = true;
      this.pos = i + 2;
    } else {
      this.fail(isNameChar(c) ? "unknown element" : "malformed start tag", i);
    }
    return id;
  }

  // Attributes are tolerated (e.g. version="1.0") but their values are unused,
  // so they are only checked for well-formedness, never entity-decoded.
  private skipAttributes(): void {
    const s = this.s;
    // Values cannot contain '<', so the first '<' must lie beyond every value
    // in this tag. Found once: searching per attribute would be quadratic.
    const lt = s.indexOf("<", this.pos);
    for (;;) {
      let c = s.charCodeAt(this.pos);
      while (isWs(c)) c = s.charCodeAt(++this.pos);
      if (c === GT || c === SLASH) return;
      const nameStart = this.pos;
      while (isNameChar(c)) c = s.charCodeAt(++this.pos);
      if (this.pos === nameStart) this.fail("malformed attribute");
      while (isWs(c)) c = s.charCodeAt(++this.pos);
      if (c !== 0x3d /* = */) this.fail("malformed attribute");
      c = s.charCodeAt(++this.pos);
      while (isWs(c)) c = s.charCodeAt(++this.pos);
      if (c !== 0x22 && c !== 0x27) this.fail("malformed attribute");
      const close = s.indexOf(c === 0x22 ? '"' : "'", this.pos + 1);
      if (close === -1) this.fail("unterminated attribute", s.length);
      if (lt !== -1 && lt < close) this.fail("malformed attribute", lt);
      this.pos = close + 1;
    }
  }

  /** Consumes `</name>` (whitespace allowed before '>') at pos. */
  private endTag(id: number): void {
    const s = this.s;
    const name = NAMES[id]!;
    let i = this.pos + 2;
    if (s.charCodeAt(this.pos + 1) === SLASH && matchAt(s, i, name)) {
      i += name.length;
      while (isWs(s.charCodeAt(i))) i++;
      if (s.charCodeAt(i) === GT) {
        this.pos = i + 1;
        return;
      }
    }
    this.fail(`expected </${name}>`);
  }

  /** One value at pos (after optional whitespace/comments), containers included. */
  private value(): PlistValue {
    const s = this.s;
    const lim = this.lim;
    // Open containers, innermost last; keys[i]/counts[i] belong to a dict at stack[i].
    const stack: (PlistDict | PlistValue[])[] = [];
    const keys: string[] = [];
    const counts: number[] = [];
    let depth = 0;
    for (;;) {
      this.skipMisc();
      let v: PlistValue;
      const top = depth > 0 ? stack[depth - 1]! : undefined;
      if (top !== undefined && this.atEndTag()) {
        this.endTag(Array.isArray(top) ? ARRAY : DICT);
        v = top;
        stack.pop();
        keys.pop();
        counts.pop();
        depth--;
      } else {
        if (top !== undefined && !Array.isArray(top)) {
          this.key(top, depth - 1, keys, counts);
          this.skipMisc();
          if (this.atEndTag()) this.fail("missing value for <key>");
        }
        if (s.charCodeAt(this.pos) !== LT) this.fail("unexpected text between elements");
        const at = this.pos;
        if (s.charCodeAt(at + 1) === SLASH) this.fail("<plist> has no value"); // depth 0 only
        const id = this.openTag();
        if (++this.nodes > lim.maxNodes) this.fail("too many values", at);
        if (id === DICT || id === ARRAY) {
          const c: PlistDict | PlistValue[] = id === DICT ? {} : [];
          if (this.selfClosing) {
            v = c;
          } else {
            if (depth >= lim.maxDepth) this.fail("nesting too deep", at);
            stack.push(c);
            keys.push("");
            counts.push(0);
            depth++;
            continue;
          }
        } else {
          v = this.scalar(id, at);
        }
      }
      if (depth === 0) return v;
      const parent = stack[depth - 1]!;
      if (Array.isArray(parent)) {
        if (parent.length >= lim.maxItems) this.fail("too many items in <array>");
        parent.push(v);
      } else {
        parent[keys[depth - 1]!] = v;
      }
    }
  }

  /** Reads `<key>` into keys[i], checking duplicates and the per-dict limit. */
  private key(dict: PlistDict, i: number, keys: string[], counts: number[]): void {
    const at = this.pos;
    if (this.s.charCodeAt(at) !== LT) this.fail("unexpected text in <dict>");
    let k: string;
    if (matchAt(this.s, at + 1, "key>")) {
      this.pos = at + 5; // the usual spelling, without the general tag reader
      k = this.text(KEY);
    } else {
      if (this.s.charCodeAt(at + 1) === SLASH || this.openTag() !== KEY) this.fail("expected <key> in <dict>", at);
      k = this.selfClosing ? "" : this.text(KEY);
    }
    if (++counts[i]! > this.lim.maxKeys) this.fail("too many keys in <dict>", at);
    // Assigning "__proto__" would replace the object's prototype.
    if (k === "__proto__") this.fail("forbidden key", at);
    if (Object.hasOwn(dict, k)) this.fail("duplicate key in <dict>", at);
    keys[i] = k;
  }

  private scalar(id: number, at: number): PlistValue {
    const empty = this.selfClosing;
    switch (id) {
      case STRING:
        return empty ? "" : this.text(STRING);
      case TRUE:
      case FALSE:
        if (!empty) {
          this.skipMisc();
          this.endTag(id);
        }
        return id === TRUE;
      case DATA:
        return parseData(empty ? "" : this.raw(DATA), at, this.lim.maxDataBytes);
      case INTEGER:
      case REAL:
      case DATE: {
        if (empty) this.fail(`empty <${NAMES[id]}>`, at);
        const t = this.raw(id);
        return id === INTEGER ? parseInteger(t, at) : id === REAL ? parseReal(t, at) : parseDate(t, at);
      }
      default:
        return this.fail(`unexpected <${NAMES[id]}>`, at);
    }
  }

  /** Content of a leaf that holds plain characters only (numbers, dates, base64). */
  private raw(id: number): string {
    const lt = this.s.indexOf("<", this.pos);
    if (lt === -1) this.fail(`unterminated <${NAMES[id]}>`, this.s.length);
    const t = this.s.slice(this.pos, lt);
    this.pos = lt;
    if (!this.atEndTag()) this.fail(`unexpected markup in <${NAMES[id]}>`);
    this.endTag(id);
    return t;
  }

  /** Character data of <string>/<key>: entities, CDATA sections and comments. */
  private text(id: number): string {
    const s = this.s;
    const max = this.lim.maxStringBytes;
    let out = "";
    for (;;) {
      const lt = s.indexOf("<", this.pos);
      if (lt === -1) this.fail(`unterminated <${NAMES[id]}>`, s.length);
      let piece = s.slice(this.pos, lt);
      if (this.nextAmp !== -1 && this.nextAmp < lt) {
        piece = decodeEntities(piece, this.pos);
        this.nextAmp = s.indexOf("&", lt);
      }
      out = out.length === 0 ? piece : out + piece;
      this.pos = lt;
      if (s.charCodeAt(lt + 1) === SLASH) {
        this.endTag(id);
        break;
      } else if (s.startsWith("<![CDATA[", lt)) {
        const end = s.indexOf("]]>", lt + 9);
        if (end === -1) this.fail("unterminated CDATA section", s.length);
        out += s.slice(lt + 9, end);
        this.pos = end + 3;
      } else if (s.startsWith("<!--", lt)) {
        this.skipComment();
      } else {
        this.fail(`unexpected markup in <${NAMES[id]}>`);
      }
      // UTF-16 units never exceed UTF-8 bytes, so this cheap check stops growth early.
      if (out.length > max) this.fail("string exceeds size limit", lt);
    }
    // Exact UTF-8 size only when the string could be near the limit.
    if (out.length * 3 > max && Buffer.byteLength(out, "utf8") > max) this.fail("string exceeds size limit");
    return out;
  }
}

/** Maps the name at s[start, start+len) to an element id, 0 if not a plist element. */
function tagId(s: string, start: number, len: number): number {
  let id = 0;
  switch (len) {
    case 3:
      id = KEY;
      break;
    case 4: {
      const c0 = s.charCodeAt(start);
      const c3 = s.charCodeAt(start + 3);
      // dict, data, date, real, true: the first and last letters tell them apart.
      if (c0 === 0x64 /* d */) id = c3 === 0x74 /* t */ ? DICT : c3 === 0x61 /* a */ ? DATA : DATE;
      else id = c0 === 0x72 /* r */ ? REAL : TRUE;
      break;
    }
    case 5: {
      const c0 = s.charCodeAt(start);
      id = c0 === 0x61 /* a */ ? ARRAY : c0 === 0x66 /* f */ ? FALSE : PLIST;
      break;
    }
    case 6:
      id = STRING;
      break;
    case 7:
      id = INTEGER;
      break;
  }
  return id !== 0 && matchAt(s, start, NAMES[id]!) ? id : 0;
}

/** s.startsWith(name, i) without a builtin call (names are short). */
function matchAt(s: string, i: number, name: string): boolean {
  for (let j = 0; j < name.length; j++) if (s.charCodeAt(i + j) !== name.charCodeAt(j)) return false;
  return true;
}

function isNameChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x3a) || // digits and ':'
    c === 0x5f ||
    c === 0x2d ||
    c === 0x2e ||
    c >= 0x80
  );
}
