/**
 * The e2e family: the demo's device workloads on the simulation, once per
 * engine, next to plain fs on the same kind of file, in one run:
 *
 *   1 MiB sequential write, 1 MiB sequential read,
 *   4 KiB random write, 4 KiB random read,     all at queue depth 32.
 *
 * Contenders: `fs` (fs/promises FileHandle on the wasm device's backing
 * file, as the demo's baseline), `wasm` (blkfront and blkback both on the
 * Wasm engine), `js` (both on the TypeScript twin), and `wasm-copy` (the
 * Wasm engine with plain Uint8Array buffers). `wasm` and `js` do their I/O
 * through the device's zero-copy I/O buffers (`allocateBuffer`: pages
 * granted to the backend, so blkfront copies nothing); `wasm-copy` shows
 * what the same device costs when callers bring their own memory (each
 * byte bounced through a persistent-grant page). Each contender has its
 * own simulation and file; rounds alternate the contenders (fs, wasm, js,
 * then js, wasm, fs, ...) so drift on a shared machine hits all alike, and
 * the median round is kept per (workload, contender); the ratio to fs is
 * the median of the per-round ratios (each measured side by side), so it
 * need not equal the quotient of the two median MB/s.
 *
 * Per phase: MB/s (10^6 bytes/s), IOPS, CPU µs per operation
 * (process.cpuUsage: every thread of the process, libuv's pool included),
 * how busy the front (main) and back (worker) event loops were
 * (performance.eventLoopUtilization, 0..1), and the ring's event-channel
 * notifications per ring request (sent + received, from blkfront stats()),
 * and the bytes blkfront copied per byte delivered (0 with I/O buffers; the
 * backend's pread/pwrite into the granted page is the one copy, as fs's).
 * Buffers are allocated before timing, one per lane, and nothing is
 * verified inside the timed loop (a check runs after each read phase).
 */
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { Simulation, type SimDisk } from '../../src/sim/simulation.js';
import type { Blkfront } from '../../src/blkfront/blkfront.js';
import type { Output } from '../command.js';
import type { Family, FamilyReport } from './family.js';
import { barChart } from './svg.js';

export const QD = 32;
const MiB = 1 << 20;

export type Contender = 'fs' | 'wasm' | 'js' | 'wasm-copy';
export const CONTENDERS: readonly Contender[] = ['fs', 'wasm', 'js', 'wasm-copy'];

/** Engine and buffers of each simulated contender. */
const DEVICES: Record<Exclude<Contender, 'fs'>, { engine: 'wasm' | 'js'; ioBuffers: boolean }> = {
  wasm: { engine: 'wasm', ioBuffers: true },
  js: { engine: 'js', ioBuffers: true },
  'wasm-copy': { engine: 'wasm', ioBuffers: false },
};

/**
 * Pool pages of each simulation: 32 lanes of 1 MiB I/O buffers (8,192
 * pages) plus the copy path's persistent pages fit in one domain's share.
 */
const POOL_PAGES = 65536;

export interface Workload {
  name: string;
  write: boolean;
  random: boolean;
  blockBytes: number;
}

export const WORKLOADS: readonly Workload[] = [
  { name: '1 MiB seq write', write: true, random: false, blockBytes: MiB },
  { name: '1 MiB seq read', write: false, random: false, blockBytes: MiB },
  { name: '4 KiB rand write', write: true, random: true, blockBytes: 4096 },
  { name: '4 KiB rand read', write: false, random: true, blockBytes: 4096 },
];

export interface E2eEntry {
  workload: string;
  contender: Contender;
  ops: number;
  bytes: number;
  seconds: number;
  MBps: number;
  iops: number;
  /** process.cpuUsage (user + system, all threads) per operation, µs. */
  cpuUsPerOp: number;
  /** Front (main thread) event-loop utilisation, 0..1. */
  frontBusy: number;
  /** Back (backend worker) event-loop utilisation, 0..1; null for fs. */
  backBusy: number | null;
  /** Ring requests and notifications (sent + received) per ring request; null for fs. */
  ringRequests: number | null;
  notificationsPerRequest: number | null;
  /** Bytes blkfront copied per byte delivered (0: zero copy); null for fs. */
  copiedPerByte: number | null;
  /** The device's I/O buffers were used (zero copy); false for fs and wasm-copy. */
  ioBuffers: boolean;
  /** This contender's MB/s ÷ fs MB/s in the same round (median over rounds). */
  ofFs: number;
  /** Read phases: the data read back matched what was written (checked after the phase). */
  verified: boolean;
}

