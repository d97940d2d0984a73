/**
 * Side by side on the same backing file, both through the kernel's
 * xen-blkback: our `xen:` device (Wasm engine) against the kernel's
 * xen-blkfront (fio, libaio, O_DIRECT on /dev/xvdX). 1 MiB sequential
 * reads and writes, 4 KiB random reads and writes at queue depth 32. Under
 * TCG absolute figures mean nothing: the test prints the ratio ours/kernel
 * and asserts only that both sides did all their I/O.
 */
import { rmSync, truncateSync, writeFileSync, existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openXenBlockDevice } from '../../src/blkfront/flavour.js';
import type { BlockDevice } from '../../src/block/types.js';
import { attachLoop, type LoopDevice } from '../../src/blkfront/loop-device.js';
import { createVbd, destroyVbd } from '../../src/blkfront/toolstack.js';
import { connectXenstoreSocket } from '../../src/xenstore/transport/socket.js';
import { prng } from '../support/disk-model.js';
import { modprobe, moduleLoaded, raiseGntallocLimit, requireDom0, rmmod, sh, until } from './dom0.js';
import { TCG_TIMEOUTS } from './dom0.js';

const IMAGE = '/tmp/xenpv-sbs.img';
const SIZE = 64 << 20;
const DEVID = 51776; // xvde
const DISK = '/dev/xvde';
const RANDOM_OPS = 4000;

type Job = 'seq-read-1M' | 'seq-write-1M' | 'rand-read-4K' | 'rand-write-4K';
const JOBS: Job[] = ['seq-write-1M', 'seq-read-1M', 'rand-write-4K', 'rand-read-4K'];
const ours = new Map<Job, number>(); // MB/s
const kernel = new Map<Job, number>();
let loop: LoopDevice;

beforeAll(async () => {
  requireDom0();
  if (moduleLoaded('xen-blkfront')) throw new Error('xen-blkfront is loaded: modprobe -r xen-blkfront first');
  raiseGntallocLimit();
  writeFileSync(IMAGE, '');
  truncateSync(IMAGE, SIZE);
  loop = await attachLoop(IMAGE);
});
afterAll(async () => {
  await rmmod('xen-blkfront').catch(() => undefined);
  await loop?.detach();
  rmSync(IMAGE, { force: true });
});

