/**
 * Our drivers against the independent C peers (test/peers/, written with
 * Xen's own ring.h macros and blkif.h structs) running as foreign domains
 * in another process: they map the same pool through a memfd, talk to our
 * xenstored over its unix socket and exchange events over a socket.
 *
 * Oracles: our blkfront is checked against a byte-array model (and the
 * peer's own counters); blkfront-peer checks every read against its own
 * shadow and exits non-zero on any wrong byte or status, and our blkback's
 * MemoryBlockDevice is compared with the shadow it writes at the end.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Blkback } from '../src/blkback/blkback.js';
import { Blkfront } from '../src/blkfront/blkfront.js';
import { XenbusState } from '../src/blkif/constants.js';
import { MemoryBlockDevice } from '../src/block/memory.js';
import { XenpvError } from '../src/errors.js';
import { DomainState } from '../src/platform/sim/hypervisor.js';
import { Abi } from '../src/ring/engine.js';
import { createEngine } from '../src/ring/index.js';
import { buildPeers } from './peers/build-peers.js';
import {
  FOREIGN_DOMID,
  parsePeerJson,
  randomWorkload,
  startBlkbackPeer,
  startBlkfrontPeer,
  startMachine,
  verifyWhole,
  type Machine,
} from './peers/interop.js';
import { eventually, within } from '../tools/fuzz/peers/world.js';

const SECTORS = 16384; // 8 MiB disks
const DISK_BYTES = SECTORS * 512;

let m: Machine | undefined;
beforeAll(() => buildPeers());
afterEach(async () => {
  await m?.stop();
  m = undefined;
});

async function attach(engine: 'wasm' | 'js', opts: { order?: number; abi?: Abi; peerArgs?: string[] } = {}) {
  m = await startMachine();
  const { peer, paths } = await startBlkbackPeer(m, m.dom0, { sectors: SECTORS, maxRingPageOrder: 4, extra: opts.peerArgs });
  const dev = await Blkfront.attach(m.dom0, {
    engine: createEngine(engine, m.dom0.memory),
    frontend: paths.frontend,
    maxRingPageOrder: opts.order ?? 0,
    abi: opts.abi ?? Abi.X86_64,
  });
  return { machine: m, peer, paths, dev };
}

/** Disconnect, let the peer exit, return its counters; check nothing is left behind. */
async function finish(machine: Machine, dev: Blkfront, peer: { exited: Promise<{ code: number | null; stdout: string; stderr: string }> }) {
  await dev.disconnect();
  const exit = await within(peer.exited, 5000, 'blkback-peer exit');
  expect(exit.status).toBe('fulfilled');
  const e = (exit as PromiseFulfilledResult<{ code: number | null; stdout: string; stderr: string }>).value;
  expect(e.stderr).toBe('');
  expect(e.code).toBe(0);
  expect(machine.dom0.grants.activeGrants()).toBe(0);
  expect(machine.dom0.evtchn.openPorts()).toEqual([]);
  return parsePeerJson(e.stdout);
}

