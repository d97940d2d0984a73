/**
 * Self-checking sector contents for the driver fuzzers: every 512-byte
 * sector written carries who wrote it (a tag) and where it belongs, so data
 * read back can be checked without knowing which of several racing writes
 * won: a sector is valid when its bytes are exactly pattern(tag, sector).
 *
 * ```
 *  0          4               8                                   512
 *  +----------+---------------+-----------------------------------+
 *  | tag u32  | sector u32    | (tag * 31 + sector * 7 + i) & 0xff |
 *  +----------+---------------+-----------------------------------+
 * ```
 * Tag 0 is the disk's initial contents.
 */
export const SECTOR = 512;

/** Fill `buf[at, at+512)` with the pattern of (tag, sector). */
export function fillSector(buf: Uint8Array, at: number, tag: number, sector: number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset + at, SECTOR);
  dv.setUint32(0, tag >>> 0, true);
  dv.setUint32(4, sector >>> 0, true);
  const base = (tag * 31 + sector * 7) & 0xff;
  for (let i = 8; i < SECTOR; i++) buf[at + i] = (base + i) & 0xff;
}

/** `n` sectors from `sector` written by `tag`. */
export function pattern(tag: number, sector: number, n: number): Uint8Array {
  const b = new Uint8Array(n * SECTOR);
  for (let i = 0; i < n; i++) fillSector(b, i * SECTOR, tag, sector + i);
  return b;
}

/** The tag of a valid sector at `at` that claims to be `sector`; -1 when the bytes are not a pattern for it. */
export function sectorTag(buf: Uint8Array, at: number, sector: number): number {
  const dv = new DataView(buf.buffer, buf.byteOffset + at, SECTOR);
  const tag = dv.getUint32(0, true);
  if (dv.getUint32(4, true) !== sector >>> 0) return -1;
  const base = (tag * 31 + sector * 7) & 0xff;
  for (let i = 8; i < SECTOR; i++) if (buf[at + i] !== ((base + i) & 0xff)) return -1;
  return tag;
}
