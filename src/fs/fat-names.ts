/**
 * FAT names, from the Microsoft FAT specification (fatgen103): the 8.3
 * short name of a directory entry, the VFAT long name spread over the
 * entries before it, and the checksum that ties them together.
 *
 *   short name  11 bytes: base (8, space-padded) + extension (3, space-padded),
 *               upper case; byte 0 = 0x05 stands for a real 0xE5
 *   long entry  32 bytes, 13 UTF-16 code units each, stored last-first
 *   offset size field
 *   0      1    Ord       1..20; 0x40 marks the last (stored first)
 *   1      10   Name1     units 1-5
 *   11     1    Attr      0x0F
 *   12     1    Type      0
 *   13     1    Chksum    checksum of the short name below
 *   14     12   Name2     units 6-11
 *   26     2    FstClusLO 0
 *   28     4    Name3     units 12-13
 *   after the name: one 0x0000, then 0xFFFF to the end of the entry
 */
import { FileSystemError } from './errors.js';

export const ENTRY = 32;
export const ATTR_LFN = 0x0f;
export const LAST_LFN = 0x40;
const UNITS = 13;
/** Byte offsets of the 13 UTF-16 units inside a long entry. */
const UNIT_AT = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/** The short-name checksum stored in every long entry of the set. */
export function shortNameChecksum(name: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >>> 1) + name[i]!) & 0xff;
  return sum;
}

/** "NAME.EXT" as a reader shows an 8.3 name. */
export function shortNameText(name: Uint8Array): string {
  const chars = [...name.subarray(0, 11)].map((c, i) => String.fromCharCode(i === 0 && c === 0x05 ? 0xe5 : c));
  const base = chars.slice(0, 8).join('').trimEnd();
  const ext = chars.slice(8).join('').trimEnd();
  return ext ? `${base}.${ext}` : base;
}

/** Characters a long name must not hold (besides controls), from the spec. */
const LONG_INVALID = /[\u0000-\u001f"*/:<>?\\|]/;

/** `invalid-path` unless `name` can be a long name: 1..255 units, no forbidden characters, not ending in '.' or ' '. */
export function checkLongName(name: string, path: string): void {
  if (name.length === 0 || name.length > 255) throw new FileSystemError('invalid-path', `a FAT name has 1..255 characters (got ${name.length})`, { path });
  if (LONG_INVALID.test(name)) throw new FileSystemError('invalid-path', `${JSON.stringify(name)} holds a character FAT names cannot`, { path });
  if (/[. ]$/.test(name)) throw new FileSystemError('invalid-path', `a FAT name cannot end in '.' or ' '`, { path });
}

/** Characters allowed in a short name besides A-Z and 0-9. */
const SHORT_SPECIAL = "$%'-_@~`!(){}^#&";

/**
 * The basis of the short name for `long` (the spec's basis-name steps):
 * upper case, spaces and leading dots gone, other unfit characters '_',
 * base up to 8 and extension up to 3 from the last dot. `lossy` when that
 * lost anything, so a numeric tail is needed.
 */
export function shortBasis(long: string): { base: string; ext: string; lossy: boolean } {
  let lossy = false;
  const clean = (s: string) =>
    [...s.toUpperCase()]
      .map((c) => {
        if (/[A-Z0-9]/.test(c) || SHORT_SPECIAL.includes(c)) return c;
        lossy = true;
        return '_';
      })
      .join('');
  let s = long.replace(/ /g, '');
  if (s !== long) lossy = true;
  const stripped = s.replace(/^\.+/, '');
  if (stripped !== s) lossy = true;
  s = stripped;
  const dot = s.lastIndexOf('.');
  let base = clean(dot < 0 ? s : s.slice(0, dot).replace(/\./g, () => ((lossy = true), '')));
  let ext = clean(dot < 0 ? '' : s.slice(dot + 1));
  if (base.length > 8) (base = base.slice(0, 8)), (lossy = true);
  if (ext.length > 3) (ext = ext.slice(0, 3)), (lossy = true);
  if (base === '') (base = '_'), (lossy = true);
  return { base, ext, lossy };
}

function pack(base: string, ext: string): Uint8Array {
  const out = new Uint8Array(11).fill(0x20);
  for (let i = 0; i < base.length; i++) out[i] = base.charCodeAt(i);
  for (let i = 0; i < ext.length; i++) out[8 + i] = ext.charCodeAt(i);
  if (out[0] === 0xe5) out[0] = 0x05;
  return out;
}

/**
 * A short name for `long` that no name in `taken` (upper-case "NAME.EXT"
 * texts) uses: the basis itself when nothing was lost and it is free,
 * else BASE~N with the smallest free N (1..999999).
 */
export function makeShortName(long: string, taken: ReadonlySet<string>): Uint8Array {
  const { base, ext, lossy } = shortBasis(long);
  if (!lossy) {
    const plain = pack(base, ext);
    if (!taken.has(shortNameText(plain))) return plain;
  }
  for (let n = 1; n <= 999_999; n++) {
    const tail = `~${n}`;
    const name = pack(base.slice(0, 8 - tail.length) + tail, ext);
    if (!taken.has(shortNameText(name))) return name;
  }
  throw new FileSystemError('no-space', 'no free short name left in the directory');
}

/** The long entries for `long`, in disk order (last part first), each carrying `checksum`. */
export function longEntries(long: string, checksum: number): Uint8Array[] {
  const count = Math.ceil(long.length / UNITS);
  const out: Uint8Array[] = [];
  for (let k = count; k >= 1; k--) {
    const e = new Uint8Array(ENTRY);
    e[0] = k | (k === count ? LAST_LFN : 0);
    e[11] = ATTR_LFN;
    e[13] = checksum;
    for (let u = 0; u < UNITS; u++) {
      const i = (k - 1) * UNITS + u;
      const unit = i < long.length ? long.charCodeAt(i) : i === long.length ? 0x0000 : 0xffff;
      e[UNIT_AT[u]!] = unit & 0xff;
      e[UNIT_AT[u]! + 1] = unit >>> 8;
    }
    out.push(e);
  }
  return out;
}

/** The 13 (or fewer, before the 0x0000) units of one long entry. */
export function longEntryPart(e: Uint8Array): string {
  let s = '';
  for (const at of UNIT_AT) {
    const unit = e[at]! | (e[at + 1]! << 8);
    if (unit === 0x0000) break;
    s += String.fromCharCode(unit);
  }
  return s;
}
