/**
 * `blkif`: random and mutated request/response bytes for both ABIs into the
 * engines' decoders (Wasm and JS), plus hostile response streams into
 * blkifReapResponses.
 *
 * Invariants: never a trap or exception; every status is a known code; the
 * decoder writes only its outputs (scratch is filled with a canary and
 * checked after each call) and never its input; both engines return the
 * same status and bytes; accepted requests decode to what the independent
 * parser (model/blkif-wire.ts) reads, and re-encode to the same bytes with
 * padding zeroed; the spec's validity rules hold; a reap stops at the first
 * violation with a negative status and consumes nothing past it.
 */
import * as fc from 'fast-check';
import type { RingEngine } from '../../../src/ring/engine.js';
import { createEnginePair, firstDifference, hexAround, type EnginePair } from '../harness/engines.js';
import {
  buildRequest, buildResponse, canonicalRequest, INDIRECT, parseRequest, parseResponse, REQ_BYTES,
  requestFaults, RSP_BYTES, type WireRequest, type WireResponse,
} from '../model/blkif-wire.js';
import { check, checkSame, FuzzViolation, type FuzzHarness, type FuzzTarget } from '../target.js';
import { codecChecks, loadCodec, type Codec } from './blkif-codec.js';

// ---- case ----
export interface Mutation { at: number; value: number }
export type BlkifCase =
  | { k: 'req'; abi: 0 | 1; base: WireRequest; mut: Mutation[] }
  | { k: 'rawReq'; abi: 0 | 1; bytes: Uint8Array }
  | { k: 'rsp'; abi: 0 | 1; base: WireResponse; mut: Mutation[] }
  | { k: 'indirect'; abi: 0 | 1; count: number; segs: Array<{ gref: number; first: number; last: number }>; fill: number }
  | { k: 'reap'; abi: 0 | 1; start: number; shadow: number[]; stream: Array<{ pick: number; status: number; mut: Mutation[] }>; prodDelta: number; max: number };

/** Segments in the indirect cases: up to three pool pages (1..3) of 512. */
const MAX_INDIRECT_SEGS = 1100;
const u32 = fc.nat({ max: 0xffffffff });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const abi = fc.constantFrom(0 as const, 1 as const);
const mutation = fc.record({ at: fc.nat({ max: 111 }), value: fc.nat({ max: 255 }) });
const muts = fc.oneof({ weight: 2, arbitrary: fc.constant([] as Mutation[]) }, { weight: 3, arbitrary: fc.array(mutation, { maxLength: 4 }) });
const seg = fc.record({
  gref: u32,
  first: fc.oneof({ weight: 6, arbitrary: fc.nat({ max: 7 }) }, { weight: 1, arbitrary: fc.nat({ max: 255 }) }),
  last: fc.oneof({ weight: 6, arbitrary: fc.constant(7) }, { weight: 1, arbitrary: fc.nat({ max: 255 }) }),
});
const wireRequest: fc.Arbitrary<WireRequest> = fc
  .record({
    op: fc.oneof({ weight: 10, arbitrary: fc.constantFrom(0, 1, 2, 3, 5, 6) }, { weight: 1, arbitrary: fc.nat({ max: 255 }) }),
    flag: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: fc.nat({ max: 255 }) }),
    handle: fc.nat({ max: 0xffff }),
    nrSegments: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 11 }) }, { weight: 2, arbitrary: fc.constantFrom(0, 12, 255, 511, 512, 513, 4096, 4097, 65535) }),
    id: u64,
    sector: u64,
    segs: fc.array(seg, { minLength: 11, maxLength: 11 }),
    nrSectors: u64,
    grefs: fc.array(u32, { minLength: 8, maxLength: 8 }),
  })
  .map((r) => {
    // Shape the fields the way the wire holds them (counts name what is present).
    if (r.op === INDIRECT) return { ...r, segs: [], nrSectors: 0n, grefs: r.grefs.slice(0, Math.min(8, Math.ceil(r.nrSegments / 512))) };
    if (r.op === 5) return { ...r, nrSegments: 0, segs: [], grefs: [] };
    const n = r.nrSegments & 0xff;
    return { ...r, flag: 0, nrSegments: n, segs: r.segs.slice(0, Math.min(11, n)), nrSectors: 0n, grefs: [] };
  });