export interface E2eOptions {
  sizeMiB: number;
  randomOps: number;
  rounds: number;
}

export const E2E_FULL: E2eOptions = { sizeMiB: 256, randomOps: 20000, rounds: 5 };
export const E2E_QUICK: E2eOptions = { sizeMiB: 16, randomOps: 1000, rounds: 1 };

/** Read and write whole blocks at byte offsets: what each contender offers. */
interface Target {
  read(offset: number, buf: Uint8Array): Promise<void>;
  write(offset: number, buf: Uint8Array): Promise<void>;
  /** Memory for the lanes' buffers (I/O buffers where the contender uses them). */
  alloc(bytes: number): Promise<Uint8Array>;
  ioBuffers: boolean;
  /** Backend thread ELU (simulated devices). */
  backElu?(prev?: EventLoopUtilization): EventLoopUtilization;
  dev?: Blkfront;
}

function fsTarget(h: FileHandle): Target {
  return {
    async read(off, buf) {
      const { bytesRead } = await h.read(buf, 0, buf.byteLength, off);
      if (bytesRead !== buf.byteLength) throw new Error(`fs: short read at ${off}`);
    },
    async write(off, buf) {
      const { bytesWritten } = await h.write(buf, 0, buf.byteLength, off);
      if (bytesWritten !== buf.byteLength) throw new Error(`fs: short write at ${off}`);
    },
    alloc: async (bytes) => new Uint8Array(bytes),
    ioBuffers: false,
  };
}

function devTarget(sim: Simulation, disk: SimDisk, dev: Blkfront, ioBuffers: boolean): Target {
  return {
    read: (off, buf) => dev.read(BigInt(off / 512), [buf]),
    write: (off, buf) => dev.write(BigInt(off / 512), [buf]),
    alloc: (bytes) => (ioBuffers ? dev.allocateBuffer(bytes) : Promise.resolve(new Uint8Array(bytes))),
    ioBuffers,
    backElu: (prev) => sim.backendEventLoopUtilization(disk, prev),
    dev,
  };
}

/**
 * What every write carries: one pseudo-random 4 KiB page, repeated, so any
 * block of the file, whichever workload wrote it last, reads back as it.
 * (A data check, not a placement check: the demo verifies placement.)
 */
function pattern(bytes: number): Uint8Array {
  const page = new Uint32Array(1024);
  let x = 0x12345678;
  for (let i = 0; i < page.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    page[i] = x >>> 0;
  }
  const b = new Uint8Array(bytes);
  for (let at = 0; at < bytes; at += 4096) b.set(new Uint8Array(page.buffer), at);
  return b;
}

/** Offsets of each operation: sequential over the file, or a fixed pseudo-random set of blocks. */
function offsets(w: Workload, sizeBytes: number, randomOps: number): number[] {
  const blocks = sizeBytes / w.blockBytes;
  if (!w.random) return Array.from({ length: blocks }, (_, i) => i * w.blockBytes);
  let s = w.write ? 0x9e3779b9 : 12345;
  return Array.from({ length: randomOps }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s % blocks) * w.blockBytes;
  });
}

/** Each lane's buffer and the write pattern, in the target's own memory: allocated once per block size, before timing. */
interface Buffers {
  lanes: Uint8Array[];
  fill: Uint8Array;
}

async function buffersFor(t: Target, blockBytes: number, cache: Map<number, Buffers>): Promise<Buffers> {
  let b = cache.get(blockBytes);
  if (!b) {
    const fill = await t.alloc(blockBytes);
    fill.set(pattern(blockBytes));
    const lanes: Uint8Array[] = [];
    for (let i = 0; i < QD; i++) lanes.push(await t.alloc(blockBytes));
    b = { lanes, fill };
    cache.set(blockBytes, b);
  }
  return b;
}

