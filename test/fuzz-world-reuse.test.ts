/**
 * The driver fuzzers reuse one simulated machine across cases
 * (tools/fuzz/peers/world.ts WorldPool). Two things must hold for that:
 *
 * - a case's verdict does not depend on the cases before it: the reused
 *   world gives, case for case, the verdict a fresh world per case gives
 *   (the reference), on passing cases and on cases a planted bug makes fail;
 * - the reset is a leak check: a grant, port, mapping, watch, scratch block
 *   or xenstore node a case leaves behind fails that case, by name, even
 *   where none of the case's own checks looks.
 */
import * as fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Blkfront } from '../src/blkfront/blkfront.js';
import { MemoryBlockDevice } from '../src/block/memory.js';
import { Hypervisor } from '../src/platform/sim/hypervisor.js';
import { HostileBackend } from '../tools/fuzz/peers/hostile-backend.js';
import { createWorld, WorldPool } from '../tools/fuzz/peers/world.js';
import { replayCase, runFuzz } from '../tools/fuzz/runner.js';
import { toJson } from '../tools/fuzz/serialize.js';
import { FuzzViolation } from '../tools/fuzz/target.js';
import { loadTarget } from '../tools/fuzz/targets/index.js';

const SEEDS = [1, 2, 0x5eed];
const CASES = 10;

/** Verdict of each of `n` cases sampled from `seed`: 'ok' or the error's first line. */
async function verdicts(name: string, seed: number, n: number, freshWorlds: boolean): Promise<string[]> {
  const t = await loadTarget(name);
  const h = await t.setup({ freshWorlds });
  const out: string[] = [];
  try {
    for (const c of fc.sample(h.arbitrary, { seed, numRuns: n })) {
      try {
        await replayCase(t, h, c);
        out.push('ok');
      } catch (e) {
        out.push(e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e));
      }
    }
  } finally {
    await h.dispose?.();
  }
  return out;
}

/** Reused vs fresh verdicts for every seed, and how many worlds the reused run built. */
async function compare(name: string): Promise<{ reused: string[]; fresh: string[]; worlds: number }> {
  const reused: string[] = [];
  const fresh: string[] = [];
  const create = vi.spyOn(Hypervisor, 'create');
  for (const seed of SEEDS) reused.push(...(await verdicts(name, seed, CASES, false)));
  const worlds = create.mock.calls.length;
  create.mockRestore();
  for (const seed of SEEDS) fresh.push(...(await verdicts(name, seed, CASES, true)));
  return { reused, fresh, worlds };
}

const restore: Array<() => void> = [];
afterEach(() => {
  for (const r of restore.splice(0)) r();
});

describe('a reused world gives the verdicts of fresh worlds', () => {
  for (const name of ['frontend', 'backend']) {
    it(`${name}: same verdict case for case over seeds ${SEEDS.join(', ')}, with one world for all passing cases`, async () => {
      const { reused, fresh, worlds } = await compare(name);
      expect(reused).toEqual(fresh);
      const failed = reused.filter((v) => v !== 'ok').length;
      // One world per target setup (one per seed), plus one after each failed case.
      expect(worlds).toBeLessThanOrEqual(SEEDS.length + failed);
    }, 300_000);
  }

  it('frontend with a planted bug (reads at odd sectors come back corrupted): same failures, case for case', async () => {
    const real = Blkfront.prototype.read;
    Blkfront.prototype.read = async function (this: Blkfront, sector: bigint, buffers: Uint8Array[]): Promise<void> {
      await real.call(this, sector, buffers);
      if (sector % 2n === 1n) buffers[0]![0]! ^= 0xff;
    };
    restore.push(() => void (Blkfront.prototype.read = real));
    const { reused, fresh } = await compare('frontend');
    expect(reused).toEqual(fresh);
    expect(reused.filter((v) => v !== 'ok').length).toBeGreaterThan(0);
  }, 300_000);

  it('backend with a planted bug (writes at sectors 1 mod 3 land corrupted): same failures, case for case', async () => {
    const real = MemoryBlockDevice.prototype.write;
    MemoryBlockDevice.prototype.write = async function (this: MemoryBlockDevice, sector: bigint, buffers: Uint8Array[]): Promise<void> {
      if (sector % 3n === 1n) buffers = buffers.map((b, i) => (i === 0 ? Uint8Array.from(b, (x, j) => (j === 20 ? x ^ 0xff : x)) : b));
      return real.call(this, sector, buffers);
    };
    restore.push(() => void (MemoryBlockDevice.prototype.write = real));
    const { reused, fresh } = await compare('backend');
    expect(reused).toEqual(fresh);
    expect(reused.filter((v) => v !== 'ok').length).toBeGreaterThan(0);
  }, 300_000);
});

