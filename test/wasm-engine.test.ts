// Ring behaviour through the Wasm engine, over a real shared layout. Expected
// values come from ring.h's rules and engine.ts's table layouts, written here.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createSharedLayout, frameAddress, type SharedLayout } from '../src/memory/layout.js';
import { Abi } from '../src/ring/engine.js';
import { BlkifStatus } from '../src/ring/status.js';
import { createWasmEngine, type WasmEngine } from '../src/wasm/engine.js';

interface Rig {
  layout: SharedLayout;
  eng: WasmEngine;
  dv: DataView;
  front: number;
  back: number;
  shadow: number;
  descs: number;
  segs: number;
  comps: number;
  sring: number;
}

function rig(): Rig {
  const layout = createSharedLayout({ scratchBytes: 1 << 16, poolPages: 32 });
  const eng = createWasmEngine(layout.memory);
  const s = layout.scratchBase;
  return {
    layout, eng, dv: new DataView(layout.memory.buffer),
    front: s, back: s + 32, shadow: s + 64, descs: s + 1024, segs: s + 8192, comps: s + 32768,
    sring: frameAddress(layout, 0),
  };
}
const shared = (r: Rig) => ({
  reqProd: r.dv.getUint32(r.sring, true),
  reqEvent: r.dv.getUint32(r.sring + 4, true),
  rspProd: r.dv.getUint32(r.sring + 8, true),
  rspEvent: r.dv.getUint32(r.sring + 12, true),
});
function setShared(r: Rig, reqProd: number, reqEvent: number, rspProd: number, rspEvent: number): void {
  [reqProd, reqEvent, rspProd, rspEvent].forEach((v, i) => r.dv.setUint32(r.sring + 4 * i, v >>> 0, true));
}
function setIdx(r: Rig, state: number, prodPvt: number, cons: number): void {
  r.dv.setUint32(state + 12, prodPvt >>> 0, true);
  r.dv.setUint32(state + 16, cons >>> 0, true);
}
const prodPvt = (r: Rig, st: number) => r.dv.getUint32(st + 12, true);
const cons = (r: Rig, st: number) => r.dv.getUint32(st + 16, true);
/** A flush descriptor (no segments): op 3, id, sector. */
function flushDesc(r: Rig, i: number, id: number): void {
  const d = r.descs + i * 32;
  new Uint8Array(r.layout.memory.buffer, d, 32).fill(0);
  r.dv.setUint8(d, 3);
  r.dv.setBigUint64(d + 8, BigInt(id), true);
  r.dv.setBigUint64(d + 16, BigInt(id * 8), true);
}
/** A wire response written by hand into the slot of ring index `idx` (x86_64). */
function wireResponse(r: Rig, idx: number, id: bigint, op: number, status: number, nrEnts = 32): void {
  const slot = r.sring + 64 + (idx & (nrEnts - 1)) * 112;
  r.dv.setBigUint64(slot, id, true);
  r.dv.setUint8(slot + 8, op);
  r.dv.setInt16(slot + 10, status, true);
}

describe('WasmEngine setup', () => {
  it('loads the module synchronously and keeps static data below SCRATCH_BASE', () => {
    const r = rig();
    expect(r.eng.kind).toBe('wasm');
    expect(r.eng.ringSize(1, 112)).toBe(32);
  });
  it('spells the same status numbers as src/ring/status.ts', () => {
    const text = readFileSync(new URL('../assembly/status.ts', import.meta.url), 'utf8');
    const wasm = Object.fromEntries(
      [...text.matchAll(/export const (\w+): i32 = (-?\d+);/g)].map((m) => [m[1], Number(m[2])]),
    );
    expect(wasm).toEqual({
      OK: BlkifStatus.OK, BAD_OPERATION: BlkifStatus.BAD_OPERATION, BAD_NR_SEGMENTS: BlkifStatus.BAD_NR_SEGMENTS,
      BAD_SECTOR_RANGE: BlkifStatus.BAD_SECTOR_RANGE, BAD_INDIRECT_OP: BlkifStatus.BAD_INDIRECT_OP,
      BAD_INDIRECT_NR_SEGMENTS: BlkifStatus.BAD_INDIRECT_NR_SEGMENTS, BAD_ABI: BlkifStatus.BAD_ABI,
      BAD_DISCARD_FLAG: BlkifStatus.BAD_DISCARD_FLAG, BAD_ID: BlkifStatus.BAD_ID, ID_IN_FLIGHT: BlkifStatus.ID_IN_FLIGHT,
      RSP_PROD_OVERFLOW: BlkifStatus.RSP_PROD_OVERFLOW, RSP_BAD_ID: BlkifStatus.RSP_BAD_ID,
      RSP_NOT_IN_FLIGHT: BlkifStatus.RSP_NOT_IN_FLIGHT, RSP_BAD_OPERATION: BlkifStatus.RSP_BAD_OPERATION,
      RSP_BAD_STATUS: BlkifStatus.RSP_BAD_STATUS, REQ_PROD_OVERFLOW: BlkifStatus.REQ_PROD_OVERFLOW,
      BAD_RING_PAGES: BlkifStatus.BAD_RING_PAGES, BAD_SLOT_SIZE: BlkifStatus.BAD_SLOT_SIZE,
      GRANT_BUSY: BlkifStatus.GRANT_BUSY, GREF_NOT_OURS: BlkifStatus.GREF_NOT_OURS,
      GREF_ALREADY_FREE: BlkifStatus.GREF_ALREADY_FREE,
    });
  });
});

