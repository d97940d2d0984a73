/**
 * Crash test with real processes over `file:` (real fdatasync on a real
 * file): a producer child (`xenpv queue fill`) is killed with SIGKILL at a
 * random point of its pushes, 25 times; after each kill the queue is
 * reopened and drained, and must hold every item the child acknowledged
 * (printed `ack i` after push(i) resolved), in order, exactly once, plus at
 * most the pushes that were in flight, and nothing else. The oracle is this
 * file's own copy of the item format documented in tools/queue.ts.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FileBlockDevice } from '../src/block/file.js';
import { PersistentQueue } from '../src/queue/index.js';
import { prng } from './support/disk-model.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'bin/xenpv.js');
const LANES = 8;

/** Item i as documented in tools/queue.ts (written here from the text, not imported). */
function expectedItem(i: number): Buffer {
  const len = 4 + ((i * 7919) % 3000);
  const b = Buffer.alloc(len);
  b.writeUInt32LE(i >>> 0, 0);
  for (let k = 4; k < len; k++) b[k] = (i * 31 + k) & 0xff;
  return b;
}

interface Run {
  acks: number[];
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
}

/** Starts `fill` at `start` and SIGKILLs it once it has printed `killAt` acks. */
function runAndKill(spec: string, start: number, killAt: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'queue', 'fill', spec, '--start', String(start), '--count', '1000000', '--concurrency', String(LANES)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acks: number[] = [];
    let partial = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const m = /^ack (\d+)$/.exec(line);
        if (m === null) continue;
        acks.push(Number(m[1]));
        if (acks.length === killAt) child.kill('SIGKILL');
      }
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    // 'close': the child is gone and both pipes are drained (acks printed before the kill are in).
    child.on('close', (code, signal) => resolve({ acks, signal, code, stderr }));
  });
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('PersistentQueue survives SIGKILL of the producer process (file:)', () => {
  it('holds every acknowledged item, in order, once, after each of 25 kills at random points', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xenpv-sigkill-'));
    dirs.push(dir);
    const path = join(dir, 'queue.img');
    {
      const dev = await FileBlockDevice.open(path, { create: { sizeBytes: 8 << 20 } });
      await PersistentQueue.format(dev, { dataSectors: 8192n }); // 4 MiB ring: wraps during the test
      await dev.disconnect();
    }
    const rnd = prng(12);
    let next = 0;
    let totalAcks = 0;
    let laps = 0n;
    for (let run = 0; run < 25; run++) {
      const killAt = 1 + Math.floor(rnd() * 400);
      const r = await runAndKill(`file:${path}`, next, killAt);
      expect(r.signal, `child ended by itself (code ${r.code}): ${r.stderr}`).toBe('SIGKILL');
      // Acks are printed in push order: next, next+1, ...
      expect(r.acks).toEqual(r.acks.map((_, k) => next + k));
      expect(r.acks.length).toBeGreaterThanOrEqual(killAt);
      totalAcks += r.acks.length;

      const dev = await FileBlockDevice.open(path);
      const q = await PersistentQueue.open(dev);
      const items: Uint8Array[] = [];
      for (;;) {
        const got = await q.popMany(512);
        if (got.length === 0) break;
        items.push(...got);
      }
      laps = q.stats().producer / q.stats().capacityBytes;
      await dev.disconnect();
      items.forEach((b, k) => {
        if (!Buffer.from(b).equals(expectedItem(next + k))) expect.fail(`run ${run}: item ${k} is not item ${next + k} (length ${b.length})`);
      });
      // Every acknowledged item; beyond them at most the pushes in flight.
      expect(items.length).toBeGreaterThanOrEqual(r.acks.length);
      expect(items.length).toBeLessThanOrEqual(r.acks.length + LANES);
      next += items.length;
    }
    expect(totalAcks).toBeGreaterThan(2000);
    expect(laps).toBeGreaterThanOrEqual(1n);
  }, 240_000); // 25 process starts and ~5000 durable pushes: ~45 s alone, several times that on a busy machine
});
