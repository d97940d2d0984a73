/**
 * PersistentQueue behaviour over the memory and file flavours: order,
 * wrap-around, items larger than a sector, backpressure, reopen, two
 * handles as two processes would use them, and typed errors for bad input.
 * The oracle is the list of items the test pushed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileBlockDevice } from '../src/block/file.js';
import { MemoryBlockDevice } from '../src/block/memory.js';
import type { BlockDevice } from '../src/block/types.js';
import { PersistentQueue } from '../src/queue/index.js';
import { createHash } from 'node:crypto';
import { prng, randomBytes } from './support/disk-model.js';

/** Items compared by length and digest (vitest's deep equality on big typed arrays is slow). */
const ids = (items: (Uint8Array | undefined)[]): string[] =>
  items.map((b) => (b === undefined ? 'none' : `${b.length}:${createHash('sha1').update(b).digest('hex')}`));

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const flavours: [string, (bytes: number, sectorSize: number) => Promise<BlockDevice>][] = [
  ['memory', async (bytes, sectorSize) => new MemoryBlockDevice({ sizeBytes: bytes, sectorSize })],
  ['file', async (bytes, sectorSize) => {
    const d = await mkdtemp(join(tmpdir(), 'xenpv-queue-'));
    dirs.push(d);
    return FileBlockDevice.open(join(d, 'q.img'), { create: { sizeBytes: bytes }, sectorSize });
  }],
];

async function drain(q: PersistentQueue): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (;;) {
    const got = await q.popMany(64);
    if (got.length === 0) return out;
    out.push(...got);
  }
}

for (const [name, make] of flavours) {
  for (const sectorSize of [512, 4096]) {
    describe(`PersistentQueue over ${name}: (${sectorSize}-byte sectors)`, () => {
      it('returns items in push order, across many laps of a small ring, for sizes 0 to 3 sectors', async () => {
        const dev = await make(sectorSize * 40, sectorSize);
        const q = await PersistentQueue.format(dev, { dataSectors: 16n });
        const rnd = prng(sectorSize);
        const sizes = [0, 1, 7, 8, 64, sectorSize - 17, sectorSize - 16, sectorSize, sectorSize + 1, 3 * sectorSize];
        let pushed = 0;
        let popped = 0;
        const expected: Uint8Array[] = [];
        for (let round = 0; round < 60; round++) {
          const batch = Array.from({ length: 1 + (round % 3) }, (_, i) => randomBytes(rnd, sizes[(round + i) % sizes.length]!));
          const ok = await Promise.all(batch.map((b) => q.push(b)));
          batch.forEach((b, i) => {
            if (ok[i]) expected.push(b);
          });
          pushed += ok.filter(Boolean).length;
          for (const item of await q.popMany(2)) expect(ids([item])).toEqual(ids([expected[popped++]]));
        }
        for (const item of await drain(q)) expect(ids([item])).toEqual(ids([expected[popped++]]));
        expect(popped).toBe(pushed);
        expect(pushed).toBeGreaterThan(60);
        expect(q.stats().producer).toBeGreaterThan(q.stats().capacityBytes * 3n); // wrapped at least 3 times
        await dev.disconnect();
      });

      it('reports full with false, keeps order behind a refused push, and accepts again once consumed', async () => {
        const dev = await make(sectorSize * 16, sectorSize);
        const q = await PersistentQueue.format(dev, { dataSectors: 4n });
        const item = new Uint8Array(sectorSize - 16).fill(1); // one record per sector
        const results = await Promise.all(Array.from({ length: 6 }, (_, i) => q.push(item.map(() => i))));
        const accepted = results.filter(Boolean).length;
        expect(accepted).toBeGreaterThan(0);
        expect(accepted).toBeLessThan(6);
        expect(results).toEqual(results.map((_, i) => i < accepted)); // a prefix: nothing overtook a refused push
        expect(await q.pop()).toEqual(item.map(() => 0));
        expect(await q.push(item.map(() => 9))).toBe(true);
        const rest = await drain(q);
        expect(rest.map((b) => b[0])).toEqual([...Array.from({ length: accepted - 1 }, (_, i) => i + 1), 9]);
        await dev.disconnect();
      });

      it('keeps pushed and unconsumed items across a reopen, and forgets consumed ones', async () => {
        const dev = await make(sectorSize * 64, sectorSize);
        const q = await PersistentQueue.format(dev);
        const items = Array.from({ length: 20 }, (_, i) => new TextEncoder().encode(`item ${i} `.repeat(i * 10)));
        for (const it of items) expect(await q.push(it)).toBe(true);
        expect(await q.peek()).toEqual(items[0]);
        expect(await q.peek()).toEqual(items[0]); // peek does not consume
        expect(await q.advance()).toBe(true);
        expect(await q.popMany(4)).toEqual(items.slice(1, 5));
        const again = await PersistentQueue.open(dev);
        expect(await drain(again)).toEqual(items.slice(5));
        expect(await again.pop()).toBeUndefined();
        expect(await again.advance()).toBe(false);
        await dev.disconnect();
      });

      it('lets a producer handle and a consumer handle (as two processes) share the device', async () => {
        const dev = await make(sectorSize * 24, sectorSize);
        await PersistentQueue.format(dev, { dataSectors: 8n });
        const producer = await PersistentQueue.open(dev);
        const consumer = await PersistentQueue.open(dev);
        const rnd = prng(7);
        const items = Array.from({ length: 200 }, () => randomBytes(rnd, Math.floor(rnd() * sectorSize * 1.5)));
        const got: Uint8Array[] = [];
        let next = 0;
        while (got.length < items.length) {
          // The producer learns free space only from the consumer's slots on disk.
          while (next < items.length && (await producer.push(items[next]!))) next++;
          got.push(...(await consumer.popMany(3)));
        }
        expect(ids(got)).toEqual(ids(items));
        await dev.disconnect();
      });

      it('refuses bad input with typed errors and leaves the queue usable', async () => {
        const dev = await make(sectorSize * 16, sectorSize);
        await expect(PersistentQueue.open(dev)).rejects.toMatchObject({ code: 'invalid-argument', field: 'device' });
        await expect(PersistentQueue.format(dev, { dataSectors: 100n })).rejects.toMatchObject({ code: 'invalid-argument', field: 'device' });
        await expect(PersistentQueue.format(dev, { dataSectors: 1n })).rejects.toMatchObject({ code: 'invalid-argument', field: 'dataSectors' });
        const q = await PersistentQueue.format(dev);
        const max = q.stats().maxItemBytes;
        await expect(q.push(new Uint8Array(max + 1))).rejects.toMatchObject({ code: 'invalid-argument', field: 'item' });
        await expect(q.push('text' as unknown as Uint8Array)).rejects.toMatchObject({ code: 'invalid-argument', field: 'item' });
        await expect(q.popMany(0)).rejects.toMatchObject({ code: 'invalid-argument', field: 'max' });
        const big = randomBytes(prng(1), max);
        expect(await q.push(big)).toBe(true);
        expect(ids([await q.pop()])).toEqual(ids([big]));
        await dev.disconnect();
      });
    });
  }
}