describe('shrinking and replay on a reused world', () => {
  it('a planted backend bug is found, shrunk, and found again as the same shrunk case from the same seed; the --path replay fails the same way', async () => {
    const real = MemoryBlockDevice.prototype.write;
    MemoryBlockDevice.prototype.write = async function (this: MemoryBlockDevice, sector: bigint, buffers: Uint8Array[]): Promise<void> {
      if (sector % 3n === 1n) buffers = buffers.map((b, i) => (i === 0 ? Uint8Array.from(b, (x, j) => (j === 20 ? x ^ 0xff : x)) : b));
      return real.call(this, sector, buffers);
    };
    restore.push(() => void (MemoryBlockDevice.prototype.write = real));
    const t = await loadTarget('backend');
    const opts = { seed: 3, runs: 200, save: false, progressMs: 0, watchdogMs: 0, log: () => undefined };
    const first = await runFuzz(t, opts);
    expect(first.failed).toBe(true);
    const again = await runFuzz(t, opts);
    expect(toJson(again.counterexample)).toBe(toJson(first.counterexample));
    expect(again.error).toBe(first.error);
    const replay = await runFuzz(t, { ...opts, path: first.path });
    expect(replay.failed).toBe(true);
    expect(replay.error).toBe(first.error);
  }, 300_000);
});

describe('the reset is a leak check', () => {
  const leaks: Array<[string, (w: Awaited<ReturnType<WorldPool['acquire']>>) => Promise<unknown> | unknown, RegExp]> = [
    ['a grant', (w) => w.dom0.grants.grantPages(w.peer.domid, 1), /dom0: 1 grant\(s\)/],
    ['an open port', (w) => w.peer.evtchn.allocUnbound(0), /dom5: open ports 1/],
    ['a mapping of the other domain\'s grant', (w) => w.peer.grants.mapForeign(0, w.dom0.grants.grantPages(w.peer.domid, 1).grefs, false), /dom5: 1 mapped foreign grant/],
    ['a scratch block', (w) => w.peer.scratch.alloc(64), /dom5: 64 bytes of scratch/],
    ['a xenstore watch', (w) => w.dom0.xenstore.watch('/local/domain/0/device'), /1 xenstore watch/],
    ['a xenstore node outside the vbd', (w) => w.dom0.xenstore.write('/local/domain/0/leftover', 'x'), /nodes changed outside the vbd: \/local\/domain\/0\/leftover/],
  ];
  for (const [what, leak, message] of leaks) {
    it(`fails the case that left ${what}, naming it, and builds a new world after`, async () => {
      const pool = new WorldPool({ scratchBytes: 1 << 20, poolPages: 256 });
      try {
        const w = await pool.acquire();
        await leak(w);
        const err = await pool.release().then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(FuzzViolation);
        expect((err as Error).message).toMatch(/found at reset/);
        expect((err as Error).message).toMatch(message);
        expect(await pool.acquire()).not.toBe(w);
        expect(pool.built).toBe(2);
      } finally {
        await pool.discard();
      }
    });
  }

  it('a clean case resets to what a fresh world hands out (first gref, first port, the vbd as created)', async () => {
    const fresh = await createWorld({ scratchBytes: 1 << 20, poolPages: 256 });
    const want = { gref: fresh.dom0.grants.grantPages(5, 1).grefs[0], port: fresh.peer.evtchn.allocUnbound(0) };
    await fresh.stop();
    const pool = new WorldPool({ scratchBytes: 1 << 20, poolPages: 256 });
    try {
      const w = await pool.acquire();
      const state = `${w.paths.frontend}/state`;
      const before = await w.dom0.xenstore.read(state);
      // A case that uses things and gives them all back, in another order.
      const a = w.dom0.grants.grantPages(5, 2);
      const b = w.dom0.grants.grantPages(5, 1);
      w.dom0.grants.ungrantPages(a);
      w.dom0.grants.ungrantPages(b);
      const p1 = w.peer.evtchn.allocUnbound(0);
      const p2 = w.peer.evtchn.allocUnbound(0);
      w.peer.evtchn.close(p1);
      w.peer.evtchn.close(p2);
      w.peer.scratch.release(w.peer.scratch.alloc(4096));
      await w.dom0.xenstore.write(state, '4');
      await w.dom0.xenstore.write(`${w.paths.frontend}/ring-ref`, '8');
      await pool.release();
      const again = await pool.acquire();
      expect(again).toBe(w);
      expect(pool.built).toBe(1);
      expect(again.dom0.grants.grantPages(5, 1).grefs[0]).toBe(want.gref);
      expect(again.peer.evtchn.allocUnbound(0)).toBe(want.port);
      expect(await again.dom0.xenstore.read(state)).toBe(before);
      expect(await again.dom0.xenstore.tryRead(`${w.paths.frontend}/ring-ref`)).toBeUndefined();
    } finally {
      await pool.discard();
    }
  });

  it('the frontend target fails a case whose peer leaves a port open, which only the reset looks at', async () => {
    const real = HostileBackend.prototype.release;
    // The planted leak: the hostile backend forgets to close its event channel.
    HostileBackend.prototype.release = function (this: HostileBackend): void {
      const port = this.port;
      this.port = undefined;
      real.call(this);
      this.port = port;
    };
    restore.push(() => void (HostileBackend.prototype.release = real));
    const t = await loadTarget('frontend');
    const h = await t.setup();
    try {
      const c = { engine: 'wasm', order: 0, persistent: false, stormLimit: 100_000, ops: [{ k: 'write', s: 0, n: 1 }] };
      await expect(replayCase(t, h, c)).rejects.toThrow(/found at reset\): dom5: open ports/);
    } finally {
      await h.dispose?.();
    }
  }, 60_000);
});