const wireResponse: fc.Arbitrary<WireResponse> = fc.record({
  id: fc.oneof(fc.bigInt({ min: 0n, max: 40n }), u64),
  op: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0, 1, 2, 3, 5, 6) }, { weight: 1, arbitrary: fc.nat({ max: 255 }) }),
  status: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(0, -1, -2) }, { weight: 1, arbitrary: fc.integer({ min: -32768, max: 32767 }) }),
});

export const blkifCase: fc.Arbitrary<BlkifCase> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('req' as const), abi, base: wireRequest, mut: muts }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('rawReq' as const), abi, bytes: fc.uint8Array({ minLength: 112, maxLength: 112 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('rsp' as const), abi, base: wireResponse, mut: muts }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('indirect' as const),
      abi,
      count: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: MAX_INDIRECT_SEGS }) }, { weight: 1, arbitrary: fc.constantFrom(0, 511, 512, 513, 1024, 1025) }),
      // Pages start from `segs` repeated; a bad segment anywhere is likely only when `segs` holds one.
      segs: fc.array(seg, { minLength: 1, maxLength: 16 }),
      fill: fc.nat({ max: 255 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('reap' as const),
      abi,
      start: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 }).map((k) => (2 ** 32 - k) >>> 0), u32),
      shadow: fc.array(fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.constantFrom(1, 2, 3, 4, 6, 7) }), { minLength: 32, maxLength: 32 }),
      stream: fc.array(fc.record({
        pick: fc.nat({ max: 63 }),
        status: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(0, -1, -2) }, { weight: 1, arbitrary: fc.integer({ min: -32768, max: 32767 }) }),
        mut: fc.oneof({ weight: 8, arbitrary: fc.constant([] as Mutation[]) }, { weight: 1, arbitrary: fc.array(mutation, { maxLength: 2 }) }),
      }), { maxLength: 36 }),
      prodDelta: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 40 }) }, { weight: 1, arbitrary: u32 }),
      max: fc.oneof(fc.constant(64), fc.nat({ max: 40 })),
    }),
  },
);

function mutate(b: Uint8Array, mut: Mutation[]): Uint8Array {
  const out = b.slice();
  for (const m of mut) out[m.at % out.length] = m.value;
  return out;
}

// ---- memory map (scratch offsets) ----
const SLOT = 0, DESC = 256, SEGS = 512, SLOT2 = 1024, RSP_IN = 2048, RSP_ENT = 2112, RSP_OUT = 2176;
const FRONT = 4096, SHADOW = 4160, COMPS = 8192, IPAGES = 12256, IOUT = 12288;
const USED = IOUT + MAX_INDIRECT_SEGS * 8 + 32;
const CANARY = 0xcd;
/** Outcome counts across cases (for coverage reports). */
export const blkifStats = new Map<string, number>();
const count = (k: string) => blkifStats.set(k, (blkifStats.get(k) ?? 0) + 1);

const CANARY_BYTES = new Uint8Array(USED).fill(CANARY);
const KNOWN_STATUS = new Set([0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -20, -21, -22, -23, -24, -25]);

