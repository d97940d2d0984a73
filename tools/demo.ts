/**
 * `xenpv demo` (and `npm start`): the main job on the simulated hypervisor.
 * Creates a disk image, starts a backend domain serving it, attaches
 * blkfront, and runs I/O patterns at queue depth 32, verifying every byte:
 *
 *   1 MiB sequential write, 1 MiB sequential read (verified),
 *   4 KiB random write, 4 KiB random read (verified), flush, discard,
 *   then the backing file, read with fs, compared with what was written;
 *   and the same file read directly with fs, for comparison.
 *
 * Progress goes to stderr; the summary to stdout (`--json` for JSON).
 */
import { open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Simulation } from '../src/sim/simulation.js';
import type { BlockDevice } from '../src/block/types.js';

const HELP = `usage: xenpv demo [options]

Attach a disk through blkfront on the simulated hypervisor, write and read
it back in several patterns at queue depth 32, flush, discard, and verify
everything against the backing file.

options:
  --size MiB       disk size (default 256)
  --path FILE      disk image (default: a temporary file, removed afterwards)
  --engine E       wasm (default) or js: the frontend's ring engine
  --random N       4 KiB random operations per direction (default 20000)
  --json           print the summary as JSON
  -h, --help       show this help`;

const QD = 32;
const MiB = 1 << 20;

interface Phase {
  name: string;
  bytes: number;
  seconds: number;
  MBps: number;
  iops: number;
}

export interface DemoSummary {
  verified: boolean;
  engine: string;
  sizeBytes: number;
  bytesWritten: number;
  bytesRead: number;
  writeMBps: number;
  readMBps: number;
  phases: Phase[];
  fs: Phase[];
  mismatches: string[];
}

/** Run `count` jobs with at most QD in flight. */
async function atDepth(count: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) await job(next++);
  };
  await Promise.all(Array.from({ length: Math.min(QD, count) }, lane));
}

/**
 * Deterministic pattern for 512-byte sector `s` of generation `g` (so
 * verification needs no second copy of the disk): words 0 and 1 are `s` and
 * a hash of (s, g), so a sector that lands in the wrong place or is stale
 * shows; the other 126 words are a per-generation pseudo-random filler.
 *
 * It runs inside the timed phases (writes fill, reads verify), so it has to
 * be cheap next to the I/O: one copy of a prebuilt filler plus two words per
 * sector: ~45 ms per 256 MiB here, where the earlier per-word hash took
 * ~290 ms, on the main thread, inside each sequential phase.
 */
function fillPattern(buf: Uint8Array, firstSector: number, generation: number): void {
  const filler = fillerFor(generation);
  for (let at = 0; at < buf.byteLength; at += filler.byteLength) {
    buf.set(filler.subarray(0, Math.min(filler.byteLength, buf.byteLength - at)), at);
  }
  const v = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
  for (let s = 0, w = 0; w < v.length; s++, w += 128) {
    v[w] = firstSector + s;
    v[w + 1] = Math.imul((firstSector + s) ^ (generation << 24), 2654435761) ^ generation;
  }
}

const fillers = new Map<number, Uint8Array>();

/** 1 MiB of generation `g`'s filler (each sector the same 504 bytes after its header). */
function fillerFor(generation: number): Uint8Array {
  let f = fillers.get(generation);
  if (!f) {
    const sector = new Uint32Array(128);
    let x = Math.imul(generation + 1, 2654435761) >>> 0 || 1;
    for (let k = 2; k < 128; k++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5; // xorshift32
      sector[k] = x;
    }
    f = new Uint8Array(MiB);
    const bytes = new Uint8Array(sector.buffer);
    for (let at = 0; at < MiB; at += 512) f.set(bytes, at);
    fillers.set(generation, f);
  }
  return f;
}

function progress(label: string, done: number, total: number): void {
  const pct = `${label.padEnd(28)} ${((100 * done) / total).toFixed(0).padStart(3)}%`;
  if (process.stderr.isTTY) {
    process.stderr.write(`\r${pct}${done === total ? '\n' : ''}`);
  } else if (done === total || done % Math.max(1, Math.floor(total / 4)) === 0) {
    process.stderr.write(`${pct}\n`);
  }
}

