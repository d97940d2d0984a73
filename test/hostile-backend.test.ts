/**
 * Blkfront against a hostile backend (issue 4): every protocol violation
 * fails the device with a `protocol` error, settles every pending promise,
 * leaves nothing in flight, no port open and no grant unaccounted for, and
 * the process lives. Nonsense xenstore keys fail the attach the same way.
 *
 * The backend is tools/fuzz/peers/hostile-backend.ts: raw ring accesses written
 * from blkif.h, independent of the engine under test.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Blkfront, type BlkfrontOptions } from '../src/blkfront/blkfront.js';
import { createEngine } from '../src/ring/index.js';
import { HDR_RSP_PROD, OP_READ, OP_WRITE, RSP_ERROR, RSP_OKAY, Xb } from '../tools/fuzz/peers/blkif-wire.js';
import { DEFAULT_PROBE_KEYS, HostileBackend, type Received } from '../tools/fuzz/peers/hostile-backend.js';
import { createWorld, eventually, within, type World } from '../tools/fuzz/peers/world.js';

const DEADLINE = 5000;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
beforeAll(() => void process.on('unhandledRejection', onUnhandled));
afterAll(() => void process.off('unhandledRejection', onUnhandled));

let world: World | undefined;
afterEach(async () => {
  await world?.stop();
  world = undefined;
  // Let stray rejections surface before checking.
  await new Promise((r) => setTimeout(r, 10));
  const seen = unhandled.splice(0);
  expect(seen, 'unhandled rejections').toEqual([]);
});

interface Rig {
  w: World;
  be: HostileBackend;
  dev: Blkfront;
}

type FrontOpts = Partial<Omit<BlkfrontOptions, 'engine' | 'frontend'>> & { engine?: 'wasm' | 'js' };

function frontOptions(w: World, o: FrontOpts = {}): BlkfrontOptions {
  const { engine, ...rest } = o;
  return {
    engine: createEngine(engine ?? 'wasm', w.dom0.memory),
    frontend: w.paths.frontend,
    persistent: false,
    maxRingPageOrder: 0,
    connectTimeoutMs: 3000,
    ...rest,
  };
}

async function rig(o: FrontOpts & { connectKeys?: Record<string, string | undefined> } = {}): Promise<Rig> {
  world = await createWorld();
  const w = world;
  const be = new HostileBackend(w.peer, { frontendId: 0, frontend: w.paths.frontend, backend: w.paths.backend });
  const { connectKeys, ...front } = o;
  const attaching = Blkfront.attach(w.dom0, frontOptions(w, front));
  await be.handshake({ connect: connectKeys });
  const dev = await attaching;
  return { w, be, dev };
}

/** Hold every request: the test answers by hand. */
function withhold(be: HostileBackend): void {
  be.onRequest = () => undefined;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  if (!(await eventually(cond, DEADLINE))) throw new Error(`timed out waiting for ${what}`);
}

/** Mark `p` handled now (the test inspects it later, maybe after a macrotask). */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

function reads(dev: Blkfront, n: number, sectors = 8): Promise<void>[] {
  return Array.from({ length: n }, (_, i) => handled(dev.read(BigInt(i * sectors), [new Uint8Array(sectors * 512)])));
}

/** The device failed closed: protocol error everywhere, nothing pending, nothing leaked. */
async function expectFailedClosed(r: Rig, pending: Promise<unknown>[]): Promise<void> {
  const { w, dev } = r;
  for (const [i, p] of pending.entries()) {
    const s = await within(p, DEADLINE, `pending request ${i}`);
    expect(s.status, `request ${i}`).toBe('rejected');
    expect((s as PromiseRejectedResult).reason).toMatchObject({ code: 'protocol' });
  }
  const st = dev.stats();
  expect(st.state).toBe('failed');
  expect(st.inFlight).toBe(0);
  expect(st.waiting).toBe(0);
  expect(w.dom0.evtchn.openPorts()).toEqual([]);
  // Every grant is either ended or counted as kept by the (still mapping) peer.
  expect(w.dom0.grants.activeGrants()).toBe(st.deferredGrants);
  await expect(dev.read(0n, [new Uint8Array(512)])).rejects.toMatchObject({ code: 'protocol' });
  await expect(dev.write(0n, [new Uint8Array(512)])).rejects.toMatchObject({ code: 'protocol' });
  await expect(dev.flush()).rejects.toMatchObject({ code: 'protocol' });
  expect(await eventually(async () => (await w.dom0.xenstore.tryRead(`${w.paths.frontend}/state`)) === String(Xb.Closed))).toBe(true);
}