class Sides {
  constructor(readonly pair: EnginePair) {}
  get list(): Array<{ e: RingEngine; base: number; pool: number }> {
    return [
      { e: this.pair.wasm, base: this.pair.wasmLayout.scratchBase, pool: this.pair.wasmLayout.poolBase },
      { e: this.pair.js, base: this.pair.jsLayout.scratchBase, pool: this.pair.jsLayout.poolBase },
    ];
  }
  bytes(i: number, off: number, len: number): Uint8Array {
    const s = this.list[i];
    return new Uint8Array(s.e.memory.buffer, s.base + off, len);
  }
  canary(): void {
    for (const s of this.list) {
      new Uint8Array(s.e.memory.buffer, s.base, USED).fill(CANARY);
      new Uint8Array(s.e.memory.buffer, s.pool, 4096).fill(0);
    }
  }
  /** Both engines return the same; the status is known. */
  call(name: string, f: (e: RingEngine, base: number, pool: number) => number, returns: 'status' | 'count' = 'status'): number {
    const [a, b] = this.list.map((s) => {
      try {
        return f(s.e, s.base, s.pool);
      } catch (e) {
        throw new FuzzViolation(`${name} on the ${s.e.kind} engine threw (trap or exception): ${(e as Error)?.message ?? e}`);
      }
    });
    if (a !== b) throw new FuzzViolation(`${name}: wasm returned ${a}, js returned ${b}`);
    if ((returns === 'status' || a < 0) && !KNOWN_STATUS.has(a)) throw new FuzzViolation(`${name} returned ${a}, not a BlkifStatus`);
    return a;
  }
  /** Scratch outside `allowed` [off, len) ranges still holds the canary, in both engines; and they agree. */
  untouched(name: string, allowed: Array<[number, number]>, inputs: Array<[number, Uint8Array]>): void {
    this.list.forEach((_, i) => {
      const all = this.bytes(i, 0, USED);
      const skip = [...allowed, ...inputs.map(([at, b]) => [at, b.length] as [number, number])].sort((x, y) => x[0] - y[0]);
      let from = 0;
      for (const [at, len] of [...skip, [USED, 0] as [number, number]]) {
        if (at > from && Buffer.compare(all.subarray(from, at), CANARY_BYTES.subarray(from, at)) !== 0) {
          let o = from;
          while (all[o] === CANARY) o++;
          throw new FuzzViolation(`${name} (${this.list[i].e.kind}) wrote scratch +${o}, outside its outputs`);
        }
        from = Math.max(from, at + len);
      }
      for (const [at, b] of inputs) checkSame(Array.from(this.bytes(i, at, b.length)), Array.from(b), `${name} input bytes after the call (decoders must not write their input)`);
    });
    const p = this.pair;
    const at = firstDifference(p.wasm.memory, p.js.memory, p.wasmLayout.scratchBase, p.wasmLayout.scratchBase + USED);
    if (at >= 0) throw new FuzzViolation(`${name}: engine memories differ at scratch +${at - p.wasmLayout.scratchBase}`, { wasm: hexAround(p.wasm.memory, at), js: hexAround(p.js.memory, at) });
  }
}

function readDesc(b: Uint8Array): { op: number; flag: number; handle: number; nrSegments: number; status: number; id: bigint; sector: bigint; arg: bigint } {
  const dv = new DataView(b.buffer, b.byteOffset, 32);
  return {
    op: dv.getUint8(0), flag: dv.getUint8(1), handle: dv.getUint16(2, true), nrSegments: dv.getUint16(4, true),
    status: dv.getInt16(6, true), id: dv.getBigUint64(8, true), sector: dv.getBigUint64(16, true), arg: dv.getBigUint64(24, true),
  };
}

function checkRequestBytes(s: Sides, abi: 0 | 1, bytes: Uint8Array, codec: Codec): void {
  const len = REQ_BYTES[abi];
  bytes = bytes.subarray(0, len);
  s.canary();
  s.list.forEach((_, i) => s.bytes(i, SLOT, len).set(bytes));
  const st = s.call('blkifDecodeRequest', (e, b) => e.blkifDecodeRequest(b + SLOT, b + DESC, b + SEGS, abi));
  s.untouched('blkifDecodeRequest', [[DESC, 32], [SEGS, 11 * 8]], [[SLOT, bytes]]);
  count(`request ${st === 0 ? 'accepted' : st}`);
  const wire = parseRequest(abi, bytes);
  const faults = requestFaults(wire);
  if (faults.length === 0) check(st === 0, `blkifDecodeRequest rejected a valid request with ${st}`, { request: wire });
  else check(faults.includes(st), `blkifDecodeRequest returned ${st}; the spec says one of ${faults}`, { request: wire });
  codecChecks.request(codec, abi, bytes, st, wire);
  if (st !== 0) return;
  // Accepted: the descriptor says what the bytes say.
  const base = s.list[0].base;
  const d = readDesc(s.bytes(0, DESC, 32));
  const got: Record<string, unknown> = { op: d.op, id: d.id, sector: d.sector, status: d.status };
  const want: Record<string, unknown> = { op: wire.op, id: wire.id, sector: wire.sector, status: 0 };
  const segBytes = s.bytes(0, SEGS, 88);
  const sdv = new DataView(segBytes.buffer, segBytes.byteOffset, 88);
  if (wire.op === 5) {
    Object.assign(got, { flag: d.flag, handle: d.handle, nrSectors: d.arg });
    Object.assign(want, { flag: wire.flag, handle: wire.handle, nrSectors: wire.nrSectors });
  } else if (wire.op === INDIRECT) {
    check(Number(d.arg & 0xffffffffn) === base + SEGS, `decoded indirect arg ${d.arg} is not the segs buffer ${base + SEGS}`);
    Object.assign(got, { flag: d.flag, handle: d.handle, nrSegments: d.nrSegments, grefs: wire.grefs.map((_, k) => sdv.getUint32(4 * k, true)) });
    Object.assign(want, { flag: wire.flag, handle: wire.handle, nrSegments: wire.nrSegments, grefs: wire.grefs });
  } else {
    if (wire.nrSegments > 0) check(Number(d.arg & 0xffffffffn) === base + SEGS, `decoded arg ${d.arg} is not the segs buffer ${base + SEGS}`);
    Object.assign(got, { handle: d.handle, nrSegments: d.nrSegments, segs: wire.segs.map((_, k) => ({ gref: sdv.getUint32(8 * k, true), first: sdv.getUint8(8 * k + 4), last: sdv.getUint8(8 * k + 5) })) });
    Object.assign(want, { handle: wire.handle, nrSegments: wire.nrSegments, segs: wire.segs });
  }
  checkSame(got, want, 'decoded descriptor vs the independent parser');
  // encode(decode(bytes)) == bytes with padding zeroed.
  const enc = s.call('blkifEncodeRequest', (e, b) => e.blkifEncodeRequest(b + DESC, b + SLOT2, abi));
  check(enc === 0, `blkifEncodeRequest refused a descriptor its decoder accepted: ${enc}`);
  s.untouched('blkifEncodeRequest', [[DESC, 32], [SEGS, 88], [SLOT2, len]], [[SLOT, bytes]]);
  checkSame(Array.from(s.bytes(0, SLOT2, len)), Array.from(canonicalRequest(abi, bytes)), 'encode(decode(bytes)) vs bytes with padding zeroed');
}

