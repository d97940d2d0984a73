/**
 * Differential test: the Wasm engine and its TypeScript twin run the same
 * random sequences of ring, blkif, grant and packing operations, each over
 * its own copy of the same memory, and must return identical results after
 * every operation and leave identical bytes (the whole scratch tables area
 * and every pool page in use). Runs start at index 0, near 2^31 and just
 * below 2^32 (so every run crosses the wrap), on 1..16-page rings, for both
 * ABIs. A hostile peer is part of the model: it may poke producer indices.
 *
 * Then the two engines share ONE ring in one memory: a JS front with a Wasm
 * back and the reverse, carrying thousands of requests through many wraps,
 * with ids and data checked end to end against an independent expectation.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { Abi, createEngine, type RingEngine } from '../src/ring/index.js';
import { createSharedLayout, type SharedLayout } from '../src/memory/layout.js';

// ---------------------------------------------------------------- layout

const S = 65536; // scratch base
const FRONT = S + 0x0000; // front ring state (32)
const BACK = S + 0x0020; // back ring state (32)
const SHADOW = S + 0x0100; // up to 4096 ids
const DESCS = S + 0x2000; // 64 request descriptors
const DESC_SEGS = S + 0x3000; // 64 · 88 bytes: segments / indirect grefs per descriptor
const TAKE = S + 0x5000; // 64 take descriptors
const TAKE_SEGS = S + 0x6000; // 64 · 88
const COMPS = S + 0x8000; // 64 completions
const RSPS = S + 0x9000; // 64 response entries
const GREF_LIST = S + 0xa000; // free list: 16 + 4·capacity
const GREF_OUT = S + 0xb000; // grefs out / in (u32)
const CODEC_SLOT = S + 0xb800; // a slot for single-message codecs
const CODEC_DESC = S + 0xb900;
const CODEC_SEGS = S + 0xb940;
const PACK_OUT = S + 0xc000; // packSegments output
const PAGE_LIST = S + 0xc800; // u32 indirect page addresses
const SCRATCH_END = S + 0xd000;
const POOL_PAGES_USED = 33; // ring (≤16), indirect pages (16..23), grant table (24), segments (25..32: up to 4096)

const RING_PAGE0 = 0;
const INDIRECT_PAGE0 = 16;
const GRANT_PAGE = 24;
const SEG_SRC_PAGE = 25;

const slotBytes = (abi: Abi): number => (abi === Abi.X86_32 ? 108 : 112);

interface Side {
  engine: RingEngine;
  layout: SharedLayout;
  dv: DataView;
  u8: Uint8Array;
}

function makeSide(kind: 'wasm' | 'js', layout = createSharedLayout({ scratchBytes: 1 << 20, poolPages: 64 })): Side {
  const buf = layout.memory.buffer;
  return { engine: createEngine(kind, layout.memory), layout, dv: new DataView(buf), u8: new Uint8Array(buf) };
}

const pool = (side: Side, page: number): number => side.layout.poolBase + page * 4096;

/** Apply the same raw memory writes to both sides. */
type Poke = (s: Side) => void;

// ---------------------------------------------------------------- model of one run

interface Setup {
  abi: Abi;
  order: number; // ring-page-order 0..4
  start: number; // initial ring index (u32)
  fill: number; // seed for the initial pool bytes
}

interface DescSpec {
  op: number;
  flag: number;
  handle: number;
  nr: number;
  idMode: 'free' | 'raw';
  idLo: number;
  idHi: number;
  secLo: number;
  secHi: number;
  argLo: number; // discard nr_sectors lo (direct/indirect use the segment area)
  argHi: number;
  segs: [number, number, number, number][]; // gref, first, last, pad (11)
  grefs: number[]; // 8 indirect grefs
}

interface RspSpec {
  mode: 'pending' | 'raw';
  idLo: number;
  idHi: number;
  op: number;
  status: number;
  pad: number;
}