describe('ring initialisation', () => {
  it('front init: producers 0, events 1, state filled', () => {
    const r = rig();
    expect(r.eng.frontRingInit(r.front, r.sring, 1, 112)).toBe(32);
    expect(shared(r)).toEqual({ reqProd: 0, reqEvent: 1, rspProd: 0, rspEvent: 1 });
    expect([0, 4, 8, 12, 16].map((o) => r.dv.getUint32(r.front + o, true))).toEqual([r.sring, 32, 112, 0, 0]);
    expect(r.eng.freeRequests(r.front)).toBe(32);
  });
  it('back attach never re-initialises the shared page', () => {
    const r = rig();
    setShared(r, 9, 4, 7, 8);
    expect(r.eng.backRingAttach(r.back, r.sring, 1, 112)).toBe(32);
    expect(shared(r)).toEqual({ reqProd: 9, reqEvent: 4, rspProd: 7, rspEvent: 8 });
    expect(r.eng.unconsumedRequests(r.back)).toBe(2);
  });
  it.each([
    [1, 112, 32], [2, 112, 64], [4, 112, 128], [8, 108, 256], [16, 112, 512], [16, 108, 512],
  ])('sizes a %i-page ring of %i-byte slots at %i entries', (pages, slot, ents) => {
    const r = rig();
    expect(r.eng.frontRingInit(r.front, r.sring, pages, slot)).toBe(ents);
  });
  it('rejects bad geometry', () => {
    const r = rig();
    expect(r.eng.frontRingInit(r.front, r.sring, 3, 112)).toBe(BlkifStatus.BAD_RING_PAGES);
    expect(r.eng.backRingAttach(r.back, r.sring, 32, 112)).toBe(BlkifStatus.BAD_RING_PAGES);
    expect(r.eng.frontRingInit(r.front, r.sring, 1, 4096)).toBe(BlkifStatus.BAD_SLOT_SIZE);
  });
});

describe('notify decisions', () => {
  // (old req_prod, req_event, new req_prod) -> notify iff (new - event) < (new - old), u32
  it.each([
    [0, 1, 1, 1], [0, 1, 0, 0], [2, 3, 5, 1], [2, 5, 5, 1], [2, 6, 5, 0], [2, 2, 5, 0],
    [0xfffffffe, 0xffffffff, 2, 1], [0xfffffffe, 1, 2, 1], [0xfffffffe, 3, 2, 0], [0xffffff00, 0xffffff00, 0xffffff10, 0],
  ])('old %i, event %i, new %i -> %i', (old, event, nw, notify) => {
    const r = rig();
    r.eng.frontRingInit(r.front, r.sring, 1, 112);
    setShared(r, old, event, 0, 1);
    setIdx(r, r.front, nw, old);
    expect(r.eng.pushRequestsAndCheckNotify(r.front)).toBe(notify);
    expect(shared(r).reqProd).toBe(nw >>> 0);
    // The back side uses the same rule on rsp_prod / rsp_event.
    r.eng.backRingAttach(r.back, r.sring, 1, 112);
    setShared(r, 0, 1, old, event);
    setIdx(r, r.back, nw, nw);
    expect(r.eng.pushResponsesAndCheckNotify(r.back)).toBe(notify);
    expect(shared(r).rspProd).toBe(nw >>> 0);
  });
});