describe('hostile backend: response violations fail the device with `protocol`', () => {
  for (const engine of ['wasm', 'js'] as const) {
    describe(`engine ${engine}`, () => {
      it('rejects a response whose id is in range but not in flight', async () => {
        const r = await rig({ engine });
        withhold(r.be);
        const pending = reads(r.dev, 3);
        await until(() => r.be.received.length === 3, 'requests');
        const used = new Set(r.be.received.map((x) => x.req.id));
        let id = 0n;
        while (used.has(id)) id++;
        r.be.respond({ id, op: OP_READ, status: RSP_OKAY });
        r.be.publish();
        await expectFailedClosed(r, pending);
      });

      it('rejects a response whose id is beyond the ring (and beyond 32 bits)', async () => {
        const r = await rig({ engine });
        withhold(r.be);
        const pending = reads(r.dev, 2);
        await until(() => r.be.received.length === 2, 'requests');
        r.be.respond({ id: r.be.received[0]!.req.id | (1n << 40n), op: OP_READ, status: RSP_OKAY });
        r.be.publish();
        await expectFailedClosed(r, pending);
      });

      it('rejects a duplicate response, after delivering the first one', async () => {
        const r = await rig({ engine });
        withhold(r.be);
        const first = handled(r.dev.read(0n, [new Uint8Array(4096)]));
        await until(() => r.be.received.length === 1, 'first request');
        const others = Array.from({ length: 3 }, (_, i) => handled(r.dev.read(BigInt((i + 1) * 8), [new Uint8Array(4096)])));
        await until(() => r.be.received.length === 4, 'requests');
        const x = r.be.received[0]!;
        r.be.serve(x);
        expect((await within(first, DEADLINE, 'first read')).status).toBe('fulfilled');
        r.be.respond({ id: x.req.id, op: OP_READ, status: RSP_OKAY });
        r.be.publish();
        await expectFailedClosed(r, others);
      });

      it('rejects a response carrying the wrong operation', async () => {
        const r = await rig({ engine });
        withhold(r.be);
        const pending = reads(r.dev, 2);
        await until(() => r.be.received.length === 2, 'requests');
        r.be.respond({ id: r.be.received[0]!.req.id, op: OP_WRITE, status: RSP_OKAY });
        r.be.publish();
        await expectFailedClosed(r, pending);
      });

      for (const status of [1, -3, 0x7fff, -0x8000]) {
        it(`rejects an out-of-range status ${status}`, async () => {
          const r = await rig({ engine });
          withhold(r.be);
          const pending = reads(r.dev, 2);
          await until(() => r.be.received.length === 2, 'requests');
          r.be.respond({ id: r.be.received[0]!.req.id, op: OP_READ, status });
          r.be.publish();
          await expectFailedClosed(r, pending);
        });
      }

      for (const [name, delta] of [
        ['one past a full ring', 33],
        ['far past the ring', 0x4000_0000],
        ['behind rsp_cons', -1],
      ] as const) {
        it(`rejects rsp_prod ${name}`, async () => {
          const r = await rig({ engine });
          withhold(r.be);
          const pending = reads(r.dev, 40); // 32 in flight, 8 waiting for a slot
          await until(() => r.be.received.length === 32, 'a full ring');
          expect(r.dev.stats().waiting).toBe(8);
          r.be.setRspProd(r.be.hdr(HDR_RSP_PROD) + delta);
          await expectFailedClosed(r, pending);
        });
      }
    });
  }

  it('fails on an event storm with no responses, within a bounded number of events', async () => {
    const r = await rig();
    withhold(r.be);
    const pending = reads(r.dev, 4);
    await until(() => r.be.received.length === 4, 'requests');
    const t0 = Date.now();
    const sent = await r.be.storm(300_000, () => r.dev.stats().state === 'failed');
    const ms = Date.now() - t0;
    console.log(`event storm: device failed after ${sent} notifications, ${ms} ms`);
    expect(r.dev.stats().state).toBe('failed');
    await expectFailedClosed(r, pending);
  }, 120_000);
});

