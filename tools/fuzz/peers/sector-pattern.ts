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

/**
 * Bytes 8..511 of a sector depend only on base = (tag * 31 + sector * 7) & 0xff:
 * the 256 possible tails, made once, so filling and checking a sector is a
 * copy and a memcmp (the disk check of every case reads 512 sectors).
 */
const TAILS: Buffer[] = Array.from({ length: 256 }, (_, base) => {
  const t = Buffer.alloc(SECTOR - 8);
  for (let i = 8; i < SECTOR; i++) t[i - 8] = (base + i) & 0xff;
  return t;
});
const ZERO_SECTOR = Buffer.alloc(SECTOR);

const baseOf = (tag: number, sector: number): number => (tag * 31 + sector * 7) & 0xff;

/** Fill `buf[at, at+512)` with the pattern of (tag, sector). */
export function fillSector(buf: Uint8Array, at: number, tag: number, sector: number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset + at, SECTOR);
  dv.setUint32(0, tag >>> 0, true);
  dv.setUint32(4, sector >>> 0, true);
  buf.set(TAILS[baseOf(tag, sector)]!, at + 8);
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
  const tail = buf.subarray(at + 8, at + SECTOR);
  return Buffer.compare(tail, TAILS[baseOf(tag, sector)]!) === 0 ? tag : -1;
}

/** Whether `buf[at, at+512)` is all zero (a discarded sector). */
export function isZeroSector(buf: Uint8Array, at: number): boolean {
  return Buffer.compare(buf.subarray(at, at + SECTOR), ZERO_SECTOR) === 0;
}
