// XML property list parser: one pass over the decoded string with indexOf and
// charCodeAt, an explicit container stack (no recursion, so nesting cannot
// overflow the call stack), and every limit checked before a value is built.
// Only the XML subset Apple writes is accepted: no DTD internal subset, no
// entity declarations, no processing instructions besides the XML declaration.

import { PlistError } from './errors.ts';
import { parseData, parseDate, parseInteger, parseReal } from './scalars.ts';
import { decodeEntities, decodeInput } from './text.ts';
import { resolveLimits, type PlistDict, type PlistLimits, type PlistValue } from './types.ts';

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
const NAMES = ['', 'dict', 'array', 'key', 'string', 'integer', 'real', 'true', 'false', 'date', 'data', 'plist'];

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;

const isWs = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;

/** Parses an XML plist. Throws only PlistError for any input. */
export function parsePlist(input: Buffer | string, limits?: Partial<PlistLimits>): PlistValue {
  const lim = resolveLimits(limits); // outside the try: a bad limit is a TypeError for the caller
  try {
    return new Parser(decodeInput(input), lim).document();
  } catch (err) {
    if (err instanceof PlistError) throw err;
    // Safety net (e.g. out of memory building a string): callers rely on PlistError.
    throw new PlistError('internal parser error');
  }
}

/** Parses an XML plist whose top-level value must be a dict (every MDM message). */
export function parsePlistDict(input: Buffer | string, limits?: Partial<PlistLimits>): PlistDict {
  const v = parsePlist(input, limits);
  if (typeof v !== 'object' || Array.isArray(v) || v instanceof Date || Buffer.isBuffer(v)) {
    throw new PlistError('top-level value is not a dict');
  }
  return v;
}

class Parser {
  private pos = 0;
  private nodes = 0;
  private selfClosing = false;

  constructor(
    private readonly s: string,
    private readonly lim: Readonly<PlistLimits>,
  ) {}

  private fail(reason: string, at = this.pos): never {
    throw new PlistError(at >= this.s.length ? 'unexpected end of document' : reason, at);
  }

  document(): PlistValue {
    const s = this.s;
    if (s.startsWith('<?xml', 0) && isWs(s.charCodeAt(5))) this.xmlDeclaration();
    this.prolog();
    this.openTag(); // <plist ...>, checked by prolog
    if (this.selfClosing) this.fail('<plist> has no value', this.pos - 2);
    const value = this.value();
    this.skipMisc();
    if (!this.atEndTag()) this.fail('<plist> must contain exactly one value');
    this.endTag(PLIST);
    this.skipMisc();
    if (this.pos < s.length) this.fail('unexpected content after </plist>');
    return value;
  }

  // <?xml version="1.0" encoding="UTF-8"?> — only at the very start, and only UTF-8
  // (the body was decoded as UTF-8, so any other declared encoding is a lie).
  private xmlDeclaration(): void {
    const end = this.s.indexOf('?>', 5);
    if (end === -1) this.fail('unterminated XML declaration', this.s.length);
    const decl = this.s.slice(5, end);
    const enc = /\bencoding\s*=\s*(["'])([^"']*)\1/.exec(decl);
    if (enc && !/^utf-?8$/i.test(enc[2]!)) this.fail('unsupported encoding in XML declaration', 0);
    this.pos = end + 2;
  }

  // Comments and at most one DOCTYPE (without internal subset) before <plist>.
  private prolog(): void {
    const s = this.s;
    let doctype = false;
    for (;;) {
      this.skipMisc();
      const at = this.pos;
      if (s.charCodeAt(at) !== LT) this.fail('expected <plist>');
      if (s.startsWith('<!DOCTYPE', at) && !doctype) {
        this.doctype();
        doctype = true;
      } else if (s.startsWith('<!ENTITY', at)) {
        this.fail('entity declarations are not allowed');
      } else if (s.startsWith('<?', at)) {
        this.fail('processing instructions are not allowed');
      } else if (s.startsWith('<!', at)) {
        this.fail('unsupported markup declaration');
      } else if (s.startsWith('plist', at + 1) && this.peekTag() === PLIST) {
        return;
      } else {
        this.fail('root element must be <plist>');
      }
    }
  }

  // Skips <!DOCTYPE name PUBLIC "..." "...">; an internal subset ('[') is where
  // entity declarations live (billion laughs, XXE), so it is refused outright.
  private doctype(): void {
    const s = this.s;
    let i = this.pos + 9;
    if (!isWs(s.charCodeAt(i))) this.fail('malformed DOCTYPE');
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === GT) break;
      if (c === 0x22 || c === 0x27) {
        const close = s.indexOf(c === 0x22 ? '"' : "'", i + 1);
        if (close === -1) this.fail('unterminated DOCTYPE', s.length);
        i = close + 1;
        continue;
      }
      if (c === 0x5b /* [ */) this.fail('DOCTYPE internal subset is not allowed', i);
      if (c === LT || i >= s.length) this.fail('unterminated DOCTYPE', i);
      i++;
    }
    this.pos = i + 1;
  }

