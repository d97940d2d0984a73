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
import type { BlockDevice } from '../src/block/types.js';
import { PersistentQueue } from '../src/queue/index.js';
import { defineCommand, defineGroup, EXIT_FAILURE, EXIT_OK, intOption, usageError } from './command.js';
import { DeviceOpener } from './devices.js';

/** Item i of `fill` (see the file comment). */
export function syntheticItem(i: number): Uint8Array {
  const len = 4 + ((i * 7919) % 3000);
  const b = new Uint8Array(len);
  new DataView(b.buffer).setUint32(0, i >>> 0, true);
  for (let k = 4; k < len; k++) b[k] = (i * 31 + k) & 0xff;
  return b;
}

const FORMAT_BYTES = 64 << 20;

/** Run `fn` on the opened device, disconnected afterwards whatever happens. */
async function withDevice(arg: string, create: boolean, fn: (dev: BlockDevice) => Promise<number>): Promise<number> {
  const opener = await DeviceOpener.create();
  try {
    return await fn(await opener.open(arg, create ? { createBytes: FORMAT_BYTES } : {}));
  } finally {
    await opener.close();
  }
}

const DEVICE = `<device> is a device spec or a path: file:/path/q.img (or q.img), memory:64MiB,
xen:xvdb (real Xen).`;

const format = defineCommand({
  name: 'queue format',
  synopsis: '<device> [--data-sectors N]',
  summary: "write an empty queue (destroys the device's data)",
  description: `Write an empty queue on the device (destroying what it held).
${DEVICE} A file that does not exist is created (64 MiB).`,
  positionals: { min: 1, max: 1 },
  options: { 'data-sectors': { type: 'string', arg: 'N', help: 'sectors of the data area (default: all the device has after the headers)' } },
}, async ({ values, positionals, out }) => {
  // Numbers are checked before the device is opened: a usage error is exit 2 whatever the device holds.
  const dataSectors = intOption('data-sectors', values['data-sectors'], 1);
  return withDevice(positionals[0]!, true, async (dev) => {
    const q = await PersistentQueue.format(dev, dataSectors === undefined ? {} : { dataSectors: BigInt(dataSectors) });
    out.data(`formatted: ${q.stats().capacityBytes} bytes of ring, items up to ${q.stats().maxItemBytes} bytes\n`);
    return EXIT_OK;
  });
});

const push = defineCommand({
  name: 'queue push',
  synopsis: '<device> ITEM...',
  summary: 'push each ITEM (UTF-8); exit 1 if the queue is full',
  description: `Push each ITEM (its UTF-8 bytes), in order; each is durable when the command
exits 0. Exit 1 if the queue is full (the items before it were pushed).
${DEVICE}`,
  positionals: { min: 1, max: Infinity },
  options: {},
}, async ({ positionals: [arg, ...items] }) => withDevice(arg!, false, async (dev) => {
  const q = await PersistentQueue.open(dev);
  for (const it of items) {
    if (!(await q.push(new TextEncoder().encode(it)))) {
      process.stderr.write('xenpv queue push: queue is full\n');
      return EXIT_FAILURE;
    }
  }
  return EXIT_OK;
}));

const pop = defineCommand({
  name: 'queue pop',
  synopsis: '<device> [--max N]',
  summary: 'print up to N items, one a line, and consume them',
  description: `Print up to N items (UTF-8), one a line, and consume them. Nothing is printed
when the queue is empty.\n${DEVICE}`,
  positionals: { min: 1, max: 1 },
  options: { max: { type: 'string', arg: 'N', default: '1', help: 'items to pop at most' } },
}, async ({ values, positionals, out }) => {
  const max = Math.max(1, intOption('max', values.max)!); // 0 pops one, as before
  return withDevice(positionals[0]!, false, async (dev) => {
    const q = await PersistentQueue.open(dev);
    for (const it of await q.popMany(max)) out.data(`${new TextDecoder().decode(it)}\n`);
    return EXIT_OK;
  });
});

const fill = defineCommand({
  name: 'queue fill',
  synopsis: '<device> --start I --count N [--concurrency K]',
  summary: 'push synthetic items I..I+N-1, printing "ack i" once each is durable',
  description: `Push synthetic items I..I+N-1 (the crash tests' producer), K at a time,
printing "ack i" on stdout once item i is durable. Exit 1 if the queue fills up.
${DEVICE}`,
  positionals: { min: 1, max: 1 },
  options: {
    start: { type: 'string', arg: 'I', help: 'index of the first item (required)' },
    count: { type: 'string', arg: 'N', help: 'how many items (required)' },
    concurrency: { type: 'string', arg: 'K', default: '16', help: 'pushes in flight' },
  },
}, async ({ values, positionals }) => {
  const required = (name: 'start' | 'count'): number => {
    const n = intOption(name, values[name]);
    if (n === undefined) throw usageError(`--${name}`, 'is required');
    return n;
  };
  const start = required('start');
  const end = start + required('count');
  const lanes = Math.max(1, intOption('concurrency', values.concurrency)!);
  return withDevice(positionals[0]!, false, async (dev) => {
    const q = await PersistentQueue.open(dev);
    let next = start;
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
    await Promise.all(Array.from({ length: lanes }, lane));
    if (full) process.stderr.write('xenpv queue fill: queue is full\n');
    return full ? EXIT_FAILURE : EXIT_OK;
  });
});

const bench = defineCommand({
  name: 'queue bench',
  synopsis: '[--seconds S] [--json]',
  summary: 'items/s and MB/s over file: and xen: (simulation); bench-results/queue.svg',
  description: `Items/s and MB/s of 64 B and 64 KiB items, pushed by 32 producers and popped in
batches of 256, over file: and over xen: on the simulation, next to the bare
device doing one write + flush. Writes the chart bench-results/queue.svg.`,
  reports: true,
  options: { seconds: { type: 'string', arg: 'S', default: '3', help: 'seconds per measurement' } },
}, async ({ values, out }) => {
  const seconds = intOption('seconds', values.seconds, 1)!;
  const { runQueueBench } = await import('./queue-bench.js');
  return runQueueBench({ seconds, out });
});

export const main = defineGroup({
  name: 'queue',
  description: `The persistent queue (README "Persistent queue") on a device: a file: image,
memory: (gone when the command exits), or xen: on real Xen.`,
  commands: { format, push, pop, fill, bench },
});
