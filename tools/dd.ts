/**
 * `xenpv dd`: copy between any two devices (device specs or plain paths),
 * dd style or with long options:
 *
 *   xenpv dd if=SRC of=DST [bs=SIZE] [count=N] [skip=N] [seek=N]
 *   xenpv dd --from SRC --to DST [--bs SIZE] [--count N] [--skip N] [--seek N]
 *
 * Units as dd's: count, skip and seek count blocks of bs bytes; SIZE is bytes
 * with an optional K, M, G (or KiB, MiB, GiB: powers of 1024). bs must be a
 * multiple of both devices' sector sizes. Up to QD blocks are in flight; the
 * output is flushed at the end. A missing output file is created with the
 * size the copy needs; an existing output is written in place, never grown.
 */
import { OutOfRangeError } from '../src/errors.js';
import { defineCommand, EXIT_OK, intOption, usageError } from './command.js';
import { DeviceOpener, SIM_OPTION } from './devices.js';

const QD = 4;
const DD_KEYS = ['if', 'of', 'bs', 'count', 'skip', 'seek'] as const;
const SUFFIX: Record<string, number> = { '': 1, B: 1, K: 1024, KiB: 1024, M: 1 << 20, MiB: 1 << 20, G: 1 << 30, GiB: 1 << 30 };

/** `4K` → 4096; `bs` must be a positive number of bytes (at most 1 GiB). */
export function parseBlockSize(text: string): number {
  const m = /^([1-9][0-9]{0,12})(|B|K|KiB|M|MiB|G|GiB)$/.exec(text);
  const n = m ? Number(m[1]) * SUFFIX[m[2]!]! : NaN;
  if (!(n > 0 && n <= 1 << 30)) throw usageError('bs', `'${text}' is not a size like 512, 4K, 1M (at most 1G)`);
  return n;
}

export interface DdResult {
  from: string;
  to: string;
  blockSize: number;
  /** Whole and partial blocks, as dd's "N+M records". */
  fullBlocks: number;
  partialBlocks: number;
  bytes: number;
  seconds: number;
  /** MB/s = 10^6 bytes per second. */
  MBps: number;
}

export const main = defineCommand({
  name: 'dd',
  synopsis: 'if=SRC of=DST [bs=SIZE] [count=N] [skip=N] [seek=N]\n       xenpv dd --from SRC --to DST [--bs SIZE] [--count N] [--skip N] [--seek N]',
  description: `Copy blocks between two devices: memory:SIZE, file:/path or a plain path,
xen:xvda (real Xen, or with --sim a simulated hypervisor in this process).
count, skip and seek count blocks of bs bytes, as dd's do; SIZE takes K, M, G
(or KiB, MiB, GiB; powers of 1024). A missing output file is created with
the size the copy needs; an existing output is written in place and never
grown or truncated. Progress on stderr when it is a terminal; the summary
(MB/s = 10^6 bytes/s) on stdout.`,
  reports: true,
  positionals: { min: 0, max: DD_KEYS.length },
  options: {
    from: { type: 'string', arg: 'SRC', help: 'input device (dd: if=)' },
    to: { type: 'string', arg: 'DST', help: 'output device (dd: of=)' },
    bs: { type: 'string', arg: 'SIZE', help: 'block size (default 1M)' },
    count: { type: 'string', arg: 'N', help: 'copy N blocks (default: to the end of the input)' },
    skip: { type: 'string', arg: 'N', help: 'skip N blocks of the input first' },
    seek: { type: 'string', arg: 'N', help: 'skip N blocks of the output first' },
    ...SIM_OPTION,
  },
}, async ({ values, positionals, out, signal }) => {
  const args: Record<string, string | undefined> = {
    if: values.from, of: values.to, bs: values.bs, count: values.count, skip: values.skip, seek: values.seek,
  };
  for (const p of positionals) {
    const m = /^([a-z]+)=(.*)$/.exec(p);
    if (!m || !(DD_KEYS as readonly string[]).includes(m[1]!)) throw usageError('arguments', `'${p}' is not one of ${DD_KEYS.map((k) => `${k}=`).join(' ')}`);
    if (args[m[1]!] !== undefined) throw usageError(m[1]!, 'given twice');
    args[m[1]!] = m[2]!;
  }
  if (!args.if) throw usageError('if', 'name the input (if=SRC or --from SRC)');
  if (!args.of) throw usageError('of', 'name the output (of=DST or --to DST)');
  const bs = parseBlockSize(args.bs ?? '1M');
  const count = intOption('count', args.count);
  const skip = intOption('skip', args.skip) ?? 0;
  const seek = intOption('seek', args.seek) ?? 0;

  const opener = await DeviceOpener.create(values.sim ?? []);
  try {
    const src = await opener.open(args.if, { readOnly: true });
    const si = src.info();
    const srcBytes = Number(si.sizeSectors) * si.sectorSize;
    const start = skip * bs;
    if (start > srcBytes) throw new OutOfRangeError(`skip=${skip}: ${start} bytes is past the end of ${args.if} (${srcBytes} bytes)`);
    const bytes = Math.min(srcBytes - start, count === undefined ? Infinity : count * bs);
    const outStart = seek * bs;
    const dst = await opener.open(args.of, { createBytes: outStart + bytes });
    const di = dst.info();
    for (const [name, ss] of [[args.if, si.sectorSize], [args.of, di.sectorSize]] as const) {
      if (bs % ss !== 0) throw usageError('bs', `${bs} is not a multiple of ${name}'s sector size ${ss}`);
    }
    if (bytes % di.sectorSize !== 0) {
      throw usageError('count', `the copy (${bytes} bytes) is not a whole number of ${args.of}'s ${di.sectorSize}-byte sectors`);
    }
    const dstBytes = Number(di.sizeSectors) * di.sectorSize;
    if (outStart + bytes > dstBytes) {
      throw new OutOfRangeError(`${args.of} has ${dstBytes} bytes; the copy needs ${outStart + bytes} (seek=${seek}, ${bytes} bytes): it is never grown`);
    }
    const blocks = Math.ceil(bytes / bs);
    const t0 = process.hrtime.bigint();
    let next = 0;
    let done = 0;
    const lane = async (): Promise<void> => {
      const buf = new Uint8Array(bs);
      while (next < blocks) {
        signal.throwIfAborted();
        const i = next++;
        const len = Math.min(bs, bytes - i * bs);
        const view = buf.subarray(0, len);
        await src.read(BigInt((start + i * bs) / si.sectorSize), [view]);
        await dst.write(BigInt((outStart + i * bs) / di.sectorSize), [view]);
        done += len;
        out.progress(`dd ${args.if} -> ${args.of}`, done, bytes);
      }
    };
    await Promise.all(Array.from({ length: Math.min(QD, blocks) }, lane));
    if (di.features.flush) await dst.flush();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const result: DdResult = {
      from: args.if, to: args.of, blockSize: bs,
      fullBlocks: Math.floor(bytes / bs), partialBlocks: bytes % bs ? 1 : 0,
      bytes, seconds, MBps: bytes / 1e6 / Math.max(seconds, 1e-9),
    };
    out.result(result, () => [
      `${result.fullBlocks}+${result.partialBlocks} records in`,
      `${result.fullBlocks}+${result.partialBlocks} records out`,
      `${bytes} bytes (${(bytes / 1e6).toFixed(1)} MB, ${(bytes / 2 ** 20).toFixed(1)} MiB) copied, ${seconds.toFixed(3)} s, ${result.MBps.toFixed(1)} MB/s`,
    ].join('\n'));
  } finally {
    await opener.close();
  }
  return EXIT_OK;
});
