/**
 * `ring`: random sequences of ring operations on the Wasm engine, the JS
 * twin and the independent model (model/ring-model.ts). The two engines must
 * return the same value for every call and leave every byte of their
 * memories identical; the model must agree on every return value, status,
 * shared index and private index — until a hostile move leaves the model
 * unable to follow the bytes (then the engines are still compared).
 */
import type { RingEngine } from '../../../src/ring/engine.js';
import { createEnginePair, firstDifference, hexAround, type EnginePair } from '../harness/engines.js';
import { OP, RingModel, ringSize, ST, u32, type ModelRequest, type ModelResponse } from '../model/ring-model.js';
import { check, checkSame, FuzzViolation, type FuzzHarness, type FuzzTarget } from '../target.js';
import { formatRingCase, ringCase, type GenRequest, type RingCase, type RingOp } from './ring-ops.js';

// Scratch map (offsets from scratchBase), identical in both memories.
const FRONT = 0, BACK = 32, SHADOW = 64, DESCS = 512, SEGS = 1024, IGREFS = 3072;
const TDESCS = 4096, TSEGS = 8192, COMPS = 16384, RSPS = 20480, SCRATCH_USED = 24576;
const SLOT_BYTES = [112, 108];
const TAKE_SEG_AREA = 88;

class Side {
  readonly dv: DataView;
  constructor(readonly e: RingEngine, readonly scratch: number, readonly pool: number) {
    this.dv = new DataView(e.memory.buffer);
  }
  a(off: number): number { return this.scratch + off; }
  u32(addr: number): number { return this.dv.getUint32(addr, true); }
  setU32(addr: number, v: number): void { this.dv.setUint32(addr, v >>> 0, true); }
}

function writeDesc(s: Side, i: number, r: GenRequest, id: bigint): void {
  const d = s.a(DESCS + i * 32);
  const dv = s.dv;
  dv.setUint8(d, r.op);
  dv.setUint8(d + 1, r.flag);
  dv.setUint16(d + 2, r.handle, true);
  dv.setUint16(d + 4, r.nrSegments & 0xffff, true);
  dv.setInt16(d + 6, 0x7777, true); // the engine must overwrite status
  dv.setBigUint64(d + 8, id, true);
  dv.setBigUint64(d + 16, r.sector, true);
  if (r.op === OP.discard) {
    dv.setBigUint64(d + 24, r.nrSectors, true);
  } else if (r.op === OP.indirect) {
    const g = s.a(IGREFS + i * 32);
    r.igrefs.forEach((x, k) => dv.setUint32(g + 4 * k, x, true));
    dv.setBigUint64(d + 24, BigInt(g), true);
  } else {
    const g = s.a(SEGS + i * 16 * 8);
    for (let k = 0; k < 16; k++) {
      const sg = r.segs[k];
      dv.setUint32(g + 8 * k, sg ? sg.gref : 0, true);
      dv.setUint8(g + 8 * k + 4, sg ? sg.first : 0);
      dv.setUint8(g + 8 * k + 5, sg ? sg.last : 0);
      dv.setUint16(g + 8 * k + 6, 0, true);
    }
    dv.setBigUint64(d + 24, BigInt(g), true);
  }
}

/** Result counts across cases (for coverage reports). */
export const ringStats = new Map<string, number>();

const rspOpOf = (op: number, flag: number) => (op === OP.indirect ? flag : op);

class RingRun {
  readonly w: Side;
  readonly j: Side;
  readonly model: RingModel;
  exact = true;
  readonly nrEnts: number;
  readonly slotSize: number;
  readonly abi: 0 | 1;
  /** Requests the back took and has not answered: id and the op the response must carry. */
  pending: Array<{ id: bigint; op: number }> = [];
  answered: Array<{ id: bigint; op: number }> = [];
  step = -1;

  constructor(readonly pair: EnginePair, readonly c: RingCase) {
    this.w = new Side(pair.wasm, pair.wasmLayout.scratchBase, pair.wasmLayout.poolBase);
    this.j = new Side(pair.js, pair.jsLayout.scratchBase, pair.jsLayout.poolBase);
    for (const s of [this.w, this.j]) {
      new Uint8Array(s.e.memory.buffer, s.scratch, SCRATCH_USED).fill(0);
      new Uint8Array(s.e.memory.buffer, s.pool, 2 * 4096).fill(0xa5); // ring init must clear the header
    }
    this.abi = c.abi;
    this.slotSize = SLOT_BYTES[c.abi];
    this.nrEnts = ringSize(c.nrPages, this.slotSize);
    this.model = new RingModel(this.nrEnts, c.start);
  }

