/**
 * `xenpv serve bench`: requests/s and MB/s of `serveFileSystem` for a small
 * and a large file, next to node serving the same files from the host file
 * system (a plain node:http static handler), in the same run. The load
 * generator is wrk (Debian package `wrk`), bounded in time, against
 * 127.0.0.1 only.
 *
 * Servers, one at a time, each on its own port:
 *   host fs      node:http + fs.createReadStream on a host directory (baseline)
 *   fat file:    FAT image (mkfs.fat + mcopy) on a FileBlockDevice
 *   ext4 file:   ext4 image (mkfs.ext4 -d) on a FileBlockDevice
 *   fat xen:     the FAT image through the simulation (blkfront → ring → blkback → file)
 *
 * Every file is fetched once and compared byte for byte before it is timed.
 * Output: a table (stdout), --json, and DIR/serve-bench.{json,svg}.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FileBlockDevice } from '../src/block/file.js';
import { IoError, UnsupportedError } from '../src/errors.js';
import type { BlockDevice } from '../src/block/types.js';
import { openFileSystem } from '../src/fs/open.js';
import { contentType } from '../src/serve/mime.js';
import { serveFileSystem } from '../src/serve/server.js';
import { Simulation } from '../src/sim/simulation.js';
import { barChart } from './bench/svg.js';
import { defineCommand, EXIT_FAILURE, EXIT_OK, intOption } from './command.js';

const run = promisify(execFile);

interface Result {
  server: string;
  file: string;
  bytes: number;
  requestsPerSec: number;
  MBps: number;
  errors: number;
}

const SMALL = 'small.html';
const LARGE = 'large.bin';

export const main = defineCommand({
  name: 'serve bench',
  synopsis: '[--duration S] [--connections N] [--large MiB] [--out DIR] [--json]',
  description: `Measure requests/s and MB/s of xenpv serve (FAT and ext4 images on file:,
FAT on xen: through the simulation) next to node serving the same files
from the host file system, with wrk against 127.0.0.1.`,
  reports: true,
  options: {
    duration: { type: 'string', arg: 'S', default: '5', help: 'seconds per measurement' },
    connections: { type: 'string', arg: 'N', default: '8', help: 'wrk connections' },
    large: { type: 'string', arg: 'MiB', default: '4', help: 'size of the large file' },
    out: { type: 'string', arg: 'DIR', default: 'bench-results', help: 'where serve-bench.json and serve-bench.svg go' },
  },
}, async ({ values, out }) => {
  const duration = intOption('duration', values.duration, 1, 3600)!;
  const connections = intOption('connections', values.connections, 1, 1024)!;
  const largeMiB = intOption('large', values.large, 1, 256)!;
  for (const tool of ['wrk', 'mkfs.fat', 'mcopy', 'mkfs.ext4']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      throw new UnsupportedError(`${tool} is missing: apt-get install wrk dosfstools mtools e2fsprogs`);
    }
  }

  const dir = await mkdtemp(join(tmpdir(), 'xenpv-serve-bench-'));
  const progress = (m: string) => !out.quiet && !out.json && process.stderr.isTTY && process.stderr.write(`\r\x1b[K${m}`);
  try {
    // The site: one small page and one large file, on the host and in two images.
    const root = join(dir, 'root');
    await mkdir(root);
    const small = Buffer.from(`<!doctype html><title>bench</title>${'<p>xenpv serve-bench</p>'.repeat(40)}\n`);
    const large = Buffer.alloc(largeMiB << 20);
    for (let i = 0; i < large.length; i += 4) large.writeUInt32LE((i * 2654435761) >>> 0, i);
    await writeFile(join(root, SMALL), small);
    await writeFile(join(root, LARGE), large);
    const sizeKiB = Math.max(16384, 4 * largeMiB * 1024);
    const fatImg = join(dir, 'fat.img');
    const extImg = join(dir, 'ext4.img');
    execFileSync('mkfs.fat', ['-C', '-F', '32', fatImg, String(Math.max(sizeKiB, 40960))], { stdio: 'ignore' });
    execFileSync('mcopy', ['-i', fatImg, join(root, SMALL), join(root, LARGE), '::/'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
    execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', '-d', root, extImg, `${sizeKiB}k`]);
    const files = { [SMALL]: small, [LARGE]: large };

    const servers: { name: string; start(): Promise<{ port: number; stop(): Promise<void> }> }[] = [
      { name: 'host fs (node:http)', start: () => hostServer(root) },
      { name: 'fat on file:', start: () => imageServer(() => FileBlockDevice.open(fatImg, { readOnly: true })) },
      { name: 'ext4 on file:', start: () => imageServer(() => FileBlockDevice.open(extImg, { readOnly: true })) },
      { name: 'fat on xen: (sim)', start: () => simServer(fatImg) },
    ];
    const results: Result[] = [];
    for (const s of servers) {
      const srv = await s.start();
      try {
        for (const [file, data] of Object.entries(files)) {
          const url = `http://127.0.0.1:${srv.port}/${file}`;
          const got = Buffer.from(await (await fetch(url)).arrayBuffer());
          if (!got.equals(data)) throw new IoError(`${s.name}: ${file} came back different (${got.length} bytes)`);
          progress(`${s.name}: ${file} for ${duration} s ...`);
          const w = await wrk(url, duration, connections);
          results.push({ server: s.name, file, bytes: data.length, requestsPerSec: w.rps, MBps: (w.rps * data.length) / 1e6, errors: w.errors });
        }
      } finally {
        await srv.stop();
      }
    }
    progress('');
    const meta = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cpus: cpus().length, duration, connections, largeBytes: large.length, smallBytes: small.length };
    await mkdir(values.out, { recursive: true });
    await writeFile(join(values.out, 'serve-bench.json'), JSON.stringify({ meta, results }, null, 2) + '\n');
    const rows = [SMALL, LARGE].map((file) => ({
      name: `${file} (${file === SMALL ? `${small.length} B, req/s` : `${largeMiB} MiB, MB/s`})`,
      values: results.filter((r) => r.file === file).map((r) => ({ engine: r.server, value: file === SMALL ? r.requestsPerSec : r.MBps })),
    }));
    const colors = { 'host fs (node:http)': '#f0a020', 'fat on file:': '#654ff0', 'ext4 on file:': '#2a9d8f', 'fat on xen: (sim)': '#c0392b' };
    await writeFile(join(values.out, 'serve-bench.svg'), barChart(`xenpv serve vs node on the host fs (wrk -c${connections}, ${duration} s, ${meta.node})`, rows, { unit: '', axis: 'higher is better', colors }));
    out.result({ meta, results }, () => [
      `wrk -t1 -c${connections} -d${duration}s on 127.0.0.1; ${meta.cpu} x${meta.cpus}; node ${meta.node}`,
      `${'server'.padEnd(22)}${'file'.padEnd(14)}${'req/s'.padStart(10)}${'MB/s'.padStart(10)}${'errors'.padStart(8)}`,
      ...results.map((r) => `${r.server.padEnd(22)}${r.file.padEnd(14)}${r.requestsPerSec.toFixed(0).padStart(10)}${r.MBps.toFixed(1).padStart(10)}${String(r.errors).padStart(8)}`),
      `chart: ${join(values.out, 'serve-bench.svg')}`,
    ].join('\n'));
    return results.some((r) => r.errors > 0) ? EXIT_FAILURE : EXIT_OK;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** wrk for `seconds`; requests/s and the count of socket errors and non-2xx/3xx answers. */