describe('our blkfront against blkback-peer (C, another process)', () => {
  it('Wasm engine, one-page ring: random verified I/O over the whole disk, ring wraps ~100 times', async () => {
    const { machine, peer, dev } = await attach('wasm');
    expect(dev.info().sizeSectors).toBe(BigInt(SECTORS));
    const model = new Uint8Array(DISK_BYTES);
    const w = await randomWorkload(dev, model, { seed: 1, batches: 60, batch: 48, maxSectors: 120 });
    expect(w.peakInFlight).toBe(32); // the whole ring, with more waiting
    expect(await verifyWhole(dev, model)).toBe(-1);
    const c = await finish(machine, dev, peer);
    expect(c).toMatchObject({ abi: 64, ringPages: 1, errors: 0, unsupported: 0 });
    expect(c.served as number).toBeGreaterThan(100 * 32);
    expect(c.flushes).toBe(w.flushes);
    expect(c.discards as number).toBeGreaterThanOrEqual(w.discards); // a discard may take several requests
    expect(c.writes as number).toBeGreaterThanOrEqual(w.writes);
  });

  it('Wasm engine, ring-page-order 2 (128 slots): verified I/O with 128 requests in flight', async () => {
    const { machine, peer, dev } = await attach('wasm', { order: 2 });
    const model = new Uint8Array(DISK_BYTES);
    const w = await randomWorkload(dev, model, { seed: 2, batches: 30, batch: 160, maxSectors: 64 });
    expect(w.peakInFlight).toBe(128);
    expect(await verifyWhole(dev, model)).toBe(-1);
    const c = await finish(machine, dev, peer);
    expect(c).toMatchObject({ ringPages: 4, errors: 0, unsupported: 0 });
    expect(c.served as number).toBeGreaterThan(10 * 128);
  });

  it('indirect requests when the peer offers feature-max-indirect-segments: large verified I/O', async () => {
    const { machine, peer, dev } = await attach('wasm', { peerArgs: ['--max-indirect-segments', '256'] });
    expect(dev.info().features.indirectSegments).toBe(256);
    const model = new Uint8Array(DISK_BYTES);
    const w = await randomWorkload(dev, model, { seed: 6, batches: 20, batch: 16, maxSectors: 2048 });
    expect(await verifyWhole(dev, model)).toBe(-1);
    const c = await finish(machine, dev, peer);
    expect(c).toMatchObject({ errors: 0, unsupported: 0 });
    // Most data requests carry more than 11 pages: they went indirect.
    expect(c.indirect as number).toBeGreaterThan((w.reads + w.writes) / 2);
  });

  it('JS engine (the twin) is wire-compatible with the C backend too', async () => {
    const { machine, peer, dev } = await attach('js', { order: 1 });
    const model = new Uint8Array(DISK_BYTES);
    await randomWorkload(dev, model, { seed: 3, batches: 30, batch: 48, maxSectors: 120 });
    expect(await verifyWhole(dev, model)).toBe(-1);
    const c = await finish(machine, dev, peer);
    expect(c).toMatchObject({ abi: 64, ringPages: 2, errors: 0, unsupported: 0 });
  });

  it('x86_32-abi: the peer negotiates it from our protocol key and serves 108-byte requests', async () => {
    const { machine, peer, paths, dev } = await attach('wasm', { abi: Abi.X86_32 });
    expect(await machine.dom0.xenstore.read(`${paths.frontend}/protocol`)).toBe('x86_32-abi');
    const model = new Uint8Array(DISK_BYTES);
    await randomWorkload(dev, model, { seed: 4, batches: 30, batch: 48, maxSectors: 120 });
    expect(await verifyWhole(dev, model)).toBe(-1);
    const c = await finish(machine, dev, peer);
    expect(c).toMatchObject({ abi: 32, errors: 0, unsupported: 0 });
  });

  it('dom0 keeps simulated and foreign ports in one number space: the ring port skips numbers sim ports hold', async () => {
    m = await startMachine();
    const other = m.domain(1, 'sim-peer');
    const simPorts = [m.dom0.evtchn.allocUnbound(1), m.dom0.evtchn.allocUnbound(1)];
    expect(simPorts).toEqual([1, 2]);
    const { peer, paths } = await startBlkbackPeer(m, m.dom0, { sectors: SECTORS });
    const dev = await Blkfront.attach(m.dom0, { engine: createEngine('wasm', m.dom0.memory), frontend: paths.frontend, maxRingPageOrder: 0 });
    const ringPort = Number(await m.dom0.xenstore.read(`${paths.frontend}/event-channel`));
    expect(simPorts).not.toContain(ringPort);
    expect(m.dom0.evtchn.linkTo(FOREIGN_DOMID)?.openPorts()).toEqual([ringPort]);
    // the simulated ports still work beside the foreign one
    const got: number[] = [];
    m.dom0.evtchn.setHandler(1, (p) => got.push(p));
    other.evtchn.notify(other.evtchn.bindInterdomain(0, 1));
    expect(await eventually(() => got.length === 1, 2000)).toBe(true);
    const model = new Uint8Array(DISK_BYTES);
    await randomWorkload(dev, model, { seed: 7, batches: 5, batch: 32, maxSectors: 64 });
    expect(await verifyWhole(dev, model)).toBe(-1);
    for (const p of simPorts) m.dom0.evtchn.close(p);
    await finish(m, dev, peer);
  });

  it('peer killed mid-run: the device suspends, disconnect() settles every request as disconnected, nothing leaks', async () => {
    const { machine, peer, paths, dev } = await attach('wasm');
    const model = new Uint8Array(DISK_BYTES);
    await randomWorkload(dev, model, { seed: 5, batches: 3, batch: 32, maxSectors: 64 });
    // Keep 64 operations going until the peer dies.
    const settled: Array<PromiseSettledResult<void>> = [];
    let stop = false;
    const pending = new Set<Promise<void>>();
    const issue = (i: number): void => {
      if (stop) return;
      const p = dev.read(BigInt((i * 8) % SECTORS), [new Uint8Array(4096)]);
      pending.add(p);
      p.then(
        () => { settled.push({ status: 'fulfilled', value: undefined }); pending.delete(p); issue(i + 64); },
        (reason: unknown) => { settled.push({ status: 'rejected', reason }); pending.delete(p); },
      );
    };
    for (let i = 0; i < 64; i++) issue(i);
    await new Promise((r) => setTimeout(r, 150));
    expect(dev.stats().inFlight).toBeGreaterThan(0);
    // Workers keep issuing until here: whatever the peer answered before it
    // died is followed by new requests that will never be answered.
    const exit = await peer.destroy(); // SIGKILL, then the toolstack removes its xenstore directory
    expect(exit.signal).toBe('SIGKILL');
    expect(await eventually(() => dev.stats().state === 'suspended', 3000)).toBe(true);
    stop = true;
    expect(dev.stats().waiting).toBeGreaterThan(0); // kept, not failed: a backend might come back
    const left = [...pending];
    const r = await within(dev.disconnect(), 5000, 'disconnect');
    expect(r.status).toBe('fulfilled');
    const all = await within(Promise.allSettled(left), 1000, 'pending requests');
    expect(all.status).toBe('fulfilled');
    const outcomes = (all as PromiseFulfilledResult<PromiseSettledResult<void>[]>).value;
    expect(outcomes.length).toBeGreaterThan(0);
    for (const o of outcomes) {
      expect(o.status).toBe('rejected');
      expect(((o as PromiseRejectedResult).reason as XenpvError).code).toBe('disconnected');
    }
    await expect(dev.read(0n, [new Uint8Array(512)])).rejects.toMatchObject({ code: 'disconnected' });
    expect(machine.dom0.grants.activeGrants()).toBe(0);
    expect(machine.dom0.evtchn.openPorts()).toEqual([]);
    expect(machine.hv.domainState(FOREIGN_DOMID)).toBe(DomainState.Nonexistent);
    expect(await machine.dom0.xenstore.tryRead(`${paths.frontend}/state`)).toBe(String(XenbusState.Closed));
  });
});