describe('PersistentQueue header checks', () => {
  it('refuses a device whose superblock was damaged (invalid-argument) and one with both slots damaged (io)', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 64 * 512 });
    await PersistentQueue.format(dev);
    const sector = new Uint8Array(512);
    await dev.read(0n, [sector]);
    sector[20] ^= 1;
    await dev.write(0n, [sector]);
    await expect(PersistentQueue.open(dev)).rejects.toMatchObject({ code: 'invalid-argument', field: 'device' });
    await PersistentQueue.format(dev);
    await dev.write(1n, [new Uint8Array(1024).fill(0x55)]); // both producer slots
    await expect(PersistentQueue.open(dev)).rejects.toMatchObject({ code: 'io' });
  });

  it('refuses a queue formatted with another sector size', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 64 * 4096, sectorSize: 4096 });
    await PersistentQueue.format(dev);
    const img = new Uint8Array(64 * 4096);
    await dev.read(0n, [img]);
    const other = new MemoryBlockDevice({ sizeBytes: 64 * 4096, sectorSize: 512 });
    await other.write(0n, [img]);
    await expect(PersistentQueue.open(other)).rejects.toMatchObject({ code: 'invalid-argument', field: 'device' });
  });

  it('survives a torn producer slot: the other slot holds the previous position', async () => {
    const dev = new MemoryBlockDevice({ sizeBytes: 64 * 512 });
    const q = await PersistentQueue.format(dev);
    for (let i = 0; i < 5; i++) expect(await q.push(new Uint8Array([i]))).toBe(true);
    // seq 5 went to slot 1 (sector 2); tear it: the queue falls back to seq 4.
    await dev.write(2n, [new Uint8Array(512).fill(0xee)]);
    const again = await PersistentQueue.open(dev);
    const items = await again.popMany(10);
    expect(items.map((b) => b[0])).toEqual([0, 1, 2, 3]);
  });
});
