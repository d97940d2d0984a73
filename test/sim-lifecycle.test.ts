/**
 * Every Simulation method releases what it took when it fails, concurrent
 * calls do not corrupt each other, and nothing hangs. Regressions: stop()
 * hung for ever after a failed createDisk and the failed disk kept its
 * domain slot; a second attach() of an attached disk broke the first device.
 * Oracle: the hypervisor's live-domain list, the xenstore tree, and I/O
 * round trips through the device.
 */
import { describe, expect, it } from 'vitest';
import { Simulation } from '../src/sim/simulation.js';
import { XenpvError } from '../src/errors.js';

/** Rejects if `p` has not settled within `ms` (a hang is a failure, not a timeout of the whole test). */
function settlesWithin<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

async function expectCode(p: Promise<unknown>, code: string, message: RegExp): Promise<XenpvError> {
  const err = await settlesWithin(p.then(() => undefined, (e: unknown) => e), 10_000, 'call');
  expect(err).toBeInstanceOf(XenpvError);
  expect((err as XenpvError).code).toBe(code);
  expect((err as XenpvError).message).toMatch(message);
  expect((err as XenpvError).message).not.toContain('\n');
  return err as XenpvError;
}

async function roundTrip(dev: { write(s: bigint, b: Uint8Array[]): Promise<void>; read(s: bigint, b: Uint8Array[]): Promise<void> }, fill: number): Promise<void> {
  const data = new Uint8Array(4096).fill(fill);
  await settlesWithin(dev.write(8n, [data]), 5_000, 'write');
  const back = new Uint8Array(4096);
  await settlesWithin(dev.read(8n, [back]), 5_000, 'read');
  expect(back).toEqual(data);
}