  fail(msg: string, detail?: unknown): never {
    throw new FuzzViolation(`op #${this.step}: ${msg}`, detail);
  }

  /** Call the same engine method on both; they must return the same number. */
  both(name: string, f: (e: RingEngine, s: Side) => number): number {
    const a = f(this.w.e, this.w);
    const b = f(this.j.e, this.j);
    if (a !== b) this.fail(`${name}: wasm returned ${a}, js returned ${b}`);
    const key = `${name} ${a < 0 ? a : a === 0 ? '0' : a === 1 ? '1' : '>1'}${this.exact ? '' : ' (engines only)'}`;
    ringStats.set(key, (ringStats.get(key) ?? 0) + 1);
    return a;
  }

  expect(name: string, got: number, want: number): void {
    if (this.exact && (got | 0) !== (want | 0)) this.fail(`${name}: engines returned ${got}, model expects ${want}`);
  }

  compareMemories(): void {
    const { wasm, js } = this.pair;
    for (const [from, len, what] of [
      [this.w.scratch, SCRATCH_USED, 'scratch (states, shadow, descriptors, completions)'],
      [this.w.pool, this.c.nrPages * 4096, 'shared ring pages'],
    ] as const) {
      const at = firstDifference(wasm.memory, js.memory, from, from + len);
      if (at >= 0) {
        this.fail(`engine memories differ in ${what} at +${at - from}`, {
          wasm: hexAround(wasm.memory, at), js: hexAround(js.memory, at),
        });
      }
    }
  }

  compareIndices(): void {
    if (!this.exact) return;
    const s = this.w, m = this.model, sr = s.pool;
    const got = {
      reqProd: s.u32(sr), reqEvent: s.u32(sr + 4), rspProd: s.u32(sr + 8), rspEvent: s.u32(sr + 12),
      reqProdPvt: s.u32(s.a(FRONT + 12)), rspCons: s.u32(s.a(FRONT + 16)),
      rspProdPvt: s.u32(s.a(BACK + 12)), reqCons: s.u32(s.a(BACK + 16)),
    };
    const want = {
      reqProd: m.reqProd, reqEvent: m.reqEvent, rspProd: m.rspProd, rspEvent: m.rspEvent,
      reqProdPvt: m.reqProdPvt, rspCons: m.rspCons, rspProdPvt: m.rspProdPvt, reqCons: m.reqCons,
    };
    if (JSON.stringify(got) !== JSON.stringify(want)) this.fail('ring indices differ from the model', { engines: got, model: want });
  }

  init(): void {
    const nrPages = this.c.nrPages;
    const n = this.both('frontRingInit', (e, s) => e.frontRingInit(s.a(FRONT), s.pool, nrPages, this.slotSize));
    this.expect('frontRingInit', n, this.nrEnts);
    const sr = this.w.pool;
    checkSame([this.w.u32(sr), this.w.u32(sr + 4), this.w.u32(sr + 8), this.w.u32(sr + 12)], [0, 1, 0, 1],
      'SHARED_RING_INIT header (req_prod, req_event, rsp_prod, rsp_event)');
    const pad = new Uint8Array(this.pair.wasm.memory.buffer, sr + 16, 48);
    check(pad.every((b) => b === 0), 'SHARED_RING_INIT must zero the 48 header padding bytes');
    // Move every index to `start` (a front that has been running a while).
    const st = this.c.start;
    for (const s of [this.w, this.j]) {
      s.setU32(s.pool, st); s.setU32(s.pool + 4, st + 1); s.setU32(s.pool + 8, st); s.setU32(s.pool + 12, st + 1);
      s.setU32(s.a(FRONT + 12), st); s.setU32(s.a(FRONT + 16), st);
    }
    const b = this.both('backRingAttach', (e, s) => e.backRingAttach(s.a(BACK), s.pool, nrPages, this.slotSize));
    this.expect('backRingAttach', b, this.nrEnts);
    this.compareIndices();
    this.compareMemories();
  }

  pickId(r: GenRequest): bigint {
    if (r.idMode === 'raw') return BigInt(r.id);
    const shadow = new Uint8Array(this.pair.wasm.memory.buffer, this.w.a(SHADOW), this.nrEnts);
    const free: number[] = [];
    shadow.forEach((v, i) => { if (v === 0) free.push(i); });
    return BigInt(free.length ? free[r.id % free.length] : r.id % this.nrEnts);
  }

