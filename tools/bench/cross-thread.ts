/**
 * The cross-thread family: one blkif ring with nothing behind it. A C null
 * backend on Xen's ring.h (test/peers/null-backend.c) runs in its own
 * process and answers every request with BLKIF_RSP_OKAY; three fronts drive
 * the same ring against it, one at a time:
 *
 *   c     test/peers/ring-front.c on ring.h, in its own process (the ceiling)
 *   wasm  our Wasm engine (assembly/, src/wasm), in a worker thread
 *   js    its TypeScript twin (src/ring/js), in a worker thread
 *
 * ```
 *  this process (main)          pool file (memfd, 2 pages)        null-backend process
 *  Wasm memory pool  <==mmap==> frame 0 ring | frame 1 control <==mmap==> BACK_RING_INIT ...
 *   worker: wasm | js front         ^ ring-front process (front c)
 *  events: pending/sleeping words in the control page + one FIFO per direction
 *          (cross-thread/control.ts, test/peers/xring.h)
 * ```
 * Each run: fresh backend, handshake, `count` one-segment reads kept
 * `depth` deep (depth 1, 8, 32 on the one-page, 32-slot ring), notifications
 * only where RING_PUSH_*_AND_CHECK_NOTIFY says so, RING_FINAL_CHECK_* before
 * sleeping. Reported per (front, depth), from the median of the rounds:
 * requests/s, the ratio to the C front (median of per-round ratios; rounds
 * alternate the order of the fronts), notifications per request in each
 * direction, and wakes per request (the syscalls actually made because the
 * peer slept). The Wasm and JS workers get one untimed warm-up run first.
 */
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { IoError, ProtocolError, TimeoutError } from '../../src/errors.js';
import { createSharedLayout, PAGE_SIZE, type SharedLayout } from '../../src/memory/layout.js';
import { createPoolFile } from '../../src/native/pool-file.js';
import { compiledModule } from '../../src/util/compiled.js';
import type { Output } from '../command.js';
import { abortRun, CONTROL_FRAME, POOL_PAGES } from './cross-thread/control.js';
import type { FrontResult, FrontRun } from './cross-thread/engine-front.js';
import { buildCPeers, runCPeer, type CProcess } from './cross-thread/peers.js';
import { formatTable } from './e2e.js';
import type { Family, FamilyReport } from './family.js';
import { barChart } from './svg.js';

export type Front = 'c' | 'wasm' | 'js';
export const FRONTS: readonly Front[] = ['c', 'wasm', 'js'];
export const DEPTHS: readonly number[] = [1, 8, 32];

export interface BackResult {
  answered: number;
  notifies: number;
  pushes: number;
  wakes: number;
  sleeps: number;
}

export interface CrossThreadOptions {
  rounds: number;
  /** Requests per run, by depth. */
  count: (depth: number) => number;
  /** Untimed warm-up requests for the wasm and js workers. */
  warmup: number;
  /** µs each side polls the ring before re-arming and sleeping (0: sleep at once). */
  spinUs: number;
}

export const CT_QUICK: CrossThreadOptions = { rounds: 1, count: (d) => (d === 1 ? 2_000 : 20_000), warmup: 5_000, spinUs: 0 };
export const CT_FULL: CrossThreadOptions = { rounds: 5, count: (d) => (d === 1 ? 30_000 : 300_000), warmup: 100_000, spinUs: 0 };

export interface CrossThreadEntry {
  front: Front;
  depth: number;
  requests: number;
  seconds: number;
  requestsPerSec: number;
  /** This front's rate ÷ the C front's in the same round (median over rounds). */
  ofC: number;
  /** Front pushes that had to notify the back, per request. */
  notifyToBackPerRequest: number;
  /** Back pushes that had to notify the front, per request. */
  notifyToFrontPerRequest: number;
  notificationsPerRequest: number;
  /** FIFO writes (the peer was asleep), both directions, per request. */
  wakesPerRequest: number;
  /** The raw counters of the median run. */
  frontCounters: FrontResult;
  backCounters: BackResult;
}

export interface Run {
  front: FrontResult;
  back: BackResult;
}

/** Where a family run keeps its shared state. */
interface Rig {
  layout: SharedLayout;
  poolPath: string;
  ctl: Int32Array;
  dir: string;
  backFifo: string;
  frontFifo: string;
  workers: Map<Front, Worker>;
  /** Unmap and close the pool file, remove the FIFOs. */
  release(): void;
}

function openRig(): Rig {
  const layout = createSharedLayout({ scratchBytes: 1 << 16, poolPages: POOL_PAGES });
  const pool = createPoolFile(layout, { name: 'xenpv-cross-thread' });
  const dir = mkdtempSync(join(os.tmpdir(), 'xp-xring-'));
  const backFifo = join(dir, 'back.fifo');
  const frontFifo = join(dir, 'front.fifo');
  try {
    execFileSync('mkfifo', ['-m', '600', backFifo, frontFifo]);
  } catch (err) {
    pool.close();
    rmSync(dir, { recursive: true, force: true });
    throw new IoError(`mkfifo failed (coreutils): ${(err as Error).message}`, { cause: err });
  }
  const ctl = new Int32Array(layout.memory.buffer, layout.poolBase + CONTROL_FRAME * PAGE_SIZE, PAGE_SIZE / 4);
  const release = (): void => {
    pool.close({ keepContents: false });
    rmSync(dir, { recursive: true, force: true });
  };
  return { layout, poolPath: pool.path, ctl, dir, backFifo, frontFifo, workers: new Map(), release };
}