async function timed(f: () => Promise<number>): Promise<number> {
  const t0 = process.hrtime.bigint();
  const bytes = await f();
  return bytes / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function runOurs(dev: BlockDevice, job: Job): Promise<number> {
  const rnd = prng(7);
  const sectors = SIZE / 512;
  if (job.startsWith('seq')) {
    // One I/O buffer per slot (pages granted once, which kernel blkback maps
    // persistently): blkfront copies nothing, as the kernel's bio pages.
    const bufs = await Promise.all(Array.from({ length: 8 }, () => ioBuffer(dev, 1 << 20)));
    for (const b of bufs) b.fill(0x5a);
    try {
      return await timed(async () => {
        // QD 8 of 1 MiB, in order.
        for (let at = 0; at < SIZE; at += 8 << 20) {
          await Promise.all(bufs.map((b, i) => {
            const s = BigInt((at + i * (1 << 20)) / 512);
            return job === 'seq-write-1M' ? dev.write(s, [b]) : dev.read(s, [b]);
          }));
        }
        return SIZE;
      });
    } finally {
      for (const b of bufs) await dev.releaseBuffer?.(b);
    }
  }
  const lanes = await Promise.all(Array.from({ length: 32 }, () => ioBuffer(dev, 4096)));
  return timed(async () => {
    let issued = 0;
    const worker = async (b: Uint8Array) => {
      while (issued < RANDOM_OPS) {
        issued++;
        const s = BigInt(Math.floor(rnd() * (sectors / 8)) * 8);
        if (job === 'rand-write-4K') await dev.write(s, [b]); else await dev.read(s, [b]);
      }
    };
    await Promise.all(lanes.map(worker));
    return RANDOM_OPS * 4096;
  }).finally(async () => {
    for (const b of lanes) await dev.releaseBuffer?.(b);
  });
}

async function ioBuffer(dev: BlockDevice, bytes: number): Promise<Uint8Array> {
  if (dev.allocateBuffer === undefined) throw new Error('the xen: device offers no allocateBuffer');
  return dev.allocateBuffer(bytes);
}

async function runFio(job: Job): Promise<number> {
  const [rw, bs, depth] = ({
    'seq-read-1M': ['read', '1M', 8], 'seq-write-1M': ['write', '1M', 8],
    'rand-read-4K': ['randread', '4k', 32], 'rand-write-4K': ['randwrite', '4k', 32],
  } as const)[job];
  const size = job.startsWith('seq') ? `${SIZE}` : `${RANDOM_OPS * 4096}`;
  const out = await sh('fio', ['--name=x', `--filename=${DISK}`, '--ioengine=libaio', '--direct=1', `--rw=${rw}`, `--bs=${bs}`,
    `--iodepth=${depth}`, `--io_size=${size}`, `--size=${SIZE}`, '--randrepeat=1', '--output-format=json'], { timeout: 600_000 });
  const j = JSON.parse(out.slice(out.indexOf('{'))) as { jobs: { read: { bw_bytes: number; io_bytes: number }; write: { bw_bytes: number; io_bytes: number } }[] };
  const side = rw.includes('read') ? j.jobs[0]!.read : j.jobs[0]!.write;
  expect(side.io_bytes).toBe(Number(size));
  return side.bw_bytes / 1e6;
}

describe('our xen: device vs the kernel xen-blkfront on one backing file', () => {
  it('ours: 1 MiB sequential and 4 KiB random at QD32', async () => {
    const dev = await openXenBlockDevice(String(DEVID), {
      engine: 'wasm', create: { physicalDevice: loop.path }, linux: { xenstore: 'socket' },
      blkfront: { maxRingPageOrder: 2, queues: 2, persistent: true, indirect: true, ...TCG_TIMEOUTS },
    });
    try {
      for (const job of JOBS) ours.set(job, await runOurs(dev, job));
      const st = (dev as unknown as { stats(): { bytesCopied: number; bytesRead: number; bytesWritten: number } }).stats();
      console.log(`ours: blkfront copied ${st.bytesCopied} of ${st.bytesRead + st.bytesWritten} bytes moved (I/O buffers)`);
      expect(st.bytesCopied).toBe(0);
    } finally {
      await dev.disconnect();
    }
    expect([...ours.values()].every((v) => v > 0)).toBe(true);
  });

  it('kernel: the same jobs with fio on its /dev/xvdX', async () => {
    const xs = await connectXenstoreSocket();
    const paths = await createVbd(xs, { frontendDomid: 0, backendDomid: 0, devid: DEVID, physicalDevice: loop.path, dev: 'xvde' });
    let failure: unknown;
    try {
      await modprobe('xen-blkfront');
      await until(DISK, () => (existsSync(DISK) ? true : undefined), 120_000);
      for (const job of JOBS) kernel.set(job, await runFio(job));
    } catch (err) {
      failure = err;
    } finally {
      // Take the vbd away first: blkfront closes its disk, then the module can go.
      await destroyVbd(xs, paths);
      await until(`${DISK} to go`, () => (existsSync(DISK) ? undefined : true), 120_000).catch(() => undefined);
      await rmmod('xen-blkfront').catch((e: Error) => { failure ??= e; });
      await xs.close();
    }
    if (failure !== undefined) throw failure;
    const rows = JOBS.map((j) => `  ${j.padEnd(14)} ours ${ours.get(j)!.toFixed(1).padStart(8)} MB/s   kernel ${kernel.get(j)!.toFixed(1).padStart(8)} MB/s   ratio ${(ours.get(j)! / kernel.get(j)!).toFixed(2)}`);
    console.log(`side by side (TCG: only the ratio means something):\n${rows.join('\n')}`);
    expect([...kernel.values()].every((v) => v > 0)).toBe(true);
  });
});