  run(o: RingOp): void {
    const m = this.model;
    switch (o.k) {
      case 'write': {
        const reqs = o.reqs.slice(0, 16);
        const ids = reqs.map((r) => this.pickId(r));
        for (const s of [this.w, this.j]) reqs.forEach((r, i) => writeDesc(s, i, r, ids[i]));
        const got = this.both('blkifWriteRequests', (e, s) => e.blkifWriteRequests(s.a(FRONT), s.a(SHADOW), s.a(DESCS), reqs.length, this.abi));
        const statuses = reqs.map((_, i) => this.w.dv.getInt16(this.w.a(DESCS + i * 32 + 6), true));
        if (this.exact) {
          const mreqs: ModelRequest[] = reqs.map((r, i) => ({
            op: r.op, flag: r.flag, handle: r.handle, nrSegments: r.nrSegments & 0xffff, id: ids[i],
            sector: r.sector, segs: r.segs, nrSectors: r.nrSectors, igrefs: r.igrefs,
          }));
          const want = m.writeRequests(mreqs);
          this.expect('blkifWriteRequests (processed)', got, want.processed);
          want.statuses.forEach((ok, i) => {
            if (!ok.includes(statuses[i])) this.fail(`blkifWriteRequests: descriptor ${i} status ${statuses[i]}, model expects one of ${ok}`, { request: mreqs[i] });
          });
        }
        return;
      }
      case 'push':
        return this.expect('pushRequestsAndCheckNotify', this.both('pushRequestsAndCheckNotify', (e, s) => e.pushRequestsAndCheckNotify(s.a(FRONT))), m.pushRequestsAndCheckNotify());
      case 'take': {
        const got = this.both('blkifTakeRequests', (e, s) => e.blkifTakeRequests(s.a(BACK), s.a(TDESCS), s.a(TSEGS), o.max, this.abi));
        for (let i = 0; i < Math.max(0, got); i++) {
          const d = this.w.a(TDESCS + i * 32);
          const status = this.w.dv.getInt16(d + 6, true);
          if (!(status <= 0 && status >= -9)) this.fail(`blkifTakeRequests: descriptor ${i} has status ${status}, not a request-validation BlkifStatus`);
          if (status === 0) this.pending.push({ id: this.w.dv.getBigUint64(d + 8, true), op: rspOpOf(this.w.dv.getUint8(d), this.w.dv.getUint8(d + 1)) });
        }
        if (!this.exact) return;
        const want = m.takeRequests(o.max);
        if ('status' in want) return this.expect('blkifTakeRequests', got, want.status);
        this.expect('blkifTakeRequests', got, want.count);
        want.taken.forEach((r, i) => { if (r) this.checkTaken(i, r); });
        return;
      }
      case 'respond': {
        const list: ModelResponse[] = [];
        for (const g of o.rsps) {
          let rsp: ModelResponse | undefined;
          const takePending = () => (this.pending.length ? this.pending.splice(g.pick % this.pending.length, 1)[0] : undefined);
          switch (g.kind) {
            case 'ok': case 'error': case 'eopnotsupp': case 'badStatus': case 'badOp': {
              const p = takePending();
              if (!p) break;
              this.answered.push(p);
              const status = g.kind === 'ok' ? 0 : g.kind === 'error' ? -1 : g.kind === 'eopnotsupp' ? -2 : g.kind === 'badStatus' ? g.status : 0;
              rsp = { id: p.id, op: g.kind === 'badOp' ? (p.op + 1 + (g.pick % 200)) & 0xff : p.op, status };
              break;
            }
            case 'badId':
              rsp = { id: g.pick % 2 ? (1n << 64n) - 1n : BigInt(this.nrEnts + g.pick), op: 0, status: 0 };
              break;
            case 'dup': {
              const p = this.answered[g.pick % Math.max(1, this.answered.length)];
              if (p) rsp = { id: p.id, op: p.op, status: 0 };
              break;
            }
          }
          if (rsp) list.push(rsp);
        }
        for (const s of [this.w, this.j]) {
          list.forEach((r, i) => {
            const at = s.a(RSPS + i * 16);
            s.dv.setBigUint64(at, r.id, true);
            s.dv.setUint8(at + 8, r.op);
            s.dv.setUint8(at + 9, 0);
            s.dv.setInt16(at + 10, r.status, true);
            s.dv.setUint32(at + 12, 0, true);
          });
        }
        const got = this.both('blkifWriteResponses', (e, s) => e.blkifWriteResponses(s.a(BACK), s.a(RSPS), list.length, this.abi));
        if (this.exact) this.expect('blkifWriteResponses', got, m.writeResponses(list));
        return;
      }
      case 'pushRsp':
        return this.expect('pushResponsesAndCheckNotify', this.both('pushResponsesAndCheckNotify', (e, s) => e.pushResponsesAndCheckNotify(s.a(BACK))), m.pushResponsesAndCheckNotify());
      case 'reap':
        return this.reap(o.max);
      case 'finalRsp':
        return this.expect('finalCheckForResponses', this.both('finalCheckForResponses', (e, s) => e.finalCheckForResponses(s.a(FRONT))), m.finalCheckForResponses());
      case 'finalReq':
        return this.expect('finalCheckForRequests', this.both('finalCheckForRequests', (e, s) => e.finalCheckForRequests(s.a(BACK))), m.finalCheckForRequests());
      case 'free':
        return this.expect('freeRequests', this.both('freeRequests', (e, s) => e.freeRequests(s.a(FRONT))), m.freeRequests());
      case 'unconsumed':
        return this.expect('unconsumedRequests', this.both('unconsumedRequests', (e, s) => e.unconsumedRequests(s.a(BACK))), m.unconsumedRequests());
      case 'slot': {
        const got = this.both('requestSlot', (e, s) => e.requestSlot(s.a(FRONT), o.i) - s.pool);
        return this.expect('requestSlot (offset in ring)', got, 64 + m.requestSlotIndex(o.i) * this.slotSize);
      }
      case 'reqEvent': {
        const v = u32(this.w.u32(this.w.a(BACK + 16)) + o.delta);
        for (const s of [this.w, this.j]) s.setU32(s.pool + 4, v);
        m.reqEvent = v;
        return;
      }
      case 'rspEvent': {
        const v = u32(this.w.u32(this.w.a(FRONT + 16)) + o.delta);
        for (const s of [this.w, this.j]) s.setU32(s.pool + 12, v);
        m.rspEvent = v;
        return;
      }
      case 'reqProd': {
        const v = u32(this.w.u32(this.w.a(BACK + 16)) + o.delta);
        for (const s of [this.w, this.j]) s.setU32(s.pool, v);
        m.reqProd = v;
        return;
      }
      case 'rspProd': {
        const v = u32(this.w.u32(this.w.a(FRONT + 16)) + o.delta);
        for (const s of [this.w, this.j]) s.setU32(s.pool + 8, v);
        m.rspProd = v;
        return;
      }
      case 'overflow': {
        if (o.which === 'req') {
          const prod = u32(this.w.u32(this.w.a(BACK + 12)) + o.delta);
          return this.expect('requestProdOverflow', this.both('requestProdOverflow', (e, s) => e.requestProdOverflow(s.a(BACK), prod)), m.requestProdOverflow(prod));
        }
        const prod = u32(this.w.u32(this.w.a(FRONT + 16)) + o.delta);
        return this.expect('responseProdOverflow', this.both('responseProdOverflow', (e, s) => e.responseProdOverflow(s.a(FRONT), prod)), m.responseProdOverflow(prod));
      }
      case 'scribble': {
        const cons = o.side === 'req' ? this.w.u32(this.w.a(BACK + 16)) : this.w.u32(this.w.a(FRONT + 16));
        const slot = (cons + o.slot) & (this.nrEnts - 1);
        const len = Math.min(o.bytes.length, this.slotSize - (o.offset % this.slotSize));
        for (const s of [this.w, this.j]) {
          new Uint8Array(s.e.memory.buffer, s.pool + 64 + slot * this.slotSize + (o.offset % this.slotSize), len).set(o.bytes.subarray(0, len));
        }
        m.slots[slot] = { kind: 'unknown' };
        return;
      }
      case 'ringSize': {
        const got = this.both('ringSize', (e) => e.ringSize(o.nrPages, o.slotSize));
        const want = ringSize(o.nrPages, o.slotSize);
        // Geometries with room for no slot, or over 16 pages, are the engine's call (engines still agree).
        if (want >= 1) this.expect(`ringSize(${o.nrPages}, ${o.slotSize})`, got, want);
        return;
      }
    }
  }

