/**
 * `xenpv serve <device> [--port N | --socket PATH] [--host H]`: serve the
 * static files of the FAT or ext4 file system on a BlockDevice over HTTP
 * until SIGINT/SIGTERM. The device is opened read-only.
 * `xenpv serve bench ...` is the throughput benchmark (serve-bench.ts).
 */
import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import { openBlockDevice } from '../src/block/registry.js';
import type { BlockDevice } from '../src/block/types.js';
import { IoError } from '../src/errors.js';
import { openFileSystem } from '../src/fs/open.js';
import { serveFileSystem } from '../src/serve/server.js';
import { defineCommand, EXIT_OK, intOption, usageError } from './command.js';

const command = defineCommand({
  name: 'serve',
  synopsis: '<device> [--port N | --socket PATH] [--host ADDR] [--type fat|ext4] [--via-sim]',
  description: `Serve the static files of the FAT or ext2/3/4 file system on a block device
(memory:…, file:/path/site.img, xen:xvdb) over HTTP until SIGINT or SIGTERM:
GET and HEAD, ETag / If-None-Match, Range (several ranges: multipart/byteranges),
If-Range, directory index. The device is opened read-only.`,
  positionals: { min: 1, max: 1 },
  options: {
    port: { type: 'string', arg: 'N', help: 'TCP port (default 8080; 0 picks a free one)' },
    socket: { type: 'string', arg: 'PATH', help: 'listen on a unix socket instead of TCP' },
    host: { type: 'string', arg: 'ADDR', help: 'address to bind (default 127.0.0.1)' },
    type: { type: 'string', arg: 'T', help: 'fat or ext4 (default: detected)' },
    'via-sim': { type: 'boolean', help: 'file: only: through the simulated hypervisor (blkfront → ring → blkback → file)' },
  },
  epilogue: "Throughput: xenpv serve bench [--duration S] [--connections N] [--json]   (see 'xenpv serve bench --help')",
}, async ({ values, positionals, out, signal }) => {
  if (values.port !== undefined && values.socket !== undefined) throw usageError('--port', '--port and --socket exclude each other');
  const port = intOption('port', values.port, 0, 65535);
  const type = values.type;
  if (type !== undefined && type !== 'fat' && type !== 'ext4') throw usageError('--type', `is fat or ext4, got '${type}'`);
  const spec = positionals[0]!;
  if (values['via-sim'] && !spec.startsWith('file:')) throw usageError('--via-sim', 'needs a file: device');

  // Undone in reverse order, whatever failed, before the exit code is chosen.
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const dev = values['via-sim'] ? await openViaSim(spec.slice(5), cleanups) : await openDevice(spec);
    cleanups.push(() => dev.disconnect());
    const fs = await openFileSystem(dev, { type });
    cleanups.push(() => fs.close());
    const srv = await serveFileSystem(fs, { port: values.socket === undefined ? (port ?? 8080) : undefined, socket: values.socket, host: values.host });
    cleanups.push(() => srv.close());
    out.data(`serving ${fs.kind} from ${spec} on ${srv.address}\n`);
    if (!signal.aborted) await once(signal, 'abort');
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
  process.stderr.write(`xenpv serve: ${(signal.reason as Error).message}, stopped\n`);
  return EXIT_OK;
});

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'bench') return (await import('./serve-bench.js')).main(argv.slice(1));
  return command(argv);
}

async function openDevice(spec: string): Promise<BlockDevice> {
  if (spec.startsWith('xen:')) await import('../src/blkfront/flavour.js'); // registers xen:
  return openBlockDevice(spec, { readOnly: true });
}

async function openViaSim(path: string, cleanups: (() => Promise<unknown>)[]): Promise<BlockDevice> {
  const { Simulation } = await import('../src/sim/simulation.js');
  const { size } = await stat(path).catch((err: Error) => {
    throw new IoError(`${path}: ${err.message}`, { cause: err });
  });
  const sim = await Simulation.start();
  cleanups.push(() => sim.stop());
  const disk = await sim.createDisk({ sizeBytes: size, path, readOnly: true });
  return sim.attach(disk);
}