function checkResponseBytes(s: Sides, abi: 0 | 1, bytes: Uint8Array, codec: Codec): void {
  const len = RSP_BYTES[abi];
  bytes = bytes.subarray(0, len);
  s.canary();
  s.list.forEach((_, i) => s.bytes(i, RSP_IN, len).set(bytes));
  const st = s.call('blkifDecodeResponse', (e, b) => e.blkifDecodeResponse(b + RSP_IN, b + RSP_ENT, abi));
  s.untouched('blkifDecodeResponse', [[RSP_ENT, 16]], [[RSP_IN, bytes]]);
  count(`response ${st === 0 ? 'accepted' : st}`);
  const wire = parseResponse(bytes);
  codecChecks.response(codec, abi, bytes, st, wire);
  if (st !== 0) return;
  const ent = s.bytes(0, RSP_ENT, 16);
  const dv = new DataView(ent.buffer, ent.byteOffset, 16);
  checkSame({ id: dv.getBigUint64(0, true), op: dv.getUint8(8), status: dv.getInt16(10, true) }, wire, 'decoded response entry vs the independent parser');
  const enc = s.call('blkifEncodeResponse', (e, b) => e.blkifEncodeResponse(b + RSP_ENT, b + RSP_OUT, abi));
  check(enc === 0, `blkifEncodeResponse refused an entry its decoder produced: ${enc}`);
  s.untouched('blkifEncodeResponse', [[RSP_ENT, 16], [RSP_OUT, len]], [[RSP_IN, bytes]]);
  checkSame(Array.from(s.bytes(0, RSP_OUT, len)), Array.from(buildResponse(abi, wire)), 'encode(decode(bytes)) vs bytes with padding zeroed');
}

