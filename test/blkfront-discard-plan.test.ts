/**
 * planDiscard: only whole granules (discard-granularity, offset by
 * discard-alignment) are discarded, in runs of at most 1 GiB. Expected runs
 * are worked out by hand in bytes.
 */
import { describe, expect, it } from 'vitest';
import { planDiscard } from '../src/blkfront/split.js';

const runs = (...r: [number, number][]) => r.map(([startByte, bytes]) => ({ wireSector: BigInt(startByte / 512), sectors512: bytes / 512 }));

describe('planDiscard', () => {
  it('keeps only the whole granules inside the range', () => {
    // bytes [5120, 25600) with 8 KiB granules: [8192, 24576)
    expect(planDiscard(10n, 40n, 512, 8192, 0)).toEqual(runs([8192, 16384]));
  });

  it('offsets granules by discard-alignment', () => {
    // granules start at 1024 + k·4096: inside [0, 16384) that is [1024, 13312)
    expect(planDiscard(0n, 32n, 512, 4096, 1024)).toEqual(runs([1024, 12288]));
  });

  it('gives nothing for a range holding no whole granule', () => {
    expect(planDiscard(1n, 6n, 512, 4096, 0)).toEqual([]);
  });

  it('uses the sector size when the granularity is smaller or absent', () => {
    expect(planDiscard(3n, 2n, 4096, 0, 0)).toEqual(runs([12288, 8192]));
  });

  it('splits into runs of at most 1 GiB of whole granules', () => {
    // 3 GiB from 0 with 3 MiB granules: 1 GiB rounds down to 341 granules
    const g = 3 << 20;
    const run = 341 * g;
    const total = 3 * 2 ** 30;
    const want: [number, number][] = [];
    for (let at = 0; at < total; at += run) want.push([at, Math.min(run, total - at)]);
    expect(planDiscard(0n, BigInt(total / 512), 512, g, 0)).toEqual(runs(...want));
  });
});