async function runPhase(t: Target, w: Workload, offs: number[], bufs: Buffers, signal: AbortSignal): Promise<{ seconds: number; cpuUs: number; frontBusy: number; backBusy: number | null; verified: boolean }> {
  const fill = bufs.fill;
  const lanes = bufs.lanes.slice(0, Math.min(QD, offs.length)).map((b) => (w.write ? fill : b));
  if (!w.write) for (const b of lanes) b.fill(0);
  let next = 0;
  const lane = async (buf: Uint8Array): Promise<void> => {
    while (next < offs.length) {
      signal.throwIfAborted();
      const off = offs[next++]!;
      if (w.write) await t.write(off, buf);
      else await t.read(off, buf);
    }
  };
  const elu0 = performance.eventLoopUtilization();
  const back0 = t.backElu?.();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(lanes.map(lane));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const frontBusy = performance.eventLoopUtilization(elu0).utilization;
  const backBusy = back0 && t.backElu ? t.backElu(back0).utilization : null;
  // Every block of the file was written with `fill` first, so every read must return it.
  const verified = w.write || lanes.every((b) => Buffer.compare(b, fill) === 0);
  return { seconds, cpuUs: cpu.user + cpu.system, frontBusy, backBusy, verified };
}

interface Rig {
  contender: Contender;
  target: Target;
  buffers: Map<number, Buffers>;
  close(): Promise<void>;
}

async function rig(contender: Exclude<Contender, 'fs'>, dir: string, sizeBytes: number): Promise<Rig> {
  const { engine, ioBuffers } = DEVICES[contender];
  const sim = await Simulation.start({ poolPages: POOL_PAGES });
  try {
    const disk = await sim.createDisk({ sizeBytes, path: join(dir, `${contender}.img`), backendEngine: engine });
    const dev = await sim.attach(disk, { engine, maxRingPageOrder: 2 });
    return { contender, target: devTarget(sim, disk, dev, ioBuffers), buffers: new Map(), close: () => sim.stop() };
  } catch (err) {
    await sim.stop();
    throw err;
  }
}