  checkTaken(i: number, r: ModelRequest): void {
    const dv = this.w.dv;
    const d = this.w.a(TDESCS + i * 32);
    const got: Record<string, unknown> = { op: dv.getUint8(d), id: dv.getBigUint64(d + 8, true), sector: dv.getBigUint64(d + 16, true), status: dv.getInt16(d + 6, true) };
    const want: Record<string, unknown> = { op: r.op, id: r.id, sector: r.sector, status: 0 };
    const arg = Number(dv.getBigUint64(d + 24, true) & 0xffffffffn);
    if (r.op === OP.discard) {
      Object.assign(got, { flag: dv.getUint8(d + 1), handle: dv.getUint16(d + 2, true), nrSectors: dv.getBigUint64(d + 24, true) });
      Object.assign(want, { flag: r.flag, handle: r.handle, nrSectors: r.nrSectors });
    } else if (r.op === OP.indirect) {
      const pages = Math.ceil(r.nrSegments / 512);
      const grefs: number[] = [];
      for (let k = 0; k < pages; k++) grefs.push(dv.getUint32(arg + 4 * k, true));
      Object.assign(got, { flag: dv.getUint8(d + 1), handle: dv.getUint16(d + 2, true), nrSegments: dv.getUint16(d + 4, true), grefs });
      Object.assign(want, { flag: r.flag, handle: r.handle, nrSegments: r.nrSegments, grefs: r.igrefs.slice(0, pages) });
    } else {
      const segs = [];
      for (let k = 0; k < r.nrSegments; k++) segs.push({ gref: dv.getUint32(arg + 8 * k, true), first: dv.getUint8(arg + 8 * k + 4), last: dv.getUint8(arg + 8 * k + 5) });
      Object.assign(got, { handle: dv.getUint16(d + 2, true), nrSegments: dv.getUint16(d + 4, true), segs });
      Object.assign(want, { handle: r.handle, nrSegments: r.nrSegments, segs: r.segs.slice(0, r.nrSegments) });
      if (arg < this.w.a(TSEGS + i * TAKE_SEG_AREA) || arg + 8 * r.nrSegments > this.w.a(TSEGS + (i + 1) * TAKE_SEG_AREA)) {
        this.fail(`blkifTakeRequests: descriptor ${i} segments at ${arg}, outside its area`);
      }
    }
    checkSame(got, want, `blkifTakeRequests descriptor ${i} vs the request the front wrote`);
  }

