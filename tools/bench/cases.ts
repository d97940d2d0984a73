/**
 * Benchmark cases. Each case prepares identical tables in its engine's own
 * memory (same addresses on both sides), then `run(iterations)` performs the
 * same engine calls whatever the engine: the work per op is identical.
 *
 * - codec encode/decode: one blkifEncodeRequest / blkifDecodeRequest per op.
 * - round trip at batch B: per iteration the front writes B requests
 *   (11 segments each) and pushes, the back takes B, writes B responses and
 *   pushes, the front reaps B and re-arms; one op = one request carried
 *   through the whole cycle (so ns/op = iteration time / B).
 */
import { Abi, type RingEngine } from '../../src/ring/index.js';

const T = 65536; // tables (scratch)
const FRONT = T;
const BACK = T + 0x20;
const SHADOW = T + 0x100;
const DESCS = T + 0x1000;
const SEGS = T + 0x2000; // 32 · 88 bytes of host segments
const TAKE = T + 0x3000;
const TAKE_SEGS = T + 0x4000;
const RSPS = T + 0x5000;
const COMPS = T + 0x6000;
const SLOT = T + 0x7000;
const OUT_DESC = T + 0x7100;
const OUT_SEGS = T + 0x7200;

/**
 * A timing loop of its own for each engine. V8 shares type feedback between
 * closures of one function literal, so a single loop timing both engines
 * would see two engine classes at every call site (polymorphic calls, no
 * inlining) and penalise whichever runs second. Compiling the loop per
 * engine keeps every call site monomorphic: each engine is timed as a real
 * caller that only ever uses it would run it.
 */
function loop(bindings: Record<string, unknown>, body: string): (n: number) => void {
  const names = Object.keys(bindings);
  const make = new Function(...names, `return function run(n) { for (let i = 0; i < n; i++) { ${body} } };`);
  return make(...names.map((k) => bindings[k])) as (n: number) => void;
}

export interface BenchCase {
  name: string;
  /** Requests (or messages) handled per iteration. */
  opsPerIteration: number;
  /** Build tables in the engine's memory; returns the loop to time. */
  prepare(engine: RingEngine, poolBase: number): (iterations: number) => void;
}

function writeReadDescriptor(dv: DataView, at: number, id: number, nrSegs: number, segs: number): void {
  dv.setUint8(at, id % 2); // read / write
  dv.setUint8(at + 1, 0);
  dv.setUint16(at + 2, 0x0301, true);
  dv.setUint16(at + 4, nrSegs, true);
  dv.setInt16(at + 6, 0, true);
  dv.setUint32(at + 8, id, true);
  dv.setUint32(at + 12, 0, true);
  dv.setUint32(at + 16, 0x1000 + id * 88, true);
  dv.setUint32(at + 20, 1, true);
  dv.setUint32(at + 24, segs, true);
  dv.setUint32(at + 28, 0, true);
  for (let k = 0; k < nrSegs; k++) {
    dv.setUint32(segs + 8 * k, 0x100 + id * 16 + k, true);
    dv.setUint8(segs + 8 * k + 4, 0);
    dv.setUint8(segs + 8 * k + 5, 7);
  }
}

function codecCase(kind: 'encode' | 'decode', nrSegs: number): BenchCase {
  return {
    name: `codec ${kind} ${nrSegs} seg`,
    opsPerIteration: 1,
    prepare(engine) {
      const dv = new DataView(engine.memory.buffer);
      writeReadDescriptor(dv, DESCS, 1, nrSegs, SEGS);
      if (engine.blkifEncodeRequest(DESCS, SLOT, Abi.X86_64) !== 0) throw new Error('bench: encode failed');
      const b = { e: engine, DESCS, SLOT, OUT_DESC, OUT_SEGS, ABI: Abi.X86_64 };
      if (kind === 'encode') return loop(b, 'e.blkifEncodeRequest(DESCS, SLOT, ABI);');
      if (engine.blkifDecodeRequest(SLOT, OUT_DESC, OUT_SEGS, Abi.X86_64) !== 0) throw new Error('bench: decode failed');
      return loop(b, 'e.blkifDecodeRequest(SLOT, OUT_DESC, OUT_SEGS, ABI);');
    },
  };
}

function roundTripCase(batch: number): BenchCase {
  return {
    name: `round trip batch ${batch} (11 seg)`,
    opsPerIteration: batch,
    prepare(engine, poolBase) {
      const dv = new DataView(engine.memory.buffer);
      const u8 = new Uint8Array(engine.memory.buffer);
      // One-page x86_64 ring: 32 slots, enough for the largest batch.
      if (engine.frontRingInit(FRONT, poolBase, 1, 112) !== 32) throw new Error('bench: ring init failed');
      if (engine.backRingAttach(BACK, poolBase, 1, 112) !== 32) throw new Error('bench: ring attach failed');
      u8.fill(0, SHADOW, SHADOW + 32);
      for (let i = 0; i < batch; i++) {
        writeReadDescriptor(dv, DESCS + 32 * i, i, 11, SEGS + 88 * i);
        const r = RSPS + 16 * i;
        dv.setUint32(r, i, true);
        dv.setUint32(r + 4, 0, true);
        dv.setUint32(r + 8, i % 2, true); // op, status 0
        dv.setUint32(r + 12, 0, true);
      }
      const cycle = `
        e.blkifWriteRequests(FRONT, SHADOW, DESCS, B, ABI);
        e.pushRequestsAndCheckNotify(FRONT);
        e.blkifTakeRequests(BACK, TAKE, TAKE_SEGS, B, ABI);
        e.blkifWriteResponses(BACK, RSPS, B, ABI);
        e.pushResponsesAndCheckNotify(BACK);
        e.blkifReapResponses(FRONT, SHADOW, COMPS, B, ABI);
        e.finalCheckForResponses(FRONT);`;
      const run = loop({ e: engine, FRONT, BACK, SHADOW, DESCS, TAKE, TAKE_SEGS, RSPS, COMPS, B: batch, ABI: Abi.X86_64 }, cycle);
      // Check a cycle really carries `batch` requests before timing it.
      const cons = dv.getUint32(FRONT + 16, true);
      run(1);
      if (dv.getUint32(FRONT + 16, true) - cons !== batch) throw new Error(`bench: ${engine.kind} round trip did not reap ${batch}`);
      for (let i = 0; i < batch; i++) {
        if (dv.getInt16(TAKE + 32 * i + 6, true) !== 0) throw new Error('bench: back rejected a request');
      }
      return run;
    },
  };
}

export const CASES: BenchCase[] = [
  codecCase('encode', 1),
  codecCase('encode', 11),
  codecCase('decode', 1),
  codecCase('decode', 11),
  roundTripCase(1),
  roundTripCase(8),
  roundTripCase(32),
];