describe('final checks', () => {
  it('front re-arms rsp_event = rsp_cons + 1 when idle, across the wrap', () => {
    const r = rig();
    r.eng.frontRingInit(r.front, r.sring, 1, 112);
    setShared(r, 0, 1, 0xffffffff, 5);
    setIdx(r, r.front, 0xffffffff, 0xffffffff);
    expect(r.eng.finalCheckForResponses(r.front)).toBe(0);
    expect(shared(r).rspEvent).toBe(0);
  });
  it('front reports waiting responses and leaves rsp_event', () => {
    const r = rig();
    r.eng.frontRingInit(r.front, r.sring, 1, 112);
    setShared(r, 3, 1, 2, 5);
    setIdx(r, r.front, 3, 1);
    expect(r.eng.finalCheckForResponses(r.front)).toBe(1);
    expect(shared(r).rspEvent).toBe(5);
  });
  it('back re-arms req_event = req_cons + 1 when idle, reports work otherwise', () => {
    const r = rig();
    setShared(r, 4, 1, 4, 1);
    r.eng.backRingAttach(r.back, r.sring, 1, 112);
    expect(r.eng.finalCheckForRequests(r.back)).toBe(0);
    expect(shared(r).reqEvent).toBe(5);
    setShared(r, 6, 5, 4, 1);
    expect(r.eng.finalCheckForRequests(r.back)).toBe(1);
    expect(shared(r).reqEvent).toBe(5);
  });
});

describe('round trips', () => {
  function roundTrips(r: Rig, pages: number, start: number, rounds: number, batch: number): void {
    const nrEnts = r.eng.frontRingInit(r.front, r.sring, pages, 112);
    setShared(r, start, start + 1, start, start + 1);
    setIdx(r, r.front, start, start);
    expect(r.eng.backRingAttach(r.back, r.sring, pages, 112)).toBe(nrEnts);
    let next = 0;
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < batch; i++) flushDesc(r, i, (next + i) % nrEnts);
      expect(r.eng.blkifWriteRequests(r.front, r.shadow, r.descs, batch, Abi.X86_64)).toBe(batch);
      for (let i = 0; i < batch; i++) expect(r.dv.getInt16(r.descs + i * 32 + 6, true)).toBe(0);
      r.eng.pushRequestsAndCheckNotify(r.front);
      expect(r.eng.blkifTakeRequests(r.back, r.descs, r.segs, nrEnts, Abi.X86_64)).toBe(batch);
      for (let i = 0; i < batch; i++) {
        const d = r.descs + i * 32;
        expect(r.dv.getBigUint64(d + 8, true)).toBe(BigInt((next + i) % nrEnts));
        // completion entry from the taken descriptor: id, op, status 0
        r.dv.setBigUint64(r.comps + i * 16, r.dv.getBigUint64(d + 8, true), true);
        r.dv.setUint32(r.comps + i * 16 + 8, 3, true);
      }
      expect(r.eng.blkifWriteResponses(r.back, r.comps, batch, Abi.X86_64)).toBe(batch);
      r.eng.pushResponsesAndCheckNotify(r.back);
      expect(r.eng.blkifReapResponses(r.front, r.shadow, r.comps + 8192, batch + 4, Abi.X86_64)).toBe(batch);
      for (let i = 0; i < batch; i++) {
        expect(r.dv.getBigUint64(r.comps + 8192 + i * 16, true)).toBe(BigInt((next + i) % nrEnts));
      }
      expect(r.eng.finalCheckForResponses(r.front)).toBe(0);
      next += batch;
    }
    const end = (start + rounds * batch) >>> 0;
    expect(shared(r)).toEqual({ reqProd: end, reqEvent: shared(r).reqEvent, rspProd: end, rspEvent: (end + 1) >>> 0 });
    expect([prodPvt(r, r.front), cons(r, r.front), prodPvt(r, r.back), cons(r, r.back)]).toEqual([end, end, end, end]);
    expect(new Uint8Array(r.layout.memory.buffer, r.shadow, nrEnts).every((b) => b === 0)).toBe(true);
  }
  it('wraps the u32 indices across 2^32 (one page)', () => {
    roundTrips(rig(), 1, 0xffffff00, 64, 7); // 448 requests from 2^32 - 256
  });
  it('runs a 16-page ring with a full batch of 512 across 2^32', () => {
    roundTrips(rig(), 16, 0xfffffe00, 3, 512);
  });
  it('stops writing when a multi-page ring is full', () => {
    const r = rig();
    const n = r.eng.frontRingInit(r.front, r.sring, 4, 112);
    for (let i = 0; i < n + 2; i++) flushDesc(r, i, i % n);
    expect(r.eng.blkifWriteRequests(r.front, r.shadow, r.descs, n + 2, Abi.X86_64)).toBe(n);
    expect(r.eng.freeRequests(r.front)).toBe(0);
  });
});