describe('hostile backend: what it does after answering cannot change what was delivered', () => {
  it('rewriting a response slot after rsp_prod was published does not change the delivered result', async () => {
    const r = await rig();
    r.be.disk.fill(0x5a, 0, 4096);
    const buf = new Uint8Array(4096);
    let served: Received | undefined;
    r.be.onRequest = (x, be) => {
      served = x;
      be.serve(x);
    };
    await within(r.dev.read(0n, [buf]), DEADLINE, 'read');
    expect(buf.every((b) => b === 0x5a)).toBe(true);
    // Rewrite the published slot into an error for a write, and kick the frontend.
    r.be.rewrite(served!.index, { id: served!.req.id, op: OP_WRITE, status: RSP_ERROR });
    r.be.notify();
    await new Promise((res) => setTimeout(res, 50));
    expect(buf.every((b) => b === 0x5a)).toBe(true);
    expect(r.dev.stats().state).toBe('connected');
    // The ring still works: the next response lands in the next slot.
    r.be.disk.fill(0x33, 4096, 8192);
    const next = new Uint8Array(4096);
    await within(r.dev.read(8n, [next]), DEADLINE, 'second read');
    expect(next.every((b) => b === 0x33)).toBe(true);
    r.be.followClose();
    await within(r.dev.disconnect(), 20_000, 'disconnect');
  });

  for (const persistent of [false, true]) {
    it(`writing into data pages kept mapped after the response does not reach the caller (persistent ${persistent})`, async () => {
      const r = await rig({ persistent, connectKeys: { 'feature-persistent': persistent ? '1' : '0' } });
      r.be.keepMappings = true;
      r.be.disk.fill(0x11, 0, 16384);
      const buf = new Uint8Array(16384);
      await within(r.dev.read(0n, [buf]), DEADLINE, 'read');
      expect(buf.every((b) => b === 0x11)).toBe(true);
      r.be.scribbleKept(0xee);
      await new Promise((res) => setTimeout(res, 20));
      expect(buf.every((b) => b === 0x11)).toBe(true);
      // The device is healthy; a well-behaved backend then lets go, and disconnect ends every grant.
      expect(r.dev.stats().state).toBe('connected');
      r.be.release();
      r.be.followClose();
    await within(r.dev.disconnect(), 20_000, 'disconnect');
      expect(r.w.dom0.grants.activeGrants()).toBe(0);
      expect(r.w.dom0.evtchn.openPorts()).toEqual([]);
      expect(r.dev.stats().deferredGrants).toBe(0);
    });
  }

  it('answers out of order are delivered to the right callers', async () => {
    const r = await rig();
    for (let i = 0; i < 8; i++) r.be.disk.fill(i + 1, i * 4096, (i + 1) * 4096);
    const held: Received[] = [];
    r.be.onRequest = (x) => void held.push(x);
    const bufs = Array.from({ length: 8 }, () => new Uint8Array(4096));
    const ps = bufs.map((b, i) => handled(r.dev.read(BigInt(i * 8), [b])));
    await until(() => held.length === 8, 'requests');
    for (const x of held.reverse()) r.be.serve(x);
    for (const p of ps) expect((await within(p, DEADLINE, 'read')).status).toBe('fulfilled');
    bufs.forEach((b, i) => expect(b.every((v) => v === i + 1)).toBe(true));
  });
});

describe('hostile backend: a peer that keeps the ring mapped at failure', () => {
  it('ends the grants it kept once the backend unmaps them (deferred end of access)', async () => {
    const r = await rig();
    withhold(r.be);
    const pending = reads(r.dev, 2);
    await until(() => r.be.received.length === 2, 'requests');
    r.be.respond({ id: 31n, op: OP_READ, status: RSP_OKAY });
    r.be.publish();
    await expectFailedClosed(r, pending);
    expect(r.dev.stats().deferredGrants).toBeGreaterThan(0); // the ring, still mapped by the peer
    r.be.release(); // the peer lets go of everything
    const ended = await eventually(() => r.w.dom0.grants.activeGrants() === 0, 3000);
    expect(ended, `dom0 still grants ${r.w.dom0.grants.activeGrants()} pages the backend no longer maps`).toBe(true);
  });
});