function checkIndirect(s: Sides, c: Extract<BlkifCase, { k: 'indirect' }>): void {
  s.canary();
  for (const side of s.list) {
    const dv = new DataView(side.e.memory.buffer);
    for (let p = 0; p < 3; p++) {
      const page = side.pool + (1 + p) * 4096;
      new Uint8Array(side.e.memory.buffer, page, 4096).fill(c.fill);
      dv.setUint32(side.base + IPAGES + 4 * p, page, true);
    }
    for (let k = 0; k < Math.min(c.count, MAX_INDIRECT_SEGS); k++) {
      const g = c.segs[k % c.segs.length];
      const at = side.pool + (1 + (k >> 9)) * 4096 + (k & 511) * 8;
      dv.setUint32(at, g.gref, true);
      dv.setUint8(at + 4, g.first);
      dv.setUint8(at + 5, g.last);
    }
  }
  const st = s.call('blkifCopyIndirectSegments', (e, b) => e.blkifCopyIndirectSegments(b + IPAGES, c.count, b + IOUT));
  count(`indirect ${st === 0 ? 'accepted' : st}`);
  s.untouched('blkifCopyIndirectSegments', [[IOUT, 8 * Math.min(c.count, MAX_INDIRECT_SEGS)]], [[IPAGES, s.bytes(0, IPAGES, 12).slice()]]);
  for (const side of s.list) {
    const pool = new Uint8Array(side.e.memory.buffer, side.pool + 4096, 3 * 4096);
    const again = new Uint8Array(3 * 4096);
    // The pages are the peer's: the copy must not write them (rebuild and compare).
    again.fill(c.fill);
    const dv = new DataView(again.buffer);
    for (let k = 0; k < Math.min(c.count, MAX_INDIRECT_SEGS); k++) {
      const g = c.segs[k % c.segs.length];
      dv.setUint32(k * 8, g.gref, true);
      dv.setUint8(k * 8 + 4, g.first);
      dv.setUint8(k * 8 + 5, g.last);
    }
    check(Buffer.compare(pool, again) === 0, `blkifCopyIndirectSegments (${side.e.kind}) wrote the peer's indirect pages`);
  }
  if (c.count < 1 || c.count > 4096) { check(st < 0, `blkifCopyIndirectSegments accepted ${c.count} segments`); return; }
  const used = c.segs.slice(0, Math.min(c.segs.length, c.count));
  const bad = used.some((g) => g.first > g.last || g.last > 7);
  check(bad ? st === -3 : st === 0, `blkifCopyIndirectSegments returned ${st}; segments ${bad ? 'include a bad sector range (-3)' : 'are all valid (0)'}`, { used });
  if (st !== 0) return;
  const out = s.bytes(0, IOUT, 8 * c.count);
  const odv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let k = 0; k < c.count; k++) {
    const g = c.segs[k % c.segs.length];
    const got = { gref: odv.getUint32(8 * k, true), first: odv.getUint8(8 * k + 4), last: odv.getUint8(8 * k + 5) };
    if (got.gref !== g.gref || got.first !== g.first || got.last !== g.last) throw new FuzzViolation(`indirect segment ${k} copied as ${JSON.stringify(got)}, page holds ${JSON.stringify(g)}`);
  }
}

