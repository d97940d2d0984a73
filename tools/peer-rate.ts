/**
 * Request rates across the process boundary, in one run:
 *   1. our blkfront (Wasm engine) against the C blkback-peer,
 *   2. the C blkfront-peer against our blkback (Wasm engine, memory disk).
 * Both: 4 KiB page-aligned random reads and writes (half each), queue depth
 * 32, one-page ring, for a few seconds. Progress goes to stderr, the table
 * to stdout.
 *
 *   npm run build && node dist/tools/peer-rate.js [--seconds 3]
 *
 * Needs the C peers (gcc, make, libxen-dev): built here with make -C test/peers.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Blkback } from '../src/blkback/blkback.js';
import { Blkfront } from '../src/blkfront/blkfront.js';
import { createVbd } from '../src/blkfront/toolstack.js';
import { MemoryBlockDevice } from '../src/block/memory.js';
import { Hypervisor } from '../src/platform/sim/hypervisor.js';
import { createEngine } from '../src/ring/index.js';
import { ForeignHost, type RoutedPlatform } from '../src/sim/foreign.js';
import { XenstoreServer } from '../src/xenstore/server/server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PEERS = join(ROOT, 'test/peers');
const XVDA = 51712;
const FOREIGN = 7;
const DEPTH = 32;
const SECTORS = 65536; // 32 MiB disks

const secondsArg = process.argv.indexOf('--seconds');
const SECONDS = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : 3;

const log = (s: string): void => void process.stderr.write(`peer-rate: ${s}\n`);

function buildPeers(): void {
  try {
    execFileSync('make', ['-s', '-C', PEERS], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    throw new Error(`building test/peers failed (apt-get install libxen-dev gcc make): ${(e as { stderr?: Buffer }).stderr?.toString() ?? e}`);
  }
}

interface Machine {
  hv: Hypervisor;
  xenstored: XenstoreServer;
  host: ForeignHost;
  dom0: RoutedPlatform;
  dir: string;
}

async function machine(): Promise<Machine> {
  const dir = mkdtempSync(join(tmpdir(), 'xp-rate-'));
  const xenstored = new XenstoreServer();
  const hv = Hypervisor.create({ xenstore: xenstored, poolPages: 8192, maxDomains: 4, grantFrames: 4, scratchBytes: 16 << 20 });
  const sim0 = hv.createDomain('dom0', undefined, { domid: 0 });
  const host = await ForeignHost.start({ hypervisor: hv, xenstored, dir, toolstack: sim0.xenstore });
  return { hv, xenstored, host, dom0: host.route(sim0), dir };
}

async function stop(m: Machine): Promise<void> {
  await m.host.close();
  await m.hv.shutdown();
  await m.xenstored.close();
  rmSync(m.dir, { recursive: true, force: true });
}

/** xorshift32: the offsets only need to be spread, not secret. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

async function ourFrontend(): Promise<number> {
  const m = await machine();
  try {
    const paths = await createVbd(m.dom0.xenstore, { frontendDomid: 0, backendDomid: FOREIGN, devid: XVDA, params: 'peer' });
    const peer = await m.host.start({
      program: join(PEERS, 'build/blkback-peer'), domid: FOREIGN, peer: m.dom0, grantTable: 'peer',
      args: ['--frontend', paths.frontend, '--backend', paths.backend, '--sectors', String(SECTORS)],
    });
    const dev = await Blkfront.attach(m.dom0, {
      engine: createEngine('wasm', m.dom0.memory), frontend: paths.frontend, maxRingPageOrder: 0,
    });
    log(`our blkfront -> blkback-peer: connected, running ${SECONDS} s at depth ${DEPTH}`);
    const next = rng(1);
    let done = 0;
    let running = true;
    const t0 = process.hrtime.bigint();
    const worker = async (): Promise<void> => {
      const buf = new Uint8Array(4096);
      while (running) {
        const sector = BigInt((next() % (SECTORS / 8)) * 8);
        if (next() & 1) await dev.write(sector, [buf]);
        else await dev.read(sector, [buf]);
        done++;
      }
    };
    const workers = Array.from({ length: DEPTH }, worker);
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    running = false;
    await Promise.all(workers);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    await dev.disconnect();
    const exit = await peer.exited;
    if (exit.code !== 0) throw new Error(`blkback-peer failed: ${exit.stderr}`);
    return done / secs;
  } finally {
    await stop(m);
  }
}

async function peerFrontend(): Promise<number> {
  const m = await machine();
  try {
    const back = m.host.route(m.hv.createDomain('blkback', undefined, { domid: 1 }));
    const device = new MemoryBlockDevice({ sizeBytes: SECTORS * 512 });
    const paths = await createVbd(m.dom0.xenstore, { frontendDomid: FOREIGN, backendDomid: 1, devid: XVDA, params: 'memory' });
    const peer = await m.host.start({
      program: join(PEERS, 'build/blkfront-peer'), domid: FOREIGN, peer: back, grantTable: 'self',
      args: ['--frontend', paths.frontend, '--backend', paths.backend, '--mix', '4k', '--inflight', String(DEPTH),
        '--requests', '1000000000', '--duration-ms', String(SECONDS * 1000), '--seed', '1'],
    });
    const blkback = await Blkback.start(back, { backend: paths.backend, device, engine: createEngine('wasm', back.memory) });
    log(`blkfront-peer -> our blkback: started, running ${SECONDS} s at depth ${DEPTH}`);
    const exit = await peer.exited;
    await blkback.stop();
    if (exit.code !== 0) throw new Error(`blkfront-peer failed: ${exit.stderr}`);
    const out = JSON.parse(exit.stdout.trim().split('\n').pop()!) as { requestsPerSecond: number };
    return out.requestsPerSecond;
  } finally {
    await stop(m);
  }
}

async function main(): Promise<void> {
  log('building the C peers');
  buildPeers();
  const a = await ourFrontend();
  log(`our blkfront: ${a.toFixed(0)} req/s`);
  const b = await peerFrontend();
  log(`blkfront-peer: ${b.toFixed(0)} req/s`);
  const row = (x: string, y: string, z: string): string => `${x.padEnd(36)}${y.padEnd(36)}${z.padStart(10)}`;
  console.log(row('frontend', 'backend', 'req/s'));
  console.log(row('ours (Wasm engine, this process)', 'blkback-peer (C, child)', a.toFixed(0)));
  console.log(row('blkfront-peer (C, child)', 'ours (Wasm engine, this process)', b.toFixed(0)));
  console.log(`4 KiB random reads/writes (50/50), queue depth ${DEPTH}, one-page ring, ${SECONDS} s each, node ${process.version}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  },
);
