/**
 * `xenpv serve <device> [--port N | --socket PATH] [--host H]`: serve the
 * static files of the FAT or ext4 file system on a BlockDevice over HTTP
 * until SIGINT/SIGTERM. The device is opened read-only.
 */
import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { openBlockDevice } from '../src/block/registry.js';
import type { BlockDevice } from '../src/block/types.js';
import { XenpvError } from '../src/errors.js';
import { openFileSystem } from '../src/fs/open.js';
import type { FileSystem } from '../src/fs/types.js';
import { serveFileSystem } from '../src/serve/server.js';

const HELP = `usage: xenpv serve <device> [--port N | --socket PATH] [--host ADDR]
       xenpv serve bench [--duration S] [--connections N] [--json]   (see 'xenpv serve bench --help')

Serve the static files of the FAT or ext2/3/4 file system on a block device
over HTTP (GET and HEAD, ETag / If-None-Match, Range, directory index).
The device is opened read-only.

  <device>        memory:…, file:/path/site.img, xen:xvdb (see the README)

options:
  --port N        TCP port (default 8080; 0 picks a free one)
  --socket PATH   listen on a unix socket instead of TCP
  --host ADDR     address to bind (default 127.0.0.1)
  --type T        fat or ext4 (default: detected)
  --via-sim       file: only: reach the image through the simulated
                  hypervisor (HTTP → fs → blkfront → ring → blkback → file)
  -h, --help      show this help`;

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'bench') return (await import('./serve-bench.js')).main(argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        port: { type: 'string' },
        socket: { type: 'string' },
        host: { type: 'string' },
        type: { type: 'string' },
        'via-sim': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (err) {
    console.error(`xenpv serve: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const usage = (msg: string) => {
    console.error(`xenpv serve: ${msg}\n\n${HELP}`);
    return 2;
  };
  if (positionals.length !== 1) return usage('give exactly one device');
  if (values.port !== undefined && values.socket !== undefined) return usage('--port and --socket exclude each other');
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && (!/^\d+$/.test(values.port!) || port > 65535)) return usage(`--port ${values.port} is not a port number`);
  if (values.type !== undefined && values.type !== 'fat' && values.type !== 'ext4') return usage('--type is fat or ext4');
  const spec = positionals[0]!;
  if (values['via-sim'] && !spec.startsWith('file:')) return usage('--via-sim needs a file: device');

  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const dev = values['via-sim'] ? await openViaSim(spec.slice(5), cleanups) : await openDevice(spec);
    cleanups.push(() => dev.disconnect());
    const fs: FileSystem = await openFileSystem(dev, { type: values.type as 'fat' | 'ext4' | undefined });
    cleanups.push(() => fs.close());
    const srv = await serveFileSystem(fs, { port: values.socket === undefined ? (port ?? 8080) : undefined, socket: values.socket, host: values.host });
    cleanups.push(() => srv.close());
    console.log(`serving ${fs.kind} from ${spec} on ${srv.address}`);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await cleanup();
    console.error(`xenpv serve: ${signal}, stopped`);
    return 0;
  } catch (err) {
    await cleanup();
    const e = err as XenpvError;
    console.error(`xenpv serve: ${e instanceof XenpvError ? `${e.code}: ` : ''}${e.message}`);
    return 1;
  }
}

async function openDevice(spec: string): Promise<BlockDevice> {
  if (spec.startsWith('xen:')) await import('../src/blkfront/flavour.js'); // registers xen:
  return openBlockDevice(spec, { readOnly: true });
}

async function openViaSim(path: string, cleanups: (() => Promise<unknown>)[]): Promise<BlockDevice> {
  const { Simulation } = await import('../src/sim/simulation.js');
  const { size } = await stat(path);
  const sim = await Simulation.start();
  cleanups.push(() => sim.stop());
  const disk = await sim.createDisk({ sizeBytes: size, path, readOnly: true });
  return sim.attach(disk);
}
