/**
 * `xenpv queue`: the persistent queue from the command line.
 *
 *   xenpv queue format <device> [--data-sectors N]
 *   xenpv queue push <device> ITEM...        push each argument (UTF-8)
 *   xenpv queue pop <device> [--max N]       print and consume up to N items
 *   xenpv queue fill <device> --start I --count N [--concurrency K]
 *   xenpv queue bench [--seconds S] [--json]
 *
 * `fill` pushes synthetic items I, I+1, ... (the crash tests' producer): item
 * i is its index as u32 little-endian, then bytes (i*31 + k) & 0xff for
 * k = 4.., with length 4 + (i*7919 mod 3000). It prints `ack i` on stdout
 * (a synchronous write) only after push(i) resolved, i.e. once i is durable.
 */
import { writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openBlockDevice } from '../src/block/registry.js';
import { PersistentQueue } from '../src/queue/index.js';

const HELP = `usage: xenpv queue <format|push|pop|fill|bench> ...

  format <device> [--data-sectors N]   write an empty queue (destroys the device's data)
  push <device> ITEM...                push each ITEM (UTF-8); exit 1 if the queue is full
  pop <device> [--max N]               print up to N items (default 1), one a line, and consume them
  fill <device> --start I --count N [--concurrency K]
                                       push synthetic items I..I+N-1, K at a time (default 16),
                                       printing "ack i" once each is durable
  bench [--seconds S] [--json]         items/s and MB/s over file: and xen: (simulation)

<device> is a BlockDevice spec: file:/path/q.img, memory:64MiB, xen:xvdb.
A file: device that does not exist is created (64 MiB) by format.`;

/** Item i of `fill` (see the file comment). */
export function syntheticItem(i: number): Uint8Array {
  const len = 4 + ((i * 7919) % 3000);
  const b = new Uint8Array(len);
  new DataView(b.buffer).setUint32(0, i >>> 0, true);
  for (let k = 4; k < len; k++) b[k] = (i * 31 + k) & 0xff;
  return b;
}

function usageError(msg: string): number {
  console.error(`xenpv queue: ${msg}\n\n${HELP}`);
  return 2;
}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    console.log(HELP);
    return sub === undefined ? 2 : 0;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        'data-sectors': { type: 'string' }, max: { type: 'string' }, start: { type: 'string' }, count: { type: 'string' },
        concurrency: { type: 'string' }, seconds: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return usageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const int = (name: string, v: string | undefined, dflt?: number): number => {
    if (v === undefined && dflt !== undefined) return dflt;
    if (v === undefined || !/^\d+$/.test(v)) throw new RangeError(`--${name} must be a non-negative integer`);
    return Number(v);
  };
  if (sub === 'bench') {
    const { runQueueBench } = await import('./queue-bench.js');
    try {
      return await runQueueBench({ seconds: int('seconds', values.seconds, 3), json: values.json === true });
    } catch (err) {
      if (err instanceof RangeError) return usageError(err.message);
      throw err;
    }
  }
  const [spec, ...items] = positionals;
  if (!['format', 'push', 'pop', 'fill'].includes(sub)) return usageError(`unknown subcommand '${sub}'`);
  if (spec === undefined) return usageError('missing <device>');
  // Numbers are checked before the device is opened: a usage error is exit 2 whatever the device holds.
  let n: { dataSectors?: number; max: number; start: number; count: number; lanes: number };
  try {
    n = {
      dataSectors: values['data-sectors'] === undefined ? undefined : int('data-sectors', values['data-sectors']),
      max: int('max', values.max, 1),
      start: sub === 'fill' ? int('start', values.start) : 0,
      count: sub === 'fill' ? int('count', values.count) : 0,
      lanes: Math.max(1, int('concurrency', values.concurrency, 16)),
    };
  } catch (err) {
    return usageError((err as Error).message);
  }
  let dev;
  try {
    dev = await openBlockDevice(spec, sub === 'format' ? { create: { sizeBytes: 64 << 20 } } : {});
  } catch (err) {
    console.error(`xenpv queue: ${spec}: ${(err as Error).message}`);
    return 1;
  }
  try {
    switch (sub) {
      case 'format': {
        const q = await PersistentQueue.format(dev, n.dataSectors === undefined ? {} : { dataSectors: BigInt(n.dataSectors) });
        console.log(`formatted: ${q.stats().capacityBytes} bytes of ring, items up to ${q.stats().maxItemBytes} bytes`);
        return 0;
      }
      case 'push': {
        const q = await PersistentQueue.open(dev);
        for (const it of items) {
          if (!(await q.push(new TextEncoder().encode(it)))) {
            console.error('xenpv queue: queue is full');
            return 1;
          }
        }
        return 0;
      }
      case 'pop': {
        const q = await PersistentQueue.open(dev);
        for (const it of await q.popMany(Math.max(1, n.max))) console.log(new TextDecoder().decode(it));
        return 0;
      }
      case 'fill': {
        const q = await PersistentQueue.open(dev);
        const end = n.start + n.count;
        const k = n.lanes;
        let next = n.start;
        // K lanes; each push's ack is printed only after it resolved (durable).
        // Lanes take indices in order and pushes are committed in call order, so
        // acks come out in order. A full queue ends the fill (exit 1).
        let full = false;
        const lane = async (): Promise<void> => {
          while (!full && next < end) {
            const i = next++;
            if (!(await q.push(syntheticItem(i)))) {
              full = true;
              return;
            }
            writeSync(1, `ack ${i}\n`);
          }
        };
        await Promise.all(Array.from({ length: k }, lane));
        if (full) console.error('xenpv queue: queue is full');
        return full ? 1 : 0;
      }
    }
    return 2;
  } catch (err) {
    console.error(`xenpv queue: ${(err as Error).message}`);
    return 1;
  } finally {
    await dev.disconnect().catch(() => undefined);
  }
}