async function wrk(url: string, seconds: number, connections: number): Promise<{ rps: number; errors: number }> {
  const { stdout } = await run('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, url], { timeout: (seconds + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN);
  if (!Number.isFinite(rps)) throw new IoError(`cannot read wrk's output:\n${stdout}`);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const sockErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return { rps, errors: non2xx + sockErrors };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** The baseline: what a plain node static handler does with the host's files. */
async function hostServer(root: string): Promise<{ port: number; stop(): Promise<void> }> {
  const server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').split('?')[0]!).replace(/^\/+/, '');
    if (name.includes('/') || name.includes('..') || name === '') {
      res.statusCode = 404;
      res.end();
      return;
    }
    const path = join(root, name);
    stat(path).then(
      (st) => {
        res.writeHead(200, { 'Content-Type': contentType(name), 'Content-Length': st.size });
        createReadStream(path).pipe(res);
      },
      () => {
        res.statusCode = 404;
        res.end();
      },
    );
  });
  const port = await listen(server);
  return { port, stop: () => new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections())) };
}

async function imageServer(open: () => Promise<BlockDevice>): Promise<{ port: number; stop(): Promise<void> }> {
  const dev = await open();
  const fs = await openFileSystem(dev);
  const srv = await serveFileSystem(fs, { port: 0 });
  return {
    port: srv.port!,
    async stop() {
      srv.server.closeAllConnections();
      await srv.close();
      await fs.close();
      await dev.disconnect();
    },
  };
}

async function simServer(img: string): Promise<{ port: number; stop(): Promise<void> }> {
  const sim = await Simulation.start();
  const disk = await sim.createDisk({ sizeBytes: (await stat(img)).size, path: img, readOnly: true });
  const inner = await imageServer(() => sim.attach(disk));
  return {
    port: inner.port,
    async stop() {
      await inner.stop();
      await sim.stop();
    },
  };
}