type Op =
  | { t: 'write'; descs: DescSpec[] }
  | { t: 'cycle'; descs: DescSpec[]; rsps: RspSpec[]; takeMax: number; reapMax: number }
  | { t: 'pushReq' }
  | { t: 'take'; max: number }
  | { t: 'respond'; rsps: RspSpec[] }
  | { t: 'pushRsp' }
  | { t: 'reap'; max: number }
  | { t: 'finalRsp' }
  | { t: 'finalReq' }
  | { t: 'query'; i: number; prod: number }
  | { t: 'poke'; which: 'req_prod' | 'rsp_prod' | 'req_event' | 'rsp_event'; delta: number }
  | { t: 'grantWrite'; gref: number; domid: number; frame: number; flags: number }
  | { t: 'grantPeer'; gref: number; flags: number }
  | { t: 'grantEnd'; gref: number }
  | { t: 'grefAlloc'; n: number }
  | { t: 'grefFree'; picks: number[]; raw: number }
  | { t: 'packSegments'; nPages: number; nSectors: number }
  | { t: 'packIndirect'; nSegs: number }
  | { t: 'copyIndirect'; count: number }
  | { t: 'codecReq'; desc: DescSpec; abi: number }
  | { t: 'decodeRaw'; bytes: number[]; abi: number }
  | { t: 'codecRsp'; rsp: RspSpec; abi: number; decode: boolean };

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u8 = fc.integer({ min: 0, max: 0xff });

const segArb = fc.tuple(
  u32,
  fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: u8 }),
  fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 4, max: 7 }) }, { weight: 1, arbitrary: u8 }),
  u16,
);

const descArb: fc.Arbitrary<DescSpec> = fc.record({
  op: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(0, 1) },
    { weight: 2, arbitrary: fc.constantFrom(2, 3, 5, 6) },
    { weight: 1, arbitrary: fc.constantFrom(4, 7, 255) },
  ),
  flag: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: u8 }),
  handle: u16,
  nr: fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 1, max: 11 }) },
    { weight: 1, arbitrary: fc.constantFrom(0, 12, 255) },
    { weight: 2, arbitrary: fc.constantFrom(1, 511, 512, 513, 1000, 4095, 4096, 4097, 65535) },
  ),
  idMode: fc.oneof({ weight: 8, arbitrary: fc.constant('free' as const) }, { weight: 1, arbitrary: fc.constant('raw' as const) }),
  idLo: fc.oneof(fc.integer({ min: 0, max: 600 }), u32),
  idHi: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: u32 }),
  secLo: u32,
  secHi: u32,
  argLo: u32,
  argHi: u32,
  segs: fc.array(segArb, { minLength: 11, maxLength: 11 }),
  grefs: fc.array(u32, { minLength: 8, maxLength: 8 }),
});

