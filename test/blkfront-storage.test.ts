/**
 * Blkfront's storage rules (README "Storage rules") against the scriptable
 * backend of tools/fuzz/peers (raw ring accesses written from blkif.h,
 * independent of the engine under test):
 *  - a flush the backend fails fails the device for good (sticky `io`);
 *  - 64-bit wire sectors are carried exactly, below the validation layer;
 *  - with no answer, a call stays pending until disconnect() (default), or
 *    rejects with `timeout` at an opt-in per-request deadline, the device
 *    staying usable.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Blkfront, type BlkfrontOptions } from '../src/blkfront/blkfront.js';
import { createEngine } from '../src/ring/index.js';
import { OP_FLUSH_DISKCACHE, OP_READ, RSP_ERROR } from '../tools/fuzz/peers/blkif-wire.js';
import { HostileBackend } from '../tools/fuzz/peers/hostile-backend.js';
import { createWorld, eventually, type World } from '../tools/fuzz/peers/world.js';

let world: World | undefined;
afterEach(async () => {
  await world?.stop();
  world = undefined;
});

async function rig(engine: 'wasm' | 'js', extra: Partial<BlkfrontOptions> = {}): Promise<{ be: HostileBackend; dev: Blkfront }> {
  world = await createWorld();
  const w = world;
  const be = new HostileBackend(w.peer, { frontendId: 0, frontend: w.paths.frontend, backend: w.paths.backend });
  const attaching = Blkfront.attach(w.dom0, {
    engine: createEngine(engine, w.dom0.memory),
    frontend: w.paths.frontend,
    persistent: false,
    maxRingPageOrder: 0,
    connectTimeoutMs: 3000,
    ...extra,
  });
  await be.handshake();
  return { be, dev: await attaching };
}

function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

for (const engine of ['wasm', 'js'] as const) {
  describe(`blkfront storage rules (${engine} engine)`, () => {
    it('a flush answered BLKIF_RSP_ERROR fails the device: every later flush, read and write rejects with that io error', async () => {
      const { be, dev } = await rig(engine);
      be.onRequest = (r, b) => {
        if (r.req.op === OP_FLUSH_DISKCACHE) {
          b.respond({ id: r.req.id, op: r.req.op, status: RSP_ERROR });
          b.publish();
        } else b.serve(r);
      };
      await dev.write(0n, [new Uint8Array(4096).fill(1)]);
      const first = await dev.flush().catch((e: unknown) => e);
      expect(first).toMatchObject({ code: 'io' });
      expect((first as Error).message).toMatch(/flush/);
      const sent = be.received.length;
      // Before the fix the second flush reached the backend again and could succeed.
      await expect(dev.flush()).rejects.toBe(first);
      await expect(dev.read(0n, [new Uint8Array(512)])).rejects.toBe(first);
      await expect(dev.write(0n, [new Uint8Array(512)])).rejects.toBe(first);
      expect(be.received.length).toBe(sent);
      expect(dev.stats().state).toBe('failed');
    });

    it('carries 64-bit wire sectors exactly below the validation layer (2^64-8 does not wrap to 0, 2^53+1 does not round)', async () => {
      const { be, dev } = await rig(engine);
      be.onRequest = (r, b) => {
        b.respond({ id: r.req.id, op: r.req.op, status: RSP_ERROR });
        b.publish();
      };
      // Blkfront.rw is the layer under validate*: what a future caller that skipped validation would reach.
      const rw = (dev as unknown as { rw(op: number, info: unknown, s: bigint, b: Uint8Array[], n: number): Promise<void> }).rw.bind(dev);
      for (const sector of [(1n << 64n) - 8n, (1n << 53n) + 1n, 0xffff_ffffn + 1n]) {
        const before = be.received.length;
        await expect(rw(OP_READ, dev.info(), sector, [new Uint8Array(4096)], 4096)).rejects.toMatchObject({ code: 'io' });
        expect(be.received.slice(before).map((r) => r.req.sector)).toEqual([sector]);
      }
    });

    it('by default a call the backend never answers stays pending until disconnect(), which rejects it', async () => {
      const { be, dev } = await rig(engine, { disconnectTimeoutMs: 200 });
      be.onRequest = () => undefined;
      let settled = false;
      const p = handled(dev.read(0n, [new Uint8Array(512)]).finally(() => (settled = true)));
      expect(await eventually(() => be.received.length === 1, 3000)).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
      expect(settled).toBe(false);
      await dev.disconnect();
      await expect(p).rejects.toMatchObject({ code: 'disconnected' });
    });

    it('requestTimeoutMs fails an unanswered call with timeout and leaves the device usable', async () => {
      const { be, dev } = await rig(engine, { requestTimeoutMs: 100, disconnectTimeoutMs: 200 });
      let answer = false;
      be.onRequest = (r, b) => {
        if (answer) b.serve(r);
      };
      const buf = new Uint8Array(512).fill(0xee);
      await expect(dev.read(0n, [buf])).rejects.toMatchObject({ code: 'timeout' });
      expect(dev.stats().state).toBe('connected');
      answer = true;
      be.disk.fill(0x42, 512, 1024);
      const ok = new Uint8Array(512);
      await dev.read(1n, [ok]);
      expect(ok.every((b) => b === 0x42)).toBe(true);
      // The timed-out read's buffer is never written by a late answer.
      expect(buf.every((b) => b === 0xee)).toBe(true);
    });
  });
}

it('requestTimeoutMs is checked at attach', async () => {
  world = await createWorld();
  await expect(
    Blkfront.attach(world.dom0, { engine: createEngine('js', world.dom0.memory), frontend: world.paths.frontend, requestTimeoutMs: 0 }),
  ).rejects.toMatchObject({ code: 'invalid-argument', field: 'requestTimeoutMs' });
});
