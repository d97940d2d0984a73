/**
 * xenstore operations per second over the unix socket: our client against
 * our server (in this process, or `--socket PATH` for any xenstored), small
 * key read/write, one at a time and pipelined.
 *
 *   node dist/tools/xenstore-bench.js [--ops N] [--depth D] [--socket PATH]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { XenstoreServer } from '../src/xenstore/server/server.js';
import { connectXenstoreSocket } from '../src/xenstore/transport/socket.js';
import type { XenstoreClient } from '../src/xenstore/client.js';

export interface BenchResult { name: string; ops: number; seconds: number; opsPerSec: number }

async function timed(name: string, ops: number, fn: () => Promise<void>): Promise<BenchResult> {
  const t0 = process.hrtime.bigint();
  await fn();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { name, ops, seconds, opsPerSec: ops / seconds };
}

export async function benchXenstore(c: XenstoreClient, ops: number, depth: number): Promise<BenchResult[]> {
  await c.write('/bench/key', 'value');
  const r: BenchResult[] = [];
  r.push(await timed('write, one at a time', ops, async () => { for (let i = 0; i < ops; i++) await c.write('/bench/key', 'v'); }));
  r.push(await timed('read, one at a time', ops, async () => { for (let i = 0; i < ops; i++) await c.read('/bench/key'); }));
  const pipelined = async (op: () => Promise<unknown>) => {
    for (let done = 0; done < ops; done += depth) await Promise.all(Array.from({ length: Math.min(depth, ops - done) }, op));
  };
  r.push(await timed(`write, pipelined x${depth}`, ops, () => pipelined(() => c.write('/bench/key', 'v'))));
  r.push(await timed(`read, pipelined x${depth}`, ops, () => pipelined(() => c.read('/bench/key'))));
  r.push(await timed('transaction (read+write+commit)', Math.floor(ops / 4), async () => {
    for (let i = 0; i < Math.floor(ops / 4); i++) await c.transaction(async (tx) => { await tx.write('/bench/key', (await tx.read('/bench/key')) + ''); });
  }));
  return r;
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ops: { type: 'string' }, depth: { type: 'string' }, socket: { type: 'string' } } });
  const ops = Number(values.ops ?? 20000);
  const depth = Number(values.depth ?? 64);
  let server: XenstoreServer | undefined;
  let dir: string | undefined;
  let path = values.socket;
  if (!path) {
    dir = mkdtempSync(join(tmpdir(), 'xs-bench-'));
    path = join(dir, 'socket');
    server = new XenstoreServer();
    await server.listen(path);
  }
  const c = await connectXenstoreSocket(path);
  try {
    console.log(`xenstore over unix socket ${path}${server ? ' (server in this process)' : ''}, node ${process.version}`);
    for (const r of await benchXenstore(c, ops, depth)) {
      console.log(`${r.name.padEnd(34)} ${String(r.ops).padStart(7)} ops  ${r.seconds.toFixed(3)} s  ${Math.round(r.opsPerSec).toString().padStart(8)} ops/s`);
    }
  } finally {
    await c.close();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => { console.error(err); process.exitCode = 1; });
}