const rspArb: fc.Arbitrary<RspSpec> = fc.record({
  mode: fc.oneof({ weight: 8, arbitrary: fc.constant('pending' as const) }, { weight: 1, arbitrary: fc.constant('raw' as const) }),
  idLo: fc.oneof(fc.integer({ min: 0, max: 600 }), u32),
  idHi: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: u32 }),
  op: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(0, 1, 2, 3, 5) }, { weight: 1, arbitrary: u8 }),
  status: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0, -1, -2) }, { weight: 1, arbitrary: fc.integer({ min: -32768, max: 32767 }) }),
  pad: u32,
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('write' as const), descs: fc.array(descArb, { minLength: 1, maxLength: 40 }) }) },
  {
    // A whole round trip in one op, so long protocol paths are common:
    // write → push → take → respond → push → reap.
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('cycle' as const),
      descs: fc.array(descArb, { minLength: 1, maxLength: 40 }),
      rsps: fc.array(rspArb, { minLength: 1, maxLength: 40 }),
      takeMax: fc.integer({ min: 0, max: 64 }),
      reapMax: fc.integer({ min: 0, max: 64 }),
    }),
  },
  { weight: 5, arbitrary: fc.constant({ t: 'pushReq' as const }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('take' as const), max: fc.integer({ min: 0, max: 64 }) }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('respond' as const), rsps: fc.array(rspArb, { minLength: 1, maxLength: 40 }) }) },
  { weight: 5, arbitrary: fc.constant({ t: 'pushRsp' as const }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('reap' as const), max: fc.integer({ min: 0, max: 64 }) }) },
  { weight: 2, arbitrary: fc.constant({ t: 'finalRsp' as const }) },
  { weight: 2, arbitrary: fc.constant({ t: 'finalReq' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('query' as const), i: fc.integer({ min: 0, max: 600 }), prod: u32 }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('poke' as const),
      which: fc.constantFrom('req_prod' as const, 'rsp_prod' as const, 'req_event' as const, 'rsp_event' as const),
      delta: fc.oneof(fc.integer({ min: -40, max: 40 }), fc.integer({ min: -600, max: 600 }), u32),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('grantWrite' as const), gref: fc.integer({ min: 0, max: 511 }), domid: u16, frame: u32, flags: u16 }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('grantPeer' as const), gref: fc.integer({ min: 0, max: 511 }), flags: u16 }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('grantEnd' as const), gref: fc.integer({ min: 0, max: 511 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('grefAlloc' as const), n: fc.integer({ min: 0, max: 70 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('grefFree' as const),
      picks: fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 40 }),
      raw: fc.oneof({ weight: 4, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: u32 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('packSegments' as const), nPages: fc.integer({ min: 0, max: 11 }), nSectors: fc.integer({ min: 0, max: 90 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('packIndirect' as const),
      nSegs: fc.oneof(fc.integer({ min: 0, max: 600 }), fc.constantFrom(511, 512, 513, 1024, 4095, 4096, 4097)),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('copyIndirect' as const), count: fc.oneof(fc.integer({ min: 0, max: 600 }), fc.constantFrom(512, 4096, 4097)) }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('codecReq' as const), desc: descArb, abi: fc.constantFrom(0, 1, 1, 0, 2) }) },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('decodeRaw' as const), bytes: fc.array(u8, { minLength: 112, maxLength: 112 }), abi: fc.constantFrom(0, 1, 2) }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('codecRsp' as const), rsp: rspArb, abi: fc.constantFrom(0, 1, 2), decode: fc.boolean() }) },
);

const setupArb: fc.Arbitrary<Setup> = fc.record({
  abi: fc.constantFrom(Abi.X86_64, Abi.X86_32),
  order: fc.integer({ min: 0, max: 4 }),
  start: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 0xffffffc0, max: 0xffffffff }),
    fc.integer({ min: 0x7fffffe0, max: 0x80000010 }),
    u32,
  ),
  fill: fc.integer({ min: 1, max: 0x7fffffff }),
});

// ---------------------------------------------------------------- runner

class Pair {
  readonly js = makeSide('js');
  readonly wasm = makeSide('wasm');
  readonly sides = [this.js, this.wasm] as const;
  readonly pending: { idLo: number; idHi: number; op: number }[] = [];
  readonly allocated: number[] = [];
  nrEnts = 0;
  log: string[] = [];

  constructor(readonly setup: Setup) {}

  /** Run `f` on both engines; results must agree. */
  both(what: string, f: (e: RingEngine, s: Side) => number | void): number {
    const a = f(this.js.engine, this.js);
    const b = f(this.wasm.engine, this.wasm);
    this.log.push(`${what} -> ${a}`);
    expect(b, `${what}: wasm vs js (log: ${this.log.slice(-8).join('; ')})`).toBe(a);
    return a as number;
  }

  poke(f: Poke): void {
    for (const s of this.sides) f(s);
  }

  /** Compare the tables area and every pool page in use. */
  compareBytes(what: string): void {
    const regions: [number, number][] = [
      [S, SCRATCH_END],
      [this.js.layout.poolBase, this.js.layout.poolBase + POOL_PAGES_USED * 4096],
    ];
    for (const [from, to] of regions) {
      const a = Buffer.from(this.js.u8.buffer, from, to - from);
      const b = Buffer.from(this.wasm.u8.buffer, from, to - from);
      if (a.equals(b)) continue;
      let i = 0;
      while (a[i] === b[i]) i++;
      throw new Error(
        `${what}: memory differs at byte ${from + i} (js ${a[i]}, wasm ${b[i]}); last ops: ${this.log.slice(-8).join('; ')}`,
      );
    }
  }