describe('Simulation: failed calls release what they took', () => {
  it('a createDisk rejected in the backend domain frees its slot, leaves no vbd, and stop() still settles', async () => {
    const sim = await Simulation.start({ maxDomains: 4 });
    // Checked inside the backend domain (Blkback.start): the worker fails.
    await expectCode(sim.createDisk({ sizeBytes: 1 << 20, features: { maxQueues: 0 } }), 'invalid-argument', /features\.maxQueues.*backend domain of xvda/);
    expect(sim.hypervisor.liveDomains()).toEqual([0]);
    expect(await sim.dom0.xenstore.tryRead('/local/domain/0/device/vbd/51712/backend')).toBeUndefined();
    // dom0 + 3 backends fit in 4 slots: the failed disk's slot came back.
    const disks = [];
    for (let i = 0; i < 3; i++) disks.push(await sim.createDisk({ sizeBytes: 1 << 20 }));
    expect(sim.hypervisor.liveDomains()).toHaveLength(4);
    await roundTrip(await sim.attach(disks[2]!), 0x5a);
    await settlesWithin(sim.stop(), 10_000, 'stop()');
  });

  it('createDisk with a sector size that is not a power of two is invalid-argument, and stop() settles after it', async () => {
    const sim = await Simulation.start();
    await expectCode(sim.createDisk({ sizeBytes: 1 << 20, sectorSize: 1000 }), 'invalid-argument', /^sectorSize: .*1000/);
    expect(sim.hypervisor.liveDomains()).toEqual([0]);
    await settlesWithin(sim.stop(), 10_000, 'stop()');
  });

  it('resizeDisk after killBackend is disconnected (not a TypeError), and a bad size is invalid-argument', async () => {
    const sim = await Simulation.start();
    try {
      const disk = await sim.createDisk({ sizeBytes: 1 << 20 });
      await expectCode(sim.resizeDisk(disk, 1000), 'invalid-argument', /^sizeBytes: .*1000/);
      await sim.killBackend(disk);
      await expectCode(sim.resizeDisk(disk, 2 << 20), 'disconnected', /xvda.*not running/);
      await sim.restartBackend(disk);
      await sim.resizeDisk(disk, 2 << 20);
    } finally {
      await settlesWithin(sim.stop(), 10_000, 'stop()');
    }
  });

  it('a disk from another simulation is refused by name', async () => {
    const a = await Simulation.start();
    const b = await Simulation.start();
    try {
      const disk = await a.createDisk({ sizeBytes: 1 << 20 });
      await expectCode(b.attach(disk), 'invalid-argument', /^disk: disk 51712 is not a disk of this simulation/);
      await expectCode(b.killBackend(disk), 'invalid-argument', /^disk: /);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe('Simulation: one frontend per disk', () => {
  it('a second attach of an attached disk is refused and the first device keeps working', async () => {
    const sim = await Simulation.start();
    try {
      const disk = await sim.createDisk({ sizeBytes: 1 << 20 });
      const first = await sim.attach(disk);
      await expectCode(sim.attach(disk), 'invalid-argument', /^disk: xvda \(devid 51712\) is already attached/);
      await roundTrip(first, 0x11);
      await first.disconnect();
      // After disconnect the disk can be attached again.
      await roundTrip(await sim.attach(disk), 0x22);
    } finally {
      await settlesWithin(sim.stop(), 10_000, 'stop()');
    }
  });

  it('two concurrent attaches: exactly one wins, the other is refused', async () => {
    const sim = await Simulation.start();
    try {
      const disk = await sim.createDisk({ sizeBytes: 1 << 20 });
      const results = await Promise.allSettled([sim.attach(disk), sim.attach(disk)]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(((lost[0] as PromiseRejectedResult).reason as XenpvError).code).toBe('invalid-argument');
      await roundTrip((won[0] as PromiseFulfilledResult<Awaited<ReturnType<Simulation['attach']>>>).value, 0x33);
    } finally {
      await settlesWithin(sim.stop(), 10_000, 'stop()');
    }
  });

  it('an attach with a bad engine name is invalid-argument naming the engine and leaves the disk attachable', async () => {
    const sim = await Simulation.start();
    try {
      const disk = await sim.createDisk({ sizeBytes: 1 << 20 });
      await expectCode(sim.attach(disk, { engine: 'foo' as 'js' }), 'invalid-argument', /^engine: .*foo/);
      await roundTrip(await sim.attach(disk), 0x44);
    } finally {
      await settlesWithin(sim.stop(), 10_000, 'stop()');
    }
  });
});

describe('Simulation: concurrent calls', () => {
  it('two concurrent restartBackend calls both settle and the device reconnects', async () => {
    const sim = await Simulation.start();
    try {
      const disk = await sim.createDisk({ sizeBytes: 1 << 20 });
      const dev = await sim.attach(disk);
      await settlesWithin(Promise.all([sim.restartBackend(disk), sim.restartBackend(disk)]), 15_000, 'restarts');
      await roundTrip(dev, 0x55);
      expect(sim.hypervisor.liveDomains().sort()).toEqual([0, disk.backendDomid]);
    } finally {
      await settlesWithin(sim.stop(), 10_000, 'stop()');
    }
  });

  it('stop() during createDisk waits for it, releases everything, and later calls are disconnected', async () => {
    const sim = await Simulation.start();
    const creating = sim.createDisk({ sizeBytes: 1 << 20 });
    const stopping = sim.stop();
    await creating;
    await settlesWithin(stopping, 10_000, 'stop()');
    await settlesWithin(sim.stop(), 1_000, 'second stop()');
    expect(sim.hypervisor.liveDomains()).toEqual([]);
    await expectCode(sim.createDisk({ sizeBytes: 1 << 20 }), 'disconnected', /simulation is stopped/);
  });
});

describe('Hypervisor.createDomain: a refused create releases its slot', () => {
  it('data a worker cannot receive is invalid-argument and the slot is free again', async () => {
    const { Hypervisor } = await import('../src/platform/sim/hypervisor.js');
    const { agentModulePath } = await import('../src/platform/sim/fixtures/agent-client.js');
    const hv = Hypervisor.create({ poolPages: 128, maxDomains: 2, scratchBytes: 1 << 16 });
    try {
      hv.createDomain('dom0', undefined, { domid: 0 });
      // Functions cannot be structured-cloned into a worker.
      for (let i = 0; i < 3; i++) {
        let err: unknown;
        try {
          hv.createDomain('bad', { module: agentModulePath(), data: { f: () => 1 } });
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(XenpvError);
        expect((err as XenpvError).code).toBe('invalid-argument');
        expect((err as XenpvError).message).toMatch(/^data: /);
      }
      expect(hv.liveDomains()).toEqual([0]);
      // The one free slot is still there.
      const ok = hv.createDomain('good', { module: agentModulePath() });
      expect(hv.liveDomains()).toEqual([0, ok.domid]);
    } finally {
      await hv.shutdown();
    }
  });
});
