/**
 * Blkback against a hostile frontend (issue 4): malformed requests get
 * BLKIF_RSP_ERROR / EOPNOTSUPP echoing their id and operation, the backend
 * keeps serving valid requests after them (checked on the MemoryBlockDevice),
 * a req_prod jump stops that ring (Closed) without crashing, state flapping
 * leaves nothing mapped. The frontend is tools/fuzz/peers/hostile-frontend.ts:
 * raw ring bytes written from blkif.h, independent of the engine under test.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Blkback } from '../src/blkback/blkback.js';
import type { BackendFeatures } from '../src/blkback/features.js';
import { MemoryBlockDevice } from '../src/block/memory.js';
import { createEngine } from '../src/ring/index.js';
import {
  OP_DISCARD,
  OP_FLUSH_DISKCACHE,
  OP_INDIRECT,
  OP_READ,
  OP_WRITE,
  RSP_EOPNOTSUPP,
  RSP_ERROR,
  RSP_OKAY,
  Xb,
  type Segment,
  type WireRequest,
} from '../tools/fuzz/peers/blkif-wire.js';
import { HostileFrontend } from '../tools/fuzz/peers/hostile-frontend.js';
import { createWorld, eventually, type World } from '../tools/fuzz/peers/world.js';

const DISK_BYTES = 1 << 20; // 2048 sectors
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
beforeAll(() => void process.on('unhandledRejection', onUnhandled));
afterAll(() => void process.off('unhandledRejection', onUnhandled));

let world: World | undefined;
let back: Blkback | undefined;
afterEach(async () => {
  await back?.stop().catch(() => undefined);
  back = undefined;
  await world?.stop();
  world = undefined;
  await new Promise((r) => setTimeout(r, 10));
  const seen = unhandled.splice(0);
  expect(seen, 'unhandled rejections').toEqual([]);
});

interface Rig {
  w: World;
  fe: HostileFrontend;
  back: Blkback;
  device: MemoryBlockDevice;
}

async function rig(o: { readOnly?: boolean; features?: Partial<BackendFeatures>; engine?: 'wasm' | 'js'; persistent?: boolean } = {}): Promise<Rig> {
  world = await createWorld({ readOnly: o.readOnly });
  const w = world;
  const device = new MemoryBlockDevice({ sizeBytes: DISK_BYTES, readOnly: o.readOnly });
  back = await Blkback.start(w.peer, {
    backend: w.paths.backend,
    device,
    engine: createEngine(o.engine ?? 'wasm', w.peer.memory),
    features: o.features,
    readOnly: o.readOnly,
  });
  const fe = new HostileFrontend(w.dom0, { backendId: w.peer.domid, frontend: w.paths.frontend, backend: w.paths.backend });
  await fe.connect({ persistent: o.persistent });
  return { w, fe, back, device };
}

let nextId = 0xdead_beef_0000_0001n; // ids use both halves: the echo must keep all 64 bits
const freshId = (): bigint => nextId++;

/** Segments covering whole pages (first 0, last 7). */
const whole = (grefs: readonly number[]): Segment[] => grefs.map((gref) => ({ gref, first: 0, last: 7 }));

async function diskBytes(device: MemoryBlockDevice, sector: number, bytes: number): Promise<Uint8Array> {
  const b = new Uint8Array(bytes);
  await device.read(BigInt(sector), [b]);
  return b;
}

/** A valid write then read through the ring; data checked on the device itself. */
async function expectStillServes(r: Rig, sector = 100, fill = Math.floor(Math.random() * 250) + 1, writeGrantReadOnly = true): Promise<void> {
  const src = r.fe.grant(2, writeGrantReadOnly);
  r.fe.page(src, 0).fill(fill);
  r.fe.page(src, 1).fill(fill ^ 0xff);
  const wid = freshId();
  r.fe.push([{ op: OP_WRITE, byte1: 2, id: wid, sector: BigInt(sector), segs: whole(src.grefs) }]);
  expect(await r.fe.response(wid)).toEqual({ id: wid, op: OP_WRITE, status: RSP_OKAY });
  const onDisk = await diskBytes(r.device, sector, 8192);
  expect(onDisk.subarray(0, 4096).every((b) => b === fill)).toBe(true);
  expect(onDisk.subarray(4096).every((b) => b === (fill ^ 0xff))).toBe(true);
  const dst = r.fe.grant(2);
  const rid = freshId();
  r.fe.push([{ op: OP_READ, byte1: 2, id: rid, sector: BigInt(sector), segs: whole(dst.grefs) }]);
  expect(await r.fe.response(rid)).toEqual({ id: rid, op: OP_READ, status: RSP_OKAY });
  expect(r.fe.page(dst, 0).every((b) => b === fill)).toBe(true);
  expect(r.fe.page(dst, 1).every((b) => b === (fill ^ 0xff))).toBe(true);
}