async function closeRig(rig: Rig): Promise<void> {
  await Promise.all([...rig.workers.values()].map((w) => w.terminate()));
  rig.release();
}

function worker(rig: Rig, kind: 'wasm' | 'js'): Worker {
  let w = rig.workers.get(kind);
  if (!w) {
    const { memory, scratchBase, poolBase } = rig.layout;
    const fresh = new Worker(compiledModule(import.meta.url, '../tools/bench/cross-thread/front-worker.js'), {
      workerData: { kind, memory, scratch: scratchBase, poolBase },
    });
    // Between runs nobody listens: a worker that fails then is retired, and
    // the next run starts a fresh one.
    fresh.on('error', () => { if (rig.workers.get(kind) === fresh) rig.workers.delete(kind); });
    rig.workers.set(kind, fresh);
    w = fresh;
  }
  return w;
}

/**
 * One front session on the kind's worker. kill() retires the worker (a
 * late answer must never be taken for the next run's): terminate takes
 * effect once its blocking read returns, which abortRun's byte ensures.
 */
function workerRun(rig: Rig, kind: 'wasm' | 'js', run: FrontRun): CProcess<FrontResult> {
  const w = worker(rig, kind);
  const done = new Promise<FrontResult>((resolve, reject) => {
    const cleanup = (): void => {
      w.off('message', onMessage);
      w.off('error', onError);
      w.off('exit', onExit);
    };
    const onMessage = (r: FrontResult): void => { cleanup(); resolve(r); };
    const onError = (err: Error): void => { cleanup(); reject(err); };
    const onExit = (code: number): void => { cleanup(); reject(new IoError(`the ${kind} front worker exited (code ${code}) before answering`)); };
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
    w.postMessage(run);
  });
  return {
    done,
    kill: () => {
      if (rig.workers.get(kind) === w) rig.workers.delete(kind);
      void w.terminate();
    },
  };
}

/** How one session runs (defaults: no spin, no fault, 20 s + 0.1 ms per request before it counts as stalled). */
export interface SessionOptions {
  spinUs?: number;
  /** Make the null backend answer request number `at` twice, or never (tests of the checks). */
  fault?: { kind: 'duplicate' | 'drop'; at: number };
  timeoutMs?: number;
}

/** One session: fresh backend, one front, `count` requests `depth` deep. */
async function runOne(rig: Rig, front: Front, depth: number, count: number, so: SessionOptions): Promise<Run> {
  const spinUs = so.spinUs ?? 0;
  const { layout } = rig;
  // A fresh ring and control page: nobody is attached between runs.
  new Uint8Array(layout.memory.buffer, layout.poolBase, POOL_PAGES * PAGE_SIZE).fill(0);
  const common = ['--pool', rig.poolPath, '--pool-pages', String(POOL_PAGES), '--back-fifo', rig.backFifo, '--front-fifo', rig.frontFifo, '--spin-us', String(spinUs)];
  const faultArgs = so.fault ? ['--fault', so.fault.kind, '--fault-at', String(so.fault.at)] : [];
  const back = runCPeer<BackResult>('null-backend', [...common, ...faultArgs]);
  const fr: CProcess<FrontResult> = front === 'c'
    ? runCPeer<FrontResult>('ring-front', [...common, '--depth', String(depth), '--count', String(count)])
    : workerRun(rig, front, { depth, count, spinUs, backFifo: rig.backFifo, frontFifo: rig.frontFifo });
  const limitMs = so.timeoutMs ?? 20_000 + count / 10; // 10 k requests/s would be a stall on any machine
  let timedOut = false;
  const stopAll = (): void => {
    abortRun(rig.ctl, [rig.backFifo, rig.frontFifo]);
    back.kill();
    fr.kill();
  };
  const timer = setTimeout(() => {
    timedOut = true;
    stopAll();
  }, limitMs);
  // A front that gave up never sets `stop`: end the backend too, at once;
  // and a backend that died will answer nothing more: end the front.
  fr.done.then((r) => { if (r.error !== undefined) stopAll(); }, stopAll);
  back.done.then(undefined, stopAll);
  const [f, b] = await Promise.allSettled([fr.done, back.done]);
  clearTimeout(timer);
  const what = `cross-thread ${front} front, depth ${depth}`;
  // The front's own verdict first: when it gave up, the backend was killed.
  if (f.status === 'fulfilled' && f.value.error !== undefined && !timedOut) throw new ProtocolError(`${what}: ${f.value.error}`);
  if (f.status === 'rejected' || b.status === 'rejected') {
    const why = [f, b].filter((s) => s.status === 'rejected').map((s) => ((s as PromiseRejectedResult).reason as Error).message);
    if (timedOut) throw new TimeoutError(`${what}: no progress after ${limitMs} ms (${why.join('; ')})`);
    throw new IoError(`${what}: ${why.join('; ')}`);
  }
  if (timedOut) throw new TimeoutError(`${what}: no progress after ${limitMs} ms (${f.value.completed} of ${count} answered)`);
  if (f.value.error !== undefined) throw new ProtocolError(`${what}: ${f.value.error}`);
  if (f.value.completed !== count || b.value.answered !== count) {
    throw new ProtocolError(`${what}: the front completed ${f.value.completed} and the back answered ${b.value.answered} of ${count}`);
  }
  return { front: f.value, back: b.value };
}

