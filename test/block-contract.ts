/**
 * The BlockDevice contract, as a reusable vitest suite: any flavour (memory,
 * file, blkfront) passes a factory and gets the same checks. The oracle is a
 * plain byte array in the test (`model`), plus the backing store the factory
 * exposes (the memory array or the file's bytes read with fs).
 */
import { prng } from './support/disk-model.js';
import { describe, expect, it } from 'vitest';
import type { BlockDevice } from '../src/block/types.js';

export interface Harness {
  dev: BlockDevice;
  /** The device's bytes as stored by the backing (not read through `dev`). */
  backing(): Promise<Uint8Array>;
  cleanup(): Promise<void>;
}

export interface HarnessOptions {
  sizeBytes: number;
  sectorSize: number;
  readOnly?: boolean;
  /** Initial content (length sizeBytes); zeros if absent. */
  content?: Uint8Array;
}

export type Factory = (opts: HarnessOptions) => Promise<Harness>;

/** Deterministic PRNG (mulberry32, shared with the other tests) so failures reproduce. */
export const rng = prng;

export function pattern(len: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (r() * 256) | 0;
  return out;
}

/** Subarrays of one backing ArrayBuffer at odd byte offsets, with the given sector counts. */
export function oddBuffers(sectorCounts: number[], sectorSize: number): Uint8Array[] {
  const total = sectorCounts.reduce((a, b) => a + b, 0) * sectorSize + sectorCounts.length * 8 + 1;
  const ab = new ArrayBuffer(total);
  const out: Uint8Array[] = [];
  let off = 1;
  for (const n of sectorCounts) {
    out.push(new Uint8Array(ab, off, n * sectorSize));
    off += n * sectorSize + 8; // sector sizes are even: keeps every start odd
  }
  return out;
}

function concat(bufs: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(bufs.reduce((a, b) => a + b.byteLength, 0));
  let off = 0;
  for (const b of bufs) {
    out.set(b, off);
    off += b.byteLength;
  }
  return out;
}

/** Byte equality without vitest's slow element-wise diff; reports the first difference. */
export function expectBytes(actual: Uint8Array | undefined, expected: Uint8Array): void {
  expect(actual).toBeDefined();
  const a = actual!;
  expect(a.byteLength, 'length').toBe(expected.byteLength);
  if (Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)) !== 0) {
    let i = 0;
    while (a[i] === expected[i]) i++;
    expect.fail(`bytes differ first at offset ${i} (sector ${Math.floor(i / 512)} in 512-byte units): got ${a[i]}, want ${expected[i]}`);
  }
}

