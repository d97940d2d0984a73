/**
 * LVM2's text configuration syntax (libdm/libdm-config.c), in which volume
 * group metadata is written:
 *
 *   file    := entry*
 *   entry   := key '=' value | key '{' entry* '}'
 *   key     := identifier | "escaped string" | 'string'
 *   value   := scalar | '[' (scalar ','?)* ']'
 *   scalar  := integer | float | "escaped string" | 'string' | bare word
 *
 * `#` starts a comment to the end of the line; a NUL byte ends the text.
 * Integers are read as strtoll(…, 0) reads them (a leading 0 means octal).
 * In a double-quoted string a backslash escapes the next character.
 *
 * `parseConfig` builds an ordered tree; `formatConfig` writes one back in
 * the layout LVM2 uses (one entry per line, tab indentation). Both throw
 * CorruptMetadataError('metadata') on malformed text.
 */
import { CorruptMetadataError } from './errors.js';

/** A float as written (LVM2 metadata does not use them; kept verbatim). */
export interface ConfigFloat {
  readonly float: string;
}
export type ConfigScalar = bigint | string | ConfigFloat;
export type ConfigValue = ConfigScalar | readonly ConfigScalar[];

export interface ConfigSection {
  readonly entries: ConfigEntry[];
}
export interface ConfigEntry {
  readonly key: string;
  value: ConfigValue | ConfigSection;
}

export function isSection(v: ConfigValue | ConfigSection | undefined): v is ConfigSection {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'entries' in v;
}

type Tok =
  | { t: 'int'; v: bigint }
  | { t: 'float'; v: string }
  | { t: 'str'; v: string }
  | { t: 'word'; v: string }
  | { t: '{' | '}' | '[' | ']' | ',' | '=' | 'eof' };

const fail = (msg: string, line: number): never => {
  throw new CorruptMetadataError('metadata', `line ${line}: ${msg}`);
};
const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';

class Lexer {
  #at = 0;
  line = 1;
  readonly #end: number;
  constructor(readonly text: string) {
    const nul = text.indexOf('\0');
    this.#end = nul < 0 ? text.length : nul;
  }

