/**
 * Targeted tests of the JS twin (src/ring/js): notify decisions, final
 * checks, producer-overflow detection and every validation status, with
 * expectations worked out by hand from ring.h and blkif.h. The same table
 * runs against the Wasm engine too (the contract is one), so a failure names
 * which engine broke it.
 */
import { describe, expect, test } from 'vitest';
import { Abi, BlkifStatus, createEngine, type RingEngine } from '../src/ring/index.js';
import { createSharedLayout } from '../src/memory/layout.js';

const T = 65536; // tables
const STATE = T;
const BACK = T + 0x20;
const SHADOW = T + 0x100;
const DESCS = T + 0x400; // 64 descriptors
const SEGS = T + 0x2000; // 64 · 88
const COMPS = T + 0x4000;
const SLOT = T + 0x4400;
const LIST = T + 0x4600;
const OUT = T + 0x4800;

function setup(kind: 'js' | 'wasm') {
  const layout = createSharedLayout({ scratchBytes: 1 << 16, poolPages: 32 });
  const e = createEngine(kind, layout.memory);
  const dv = new DataView(layout.memory.buffer);
  const u8 = new Uint8Array(layout.memory.buffer);
  const sring = layout.poolBase;
  const grantTable = layout.poolBase + 16 * 4096;
  const u32At = (a: number) => dv.getUint32(a, true);
  const setU32 = (a: number, v: number) => dv.setUint32(a, v >>> 0, true);
  /** Front and back over one 1-page x86_64 ring (32 slots of 112), all indices at `idx`. */
  const ring = (idx = 0) => {
    expect(e.frontRingInit(STATE, sring, 1, 112)).toBe(32);
    for (const o of [0, 8]) setU32(sring + o, idx);
    for (const o of [4, 12]) setU32(sring + o, idx + 1);
    setU32(STATE + 12, idx);
    setU32(STATE + 16, idx);
    expect(e.backRingAttach(BACK, sring, 1, 112)).toBe(32);
    u8.fill(0, SHADOW, SHADOW + 32);
  };
  /** A read descriptor i with `nr` segments of sectors first..last. */
  const desc = (i: number, f: { op?: number; flag?: number; nr?: number; id?: bigint; first?: number; last?: number } = {}) => {
    const at = DESCS + 32 * i;
    const nr = f.nr ?? 1;
    dv.setUint8(at, f.op ?? 0);
    dv.setUint8(at + 1, f.flag ?? 0);
    dv.setUint16(at + 2, 0x301, true);
    dv.setUint16(at + 4, nr, true);
    dv.setInt16(at + 6, 0x7777, true);
    dv.setBigUint64(at + 8, f.id ?? BigInt(i), true);
    dv.setBigUint64(at + 16, 100n, true);
    dv.setBigUint64(at + 24, BigInt(SEGS + 88 * i), true);
    for (let k = 0; k < Math.min(nr, 11); k++) {
      dv.setUint32(SEGS + 88 * i + 8 * k, 0x500 + k, true);
      dv.setUint8(SEGS + 88 * i + 8 * k + 4, f.first ?? 0);
      dv.setUint8(SEGS + 88 * i + 8 * k + 5, f.last ?? 7);
    }
    return at;
  };
  const status = (i: number) => dv.getInt16(DESCS + 32 * i + 6, true);
  /** Back writes a response (id, op, status) straight into the ring at rsp_prod_pvt and publishes it. */
  const respond = (id: bigint, op: number, st: number) => {
    const slot = sring + 64 + (u32At(BACK + 12) & 31) * 112;
    dv.setBigUint64(slot, id, true);
    dv.setUint8(slot + 8, op);
    dv.setInt16(slot + 10, st, true);
    setU32(BACK + 12, u32At(BACK + 12) + 1);
    e.pushResponsesAndCheckNotify(BACK);
  };
  return { e, dv, u8, sring, grantTable, u32At, setU32, ring, desc, status, respond };
}