  init(): void {
    const { abi, order, start, fill } = this.setup;
    const pages = 1 << order;
    // Identical, non-zero initial bytes everywhere we look: padding the
    // engines must zero shows up.
    let x = fill;
    const noise = new Uint8Array(SCRATCH_END - S + POOL_PAGES_USED * 4096);
    for (let i = 0; i < noise.length; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      noise[i] = x >>> 24;
    }
    this.poke((s) => {
      s.u8.set(noise.subarray(0, SCRATCH_END - S), S);
      s.u8.set(noise.subarray(SCRATCH_END - S), pool(s, 0));
      s.u8.fill(0, SHADOW, SHADOW + 4096);
    });
    const sring = pool(this.js, RING_PAGE0);
    this.nrEnts = this.both('frontRingInit', (e) => e.frontRingInit(FRONT, sring, pages, slotBytes(abi)));
    expect(this.nrEnts).toBeGreaterThan(0);
    // Move every index to `start` (the front's private and shared ones),
    // as if the ring had already carried `start` requests.
    this.poke((s) => {
      const dv = s.dv;
      dv.setUint32(sring + 0, start, true); // req_prod
      dv.setUint32(sring + 4, (start + 1) >>> 0, true); // req_event
      dv.setUint32(sring + 8, start, true); // rsp_prod
      dv.setUint32(sring + 12, (start + 1) >>> 0, true); // rsp_event
      dv.setUint32(FRONT + 12, start, true);
      dv.setUint32(FRONT + 16, start, true);
    });
    this.both('backRingAttach', (e) => e.backRingAttach(BACK, sring, pages, slotBytes(abi)));
    this.both('grefFreeListInit', (e) => e.grefFreeListInit(GREF_LIST, 8, 256));
    this.compareBytes('init');
  }

  /** First id at or after `hint` (mod nrEnts) free in the shadow and not in `taken`, or nrEnts if none. */
  freeId(hint: number, taken: Set<number>): number {
    const n = this.nrEnts;
    for (let k = 0; k < n; k++) {
      const id = (hint + k) % n;
      if (this.js.u8[SHADOW + id] === 0 && !taken.has(id)) return id;
    }
    return n;
  }

  writeDesc(at: number, segArea: number, d: DescSpec, idLo: number, idHi: number): void {
    this.poke((s) => {
      const dv = s.dv;
      dv.setUint8(at, d.op);
      dv.setUint8(at + 1, d.flag);
      dv.setUint16(at + 2, d.handle, true);
      dv.setUint16(at + 4, d.op <= 3 ? Math.min(d.nr, 255) : d.nr, true);
      dv.setUint16(at + 6, 0x5a5a, true); // status: engine overwrites
      dv.setUint32(at + 8, idLo, true);
      dv.setUint32(at + 12, idHi, true);
      dv.setUint32(at + 16, d.secLo, true);
      dv.setUint32(at + 20, d.secHi, true);
      if (d.op === 5) {
        dv.setUint32(at + 24, d.argLo, true);
        dv.setUint32(at + 28, d.argHi, true);
      } else {
        dv.setUint32(at + 24, segArea, true);
        dv.setUint32(at + 28, d.argHi, true);
      }
      if (d.op === 6) {
        d.grefs.forEach((g, i) => dv.setUint32(segArea + 4 * i, g, true));
      } else {
        d.segs.forEach(([gref, first, last, pad], i) => {
          dv.setUint32(segArea + 8 * i, gref, true);
          dv.setUint8(segArea + 8 * i + 4, first);
          dv.setUint8(segArea + 8 * i + 5, last);
          dv.setUint16(segArea + 8 * i + 6, pad, true);
        });
      }
    });
  }

  writeRsp(at: number, r: RspSpec): void {
    let { idLo, idHi, op } = r;
    if (r.mode === 'pending' && this.pending.length > 0) ({ idLo, idHi, op } = this.pending.shift()!);
    this.poke((s) => {
      s.dv.setUint32(at, idLo, true);
      s.dv.setUint32(at + 4, idHi, true);
      s.dv.setUint8(at + 8, op);
      s.dv.setUint8(at + 9, r.pad & 0xff);
      s.dv.setInt16(at + 10, r.status, true);
      s.dv.setUint32(at + 12, r.pad, true);
    });
  }

