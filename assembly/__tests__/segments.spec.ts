import { blkifCopyIndirectSegments, blkifDecodeRequest, blkifEncodeRequest } from '../blkif';
import { clearArena, DESCS, EXPECT, SCRATCH, SEGS } from './mem';

// Segment arrays at every count and every position of a bad segment: the
// copy/check helpers (assembly/segments.ts) work two segments at a time with
// an odd last one, so each count 0..11 and each position is its own case.
// The oracle is written here from blkif.h: first_sect ≤ last_sect ≤ 7.

/** (first, last) pairs: valid edges and each way of being bad. */
const FIRSTS: u8[] = [0, 7, 0, 3, 0, 8, 1, 255, 7, 8, 255];
const LASTS: u8[] = [0, 7, 7, 2, 8, 8, 255, 255, 6, 7, 254];
function rangeOk(first: u8, last: u8): bool { return first <= last && last <= 7; }

/** Segment k of a background array: valid, distinct, pad not zero. */
function bgSeg(at: usize, k: u32): void {
  store<u32>(at, 0x1000 + k); store<u8>(at + 4, <u8>(k % 8)); store<u8>(at + 5, 7); store<u16>(at + 6, 0xabcd);
}
function fill(at: usize, n: u32): void { for (let k: u32 = 0; k < n; k++) bgSeg(at + 8 * k, k); }
/** The copy of a segment: as is, pad zero. */
function copied(src: usize): u64 { return load<u64>(src) & 0x0000_ffff_ffff_ffff; }

describe('segment arrays', () => {
  beforeEach(clearArena);

  it('decode copies nr segments (pads cleared), checks exactly those, for every count and bad position', () => {
    for (let abi: u32 = 0; abi < 2; abi++) {
      const tail: usize = abi == 0 ? 24 : 20;
      for (let nr: u32 = 0; nr <= 11; nr++) {
        for (let p: u32 = 0; p < 12; p++) {
          for (let c = 0; c < FIRSTS.length; c++) {
            memory.fill(SCRATCH, 0, 112);
            memory.fill(SEGS, 0xee, 96);
            store<u8>(SCRATCH, 2); // write-barrier: 0..11 segments allowed
            store<u8>(SCRATCH + 1, <u8>nr);
            fill(SCRATCH + tail, 11);
            store<u8>(SCRATCH + tail + 8 * p + 4, FIRSTS[c]);
            store<u8>(SCRATCH + tail + 8 * p + 5, LASTS[c]);
            const bad = p < nr && !rangeOk(FIRSTS[c], LASTS[c]);
            const st = blkifDecodeRequest(SCRATCH, DESCS, SEGS, abi);
            expect(st).toBe(bad ? -3 : 0, `abi ${abi} nr ${nr} bad at ${p}: ${FIRSTS[c]}..${LASTS[c]}`);
            for (let k: u32 = 0; k < nr; k++) expect(load<u64>(SEGS + 8 * k)).toBe(copied(SCRATCH + tail + 8 * k));
            expect(load<u8>(SEGS + 8 * nr)).toBe(0xee, 'nothing written past nr segments');
          }
        }
      }
    }
  });

  it('encode validates nr host segments and writes the full seg area once, for every count and bad position', () => {
    for (let abi: u32 = 0; abi < 2; abi++) {
      const tail: usize = abi == 0 ? 24 : 20;
      const size: usize = abi == 0 ? 112 : 108;
      for (let nr: u32 = 0; nr <= 11; nr++) {
        for (let p: u32 = 0; p < 12; p++) {
          for (let c = 0; c < FIRSTS.length; c++) {
            fill(SEGS, 12);
            store<u8>(SEGS + 8 * p + 4, FIRSTS[c]);
            store<u8>(SEGS + 8 * p + 5, LASTS[c]);
            store<u8>(DESCS, 3); store<u8>(DESCS + 1, 0); store<u16>(DESCS + 2, 1); store<u16>(DESCS + 4, <u16>nr);
            store<u64>(DESCS + 8, 4); store<u64>(DESCS + 16, 5); store<u64>(DESCS + 24, <u64>SEGS);
            memory.fill(SCRATCH, 0xee, 120);
            const bad = p < nr && !rangeOk(FIRSTS[c], LASTS[c]);
            const st = blkifEncodeRequest(DESCS, SCRATCH, abi);
            expect(st).toBe(bad ? -3 : 0, `abi ${abi} nr ${nr} bad at ${p}: ${FIRSTS[c]}..${LASTS[c]}`);
            if (bad) {
              expect(load<u8>(SCRATCH + tail)).toBe(0xee, 'slot untouched on failure');
              continue;
            }
            for (let k: u32 = 0; k < 11; k++) {
              expect(load<u64>(SCRATCH + tail + 8 * k)).toBe(k < nr ? copied(SEGS + 8 * k) : 0, `segment ${k} of ${nr}`);
            }
            expect(load<u8>(SCRATCH + size)).toBe(0xee, 'nothing written past the request');
          }
        }
      }
    }
  });

  it('copyIndirectSegments checks odd and even counts up to the last segment', () => {
    store<u32>(EXPECT, <u32>SCRATCH);
    for (let n: u32 = 1; n <= 9; n++) {
      fill(SCRATCH, n);
      expect(blkifCopyIndirectSegments(EXPECT, n, SEGS)).toBe(0);
      store<u8>(SCRATCH + 8 * (n - 1) + 5, 8);
      expect(blkifCopyIndirectSegments(EXPECT, n, SEGS)).toBe(-3, `last of ${n} has last_sect 8`);
      expect(load<u64>(SEGS + 8 * (n - 1))).toBe(copied(SCRATCH + 8 * (n - 1)));
    }
  });
});
