/**
 * The `xen` flavour of openBlockDevice, end to end on the simulation:
 * Simulation.createDisk makes the vbd and its backend domain; the flavour
 * attaches Blkfront through the platform it is given (dom0) and the device
 * reads, writes, flushes and discards. Without a platform on this machine it
 * tries the real one and fails `unsupported`.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/blkfront/flavour.js';
import { flavours, openBlockDevice, type OpenOptions } from '../src/block/registry.js';
import { vdevName } from '../src/block/vdev.js';
import { Simulation, type SimDisk } from '../src/sim/simulation.js';

const SECTOR = 512;

describe('xen flavour on the simulation', () => {
  let sim: Simulation;
  let disk: SimDisk;
  beforeAll(async () => {
    sim = await Simulation.start({ poolPages: 4096, maxDomains: 3 });
    disk = await sim.createDisk({ sizeBytes: 4 << 20, features: { discard: true } });
  });
  afterAll(async () => {
    await sim?.stop();
  });

  it('is registered by importing the module', () => {
    expect(flavours()).toContain('xen');
  });

  it('opens xen:<devid>, and writes, reads back, flushes and discards', async () => {
    const dev = await openBlockDevice(`xen:${disk.devid}`, { platform: sim.dom0 });
    try {
      const info = dev.info();
      expect(info.sizeSectors * BigInt(info.sectorSize)).toBe(4n << 20n);
      expect(info.readWrite).toBe(true);
      const data = randomBytes(64 * SECTOR); // 32 KiB: more than one request's 11 segments
      await dev.write(100n, [data]);
      const back = new Uint8Array(data.length);
      await dev.read(100n, [back]);
      expect(Buffer.from(back).equals(data)).toBe(true);
      await dev.flush();
      await dev.discard(0n, 8n);
      // The simulated backend's memory disk reads discarded sectors as zeros.
      const head = new Uint8Array(8 * SECTOR).fill(0xee);
      await dev.write(0n, [head]);
      await dev.discard(0n, 8n);
      await dev.read(0n, [head]);
      expect(head.every((b) => b === 0)).toBe(true);
    } finally {
      await dev.disconnect();
    }
    expect(sim.dom0.grants.activeGrants()).toBe(0);
  });

  it('opens the same disk by name (xen:xvda) and sees the data written before', async () => {
    const name = vdevName(disk.devid)!;
    expect(name).toBe('xvda');
    const dev = await openBlockDevice(`xen:${name}`, { platform: sim.dom0, engine: 'js' });
    try {
      const pattern = new Uint8Array(SECTOR).fill(0x42);
      await dev.write(2000n, [pattern]);
      const back = new Uint8Array(SECTOR);
      await dev.read(2000n, [back]);
      expect(back).toEqual(pattern);
    } finally {
      await dev.disconnect();
    }
  });

  it('honours readOnly: writes and discards reject read-only, reads work', async () => {
    const dev = await openBlockDevice(`xen:${disk.devid}`, { platform: sim.dom0, readOnly: true });
    try {
      expect(dev.info().readWrite).toBe(false);
      await expect(dev.write(0n, [new Uint8Array(SECTOR)])).rejects.toMatchObject({ code: 'read-only' });
      await expect(dev.discard(0n, 1n)).rejects.toMatchObject({ code: 'read-only' });
      await dev.read(0n, [new Uint8Array(SECTOR)]);
    } finally {
      await dev.disconnect();
    }
  });

  it('refuses a backendDomid that is not the one the vbd names, as invalid-argument naming it (the caller asked wrong; no peer broke anything)', async () => {
    await expect(openBlockDevice(`xen:${disk.devid}`, { platform: sim.dom0, backendDomid: 7 })).rejects.toMatchObject({ code: 'invalid-argument', field: 'backendDomid' });
  });

  it('refuses bad options with invalid-argument naming them', async () => {
    await expect(openBlockDevice(`xen:${disk.devid}`, { platform: { domid: 0 } })).rejects.toMatchObject({ code: 'invalid-argument', field: 'platform' });
    await expect(openBlockDevice(`xen:${disk.devid}`, { platform: sim.dom0, backendDomid: -1 })).rejects.toMatchObject({ code: 'invalid-argument', field: 'backendDomid' });
    await expect(openBlockDevice(`xen:${disk.devid}`, { platform: sim.dom0, create: { params: '' } } as unknown as OpenOptions)).rejects.toMatchObject({ code: 'invalid-argument', field: 'create' });
  });

  it('writes the vbd itself with `create`, and removes it again when the attach fails', async () => {
    // A second vbd for the same backend domain: xenstore directories only, served by nobody,
    // so the attach times out; the directories it wrote must be gone afterwards.
    const devid = 51760; // xvdd
    const front = `/local/domain/0/device/vbd/${devid}`;
    const err = await openBlockDevice(`xen:${devid}`, {
      platform: sim.dom0,
      backendDomid: disk.backendDomid,
      create: { params: 'memory:4096' },
      blkfront: { connectTimeoutMs: 300 },
    } as unknown as OpenOptions).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'timeout' });
    expect(await sim.dom0.xenstore.tryRead(`${front}/backend`)).toBeUndefined();
    expect(await sim.dom0.xenstore.tryRead(`/local/domain/${disk.backendDomid}/backend/vbd/0/${devid}/params`)).toBeUndefined();
  });
});

describe('xen flavour without a platform', () => {
  it("tries the real /dev/xen platform and fails 'unsupported' on this machine", async () => {
    await expect(openBlockDevice('xen:xvda')).rejects.toMatchObject({
      code: 'unsupported',
      message: expect.stringContaining('/dev/xen/evtchn is missing'),
    });
  });
});