/** Asserts `p` rejects with a XenpvError of `code` (and `field`, if given). */
export async function rejectsWith(p: Promise<unknown>, code: string, field?: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a rejection with code ${code}`).toBeInstanceOf(Error);
  expect((err as { code?: string }).code).toBe(code);
  if (field !== undefined) expect((err as { field?: string }).field).toBe(field);
}

export function describeBlockContract(name: string, make: Factory, sectorSizes: number[] = [512, 4096]): void {
  for (const ss of sectorSizes) {
    describe(`${name} BlockDevice contract (sector size ${ss})`, () => {
      const sectors = 64;
      const size = sectors * ss;

      async function withDevice(
        opts: Partial<HarnessOptions>,
        body: (h: Harness) => Promise<void>,
      ): Promise<void> {
        const h = await make({ sizeBytes: size, sectorSize: ss, ...opts });
        try {
          await body(h);
        } finally {
          await h.cleanup();
        }
      }

      it('reports its geometry', () =>
        withDevice({}, async ({ dev }) => {
          const info = dev.info();
          expect(info.sectorSize).toBe(ss);
          expect(info.sizeSectors).toBe(BigInt(sectors));
          expect(info.readWrite).toBe(true);
          expect(info.physicalSectorSize).toBeGreaterThanOrEqual(ss);
        }));

      it('writes scatter/gather buffers at odd byte offsets contiguously on disk', () =>
        withDevice({}, async ({ dev, backing }) => {
          const bufs = oddBuffers([1, 2, 3], ss);
          const data = pattern(6 * ss, 1);
          let off = 0;
          for (const b of bufs) {
            b.set(data.subarray(off, off + b.byteLength));
            off += b.byteLength;
          }
          expect(bufs.every((b) => b.byteOffset % 2 === 1)).toBe(true);
          await dev.write(5n, bufs);
          const disk = await backing();
          expectBytes(disk.subarray(5 * ss, 11 * ss), data);
          expect(disk.subarray(0, 5 * ss).every((x) => x === 0)).toBe(true);
          expect(disk.subarray(11 * ss).every((x) => x === 0)).toBe(true);

          // Read back with a different split, also at odd offsets.
          const back = oddBuffers([4, 1, 1], ss);
          await dev.read(5n, back);
          expectBytes(concat(back), data);
        }));

      it('reads and writes the last sectors of the device', () =>
        withDevice({}, async ({ dev, backing }) => {
          const data = pattern(3 * ss, 2);
          await dev.write(BigInt(sectors - 3), [data.subarray(0, ss), data.subarray(ss)]);
          const disk = await backing();
          expectBytes(disk.subarray(size - 3 * ss), data);
          const back = new Uint8Array(3 * ss);
          await dev.read(BigInt(sectors - 3), [back]);
          expectBytes(back, data);
        }));

      it('refuses ranges that end past the device with out-of-range', () =>
        withDevice({}, async ({ dev, backing }) => {
          const one = new Uint8Array(ss).fill(0xaa);
          await rejectsWith(dev.read(BigInt(sectors), [one]), 'out-of-range');
          await rejectsWith(dev.write(BigInt(sectors - 1), [one, one]), 'out-of-range');
          await rejectsWith(dev.write(2n ** 64n, [one]), 'out-of-range');
          await rejectsWith(dev.discard(BigInt(sectors - 1), 2n), 'out-of-range');
          expect((await backing()).every((x) => x === 0)).toBe(true);
        }));

      it('names the bad argument with invalid-argument', () =>
        withDevice({}, async ({ dev }) => {
          const one = new Uint8Array(ss);
          const anyDev = dev as unknown as Record<string, (...a: unknown[]) => Promise<void>>;
          await rejectsWith(anyDev.read!(0, [one]), 'invalid-argument', 'sector');
          await rejectsWith(anyDev.write!(-1n, [one]), 'invalid-argument', 'sector');
          await rejectsWith(anyDev.read!(0n, one), 'invalid-argument', 'buffers');
          await rejectsWith(anyDev.read!(0n, []), 'invalid-argument', 'buffers');
          await rejectsWith(anyDev.write!(0n, [one, one, new Uint16Array(ss / 2)]), 'invalid-argument', 'buffers[2]');
          await rejectsWith(anyDev.write!(0n, [one, [0, 1]]), 'invalid-argument', 'buffers[1]');
          await rejectsWith(anyDev.read!(0n, [one, new Uint8Array(ss + 1)]), 'invalid-argument', 'buffers[1]');
          await rejectsWith(anyDev.read!(0n, [new Uint8Array(0)]), 'invalid-argument', 'buffers[0]');
          await rejectsWith(anyDev.discard!(0n, 0n), 'invalid-argument', 'count');
          await rejectsWith(anyDev.discard!(0n, 1), 'invalid-argument', 'count');
          await rejectsWith(anyDev.discard!(-2n, 1n), 'invalid-argument', 'sector');
        }));

      it('reports errors by rejecting, never by throwing synchronously', () =>
        withDevice({}, async ({ dev }) => {
          let p: Promise<void> | undefined;
          expect(() => {
            p = (dev.read as (...a: unknown[]) => Promise<void>)('nope', null);
          }).not.toThrow();
          await rejectsWith(p!, 'invalid-argument', 'sector');
        }));

      it('discard zeroes exactly the range', () =>
        withDevice({}, async ({ dev, backing }) => {
          const data = pattern(size, 3);
          await dev.write(0n, [data]);
          await dev.discard(10n, 7n);
          const expected = data.slice();
          expected.fill(0, 10 * ss, 17 * ss);
          expectBytes(await backing(), expected);
          const back = new Uint8Array(size);
          await dev.read(0n, [back]);
          expectBytes(back, expected);
        }));

      it('flush succeeds on a device that offers it', () =>
        withDevice({}, async ({ dev }) => {
          expect(dev.info().features.flush).toBe(true);
          await dev.write(0n, [new Uint8Array(ss).fill(1)]);
          await expect(dev.flush()).resolves.toBeUndefined();
        }));

      it('a read-only device refuses writes and discards but reads and flushes', () => {
        const content = pattern(size, 4);
        return withDevice({ readOnly: true, content }, async ({ dev, backing }) => {
          expect(dev.info().readWrite).toBe(false);
          await rejectsWith(dev.write(0n, [new Uint8Array(ss)]), 'read-only');
          await rejectsWith(dev.discard(0n, 1n), 'read-only');
          const back = new Uint8Array(2 * ss);
          await dev.read(1n, [back]);
          expectBytes(back, content.subarray(ss, 3 * ss));
          await dev.flush();
          expectBytes(await backing(), content);
        });
      });

      it('checks in order: disconnected, invalid-argument, read-only, out-of-range', () =>
        withDevice({ readOnly: true }, async ({ dev }) => {
          const anyDev = dev as unknown as Record<string, (...a: unknown[]) => Promise<void>>;
          // bad argument and read-only: invalid-argument wins
          await rejectsWith(anyDev.write!(0n, [new Uint8Array(ss + 1)]), 'invalid-argument', 'buffers[0]');
          // read-only and out of range: read-only wins
          await rejectsWith(dev.write(BigInt(sectors), [new Uint8Array(ss)]), 'read-only');
          await dev.disconnect();
          await rejectsWith(anyDev.write!(-1n, []), 'disconnected');
        }));

      it('after disconnect every call rejects with disconnected', () =>
        withDevice({}, async ({ dev }) => {
          const first = dev.disconnect();
          const second = dev.disconnect();
          expect(second).toBe(first);
          await first;
          const one = new Uint8Array(ss);
          await rejectsWith(dev.read(0n, [one]), 'disconnected');
          await rejectsWith(dev.write(0n, [one]), 'disconnected');
          await rejectsWith(dev.flush(), 'disconnected');
          await rejectsWith(dev.discard(0n, 1n), 'disconnected');
          await expect(dev.disconnect()).resolves.toBeUndefined();
          expect(dev.info().sizeSectors).toBe(BigInt(sectors)); // last known info stays readable
        }));

      it('disconnect lets calls already in flight finish', () =>
        withDevice({}, async ({ dev, backing }) => {
          const data = pattern(8 * ss, 5);
          const w = dev.write(8n, [data]);
          const d = dev.disconnect();
          await expect(w).resolves.toBeUndefined();
          await d;
          expectBytes((await backing()).subarray(8 * ss, 16 * ss), data);
        }));

      it('concurrent writes to disjoint ranges all land', () =>
        withDevice({}, async ({ dev, backing }) => {
          const r = rng(6);
          const model = new Uint8Array(size);
          const writes: Promise<void>[] = [];
          let sector = 0;
          while (sector < sectors) {
            const n = Math.min(1 + Math.floor(r() * 4), sectors - sector);
            const counts = n === 1 ? [1] : [1, n - 1];
            const bufs = oddBuffers(counts, ss);
            let off = sector * ss;
            for (const b of bufs) {
              b.set(pattern(b.byteLength, sector * 131 + off));
              model.set(b, off);
              off += b.byteLength;
            }
            writes.push(dev.write(BigInt(sector), bufs));
            sector += n;
          }
          expect(writes.length).toBeGreaterThan(10);
          await Promise.all(writes);
          expectBytes(await backing(), model);
        }));

      it('matches a byte-array model over a random sequence of operations', () =>
        withDevice({}, async ({ dev, backing }) => {
          const r = rng(7);
          const model = new Uint8Array(size);
          for (let i = 0; i < 200; i++) {
            const start = Math.floor(r() * sectors);
            const n = 1 + Math.floor(r() * Math.min(6, sectors - start));
            const op = r();
            if (op < 0.45) {
              const data = pattern(n * ss, i);
              const split = 1 + Math.floor(r() * n);
              await dev.write(BigInt(start), n === split ? [data] : [data.subarray(0, split * ss), data.subarray(split * ss)]);
              model.set(data, start * ss);
            } else if (op < 0.85) {
              const bufs = oddBuffers([n], ss);
              await dev.read(BigInt(start), bufs);
              expectBytes(bufs[0], model.subarray(start * ss, (start + n) * ss));
            } else {
              await dev.discard(BigInt(start), BigInt(n));
              model.fill(0, start * ss, (start + n) * ss);
            }
          }
          expectBytes(await backing(), model);
        }));
    });
  }
}