  apply(op: Op): void {
    const { abi } = this.setup;
    const sring = pool(this.js, RING_PAGE0);
    switch (op.t) {
      case 'write': {
        const ids = new Set<number>();
        op.descs.forEach((d, i) => {
          let idLo = d.idLo;
          let idHi = d.idHi;
          if (d.idMode === 'free') {
            // Distinct free ids within one batch (the shadow only changes when the engine runs).
            idLo = this.freeId(d.idLo, ids);
            ids.add(idLo);
            idHi = 0;
          }
          this.writeDesc(DESCS + 32 * i, DESC_SEGS + 88 * i, d, idLo, idHi);
        });
        this.both('blkifWriteRequests', (e) => e.blkifWriteRequests(FRONT, SHADOW, DESCS, op.descs.length, abi));
        break;
      }
      case 'cycle':
        this.apply({ t: 'write', descs: op.descs });
        this.apply({ t: 'pushReq' });
        this.apply({ t: 'take', max: op.takeMax });
        this.apply({ t: 'respond', rsps: op.rsps });
        this.apply({ t: 'pushRsp' });
        this.apply({ t: 'reap', max: op.reapMax });
        break;
      case 'pushReq':
        this.both('pushRequestsAndCheckNotify', (e) => e.pushRequestsAndCheckNotify(FRONT));
        break;
      case 'take': {
        const n = this.both('blkifTakeRequests', (e) => e.blkifTakeRequests(BACK, TAKE, TAKE_SEGS, op.max, abi));
        for (let i = 0; i < n; i++) {
          const at = TAKE + 32 * i;
          const dv = this.js.dv;
          const o = dv.getUint8(at);
          this.pending.push({ idLo: dv.getUint32(at + 8, true), idHi: dv.getUint32(at + 12, true), op: o === 6 ? dv.getUint8(at + 1) : o });
        }
        break;
      }
      case 'respond':
        op.rsps.forEach((r, i) => this.writeRsp(RSPS + 16 * i, r));
        this.both('blkifWriteResponses', (e) => e.blkifWriteResponses(BACK, RSPS, op.rsps.length, abi));
        break;
      case 'pushRsp':
        this.both('pushResponsesAndCheckNotify', (e) => e.pushResponsesAndCheckNotify(BACK));
        break;
      case 'reap':
        this.both('blkifReapResponses', (e) => e.blkifReapResponses(FRONT, SHADOW, COMPS, op.max, abi));
        break;
      case 'finalRsp':
        this.both('finalCheckForResponses', (e) => e.finalCheckForResponses(FRONT));
        break;
      case 'finalReq':
        this.both('finalCheckForRequests', (e) => e.finalCheckForRequests(BACK));
        break;
      case 'query':
        this.both('freeRequests', (e) => e.freeRequests(FRONT) >>> 0);
        this.both('unconsumedRequests', (e) => e.unconsumedRequests(BACK) >>> 0);
        this.both('requestSlot', (e) => e.requestSlot(FRONT, op.i) >>> 0);
        this.both('requestProdOverflow', (e) => e.requestProdOverflow(BACK, op.prod));
        this.both('responseProdOverflow', (e) => e.responseProdOverflow(FRONT, op.prod));
        this.both('ringSize', (e) => e.ringSize(op.i % 20, (op.prod % 5000) >>> 0));
        break;
      case 'poke': {
        const off = { req_prod: 0, req_event: 4, rsp_prod: 8, rsp_event: 12 }[op.which];
        this.poke((s) => s.dv.setUint32(sring + off, (s.dv.getUint32(sring + off, true) + op.delta) >>> 0, true));
        break;
      }
      case 'grantWrite':
        this.both('grantEntryWrite', (e, s) => e.grantEntryWrite(pool(s, GRANT_PAGE), op.gref, op.domid, op.frame, op.flags));
        break;
      case 'grantPeer':
        this.poke((s) => s.dv.setUint16(pool(s, GRANT_PAGE) + 8 * op.gref, op.flags, true));
        break;
      case 'grantEnd':
        this.both('grantEntryEndAccess', (e, s) => e.grantEntryEndAccess(pool(s, GRANT_PAGE), op.gref));
        break;
      case 'grefAlloc': {
        const n = this.both('grefAlloc', (e) => e.grefAlloc(GREF_LIST, op.n, GREF_OUT));
        for (let i = 0; i < n; i++) this.allocated.push(this.js.dv.getUint32(GREF_OUT + 4 * i, true));
        break;
      }
      case 'grefFree': {
        const grefs: number[] = [];
        for (const p of op.picks) {
          // Mostly grefs we hold (each once); sometimes a repeat (double free).
          if (this.allocated.length > 0 && p % 7 !== 0) grefs.push(this.allocated.splice(p % this.allocated.length, 1)[0]!);
          else if (grefs.length > 0) grefs.push(grefs[p % grefs.length]!);
        }
        if (op.raw >= 0) grefs.push(op.raw);
        this.poke((s) => grefs.forEach((g, i) => s.dv.setUint32(GREF_OUT + 4 * i, g, true)));
        const st = this.both('grefFree', (e) => e.grefFree(GREF_LIST, GREF_OUT, grefs.length));
        // Keep the model honest after a partial free: re-read which are still in use.
        if (st !== 0) this.allocated.length = 0;
        break;
      }
      case 'packSegments':
        this.poke((s) => {
          for (let i = 0; i < 11; i++) s.dv.setUint32(GREF_OUT + 4 * i, 0x1000 + i, true);
        });
        this.both('packSegments', (e) => e.packSegments(GREF_OUT, op.nPages, op.nSectors, PACK_OUT));
        break;
      case 'packIndirect':
        this.poke((s) => {
          for (let i = 0; i < 8; i++) s.dv.setUint32(PAGE_LIST + 4 * i, pool(s, INDIRECT_PAGE0 + i), true);
        });
        this.both('packIndirectPages', (e, s) => e.packIndirectPages(pool(s, SEG_SRC_PAGE), op.nSegs, PAGE_LIST));
        break;
      case 'copyIndirect':
        this.poke((s) => {
          for (let i = 0; i < 8; i++) s.dv.setUint32(PAGE_LIST + 4 * i, pool(s, INDIRECT_PAGE0 + i), true);
        });
        this.both('blkifCopyIndirectSegments', (e, s) => e.blkifCopyIndirectSegments(PAGE_LIST, op.count, pool(s, SEG_SRC_PAGE)));
        break;
      case 'codecReq':
        this.writeDesc(CODEC_DESC, CODEC_SEGS, op.desc, op.desc.idLo, op.desc.idHi);
        this.both('blkifEncodeRequest', (e) => e.blkifEncodeRequest(CODEC_DESC, CODEC_SLOT, op.abi as Abi));
        break;
      case 'decodeRaw':
        this.poke((s) => s.u8.set(op.bytes, CODEC_SLOT));
        this.both('blkifDecodeRequest', (e) => e.blkifDecodeRequest(CODEC_SLOT, CODEC_DESC, CODEC_SEGS, op.abi as Abi));
        break;
      case 'codecRsp':
        this.writeRsp(CODEC_DESC, { ...op.rsp, mode: 'raw' });
        if (op.decode) this.both('blkifDecodeResponse', (e) => e.blkifDecodeResponse(CODEC_DESC, CODEC_SLOT, op.abi as Abi));
        else this.both('blkifEncodeResponse', (e) => e.blkifEncodeResponse(CODEC_DESC, CODEC_SLOT, op.abi as Abi));
        break;
    }
    this.compareBytes(op.t);
  }
}