/** Push `req`, expect one response echoing its id and `op` with `status`, then a valid write/read. */
async function expectAnswered(r: Rig, req: WireRequest, status: number, op = req.op): Promise<void> {
  r.fe.push([req]);
  expect(await r.fe.response(req.id)).toEqual({ id: req.id, op, status });
  await expectStillServes(r);
  expect(r.back.xenbusState as number).toBe(Xb.Connected);
}

describe('blkback answers malformed requests with an error echoing id and operation', () => {
  for (const engine of ['wasm', 'js'] as const) {
    describe(`engine ${engine}`, () => {
      it('serves valid requests (baseline)', async () => {
        const r = await rig({ engine });
        await expectStillServes(r, 0, 0x42);
        await expectStillServes(r, 2032, 0x43); // the last 16 sectors
      });

      for (const op of [4, 7, 9, 0x80, 0xff]) {
        it(`unknown operation ${op} → EOPNOTSUPP`, async () => {
          const r = await rig({ engine });
          await expectAnswered(r, { op, byte1: 0, id: freshId(), sector: 0n, segs: [] }, RSP_EOPNOTSUPP);
        });
      }

      for (const n of [0, 12, 255]) {
        it(`read with nr_segments ${n} → ERROR`, async () => {
          const r = await rig({ engine });
          const g = r.fe.grant(11);
          const req: WireRequest = { op: OP_READ, byte1: n, id: freshId(), sector: 0n, segs: whole(g.grefs) };
          await expectAnswered(r, req, RSP_ERROR);
        });
      }

      for (const [name, seg] of [
        ['first_sect > last_sect', { first: 3, last: 2 }],
        ['last_sect 8', { first: 0, last: 8 }],
        ['first_sect 8', { first: 8, last: 8 }],
        ['last_sect 255', { first: 0, last: 255 }],
      ] as const) {
        it(`write with ${name} → ERROR, nothing written`, async () => {
          const r = await rig({ engine });
          const g = r.fe.grant(1, true);
          r.fe.page(g).fill(0x99);
          await expectAnswered(r, { op: OP_WRITE, byte1: 1, id: freshId(), sector: 0n, segs: [{ gref: g.grefs[0]!, ...seg }] }, RSP_ERROR);
          expect((await diskBytes(r.device, 0, 4096)).every((b) => b === 0)).toBe(true);
        });
      }

      for (const [name, sector] of [
        ['straddling the end', 2044n],
        ['just past the end', 2048n],
        ['at 2^63', 1n << 63n],
        ['at 2^64 - 8', (1n << 64n) - 8n],
      ] as const) {
        it(`read ${name} → ERROR`, async () => {
          const r = await rig({ engine });
          const g = r.fe.grant(1);
          await expectAnswered(r, { op: OP_READ, byte1: 1, id: freshId(), sector, segs: whole(g.grefs) }, RSP_ERROR);
        });
      }

      it('write with a bad gref (never granted, reserved, out of range) → ERROR', async () => {
        const r = await rig({ engine });
        for (const gref of [3, 5000, 0xffff_ffff]) {
          await expectAnswered(r, { op: OP_WRITE, byte1: 1, id: freshId(), sector: 0n, segs: [{ gref, first: 0, last: 7 }] }, RSP_ERROR);
        }
      });

      it('read into a gref granted to another domain → ERROR', async () => {
        const r = await rig({ engine });
        const other = r.fe.grant(1, false, 7);
        await expectAnswered(r, { op: OP_READ, byte1: 1, id: freshId(), sector: 0n, segs: whole(other.grefs) }, RSP_ERROR);
      });

      it('read into a read-only grant → ERROR, page untouched', async () => {
        const r = await rig({ engine });
        await r.device.write(0n, [new Uint8Array(4096).fill(0x5c)]);
        const ro = r.fe.grant(1, true);
        await expectAnswered(r, { op: OP_READ, byte1: 1, id: freshId(), sector: 0n, segs: whole(ro.grefs) }, RSP_ERROR);
        expect(r.fe.page(ro).every((b) => b === 0)).toBe(true);
      });

      it('a request mixing a good and a bad gref maps nothing and writes nothing', async () => {
        const r = await rig({ engine });
        const ringMappings = r.w.peer.grants.activeMappings(); // the ring itself
        const g = r.fe.grant(1, true);
        r.fe.page(g).fill(0x77);
        const segs = [...whole(g.grefs), { gref: 4999, first: 0, last: 7 }];
        await expectAnswered(r, { op: OP_WRITE, byte1: 2, id: freshId(), sector: 0n, segs }, RSP_ERROR);
        expect((await diskBytes(r.device, 0, 8192)).every((b) => b === 0)).toBe(true);
        expect(r.w.peer.grants.activeMappings()).toBe(ringMappings);
      });

      it('discard past the end → ERROR; secure discard not offered → EOPNOTSUPP', async () => {
        const r = await rig({ engine });
        await expectAnswered(r, { op: OP_DISCARD, byte1: 0, id: freshId(), sector: 2000n, segs: [], nrSectors: 100n }, RSP_ERROR);
        await expectAnswered(r, { op: OP_DISCARD, byte1: 1, id: freshId(), sector: 0n, segs: [], nrSectors: 8n }, RSP_EOPNOTSUPP);
      });

      it('indirect request with garbage in its indirect page → ERROR', async () => {
        const r = await rig({ engine });
        const ind = r.fe.grant(1, true);
        const p = r.fe.page(ind);
        for (let i = 0; i < p.length; i++) p[i] = (i * 131 + 17) & 0xff;
        await expectAnswered(r, { op: OP_INDIRECT, byte1: OP_READ, id: freshId(), sector: 0n, segs: [], indirectSegs: 16, indirectGrefs: [ind.grefs[0]!] }, RSP_ERROR, OP_READ);
      });

      for (const indirectOp of [OP_FLUSH_DISKCACHE, OP_DISCARD, OP_INDIRECT, 0xee]) {
        it(`indirect request with indirect_op ${indirectOp} → ERROR echoing indirect_op`, async () => {
          const r = await rig({ engine });
          const data = r.fe.grant(1);
          const ind = r.fe.grant(1, true);
          new DataView(r.fe.page(ind).buffer, r.fe.page(ind).byteOffset).setUint32(0, data.grefs[0]!, true);
          r.fe.page(ind)[5] = 7; // last_sect
          await expectAnswered(r, { op: OP_INDIRECT, byte1: indirectOp, id: freshId(), sector: 0n, segs: [], indirectSegs: 1, indirectGrefs: [ind.grefs[0]!] }, RSP_ERROR, indirectOp);
        });
      }

      for (const n of [0, 257, 4097, 0xffff]) {
        it(`indirect request with ${n} segments → ERROR`, async () => {
          const r = await rig({ engine });
          const ind = r.fe.grant(8, true);
          await expectAnswered(r, { op: OP_INDIRECT, byte1: OP_WRITE, id: freshId(), sector: 0n, segs: [], indirectSegs: n, indirectGrefs: [...ind.grefs] }, RSP_ERROR, OP_WRITE);
        });
      }

      it('indirect request whose indirect gref is bad → ERROR', async () => {
        const r = await rig({ engine });
        await expectAnswered(r, { op: OP_INDIRECT, byte1: OP_READ, id: freshId(), sector: 0n, segs: [], indirectSegs: 4, indirectGrefs: [4321] }, RSP_ERROR, OP_READ);
      });

      it('a slot of random bytes never crashes the backend, and is answered', async () => {
        const r = await rig({ engine });
        let seed = 12345;
        const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
        for (let k = 0; k < 20; k++) {
          const bytes = Uint8Array.from({ length: 112 }, rnd);
          const dv = new DataView(bytes.buffer);
          const id = freshId();
          dv.setBigUint64(8, id, true);
          r.fe.pushBytes(bytes);
          const rsp = await r.fe.response(id);
          expect([RSP_ERROR, RSP_EOPNOTSUPP, RSP_OKAY]).toContain(rsp.status);
        }
        await expectStillServes(r);
      });
    });
  }

  it('write on a read-only disk → ERROR, disk unchanged', async () => {
    const r = await rig({ readOnly: true });
    const g = r.fe.grant(1, true);
    r.fe.page(g).fill(0xab);
    r.fe.push([{ op: OP_WRITE, byte1: 1, id: 77n, sector: 0n, segs: whole(g.grefs) }]);
    expect(await r.fe.response(77n)).toEqual({ id: 77n, op: OP_WRITE, status: RSP_ERROR });
    r.fe.push([{ op: OP_DISCARD, byte1: 0, id: 78n, sector: 0n, segs: [], nrSectors: 8n }]);
    expect((await r.fe.response(78n)).status).toBeLessThan(0);
    expect((await diskBytes(r.device, 0, 4096)).every((b) => b === 0)).toBe(true);
    // Reads still work.
    const d = r.fe.grant(1);
    r.fe.push([{ op: OP_READ, byte1: 1, id: 79n, sector: 0n, segs: whole(d.grefs) }]);
    expect(await r.fe.response(79n)).toEqual({ id: 79n, op: OP_READ, status: RSP_OKAY });
  });

  it('with persistent grants, a read-only grant for a read fails and writable grants keep working', async () => {
    const r = await rig({ persistent: true });
    const ro = r.fe.grant(1, true);
    r.fe.push([{ op: OP_READ, byte1: 1, id: 90n, sector: 0n, segs: whole(ro.grefs) }]);
    expect(await r.fe.response(90n)).toEqual({ id: 90n, op: OP_READ, status: RSP_ERROR });
    // Persistent grants are mapped writable once (as Linux's blkback does), so they must be granted writable.
    await expectStillServes(r, 100, 0x21, false);
    await expectStillServes(r, 200, 0x22, false);
    expect(r.w.peer.grants.activeMappings()).toBeGreaterThan(1); // kept: the ring plus persistent data grants
    await r.back.stop();
    expect(r.w.peer.grants.activeMappings()).toBe(0);
    expect(r.w.peer.evtchn.openPorts()).toEqual([]);
  });
});