function phase(name: string, bytes: number, ops: number, t0: bigint): Phase {
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { name, bytes, seconds, MBps: bytes / MiB / seconds, iops: ops / seconds };
}

export async function runDemo(opts: { sizeMiB: number; path?: string; engine: 'wasm' | 'js'; randomOps: number }): Promise<DemoSummary> {
  const sizeBytes = opts.sizeMiB * MiB;
  const path = opts.path ?? join(tmpdir(), `xenpv-demo-${process.pid}.img`);
  const sectors = sizeBytes / 512;
  const chunks = sizeBytes / MiB;
  const sim = await Simulation.start();
  const phases: Phase[] = [];
  const mismatches: string[] = [];
  // generation of each 4 KiB block: 1 after the sequential pass, bumped by random writes, 0 = discarded
  const gen = new Uint8Array(sectors / 8);
  let dev: BlockDevice | undefined;
  try {
    await rm(path, { force: true });
    const disk = await sim.createDisk({ sizeBytes, path });
    dev = await sim.attach(disk, { engine: opts.engine, maxRingPageOrder: 2 });
    const d = dev;

    // 1 MiB sequential write.
    let t0 = process.hrtime.bigint();
    let done = 0;
    await atDepth(chunks, async (i) => {
      const buf = new Uint8Array(MiB);
      fillPattern(buf, i * 2048, 1);
      await d.write(BigInt(i * 2048), [buf]);
      progress('1 MiB sequential write', ++done, chunks);
    });
    gen.fill(1);
    phases.push(phase('1 MiB sequential write', sizeBytes, chunks, t0));

    // 1 MiB sequential read, verified.
    t0 = process.hrtime.bigint();
    done = 0;
    await atDepth(chunks, async (i) => {
      const buf = new Uint8Array(MiB);
      await d.read(BigInt(i * 2048), [buf]);
      const want = new Uint8Array(MiB);
      fillPattern(want, i * 2048, 1);
      if (Buffer.compare(buf, want) !== 0) mismatches.push(`sequential read of MiB ${i}`);
      progress('1 MiB sequential read', ++done, chunks);
    });
    phases.push(phase('1 MiB sequential read', sizeBytes, chunks, t0));

    // 4 KiB random writes: distinct blocks, so the final content is known.
    const blocks = sectors / 8;
    const order = Array.from({ length: blocks }, (_, i) => i);
    let seed = 0x9e3779b9;
    const rnd = (): number => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const nRandom = Math.min(opts.randomOps, blocks);
    t0 = process.hrtime.bigint();
    done = 0;
    await atDepth(nRandom, async (i) => {
      const b = order[i]!;
      const buf = new Uint8Array(4096);
      fillPattern(buf, b * 8, 2);
      await d.write(BigInt(b * 8), [buf]);
      gen[b] = 2;
      progress('4 KiB random write', ++done, nRandom);
    });
    phases.push(phase('4 KiB random write', nRandom * 4096, nRandom, t0));

    // 4 KiB random reads (a different random set), verified.
    t0 = process.hrtime.bigint();
    done = 0;
    await atDepth(nRandom, async () => {
      const b = Math.floor(rnd() * blocks);
      const buf = new Uint8Array(4096);
      await d.read(BigInt(b * 8), [buf]);
      const want = new Uint8Array(4096);
      fillPattern(want, b * 8, gen[b]!);
      if (Buffer.compare(buf, want) !== 0) mismatches.push(`random read of block ${b}`);
      progress('4 KiB random read', ++done, nRandom);
    });
    phases.push(phase('4 KiB random read', nRandom * 4096, nRandom, t0));

    // Flush, then discard the last 16 MiB (or an eighth of a small disk).
    await d.flush();
    const discardBlocks = Math.min(4096, blocks / 8);
    await d.discard(BigInt((blocks - discardBlocks) * 8), BigInt(discardBlocks * 8));
    gen.fill(0, blocks - discardBlocks);
    await d.flush();
    process.stderr.write('flush, discard, flush         done\n');
    await d.disconnect();

    // Verify the backing file itself, with fs.
    const file = await open(path, 'r');
    try {
      const buf = new Uint8Array(MiB);
      const want = new Uint8Array(4096);
      for (let i = 0; i < chunks; i++) {
        await file.read(buf, 0, MiB, i * MiB);
        for (let k = 0; k < 256; k++) {
          const b = i * 256 + k;
          if (gen[b] === 0) want.fill(0);
          else fillPattern(want, b * 8, gen[b]!);
          if (Buffer.compare(buf.subarray(k * 4096, (k + 1) * 4096), want) !== 0) {
            if (mismatches.length < 20) mismatches.push(`backing file block ${b}`);
          }
        }
        progress('verify backing file', i + 1, chunks);
      }
    } finally {
      await file.close();
    }
  } finally {
    await sim.stop();
  }

  const fsPhases = await fsBaseline(path, sizeBytes, Math.min(opts.randomOps, sectors / 8));
  if (!opts.path) await rm(path, { force: true });
  const written = phases.filter((p) => p.name.includes('write'));
  const read = phases.filter((p) => p.name.includes('read'));
  const sum = (ps: Phase[]): number => ps.reduce((n, p) => n + p.bytes, 0);
  const secs = (ps: Phase[]): number => ps.reduce((n, p) => n + p.seconds, 0);
  return {
    verified: mismatches.length === 0,
    engine: opts.engine,
    sizeBytes,
    bytesWritten: sum(written),
    bytesRead: sum(read),
    writeMBps: sum(written) / MiB / secs(written),
    readMBps: sum(read) / MiB / secs(read),
    phases,
    fs: fsPhases,
    mismatches,
  };
}

