/**
 * Feature negotiation end to end: resize while connected, read-only disks,
 * flush and barrier only when offered, discard by granularity, and a
 * backend's EOPNOTSUPP switching a feature off. Oracles: the backing file
 * read with fs, and a raw-ring backend written from blkif.h.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Blkfront } from '../src/blkfront/blkfront.js';
import type { BlockInfo } from '../src/block/types.js';
import { createEngine } from '../src/ring/index.js';
import { Simulation } from '../src/sim/simulation.js';
import { HostileBackend } from '../tools/fuzz/peers/hostile-backend.js';
import { createWorld, type World } from '../tools/fuzz/peers/world.js';

const dir = mkdtempSync(join(tmpdir(), 'xenpv-features-'));
let sim: Simulation | undefined;
let world: World | undefined;
afterEach(async () => {
  await sim?.stop();
  await world?.stop();
  sim = world = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('resize', () => {
  it('a backing disk that grows while connected raises the resize event, and the new sectors are usable', async () => {
    sim = await Simulation.start();
    const disk = await sim.createDisk({ sizeBytes: 4 << 20 });
    const dev = await sim.attach(disk);
    expect(dev.info().sizeSectors).toBe(8192n);
    const seen = new Promise<BlockInfo>((resolve) => dev.onResize(resolve));
    await sim.resizeDisk(disk, 8 << 20);
    expect((await seen).sizeSectors).toBe(16384n);
    expect(dev.info().sizeSectors).toBe(16384n);
    const data = new Uint8Array(4096).fill(0x5a);
    await dev.write(16376n, [data]);
    const back = new Uint8Array(4096);
    await dev.read(16376n, [back]);
    expect(back).toEqual(data);
    await expect(dev.read(16384n, [new Uint8Array(512)])).rejects.toMatchObject({ code: 'out-of-range' });
  });
});

describe('read-only disks', () => {
  it('refuses writes and discards before they reach the ring; reads work', async () => {
    sim = await Simulation.start();
    const path = join(dir, 'ro.img');
    const disk = await sim.createDisk({ sizeBytes: 1 << 20, path, readOnly: true });
    const dev = await sim.attach(disk);
    expect(dev.info().readWrite).toBe(false);
    const before = readFileSync(path);
    const w = dev.write(0n, [new Uint8Array(512).fill(1)]);
    // Refused synchronously in the frontend: nothing queued, nothing in flight.
    expect(dev.stats()).toMatchObject({ inFlight: 0, waiting: 0 });
    await expect(w).rejects.toMatchObject({ code: 'read-only' });
    await expect(dev.discard(0n, 8n)).rejects.toMatchObject({ code: 'read-only' });
    await dev.read(0n, [new Uint8Array(4096)]);
    expect(readFileSync(path).equals(before)).toBe(true);
  });
});

describe('flush and barrier', () => {
  it('flush is unsupported when the backend offers neither flush nor barrier', async () => {
    sim = await Simulation.start();
    const disk = await sim.createDisk({ sizeBytes: 1 << 20, features: { flushCache: false, barrier: false } });
    const dev = await sim.attach(disk);
    expect(dev.info().features.flush).toBe(false);
    await expect(dev.flush()).rejects.toMatchObject({ code: 'unsupported' });
  });

  it('flush works through an empty write-barrier when only barriers are offered', async () => {
    sim = await Simulation.start();
    const disk = await sim.createDisk({ sizeBytes: 1 << 20, features: { flushCache: false, barrier: true } });
    const dev = await sim.attach(disk);
    expect(dev.info().features).toMatchObject({ flush: true, barrier: true });
    await dev.write(0n, [new Uint8Array(4096).fill(3)]);
    await dev.flush();
  });
});

describe('discard', () => {
  it('is unsupported when not offered', async () => {
    sim = await Simulation.start();
    const disk = await sim.createDisk({ sizeBytes: 1 << 20, features: { discard: false } });
    const dev = await sim.attach(disk);
    await expect(dev.discard(0n, 8n)).rejects.toMatchObject({ code: 'unsupported' });
  });

  it('discards only whole granules of discard-granularity', async () => {
    sim = await Simulation.start();
    const path = join(dir, 'discard.img');
    const disk = await sim.createDisk({ sizeBytes: 1 << 20, path, features: { discard: true, discardGranularity: 8192 } });
    const dev = await sim.attach(disk);
    expect(dev.info().discard?.granularity).toBe(8192);
    await dev.write(0n, [new Uint8Array(1 << 20).fill(0xee)]);
    // Sectors 10..50 (bytes 5120..25600): the granules inside are [8192, 24576).
    await dev.discard(10n, 40n);
    await dev.flush();
    const file = readFileSync(path);
    const zeroed = (from: number, to: number): boolean => file.subarray(from, to).every((b) => b === 0);
    const kept = (from: number, to: number): boolean => file.subarray(from, to).every((b) => b === 0xee);
    expect(kept(0, 8192)).toBe(true);
    expect(zeroed(8192, 24576)).toBe(true);
    expect(kept(24576, 1 << 20)).toBe(true);
  });
});

describe('EOPNOTSUPP from the backend', () => {
  it('rejects the call as unsupported and stops offering the feature', async () => {
    world = await createWorld();
    const w = world;
    const be = new HostileBackend(w.peer, { frontendId: 0, frontend: w.paths.frontend, backend: w.paths.backend });
    // Claims flush, then refuses it.
    be.onRequest = (r, b) => {
      if (r.req.op === 3) {
        b.respond({ id: r.req.id, op: 3, status: -2 });
        b.publish();
      } else b.serve(r);
    };
    const attaching = Blkfront.attach(w.dom0, {
      engine: createEngine('wasm', w.dom0.memory),
      frontend: w.paths.frontend,
      persistent: false,
      maxRingPageOrder: 0,
    });
    await be.handshake({ connect: { 'feature-flush-cache': '1', 'feature-barrier': '0' } });
    const dev = await attaching;
    expect(dev.info().features.flush).toBe(true);
    await expect(dev.flush()).rejects.toMatchObject({ code: 'unsupported' });
    expect(dev.info().features.flush).toBe(false);
    await expect(dev.flush()).rejects.toMatchObject({ code: 'unsupported' });
    expect(dev.stats().state).toBe('connected');
    await dev.disconnect();
  });
});

describe('persistent grants in BlockInfo', () => {
  // Regression (found on real Xen: kernel blkback always offers
  // feature-persistent): info() reported the backend's offer, so a frontend
  // that declined persistent grants still said it used them.
  it('features.persistent is what was negotiated: false when we decline an offer, true when both agree', async () => {
    for (const [ours, want] of [[false, false], [true, true]] as const) {
      world = await createWorld();
      const w = world;
      const be = new HostileBackend(w.peer, { frontendId: 0, frontend: w.paths.frontend, backend: w.paths.backend });
      const attaching = Blkfront.attach(w.dom0, { engine: createEngine('js', w.dom0.memory), frontend: w.paths.frontend, persistent: ours, maxRingPageOrder: 0 });
      await be.handshake({ connect: { 'feature-persistent': '1' } });
      const dev = await attaching;
      expect(await w.dom0.xenstore.read(`${w.paths.frontend}/feature-persistent`)).toBe(ours ? '1' : '0');
      expect(dev.info().features.persistent).toBe(want);
      be.followClose();
      await dev.disconnect();
      await w.stop();
      world = undefined;
    }
  });
});