  /** Whitespace and comments, the only things allowed between elements. */
  private skipMisc(): void {
    const s = this.s;
    for (;;) {
      let c = s.charCodeAt(this.pos);
      while (isWs(c)) c = s.charCodeAt(++this.pos);
      if (c !== LT || !s.startsWith('<!--', this.pos)) return;
      this.skipComment();
    }
  }

  private skipComment(): void {
    const end = this.s.indexOf('-->', this.pos + 4);
    if (end === -1) this.fail('unterminated comment', this.s.length);
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
    if (id === 0) this.fail('unknown element', i >= s.length ? i : this.pos);
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
      this.fail(isNameChar(c) ? 'unknown element' : 'malformed start tag', i);
    }
    return id;
  }

  // Attributes are tolerated (e.g. version="1.0") but their values are unused,
  // so they are only checked for well-formedness, never entity-decoded.
  private skipAttributes(): void {
    const s = this.s;
    for (;;) {
      let c = s.charCodeAt(this.pos);
      while (isWs(c)) c = s.charCodeAt(++this.pos);
      if (c === GT || c === SLASH) return;
      const nameStart = this.pos;
      while (isNameChar(c)) c = s.charCodeAt(++this.pos);
      if (this.pos === nameStart) this.fail('malformed attribute');
      while (isWs(c)) c = s.charCodeAt(++this.pos);
      if (c !== 0x3d /* = */) this.fail('malformed attribute');
      c = s.charCodeAt(++this.pos);
      while (isWs(c)) c = s.charCodeAt(++this.pos);
      if (c !== 0x22 && c !== 0x27) this.fail('malformed attribute');
      const close = s.indexOf(c === 0x22 ? '"' : "'", this.pos + 1);
      if (close === -1) this.fail('unterminated attribute', s.length);
      const lt = s.indexOf('<', this.pos + 1);
      if (lt !== -1 && lt < close) this.fail('malformed attribute', lt);
      this.pos = close + 1;
    }
  }

  /** Consumes `</name>` (whitespace allowed before '>') at pos. */
  private endTag(id: number): void {
    const s = this.s;
    const name = NAMES[id]!;
    let i = this.pos + 2;
    if (s.charCodeAt(this.pos + 1) === SLASH && s.startsWith(name, i)) {
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
        depth--;
      } else {
        if (top !== undefined && !Array.isArray(top)) {
          this.key(top, depth - 1, keys, counts);
          this.skipMisc();
          if (this.atEndTag()) this.fail('missing value for <key>');
        }
        if (s.charCodeAt(this.pos) !== LT) this.fail('unexpected text between elements');
        const at = this.pos;
        if (s.charCodeAt(at + 1) === SLASH) this.fail('<plist> has no value'); // depth 0 only
        const id = this.openTag();
        if (++this.nodes > lim.maxNodes) this.fail('too many values', at);
        if (id === DICT || id === ARRAY) {
          const c: PlistDict | PlistValue[] = id === DICT ? {} : [];
          if (this.selfClosing) {
            v = c;
          } else {
            if (depth >= lim.maxDepth) this.fail('nesting too deep', at);
            stack.push(c);
            keys.push('');
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
        if (parent.length >= lim.maxItems) this.fail('too many items in <array>');
        parent.push(v);
      } else {
        parent[keys[depth - 1]!] = v;
      }
    }
  }

  /** Reads `<key>` into keys[i], checking duplicates and the per-dict limit. */
  private key(dict: PlistDict, i: number, keys: string[], counts: number[]): void {
    const at = this.pos;
    if (this.s.charCodeAt(at) !== LT) this.fail('unexpected text in <dict>');
    if (this.s.charCodeAt(at + 1) === SLASH || this.openTag() !== KEY) this.fail('expected <key> in <dict>', at);
    const k = this.selfClosing ? '' : this.text(KEY);
    if (++counts[i]! > this.lim.maxKeys) this.fail('too many keys in <dict>', at);
    // Assigning "__proto__" would replace the object's prototype.
    if (k === '__proto__') this.fail('forbidden key', at);
    if (Object.hasOwn(dict, k)) this.fail('duplicate key in <dict>', at);
    keys[i] = k;
  }

  private scalar(id: number, at: number): PlistValue {
    const empty = this.selfClosing;
    switch (id) {
      case STRING:
        return empty ? '' : this.text(STRING);
      case TRUE:
      case FALSE:
        if (!empty) {
          this.skipMisc();
          this.endTag(id);
        }
        return id === TRUE;
      case DATA:
        return parseData(empty ? '' : this.raw(DATA), at, this.lim.maxDataBytes);
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
    const lt = this.s.indexOf('<', this.pos);
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
    let out = '';
    for (;;) {
      const lt = s.indexOf('<', this.pos);
      if (lt === -1) this.fail(`unterminated <${NAMES[id]}>`, s.length);
      let piece = s.slice(this.pos, lt);
      if (piece.indexOf('&') !== -1) piece = decodeEntities(piece, this.pos);
      out = out.length === 0 ? piece : out + piece;
      this.pos = lt;
      if (s.charCodeAt(lt + 1) === SLASH) {
        this.endTag(id);
        break;
      } else if (s.startsWith('<![CDATA[', lt)) {
        const end = s.indexOf(']]>', lt + 9);
        if (end === -1) this.fail('unterminated CDATA section', s.length);
        out += s.slice(lt + 9, end);
        this.pos = end + 3;
      } else if (s.startsWith('<!--', lt)) {
        this.skipComment();
      } else {
        this.fail(`unexpected markup in <${NAMES[id]}>`);
      }
      // UTF-16 units never exceed UTF-8 bytes, so this cheap check stops growth early.
      if (out.length > max) this.fail('string exceeds size limit', lt);
    }
    // Exact UTF-8 size only when the string could be near the limit.
    if (out.length * 3 > max && Buffer.byteLength(out, 'utf8') > max) this.fail('string exceeds size limit');
    return out;
  }
}

/** Maps the name at s[start, start+len) to an element id, 0 if not a plist element. */
function tagId(s: string, start: number, len: number): number {
  switch (len) {
    case 3:
      return s.startsWith('key', start) ? KEY : 0;
    case 4:
      if (s.startsWith('dict', start)) return DICT;
      if (s.startsWith('data', start)) return DATA;
      if (s.startsWith('date', start)) return DATE;
      if (s.startsWith('real', start)) return REAL;
      if (s.startsWith('true', start)) return TRUE;
      return 0;
    case 5:
      if (s.startsWith('array', start)) return ARRAY;
      if (s.startsWith('false', start)) return FALSE;
      if (s.startsWith('plist', start)) return PLIST;
      return 0;
    case 6:
      return s.startsWith('string', start) ? STRING : 0;
    case 7:
      return s.startsWith('integer', start) ? INTEGER : 0;
    default:
      return 0;
  }
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
