/**
 * `xenpv queue bench`: persistent-queue throughput (items/s, MB/s) for
 * 64-byte and 64 KiB items, pushed by 32 concurrent producers (group
 * commit) and popped in batches of 256, over `file:` and over `xen:` on the
 * simulation (blkfront → ring → blkback → image file). Baseline from the
 * same run: the bare device doing what one commit costs at least, a write
 * then a flush (4 KiB: operations/s; 1 MiB: MB/s).
 *
 * Table (or --json) on stdout, progress on stderr when it is a TTY (both
 * through the command's Output), and a chart in bench-results/queue.svg.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBlockDevice } from '../src/block/file.js';
import type { BlockDevice } from '../src/block/types.js';
import { PersistentQueue } from '../src/queue/index.js';
import { Simulation } from '../src/sim/simulation.js';
import { barChart } from './bench/svg.js';
import type { Output } from './command.js';

const LANES = 32;
const POP_BATCH = 256;
const DISK_BYTES = 256 << 20;

export interface QueueBenchRow {
  device: 'file' | 'xen';
  case: string;
  itemsPerSec: number;
  MBps: number;
}

/** Measurements per device: two baselines, then push and pop for two item sizes. */
const PHASES_PER_DEVICE = 6;
const DEVICES = 2;

async function timed(seconds: number, step: () => Promise<number>): Promise<{ count: number; bytes: number; secs: number }> {
  const t0 = performance.now();
  let count = 0;
  let bytes = 0;
  while (performance.now() - t0 < seconds * 1000) {
    const b = await step();
    if (b < 0) break;
    count++;
    bytes += b;
  }
  return { count, bytes, secs: (performance.now() - t0) / 1000 };
}

async function benchDevice(name: 'file' | 'xen', dev: BlockDevice, seconds: number, progress: (phase: string) => void): Promise<QueueBenchRow[]> {
  const rows: QueueBenchRow[] = [];
  const add = (c: string, items: number, bytes: number, secs: number): void => {
    rows.push({ device: name, case: c, itemsPerSec: items / secs, MBps: bytes / secs / 1e6 });
  };
  for (const size of [4096, 1 << 20]) {
    progress(`${name}: raw write+flush ${size} B`);
    const buf = new Uint8Array(size).fill(7);
    let at = 0n;
    const span = BigInt(size / dev.info().sectorSize);
    const r = await timed(seconds / 2, async () => {
      await dev.write(at, [buf]);
      await dev.flush();
      at = (at + span) % (dev.info().sizeSectors - span);
      return size;
    });
    add(`baseline: write ${size >= 1 << 20 ? '1 MiB' : '4 KiB'} + flush`, r.count, r.bytes, r.secs);
  }
  for (const size of [64, 64 << 10]) {
    const label = size === 64 ? '64 B' : '64 KiB';
    const q = await PersistentQueue.format(dev);
    const item = new Uint8Array(size).fill(0x5a);
    progress(`${name}: push ${label}`);
    let pushed = 0;
    const t0 = performance.now();
    let full = false;
    const lane = async (): Promise<void> => {
      while (!full && performance.now() - t0 < seconds * 1000) {
        if (await q.push(item)) pushed++;
        else full = true;
      }
    };
    await Promise.all(Array.from({ length: LANES }, lane));
    const pushSecs = (performance.now() - t0) / 1000;
    add(`push ${label} (${LANES} producers)`, pushed, pushed * size, pushSecs);
    progress(`${name}: pop ${label}`);
    const t1 = performance.now();
    let popped = 0;
    for (;;) {
      const got = await q.popMany(POP_BATCH);
      if (got.length === 0) break;
      popped += got.length;
    }
    if (popped !== pushed) throw new Error(`queue bench: pushed ${pushed} items, popped ${popped}`);
    add(`pop ${label} (batches of ${POP_BATCH})`, popped, popped * size, (performance.now() - t1) / 1000);
  }
  return rows;
}

export async function runQueueBench(opts: { seconds: number; out: Output }): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'xenpv-queue-bench-'));
  const rows: QueueBenchRow[] = [];
  const total = PHASES_PER_DEVICE * DEVICES;
  let done = 0;
  const progress = (phase: string): void => opts.out.progress(`queue bench: ${phase}`, done++, total);
  try {
    const file = await FileBlockDevice.open(join(dir, 'file.img'), { create: { sizeBytes: DISK_BYTES } });
    try {
      rows.push(...(await benchDevice('file', file, opts.seconds, progress)));
    } finally {
      await file.disconnect();
    }
    const sim = await Simulation.start();
    try {
      const disk = await sim.createDisk({ sizeBytes: DISK_BYTES, path: join(dir, 'xen.img') });
      const dev = await sim.attach(disk);
      rows.push(...(await benchDevice('xen', dev, opts.seconds, progress)));
      await dev.disconnect();
    } finally {
      await sim.stop();
    }
    opts.out.progress('queue bench: done', total, total);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  opts.out.result(rows, () => [
    `${'device'.padEnd(7)}${'case'.padEnd(36)}${'items/s'.padStart(12)}${'MB/s'.padStart(10)}`,
    ...rows.map((r) => `${r.device.padEnd(7)}${r.case.padEnd(36)}${r.itemsPerSec.toFixed(0).padStart(12)}${r.MBps.toFixed(1).padStart(10)}`),
  ].join('\n'));
  await mkdir('bench-results', { recursive: true });
  const cases = [...new Set(rows.map((r) => r.case))];
  const chart = barChart('persistent queue: ns per item (lower is better)', cases.map((c) => ({
    name: c.replace(/ \(.*\)$/, ''),
    values: rows.filter((r) => r.case === c).map((r) => ({ engine: r.device, value: 1e9 / r.itemsPerSec })),
  })), { unit: 'ns', axis: 'ns per item (lower is better)' });
  await writeFile(join('bench-results', 'queue.svg'), chart);
  return 0;
}
