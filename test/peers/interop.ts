/**
 * Test support for our drivers against the C peers in another process: a
 * simulated machine with a ForeignHost (pool file, xenstored socket, event
 * socket), the vbd wiring for either direction, and a verified random
 * workload driven through a BlockDevice against a byte-array model.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVbd, type VbdPaths } from '../../src/blkfront/toolstack.js';
import type { BlockDevice } from '../../src/block/types.js';
import { Hypervisor } from '../../src/platform/sim/hypervisor.js';
import { ForeignHost, type ForeignDomain, type RoutedPlatform } from '../../src/sim/foreign.js';
import { XenstoreServer } from '../../src/xenstore/server/server.js';
import { prng, randInt, randomBytes } from '../support/disk-model.js';
import { PEERS_BIN } from './build-peers.js';

export const XVDA = 51712;
export const FOREIGN_DOMID = 7;

export interface Machine {
  dir: string;
  xenstored: XenstoreServer;
  hv: Hypervisor;
  /** dom0, routed: frontends (and the toolstack) live here. */
  dom0: RoutedPlatform;
  host: ForeignHost;
  /** A further in-process domain, routed (our blkback runs here). */
  domain(domid: number, name: string): RoutedPlatform;
  stop(): Promise<void>;
}

export async function startMachine(opts: { poolPages?: number } = {}): Promise<Machine> {
  const dir = mkdtempSync(join(tmpdir(), 'xp-'));
  const xenstored = new XenstoreServer();
  const hv = Hypervisor.create({
    xenstore: xenstored,
    poolPages: opts.poolPages ?? 8192,
    maxDomains: 4,
    grantFrames: 4,
    scratchBytes: 16 << 20,
  });
  const sim0 = hv.createDomain('dom0', undefined, { domid: 0 });
  const host = await ForeignHost.start({ hypervisor: hv, xenstored, dir, toolstack: sim0.xenstore });
  const dom0 = host.route(sim0);
  let stopped = false;
  return {
    dir,
    xenstored,
    hv,
    dom0,
    host,
    domain: (domid, name) => host.route(hv.createDomain(name, undefined, { domid })),
    async stop() {
      if (stopped) return;
      stopped = true;
      await host.close();
      await hv.shutdown();
      await xenstored.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const peerProgram = (name: 'blkback-peer' | 'blkfront-peer'): string => join(PEERS_BIN, name);

/** Our blkfront in `front` against a blkback-peer (foreign domain FOREIGN_DOMID). */
export async function startBlkbackPeer(
  m: Machine,
  front: RoutedPlatform,
  opts: { sectors: number; maxRingPageOrder?: number; extra?: string[] },
): Promise<{ peer: ForeignDomain; paths: VbdPaths }> {
  // The toolstack writes both directories before the backend domain runs.
  const paths = await createVbd(m.dom0.xenstore, {
    frontendDomid: front.domid,
    backendDomid: FOREIGN_DOMID,
    devid: XVDA,
    params: 'blkback-peer',
  });
  const peer = await m.host.start({
    program: peerProgram('blkback-peer'),
    domid: FOREIGN_DOMID,
    peer: front,
    grantTable: 'peer',
    args: ['--frontend', paths.frontend, '--backend', paths.backend, '--sectors', String(opts.sectors),
      '--max-ring-page-order', String(opts.maxRingPageOrder ?? 2), ...(opts.extra ?? [])],
  });
  return { peer, paths };
}

/** A blkfront-peer (foreign domain `domid`) against our blkback in `back`. */
export async function startBlkfrontPeer(
  m: Machine,
  back: RoutedPlatform,
  args: string[],
  domid = FOREIGN_DOMID,
): Promise<{ peer: ForeignDomain; paths: VbdPaths }> {
  const paths = await createVbd(m.dom0.xenstore, {
    frontendDomid: domid,
    backendDomid: back.domid,
    devid: XVDA,
    params: 'memory',
  });
  const peer = await m.host.start({
    program: peerProgram('blkfront-peer'),
    domid,
    peer: back,
    grantTable: 'self',
    args: ['--frontend', paths.frontend, '--backend', paths.backend, ...args],
  });
  return { peer, paths };
}

export interface WorkloadResult {
  ops: number;
  reads: number;
  writes: number;
  flushes: number;
  discards: number;
  /** Most ring requests seen in flight right after a batch was issued. */
  peakInFlight: number;
}

/**
 * Random verified I/O through `dev`: batches of up to `batch` operations on
 * disjoint ranges run concurrently (reads checked against `model` at once),
 * with a flush or a discard now and then. `model` is updated in step.
 */
export async function randomWorkload(
  dev: BlockDevice & { stats(): { inFlight: number } },
  model: Uint8Array,
  opts: { seed: number; batches: number; batch: number; maxSectors: number },
): Promise<WorkloadResult> {
  const rnd = prng(opts.seed);
  const ss = dev.info().sectorSize;
  const total = model.length / ss;
  const r: WorkloadResult = { ops: 0, reads: 0, writes: 0, flushes: 0, discards: 0, peakInFlight: 0 };
  for (let b = 0; b < opts.batches; b++) {
    const taken: Array<[number, number]> = [];
    const ops: Promise<void>[] = [];
    const checks: Array<() => void> = [];
    for (let i = 0; i < opts.batch; i++) {
      const n = randInt(rnd, 1, opts.maxSectors);
      const s = randInt(rnd, 0, total - n);
      if (taken.some(([a, l]) => s < a + l && a < s + n)) continue;
      taken.push([s, n]);
      const kind = rnd();
      if (kind < 0.45) {
        const data = randomBytes(rnd, n * ss);
        model.set(data, s * ss);
        ops.push(dev.write(BigInt(s), [data]));
        r.writes++;
      } else if (kind < 0.95) {
        const buf = new Uint8Array(n * ss);
        const want = model.slice(s * ss, (s + n) * ss);
        ops.push(dev.read(BigInt(s), [buf]));
        checks.push(() => {
          if (Buffer.compare(buf, want) !== 0) throw new Error(`read of ${n} sectors at ${s} differs from the model`);
        });
        r.reads++;
      } else {
        model.fill(0, s * ss, (s + n) * ss);
        ops.push(dev.discard(BigInt(s), BigInt(n)));
        r.discards++;
      }
    }
    r.peakInFlight = Math.max(r.peakInFlight, dev.stats().inFlight);
    r.ops += ops.length;
    await Promise.all(ops);
    for (const c of checks) c();
    if (b % 10 === 9) {
      await dev.flush();
      r.flushes++;
    }
  }
  return r;
}

/** Read the whole device in 1 MiB steps and compare with `model`; returns the first bad sector or -1. */
export async function verifyWhole(dev: BlockDevice, model: Uint8Array): Promise<number> {
  const ss = dev.info().sectorSize;
  const step = 1 << 20;
  for (let at = 0; at < model.length; at += step) {
    const len = Math.min(step, model.length - at);
    const buf = new Uint8Array(len);
    await dev.read(BigInt(at / ss), [buf]);
    const want = model.subarray(at, at + len);
    if (Buffer.compare(buf, want) !== 0) {
      for (let i = 0; i < len; i++) if (buf[i] !== want[i]) return Math.floor((at + i) / ss);
    }
  }
  return -1;
}

export function parsePeerJson(stdout: string): Record<string, number | boolean> {
  const line = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as Record<string, number | boolean>;
}