for (const kind of ['js', 'wasm'] as const) {
  describe(`${kind} engine`, () => {
    describe('notify decisions (RING_PUSH_*_AND_CHECK_NOTIFY)', () => {
      // (old, new, event) → notify iff event lies in (old, new], modulo 2^32.
      const cases: [number, number, number, number][] = [
        [0, 1, 1, 1],
        [0, 5, 3, 1],
        [0, 5, 5, 1],
        [0, 5, 6, 0],
        [3, 5, 3, 0],
        [3, 5, 0, 0],
        [5, 5, 5, 0], // nothing new
        [0xfffffffe, 2, 0xffffffff, 1], // across the wrap
        [0xfffffffe, 2, 1, 1],
        [0xfffffffe, 2, 3, 0],
        [0xfffffffe, 2, 0xfffffffe, 0],
      ];
      for (const [old, nu, event, want] of cases) {
        test(`requests: old ${old} new ${nu} req_event ${event} → ${want}`, () => {
          const { e, sring, setU32, u32At, ring } = setup(kind);
          ring();
          setU32(sring + 0, old);
          setU32(sring + 4, event);
          setU32(STATE + 12, nu);
          expect(e.pushRequestsAndCheckNotify(STATE)).toBe(want);
          expect(u32At(sring + 0)).toBe(nu >>> 0); // req_prod published
        });
        test(`responses: old ${old} new ${nu} rsp_event ${event} → ${want}`, () => {
          const { e, sring, setU32, u32At, ring } = setup(kind);
          ring();
          setU32(sring + 8, old);
          setU32(sring + 12, event);
          setU32(BACK + 12, nu);
          expect(e.pushResponsesAndCheckNotify(BACK)).toBe(want);
          expect(u32At(sring + 8)).toBe(nu >>> 0);
        });
      }
    });

    describe('final checks', () => {
      test('finalCheckForResponses with nothing waiting re-arms rsp_event = rsp_cons + 1 (wrapping) and says 0', () => {
        const { e, sring, u32At, ring } = setup(kind);
        ring(0xffffffff);
        expect(e.finalCheckForResponses(STATE)).toBe(0);
        expect(u32At(sring + 12)).toBe(0);
      });
      test('finalCheckForResponses with a response waiting says 1 and leaves rsp_event alone', () => {
        const { e, sring, setU32, u32At, ring } = setup(kind);
        ring(10);
        setU32(sring + 12, 99);
        setU32(sring + 8, 11);
        expect(e.finalCheckForResponses(STATE)).toBe(1);
        expect(u32At(sring + 12)).toBe(99);
      });
      test('finalCheckForRequests re-arms req_event = req_cons + 1, or says 1 when requests wait', () => {
        const { e, sring, setU32, u32At, ring } = setup(kind);
        ring(0xfffffff0);
        expect(e.finalCheckForRequests(BACK)).toBe(0);
        expect(u32At(sring + 4)).toBe(0xfffffff1);
        setU32(sring + 0, 0xfffffff3);
        setU32(sring + 4, 5);
        expect(e.finalCheckForRequests(BACK)).toBe(1);
        expect(u32At(sring + 4)).toBe(5);
      });
      test('unconsumedRequests is min(req_prod − req_cons, room for responses)', () => {
        const { e, sring, setU32, ring } = setup(kind);
        ring(0xfffffffc);
        setU32(sring + 0, 0xfffffffc + 7);
        expect(e.unconsumedRequests(BACK)).toBe(7);
        // The back has consumed 30 it has not answered: only 2 more fit.
        setU32(BACK + 16, 0xfffffffc + 30);
        setU32(sring + 0, 0xfffffffc + 40);
        expect(e.unconsumedRequests(BACK)).toBe(2);
      });
      test('freeRequests counts across the wrap', () => {
        const { e, setU32, ring } = setup(kind);
        ring(0xfffffff0);
        setU32(STATE + 12, 0xfffffff0 + 20);
        expect(e.freeRequests(STATE)).toBe(12);
      });
    });

    describe('producer overflow (a peer claiming more than a ring)', () => {
      test('requestProdOverflow: prod − rsp_prod_pvt > nrEnts', () => {
        const { e, ring } = setup(kind);
        ring(0xfffffff0);
        expect(e.requestProdOverflow(BACK, 0xfffffff0 + 32)).toBe(0);
        expect(e.requestProdOverflow(BACK, (0xfffffff0 + 33) >>> 0)).toBe(1);
        expect(e.requestProdOverflow(BACK, 0xffffffef)).toBe(1); // behind: huge u32 distance
      });
      test('responseProdOverflow: prod − rsp_cons > nrEnts', () => {
        const { e, ring } = setup(kind);
        ring(0x7ffffff0);
        expect(e.responseProdOverflow(STATE, 0x7ffffff0 + 32)).toBe(0);
        expect(e.responseProdOverflow(STATE, 0x7ffffff0 + 33)).toBe(1);
      });
      test('blkifTakeRequests refuses a req_prod past the ring and consumes nothing', () => {
        const { e, sring, setU32, u32At, ring } = setup(kind);
        ring(5);
        setU32(sring + 0, 5 + 33);
        expect(e.blkifTakeRequests(BACK, DESCS, SEGS, 64, Abi.X86_64)).toBe(BlkifStatus.REQ_PROD_OVERFLOW);
        expect(u32At(BACK + 16)).toBe(5);
      });
      test('blkifReapResponses refuses an rsp_prod past the ring before reading any slot', () => {
        const { e, sring, setU32, u32At, ring } = setup(kind);
        ring(5);
        setU32(sring + 8, 5 + 33);
        expect(e.blkifReapResponses(STATE, SHADOW, COMPS, 64, Abi.X86_64)).toBe(BlkifStatus.RSP_PROD_OVERFLOW);
        expect(u32At(STATE + 16)).toBe(5);
      });
    });

    describe('request validation statuses (blkifEncodeRequest leaves the slot untouched)', () => {
      const cases: [string, Parameters<ReturnType<typeof setup>['desc']>[1], number][] = [
        ['unknown op 4', { op: 4 }, BlkifStatus.BAD_OPERATION],
        ['unknown op 7', { op: 7 }, BlkifStatus.BAD_OPERATION],
        ['read with 0 segments', { op: 0, nr: 0 }, BlkifStatus.BAD_NR_SEGMENTS],
        ['write with 12 segments', { op: 1, nr: 12 }, BlkifStatus.BAD_NR_SEGMENTS],
        ['flush with 12 segments', { op: 3, nr: 12 }, BlkifStatus.BAD_NR_SEGMENTS],
        ['first_sect > last_sect', { first: 4, last: 3 }, BlkifStatus.BAD_SECTOR_RANGE],
        ['last_sect 8', { first: 0, last: 8 }, BlkifStatus.BAD_SECTOR_RANGE],
        ['indirect_op write-barrier', { op: 6, flag: 2, nr: 1 }, BlkifStatus.BAD_INDIRECT_OP],
        ['indirect with 0 segments', { op: 6, flag: 0, nr: 0 }, BlkifStatus.BAD_INDIRECT_NR_SEGMENTS],
        ['indirect with 4097 segments', { op: 6, flag: 1, nr: 4097 }, BlkifStatus.BAD_INDIRECT_NR_SEGMENTS],
        ['discard flag 2', { op: 5, flag: 2 }, BlkifStatus.BAD_DISCARD_FLAG],
        ['flush with 0 segments is fine', { op: 3, nr: 0 }, BlkifStatus.OK],
        ['indirect with 4096 segments is fine', { op: 6, flag: 1, nr: 4096 }, BlkifStatus.OK],
        ['secure discard is fine', { op: 5, flag: 1 }, BlkifStatus.OK],
      ];
      for (const [name, f, want] of cases) {
        test(`${name} → ${want}`, () => {
          const { e, u8, desc, status } = setup(kind);
          desc(0, f);
          u8.fill(0xee, SLOT, SLOT + 112);
          expect(e.blkifEncodeRequest(DESCS, SLOT, Abi.X86_64)).toBe(want);
          expect(status(0)).toBe(want);
          if (want !== 0) expect(u8.subarray(SLOT, SLOT + 112).every((b) => b === 0xee)).toBe(true);
        });
      }
      test('an unknown ABI is BAD_ABI', () => {
        const { e, desc } = setup(kind);
        desc(0);
        expect(e.blkifEncodeRequest(DESCS, SLOT, 2 as Abi)).toBe(BlkifStatus.BAD_ABI);
      });
      test('ring setup: pages must be a power of two 1..16, and a slot must fit', () => {
        const { e, sring } = setup(kind);
        for (const pages of [0, 3, 32]) expect(e.frontRingInit(STATE, sring, pages, 112)).toBe(BlkifStatus.BAD_RING_PAGES);
        expect(e.frontRingInit(STATE, sring, 1, 4033)).toBe(BlkifStatus.BAD_SLOT_SIZE);
        expect(e.frontRingInit(STATE, sring, 1, 0)).toBe(BlkifStatus.BAD_SLOT_SIZE);
      });
    });

    describe('front batch writes', () => {
      test('ids must index the shadow and be free; rejected descriptors do not advance req_prod_pvt', () => {
        const { e, u32At, ring, desc, status } = setup(kind);
        ring(0xfffffffe);
        desc(0, { id: 3n });
        desc(1, { id: 32n }); // ≥ nrEnts
        desc(2, { id: 3n | (1n << 40n) }); // high word set
        desc(3, { id: 3n }); // in flight after descriptor 0
        desc(4, { id: 4n, op: 6, flag: 0, nr: 600 });
        expect(e.blkifWriteRequests(STATE, SHADOW, DESCS, 5, Abi.X86_64)).toBe(5);
        expect([0, 1, 2, 3, 4].map(status)).toEqual([0, BlkifStatus.BAD_ID, BlkifStatus.BAD_ID, BlkifStatus.ID_IN_FLIGHT, 0]);
        expect(u32At(STATE + 12)).toBe(0); // two accepted, 0xfffffffe + 2 wraps to 0
      });
      test('a full ring processes nothing more (backpressure, not an error)', () => {
        const { e, u32At, ring, desc } = setup(kind);
        ring();
        for (let i = 0; i < 34; i++) desc(i, { id: BigInt(i % 32) });
        expect(e.blkifWriteRequests(STATE, SHADOW, DESCS, 34, Abi.X86_64)).toBe(32);
        expect(e.freeRequests(STATE)).toBe(0);
        expect(e.blkifWriteRequests(STATE, SHADOW, DESCS + 32 * 32, 2, Abi.X86_64)).toBe(0);
        expect(u32At(STATE + 12)).toBe(32);
      });
    });

    describe('response validation (the back is not trusted)', () => {
      const reapOne = (mk: (t: ReturnType<typeof setup>) => void, want: number) => {
        const t = setup(kind);
        t.ring(0xfffffff8);
        t.desc(0, { id: 5n, op: 1 });
        expect(t.e.blkifWriteRequests(STATE, SHADOW, DESCS, 1, Abi.X86_64)).toBe(1);
        t.e.pushRequestsAndCheckNotify(STATE);
        mk(t);
        return t.e.blkifReapResponses(STATE, SHADOW, COMPS, 8, Abi.X86_64);
      };
      test('a good response is reaped and frees its id', () => {
        let t!: ReturnType<typeof setup>;
        expect(reapOne((x) => { t = x; x.respond(5n, 1, -1); }, 1)).toBe(1);
        expect(t.u8[SHADOW + 5]).toBe(0);
        expect(t.dv.getInt16(COMPS + 10, true)).toBe(-1);
      });
      test('id ≥ nrEnts → RSP_BAD_ID', () => expect(reapOne((t) => t.respond(32n, 1, 0), 0)).toBe(BlkifStatus.RSP_BAD_ID));
      test('id with its high word set → RSP_BAD_ID', () => expect(reapOne((t) => t.respond(5n | (1n << 32n), 1, 0), 0)).toBe(BlkifStatus.RSP_BAD_ID));
      test('id not in flight → RSP_NOT_IN_FLIGHT', () => expect(reapOne((t) => t.respond(6n, 1, 0), 0)).toBe(BlkifStatus.RSP_NOT_IN_FLIGHT));
      test('operation not the one requested → RSP_BAD_OPERATION', () => expect(reapOne((t) => t.respond(5n, 0, 0), 0)).toBe(BlkifStatus.RSP_BAD_OPERATION));
      test('status outside {0, −1, −2} → RSP_BAD_STATUS', () => expect(reapOne((t) => t.respond(5n, 1, -3), 0)).toBe(BlkifStatus.RSP_BAD_STATUS));
      test('a duplicate response after a good one: the first stays reaped, the second is RSP_NOT_IN_FLIGHT', () => {
        let t!: ReturnType<typeof setup>;
        const r = reapOne((x) => {
          t = x;
          x.respond(5n, 1, 0);
          x.respond(5n, 1, 0);
        }, 0);
        expect(r).toBe(BlkifStatus.RSP_NOT_IN_FLIGHT);
        expect(t.u32At(STATE + 16)).toBe(0xfffffff9); // rsp_cons past the good one only
      });
    });

    describe('grants and the gref free list', () => {
      test('end access refuses while the peer reads or writes, then clears the flags', () => {
        const { e, dv, grantTable } = setup(kind);
        e.grantEntryWrite(grantTable, 3, 7, 0x1234, 1);
        expect([dv.getUint16(grantTable + 24, true), dv.getUint16(grantTable + 26, true), dv.getUint32(grantTable + 28, true)]).toEqual([1, 7, 0x1234]);
        dv.setUint16(grantTable + 24, 1 | 8, true); // peer: GTF_reading
        expect(e.grantEntryEndAccess(grantTable, 3)).toBe(BlkifStatus.GRANT_BUSY);
        dv.setUint16(grantTable + 24, 1 | 16, true); // peer: GTF_writing
        expect(e.grantEntryEndAccess(grantTable, 3)).toBe(BlkifStatus.GRANT_BUSY);
        dv.setUint16(grantTable + 24, 1 | 4, true); // read-only, unmapped
        expect(e.grantEntryEndAccess(grantTable, 3)).toBe(0);
        expect(dv.getUint16(grantTable + 24, true)).toBe(0);
      });
      test('alloc hands out every gref once, then 0; double free and foreign grefs are refused', () => {
        const { e, dv } = setup(kind);
        e.grefFreeListInit(LIST, 100, 4);
        expect(e.grefAlloc(LIST, 6, OUT)).toBe(4);
        expect([0, 1, 2, 3].map((i) => dv.getUint32(OUT + 4 * i, true))).toEqual([100, 101, 102, 103]);
        expect(e.grefAlloc(LIST, 1, OUT + 64)).toBe(0);
        dv.setUint32(OUT + 64, 102, true);
        expect(e.grefFree(LIST, OUT + 64, 1)).toBe(0);
        expect(e.grefFree(LIST, OUT + 64, 1)).toBe(BlkifStatus.GREF_ALREADY_FREE);
        dv.setUint32(OUT + 64, 104, true);
        expect(e.grefFree(LIST, OUT + 64, 1)).toBe(BlkifStatus.GREF_NOT_OURS);
        dv.setUint32(OUT + 64, 99, true);
        expect(e.grefFree(LIST, OUT + 64, 1)).toBe(BlkifStatus.GREF_NOT_OURS);
        expect(e.grefAlloc(LIST, 3, OUT)).toBe(1);
        expect(dv.getUint32(OUT, true)).toBe(102);
      });
      test('packSegments covers the sectors page by page and rejects a count that does not fit', () => {
        const { e, dv } = setup(kind);
        for (let i = 0; i < 3; i++) dv.setUint32(OUT + 4 * i, 50 + i, true);
        expect(e.packSegments(OUT, 3, 19, SEGS)).toBe(3);
        const seg = (i: number) => [dv.getUint32(SEGS + 8 * i, true), dv.getUint8(SEGS + 8 * i + 4), dv.getUint8(SEGS + 8 * i + 5), dv.getUint16(SEGS + 8 * i + 6, true)];
        expect([0, 1, 2].map(seg)).toEqual([[50, 0, 7, 0], [51, 0, 7, 0], [52, 0, 2, 0]]);
        expect(e.packSegments(OUT, 3, 25, SEGS)).toBe(BlkifStatus.BAD_SECTOR_RANGE);
        expect(e.packSegments(OUT, 3, 16, SEGS)).toBe(BlkifStatus.BAD_SECTOR_RANGE);
      });
    });
  });
}

test('the twin is the JS engine and allocates its views once', () => {
  const { memory } = createSharedLayout({ scratchBytes: 1 << 16, poolPages: 4 });
  const e: RingEngine = createEngine('js', memory);
  expect(e.kind).toBe('js');
  expect(e.memory).toBe(memory);
});