/** One session on a rig of its own: the front's and the backend's counters. */
export async function runSession(front: Front, depth: number, count: number, so: SessionOptions = {}): Promise<Run> {
  buildCPeers();
  const rig = openRig();
  try {
    return await runOne(rig, front, depth, count, so);
  } finally {
    await closeRig(rig);
  }
}

const rate = (r: Run): number => r.front.completed / (r.front.elapsedNs / 1e9);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export async function runCrossThread(opts: CrossThreadOptions, out: Output, signal: AbortSignal): Promise<CrossThreadEntry[]> {
  buildCPeers();
  const rig = openRig();
  try {
    const total = 2 + DEPTHS.length * opts.rounds * FRONTS.length;
    let step = 0;
    for (const kind of ['wasm', 'js'] as const) {
      out.progress(`cross-thread warm-up ${kind}`, step++, total);
      await runOne(rig, kind, 32, opts.warmup, opts);
    }
    const results: CrossThreadEntry[] = [];
    for (const depth of DEPTHS) {
      const count = opts.count(depth);
      const runs = new Map<Front, Run[]>(FRONTS.map((f) => [f, []]));
      const ofC = new Map<Front, number[]>(FRONTS.map((f) => [f, []]));
      for (let round = 0; round < opts.rounds; round++) {
        // Alternate the order so drift on a shared machine hits all alike.
        const order = round % 2 === 0 ? FRONTS : [...FRONTS].reverse();
        const got = new Map<Front, Run>();
        for (const front of order) {
          signal.throwIfAborted();
          out.progress(`cross-thread ${front} depth ${depth} round ${round + 1}/${opts.rounds}`, step++, total);
          got.set(front, await runOne(rig, front, depth, count, opts));
        }
        for (const front of FRONTS) {
          runs.get(front)!.push(got.get(front)!);
          ofC.get(front)!.push(rate(got.get(front)!) / rate(got.get('c')!));
        }
      }
      for (const front of FRONTS) {
        const rs = [...runs.get(front)!].sort((a, b) => rate(a) - rate(b));
        const m = rs[rs.length >> 1]!;
        results.push({
          front,
          depth,
          requests: count,
          seconds: m.front.elapsedNs / 1e9,
          requestsPerSec: rate(m),
          ofC: median(ofC.get(front)!),
          notifyToBackPerRequest: m.front.notifies / count,
          notifyToFrontPerRequest: m.back.notifies / count,
          notificationsPerRequest: (m.front.notifies + m.back.notifies) / count,
          wakesPerRequest: (m.front.wakes + m.back.wakes) / count,
          frontCounters: m.front,
          backCounters: m.back,
        });
      }
    }
    out.progress('cross-thread', total, total);
    return results;
  } finally {
    await closeRig(rig);
  }
}

export function crossThreadTable(results: readonly CrossThreadEntry[]): string {
  const head = ['front', 'depth', 'requests/s', 'of C', 'notif/req to back', 'notif/req to front', 'wakes/req', 'requests'];
  const body = results.map((r) => [
    r.front,
    String(r.depth),
    Math.round(r.requestsPerSec).toLocaleString('en-US'),
    `${(r.ofC * 100).toFixed(0)} %`,
    r.notifyToBackPerRequest.toFixed(3),
    r.notifyToFrontPerRequest.toFixed(3),
    r.wakesPerRequest.toFixed(3),
    r.requests.toLocaleString('en-US'),
  ]);
  return formatTable(head, body, 1);
}

export function crossThreadSvg(results: readonly CrossThreadEntry[]): string {
  const rows = DEPTHS.map((d) => ({
    name: `depth ${d}`,
    values: results.filter((r) => r.depth === d).map((r) => ({ engine: r.front, value: r.requestsPerSec })),
  }));
  const title = `xenpv ring against a C null backend, one queue (${process.version}, ${os.cpus()[0]?.model ?? 'unknown'})`;
  return barChart(title, rows, { unit: 'req/s', axis: 'requests/s per queue (higher is better)' });
}

export const crossThread: Family = {
  name: 'cross-thread',
  help: 'one ring against a C null backend in another process; fronts: Wasm, JS, C on ring.h (req/s, notifications/req)',
  svgFile: 'bench-cross-thread.svg',
  async run({ quick, out, signal }): Promise<FamilyReport> {
    const results = await runCrossThread(quick ? CT_QUICK : CT_FULL, out, signal);
    return { results, table: crossThreadTable(results), svg: crossThreadSvg(results) };
  },
};