describe('Wasm engine and JS twin are byte-for-byte equivalent', () => {
  test('random operation sequences give identical results and identical memory', () => {
    fc.assert(
      fc.property(setupArb, fc.array(opArb, { minLength: 1, maxLength: 60 }), (setup, ops) => {
        const pair = new Pair(setup);
        pair.init();
        for (const op of ops) pair.apply(op);
      }),
      { numRuns: 150 },
    );
  });

  test('a well-behaved workload crosses the 2^32 index wrap on every ring size and ABI', () => {
    // Deterministic companion to the property: full batches through
    // write → push → take → respond → push → reap, starting 8 below 2^32.
    for (const abi of [Abi.X86_64, Abi.X86_32]) {
      for (let order = 0; order <= 4; order++) {
        const pair = new Pair({ abi, order, start: 0xfffffff8, fill: 7 + order });
        pair.init();
        const desc = (i: number): DescSpec => ({
          op: i % 2, flag: 0, handle: 0x301, nr: 1 + (i % 11), idMode: 'free', idLo: i, idHi: 0,
          secLo: i * 8, secHi: 1, argLo: 0, argHi: 0,
          segs: Array.from({ length: 11 }, (_, k) => [i * 16 + k, 0, 7, 0xffff] as [number, number, number, number]),
          grefs: [0, 0, 0, 0, 0, 0, 0, 0],
        });
        const rsp: RspSpec = { mode: 'pending', idLo: 0, idHi: 0, op: 0, status: 0, pad: 0xffffffff };
        for (let round = 0; round < 6; round++) {
          const batch = Math.min(pair.nrEnts, 40);
          pair.apply({ t: 'write', descs: Array.from({ length: batch }, (_, i) => desc(round * 100 + i)) });
          pair.apply({ t: 'pushReq' });
          pair.apply({ t: 'take', max: 64 });
          pair.apply({ t: 'respond', rsps: Array.from({ length: batch }, () => rsp) });
          pair.apply({ t: 'pushRsp' });
          pair.apply({ t: 'reap', max: 64 });
          pair.apply({ t: 'finalRsp' });
          pair.apply({ t: 'finalReq' });
        }
        // rsp_cons moved past 2^32 on both sides (memory is compared after every op).
        expect(pair.js.dv.getUint32(FRONT + 16, true)).toBeGreaterThan(0);
        expect(pair.js.dv.getUint32(FRONT + 16, true)).toBeLessThan(0xfffffff8);
      }
    }
  });
});