  reap(max: number): void {
    const m = this.model;
    const consBefore = this.w.u32(this.w.a(FRONT + 16));
    const got = this.both('blkifReapResponses', (e, s) => e.blkifReapResponses(s.a(FRONT), s.a(SHADOW), s.a(COMPS), max, this.abi));
    if (!this.exact) return;
    const want = m.reapResponses(max);
    if (want.kind === 'unknown') { this.exact = false; return; }
    if (want.kind === 'violation') {
      if (!want.statuses.includes(got)) this.fail(`blkifReapResponses returned ${got}, model expects a violation in ${want.statuses} at index ${want.at}`);
      const consAfter = this.w.u32(this.w.a(FRONT + 16));
      const consumed = u32(consAfter - consBefore);
      const allowed = u32(want.at - consBefore);
      if (want.statuses.includes(ST.RSP_PROD_OVERFLOW) ? consumed !== 0 : consumed > allowed) {
        this.fail(`blkifReapResponses consumed ${consumed} responses, but the violation is at +${allowed}: nothing past it may be consumed`);
      }
      this.exact = false; // the front is failed; the contract leaves the consumed prefix open
      return;
    }
    this.expect('blkifReapResponses', got, want.count);
    const comps = want.completions.map((_, i) => {
      const at = this.w.a(COMPS + i * 16);
      return { id: this.w.dv.getBigUint64(at, true), op: this.w.dv.getUint8(at + 8), status: this.w.dv.getInt16(at + 10, true) };
    });
    checkSame(comps, want.completions, 'completions');
    const shadow = Array.from(new Uint8Array(this.pair.wasm.memory.buffer, this.w.a(SHADOW), this.nrEnts));
    checkSame(shadow, m.shadow, 'shadow table');
  }
}

export const ringTarget: FuzzTarget<RingCase> = {
  name: 'ring',
  summary: 'ring operations on the Wasm engine, the JS twin and an independent ring.h model; all must agree',
  caseDeadlineMs: 2000,
  async setup(): Promise<FuzzHarness<RingCase>> {
    const pair = await createEnginePair(16);
    return {
      arbitrary: ringCase,
      format: formatRingCase,
      coverage: () => [...ringStats].filter(([k]) => /^blkif(Reap|Take)/.test(k)).sort().map(([k, v]) => `${k}: ${v}`).join('; '),
      runCase(c: RingCase): void {
        const run = new RingRun(pair, c);
        run.init();
        c.ops.forEach((o, i) => {
          run.step = i;
          try {
            run.run(o);
          } catch (e) {
            if (e instanceof FuzzViolation) throw e;
            throw new FuzzViolation(`op #${i} (${o.k}) threw: ${(e as Error)?.message ?? String(e)}`, { stack: (e as Error)?.stack?.split('\n').slice(0, 6) });
          }
          run.compareIndices();
          run.compareMemories();
        });
      },
    };
  },
};
