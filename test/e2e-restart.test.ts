/**
 * The backend domain dies in the middle of a write-heavy load and a new one
 * starts on the same file: the frontend keeps every request, reconnects,
 * re-issues them, and afterwards the file holds exactly what the completed
 * writes say. Oracle: a byte array updated by the test, and the file read
 * with fs.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Simulation } from '../src/sim/simulation.js';
import { disjointExtents, firstDifference, prng, randomBytes, scatter } from './support/disk-model.js';

const dir = mkdtempSync(join(tmpdir(), 'xenpv-restart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('backend restart under load', () => {
  it.each([
    ['wasm', true],
    ['js', false],
  ] as const)('%s engine, persistent=%s: every write completes once and lands in the file', async (engine, persistent) => {
    const sim = await Simulation.start();
    try {
      const sizeBytes = 16 << 20;
      const path = join(dir, `restart-${engine}.img`);
      const disk = await sim.createDisk({ sizeBytes, path, features: { persistent } });
      const dev = await sim.attach(disk, { engine, persistent, maxRingPageOrder: 1 });
      const rnd = prng(engine === 'wasm' ? 11 : 12);
      const model = new Uint8Array(sizeBytes);
      const extents = disjointExtents(rnd, sizeBytes / 512, 1500, 256);

      let settled = 0;
      const writes = extents.map(([start, len]) => {
        const data = randomBytes(rnd, len * 512);
        model.set(data, start * 512);
        return dev.write(BigInt(start), scatter(rnd, data, 512)).finally(() => settled++);
      });
      // Restart once some but not all writes have completed.
      while (settled < 200) await new Promise((r) => setTimeout(r, 1));
      expect(settled).toBeLessThan(extents.length);
      await sim.restartBackend(disk);
      await Promise.all(writes);
      expect(dev.stats().reconnects).toBeGreaterThanOrEqual(1);
      expect(dev.stats().state).toBe('connected');

      // Reads after reconnect see the same data, and so does the file.
      const back = new Uint8Array(sizeBytes);
      await dev.read(0n, [back]);
      expect(firstDifference(back, model)).toBe(-1);
      await dev.flush();
      expect(firstDifference(new Uint8Array(readFileSync(path)), model)).toBe(-1);
      await dev.disconnect();
      expect(sim.dom0.evtchn.openPorts()).toEqual([]);
      expect(sim.dom0.grants.activeGrants()).toBe(0);
    } finally {
      await sim.stop();
    }
  });

  it('a backend that never comes back: disconnect settles every pending request', async () => {
    const sim = await Simulation.start();
    try {
      const disk = await sim.createDisk({ sizeBytes: 4 << 20 });
      const dev = await sim.attach(disk, { disconnectTimeoutMs: 200 });
      await sim.killBackend(disk);
      const pending = Array.from({ length: 50 }, (_, i) => dev.write(BigInt(i * 8), [new Uint8Array(4096)]));
      const outcomes = Promise.allSettled(pending);
      await new Promise((r) => setTimeout(r, 50));
      expect(dev.stats().state).toBe('suspended');
      await dev.disconnect();
      const results = await outcomes;
      expect(results.every((r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'disconnected')).toBe(true);
      expect(sim.dom0.evtchn.openPorts()).toEqual([]);
      expect(sim.dom0.grants.activeGrants()).toBe(0);
    } finally {
      await sim.stop();
    }
  });
});