describe('blkback stops serving a ring whose req_prod is past the ring', () => {
  for (const [name, jump] of [
    ['one more than a ring', 33],
    ['far ahead', 0x7fff_0000],
    ['behind req_cons', -1],
  ] as const) {
    it(`req_prod ${name}: Closed, nothing mapped, process alive`, async () => {
      const r = await rig();
      await expectStillServes(r);
      r.fe.setReqProd(r.fe.reqProdPvt + jump);
      expect(await eventually(() => (r.back.xenbusState as number) === Xb.Closed)).toBe(true);
      expect(r.back.lastError).toBeTruthy();
      expect(r.w.peer.grants.activeMappings()).toBe(0);
      expect(r.w.peer.evtchn.openPorts()).toEqual([]);
      expect(r.back.queueCount).toBe(0);
      // Everything the frontend granted can be ended: the backend let go.
      r.fe.release();
      expect(r.w.dom0.grants.activeGrants()).toBe(0);
    });
  }

  it('a ring stopped for req_prod overflow can reconnect with a fresh ring and serve again', async () => {
    const r = await rig();
    r.fe.setReqProd(r.fe.reqProdPvt + 1000);
    expect(await eventually(() => (r.back.xenbusState as number) === Xb.Closed)).toBe(true);
    r.fe.release();
    await r.fe.setState(Xb.Initialising);
    await r.fe.connect();
    await expectStillServes(r);
  });
});

