/**
 * blkfront-peer (C) against blkback-peer (C), two processes sharing our
 * pool file, talking through a minimal xenstored and the event socket.
 * Proves the peers (and the pool/evtchn plumbing) before our drivers run
 * against them. Our memory is checked afterwards: the peers' grant entries
 * and ring indices are visible in it at the same page indices.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSharedLayout, frameAddress, type SharedLayout } from '../src/memory/layout.js';
import { createPoolFile, type PoolFile } from '../src/native/pool-file.js';
import { buildPeers, PEERS_BIN } from './peers/build-peers.js';
import { MiniXenstored } from './peers/mini-xenstored.js';

const POOL_PAGES = 2048;
const GNTTAB_FRAME = 0;
const GNTTAB_ENTRIES = 2048; // four frames
const FIRST_FRAME = 4;
const FRONT_DOMID = 5;
const BACK_DOMID = 0;
const FE = `/local/domain/${FRONT_DOMID}/device/vbd/51712`;
const BE = `/local/domain/${BACK_DOMID}/backend/vbd/${FRONT_DOMID}/51712`;

interface Exit { code: number | null; signal: string | null; stdout: string; stderr: string }

const running = new Set<{ kill(): void }>();

function start(bin: string, args: string[]): { exit: Promise<Exit>; kill(): void } {
  const child = spawn(join(PEERS_BIN, bin), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const handle = { kill: () => { child.kill('SIGKILL'); } };
  running.add(handle);
  const exit = new Promise<Exit>((resolve) =>
    // 'close', not 'exit': stdout and stderr are fully read by then
    child.on('close', (code, signal) => { running.delete(handle); resolve({ code, signal, stdout, stderr }); }));
  return { exit, kill: handle.kill };
}

describe('C blkfront-peer against C blkback-peer over the shared pool', () => {
  let dir: string;
  let xs: MiniXenstored;
  let layout: SharedLayout;
  let pool: PoolFile;

  beforeAll(() => buildPeers());
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xenpv-peers-'));
    xs = await MiniXenstored.start(join(dir, 'xenstored.sock'));
    layout = createSharedLayout({ scratchBytes: 65536, poolPages: POOL_PAGES });
    pool = createPoolFile(layout);
  });
  afterEach(async () => {
    for (const c of running) c.kill();
    pool.close();
    await xs.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function common(domid: number, peer: number): string[] {
    return ['--pool', pool.path, '--pool-pages', String(POOL_PAGES), '--gnttab-frame', String(GNTTAB_FRAME),
      '--gnttab-entries', String(GNTTAB_ENTRIES), '--xs', xs.path, '--frontend', FE, '--backend', BE,
      '--domid', String(domid), '--peer-domid', String(peer)];
  }

  function runPair(front: string[], back: string[] = []) {
    const sock = join(dir, 'evtchn.sock');
    const backend = start('blkback-peer', [...common(BACK_DOMID, FRONT_DOMID), '--evtchn-listen', sock, '--sectors', '8192', ...back]);
    const frontend = start('blkfront-peer', [...common(FRONT_DOMID, BACK_DOMID), '--evtchn-connect', sock,
      '--first-frame', String(FIRST_FRAME), ...front]);
    return { backend, frontend };
  }

  async function completes(front: string[], back: string[] = []) {
    const { backend, frontend } = runPair(front, back);
    // a failed frontend never closes the device: do not wait for the backend's idle timeout
    void frontend.exit.then((e) => { if (e.code !== 0) backend.kill(); });
    void backend.exit.then((e) => { if (e.code !== 0) frontend.kill(); });
    const [f, b] = await Promise.all([frontend.exit, backend.exit]);
    expect(f.stderr + b.stderr).toBe('');
    expect(f.code).toBe(0);
    expect(b.code).toBe(0);
    return { f: JSON.parse(f.stdout) as Record<string, number>, b: JSON.parse(b.stdout) as Record<string, number> };
  }

  const ring = (): DataView => new DataView(layout.memory.buffer, frameAddress(layout, FIRST_FRAME), 64);
  const gntEntry = (ref: number) => {
    const dv = new DataView(layout.memory.buffer, frameAddress(layout, GNTTAB_FRAME) + ref * 8, 8);
    return { flags: dv.getUint16(0, true), domid: dv.getUint16(2, true), frame: dv.getUint32(4, true) };
  };

  it('x86_64-abi, one ring page: 3000 verified requests, ring wraps ~90 times, flush, discard, bad requests', async () => {
    const N = 3000;
    const { f, b } = await completes(['--requests', String(N), '--inflight', '32', '--seed', '7', '--bad-every', '97']);
    expect(f).toMatchObject({ abi: 64, ringPages: 1, ringSize: 32, requests: N, backendClosed: true });
    expect(f.reads! + f.writes! + f.flushes! + f.discards! + f.expectedErrors!).toBe(N);
    expect(f.reads).toBeGreaterThan(500);
    expect(f.writes).toBeGreaterThan(500);
    expect(f.flushes).toBeGreaterThan(0);
    expect(f.discards).toBeGreaterThan(0);
    expect(f.expectedErrors).toBe(Math.floor(N / 97));
    expect(b).toMatchObject({ served: N, errors: f.expectedErrors, unsupported: 0, reads: f.reads, writes: f.writes });
    // what the C processes wrote is in our memory, at the same page indices
    expect(ring().getUint32(0, true)).toBe(N); // req_prod
    expect(ring().getUint32(8, true)).toBe(N); // rsp_prod
    expect(gntEntry(8)).toEqual({ flags: 0, domid: BACK_DOMID, frame: FIRST_FRAME }); // ring gref, ended
    expect(xs.nodes.get(`${BE}/state`)).toBe('6');
    expect(xs.nodes.get(`${FE}/protocol`)).toBe('x86_64-abi');
  });

  it('x86_32-abi: both peers use the i386 layouts (108-byte requests, 12-byte responses)', async () => {
    const N = 2000;
    const { f, b } = await completes(['--requests', String(N), '--abi', '32', '--seed', '3', '--bad-every', '50']);
    expect(f).toMatchObject({ abi: 32, ringSize: 32, requests: N });
    expect(b).toMatchObject({ abi: 32, served: N, errors: N / 50 });
    expect(xs.nodes.get(`${FE}/protocol`)).toBe('x86_32-abi');
    // The i386 slot is 108 bytes: request k's id (u64 @4) sits at 64 + (k % 32) * 108 + 4.
    const dv = new DataView(layout.memory.buffer, frameAddress(layout, FIRST_FRAME));
    const lastSlot = (N - 1) % 32;
    // response overwrote the slot: id u64 @0, operation u8 @8, status i16 @10 (12-byte response)
    const id = dv.getBigUint64(64 + lastSlot * 108, true);
    expect(Number(id & 0xffffn)).toBeLessThan(32); // a slot index the frontend handed out
    expect([0, -1]).toContain(dv.getInt16(64 + lastSlot * 108 + 10, true));
  });

  it('multi-page ring (ring-page-order 2): 128 slots, 128 requests in flight', async () => {
    const N = 3000;
    const { f, b } = await completes(['--requests', String(N), '--ring-page-order', '2', '--inflight', '128', '--seed', '11']);
    expect(f).toMatchObject({ ringPages: 4, ringSize: 128, inflight: 128, requests: N });
    expect(b).toMatchObject({ ringPages: 4, served: N });
    expect(xs.nodes.get(`${FE}/ring-page-order`)).toBe('2');
    expect(xs.nodes.get(`${FE}/ring-ref3`)).toBe('11');
  });

  it('the frontend fails (no hang) when the backend is killed mid-run', async () => {
    const { backend, frontend } = runPair(['--requests', '100000000', '--seed', '5']);
    await new Promise((r) => setTimeout(r, 300));
    backend.kill();
    const f = await frontend.exit;
    expect(f.code).not.toBe(0);
    expect(f.stderr).toMatch(/backend died|no response/);
  });
});