/** The same file read directly with fs at the same depth, for comparison. */
async function fsBaseline(path: string, sizeBytes: number, nRandom: number): Promise<Phase[]> {
  const file = await open(path, 'r');
  try {
    const chunks = sizeBytes / MiB;
    let t0 = process.hrtime.bigint();
    await atDepth(chunks, async (i) => {
      const buf = new Uint8Array(MiB);
      await file.read(buf, 0, MiB, i * MiB);
    });
    const seq = phase('fs 1 MiB sequential read', sizeBytes, chunks, t0);
    const blocks = sizeBytes / 4096;
    t0 = process.hrtime.bigint();
    let s = 12345;
    await atDepth(nRandom, async () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const buf = new Uint8Array(4096);
      await file.read(buf, 0, 4096, (s % blocks) * 4096);
    });
    return [seq, phase('fs 4 KiB random read', nRandom * 4096, nRandom, t0)];
  } finally {
    await file.close();
  }
}

function table(s: DemoSummary): string {
  const rows = [...s.phases, ...s.fs].map(
    (p) => `  ${p.name.padEnd(28)} ${p.MBps.toFixed(1).padStart(9)} MB/s ${p.iops.toFixed(0).padStart(9)} IOPS`,
  );
  return [
    `xenpv demo: ${s.sizeBytes / MiB} MiB disk, blkfront (${s.engine} engine) -> blkback (worker domain) -> file, queue depth ${QD}`,
    ...rows,
    `  written ${(s.bytesWritten / MiB).toFixed(0)} MiB at ${s.writeMBps.toFixed(1)} MB/s, read ${(s.bytesRead / MiB).toFixed(0)} MiB at ${s.readMBps.toFixed(1)} MB/s`,
    s.verified ? '  verified: every byte read back, and the backing file, match what was written' : `  VERIFY FAILED: ${s.mismatches.join(', ')}`,
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        size: { type: 'string', default: '256' },
        path: { type: 'string' },
        engine: { type: 'string', default: 'wasm' },
        random: { type: 'string', default: '20000' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(`xenpv demo: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const sizeMiB = Number(values.size);
  const randomOps = Number(values.random);
  if (!Number.isInteger(sizeMiB) || sizeMiB < 1 || sizeMiB > 4096) {
    console.error('xenpv demo: --size must be an integer number of MiB in 1..4096');
    return 2;
  }
  if (!Number.isInteger(randomOps) || randomOps < 1) {
    console.error('xenpv demo: --random must be a positive integer');
    return 2;
  }
  if (values.engine !== 'wasm' && values.engine !== 'js') {
    console.error("xenpv demo: --engine must be 'wasm' or 'js'");
    return 2;
  }
  const summary = await runDemo({ sizeMiB, path: values.path, engine: values.engine, randomOps });
  console.log(values.json ? JSON.stringify(summary, null, 2) : table(summary));
  return summary.verified ? 0 : 1;
}
