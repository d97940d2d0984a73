/**
 * Zero-copy I/O buffers (Blkfront.allocateBuffer): pages granted to the
 * backend that the caller reads and writes through, so blkfront copies
 * nothing. Oracle: a byte array updated by the test and the backing file
 * read with fs; leaks are counted in the simulated grant table and page
 * allocator (the hypervisor's own books), not in blkfront's.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Simulation } from '../src/sim/simulation.js';
import { firstDifference, prng, randInt, randomBytes } from './support/disk-model.js';

const dir = mkdtempSync(join(tmpdir(), 'xenpv-iobuf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1 << 20;

async function rejection(p: Promise<unknown>): Promise<{ code?: string; field?: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; field?: string; message: string };
  }
  throw new Error('expected a rejection');
}

describe('I/O buffers: reads and writes through granted pages', () => {
  it.each([
    ['wasm', true, true],
    ['wasm', false, true],
    ['js', true, false],
    ['js', false, false],
  ] as const)('%s engine, persistent=%s, indirect=%s: data lands in the file and reads back, with no copy in blkfront', async (engine, persistent, indirect) => {
    const sim = await Simulation.start();
    try {
      const sizeBytes = 8 * MiB;
      const path = join(dir, `rw-${engine}-${+persistent}-${+indirect}.img`);
      const disk = await sim.createDisk({ sizeBytes, path, features: { persistent, maxIndirectSegments: indirect ? 256 : 0 } });
      const pagesIdle = sim.dom0.grants.pagesInUse();
      const dev = await sim.attach(disk, { engine, persistent, indirect });
      const pagesBefore = sim.dom0.grants.pagesInUse();
      const rnd = prng(persistent ? 3 : 4);
      const model = new Uint8Array(sizeBytes);
      // 16 concurrent 512 KiB writes from I/O buffers (several ring requests each without indirect).
      const bufs = await Promise.all(Array.from({ length: 16 }, () => dev.allocateBuffer(512 * 1024)));
      expect(dev.stats().ioBufferPages).toBe(16 * 128);
      expect(sim.dom0.grants.pagesInUse() - pagesBefore).toBe(16 * 128);
      await Promise.all(bufs.map((b, i) => {
        const data = randomBytes(rnd, b.byteLength);
        b.set(data);
        model.set(data, i * b.byteLength);
        return dev.write(BigInt((i * b.byteLength) / 512), [b]);
      }));
      // Read back in another order into the same buffers, zeroed first.
      for (const b of bufs) b.fill(0);
      await Promise.all(bufs.map((b, i) => dev.read(BigInt(((15 - i) * b.byteLength) / 512), [b])));
      bufs.forEach((b, i) => expect(firstDifference(b, model.subarray((15 - i) * b.byteLength, (16 - i) * b.byteLength))).toBe(-1));
      const st = dev.stats();
      expect(st.bytesWritten + st.bytesRead).toBe(2 * 8 * MiB);
      expect(st.bytesCopied).toBe(0);
      await dev.flush();
      expect(firstDifference(new Uint8Array(readFileSync(path)).subarray(0, 8 * MiB), model)).toBe(-1);
      await dev.disconnect();
      expect(dev.stats().ioBufferPages).toBe(0);
      expect(sim.dom0.grants.activeGrants()).toBe(0);
      expect(sim.dom0.grants.pagesInUse()).toBe(pagesIdle);
      expect(sim.dom0.evtchn.openPorts()).toEqual([]);
    } finally {
      await sim.stop();
    }
  });

  it('I/O buffers, their page-aligned subarrays and plain buffers mix in one call; only the plain bytes are copied', async () => {
    const sim = await Simulation.start();
    try {
      const path = join(dir, 'mixed.img');
      const disk = await sim.createDisk({ sizeBytes: 4 * MiB, path });
      const dev = await sim.attach(disk);
      const rnd = prng(7);
      const pool = await dev.allocateBuffer(256 * 1024);
      const plain = new Uint8Array(64 * 1024 + 3).subarray(3); // odd alignment
      const tail = pool.subarray(128 * 1024, 192 * 1024); // page-aligned view into the pool buffer
      const parts = [pool.subarray(0, 128 * 1024), plain, tail, new Uint8Array(4096)];
      const data = randomBytes(rnd, parts.reduce((n, p) => n + p.byteLength, 0));
      let at = 0;
      for (const p of parts) {
        p.set(data.subarray(at, at + p.byteLength));
        at += p.byteLength;
      }
      const copied0 = dev.stats().bytesCopied;
      await dev.write(8n, parts);
      for (const p of parts) p.fill(0);
      await dev.read(8n, parts);
      at = 0;
      for (const p of parts) {
        expect(firstDifference(p, data.subarray(at, at + p.byteLength))).toBe(-1);
        at += p.byteLength;
      }
      const copied = dev.stats().bytesCopied - copied0;
      // The plain buffers (and whichever ring request they share pages with) were copied, not everything.
      expect(copied).toBeGreaterThanOrEqual(2 * (plain.byteLength + 4096));
      expect(copied).toBeLessThan(2 * data.byteLength);
      await dev.flush();
      expect(firstDifference(new Uint8Array(readFileSync(path)).subarray(8 * 512, 8 * 512 + data.byteLength), data)).toBe(-1);
      await dev.disconnect();
      expect(sim.dom0.grants.activeGrants()).toBe(0);
    } finally {
      await sim.stop();
    }
  });

  it('random small I/O at queue depth 32 through 4 KiB I/O buffers matches the model', async () => {
    const sim = await Simulation.start();
    try {
      const sizeBytes = 2 * MiB;
      const disk = await sim.createDisk({ sizeBytes, path: join(dir, 'small.img') });
      const dev = await sim.attach(disk, { engine: 'wasm' });
      const rnd = prng(99);
      const model = new Uint8Array(sizeBytes);
      const lanes = await Promise.all(Array.from({ length: 32 }, () => dev.allocateBuffer(4096)));
      for (let round = 0; round < 20; round++) {
        // Distinct blocks per round: concurrent requests never overlap.
        const blocks = new Set<number>();
        while (blocks.size < lanes.length) blocks.add(randInt(rnd, 0, sizeBytes / 4096 - 1));
        const list = [...blocks];
        const write = round % 2 === 0;
        await Promise.all(lanes.map((b, i) => {
          const off = list[i]! * 4096;
          if (!write) return dev.read(BigInt(off / 512), [b]).then(() => expect(firstDifference(b, model.subarray(off, off + 4096))).toBe(-1));
          const data = randomBytes(rnd, 4096);
          b.set(data);
          model.set(data, off);
          return dev.write(BigInt(off / 512), [b]);
        }));
      }
      expect(dev.stats().bytesCopied).toBe(0);
      await dev.disconnect();
      expect(sim.dom0.grants.activeGrants()).toBe(0);
    } finally {
      await sim.stop();
    }
  });
});

describe('I/O buffers: lifetime, bad input, leaks', () => {
  it('a buffer reused after its device disconnected is refused by the next device (invalid-argument), and nothing stays granted', async () => {
    const sim = await Simulation.start();
    try {
      const disk = await sim.createDisk({ sizeBytes: 4 * MiB });
      const pagesBefore = sim.dom0.grants.pagesInUse();
      const dev = await sim.attach(disk);
      const buf = await dev.allocateBuffer(64 * 1024);
      buf.fill(0x5a);
      await dev.write(0n, [buf]);
      await dev.disconnect();
      expect(sim.dom0.grants.activeGrants()).toBe(0);
      expect(sim.dom0.grants.pagesInUse()).toBe(pagesBefore);
      // The same device: disconnected first (the contract's order).
      expect((await rejection(dev.read(0n, [buf]))).code).toBe('disconnected');
      expect((await rejection(dev.allocateBuffer(4096))).code).toBe('disconnected');
      // A new device on the same disk: the stale buffer's pages may be its own now.
      const dev2 = await sim.attach(disk);
      for (const op of [dev2.read(0n, [buf]), dev2.write(0n, [new Uint8Array(512), buf])]) {
        const err = await rejection(op);
        expect(err.code).toBe('invalid-argument');
        expect(err.message).toMatch(/released/);
      }
      // Plain buffers still work, and the data written through the old buffer is there.
      const check = new Uint8Array(64 * 1024);
      await dev2.read(0n, [check]);
      expect(check.every((b) => b === 0x5a)).toBe(true);
      await dev2.disconnect();
      expect(sim.dom0.grants.activeGrants()).toBe(0);
    } finally {
      await sim.stop();
    }
  });

  it('releaseBuffer ends one buffer: it is refused afterwards, a second release is invalid-argument, and its grants end', async () => {
    const sim = await Simulation.start();
    try {
      const disk = await sim.createDisk({ sizeBytes: 4 * MiB, features: { persistent: false } });
      const dev = await sim.attach(disk, { persistent: false });
      const grants0 = sim.dom0.grants.activeGrants();
      const a = await dev.allocateBuffer(8192);
      const b = await dev.allocateBuffer(4096);
      expect(sim.dom0.grants.activeGrants() - grants0).toBe(3);
      await dev.write(0n, [a]);
      await dev.releaseBuffer(a);
      // Not persistent: the backend unmapped after each request, so the grant ends at once.
      expect(sim.dom0.grants.activeGrants() - grants0).toBe(1);
      expect(dev.stats().ioBufferPages).toBe(1);
      expect((await rejection(dev.write(0n, [a]))).code).toBe('invalid-argument');
      expect((await rejection(dev.releaseBuffer(a))).code).toBe('invalid-argument');
      expect((await rejection(dev.releaseBuffer(new Uint8Array(4096)))).code).toBe('invalid-argument');
      await dev.read(0n, [b]);
      await dev.disconnect();
      expect(sim.dom0.grants.activeGrants()).toBe(0);
    } finally {
      await sim.stop();
    }
  });

  it('bad sizes are invalid-argument; running out of grants is a grant error that leaves nothing behind', async () => {
    const sim = await Simulation.start({ grantFrames: 4 });
    try {
      const disk = await sim.createDisk({ sizeBytes: 4 * MiB });
      const dev = await sim.attach(disk);
      for (const bad of [0, -4096, 1.5, Number.NaN, '4096' as unknown as number, 2 ** 31]) {
        const err = await rejection(dev.allocateBuffer(bad));
        expect(err.code, String(bad)).toBe('invalid-argument');
        expect(err.field).toBe('bytes');
      }
      const grants0 = sim.dom0.grants.activeGrants();
      const pages0 = sim.dom0.grants.pagesInUse();
      expect((await rejection(dev.allocateBuffer(4 * 512 * 4096))).code).toBe('grant');
      expect(sim.dom0.grants.activeGrants()).toBe(grants0);
      expect(sim.dom0.grants.pagesInUse()).toBe(pages0);
      // An odd size is rounded up to whole pages; the view is exactly as long as asked.
      const odd = await dev.allocateBuffer(1000);
      expect(odd.byteLength).toBe(1000);
      expect(odd.byteOffset % 4096).toBe(0);
      await dev.disconnect();
      expect(sim.dom0.grants.activeGrants()).toBe(0);
    } finally {
      await sim.stop();
    }
  });

  it('across a backend restart the buffers keep working without a copy, and nothing leaks after disconnect', async () => {
    const sim = await Simulation.start();
    try {
      const path = join(dir, 'restart.img');
      const disk = await sim.createDisk({ sizeBytes: 4 * MiB, path });
      const dev = await sim.attach(disk, { engine: 'wasm' });
      const bufs = await Promise.all(Array.from({ length: 8 }, () => dev.allocateBuffer(256 * 1024)));
      const rnd = prng(5);
      const model = new Uint8Array(2 * MiB);
      const writes = bufs.map((b, i) => {
        const data = randomBytes(rnd, b.byteLength);
        b.set(data);
        model.set(data, i * b.byteLength);
        return dev.write(BigInt((i * b.byteLength) / 512), [b]);
      });
      await sim.restartBackend(disk);
      await Promise.all(writes);
      expect(dev.stats().reconnects).toBeGreaterThanOrEqual(1);
      const copied = dev.stats().bytesCopied;
      for (const b of bufs) b.fill(0);
      await Promise.all(bufs.map((b, i) => dev.read(BigInt((i * b.byteLength) / 512), [b])));
      bufs.forEach((b, i) => expect(firstDifference(b, model.subarray(i * b.byteLength, (i + 1) * b.byteLength))).toBe(-1));
      expect(dev.stats().bytesCopied).toBe(copied);
      await dev.flush();
      expect(firstDifference(new Uint8Array(readFileSync(path)).subarray(0, 2 * MiB), model)).toBe(-1);
      await dev.disconnect();
      expect(sim.dom0.grants.activeGrants()).toBe(0);
      expect(sim.dom0.evtchn.openPorts()).toEqual([]);
    } finally {
      await sim.stop();
    }
  });
});

describe('I/O buffers through the registry', () => {
  it("openBlockDevice('xen:…') offers allocateBuffer/releaseBuffer: a write from one lands in the image with no copy in blkfront", async () => {
    const { openBlockDevice } = await import('../src/block/registry.js');
    await import('../src/blkfront/flavour.js');
    const sim = await Simulation.start();
    try {
      const path = join(dir, 'registry.img');
      const disk = await sim.createDisk({ sizeBytes: 4 * MiB, path });
      const dev = await openBlockDevice(`xen:${disk.devid}`, { platform: sim.dom0 } as never);
      expect(typeof dev.allocateBuffer).toBe('function');
      const buf = await dev.allocateBuffer!(64 * 1024);
      const data = randomBytes(prng(9), buf.byteLength);
      buf.set(data);
      await dev.write(8n, [buf]);
      await dev.flush();
      expect(firstDifference(readFileSync(path).subarray(4096, 4096 + data.length), data)).toBe(-1);
      expect((dev as unknown as { stats(): { bytesCopied: number } }).stats().bytesCopied).toBe(0);
      await dev.releaseBuffer!(buf);
      expect((await rejection(dev.write(8n, [buf]))).code).toBe('invalid-argument');
      await dev.disconnect();
    } finally {
      await sim.stop();
    }
  });
});
