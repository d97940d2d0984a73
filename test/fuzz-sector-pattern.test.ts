/**
 * The fuzzers' self-checking sector pattern (tools/fuzz/peers/sector-pattern.ts),
 * against the layout written out byte by byte here: tag u32 LE, sector u32
 * LE, then (tag * 31 + sector * 7 + i) & 0xff for i = 8..511.
 */
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fillSector, isZeroSector, pattern, SECTOR, sectorTag } from '../tools/fuzz/peers/sector-pattern.js';

function reference(tag: number, sector: number): Uint8Array {
  const b = new Uint8Array(SECTOR);
  for (let k = 0; k < 4; k++) b[k] = (tag >>> (8 * k)) & 0xff;
  for (let k = 0; k < 4; k++) b[4 + k] = (sector >>> (8 * k)) & 0xff;
  for (let i = 8; i < SECTOR; i++) b[i] = (tag * 31 + sector * 7 + i) & 0xff;
  return b;
}

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });

describe('sector pattern', () => {
  it('fills exactly the documented bytes and reads its tag back', () => {
    fc.assert(fc.property(u32, fc.integer({ min: 0, max: 1 << 20 }), (tag, sector) => {
      const buf = new Uint8Array(3 * SECTOR).fill(0x5a);
      fillSector(buf, SECTOR, tag, sector);
      expect(buf.subarray(SECTOR, 2 * SECTOR)).toEqual(reference(tag, sector));
      expect(buf[SECTOR - 1]).toBe(0x5a);
      expect(buf[2 * SECTOR]).toBe(0x5a);
      expect(sectorTag(buf, SECTOR, sector)).toBe(tag);
      expect(pattern(tag, sector, 1)).toEqual(reference(tag, sector));
    }), { numRuns: 300 });
  });

  it('rejects a sector with any one byte changed, or claimed for another sector', () => {
    fc.assert(fc.property(u32, fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 0, max: SECTOR - 1 }), fc.integer({ min: 1, max: 255 }), (tag, sector, at, flip) => {
      const b = reference(tag, sector);
      expect(sectorTag(b, 0, sector + 1)).toBe(-1);
      b[at] ^= flip;
      if (at >= 4) expect(sectorTag(b, 0, sector)).toBe(-1);
      else expect(sectorTag(b, 0, sector)).not.toBe(tag);
    }), { numRuns: 300 });
  });

  it('tells a zero sector from one with a single non-zero byte', () => {
    const b = new Uint8Array(2 * SECTOR);
    expect(isZeroSector(b, SECTOR)).toBe(true);
    b[2 * SECTOR - 1] = 1;
    expect(isZeroSector(b, SECTOR)).toBe(false);
    expect(isZeroSector(b, 0)).toBe(true);
  });
});
