/**
 * Blkback regressions found in review: a flush or barrier that carries data
 * must write it; a ring granted as scattered pages must be refused (the
 * engine addresses a multi-page ring as one block), leaving nothing mapped.
 * The frontend is the raw-ring hostile frontend (written from blkif.h).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Blkback } from '../src/blkback/blkback.js';
import { MemoryBlockDevice } from '../src/block/memory.js';
import { createEngine } from '../src/ring/index.js';
import { OP_FLUSH_DISKCACHE, OP_WRITE_BARRIER, RSP_OKAY, Xb } from '../tools/fuzz/peers/blkif-wire.js';
import { HostileFrontend } from '../tools/fuzz/peers/hostile-frontend.js';
import { createWorld, eventually, type World } from '../tools/fuzz/peers/world.js';

let world: World | undefined;
let back: Blkback | undefined;
afterEach(async () => {
  await back?.stop().catch(() => undefined);
  await world?.stop();
  back = world = undefined;
});

async function rig(): Promise<{ w: World; fe: HostileFrontend; device: MemoryBlockDevice }> {
  world = await createWorld();
  const w = world;
  const device = new MemoryBlockDevice({ sizeBytes: 1 << 20 });
  back = await Blkback.start(w.peer, { backend: w.paths.backend, device, engine: createEngine('wasm', w.peer.memory) });
  const fe = new HostileFrontend(w.dom0, { backendId: w.peer.domid, frontend: w.paths.frontend, backend: w.paths.backend });
  return { w, fe, device };
}

describe('blkback', () => {
  for (const op of [OP_FLUSH_DISKCACHE, OP_WRITE_BARRIER]) {
    it(`writes the data a ${op === OP_FLUSH_DISKCACHE ? 'flush' : 'barrier'} request carries before answering OK`, async () => {
      const { fe, device } = await rig();
      await fe.connect();
      const g = fe.grant(2, true);
      fe.page(g, 0).fill(0x11);
      fe.page(g, 1).fill(0x22);
      const id = 0x1234_5678_9abc_def0n;
      fe.push([{ op, byte1: 2, id, sector: 64n, segs: g.grefs.map((gref) => ({ gref, first: 0, last: 7 })) }]);
      expect(await fe.response(id)).toEqual({ id, op, status: RSP_OKAY });
      const disk = new Uint8Array(8192);
      await device.read(64n, [disk]);
      expect(disk.subarray(0, 4096).every((b) => b === 0x11)).toBe(true);
      expect(disk.subarray(4096).every((b) => b === 0x22)).toBe(true);
    });
  }

  it('refuses a multi-page ring whose pages are not contiguous, and maps nothing', async () => {
    const { w, fe } = await rig();
    await fe.awaitBackend([Xb.InitWait]);
    await fe.createRing({ pages: 2 });
    // Point ring-ref1 at a page elsewhere in the frontend's memory.
    fe.grant(3); // a spacer, so the next grant is not adjacent to the ring
    const elsewhere = fe.grant(1);
    await w.dom0.xenstore.write(`${w.paths.frontend}/ring-ref1`, String(elsewhere.grefs[0]));
    await fe.setState(Xb.Initialised);
    expect(await fe.awaitBackend([Xb.Closed, Xb.Connected])).toBe(Xb.Closed);
    expect(back!.lastError).toMatch(/not contiguous/);
    expect(await eventually(() => w.peer.grants.activeMappings() === 0, 2000)).toBe(true);
    expect(back!.queueCount).toBe(0);
  });
});
