/**
 * Xen's xenstore-utils output conventions, so `xenpv xenstore` prints what
 * `xenstore-ls` / `xenstore-read` print (the test runs both on one server):
 *
 *   value quoting   printable ASCII but '\' as is; \t \n \r \\; bytes < 010
 *                   as \ooo (3 octal digits); others as \xhh
 *   ls line         <depth spaces><name> = "<quoted value>"
 *                   cut to the width (80 off a terminal, columns - 2 on one):
 *                   a value that does not fit prints as much as fits and '\...'
 *   ls -f           full paths, never cut
 *   ls -p           value, then ' ', a ". . ." pad to column 60, "  (perms)"
 */
import type { XsPerm } from '../../src/platform/types.js';
import { formatPerm } from '../../src/xenstore/perms.js';

/** xenstore-read's rendering of a value (sanitise_value). */
export function quoteValue(bytes: Uint8Array): string {
  let s = '';
  for (const c of bytes) {
    if (c >= 0x20 && c <= 0x7e && c !== 0x5c) s += String.fromCharCode(c);
    else if (c === 0x09) s += '\\t';
    else if (c === 0x0a) s += '\\n';
    else if (c === 0x0d) s += '\\r';
    else if (c === 0x5c) s += '\\\\';
    else if (c < 0o10) s += '\\' + c.toString(8).padStart(3, '0');
    else s += '\\x' + c.toString(16).padStart(2, '0');
  }
  return s;
}

/** xenstore-write's reading of a quoted value (unsanitise_value): the inverse of quoteValue. */
export function unquoteValue(text: string): Uint8Array {
  const src = Buffer.from(text, 'latin1');
  const out: number[] = [];
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c !== 0x5c || i + 1 >= src.length) {
      out.push(c);
      continue;
    }
    const e = String.fromCharCode(src[++i]!);
    if (e === 't') out.push(0x09);
    else if (e === 'n') out.push(0x0a);
    else if (e === 'r') out.push(0x0d);
    else if (e === '\\') out.push(0x5c);
    else if (e === 'x' && /^[0-9a-fA-F]{1,2}/.test(text.slice(i + 1))) {
      const m = /^[0-9a-fA-F]{1,2}/.exec(text.slice(i + 1))![0];
      out.push(parseInt(m, 16));
      i += m.length;
    } else if (/[0-7]/.test(e)) {
      const m = /^[0-7]{1,3}/.exec(text.slice(i))![0];
      out.push(parseInt(m, 8) & 0xff);
      i += m.length - 1;
    } else out.push(src[i]!); // an unknown escape keeps the character
  }
  return Uint8Array.from(out);
}

const TAG_LEN = ' = "..."'.length;
const DESIRED_WIDTH = 60;

/** printf("%.*s"): a negative precision prints the whole string. */
function upTo(s: string, n: number): string {
  return n < 0 ? s : s.slice(0, n);
}

export interface LsLine {
  depth: number;
  name: string;
  path: string;
  /** undefined: the node could not be read. */
  value: Uint8Array | undefined;
  perms?: XsPerm[];
}

/** One line of xenstore-ls output (do_ls), without its newline. */
export function lsLine(l: LsLine, opts: { width: number; full: boolean; perms: boolean }): string {
  const maxWidth = opts.full ? Number.MAX_SAFE_INTEGER : opts.width;
  const desired = opts.full ? 0 : DESIRED_WIDTH;
  let line = opts.full ? l.path : ' '.repeat(l.depth) + upTo(l.name, maxWidth - TAG_LEN - l.depth);
  if (l.value === undefined) line += ':';
  else {
    const quoted = quoteValue(l.value);
    if (maxWidth < line.length + l.value.length + TAG_LEN) {
      line += ` = "${upTo(quoted, maxWidth - TAG_LEN - line.length)}\\..."`;
    } else {
      line += ` = "${quoted}"`;
      if (opts.perms) {
        line += ' ';
        for (let w = line.length; w < Math.min(desired, maxWidth); w++) line += w & 1 ? '.' : ' ';
      }
    }
  }
  if (opts.perms && l.perms) line += `  (${l.perms.map(formatPerm).join(',')})`;
  return line;
}