describe('blkback under xenbus state flapping', () => {
  it('Initialising → Initialised → Closing → Closed → Initialising quickly, many times: ends with nothing mapped, then serves a good frontend', async () => {
    const r = await rig();
    await expectStillServes(r);
    for (let round = 0; round < 20; round++) {
      // Fast: no waiting for the backend between writes.
      await r.fe.setState(Xb.Initialising);
      await r.fe.setState(Xb.Initialised);
      await r.fe.setState(Xb.Closing);
      if (round % 3 === 0) await new Promise((res) => setImmediate(res));
      await r.fe.setState(Xb.Closed);
      await r.fe.setState(Xb.Initialising);
    }
    await r.fe.setState(Xb.Closed);
    expect(await eventually(() => (r.back.xenbusState as number) === Xb.Closed)).toBe(true);
    expect(await eventually(() => r.w.peer.grants.activeMappings() === 0)).toBe(true);
    expect(r.w.peer.evtchn.openPorts()).toEqual([]);
    // A good frontend after all that.
    r.fe.release();
    await r.fe.setState(Xb.Initialising);
    await r.fe.connect();
    await expectStillServes(r);
    await r.back.stop();
    expect(r.w.peer.grants.activeMappings()).toBe(0);
    expect(r.w.peer.evtchn.openPorts()).toEqual([]);
  });

  it('flapping with garbage state values never crashes or maps anything', async () => {
    const r = await rig();
    for (const s of ['9', '-1', 'abc', '', '4294967297', '3', '5', '1', '6']) await r.fe.setState(s);
    expect(await eventually(() => (r.back.xenbusState as number) === Xb.Closed)).toBe(true);
    expect(await eventually(() => r.w.peer.grants.activeMappings() === 0)).toBe(true);
  });

  it('after stop() with requests in the ring, the backend domain maps nothing and holds no port', async () => {
    const r = await rig();
    const g = r.fe.grant(11);
    r.fe.push(Array.from({ length: 20 }, (_, i) => ({ op: OP_READ, byte1: 11, id: BigInt(i), sector: BigInt(i * 88), segs: whole(g.grefs) })));
    await r.back.stop();
    expect(r.w.peer.grants.activeMappings()).toBe(0);
    expect(r.w.peer.evtchn.openPorts()).toEqual([]);
  });
});