  /** Next token; `valueAllowed` after '=', '[' or ',' (digits then start a number, as in _get_token). */
  next(valueAllowed: boolean): Tok {
    const s = this.text;
    for (;;) {
      while (this.#at < this.#end && isSpace(s[this.#at]!)) if (s[this.#at++] === '\n') this.line++;
      if (this.#at < this.#end && s[this.#at] === '#') {
        while (this.#at < this.#end && s[this.#at] !== '\n') this.#at++;
        continue;
      }
      break;
    }
    if (this.#at >= this.#end) return { t: 'eof' };
    const c = s[this.#at]!;
    if ('{}[],='.includes(c)) {
      this.#at++;
      return { t: c as '{' };
    }
    if (c === '"' || c === "'") return { t: 'str', v: this.#string(c) };
    if (valueAllowed && /[0-9+\-.]/.test(c)) {
      let e = this.#at + 1;
      let float = c === '.';
      for (; e < this.#end; e++) {
        const d = s[e]!;
        if (d >= '0' && d <= '9') continue;
        if (d === '.' && !float) {
          float = true;
          continue;
        }
        break;
      }
      const lit = s.slice(this.#at, e);
      this.#at = e;
      if (float) return { t: 'float', v: lit };
      return { t: 'int', v: parseInteger(lit, this.line) };
    }
    let e = this.#at + 1;
    while (e < this.#end && !isSpace(s[e]!) && !'#={}'.includes(s[e]!)) e++;
    const word = s.slice(this.#at, e);
    this.#at = e;
    return { t: 'word', v: word };
  }

  #string(q: string): string {
    const s = this.text;
    let out = '';
    let e = this.#at + 1;
    for (; e < this.#end && s[e] !== q; e++) {
      if (q === '"' && s[e] === '\\' && e + 1 < this.#end) e++;
      if (s[e] === '\n') this.line++;
      out += s[e];
    }
    if (e >= this.#end) fail('unterminated string', this.line);
    this.#at = e + 1;
    return out;
  }
}

function parseInteger(lit: string, line: number): bigint {
  const m = /^([+-]?)(\d+)$/.exec(lit);
  if (m === null) return fail(`${JSON.stringify(lit)} is not a number`, line);
  const digits = m[2]!;
  const octal = digits.length > 1 && digits[0] === '0';
  if (octal && !/^[0-7]+$/.test(digits)) fail(`${JSON.stringify(lit)} is not an octal number`, line);
  const n = octal ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits);
  const v = m[1] === '-' ? -n : n;
  if (v > 0x7fffffffffffffffn || v < -0x8000000000000000n) fail(`${lit} does not fit in 64 bits`, line);
  return v;
}

/** Parses configuration text (up to its first NUL byte) into an ordered tree. */
export function parseConfig(text: string): ConfigSection {
  const lx = new Lexer(text);
  let tok = lx.next(false);
  const advance = (valueAllowed: boolean): void => {
    tok = lx.next(valueAllowed);
  };

  const peek = (): Tok => tok;
  const scalar = (): ConfigScalar => {
    const t = tok;
    switch (t.t) {
      case 'int':
      case 'float':
      case 'str':
      case 'word':
        return t.t === 'float' ? { float: t.v } : t.v;
      default:
        return fail(`expected a value, found ${describe(t)}`, lx.line);
    }
  };

  const section = (top: boolean): ConfigSection => {
    const entries: ConfigEntry[] = [];
    const seen = new Set<string>();
    for (;;) {
      if (tok.t === 'eof') {
        if (!top) fail('unexpected end of text inside a section', lx.line);
        return { entries };
      }
      if (tok.t === '}') {
        if (top) fail("unexpected '}'", lx.line);
        advance(false);
        return { entries };
      }
      if (tok.t !== 'word' && tok.t !== 'str') fail(`expected a name, found ${describe(tok)}`, lx.line);
      const key = (tok as { v: string }).v;
      if (key === '') fail('empty name', lx.line);
      // LVM2 merges repeated sections and lets a repeated value win; it never
      // writes either, so a repeat here means the text is not LVM2's.
      if (seen.has(key)) fail(`${JSON.stringify(key)} appears twice in one section`, lx.line);
      seen.add(key);
      advance(false);
      if (tok.t === '{') {
        advance(false);
        entries.push({ key, value: section(false) });
        continue;
      }
      if (tok.t !== '=') fail(`expected '=' or '{' after ${JSON.stringify(key)}, found ${describe(tok)}`, lx.line);
      advance(true);
      let value: ConfigValue;
      if (tok.t === '[') {
        const items: ConfigScalar[] = [];
        advance(true);
        // peek(): `advance` replaces tok, which TypeScript's narrowing cannot see.
        while (peek().t !== ']') {
          items.push(scalar());
          advance(true);
          if (peek().t === ',') advance(true);
        }
        value = items;
      } else {
        value = scalar();
      }
      advance(false);
      entries.push({ key, value });
    }
  };
  return section(true);
}

function describe(t: Tok): string {
  if (t.t === 'eof') return 'the end of the text';
  if ('v' in t) return JSON.stringify(String(t.v));
  return `'${t.t}'`;
}

// ------------------------------------------------------------ formatting

/** Names LVM2 allows for VGs, LVs and keys: written bare; anything else is quoted. */
const IDENT = /^[A-Za-z0-9_.+-]+$/;

/** dm_escape_double_quotes: `"` and `\` get a backslash. */
export function quote(s: string): string {
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

function formatScalar(v: ConfigScalar): string {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return quote(v);
  return v.float;
}

function formatValue(v: ConfigValue): string {
  return Array.isArray(v) ? `[${(v as ConfigScalar[]).map(formatScalar).join(', ')}]` : formatScalar(v as ConfigScalar);
}

function formatKey(k: string): string {
  return IDENT.test(k) ? k : quote(k);
}

/** Writes `root`'s entries one per line, sections as `name {` … `}`, indented with tabs. */
export function formatConfig(root: ConfigSection, depth = 0): string {
  const pad = '\t'.repeat(depth);
  let out = '';
  for (const e of root.entries) {
    if (isSection(e.value)) {
      out += `${pad}${formatKey(e.key)} {\n${formatConfig(e.value, depth + 1)}${pad}}\n`;
    } else {
      out += `${pad}${formatKey(e.key)} = ${formatValue(e.value)}\n`;
    }
  }
  return out;
}

// ------------------------------------------------------------ lookups

/** The entry `key` of `s`, or undefined. */
export function lookup(s: ConfigSection, key: string): ConfigValue | ConfigSection | undefined {
  return s.entries.find((e) => e.key === key)?.value;
}

/** Deep copy (sections and arrays; scalars are immutable). */
export function cloneSection(s: ConfigSection): ConfigSection {
  return {
    entries: s.entries.map((e) => ({
      key: e.key,
      value: isSection(e.value) ? cloneSection(e.value) : Array.isArray(e.value) ? [...(e.value as ConfigScalar[])] : e.value,
    })),
  };
}

/** Sets `key` in `s` (replacing in place, or appending). */
export function assign(s: ConfigSection, key: string, value: ConfigValue | ConfigSection): void {
  const e = s.entries.find((x) => x.key === key);
  if (e) e.value = value;
  else s.entries.push({ key, value });
}

/** Removes `key` from `s`; returns whether it was there. */
export function unassign(s: ConfigSection, key: string): boolean {
  const i = s.entries.findIndex((x) => x.key === key);
  if (i < 0) return false;
  s.entries.splice(i, 1);
  return true;
}