describe('blkfront-peer (C, another process) against our blkback', () => {
  async function serve(domid = 1) {
    m = await startMachine();
    const back = m.domain(domid, 'blkback');
    const device = new MemoryBlockDevice({ sizeBytes: DISK_BYTES });
    return { machine: m, back, device };
  }

  async function deviceBytes(device: MemoryBlockDevice): Promise<Uint8Array> {
    const out = new Uint8Array(DISK_BYTES);
    await device.read(0n, [out]);
    return out;
  }

  for (const abi of [64, 32] as const) {
    it(`x86_${abi === 64 ? '64' : '32'}-abi: the peer's verified workload passes and the disk holds its shadow`, async () => {
      const { machine, back, device } = await serve();
      const shadow = join(machine.dir, 'shadow.bin');
      const N = 3000;
      const { peer, paths } = await startBlkfrontPeer(machine, back, ['--requests', String(N), '--inflight', '64',
        '--seed', String(abi), '--bad-every', '97', '--ring-page-order', '2', '--abi', String(abi), '--shadow-out', shadow]);
      const blkback = await Blkback.start(back, { backend: paths.backend, device, engine: createEngine('wasm', back.memory) });
      const r = await within(peer.exited, 20_000, 'blkfront-peer');
      expect(r.status).toBe('fulfilled');
      const e = (r as PromiseFulfilledResult<{ code: number | null; stdout: string; stderr: string }>).value;
      expect(e.stderr).toBe('');
      expect(e.code).toBe(0);
      const c = parsePeerJson(e.stdout);
      expect(c).toMatchObject({ abi, ringPages: 4, ringSize: 128, inflight: 64, requests: N, backendClosed: true });
      expect(c.expectedErrors).toBe(Math.floor(N / 97));
      expect(c.flushes as number).toBeGreaterThan(0);
      expect(c.discards as number).toBeGreaterThan(0);
      expect(Buffer.compare(await deviceBytes(device), readFileSync(shadow))).toBe(0);
      expect(await eventually(() => blkback.queueCount === 0, 3000)).toBe(true);
      expect(back.grants.activeMappings()).toBe(0);
      expect(back.evtchn.openPorts()).toEqual([]);
      await blkback.stop();
    });
  }

  it('peer killed mid-run: our blkback drops the ring and serves the next frontend', async () => {
    const { machine, back, device } = await serve();
    const first = await startBlkfrontPeer(machine, back, ['--requests', '100000000', '--inflight', '32', '--seed', '9']);
    const blkback = await Blkback.start(back, { backend: first.paths.backend, device, engine: createEngine('wasm', back.memory) });
    expect(await eventually(() => blkback.queueCount === 1, 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(back.grants.activeMappings()).toBeGreaterThan(0); // its ring, at least
    const exit = await first.peer.destroy();
    expect(exit.signal).toBe('SIGKILL');
    expect(await eventually(() => blkback.queueCount === 0 && blkback.xenbusState === XenbusState.Closed, 3000)).toBe(true);
    expect(back.grants.activeMappings()).toBe(0);
    expect(back.evtchn.openPorts()).toEqual([]);
    // The slot of the dead domain is reclaimed once nothing maps its pages.
    machine.hv.reap();
    expect(machine.hv.domainState(FOREIGN_DOMID)).toBe(DomainState.Nonexistent);

    // The same blkback serves a new frontend (same domid, new process) on
    // the disk as the dead one left it.
    const start = join(machine.dir, 'start.bin');
    writeFileSync(start, await deviceBytes(device));
    const shadow = join(machine.dir, 'shadow.bin');
    const second = await startBlkfrontPeer(machine, back, ['--requests', '1500', '--seed', '10', '--shadow-in', start, '--shadow-out', shadow]);
    const r = await within(second.peer.exited, 20_000, 'second blkfront-peer');
    const e = (r as PromiseFulfilledResult<{ code: number | null; stdout: string; stderr: string }>).value;
    expect(e.stderr).toBe('');
    expect(e.code).toBe(0);
    expect(parsePeerJson(e.stdout)).toMatchObject({ requests: 1500 });
    expect(Buffer.compare(await deviceBytes(device), readFileSync(shadow))).toBe(0);
    await blkback.stop();
  });
});
