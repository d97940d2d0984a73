/**
 * The debug log (src/util/debug.ts) and blkfront's stats(): the log names
 * state transitions and negotiated features when enabled and says nothing
 * when off; stats count exactly the operations, bytes and requests a test
 * issued, and notifications as the event channels saw them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Simulation } from '../src/sim/simulation.js';
import { debug, enableDebug, setDebugSink } from '../src/util/debug.js';
import { LatencyHistogram } from '../src/util/histogram.js';
import { runCli } from './support/cli.js';

afterEach(() => {
  enableDebug('');
  setDebugSink(undefined);
});

async function attachSim(): Promise<{ sim: Simulation; dev: Awaited<ReturnType<Simulation['attach']>> }> {
  const sim = await Simulation.start();
  const disk = await sim.createDisk({ sizeBytes: 4 << 20 });
  const dev = await sim.attach(disk);
  return { sim, dev };
}

describe('debug log', () => {
  it('matches namespaces like the debug package: *, lists, exclusions', () => {
    enableDebug('xenpv:*,-xenpv:evtchn');
    expect(debug('xenpv:blkfront').enabled).toBe(true);
    expect(debug('xenpv:evtchn').enabled).toBe(false);
    expect(debug('other:thing').enabled).toBe(false);
    enableDebug('xenpv:xenstore xenpv:blkback');
    expect(debug('xenpv:blkfront').enabled).toBe(false);
    expect(debug('xenpv:blkback').enabled).toBe(true);
  });

  it('names blkfront state transitions and negotiated features when xenpv:blkfront is on', async () => {
    const lines: string[] = [];
    setDebugSink((l) => lines.push(l));
    enableDebug('xenpv:blkfront');
    const { sim, dev } = await attachSim();
    await dev.write(0n, [new Uint8Array(4096)]);
    await sim.stop();
    const text = lines.join('\n');
    expect(text).toMatch(/xenpv:blkfront \/local\/domain\/0\/device\/vbd\/51712: driver connecting -> initialised/);
    expect(text).toContain('driver initialised -> connected');
    expect(text).toContain('backend state InitWait while connecting: setup');
    expect(text).toMatch(/negotiated: 8192 sectors of 512, sector-size 512, persistent true/);
    expect(text).toMatch(/queue 0: pushed 1 request\(s\)/);
    expect(text).toContain('driver closing -> closed');
    expect(lines.every((l) => l.includes(' xenpv:blkfront '))).toBe(true);
  });

  it('prints nothing at all when off', async () => {
    const lines: string[] = [];
    setDebugSink((l) => lines.push(l));
    enableDebug('');
    const { sim, dev } = await attachSim();
    await dev.write(0n, [new Uint8Array(4096)]);
    await dev.read(0n, [new Uint8Array(4096)]);
    await sim.stop();
    expect(lines).toEqual([]);
  });

  it('DEBUG=xenpv:* reaches the CLI and the backend domain; without it stderr stays empty', async () => {
    const on = await runCli(['attach', 'xen:xvda', '--sim', 'memory:1MiB'], { env: { DEBUG: 'xenpv:blkfront,xenpv:blkback,xenpv:xenstore' }, timeoutMs: 60_000 });
    expect(on.code, on.stderr).toBe(0);
    expect(on.stderr).toContain('xenpv:blkfront /local/domain/0/device/vbd/51712: driver initialised -> connected');
    expect(on.stderr).toMatch(/xenpv:blkback \/local\/domain\/1\/backend\/vbd\/0\/51712: state InitWait -> Connected/);
    expect(on.stderr).toMatch(/xenpv:xenstore > XS_WATCH/);
    const off = await runCli(['attach', 'xen:xvda', '--sim', 'memory:1MiB'], { env: { DEBUG: '' }, timeoutMs: 60_000 });
    expect(off.code).toBe(0);
    expect(off.stderr).toBe('');
  }, 90_000);
});

describe('blkfront stats()', () => {
  it('counts exactly the operations, bytes and ring requests issued, and the notifications the event channels carried', async () => {
    const sim = await Simulation.start();
    try {
      const disk = await sim.createDisk({ sizeBytes: 4 << 20 });
      // Count at the event channels themselves (an oracle outside blkfront).
      const ev = sim.dom0.evtchn;
      let sent = 0;
      let received = 0;
      const notify = ev.notify.bind(ev);
      ev.notify = (port) => { sent++; notify(port); };
      const setHandler = ev.setHandler.bind(ev);
      ev.setHandler = (port, h) => setHandler(port, h && ((p) => { received++; h(p); }));
      const dev = await sim.attach(disk, { persistent: false });
      const before = dev.stats();
      expect(before).toMatchObject({ reads: 0, writes: 0, requests: 0, bytesRead: 0, bytesWritten: 0 });
      await Promise.all(Array.from({ length: 10 }, (_, i) => dev.write(BigInt(i * 8), [new Uint8Array(4096).fill(i)])));
      for (let i = 0; i < 5; i++) await dev.read(BigInt(i * 16), [new Uint8Array(8192)]);
      await dev.flush();
      await dev.discard(0n, 8n);
      await dev.discard(64n, 8n);
      const s = dev.stats();
      expect(s).toMatchObject({ writes: 10, reads: 5, flushes: 1, discards: 2, bytesWritten: 10 * 4096, bytesRead: 5 * 8192, errors: 0 });
      // Each call fits one ring request (<= 11 segments, one granule).
      expect(s.requests).toBe(18);
      expect(s.queues).toHaveLength(1);
      const q = s.queues[0]!;
      expect(q.completed).toBe(18);
      expect(q.latencyUs.count).toBe(18);
      expect(q.latencyUs.p50).toBeLessThanOrEqual(q.latencyUs.p99);
      expect(q.latencyUs.p99).toBeLessThanOrEqual(q.latencyUs.max);
      expect(q.latencyUs.max).toBeGreaterThan(0);
      expect(s.notificationsSent).toBe(sent);
      expect(s.notificationsSent).toBeGreaterThan(0);
      expect(s.notificationsSent).toBeLessThanOrEqual(s.requests);
      expect(s.notificationsReceived).toBe(received);
      expect(s.notificationsReceived).toBeGreaterThan(0);
    } finally {
      await sim.stop();
    }
  });
});

describe('LatencyHistogram', () => {
  it('gives percentiles within 1/8 of the exact ones (exact values from sorting, in the test)', () => {
    const h = new LatencyHistogram();
    const xs: number[] = [];
    let seed = 12345;
    for (let i = 0; i < 20_000; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const v = Math.floor(Math.exp((seed / 2 ** 32) * 14)); // 1 .. ~1.2e6, log-spread
      xs.push(v);
      h.record(v);
    }
    xs.sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99]) {
      const exact = xs[Math.ceil(q * xs.length) - 1]!;
      const got = h.percentile(q);
      expect(got).toBeGreaterThanOrEqual(exact);
      expect(got).toBeLessThanOrEqual(exact * 1.125 + 1);
    }
    expect(h.summary()).toMatchObject({ count: 20_000, max: xs[xs.length - 1] });
  });

  it('is exact for small values and empty when nothing was recorded', () => {
    const h = new LatencyHistogram();
    expect(h.summary()).toEqual({ count: 0, p50: 0, p90: 0, p99: 0, max: 0 });
    for (const v of [1, 2, 3, 4, 5]) h.record(v);
    expect(h.percentile(0.5)).toBe(3);
    expect(h.percentile(1)).toBe(5);
  });
});
