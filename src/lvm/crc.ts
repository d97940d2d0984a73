/**
 * LVM2's `calc_crc` (lib/misc/crc.c): the reflected CRC-32 polynomial
 * 0xEDB88320, table driven, seeded with INITIAL_CRC and with no final XOR
 * (so it is not zlib's crc32, which seeds with ~0 and inverts at the end).
 * Continue a checksum across two buffers by passing the first result as
 * `initial` (that is how wrapped metadata text is summed).
 */

/** Seed of every LVM2 checksum (lib/misc/crc.h). */
export const INITIAL_CRC = 0xf597a6cf;

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** calc_crc(initial, bytes): an unsigned 32-bit value. */
export function calcCrc(initial: number, bytes: Uint8Array): number {
  let crc = initial >>> 0;
  for (let i = 0; i < bytes.length; i++) crc = TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}
