/**
 * End to end on the simulated hypervisor: blkfront (dom0, this thread) and
 * blkback (a backend domain, a worker thread) over a file-backed disk.
 * Oracle: a plain byte array updated by the test, and the backing file read
 * with fs — never the code under test.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Simulation } from '../src/sim/simulation.js';
import { concat, disjointExtents, firstDifference, prng, randInt, randomBytes, scatter } from './support/disk-model.js';

const dir = mkdtempSync(join(tmpdir(), 'xenpv-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Combo {
  order: number;
  indirect: boolean;
  persistent: boolean;
  queues: number;
  sectorSize: number;
}

const combos: Combo[] = [];
for (const order of [0, 2])
  for (const indirect of [false, true])
    for (const persistent of [false, true])
      for (const queues of [1, 2])
        for (const sectorSize of [512, 4096]) combos.push({ order, indirect, persistent, queues, sectorSize });

const name = (c: Combo): string =>
  `order ${c.order}, ${c.indirect ? 'indirect' : 'direct'}, ${c.persistent ? 'persistent' : 'per-request'} grants, ${c.queues} queue(s), ${c.sectorSize}-byte sectors`;

describe('random concurrent I/O lands in the backing file', () => {
  it.each(combos.map((c) => [name(c), c] as const))('%s', async (_n, c) => {
    const sim = await Simulation.start();
    try {
      const sizeBytes = 8 << 20;
      const path = join(dir, `disk-${c.order}-${+c.indirect}-${+c.persistent}-${c.queues}-${c.sectorSize}.img`);
      const disk = await sim.createDisk({
        sizeBytes,
        path,
        sectorSize: c.sectorSize,
        features: { maxIndirectSegments: c.indirect ? 256 : 0, persistent: c.persistent },
      });
      const dev = await sim.attach(disk, { maxRingPageOrder: c.order, queues: c.queues, persistent: c.persistent, indirect: c.indirect });
      const info = dev.info();
      expect(info.sectorSize).toBe(c.sectorSize);
      expect(info.features.indirectSegments ?? 0).toBe(c.indirect ? 256 : 0);
      const ss = c.sectorSize;
      const sectors = sizeBytes / ss;
      const model = new Uint8Array(sizeBytes);
      const rnd = prng(c.order * 1000 + c.queues * 100 + ss + (c.indirect ? 7 : 0) + (c.persistent ? 13 : 0));
      const maxLen = Math.floor((512 * 1024) / ss); // up to 512 KiB: several indirect pages' worth

      // Phase 1: 600 concurrent writes to disjoint extents.
      const writes = disjointExtents(rnd, sectors, 600, maxLen).map(([start, len]) => {
        const data = randomBytes(rnd, len * ss);
        model.set(data, start * ss);
        return dev.write(BigInt(start), scatter(rnd, data, ss));
      });
      await Promise.all(writes);

      // Phase 2: 600 concurrent reads anywhere, mixed with 300 writes to
      // extents no read of this phase touches.
      const half = Math.floor(sectors / 2);
      const phase2: Promise<void>[] = [];
      const checks: (() => void)[] = [];
      for (let i = 0; i < 600; i++) {
        const len = randInt(rnd, 1, maxLen);
        const start = randInt(rnd, 0, half - len);
        const bufs = scatter(rnd, new Uint8Array(len * ss), ss);
        const expected = model.slice(start * ss, (start + len) * ss);
        phase2.push(dev.read(BigInt(start), bufs));
        checks.push(() => expect(firstDifference(concat(bufs), expected)).toBe(-1));
      }
      for (const [start, len] of disjointExtents(rnd, sectors - half, 300, maxLen)) {
        const data = randomBytes(rnd, len * ss);
        model.set(data, (half + start) * ss);
        phase2.push(dev.write(BigInt(half + start), scatter(rnd, data, ss)));
      }
      await Promise.all(phase2);
      for (const check of checks) check();

      await dev.flush();
      expect(dev.stats().inFlight).toBe(0);
      expect(firstDifference(new Uint8Array(readFileSync(path)), model)).toBe(-1);
      await dev.disconnect();
      expect(sim.dom0.evtchn.openPorts()).toEqual([]);
      expect(sim.dom0.grants.activeGrants()).toBe(0);
    } finally {
      await sim.stop();
    }
  });
});
