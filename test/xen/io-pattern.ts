/**
 * Verified random I/O against a BlockDevice, with an in-memory model of the
 * disk as the oracle (test/support/disk-model.ts): batches of concurrent
 * requests on disjoint extents, scatter/gather lists whose buffers start at
 * odd addresses, reads compared with the model, and the backing file
 * compared with the model at the end.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { BlockDevice } from '../../src/block/types.js';
import { randomBytes } from 'node:crypto';
import { concat, disjointExtents, firstDifference, prng, scatter } from '../support/disk-model.js';

export const SECTOR = 512;

export interface PatternResult { ops: number; bytes: number }

/**
 * `rounds` batches of `depth` concurrent reads and writes (a random mix, up
 * to `maxSectors` each) on disjoint extents; `model` follows every write.
 */
export async function randomIo(dev: BlockDevice, model: Uint8Array, seed: number, rounds: number, depth = 32, maxSectors = 512): Promise<PatternResult> {
  const rnd = prng(seed);
  let ops = 0;
  let bytes = 0;
  for (let round = 0; round < rounds; round++) {
    const work = disjointExtents(rnd, model.length / SECTOR, depth, maxSectors).map(([sector, count]) => {
      ops++;
      bytes += count * SECTOR;
      const at = sector * SECTOR;
      if (rnd() < 0.5) {
        // Data from the kernel's RNG: a byte-wise PRNG costs seconds under TCG; the model is the oracle.
        const data = new Uint8Array(randomBytes(count * SECTOR));
        return dev.write(BigInt(sector), scatter(rnd, data, SECTOR)).then(() => model.set(data, at));
      }
      const bufs = scatter(rnd, new Uint8Array(count * SECTOR), SECTOR);
      return dev.read(BigInt(sector), bufs).then(() => {
        const got = concat(bufs);
        const i = firstDifference(got, model.subarray(at, at + got.length));
        if (i >= 0) throw new Error(`read of ${count} sectors at ${sector}: byte ${i} is ${got[i]}, the model says ${model[at + i]}`);
      });
    });
    await Promise.all(work);
  }
  return { ops, bytes };
}

/** The backing file equals the model, byte for byte (first difference reported). */
export function expectFileEquals(path: string, model: Uint8Array): void {
  const file = readFileSync(path);
  expect(file.length).toBe(model.length);
  const i = firstDifference(file, model);
  if (i >= 0) expect.fail(`${path} differs from the model first at byte ${i} (sector ${Math.floor(i / SECTOR)})`);
}
