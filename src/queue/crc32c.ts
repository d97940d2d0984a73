/**
 * CRC-32C (Castagnoli), as iSCSI defines it (RFC 3720 §12.1, appendix B.4):
 * polynomial 0x1EDC6F41, here in its reflected form 0x82F63B78, initial
 * value 0xFFFFFFFF, input and output reflected, final XOR 0xFFFFFFFF.
 * Check value: crc32c("123456789") = 0xE3069283.
 *
 * Slicing-by-8 (eight 256-entry tables, eight input bytes per step) keeps
 * 64 KiB queue items cheap next to the I/O they ride on.
 */

const POLY = 0x82f63b78;

/** T[k][b]: the CRC of byte b followed by k zero bytes. */
const T: Uint32Array[] = (() => {
  const t = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let i = 0; i < 8; i++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[0]![b] = c >>> 0;
  }
  for (let b = 0; b < 256; b++) {
    for (let k = 1; k < 8; k++) t[k]![b] = (t[0]![t[k - 1]![b]! & 0xff]! ^ (t[k - 1]![b]! >>> 8)) >>> 0;
  }
  return t;
})();

/**
 * Continues a CRC-32C over `data`. Start with `crc32c(data)`; chain parts
 * with `crc32c(part2, crc32c(part1))` — the result equals the CRC of the
 * concatenation.
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = T as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  let c = ~previous >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    c ^= data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    c = t7[c & 0xff]! ^ t6[(c >>> 8) & 0xff]! ^ t5[(c >>> 16) & 0xff]! ^ t4[c >>> 24]! ^
      t3[data[i + 4]!]! ^ t2[data[i + 5]!]! ^ t1[data[i + 6]!]! ^ t0[data[i + 7]!]!;
  }
  for (; i < n; i++) c = t0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