describe('hostile backend: xenbus state flapping', () => {
  it('keeps in-flight requests through a flapping backend and completes them on the next good connection', async () => {
    const r = await rig();
    withhold(r.be);
    for (let i = 0; i < 4; i++) r.be.disk.fill(0x40 + i, i * 4096, (i + 1) * 4096);
    const bufs = Array.from({ length: 4 }, () => new Uint8Array(4096));
    const ps = bufs.map((b, i) => handled(r.dev.read(BigInt(i * 8), [b])));
    const data = new Uint8Array(4096).fill(0x77);
    const wr = handled(r.dev.write(64n, [data]));
    await until(() => r.be.received.length === 5, 'requests');
    // A backend that closes down properly lets go of the ring first.
    r.be.release();
    for (const s of [Xb.Closing, Xb.Closed, Xb.InitWait, Xb.Connected, Xb.Closing, Xb.Initialising, Xb.Closed, 9, 'junk', Xb.Unknown]) {
      await r.be.setState(s);
    }
    await new Promise((res) => setTimeout(res, 50));
    expect(r.dev.stats().state).not.toBe('failed');
    // Now a good backend comes back.
    r.be.onRequest = (x, be) => be.serve(x);
    r.be.received.length = 0;
    await r.be.handshake();
    for (const p of [...ps, wr]) expect((await within(p, DEADLINE, 'request after flapping')).status).toBe('fulfilled');
    bufs.forEach((b, i) => expect(b.every((v) => v === 0x40 + i)).toBe(true));
    expect(r.be.disk.subarray(64 * 512, 64 * 512 + 4096)).toEqual(data);
    expect(r.dev.stats().reconnects).toBeGreaterThan(0);
    expect(r.dev.stats().state).toBe('connected');
    r.be.release();
    r.be.followClose();
    await within(r.dev.disconnect(), 20_000, 'disconnect');
    expect(r.w.dom0.evtchn.openPorts()).toEqual([]);
    expect(r.w.dom0.grants.activeGrants()).toBe(0);
  });
});

describe('hostile backend: nonsense xenstore keys fail the attach with `protocol`', () => {
  async function attachWith(keys: { probe?: Record<string, string | undefined>; connect?: Record<string, string | undefined> }) {
    world = await createWorld();
    const w = world;
    const be = new HostileBackend(w.peer, { frontendId: 0, frontend: w.paths.frontend, backend: w.paths.backend });
    const attaching = handled(Blkfront.attach(w.dom0, frontOptions(w)));
    const handshake = be.handshake(keys).catch((e: unknown) => e);
    const result = await within(attaching, DEADLINE, 'attach');
    await handshake;
    return { w, be, result };
  }

  const probeCases: Record<string, string | undefined>[] = [
    { 'max-ring-page-order': 'abc' },
    { 'max-ring-page-order': '-1' },
    { 'max-ring-page-order': '1e9' },
    { 'max-ring-page-order': '99999999999999999999999' },
    { 'multi-queue-max-queues': 'abc' },
    { 'multi-queue-max-queues': '4294967296' },
  ];
  for (const keys of probeCases) {
    it(`refuses probe keys ${JSON.stringify(keys)}`, async () => {
      const { w, result } = await attachWith({ probe: { ...DEFAULT_PROBE_KEYS, ...keys } });
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toMatchObject({ code: 'protocol' });
      expect(w.dom0.evtchn.openPorts()).toEqual([]);
      expect(w.dom0.grants.activeGrants()).toBe(0);
    });
  }

  const connectCases: Record<string, string | undefined>[] = [
    { sectors: 'abc' },
    { sectors: undefined },
    { sectors: '' },
    { sectors: '-8' },
    { sectors: '18446744073709551616' }, // 2^64
    { 'sector-size': '0' },
    { 'sector-size': '1000' },
    { 'sector-size': '256' },
    { 'sector-size': 'abc' },
    { 'sector-size': '4096', sectors: '9' }, // not whole 4096-byte sectors
    { 'physical-sector-size': '100' },
    { info: 'x' },
    { 'feature-flush-cache': 'yes' },
    { 'feature-max-indirect-segments': 'lots' },
  ];
  for (const keys of connectCases) {
    it(`refuses connect keys ${JSON.stringify(keys)}`, async () => {
      const { w, be, result } = await attachWith({ connect: keys });
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toMatchObject({ code: 'protocol' });
      expect(w.dom0.evtchn.openPorts()).toEqual([]);
      // Only the ring the hostile peer still maps may remain granted.
      expect(w.dom0.grants.activeGrants()).toBeLessThanOrEqual(be.ring ? be.ring.grefs.length : 0);
      expect(await w.dom0.xenstore.tryRead(`${w.paths.frontend}/state`)).toBe(String(Xb.Closed));
    });
  }

  for (const keys of [{ 'max-ring-page-order': '9' }, { 'max-ring-page-order': '200' }, { 'multi-queue-max-queues': '1025' }, { 'multi-queue-max-queues': '65535' }]) {
    it(`refuses a well-formed but nonsensical offer ${JSON.stringify(keys)}`, async () => {
      const { w, result } = await attachWith({ probe: { ...DEFAULT_PROBE_KEYS, ...keys } });
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toMatchObject({ code: 'protocol' });
      expect(w.dom0.evtchn.openPorts()).toEqual([]);
      expect(w.dom0.grants.activeGrants()).toBe(0);
    });
  }

  it('clamps a generous but sane max-ring-page-order and queue count to its own limits', async () => {
    const { w, result } = await attachWith({ probe: { 'max-ring-page-order': '8', 'multi-queue-max-queues': '1024' } });
    expect(result.status).toBe('fulfilled');
    const order = Number((await w.dom0.xenstore.tryRead(`${w.paths.frontend}/ring-page-order`)) ?? '0');
    expect(order).toBeLessThanOrEqual(4);
    expect(await w.dom0.xenstore.tryRead(`${w.paths.frontend}/multi-queue-num-queues`)).toBeUndefined();
  });

  it('times out cleanly when the backend never leaves InitWait', async () => {
    world = await createWorld();
    const w = world;
    const be = new HostileBackend(w.peer, { frontendId: 0, frontend: w.paths.frontend, backend: w.paths.backend });
    const attaching = handled(Blkfront.attach(w.dom0, frontOptions(w, { connectTimeoutMs: 300 })));
    await be.probe();
    const result = await within(attaching, DEADLINE, 'attach');
    expect(result.status).toBe('rejected');
    expect((result as PromiseRejectedResult).reason).toMatchObject({ code: 'timeout' });
    expect(w.dom0.evtchn.openPorts()).toEqual([]);
    expect(w.dom0.grants.activeGrants()).toBe(0);
  });
});

