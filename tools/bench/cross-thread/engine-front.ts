/**
 * Our front (the Wasm engine or its JS twin) driving one ring against the C
 * null backend, the same loop as test/peers/ring-front.c does on ring.h:
 * keep `depth` one-segment BLKIF_OP_READs in flight (ids < 32, sector =
 * sequence number) until `count` are answered; push with
 * pushRequestsAndCheckNotify (notify only when it says so); reap with
 * blkifReapResponses; out of work, poll up to `spinUs` without re-arming,
 * then finalCheckForResponses and sleep on the event port. Runs in a worker
 * thread (it blocks in read()).
 *
 * Every completion must carry an id this loop has in flight (its own
 * bitmap, independent of the engine's shadow), BLKIF_OP_READ and status 0;
 * the first that does not, or a reap the engine refuses, ends the run.
 */
import { Abi, type RingEngine } from '../../../src/ring/index.js';
import { PAGE_SIZE } from '../../../src/memory/layout.js';
import { EventPort, W } from './control.js';

const IDS = 32;
const SLOT_BYTES = 112; // x86_64 blkif request
const OP_READ = 0;

export interface FrontRun {
  depth: number;
  count: number;
  spinUs: number;
  backFifo: string;
  frontFifo: string;
}

export interface FrontResult {
  completed: number;
  elapsedNs: number;
  /** Pushes after which the ring said "notify the back". */
  notifies: number;
  pushes: number;
  /** Bytes written to wake the sleeping back. */
  wakes: number;
  /** Times this front blocked on its event port. */
  sleeps: number;
  /** Completions with an id not in flight, a wrong op or a non-OK status (the run stops at the first). */
  mismatches: number;
  /** Why the run stopped early, if it did. */
  error?: string;
}

/** Private tables in scratch (never in a shared page). */
export interface FrontTables {
  scratch: number;
  poolBase: number;
}

export function runEngineFront(engine: RingEngine, t: FrontTables, run: FrontRun): FrontResult {
  const STATE = t.scratch;
  const SHADOW = t.scratch + 0x100;
  const DESCS = t.scratch + 0x1000;
  const SEGS = t.scratch + 0x2000;
  const COMPS = t.scratch + 0x3000;
  const buf = engine.memory.buffer;
  const u32 = new Uint32Array(buf);
  const u8 = new Uint8Array(buf);
  const i16 = new Int16Array(buf);
  const ctl = new Int32Array(buf, t.poolBase + 1 * PAGE_SIZE, PAGE_SIZE / 4);
  const sring = t.poolBase;

  u8.fill(0, SHADOW, SHADOW + IDS);
  for (let id = 0; id < IDS; id++) {
    u32[(SEGS + 8 * id) >> 2] = 8 + id; // gref
    u32[(SEGS + 8 * id + 4) >> 2] = 7 << 8; // first_sect 0, last_sect 7
  }
  const back = new EventPort(ctl, W.BACK_PORT, run.backFifo);
  const me = new EventPort(ctl, W.FRONT_PORT, run.frontFifo);
  const r: FrontResult = { completed: 0, elapsedNs: 0, notifies: 0, pushes: 0, wakes: 0, sleeps: 0, mismatches: 0 };
  try {
    if (engine.frontRingInit(STATE, sring, 1, SLOT_BYTES) !== IDS) throw new Error('frontRingInit did not give a 32-slot ring');
    // The ring is initialised /before/ the back may attach.
    Atomics.store(ctl, W.FRONT_READY, 1);
    back.send();
    while (Atomics.load(ctl, W.BACK_READY) === 0) me.wait();
    me.sleeps = 0;
    back.wakes = 0; // count the run, not the handshake

    const inflight = new Uint8Array(IDS);
    const free: number[] = [];
    for (let id = IDS - 1; id >= 0; id--) free.push(id);
    const { depth, count } = run;
    const spinNs = run.spinUs * 1000;
    let busy = 0;
    let issued = 0;
    const t0 = process.hrtime.bigint();
    while (r.completed < count) {
      let k = 0;
      while (busy < depth && issued < count) {
        const id = free.pop()!;
        const w = (DESCS + 32 * k) >> 2;
        u32[w] = OP_READ; // op, flag, handle 0
        u32[w + 1] = 1; // nrSegments 1, status 0
        u32[w + 2] = id;
        u32[w + 3] = 0;
        u32[w + 4] = issued >>> 0;
        u32[w + 5] = Math.floor(issued / 0x100000000);
        u32[w + 6] = SEGS + 8 * id;
        u32[w + 7] = 0;
        inflight[id] = 1;
        busy++;
        issued++;
        k++;
      }
      if (k > 0) {
        const placed = engine.blkifWriteRequests(STATE, SHADOW, DESCS, k, Abi.X86_64);
        if (placed !== k) throw new Error(`blkifWriteRequests placed ${placed} of ${k}`);
        for (let i = 0; i < k; i++) {
          if (i16[(DESCS + 32 * i + 6) >> 1] !== 0) throw new Error(`request rejected: status ${i16[(DESCS + 32 * i + 6) >> 1]}`);
        }
        r.pushes++;
        if (engine.pushRequestsAndCheckNotify(STATE) !== 0) {
          r.notifies++;
          back.send();
        }
      }
      let got = engine.blkifReapResponses(STATE, SHADOW, COMPS, IDS, Abi.X86_64);
      if (got === 0 && spinNs > 0 && busy === depth) {
        const s0 = process.hrtime.bigint();
        for (let n = 0; got === 0; n++) {
          got = engine.blkifReapResponses(STATE, SHADOW, COMPS, IDS, Abi.X86_64);
          if ((n & 31) === 31 && Number(process.hrtime.bigint() - s0) > spinNs) break;
        }
      }
      if (got < 0) {
        r.mismatches++;
        throw new Error(`blkifReapResponses refused the ring (status ${got}): a duplicate, unknown or mistyped response`);
      }
      for (let i = 0; i < got; i++) {
        const c = COMPS + 16 * i;
        const id = u32[c >> 2]!;
        const hi = u32[(c >> 2) + 1]!;
        if (hi !== 0 || id >= IDS || inflight[id] !== 1 || u8[c + 8] !== OP_READ || i16[(c + 10) >> 1] !== 0) {
          r.mismatches++;
          throw new Error(`response id ${id} op ${u8[c + 8]} status ${i16[(c + 10) >> 1]} does not match a request in flight`);
        }
        inflight[id] = 0;
        free.push(id);
        busy--;
        r.completed++;
      }
      if (got > 0 || r.completed === count) continue;
      if (busy < depth && issued < count) continue;
      if (engine.finalCheckForResponses(STATE) !== 0) continue;
      me.wait();
    }
    r.elapsedNs = Number(process.hrtime.bigint() - t0);
    r.wakes = back.wakes;
    r.sleeps = me.sleeps;
    // Counted above: the stop event is not part of the run.
    Atomics.store(ctl, W.STOP, 1);
    back.send();
  } catch (err) {
    r.error = (err as Error).message;
    r.wakes = back.wakes;
    r.sleeps = me.sleeps;
  } finally {
    back.close();
    me.close();
  }
  return r;
}