describe('reap validation', () => {
  function primed(): Rig {
    const r = rig();
    r.eng.frontRingInit(r.front, r.sring, 1, 112);
    flushDesc(r, 0, 4);
    r.eng.blkifWriteRequests(r.front, r.shadow, r.descs, 1, Abi.X86_64);
    r.eng.pushRequestsAndCheckNotify(r.front);
    return r;
  }
  it('accepts the in-flight id with its op and clears the shadow', () => {
    const r = primed();
    expect(r.dv.getUint8(r.shadow + 4)).toBe(4);
    wireResponse(r, 0, 4n, 3, -2);
    setShared(r, 1, 1, 1, 1);
    expect(r.eng.blkifReapResponses(r.front, r.shadow, r.comps, 8, Abi.X86_64)).toBe(1);
    expect(r.dv.getUint8(r.shadow + 4)).toBe(0);
    expect(r.dv.getInt16(r.comps + 10, true)).toBe(-2);
  });
  it.each([
    ['rsp_prod past the ring', 33, 4n, 3, 0, BlkifStatus.RSP_PROD_OVERFLOW],
    ['rsp_prod behind rsp_cons', 0xffffffff, 4n, 3, 0, BlkifStatus.RSP_PROD_OVERFLOW],
    ['id out of range', 1, 32n, 3, 0, BlkifStatus.RSP_BAD_ID],
    ['id above 2^32', 1, (1n << 32n) + 4n, 3, 0, BlkifStatus.RSP_BAD_ID],
    ['id not in flight', 1, 5n, 3, 0, BlkifStatus.RSP_NOT_IN_FLIGHT],
    ['wrong operation', 1, 4n, 1, 0, BlkifStatus.RSP_BAD_OPERATION],
    ['status 1', 1, 4n, 3, 1, BlkifStatus.RSP_BAD_STATUS],
    ['status -3', 1, 4n, 3, -3, BlkifStatus.RSP_BAD_STATUS],
  ])('fails on %s', (_name, rspProd, id, op, status, expected) => {
    const r = primed();
    wireResponse(r, 0, id, op, status);
    setShared(r, 1, 1, rspProd, 1);
    expect(r.eng.blkifReapResponses(r.front, r.shadow, r.comps, 8, Abi.X86_64)).toBe(expected);
    expect(r.dv.getUint8(r.shadow + 4)).toBe(4); // still in flight
    expect(cons(r, r.front)).toBe(0);
  });
  it('a duplicate response after a good one fails as not in flight', () => {
    const r = primed();
    wireResponse(r, 0, 4n, 3, 0);
    wireResponse(r, 1, 4n, 3, 0);
    setShared(r, 1, 1, 2, 1);
    expect(r.eng.blkifReapResponses(r.front, r.shadow, r.comps, 8, Abi.X86_64)).toBe(BlkifStatus.RSP_NOT_IN_FLIGHT);
    expect(cons(r, r.front)).toBe(1); // the good one stays reaped
  });
  it('the back refuses req_prod past the ring', () => {
    const r = rig();
    r.eng.frontRingInit(r.front, r.sring, 1, 112);
    r.eng.backRingAttach(r.back, r.sring, 1, 112);
    setShared(r, 33, 1, 0, 1);
    expect(r.eng.blkifTakeRequests(r.back, r.descs, r.segs, 64, Abi.X86_64)).toBe(BlkifStatus.REQ_PROD_OVERFLOW);
    expect(cons(r, r.back)).toBe(0);
  });
  it('unknown ABI is refused before anything is touched', () => {
    const r = primed();
    expect(r.eng.blkifReapResponses(r.front, r.shadow, r.comps, 8, 7 as Abi)).toBe(BlkifStatus.BAD_ABI);
    expect(r.eng.blkifWriteRequests(r.front, r.shadow, r.descs, 1, 2 as Abi)).toBe(BlkifStatus.BAD_ABI);
  });
});

describe('grants through the engine', () => {
  it('writes entries, ends access, allocates and frees grefs', () => {
    const r = rig();
    const table = frameAddress(r.layout, 1);
    r.eng.grantEntryWrite(table, 2, 7, 0x1234, 1);
    expect([r.dv.getUint16(table + 16, true), r.dv.getUint16(table + 18, true), r.dv.getUint32(table + 20, true)]).toEqual([1, 7, 0x1234]);
    r.dv.setUint16(table + 16, 1 | 16, true);
    expect(r.eng.grantEntryEndAccess(table, 2)).toBe(BlkifStatus.GRANT_BUSY);
    r.dv.setUint16(table + 16, 1, true);
    expect(r.eng.grantEntryEndAccess(table, 2)).toBe(0);
    const list = r.comps;
    r.eng.grefFreeListInit(list, 8, 4);
    expect(r.eng.grefAlloc(list, 8, r.segs)).toBe(4);
    expect([0, 1, 2, 3].map((i) => r.dv.getUint32(r.segs + 4 * i, true))).toEqual([8, 9, 10, 11]);
    expect(r.eng.grefFree(list, r.segs, 4)).toBe(0);
    expect(r.eng.grefFree(list, r.segs, 1)).toBe(BlkifStatus.GREF_ALREADY_FREE);
  });
});