describe('hostile backend: nonsense while connected', () => {
  it('fails the device with `protocol` when `sectors` turns to nonsense while connected', async () => {
    const r = await rig();
    withhold(r.be);
    const pending = reads(r.dev, 2);
    await until(() => r.be.received.length === 2, 'requests');
    await r.be.writeKeys({ sectors: 'lots' });
    await r.be.setState(Xb.Connected); // a resize is signalled by rewriting the state node
    await expectFailedClosed(r, pending);
  });

  it('InitWait ↔ Connected flapped 100 times leaves one ring and one port, then serves', async () => {
    const r = await rig();
    r.be.release(); // the harness only ever maps the latest ring
    for (let i = 0; i < 100; i++) {
      await r.be.setState(Xb.InitWait);
      await r.be.setState(Xb.Connected);
    }
    await new Promise((res) => setTimeout(res, 100));
    r.be.received.length = 0;
    await r.be.handshake();
    r.be.disk.fill(0x6b, 0, 4096);
    const buf = new Uint8Array(4096);
    expect((await within(r.dev.read(0n, [buf]), DEADLINE, 'read after flapping')).status).toBe('fulfilled');
    expect(buf.every((b) => b === 0x6b)).toBe(true);
    expect(r.dev.stats().state).toBe('connected');
    expect(r.w.dom0.evtchn.openPorts()).toHaveLength(1);
    expect(r.w.dom0.grants.activeGrants()).toBe(1); // the ring; per-request data grants are ended
    expect(r.dev.stats().deferredGrants).toBe(0);
    r.be.followClose();
    await within(r.dev.disconnect(), 20_000, 'disconnect');
    expect(r.w.dom0.grants.activeGrants()).toBe(0);
    expect(r.w.dom0.evtchn.openPorts()).toEqual([]);
  });
});

describe('hostile backend: a slow close', () => {
  const turn = (): Promise<void> => new Promise((res) => setImmediate(res));
  it('disconnect() ends on the backend state watch when the backend closes late, not on a polling timer', async () => {
    const r = await rig();
    // From here no timeout fires: a close that polled on a timer would never see Closed.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const closing = r.dev.disconnect();
      let done = false;
      void closing.then(() => (done = true));
      // The backend sees Closing but takes its time before going Closed.
      const front = `${r.w.paths.frontend}/state`;
      for (let i = 0; i < 10_000 && (await r.w.peer.xenstore.tryRead(front)) !== String(Xb.Closing); i++) await turn();
      expect(await r.w.peer.xenstore.tryRead(front)).toBe(String(Xb.Closing));
      for (let i = 0; i < 20; i++) await turn();
      expect(done).toBe(false);
      r.be.release();
      await r.be.setState(Xb.Closed);
      for (let i = 0; i < 1000 && !done; i++) await turn();
      expect(done).toBe(true);
      expect(r.dev.state).toBe('closed');
    } finally {
      vi.useRealTimers();
    }
  });
});