/** Runs the family; entries per (workload, contender), the median of `rounds` rounds by MB/s. */
export async function runE2e(opts: E2eOptions, out: Output, signal: AbortSignal): Promise<E2eEntry[]> {
  const dir = await mkdtemp(join(tmpdir(), 'xenpv-bench-e2e-'));
  const rigs: Rig[] = [];
  try {
    const sizeBytes = opts.sizeMiB * MiB;
    for (const c of ['wasm', 'js', 'wasm-copy'] as const) rigs.push(await rig(c, dir, sizeBytes));
    // Plain fs works on the wasm device's own backing file (the demo's baseline).
    const fh = await open(join(dir, 'wasm.img'), 'r+');
    rigs.unshift({ contender: 'fs', target: fsTarget(fh), buffers: new Map(), close: () => fh.close() });
    // Warm-up, untimed: every block of every file written once (the files
    // start sparse; the persistent grant pools fill; the JIT warms up).
    const seq = WORKLOADS.find((w) => w.write && !w.random)!;
    for (const r of rigs) await runPhase(r.target, seq, offsets(seq, sizeBytes, 0), await buffersFor(r.target, seq.blockBytes, r.buffers), signal);
    const samples = new Map<string, E2eEntry[]>();
    const total = opts.rounds * WORKLOADS.length * rigs.length;
    let step = 0;
    for (let round = 0; round < opts.rounds; round++) {
      const order = round % 2 === 0 ? rigs : [...rigs].reverse();
      for (const w of WORKLOADS) {
        const offs = offsets(w, sizeBytes, opts.randomOps);
        const got: E2eEntry[] = [];
        for (const r of order) {
          out.progress(`e2e round ${round + 1}/${opts.rounds}: ${w.name} (${r.contender})`, step++, total);
          got.push(await measureOne(r, w, offs, await buffersFor(r.target, w.blockBytes, r.buffers), signal));
        }
        const fsRate = got.find((e) => e.contender === 'fs')!.MBps;
        for (const e of got) {
          e.ofFs = e.MBps / fsRate;
          const key = `${w.name}\0${e.contender}`;
          samples.set(key, [...(samples.get(key) ?? []), e]);
        }
      }
    }
    out.progress('e2e', total, total);
    const results: E2eEntry[] = [];
    for (const w of WORKLOADS) {
      for (const c of CONTENDERS) {
        const all = samples.get(`${w.name}\0${c}`)!;
        const mid = <T>(xs: T[], key: (x: T) => number): T => [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)]!;
        // The median round by MB/s; its ratio to fs is the median of the per-round ratios.
        results.push({ ...mid(all, (e) => e.MBps), ofFs: mid(all, (e) => e.ofFs).ofFs });
      }
    }
    return results;
  } finally {
    for (const r of rigs) await r.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

async function measureOne(r: Rig, w: Workload, offs: number[], bufs: Buffers, signal: AbortSignal): Promise<E2eEntry> {
  const before = r.target.dev?.stats();
  const p = await runPhase(r.target, w, offs, bufs, signal);
  const after = r.target.dev?.stats();
  let ringRequests: number | null = null;
  let notificationsPerRequest: number | null = null;
  let copiedPerByte: number | null = null;
  if (before && after) {
    ringRequests = after.requests - before.requests;
    const notes = after.notificationsSent + after.notificationsReceived - before.notificationsSent - before.notificationsReceived;
    notificationsPerRequest = ringRequests > 0 ? notes / ringRequests : 0;
    const moved = after.bytesRead + after.bytesWritten - before.bytesRead - before.bytesWritten;
    copiedPerByte = moved > 0 ? (after.bytesCopied - before.bytesCopied) / moved : 0;
    if (after.errors !== before.errors) throw new Error(`${r.contender}: ${after.errors - before.errors} ring request(s) failed during ${w.name}`);
  }
  const bytes = offs.length * w.blockBytes;
  return {
    workload: w.name,
    contender: r.contender,
    ops: offs.length,
    bytes,
    seconds: p.seconds,
    MBps: bytes / 1e6 / p.seconds,
    iops: offs.length / p.seconds,
    cpuUsPerOp: p.cpuUs / offs.length,
    frontBusy: p.frontBusy,
    backBusy: p.backBusy,
    ringRequests,
    notificationsPerRequest,
    copiedPerByte,
    ioBuffers: r.target.ioBuffers,
    ofFs: 1,
    verified: p.verified,
  };
}

export function e2eTable(results: readonly E2eEntry[]): string {
  const head = ['workload', 'who', 'buffers', 'MB/s', 'IOPS', '% of fs', 'CPU µs/op', 'wasm/js CPU', 'front busy', 'back busy', 'notif/req', 'copied B/B'];
  const cpuOf = (w: string, c: Contender): number => results.find((r) => r.workload === w && r.contender === c)?.cpuUsPerOp ?? NaN;
  const body = results.map((r) => [
    r.workload,
    r.contender,
    r.contender === 'fs' ? 'plain' : r.ioBuffers ? 'io-buffer' : 'plain',
    r.MBps.toFixed(1),
    Math.round(r.iops).toLocaleString('en-US'),
    `${(100 * r.ofFs).toFixed(0)}%`,
    r.cpuUsPerOp.toFixed(1),
    r.contender === 'wasm' ? `${(cpuOf(r.workload, 'wasm') / cpuOf(r.workload, 'js')).toFixed(2)}` : '',
    `${(100 * r.frontBusy).toFixed(0)}%`,
    r.backBusy === null ? '' : `${(100 * r.backBusy).toFixed(0)}%`,
    r.notificationsPerRequest === null ? '' : r.notificationsPerRequest.toFixed(3),
    r.copiedPerByte === null ? '' : r.copiedPerByte.toFixed(2),
  ]);
  return formatTable(head, body, 3);
}

/** Left-aligned first `textCols` columns, the rest right-aligned. */
export function formatTable(head: string[], body: string[][], textCols: number): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < textCols ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return `${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${body.map(line).join('\n')}`;
}

export const e2e: Family = {
  name: 'e2e',
  help: 'the simulated device on each engine (zero-copy I/O buffers, and plain buffers) next to plain fs (MB/s, CPU per op, notifications, copies)',
  svgFile: 'bench-e2e.svg',
  async run({ quick, out, signal }): Promise<FamilyReport> {
    const results = await runE2e(quick ? E2E_QUICK : E2E_FULL, out, signal);
    const rows = WORKLOADS.map((w) => ({
      name: w.name,
      values: results.filter((r) => r.workload === w.name).map((r) => ({ engine: r.contender, value: r.MBps })),
    }));
    const title = `xenpv e2e: blkfront -> blkback worker -> file at QD${QD}, vs plain fs; wasm/js with I/O buffers (${process.version})`;
    return { results, table: e2eTable(results), svg: barChart(title, rows, { unit: 'MB/s', axis: 'MB/s, 10^6 bytes/s (higher is better)' }) };
  },
};