function checkReap(s: Sides, c: Extract<BlkifCase, { k: 'reap' }>): void {
  const slot = REQ_BYTES[c.abi];
  const nrEnts = 32;
  s.canary();
  const inflight = c.shadow.map((v, id) => ({ v, id })).filter((x) => x.v !== 0);
  // The stream: mostly well-formed answers to in-flight ids, sometimes mutated.
  const stream = c.stream.slice(0, nrEnts).map((g) => {
    const p = inflight.length ? inflight[g.pick % inflight.length] : { v: 1, id: g.pick };
    return mutate(buildResponse(c.abi, { id: BigInt(p.id), op: p.v - 1, status: g.status }), g.mut);
  });
  const prod = (c.start + stream.length + c.prodDelta) >>> 0;
  for (const side of s.list) {
    const dv = new DataView(side.e.memory.buffer);
    const n = side.e.frontRingInit(side.base + FRONT, side.pool, 1, slot);
    check(n === nrEnts, `frontRingInit gave ${n} entries`);
    dv.setUint32(side.pool + 8, prod, true);
    dv.setUint32(side.base + FRONT + 12, c.start, true); // req_prod_pvt
    dv.setUint32(side.base + FRONT + 16, c.start, true); // rsp_cons
    new Uint8Array(side.e.memory.buffer, side.base + SHADOW, nrEnts).set(c.shadow);
    stream.forEach((b, k) => new Uint8Array(side.e.memory.buffer, side.pool + 64 + (((c.start + k) & (nrEnts - 1)) * slot), b.length).set(b));
  }
  const got = s.call('blkifReapResponses', (e, b) => e.blkifReapResponses(b + FRONT, b + SHADOW, b + COMPS, c.max, c.abi), 'count');
  count(`reap ${got < 0 ? got : got === 0 ? '0' : '>0'}`);
  s.untouched('blkifReapResponses', [[FRONT, 32], [SHADOW, nrEnts], [COMPS, 16 * Math.max(0, c.max)]], []);
  const side = s.list[0];
  const dv = new DataView(side.e.memory.buffer);
  const consumed = (dv.getUint32(side.base + FRONT + 16, true) - c.start) >>> 0;
  // The oracle: walk the stream as the contract says.
  if (((prod - c.start) >>> 0) > nrEnts) {
    check(got === -20, `rsp_prod ${prod} is ${(prod - c.start) >>> 0} past rsp_cons: expected RSP_PROD_OVERFLOW (-20), got ${got}`);
    check(consumed === 0, `reap consumed ${consumed} responses despite rsp_prod overflow`);
    return;
  }
  const shadow = [...c.shadow];
  const avail = Math.min(c.max, (prod - c.start) >>> 0);
  const comps: WireResponse[] = [];
  for (let k = 0; k < avail; k++) {
    // Slots past the written stream hold zeros (the pool page was zeroed).
    const r = k < stream.length ? parseResponse(stream[k]) : { id: 0n, op: 0, status: 0 };
    const faults: number[] = [];
    if (r.id >= BigInt(nrEnts)) faults.push(-21);
    else if (shadow[Number(r.id)] === 0) faults.push(-22);
    else if (r.op !== shadow[Number(r.id)] - 1) faults.push(-23);
    if (r.status < -2 || r.status > 0) faults.push(-24);
    if (faults.length) {
      check(faults.includes(got), `reap: response ${k} ${JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? String(v) : v))} breaks ${faults}, reap returned ${got}`);
      check(consumed <= k, `reap consumed ${consumed} responses; the violation is response ${k}: nothing past it may be consumed`);
      return;
    }
    shadow[Number(r.id)] = 0;
    comps.push(r);
  }
  check(got === comps.length, `reap returned ${got}, expected ${comps.length} good responses`);
  check(consumed === comps.length, `reap advanced rsp_cons by ${consumed}, returned ${got}`);
  const out = s.bytes(0, COMPS, 16 * comps.length);
  const odv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  checkSame(comps.map((_, k) => ({ id: odv.getBigUint64(16 * k, true), op: odv.getUint8(16 * k + 8), status: odv.getInt16(16 * k + 10, true) })), comps, 'completions');
  checkSame(Array.from(s.bytes(0, SHADOW, nrEnts)), shadow, 'shadow after reap');
}

export function formatBlkifCase(c: BlkifCase): string {
  const rep = (_: string, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v);
  const lines = [`${c.k} abi=${c.abi === 0 ? 'x86_64' : 'x86_32'}`];
  for (const [key, v] of Object.entries(c)) {
    if (key === 'k' || key === 'abi') continue;
    if (key === 'stream' && Array.isArray(v)) v.forEach((x, i) => lines.push(`  stream[${i}] ${JSON.stringify(x, rep)}`));
    else lines.push(`  ${key}: ${JSON.stringify(v, rep)}`);
  }
  if (c.k === 'req') lines.push(`  bytes: ${Buffer.from(mutate(buildRequest(c.abi, c.base), c.mut)).toString('hex')}`);
  if (c.k === 'rsp') lines.push(`  bytes: ${Buffer.from(mutate(buildResponse(c.abi, c.base), c.mut)).toString('hex')}`);
  return lines.join('\n');
}

export const blkifTarget: FuzzTarget<BlkifCase> = {
  name: 'blkif',
  summary: 'random and mutated blkif request/response bytes (both ABIs) into both engines\' decoders and the codec; hostile reap streams',
  caseDeadlineMs: 2000,
  async setup(): Promise<FuzzHarness<BlkifCase>> {
    const pair = await createEnginePair(4);
    const codec = await loadCodec();
    const s = new Sides(pair);
    return {
      arbitrary: blkifCase,
      format: formatBlkifCase,
      coverage: () => [...blkifStats].sort().map(([k, v]) => `${k}: ${v}`).join('; '),
      runCase(c: BlkifCase): void {
        switch (c.k) {
          case 'req': return checkRequestBytes(s, c.abi, mutate(buildRequest(c.abi, c.base), c.mut), codec);
          case 'rawReq': return checkRequestBytes(s, c.abi, c.bytes, codec);
          case 'rsp': return checkResponseBytes(s, c.abi, mutate(buildResponse(c.abi, c.base), c.mut), codec);
          case 'indirect': return checkIndirect(s, c);
          case 'reap': return checkReap(s, c);
        }
      },
    };
  },
};
