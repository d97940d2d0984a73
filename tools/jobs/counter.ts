/**
 * Worked example of a job: a counter that appends one record per tick to
 * its `log` device and flushes every N records. After a restart (or a new
 * run on the same device) it continues from the count in the header.
 *
 * ```
 *  sector 0 (header)                      sector 1 + i (record i)
 *  0         8          12         512    0                               512
 *  +---------+----------+-- zeros -+      +-- "count=<i> at=<ISO time>\n" -+-- zeros --+
 *  | XPVCOUNT| count u32|          |      |  ASCII                         |           |
 *  +---------+----------+----------+      +--------------------------------+-----------+
 * ```
 * Configured by environment (read where the module is loaded; the master
 * passes XENPV_* variables on to its child):
 *   XENPV_COUNTER_DEVICE       spec of `log` (default memory:1MiB; e.g. file:/srv/counter.img, xen:xvdb)
 *   XENPV_COUNTER_INTERVAL_MS  ms between records (default 100)
 *   XENPV_COUNTER_FLUSH_EVERY  flush after this many records (default 10)
 *   XENPV_COUNTER_LIMIT        finish (ctx.done) after this many records in one run (default: never)
 *
 *   xenpv run dist/tools/jobs/counter.js --name counter
 */
import { defineJob, type JobContext } from '../../src/jobs/job.js';

const env = process.env;
const intervalMs = Number(env['XENPV_COUNTER_INTERVAL_MS'] ?? 100);
const flushEvery = Number(env['XENPV_COUNTER_FLUSH_EVERY'] ?? 10);
const limit = env['XENPV_COUNTER_LIMIT'] === undefined ? Infinity : Number(env['XENPV_COUNTER_LIMIT']);

export const MAGIC = 'XPVCOUNT';
const SECTOR = 512;

let loop: Promise<void> | undefined;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void { clearTimeout(t); signal.removeEventListener('abort', done); resolve(); }
    signal.addEventListener('abort', done, { once: true });
  });
}

async function readCount(ctx: JobContext): Promise<number> {
  const head = new Uint8Array(SECTOR);
  await ctx.devices.log!.read(0n, [head]);
  if (Buffer.from(head.subarray(0, 8)).toString('latin1') !== MAGIC) return 0;
  return new DataView(head.buffer).getUint32(8, true);
}

async function writeCount(ctx: JobContext, count: number): Promise<void> {
  const head = new Uint8Array(SECTOR);
  head.set(Buffer.from(MAGIC, 'latin1'));
  new DataView(head.buffer).setUint32(8, count, true);
  await ctx.devices.log!.write(0n, [head]);
}

async function run(ctx: JobContext): Promise<void> {
  const dev = ctx.devices.log!;
  const capacity = Number(dev.info().sizeSectors * BigInt(dev.info().sectorSize) / BigInt(SECTOR)) - 1;
  let count = await readCount(ctx);
  let sinceFlush = 0;
  let thisRun = 0;
  ctx.log(`counting from ${count}`);
  while (!ctx.signal.aborted) {
    await sleep(intervalMs, ctx.signal);
    if (ctx.signal.aborted) break;
    if (count >= capacity) throw new Error(`device full after ${count} records`);
    const rec = new Uint8Array(SECTOR);
    rec.set(Buffer.from(`count=${count} at=${new Date().toISOString()}\n`, 'latin1'));
    // The record first, then the header that counts it: a crash between
    // the two loses the record, never counts one that is not there.
    await dev.write(BigInt(1 + count) * BigInt(SECTOR / dev.info().sectorSize), [rec]);
    count++;
    await writeCount(ctx, count);
    if (++sinceFlush >= flushEvery) { await dev.flush(); sinceFlush = 0; }
    if (++thisRun >= limit) { ctx.done(); break; }
  }
}

export default defineJob({
  name: 'counter',
  devices: { log: env['XENPV_COUNTER_DEVICE'] ?? 'memory:1MiB' },
  restart: { policy: 'on-failure', maxRetries: 3, backoffMs: 200 },
  start(ctx) {
    loop = run(ctx).catch((err: unknown) => { if (!ctx.signal.aborted) ctx.fail(err); });
  },
  async stop() {
    await loop;
  },
});