// ---------------------------------------------------------------- one ring, two engines

/**
 * One memory, one ring: `frontKind` produces, `backKind` consumes. Request k
 * carries id = a free shadow slot, sector = k + 2^32·7, nr_segments =
 * 1 + k mod 11, segment j gref = k·16 + j; the back checks each request it
 * takes against that formula, answers op and status (k mod 3 → 0/−1/−2), and
 * the front checks each completion. Indices start 100 below 2^32.
 */
function carry(frontKind: 'wasm' | 'js', backKind: 'wasm' | 'js', abi: Abi, total: number): void {
  const layout = createSharedLayout({ scratchBytes: 1 << 20, poolPages: 32 });
  const front = createEngine(frontKind, layout.memory);
  const back = createEngine(backKind, layout.memory);
  const dv = new DataView(layout.memory.buffer);
  const u8v = new Uint8Array(layout.memory.buffer);
  const sring = layout.poolBase;
  const nrEnts = front.frontRingInit(FRONT, sring, 1, slotBytes(abi));
  expect(nrEnts).toBe(32);
  const start = 0xffffff9c;
  for (const off of [0, 8]) dv.setUint32(sring + off, start, true);
  for (const off of [4, 12]) dv.setUint32(sring + off, start + 1, true);
  dv.setUint32(FRONT + 12, start, true);
  dv.setUint32(FRONT + 16, start, true);
  expect(back.backRingAttach(BACK, sring, 1, slotBytes(abi))).toBe(32);
  u8v.fill(0, SHADOW, SHADOW + 32);

  const idOf = new Map<number, number>(); // id → k in flight
  let produced = 0;
  let taken = 0;
  let completed = 0;
  let notifies = 0;
  const expectedStatus = (k: number): number => [0, -1, -2][k % 3]!;
  const expectedOp = (k: number): number => k % 2;

  for (let round = 0; completed < total; round++) {
    expect(round, 'no progress').toBeLessThan(total * 4);
    // Front: as many as fit, in a batch that varies 1..13.
    const want = Math.min(1 + (round % 13), front.freeRequests(FRONT), total - produced);
    let n = 0;
    for (let id = 0; id < nrEnts && n < want; id++) {
      if (u8v[SHADOW + id] !== 0 || idOf.has(id)) continue;
      const k = produced + n;
      const at = DESCS + 32 * n;
      const segs = DESC_SEGS + 88 * n;
      const nr = 1 + (k % 11);
      dv.setUint8(at, expectedOp(k));
      dv.setUint8(at + 1, 0);
      dv.setUint16(at + 2, 0x0301, true);
      dv.setUint16(at + 4, nr, true);
      dv.setBigUint64(at + 8, BigInt(id), true);
      dv.setBigUint64(at + 16, BigInt(k) + 7n * 2n ** 32n, true);
      dv.setBigUint64(at + 24, BigInt(segs), true);
      for (let j = 0; j < nr; j++) {
        dv.setUint32(segs + 8 * j, k * 16 + j, true);
        dv.setUint8(segs + 8 * j + 4, j % 8);
        dv.setUint8(segs + 8 * j + 5, 7);
      }
      idOf.set(id, k);
      n++;
    }
    if (n > 0) {
      expect(front.blkifWriteRequests(FRONT, SHADOW, DESCS, n, abi)).toBe(n);
      for (let i = 0; i < n; i++) expect(dv.getInt16(DESCS + 32 * i + 6, true)).toBe(0);
      produced += n;
      notifies += front.pushRequestsAndCheckNotify(FRONT);
    }
    // Back: take some (batch varies), check, answer in order.
    const got = back.blkifTakeRequests(BACK, TAKE, TAKE_SEGS, 1 + (round % 7), abi);
    expect(got).toBeGreaterThanOrEqual(0);
    for (let i = 0; i < got; i++) {
      const at = TAKE + 32 * i;
      const k = taken + i;
      const id = Number(dv.getBigUint64(at + 8, true));
      expect(idOf.get(id)).toBe(k);
      expect(dv.getInt16(at + 6, true)).toBe(0);
      expect(dv.getUint8(at)).toBe(expectedOp(k));
      expect(dv.getUint16(at + 2, true)).toBe(0x0301);
      expect(dv.getBigUint64(at + 16, true)).toBe(BigInt(k) + 7n * 2n ** 32n);
      const nr = dv.getUint16(at + 4, true);
      expect(nr).toBe(1 + (k % 11));
      const segs = dv.getUint32(at + 24, true);
      for (let j = 0; j < nr; j++) {
        expect(dv.getUint32(segs + 8 * j, true)).toBe(k * 16 + j);
        expect(dv.getUint8(segs + 8 * j + 4)).toBe(j % 8);
      }
      const r = RSPS + 16 * i;
      dv.setBigUint64(r, BigInt(id), true);
      dv.setUint8(r + 8, expectedOp(k));
      dv.setInt16(r + 10, expectedStatus(k), true);
    }
    if (got > 0) {
      taken += got;
      expect(back.blkifWriteResponses(BACK, RSPS, got, abi)).toBe(got);
      notifies += back.pushResponsesAndCheckNotify(BACK);
    }
    back.finalCheckForRequests(BACK);
    // Front: reap in batches that vary.
    const reaped = front.blkifReapResponses(FRONT, SHADOW, COMPS, 1 + (round % 5), abi);
    expect(reaped, 'reap status').toBeGreaterThanOrEqual(0);
    for (let i = 0; i < reaped; i++) {
      const c = COMPS + 16 * i;
      const id = Number(dv.getBigUint64(c, true));
      const k = idOf.get(id)!;
      expect(k).toBe(completed + i);
      expect(dv.getUint8(c + 8)).toBe(expectedOp(k));
      expect(dv.getInt16(c + 10, true)).toBe(expectedStatus(k));
      expect(u8v[SHADOW + id]).toBe(0);
      idOf.delete(id);
    }
    completed += reaped;
    front.finalCheckForResponses(FRONT);
  }
  expect(completed).toBe(total);
  expect(idOf.size).toBe(0);
  // Indices wrapped past 2^32 and agree on both sides.
  expect(dv.getUint32(FRONT + 16, true)).toBe((start + total) >>> 0);
  expect(dv.getUint32(BACK + 16, true)).toBe((start + total) >>> 0);
  expect(notifies).toBeGreaterThan(0);
}

describe('one ring shared by the two engines', () => {
  for (const abi of [Abi.X86_64, Abi.X86_32]) {
    const name = abi === Abi.X86_64 ? 'x86_64-abi' : 'x86_32-abi';
    test(`JS front, Wasm back carry 3000 requests through wraps (${name})`, () => carry('js', 'wasm', abi, 3000));
    test(`Wasm front, JS back carry 3000 requests through wraps (${name})`, () => carry('wasm', 'js', abi, 3000));
  }
});
