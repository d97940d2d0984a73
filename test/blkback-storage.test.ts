/**
 * Blkback's storage rules (README "Storage rules"), against the raw-ring
 * frontend of tools/fuzz/peers (written from blkif.h):
 *  - once the store failed a flush, every later request is answered
 *    BLKIF_RSP_ERROR, even if the store's own later flushes succeed;
 *  - 64-bit sector numbers are compared exactly (no double rounding).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Blkback } from '../src/blkback/blkback.js';
import { MemoryBlockDevice } from '../src/block/memory.js';
import { IoError } from '../src/errors.js';
import { createEngine } from '../src/ring/index.js';
import { OP_DISCARD, OP_FLUSH_DISKCACHE, OP_READ, OP_WRITE, RSP_ERROR, RSP_OKAY } from '../tools/fuzz/peers/blkif-wire.js';
import { HostileFrontend } from '../tools/fuzz/peers/hostile-frontend.js';
import { createWorld, type World } from '../tools/fuzz/peers/world.js';

let world: World | undefined;
let back: Blkback | undefined;
afterEach(async () => {
  await back?.stop().catch(() => undefined);
  await world?.stop();
  back = world = undefined;
});

async function rig(): Promise<{ fe: HostileFrontend; device: MemoryBlockDevice }> {
  world = await createWorld();
  const w = world;
  const device = new MemoryBlockDevice({ sizeBytes: 1 << 20 });
  back = await Blkback.start(w.peer, { backend: w.paths.backend, device, engine: createEngine('wasm', w.peer.memory), features: { discard: true } });
  const fe = new HostileFrontend(w.dom0, { backendId: w.peer.domid, frontend: w.paths.frontend, backend: w.paths.backend });
  await fe.connect();
  return { fe, device };
}

describe('blkback storage rules', () => {
  it('after the store fails one flush, every later request (flush, read, write) is answered BLKIF_RSP_ERROR', async () => {
    const { fe, device } = await rig();
    // The store fails exactly one flush; its later flushes would succeed (the fsyncgate trap).
    const flush = vi.spyOn(device, 'flush').mockRejectedValueOnce(new IoError('fdatasync: EIO'));
    fe.push([{ op: OP_FLUSH_DISKCACHE, byte1: 0, id: 1n, sector: 0n, segs: [] }]);
    expect(await fe.response(1n)).toEqual({ id: 1n, op: OP_FLUSH_DISKCACHE, status: RSP_ERROR });
    fe.push([{ op: OP_FLUSH_DISKCACHE, byte1: 0, id: 2n, sector: 0n, segs: [] }]);
    expect(await fe.response(2n)).toEqual({ id: 2n, op: OP_FLUSH_DISKCACHE, status: RSP_ERROR });
    const g = fe.grant(1, true);
    fe.push([
      { op: OP_READ, byte1: 1, id: 3n, sector: 0n, segs: [{ gref: g.grefs[0]!, first: 0, last: 7 }] },
      { op: OP_WRITE, byte1: 1, id: 4n, sector: 0n, segs: [{ gref: g.grefs[0]!, first: 0, last: 7 }] },
    ]);
    expect((await fe.response(3n)).status).toBe(RSP_ERROR);
    expect((await fe.response(4n)).status).toBe(RSP_ERROR);
    expect(flush).toHaveBeenCalledTimes(1);
    expect(back!.flushFailure).toMatch(/EIO/);
  });

  it('compares 64-bit sectors exactly: a read or discard at 2^64-8 is an error and never reaches the store', async () => {
    const { fe, device } = await rig();
    const read = vi.spyOn(device, 'read');
    const discard = vi.spyOn(device, 'discard');
    const g = fe.grant(1);
    const far = (1n << 64n) - 8n;
    fe.push([
      { op: OP_READ, byte1: 1, id: 5n, sector: far, segs: [{ gref: g.grefs[0]!, first: 0, last: 7 }] },
      { op: OP_DISCARD, byte1: 0, id: 6n, sector: far, segs: [], nrSectors: 8n },
      { op: OP_DISCARD, byte1: 0, id: 7n, sector: 0n, segs: [], nrSectors: (1n << 64n) - 1n },
      { op: OP_READ, byte1: 1, id: 8n, sector: 0n, segs: [{ gref: g.grefs[0]!, first: 0, last: 7 }] },
    ]);
    expect((await fe.response(5n)).status).toBe(RSP_ERROR);
    expect((await fe.response(6n)).status).toBe(RSP_ERROR);
    expect((await fe.response(7n)).status).toBe(RSP_ERROR);
    expect((await fe.response(8n)).status).toBe(RSP_OKAY);
    expect(read).toHaveBeenCalledTimes(1);
    expect(discard).not.toHaveBeenCalled();
  });
});
